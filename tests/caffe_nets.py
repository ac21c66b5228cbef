"""The release's nets as Caffe would hold them, written and run without fcn-lit or Caffe:

- ``net(...)``: a release net's layers, from the architecture facts of fcn.berkeleyvision.org
  (its net.py files: layer names, types, kernels, pads, crop offsets), with random weights;
- ``caffemodel_bytes``: those layers in protobuf's wire format, field numbers from BVLC's
  caffe.proto written out here (not fcn-lit's message classes);
- ``forward``: a numpy forward of the Caffe layers they use (convolution with pad and group,
  deconvolution, ceil-mode max pooling, crop with axis and offset, eltwise sum, scale, LRN, ReLU,
  concat), written from Caffe's layer definitions.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass, field

import numpy as np

# ---- protobuf wire format (varints, length-delimited fields, packed floats) ----


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def submessage(number: int, payload: bytes) -> bytes:
    return tag(number, 2) + varint(len(payload)) + payload


def uint(number: int, value: int) -> bytes:
    return tag(number, 0) + varint(value)


def float32(number: int, value: float) -> bytes:
    return tag(number, 5) + struct.pack("<f", value)


def text(number: int, value: str) -> bytes:
    return submessage(number, value.encode())


# caffe.proto field numbers.
NET_LAYER, NET_V1_LAYERS = 100, 2
LAYER = {"name": 1, "type": 2, "bottom": 3, "top": 4, "blobs": 7, "convolution_param": 106, "pooling_param": 121,
         "lrn_param": 118, "crop_param": 144, "eltwise_param": 110, "scale_param": 142, "concat_param": 104,
         "inner_product_param": 117}
V1_LAYER = {"bottom": 2, "top": 3, "name": 4, "type": 5, "blobs": 6, "convolution_param": 10, "pooling_param": 19,
            "lrn_param": 18, "inner_product_param": 17}
V1_TYPES = {"Convolution": 4, "InnerProduct": 14, "Pooling": 17, "ReLU": 18, "LRN": 15, "Dropout": 6, "Softmax": 20,
            "Data": 5}
BLOB_SHAPE, BLOB_DATA, SHAPE_DIM = 7, 5, 1
LEGACY_DIMS = (1, 2, 3, 4)  # num, channels, height, width


def blob_bytes(array: np.ndarray, legacy: bool = False) -> bytes:
    data = submessage(BLOB_DATA, np.ascontiguousarray(array, dtype="<f4").tobytes())  # packed floats
    if legacy:
        dims = (1,) * (4 - array.ndim) + array.shape
        return b"".join(uint(n, d) for n, d in zip(LEGACY_DIMS, dims)) + data
    return submessage(BLOB_SHAPE, submessage(SHAPE_DIM, b"".join(varint(d) for d in array.shape))) + data


def params_bytes(kind: str, p: dict) -> bytes:
    """A layer's *_param message (caffe.proto's field numbers)."""
    if kind == "convolution_param":
        out = uint(1, p["num_output"]) + uint(4, p["kernel"])
        out += uint(3, p["pad"]) if p.get("pad") else b""
        out += uint(6, p["stride"]) if p.get("stride", 1) != 1 else b""
        out += uint(5, p["group"]) if p.get("group", 1) != 1 else b""
        return out + (uint(2, 0) if not p.get("bias", True) else b"")
    if kind == "inner_product_param":
        return uint(1, p["num_output"])
    if kind == "pooling_param":  # pool: MAX = 0
        return uint(1, 0) + uint(2, p["kernel"]) + uint(3, p["stride"])
    if kind == "lrn_param":
        return uint(1, p["local_size"]) + float32(2, p["alpha"]) + float32(3, p["beta"])
    if kind == "crop_param":
        return uint(1, 2) + uint(2, p["offset"])
    if kind == "eltwise_param":  # operation: SUM = 1; coeff is not packed in caffe.proto
        return uint(1, 1) + b"".join(float32(2, c) for c in p.get("coeff", ()))
    if kind == "concat_param":
        return uint(2, 1)
    if kind == "scale_param":
        return uint(1, 1)
    raise ValueError(kind)


PARAMS = {"Convolution": "convolution_param", "Deconvolution": "convolution_param", "Pooling": "pooling_param",
          "LRN": "lrn_param", "Crop": "crop_param", "Eltwise": "eltwise_param", "Concat": "concat_param",
          "Scale": "scale_param", "InnerProduct": "inner_product_param"}


@dataclass
class CaffeLayer:
    name: str
    type: str
    bottoms: list[str]
    tops: list[str]
    params: dict = field(default_factory=dict)
    blobs: list[np.ndarray] = field(default_factory=list)

    def to_bytes(self, v1: bool = False) -> bytes:
        numbers = V1_LAYER if v1 else LAYER
        out = text(numbers["name"], self.name)
        out += uint(numbers["type"], V1_TYPES[self.type]) if v1 else text(numbers["type"], self.type)
        out += b"".join(text(numbers["bottom"], b) for b in self.bottoms)
        out += b"".join(text(numbers["top"], t) for t in self.tops)
        if self.type in PARAMS and self.params:
            out += submessage(numbers[PARAMS[self.type]], params_bytes(PARAMS[self.type], self.params))
        out += b"".join(submessage(numbers["blobs"], blob_bytes(b, legacy=v1)) for b in self.blobs)
        return submessage(NET_V1_LAYERS if v1 else NET_LAYER, out)


def write_caffemodel(path, layers: list[CaffeLayer], v1: bool = False) -> None:
    """A NetParameter: its repeated layer field, one entry per layer, one after another."""
    with open(path, "wb") as f:
        for layer in layers:
            f.write(layer.to_bytes(v1))


def write_prototxt(path, layers: list[CaffeLayer]) -> None:
    """The net's definition in protobuf's text format, as Caffe's prototxt files."""
    def fields(p: dict) -> str:
        names = {"kernel": "kernel_size", "bias": "bias_term"}
        return " ".join(f"{names.get(k, k)}: {str(v).lower() if isinstance(v, bool) else v}"
                        for k, vs in p.items() for v in (vs if isinstance(vs, tuple) else (vs,)))
    with open(path, "w") as f:
        for layer in layers:
            f.write(f'layer {{\n  name: "{layer.name}"\n  type: "{layer.type}"\n')
            f.writelines(f'  bottom: "{b}"\n' for b in layer.bottoms)
            f.writelines(f'  top: "{t}"\n' for t in layer.tops)
            if layer.type == "Pooling":
                f.write(f"  pooling_param {{ pool: MAX {fields(layer.params)} }}\n")
            elif layer.type == "Eltwise":
                f.write(f"  eltwise_param {{ operation: SUM {fields(layer.params)} }}\n")
            elif layer.type == "Crop":
                f.write(f"  crop_param {{ axis: 2 {fields(layer.params)} }}\n")
            elif layer.type in PARAMS:
                f.write(f"  {PARAMS[layer.type]} {{ {fields(layer.params)} }}\n")
            f.write("  param { lr_mult: 1 }\n  python_param { module: 'unused' }\n}\n")  # fields the reader skips


# ---- the release's nets (net.py of each folder), random weights ----


class Weights:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def conv(self, out: int, cin: int, k: int, bias: bool = True) -> list[np.ndarray]:
        w = (self.rng.standard_normal((out, cin, k, k), dtype=np.float32) * np.sqrt(2 / (cin * k * k))).astype(np.float32)
        return [w, (self.rng.standard_normal(out, dtype=np.float32) * 0.1)] if bias else [w]


def conv(name, bottom, out, cin, k, weights, pad=0, stride=1, group=1, top=None, relu=True, suffix=""):
    layers = [CaffeLayer(name + suffix, "Convolution", [bottom], [top or name + suffix],
                         dict(num_output=out, kernel=k, pad=pad, stride=stride, group=group),
                         weights.conv(out, cin // group, k))]
    if relu:
        relu_name = name.replace("conv", "relu").replace("fc", "relu") + suffix
        layers.append(CaffeLayer(relu_name, "ReLU", [top or name + suffix], [top or name + suffix]))
    return layers


def pool(name, bottom, k=2, stride=2):
    return [CaffeLayer(name, "Pooling", [bottom], [name], dict(kernel=k, stride=stride))]


def scaled(channels: int, width: float) -> int:
    """A width-scaled layer's channels (fcn-lit's model.backbone.width; the release's is 1)."""
    return max(1, round(channels * width))


def vgg16(weights: Weights, data: str = "data", cin: int = 3, suffix: str = "", first: str = "conv1_1", width=1.0):
    """conv1_1 ... fc7 (ReLU, drop6/drop7 in place), as voc-fcn32s/net.py; ``suffix`` on every name
    (NYUDv2 late fusion); ``first`` names conv1_1 (NYUDv2 colour-depth: conv1_1_bgrd)."""
    layers, bottom = [], data
    for b, (convs, channels) in enumerate(zip((2, 2, 3, 3, 3), (64, 128, 256, 512, 512)), start=1):
        for i in range(1, convs + 1):
            name = (first if (b, i) == (1, 1) else f"conv{b}_{i}") + suffix
            out = scaled(channels, width)
            layers += conv(name, bottom, out, cin, 3, weights, pad=100 if (b, i) == (1, 1) else 1)
            layers[-1].name = f"relu{b}_{i}{suffix}"
            bottom, cin = name, out
        layers += pool(f"pool{b}{suffix}", bottom)
        bottom = f"pool{b}{suffix}"
    for fc, (cin_fc, k) in (("fc6", (512, 7)), ("fc7", (4096, 1))):
        layers += conv(fc, bottom, scaled(4096, width), scaled(cin_fc, width), k, weights, suffix=suffix)
        layers.append(CaffeLayer(f"drop{fc[2:]}{suffix}", "Dropout", [fc + suffix], [fc + suffix]))
        bottom = fc + suffix
    return layers


LRN = dict(local_size=5, alpha=1e-4, beta=0.75)  # voc-fcn-alexnet/net.py (k: the default 1)


def caffenet(weights: Weights, cin: int = 3):
    """voc-fcn-alexnet/net.py's trunk: LRN after pool1 and pool2, conv2/4/5 in two groups."""
    return [
        *conv("conv1", "data", 96, cin, 11, weights, pad=100, stride=4), *pool("pool1", "conv1", 3, 2),
        CaffeLayer("norm1", "LRN", ["pool1"], ["norm1"], LRN),
        *conv("conv2", "norm1", 256, 96, 5, weights, pad=2, group=2), *pool("pool2", "conv2", 3, 2),
        CaffeLayer("norm2", "LRN", ["pool2"], ["norm2"], LRN),
        *conv("conv3", "norm2", 384, 256, 3, weights, pad=1), *conv("conv4", "conv3", 384, 384, 3, weights, pad=1, group=2),
        *conv("conv5", "conv4", 256, 384, 3, weights, pad=1, group=2), *pool("pool5", "conv5", 3, 2),
        *conv("fc6", "pool5", 4096, 256, 6, weights), CaffeLayer("drop6", "Dropout", ["fc6"], ["fc6"]),
        *conv("fc7", "fc6", 4096, 4096, 1, weights), CaffeLayer("drop7", "Dropout", ["fc7"], ["fc7"]),
    ]


def deconv(name, bottom, classes, k, stride, weights):
    w = weights.conv(classes, classes, k, bias=False)[0] * 0.05
    return CaffeLayer(name, "Deconvolution", [bottom], [name], dict(num_output=classes, kernel=k, stride=stride,
                                                                    bias=False), [w])


def skip_head(weights, classes, stride, s="", at_once=False, data="data", fc7="fc7", final_crop=True, width=1.0):
    """score_fr, upscore2, score_pool4, ... as voc-fcn{32,16,8}s/net.py (crop offsets 19; 5, 27;
    5, 9, 31), names suffixed ``s`` (SIFT Flow's _sem / _geo)."""
    layers = conv("score_fr", fc7, classes, scaled(4096, width), 1, weights, relu=False, suffix=s)
    score = f"score_fr{s}"
    if stride == 32:
        layers.append(deconv(f"upscore{s}", score, classes, 64, 32, weights))
        final, offset = f"upscore{s}", 19
    for skip, up_name, cin, crop in (("pool4", "upscore2", 512, 5), ("pool3", "upscore_pool4", 256, 9)):
        if stride == 32 or (stride == 16 and skip == "pool3"):
            break
        layers.append(deconv(up_name + s, score, classes, 4, 2, weights))
        bottom = skip
        if at_once:
            scale = np.full(scaled(cin, width), 0.01 if skip == "pool4" else 0.0001, np.float32)
            layers.append(CaffeLayer(f"scale_{skip}{s}", "Scale", [skip], [f"scale_{skip}{s}"], {}, [scale]))
            bottom = f"scale_{skip}{s}"
        layers += conv(f"score_{skip}", bottom, classes, scaled(cin, width), 1, weights, relu=False, suffix=s)
        layers.append(CaffeLayer(f"score_{skip}{s}c", "Crop", [f"score_{skip}{s}", up_name + s], [f"score_{skip}{s}c"],
                                 dict(offset=crop)))
        layers.append(CaffeLayer(f"fuse_{skip}{s}", "Eltwise", [up_name + s, f"score_{skip}{s}c"], [f"fuse_{skip}{s}"]))
        score = f"fuse_{skip}{s}"
    if stride == 16:
        layers.append(deconv(f"upscore16{s}", score, classes, 32, 16, weights))
        final, offset = f"upscore16{s}", 27
    if stride == 8:
        layers.append(deconv(f"upscore8{s}", score, classes, 16, 8, weights))
        final, offset = f"upscore8{s}", 31
    if final_crop:
        layers.append(CaffeLayer(f"score{s}", "Crop", [final, data], [f"score{s}"], dict(offset=offset)))
    return layers


def data_layer(*tops):
    return [CaffeLayer("data", "Python", [], list(tops))]


def loss(score, label="label", name="loss"):
    return [CaffeLayer(name, "SoftmaxWithLoss", [score, label], [name])]


@functools.lru_cache(maxsize=1)  # nets are tested trunk by trunk: one trunk's weights held at a time
def trunk(kind: str, width: float = 1.0) -> tuple[CaffeLayer, ...]:
    """A trunk's layers with random weights of a fixed seed: vgg16 (3 or 4 input channels), the
    two streams of NYUDv2 late fusion, caffenet."""
    if kind == "caffenet":
        return tuple(caffenet(Weights(1)))
    if kind == "vgg16-bgrd":
        return tuple(vgg16(Weights(2), cin=4, first="conv1_1_bgrd", width=width))
    if kind == "vgg16-color-hha":
        return tuple(vgg16(Weights(3), "color", suffix="color", width=width)
                     + vgg16(Weights(4), "hha", suffix="hha", width=width))
    return tuple(vgg16(Weights(0), width=width))


def release_net(name: str, width: float = 1.0, classes: int | None = None) -> tuple[list[CaffeLayer], str, list[CaffeLayer]]:
    """Release net ``name`` (its folder in fcn.berkeleyvision.org) as the layers before its trunk,
    the trunk's kind (``trunk(kind, width)``) and the layers after it; ``width`` and ``classes``
    make a small net of its layout (VGG16 nets of one head)."""
    weights = Weights(sum(map(ord, name)))
    if name == "voc-fcn-alexnet":
        head = conv("score_fr", "fc7", 21, 4096, 1, weights, relu=False)
        head += [deconv("upscore", "score_fr", 21, 63, 32, weights),
                 CaffeLayer("score", "Crop", ["upscore", "data"], ["score"], dict(offset=18))]
        return data_layer("data", "label"), "caffenet", head + loss("score")
    if name == "nyud-fcn32s-color-hha":
        head = conv("score_fr", "fc7color", 40, 4096, 1, weights, relu=False, suffix="color")
        head += conv("score_fr", "fc7hha", 40, 4096, 1, weights, relu=False, suffix="hha")
        head += [CaffeLayer("score_fused", "Eltwise", ["score_frcolor", "score_frhha"], ["score_fused"],
                            dict(coeff=(0.5, 0.5))),
                 deconv("upscore", "score_fused", 40, 64, 32, weights),
                 CaffeLayer("score", "Crop", ["upscore", "color"], ["score"], dict(offset=19))]
        return data_layer("color", "hha", "label"), "vgg16-color-hha", head + loss("score")
    if name == "nyud-fcn32s-color-d":
        before = [CaffeLayer("color", "Python", [], ["color", "depth", "label"]),
                  CaffeLayer("data", "Concat", ["color", "depth"], ["data"])]
        return before, "vgg16-bgrd", skip_head(weights, 40, 32) + loss("score")
    dataset, stride = name.split("-")[0], int(name.split("fcn")[1].split("s")[0])
    if dataset == "siftflow":
        head = skip_head(weights, 33, stride, "_sem") + loss("score_sem", "sem")
        head += skip_head(weights, 3, stride, "_geo") + loss("score_geo", "geo", "loss_geo")
        return data_layer("data", "sem", "geo"), "vgg16", head
    classes = classes or {"voc": 21, "pascalcontext": 60, "nyud": 40}[dataset]
    head = skip_head(weights, classes, stride, at_once=name.endswith("atonce"), width=width) + loss("score")
    return data_layer("data", "label"), "vgg16", head


# ---- the numpy forward of Caffe's layers ----


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, pad: int, stride: int, group: int) -> np.ndarray:
    """ConvolutionLayer: zero padding, cross-correlation, ``group`` independent channel groups."""
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    k = w.shape[-1]
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    cin, cout = x.shape[1] // group, w.shape[0] // group
    outs = [np.einsum("nchwij,ocij->nohw", windows[:, g * cin:(g + 1) * cin], w[g * cout:(g + 1) * cout], optimize=True)
            for g in range(group)]
    out = np.concatenate(outs, axis=1)
    return out + b[None, :, None, None] if b is not None else out


def deconv2d(x: np.ndarray, w: np.ndarray, stride: int) -> np.ndarray:
    """DeconvolutionLayer (no pad): every input pixel adds its kernel-sized patch at stride spacing;
    output (in - 1) * stride + kernel."""
    n, _, h, wd = x.shape
    k = w.shape[-1]
    out = np.zeros((n, w.shape[1], (h - 1) * stride + k, (wd - 1) * stride + k), np.float32)
    patches = np.einsum("nchw,coij->nohwij", x, w)
    for i in range(k):
        for j in range(k):
            out[:, :, i:i + (h - 1) * stride + 1:stride, j:j + (wd - 1) * stride + 1:stride] += patches[..., i, j]
    return out


def max_pool(x: np.ndarray, k: int, stride: int) -> np.ndarray:
    """PoolingLayer MAX without pad: ceil((in - k) / stride) + 1 outputs, windows clipped at the border."""
    h, w = x.shape[2:]
    oh, ow = -(-(h - k) // stride) + 1, -(-(w - k) // stride) + 1
    padded = np.full(x.shape[:2] + ((oh - 1) * stride + k, (ow - 1) * stride + k), -np.inf, np.float32)
    padded[:, :, :h, :w] = x
    return np.max([padded[:, :, i:i + (oh - 1) * stride + 1:stride, j:j + (ow - 1) * stride + 1:stride]
                   for i in range(k) for j in range(k)], axis=0)


def lrn(x: np.ndarray, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> np.ndarray:
    """LRNLayer ACROSS_CHANNELS: x / (k + alpha / size * sum of x^2 over the zero-padded channel window)^beta."""
    squares = np.pad(x.astype(np.float64) ** 2, ((0, 0), ((size - 1) // 2, size // 2), (0, 0), (0, 0)))
    window = sum(squares[:, i:i + x.shape[1]] for i in range(size))
    return (x / (k + alpha / size * window) ** beta).astype(np.float32)


def forward(layers: list[CaffeLayer], blobs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run ``layers`` in order on ``blobs`` (name -> array, the data tops filled in), as Caffe's
    Net::Forward in the TEST phase (dropout is the identity); returns every blob."""
    blobs = dict(blobs)
    for layer in layers:
        if layer.type in ("Python", "SoftmaxWithLoss", "Dropout"):
            continue
        p, bottoms = layer.params, [blobs[b] for b in layer.bottoms]
        if layer.type == "Convolution":
            out = conv2d(bottoms[0], *layer.blobs, p.get("pad", 0), p.get("stride", 1), p.get("group", 1))
        elif layer.type == "Deconvolution":
            out = deconv2d(bottoms[0], layer.blobs[0], p["stride"])
        elif layer.type == "Pooling":
            out = max_pool(bottoms[0], p["kernel"], p["stride"])
        elif layer.type == "ReLU":
            out = np.maximum(bottoms[0], 0)
        elif layer.type == "LRN":
            out = lrn(bottoms[0], p["local_size"], p["alpha"], p["beta"])
        elif layer.type == "Crop":  # axis 2: bottom 0 cropped to bottom 1's height and width at the offset
            o, (h, w) = p["offset"], bottoms[1].shape[2:]
            out = bottoms[0][:, :, o:o + h, o:o + w]
        elif layer.type == "Eltwise":
            out = sum(c * b for c, b in zip(p.get("coeff", (1.0,) * len(bottoms)), bottoms))
        elif layer.type == "Scale":
            out = bottoms[0] * layer.blobs[0][None, :, None, None]
        elif layer.type == "Concat":
            out = np.concatenate(bottoms, axis=1)
        else:
            raise ValueError(layer.type)
        blobs[layer.tops[0]] = out.astype(np.float32)
    return blobs


def write_small_caffemodel(path, name: str = "voc-fcn8s", width: float = 0.125, classes: int | None = None) -> None:
    """Release net ``name``'s layout at ``width`` (a few MB): for the entry points' tests."""
    before, kind, after = release_net(name, width, classes)
    write_caffemodel(path, before + list(trunk.__wrapped__(kind, width)) + after)
