"""A ``.caffemodel`` (and optionally its prototxt) read into plain layers: name, type, bottoms,
tops, the parameter message and the blobs as float32 arrays."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf import text_format
from google.protobuf.message import DecodeError

from fcn_lit.errors import UserError
from fcn_lit.models.caffe.proto import NetParameter, V1LayerParameter

# V1LayerParameter's enum names (pre-2015 files such as VGG_ILSVRC_16_layers) as today's type names.
V1_TYPES = {
    "CONVOLUTION": "Convolution", "DECONVOLUTION": "Deconvolution", "INNER_PRODUCT": "InnerProduct",
    "POOLING": "Pooling", "RELU": "ReLU", "LRN": "LRN", "DROPOUT": "Dropout", "CONCAT": "Concat",
    "ELTWISE": "Eltwise", "SOFTMAX": "Softmax", "SOFTMAX_LOSS": "SoftmaxWithLoss", "ACCURACY": "Accuracy",
    "DATA": "Data", "IMAGE_DATA": "ImageData", "MEMORY_DATA": "MemoryData", "DUMMY_DATA": "DummyData",
    "HDF5_DATA": "HDF5Data", "WINDOW_DATA": "WindowData", "SPLIT": "Split", "SILENCE": "Silence",
}


class CaffeModelError(UserError, ValueError):
    """A file that is not a caffemodel, or a net the reader does not know; the message names the
    file and the layer where reading stopped."""


@dataclass
class Layer:
    name: str
    type: str
    bottoms: list[str]
    tops: list[str]
    message: Any  # LayerParameter or V1LayerParameter: the *_param fields
    blobs: list[np.ndarray]


def _blob(blob: Any, path: Path, layer: str, index: int) -> np.ndarray:
    if blob.HasField("shape"):
        shape = tuple(blob.shape.dim)
    else:  # the legacy 4-d blob
        shape = tuple(d for d in (blob.num, blob.channels, blob.height, blob.width))
    values = np.array(blob.data, dtype=np.float32) if len(blob.data) else np.array(blob.double_data, dtype=np.float32)
    if values.size != int(np.prod(shape)):
        raise CaffeModelError(f"{path}: blob {index} of layer {layer!r} holds {values.size} values, its shape "
                              f"{shape} {int(np.prod(shape))}: the file is damaged")
    return values.reshape(shape)


def _type(message: Any) -> str:
    if isinstance(message, V1LayerParameter):
        name = V1LayerParameter.LayerType.Name(message.type)
        return V1_TYPES.get(name, name)
    return message.type


def _parse(path: Path) -> Any:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CaffeModelError(f"cannot read {path}: {error.strerror or error}") from None
    net = NetParameter()
    try:
        net.ParseFromString(data)
    except DecodeError:
        read = [layer.name for layer in (net.layer or net.layers)]
        where = f"in layer {len(read)}, after layer {read[-2]!r}" if len(read) > 1 else "in its first layer"
        raise CaffeModelError(f"{path} is not a Caffe .caffemodel (a protobuf NetParameter): reading stopped {where}; "
                              "is it truncated (download it again) or another kind of file?") from None
    if not (net.layer or net.layers):
        raise CaffeModelError(f"{path} holds no Caffe layers: not a .caffemodel (a protobuf NetParameter)")
    return net


def _prototxt(path: Path) -> Any:
    try:
        return text_format.Parse(path.read_text(), NetParameter(), allow_unknown_field=True)
    except OSError as error:
        raise CaffeModelError(f"cannot read {path}: {error.strerror or error}") from None
    except text_format.ParseError as error:
        raise CaffeModelError(f"{path} is not a Caffe prototxt: {error}") from None


def read_layers(path: str | Path, prototxt: str | Path | None = None) -> list[Layer]:
    """The layers of caffemodel ``path`` in file order; with ``prototxt``, the layers that file
    defines, each with the blobs of the caffemodel's layer of the same name (Caffe's
    ``CopyTrainedLayersFrom``)."""
    path = Path(path)
    net = _parse(path)
    blobs = {m.name: [_blob(b, path, m.name, i) for i, b in enumerate(m.blobs)] for m in (net.layer or net.layers)}
    if prototxt is not None:
        net = _prototxt(Path(prototxt))
        if not (net.layer or net.layers):
            raise CaffeModelError(f"{prototxt} defines no layers: not a Caffe net prototxt")
    return [Layer(m.name, _type(m), list(m.bottom), list(m.top), m, blobs.get(m.name, []))
            for m in (net.layer or net.layers)]
