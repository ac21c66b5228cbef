"""The FCN release's Caffe models without Caffe: ``.caffemodel`` files read with protobuf into
fcn-lit nets (``from_caffemodel``), ImageNet initialisations into trunks, and the release's
downloads (``python -m fcn_lit.models.caffe download voc-fcn8s``)."""

from fcn_lit.models.caffe.layers import CaffeModelError, read_layers
from fcn_lit.models.caffe.release import ReleaseNet, caffemodel_checkpoint, from_caffemodel

__all__ = ["CaffeModelError", "ReleaseNet", "caffemodel_checkpoint", "from_caffemodel", "read_layers"]
