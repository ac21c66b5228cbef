"""The FCN release's Caffe models without Caffe: ``.caffemodel`` files read with protobuf into
fcn-lit nets (``release.from_caffemodel``, also ``fcn_lit.models.from_caffemodel``), ImageNet
classifiers into trunks (``imagenet``), and the release's downloads
(``python -m fcn_lit.models.caffe download voc-fcn8s``). The submodules import nothing of each
other but ``layers`` and ``proto``, so ``models.pretrained`` can read ImageNet files without a cycle."""
