"""The FCN release's nets recognised in a caffemodel's layers and rebuilt as fcn-lit nets in Caffe
alignment, with the file's weights.

A release net is told by its layer names, types and blob shapes: the trunk by its first
convolution (VGG16's ``conv1_1``, CaffeNet's ``conv1``; ``conv1_1_bgrd`` takes NYUDv2's colour and
depth), the heads by their ``score_fr`` layers (``score_fr_sem`` / ``_geo``: SIFT Flow's two heads;
``score_frcolor`` / ``hha``: NYUDv2 late fusion, whose layer names carry the stream), the stride by
the skip layers present, at-once by its ``Scale`` layers, the classes by ``score_fr``'s outputs.
Every fcn-lit layer then takes the Caffe layer of its name, whose type and settings (kernels,
strides, pads, groups, pooling, LRN, crop offsets, sums, scales) must be the ones the fcn-lit layer
computes; a layer the net does not have stops the reading with its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fcn_lit.data.base import packaged_list
from fcn_lit.models.caffe.layers import CaffeModelError, Layer, read_layers
from fcn_lit.models.fcn import build_fcn
from fcn_lit.models.heads import AT_ONCE_SCALE, FINAL_UPSCORE, SkipHead, Upsample

# Layers that compute nothing at test time, or compute the input or the loss: not part of the net.
OUTSIDE_THE_NET = {"Python", "Input", "Data", "ImageData", "MemoryData", "DummyData", "HDF5Data", "WindowData",
                   "SoftmaxWithLoss", "Softmax", "Accuracy", "Silence", "Split", "Dropout"}
CAFFE_TYPES = {Upsample: "Deconvolution", nn.Conv2d: "Convolution", nn.MaxPool2d: "Pooling", nn.ReLU: "ReLU",
               nn.LocalResponseNorm: "LRN"}
HEAD_SUFFIXES = {"semantic": "_sem", "geometric": "_geo"}  # SIFT Flow's layer names
# The release's data sets by their class counts: name, data config target, class names.
DATA_SETS = {
    21: ("voc", "fcn_lit.data.VOC", "classes/voc.txt"),
    60: ("pascalcontext", "fcn_lit.data.PASCALContext", "classes/context59.txt"),
    40: ("nyud", "fcn_lit.data.NYUDv2", "classes/nyud.txt"),
    33: ("siftflow", "fcn_lit.data.SIFTFlow", "classes/siftflow_semantic.txt"),
}
# NYUDv2's 4-channel conv1_1 (color-d, early fusion): colour and depth concatenated.
EARLY_FUSION_CONV = "conv1_1_bgrd"
FIRST_CONV_WIDTH = {"vgg16": 64, "caffenet": 96}
# Late fusion averages the streams' scores: Eltwise SUM with coefficients 1 / streams.
FUSED_SCORES = "score_fused"


@dataclass(frozen=True)
class ReleaseNet:
    """What a caffemodel holds: trunk, stride, classes per head, input channels, at-once scaling,
    late-fusion streams (named by their layer-name suffixes)."""

    backbone: str
    stride: int
    heads: dict[str, int]
    in_channels: int = 3
    at_once: bool = False
    streams: tuple[str, ...] = ()
    width: float = 1.0  # the release's is 1; narrower files are fcn-lit's own (model.backbone.width)

    @property
    def num_classes(self) -> int:
        return next(iter(self.heads.values()))

    @property
    def data(self) -> str | None:
        known = DATA_SETS.get(self.num_classes)
        return known[0] if known else None

    @property
    def name(self) -> str:
        """The release's folder name (``voc-fcn8s``, ...), or what the net is when the release has none."""
        return self._name() + (f" at width {self.width:g}" if self.width != 1.0 else "")

    def _name(self) -> str:
        if self.backbone == "caffenet":
            return "voc-fcn-alexnet" if self.num_classes == 21 else f"fcn-alexnet, {self.num_classes} classes"
        if self.data is None:
            return f"FCN-{self.stride}s VGG16, {self.num_classes} classes"
        name = f"{self.data}-fcn{self.stride}s"
        if self.streams:
            return f"{name}-{'-'.join(self.streams)}"
        if self.data == "nyud":
            return f"{name}-color-d" if self.in_channels == 4 else f"{name}-color or {name}-hha"
        return name + ("-atonce" if self.at_once else "")

    @property
    def modalities(self) -> list[str]:
        """NYUDv2's inputs, in stacking order."""
        if self.streams:
            return list(self.streams)
        return ["color", "depth"] if self.in_channels == 4 else ["color"]

    def build(self) -> nn.Module:
        multi_head = len(self.heads) > 1
        return build_fcn(
            self.backbone, self.stride, self.num_classes, width=self.width, alignment="caffe", at_once=self.at_once,
            in_channels=self.in_channels, heads=dict(self.heads) if multi_head else None,
            fusion="late" if self.streams else None, streams={s: 3 for s in self.streams} or None,
        )

    def hyper_parameters(self) -> dict[str, Any]:
        """``FCNModule``'s arguments for this net, classes named after the release's data set."""
        names = packaged_list(DATA_SETS[self.num_classes][2]) if self.data else [str(i) for i in range(self.num_classes)]
        net: dict[str, Any] = {"stride": self.stride, "alignment": "caffe", "at_once": self.at_once,
                               "in_channels": self.in_channels}
        if self.streams:
            net |= {"fusion": "late", "streams": {s: 3 for s in self.streams}}
        return dict(
            net=net, backbone={"name": self.backbone, "weights": "caffe", "pretrained": False, "width": self.width},
            loss={}, optimizer={"lr": 0.0}, scheduler={}, num_classes=self.num_classes, class_names=names,
            task_heads=dict(self.heads) if len(self.heads) > 1 else None,
        )

    def data_config(self) -> dict[str, Any]:
        """The data set the release trained the net on, as a ``data`` config's ``dataset`` and modalities."""
        if not self.data:
            return {}
        config: dict[str, Any] = {"dataset": {"_target_": DATA_SETS[self.num_classes][1]}}
        return config | ({"modalities": self.modalities} if self.data == "nyud" else {})

    def layer_name(self, module: str) -> str:
        """The Caffe layer of fcn-lit module ``module`` (``trunk.stride8.conv1_1`` -> ``conv1_1``)."""
        parts = module.split(".")
        layer = parts[-1]
        if parts[0] == "streams":  # streams.<stream>.trunk.<stage>.<layer>, streams.<stream>.head.<layer>
            return layer if layer == FINAL_UPSCORE[self.stride] else layer + parts[1]
        if parts[0] == "heads":  # heads.<head>.<layer>
            return layer + HEAD_SUFFIXES[parts[1]]
        if layer == "conv1_1" and self.in_channels == 4:
            return EARLY_FUSION_CONV
        return layer


def _fail(path: Path, message: str) -> CaffeModelError:
    return CaffeModelError(f"{path}: {message}")


def _blob_shapes(layer: Layer) -> str:
    return ", ".join(str(tuple(b.shape)) for b in layer.blobs) or "no blobs"


def recognise(layers: list[Layer], path: Path) -> ReleaseNet:
    """The release net whose layers these are."""
    by_name = {layer.name: layer for layer in layers}
    weighted = [layer for layer in layers if layer.blobs]
    if not weighted:
        raise _fail(path, "no layer holds weights (blobs): a net definition rather than a trained .caffemodel")
    streams = tuple(s for s in ("color", "hha") if f"conv1_1{s}" in by_name)
    first = f"conv1_1{streams[0]}" if streams else next((n for n in ("conv1_1", EARLY_FUSION_CONV, "conv1") if n in by_name), None)
    if first is None or not by_name[first].blobs:
        stop = weighted[0]
        raise _fail(path, f"reading stopped at layer {stop.name!r} ({stop.type}, {_blob_shapes(stop)}): no release FCN "
                          "starts there (VGG16's conv1_1 or CaffeNet's conv1); fcn-lit reads the nets of "
                          "fcn.berkeleyvision.org and their ImageNet initialisations")
    backbone = "caffenet" if first == "conv1" else "vgg16"
    scores = {n: layer for n, layer in by_name.items() if n.startswith("score_fr") and layer.blobs}
    if not scores:
        last = weighted[-1]
        raise _fail(path, f"reading stopped at layer {last.name!r} ({last.type}, {_blob_shapes(last)}): no score_fr "
                          "layer follows, so this is no FCN; an ImageNet classifier is a trunk's initialisation: "
                          "model.backbone.weights=caffe model.backbone.weights_path=<this file>")
    suffixes = {n.removeprefix("score_fr"): layer.blobs[0].shape[0] for n, layer in scores.items()}
    if streams:
        suffix, heads = streams[0], {"semantic": suffixes[streams[0]]}
    elif set(suffixes) == set(HEAD_SUFFIXES.values()):
        suffix, heads = "_sem", {head: suffixes[s] for head, s in HEAD_SUFFIXES.items()}
    elif set(suffixes) == {""}:
        suffix, heads = "", {"semantic": suffixes[""]}
    else:
        raise _fail(path, f"score layers {sorted(scores)} are neither one head's (score_fr), SIFT Flow's "
                          "(score_fr_sem, score_fr_geo) nor NYUDv2 late fusion's (score_frcolor, score_frhha)")
    stride = 8 if f"score_pool3{suffix}" in by_name else 16 if f"score_pool4{suffix}" in by_name else 32
    out_channels, in_channels = by_name[first].blobs[0].shape[:2]
    return ReleaseNet(backbone, stride, heads, in_channels=int(in_channels), at_once=f"scale_pool4{suffix}" in by_name,
                      streams=streams, width=out_channels / FIRST_CONV_WIDTH[backbone])


def _pair(values: Any, one_h: int, one_w: int, default: int) -> tuple[int, int]:
    """A convolution setting's (h, w): its _h/_w fields when set, else the repeated field."""
    if one_h or one_w:
        return one_h, one_w
    values = list(values) or [default]
    return (values[0], values[0]) if len(values) == 1 else (values[0], values[1])


class _Checker:
    """Compares a Caffe layer's settings with those of the fcn-lit layer that takes its place."""

    def __init__(self, path: Path, release: ReleaseNet):
        self.path, self.release = path, release

    def fail(self, layer: Layer, message: str) -> CaffeModelError:
        return _fail(self.path, f"layer {layer.name!r} ({layer.type}) {message}: not the layer of {self.release.name} "
                                "that its other layers make this file; reading stopped there")

    def setting(self, layer: Layer, what: str, theirs: Any, mine: Any) -> None:
        if theirs != mine:
            raise self.fail(layer, f"has {what} {theirs}, not {mine}")

    def param(self, layer: Layer, field: str) -> Any:
        if not layer.message.HasField(field):
            raise _fail(self.path, f"layer {layer.name!r} ({layer.type}) has no {field}: the file holds blobs only; "
                                   "give the net's definition too: prototxt=<the release's val/test/deploy.prototxt>")
        return getattr(layer.message, field)

    def convolution(self, layer: Layer, module: nn.Conv2d | nn.ConvTranspose2d) -> None:
        p = self.param(layer, "convolution_param")
        self.setting(layer, "num_output", p.num_output, module.out_channels)
        self.setting(layer, "kernel", _pair(p.kernel_size, p.kernel_h, p.kernel_w, 0), module.kernel_size)
        self.setting(layer, "stride", _pair(p.stride, p.stride_h, p.stride_w, 1), module.stride)
        self.setting(layer, "pad", _pair(p.pad, p.pad_h, p.pad_w, 0), module.padding)
        self.setting(layer, "dilation", _pair(p.dilation, 0, 0, 1), module.dilation)
        self.setting(layer, "group", p.group, module.groups)
        self.setting(layer, "bias_term", p.bias_term, module.bias is not None)

    def pooling(self, layer: Layer, module: nn.MaxPool2d) -> None:
        p = self.param(layer, "pooling_param")
        self.setting(layer, "pool", type(p).PoolMethod.Name(p.pool), "MAX")
        self.setting(layer, "kernel", _pair([p.kernel_size], p.kernel_h, p.kernel_w, 0), (module.kernel_size,) * 2)
        self.setting(layer, "stride", _pair([p.stride], p.stride_h, p.stride_w, 1), (module.stride,) * 2)
        self.setting(layer, "pad", _pair([p.pad], p.pad_h, p.pad_w, 0), (module.padding,) * 2)
        self.setting(layer, "round_mode", type(p).RoundMode.Name(p.round_mode), "CEIL" if module.ceil_mode else "FLOOR")
        self.setting(layer, "global_pooling", p.global_pooling, False)

    def lrn(self, layer: Layer, module: nn.LocalResponseNorm) -> None:
        p = self.param(layer, "lrn_param")
        self.setting(layer, "norm_region", type(p).NormRegion.Name(p.norm_region), "ACROSS_CHANNELS")
        self.setting(layer, "local_size", p.local_size, module.size)
        for field in ("alpha", "beta", "k"):  # float32 in the file
            self.setting(layer, field, np.float32(getattr(p, field)), np.float32(getattr(module, field)))

    def relu(self, layer: Layer, module: nn.ReLU) -> None:
        if layer.message.HasField("relu_param"):
            self.setting(layer, "negative_slope", layer.message.relu_param.negative_slope, 0.0)

    def crop(self, layer: Layer, offset: int) -> None:
        p = self.param(layer, "crop_param")
        self.setting(layer, "axis", p.axis, 2)
        self.setting(layer, "offset", list(p.offset) if len(p.offset) == 2 else list(p.offset) * 2, [offset, offset])

    def eltwise_sum(self, layer: Layer, coefficient: float) -> None:
        p = layer.message.eltwise_param  # every setting has a default: SUM with coefficients 1
        self.setting(layer, "operation", type(p).EltwiseOp.Name(p.operation), "SUM")
        coefficients = list(p.coeff) or [1.0] * len(layer.bottoms)
        self.setting(layer, "coeff", [float(np.float32(c)) for c in coefficients],
                     [float(np.float32(coefficient))] * len(layer.bottoms))

    def scale(self, layer: Layer, value: float) -> None:
        if layer.message.HasField("scale_param"):
            p = layer.message.scale_param
            self.setting(layer, "axis, num_axes, bias_term", (p.axis, p.num_axes, p.bias_term), (1, 1, False))
        if len(layer.blobs) != 1 or not (layer.blobs[0] == np.float32(value)).all():
            raise self.fail(layer, f"scales by {np.unique(np.concatenate([b.ravel() for b in layer.blobs]))[:4]}, not "
                                   f"the constant {value} of the at-once net")


CHECKS = {Upsample: _Checker.convolution, nn.Conv2d: _Checker.convolution, nn.MaxPool2d: _Checker.pooling,
          nn.ReLU: _Checker.relu, nn.LocalResponseNorm: _Checker.lrn}


def _caffe_type(module: nn.Module) -> str | None:
    return next((name for kind, name in CAFFE_TYPES.items() if isinstance(module, kind)), None)


def _head_layers(head: SkipHead, suffix: str, final: bool) -> list[tuple[str, str, Any]]:
    """The Caffe layers of a skip head that hold no weights: (name, type, check)."""
    layers = []
    for stride, skip, crop in ((16, "pool4", "crop_pool4"), (8, "pool3", "crop_pool3")):
        if head.stride <= stride:
            cut_up, cut_skip = getattr(head, crop)
            if cut_up:  # the release crops the skip scores only
                raise ValueError(f"FCN-{head.stride}s crops the upsampled scores at {skip}: not the release's net")
            layers += [(f"score_{skip}{suffix}c", "Crop", lambda c, layer, o=cut_skip: c.crop(layer, o)),
                       (f"fuse_{skip}{suffix}", "Eltwise", lambda c, layer: c.eltwise_sum(layer, 1.0))]
            if head.at_once:
                layers.append((f"scale_{skip}{suffix}", "Scale", lambda c, layer, s=stride: c.scale(layer, AT_ONCE_SCALE[s])))
    if final:
        layers.append((f"score{suffix}", "Crop", lambda c, layer: c.crop(layer, head.crop_final)))
    return layers


def _structure(net: nn.Module, release: ReleaseNet) -> list[tuple[str, str, Any]]:
    if release.streams:
        heads = [s.head for s in net.streams.values()]
        return [layer for head, stream in zip(heads, release.streams) for layer in _head_layers(head, stream, False)] + [
            (FUSED_SCORES, "Eltwise", lambda c, layer: c.eltwise_sum(layer, 1 / len(heads))),
            *_head_layers(heads[0], "", True)[-1:]]
    if hasattr(net, "heads"):
        return [layer for name, head in net.heads.items() for layer in _head_layers(head, HEAD_SUFFIXES[name], True)]
    return _head_layers(net.head, "", True)


def _fitted(blob: np.ndarray, target: torch.Tensor) -> np.ndarray | None:
    """``blob`` in ``target``'s shape when it is that shape up to leading ones (legacy 4-d blobs), or
    an InnerProduct's (out, in) for a convolution; else None."""
    shape = tuple(target.shape)
    stripped = tuple(blob.shape[next((i for i, d in enumerate(blob.shape) if d != 1), len(blob.shape)):])
    fits = stripped in (shape[len(shape) - len(stripped):], (shape[0], int(np.prod(shape[1:]))))
    return blob.reshape(shape) if fits and blob.size == target.numel() else None


def load_release(layers: list[Layer], path: Path) -> tuple[ReleaseNet, nn.Module]:
    """The release net of ``layers``, built and holding their weights."""
    release = recognise(layers, path)
    with torch.device("meta"):  # shapes only: every tensor comes from the file
        net = release.build()
    check = _Checker(path, release)
    by_name = {layer.name: layer for layer in layers}
    expected: dict[str, tuple[str, Any]] = {}  # Caffe layer -> (type, check)
    owners: dict[str, list[str]] = {}  # Caffe layer -> fcn-lit modules whose tensors it fills
    for module_name, module in net.named_modules(remove_duplicate=False):  # late fusion shares its upscore
        kind = _caffe_type(module)
        if kind is None:
            continue
        layer = release.layer_name(module_name)
        expected[layer] = (kind, lambda c, caffe, m=module: CHECKS[type(m)](c, caffe, m))
        if any(True for _ in module.parameters(recurse=False)):
            owners.setdefault(layer, []).append(module_name)
    for name, kind, verify in _structure(net, release):
        expected[name] = (kind, verify)
    first_conv = next(name for name, (kind, _) in expected.items() if kind == "Convolution")
    data_blob = by_name[first_conv].bottoms[:1] if first_conv in by_name else []
    for layer in layers:  # in file order: stop at the first layer that is not the release's
        if layer.name in expected:
            kind, verify = expected[layer.name]
            if layer.type != kind:
                raise check.fail(layer, f"is a {layer.type} layer, not {kind}")
            verify(check, layer)
        elif layer.type == "Concat" and layer.tops == data_blob:  # color-d: the input's colour and depth
            continue
        elif layer.type not in OUTSIDE_THE_NET or layer.blobs:
            raise _fail(path, f"reading stopped at layer {layer.name!r} ({layer.type}, {_blob_shapes(layer)}): "
                              f"it is not a layer of {release.name}, which the layers before it make this file")
    missing = [name for name in expected if name not in by_name]
    if missing:
        raise _fail(path, f"has no layer {missing[0]!r} ({expected[missing[0]][0]}), which {release.name} has "
                          f"({len(missing)} missing in all); is the file cut short, or does it hold blobs only "
                          "(then give prototxt=<its definition>)?")
    state, filled = net.state_dict(), {}
    for layer_name, modules in owners.items():
        layer = by_name[layer_name]
        for module_name in modules:
            keys = [k for k in state if k.rsplit(".", 1)[0] == module_name]
            if len(layer.blobs) != len(keys):
                raise check.fail(layer, f"holds {len(layer.blobs)} blobs ({_blob_shapes(layer)}), not {len(keys)}")
            for blob, key in zip(layer.blobs, sorted(keys, key=lambda k: k.endswith(".bias"))):
                fitted = _fitted(blob, state[key])
                if fitted is None:
                    raise check.fail(layer, f"has a blob of shape {tuple(blob.shape)}, not {tuple(state[key].shape)}")
                filled[key] = torch.from_numpy(np.ascontiguousarray(fitted))
    net.load_state_dict(filled, assign=True)  # strict: every tensor of the net is filled
    return release, net.eval()


def from_caffemodel(path: str | Path, prototxt: str | Path | None = None) -> nn.Module:
    """The fcn-lit net of a release ``.caffemodel`` (fcn.berkeleyvision.org), in Caffe alignment,
    computing what Caffe computes from the file; ``prototxt`` gives the net's definition for a file
    that holds blobs only. Its input is Caffe's: BGR 0..255 minus the data set's mean
    (``preprocessing("vgg16", "caffe")``)."""
    path = Path(path)
    return load_release(read_layers(path, prototxt), path)[1]


def caffemodel_checkpoint(path: str | Path, prototxt: str | Path | None = None) -> dict[str, Any]:
    """A release ``.caffemodel`` as a train.py checkpoint holds it (``hyper_parameters`` and the
    ``net.``-prefixed ``state_dict``), so every entry point that loads a checkpoint takes it;
    ``caffemodel`` says which release net it is and on which data set it was trained."""
    path = Path(path)
    release, net = load_release(read_layers(path, prototxt), path)
    return {
        "hyper_parameters": release.hyper_parameters(),
        "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()},
        "caffemodel": {"file": str(path), "release": release.name, "data": release.data_config()},
    }
