"""FCN models: trunks, skip heads, Caffe-faithful alignment and weight surgery."""

from fcn_lit.models.backbones import BACKBONES, Trunk, build_trunk
from fcn_lit.models.caffe.release import from_caffemodel
from fcn_lit.models.fcn import FCN, PRIMARY_HEAD, LateFusionFCN, MultiHeadFCN, build_fcn
from fcn_lit.models.heads import SkipHead, bilinear_kernel
from fcn_lit.models.pretrained import preprocessing
from fcn_lit.models.surgery import convolutionalize, grow_classes, import_torchfcn, transplant

__all__ = [
    "BACKBONES",
    "FCN",
    "LateFusionFCN",
    "MultiHeadFCN",
    "PRIMARY_HEAD",
    "SkipHead",
    "Trunk",
    "bilinear_kernel",
    "build_fcn",
    "build_trunk",
    "convolutionalize",
    "from_caffemodel",
    "grow_classes",
    "import_torchfcn",
    "preprocessing",
    "transplant",
]
