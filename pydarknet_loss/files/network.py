"""From a darknet .cfg to the loss layers and the cost darknet prints.

Shapes follow upstream's parse_network_cfg and make_*_layer with C integer
arithmetic; every option the parse_* functions read takes upstream's
default when absent, and options they never read are reported as unused.
Only [yolo] and [region] compute anything here: the other layers are
parsed for their shapes alone.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .. import _validate
from .cfg import CfgError, PathLike, Section, c_atoi, float_list, int_list, parse_cfg_text, read_map, unused_fields
from ..layers.pjreddie import RegionLayer, RegionResult, YoloLayer, YoloResult

LossLayer = Union[YoloLayer, RegionLayer]
LossResult = Union[YoloResult, RegionResult]

#: Section names upstream's string_to_layer_type knows, by canonical type.
TYPE_NAMES = {
    "shortcut": ("shortcut",), "crop": ("crop",), "cost": ("cost",), "detection": ("detection",),
    "region": ("region",), "yolo": ("yolo",), "iseg": ("iseg",), "local": ("local",),
    "convolutional": ("conv", "convolutional"), "deconvolutional": ("deconv", "deconvolutional"),
    "activation": ("activation",), "logistic": ("logistic",), "l2norm": ("l2norm",),
    "crnn": ("crnn",), "gru": ("gru",), "lstm": ("lstm",), "rnn": ("rnn",),
    "connected": ("conn", "connected"), "maxpool": ("max", "maxpool"), "reorg": ("reorg",),
    "avgpool": ("avg", "avgpool"), "dropout": ("dropout",), "normalization": ("lrn", "normalization"),
    "batchnorm": ("batchnorm",), "softmax": ("soft", "softmax"), "route": ("route",),
    "upsample": ("upsample",),
}
_BY_SECTION = {f"[{alias}]": t for t, aliases in TYPE_NAMES.items() for alias in aliases}
#: Layer types whose make_*_layer allocates a cost slot; calc_network_cost
#: averages over all of them, computed or not.
COST_TYPES = ("cost", "detection", "iseg", "logistic", "region", "softmax", "yolo")
#: Options parse_network_cfg reads for every layer after its parse_*.
COMMON_OPTIONS = ("truth", "onlyforward", "stopbackward", "dontsave", "dontload", "numload",
                  "dontloadscales", "learning_rate", "smooth")


class DarknetCfgWarning(UserWarning):
    """What upstream's parser would print about a cfg: unused fields, skipped lines."""


@dataclass
class LayerInfo:
    """One layer as upstream's parser sizes it (fields named as darknet's)."""

    index: int
    type: str  # canonical type, e.g. "convolutional"
    line: int
    batch: int = 0
    w: int = 0
    h: int = 0
    c: int = 0
    out_w: int = 0
    out_h: int = 0
    out_c: int = 0
    inputs: int = 0
    outputs: int = 0
    params: Dict[str, Any] = field(default_factory=dict)  # type-specific fields (size, stride, ...)
    loss: Optional[LossLayer] = None

    @property
    def shape(self) -> Tuple[int, int, int]:
        return (self.out_c, self.out_h, self.out_w)


@dataclass(frozen=True)
class NetworkResult:
    """One forward over a network's loss layers."""

    layers: Dict[int, LossResult]  #: per darknet layer index
    cost: np.float32  #: *net.cost as calc_network_cost leaves it

    def lines(self) -> List[str]:
        """Upstream's printed statistics lines, in layer order."""
        return [r.stats.line() for r in self.layers.values() if r.stats is not None]


def _cdiv(a: int, b: int) -> int:
    """C's int division (truncation toward zero)."""
    if b == 0:
        raise ZeroDivisionError
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


class _Params:
    """parse_network_cfg's size_params: what the previous layer hands on."""

    def __init__(self, batch: int, inputs: int, h: int, w: int, c: int, time_steps: int) -> None:
        self.batch, self.inputs, self.h, self.w, self.c = batch, inputs, h, w, c
        self.time_steps = time_steps
        self.index = 0


class Network:
    """A darknet network read from a .cfg, with its [yolo]/[region] layers.

    ``Network.from_cfg(path, base_dir=None)``; ``map``/``tree`` files are
    read relative to ``base_dir`` (default: the cfg's folder).
    """

    def __init__(self, sections: List[Section], *, path: str = "<cfg>",
                 base_dir: Optional[PathLike] = None) -> None:
        self.path = path
        self.base_dir = Path(base_dir) if base_dir is not None else Path(path).resolve().parent
        if not sections:
            raise CfgError(f"{path}: the cfg has no sections")
        net = sections[0]
        if net.type not in ("[net]", "[network]"):
            raise CfgError(f"{net.where(path)}: the first section must be [net] or [network]")
        self._parse_net(net)
        self.layers: List[LayerInfo] = []
        p = _Params(self.batch, self.inputs, self.height, self.width, self.channels, self.time_steps)
        for count, s in enumerate(sections[1:]):
            p.index = count
            info = self._parse_layer(s, p, count)
            self.layers.append(info)
            p.h, p.w, p.c, p.inputs = info.out_h, info.out_w, info.out_c, info.outputs
        self.unused = unused_fields(sections[1:])
        for line, text in self.unused:
            warnings.warn(f"{path}, line {line}: unused field '{text}' (upstream warns too)",
                          DarknetCfgWarning, stacklevel=3)
        last = self.layers[-1] if self.layers else None
        self.outputs = last.outputs if last else 0
        truths = last.params.get("truths", 0) if last else 0
        self.truths = truths or self.outputs

    # ---- construction -------------------------------------------------------

    @classmethod
    def from_cfg(cls, path: PathLike, base_dir: Optional[PathLike] = None) -> "Network":
        p = os.fspath(path)
        with open(p, "r", encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
        return cls.from_text(text, path=p, base_dir=base_dir)

    @classmethod
    def from_text(cls, text: str, *, path: str = "<cfg>", base_dir: Optional[PathLike] = None) -> "Network":
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sections = parse_cfg_text(text, path)
        for w in caught:  # re-issue where the caller can see them
            warnings.warn(w.message, w.category, stacklevel=3)
        return cls(sections, path=path, base_dir=base_dir if base_dir is not None else
                   (Path(path).resolve().parent if path != "<cfg>" else Path.cwd()))

    def _parse_net(self, s: Section) -> None:
        """parse_net_options: the fields the loss needs, and every lookup
        upstream makes (so that the same keys count as used)."""
        batch = s.get_int("batch", 1)
        for key, default in (("learning_rate", .001), ("momentum", .9), ("decay", .0001)):
            s.get_float(key, default)
        subdivs = s.get_int("subdivisions", 1)
        self.time_steps = s.get_int("time_steps", 1)
        s.get_int("notruth", 0)
        if subdivs == 0:
            raise CfgError(f"{s.where(self.path)}: subdivisions=0 (upstream divides by it)")
        self.batch = _cdiv(batch, subdivs) * self.time_steps
        self.subdivisions = subdivs
        self.random = s.get_int("random", 0)
        if s.get_int("adam", 0):
            for key, default in (("B1", .9), ("B2", .999), ("eps", .0000001)):
                s.get_float(key, default)
        self.height = s.get_int("height", 0)
        self.width = s.get_int("width", 0)
        self.channels = s.get_int("channels", 0)
        self.inputs = s.get_int("inputs", self.height * self.width * self.channels)
        for key in ("max_crop", "min_crop", "center"):
            s.get_int(key, 0)
        for key in ("max_ratio", "min_ratio", "clip", "angle", "aspect", "saturation", "exposure", "hue"):
            s.get_float(key, 0)
        if not self.inputs and not (self.height and self.width and self.channels):
            raise CfgError(f"{s.where(self.path)}: no input size (height, width, channels or inputs)")
        policy = s.get_str("policy", "constant")
        s.get_int("burn_in", 0)
        s.get_float("power", 4)
        if policy == "step":
            s.get_int("step", 1)
            s.get_float("scale", 1)
        elif policy == "steps":
            if s.find("steps") is None or s.find("scales") is None:
                raise CfgError(f"{s.where(self.path)}: the steps policy needs steps and scales")
        elif policy == "exp":
            s.get_float("gamma", 1)
        elif policy == "sigmoid":
            s.get_float("gamma", 1)
            s.get_int("step", 1)
        s.get_int("max_batches", 0)
        self.net_options = {o.key: o.value for o in s.options}

    def _file(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else self.base_dir / p

    def _parse_layer(self, s: Section, p: _Params, index: int) -> LayerInfo:
        if "\r" in s.type:
            raise CfgError(f"{s.where(self.path)}: the section name ends in a carriage return (CRLF line "
                           "endings); upstream keeps the \\r and does not recognise the section")
        kind = _BY_SECTION.get(s.type)
        if kind is None:
            raise CfgError(f"{s.where(self.path)}: unknown section type {s.type} (layer {index}); "
                           f"upstream knows {', '.join(sorted(_BY_SECTION))}")
        info = LayerInfo(index=index, type=kind, line=s.line, batch=p.batch)
        try:
            getattr(self, f"_l_{kind}")(s, p, info)
        except CfgError:
            raise
        except (ValueError, TypeError, ZeroDivisionError) as exc:
            msg = "a division by zero in upstream's size arithmetic" if isinstance(exc, ZeroDivisionError) else exc
            raise CfgError(f"{s.where(self.path)}, layer {index}: {msg}") from exc
        for key in COMMON_OPTIONS:
            s.find(key)
        return info

    def _need_image(self, s: Section, p: _Params, what: str) -> None:
        if not (p.h and p.w and p.c):
            raise CfgError(f"{s.where(self.path)}: the layer before this {what} layer must output an image")

    def _earlier(self, s: Section, key: str, index: int, p: _Params) -> int:
        if index < 0:
            index = p.index + index
        if not 0 <= index < p.index:
            raise CfgError(f"{s.where(self.path)}: {key} refers to layer {index}, which is not an earlier layer "
                           f"(0..{p.index - 1})")
        return index

    # ---- one method per layer type: upstream's parse_* and make_*_layer ------

    def _l_convolutional(self, s: Section, p: _Params, l: LayerInfo) -> None:
        n, size, stride = s.get_int("filters", 1), s.get_int("size", 1), s.get_int("stride", 1)
        pad, padding = s.get_int("pad", 0), s.get_int("padding", 0)
        groups = s.get_int("groups", 1)
        if pad:
            padding = _cdiv(size, 2)
        s.get_str("activation", "logistic")
        self._need_image(s, p, "convolutional")
        for key in ("batch_normalize", "binary", "xnor", "flipped"):
            s.get_int(key, 0)
        s.get_float("dot", 0)
        l.w, l.h, l.c = p.w, p.h, p.c
        l.out_h = _cdiv(p.h + 2 * padding - size, stride) + 1
        l.out_w = _cdiv(p.w + 2 * padding - size, stride) + 1
        l.out_c = n
        l.outputs = l.out_h * l.out_w * l.out_c
        l.inputs = l.w * l.h * l.c
        l.params.update(n=n, size=size, stride=stride, pad=padding, groups=groups)

    def _l_deconvolutional(self, s: Section, p: _Params, l: LayerInfo) -> None:
        n, size, stride = s.get_int("filters", 1), s.get_int("size", 1), s.get_int("stride", 1)
        s.get_str("activation", "logistic")
        self._need_image(s, p, "deconvolutional")
        s.get_int("batch_normalize", 0)
        pad, padding = s.get_int("pad", 0), s.get_int("padding", 0)
        if pad:
            padding = _cdiv(size, 2)
        l.w, l.h, l.c = p.w, p.h, p.c
        l.out_h = (p.h - 1) * stride + size - 2 * padding
        l.out_w = (p.w - 1) * stride + size - 2 * padding
        l.out_c = n
        l.outputs = l.out_w * l.out_h * l.out_c
        l.inputs = l.w * l.h * l.c
        l.params.update(n=n, size=size, stride=stride, pad=padding)

    def _l_local(self, s: Section, p: _Params, l: LayerInfo) -> None:
        n, size = s.get_int("filters", 1), s.get_int("size", 1)
        stride, pad = s.get_int("stride", 1), s.get_int("pad", 0)
        s.get_str("activation", "logistic")
        self._need_image(s, p, "local")
        l.w, l.h, l.c = p.w, p.h, p.c
        h = p.h - size if not pad else p.h - 1
        w = p.w - size if not pad else p.w - 1
        l.out_h, l.out_w, l.out_c = _cdiv(h, stride) + 1, _cdiv(w, stride) + 1, n
        l.outputs = l.out_h * l.out_w * l.out_c
        l.inputs = l.w * l.h * l.c
        l.params.update(n=n, size=size, stride=stride, pad=pad)

    def _same_shape(self, p: _Params, l: LayerInfo) -> None:
        l.w = l.out_w = p.w
        l.h = l.out_h = p.h
        l.c = l.out_c = p.c

    def _l_activation(self, s: Section, p: _Params, l: LayerInfo) -> None:
        s.get_str("activation", "linear")
        l.inputs = l.outputs = p.inputs
        self._same_shape(p, l)

    def _l_logistic(self, s: Section, p: _Params, l: LayerInfo) -> None:
        l.inputs = l.outputs = p.inputs
        self._same_shape(p, l)

    _l_l2norm = _l_logistic

    def _recurrent(self, s: Section, p: _Params, l: LayerInfo, output: int) -> None:
        if p.time_steps == 0:
            raise ZeroDivisionError
        l.batch = _cdiv(p.batch, p.time_steps)
        l.inputs, l.outputs = p.inputs, output

    def _l_rnn(self, s: Section, p: _Params, l: LayerInfo) -> None:
        output = s.get_int("output", 1)
        s.get_str("activation", "logistic")
        s.get_int("batch_normalize", 0)
        self._recurrent(s, p, l, output)
        s.get_int("shortcut", 0)

    def _l_gru(self, s: Section, p: _Params, l: LayerInfo) -> None:
        output = s.get_int("output", 1)
        s.get_int("batch_normalize", 0)
        self._recurrent(s, p, l, output)
        s.get_int("tanh", 0)

    def _l_lstm(self, s: Section, p: _Params, l: LayerInfo) -> None:
        output = s.get_int("output", 1)
        s.get_int("batch_normalize", 0)
        self._recurrent(s, p, l, output)

    def _l_crnn(self, s: Section, p: _Params, l: LayerInfo) -> None:
        output_filters = s.get_int("output_filters", 1)
        s.get_int("hidden_filters", 1)
        s.get_str("activation", "logistic")
        s.get_int("batch_normalize", 0)
        if p.time_steps == 0:
            raise ZeroDivisionError
        l.batch = _cdiv(p.batch, p.time_steps)
        l.w, l.h, l.c = p.w, p.h, p.c
        l.out_w, l.out_h, l.out_c = p.w, p.h, output_filters
        l.inputs = p.h * p.w * p.c
        l.outputs = l.out_h * l.out_w * l.out_c
        s.get_int("shortcut", 0)

    def _l_connected(self, s: Section, p: _Params, l: LayerInfo) -> None:
        output = s.get_int("output", 1)
        s.get_str("activation", "logistic")
        s.get_int("batch_normalize", 0)
        l.inputs, l.outputs = p.inputs, output
        l.w, l.h, l.c = 1, 1, p.inputs
        l.out_w, l.out_h, l.out_c = 1, 1, output

    def _l_softmax(self, s: Section, p: _Params, l: LayerInfo) -> None:
        groups = s.get_int("groups", 1)
        l.inputs = l.outputs = p.inputs
        s.get_float("temperature", 1)
        tree = s.get_str("tree")
        if tree is not None:
            l.params["tree"] = str(self._file(tree))
        l.w, l.h, l.c = p.w, p.h, p.c  # out_w/out_h/out_c stay 0, as upstream leaves them
        s.get_float("spatial", 0)
        s.get_int("noloss", 0)
        l.params.update(groups=groups)

    def _l_detection(self, s: Section, p: _Params, l: LayerInfo) -> None:
        coords, classes = s.get_int("coords", 1), s.get_int("classes", 1)
        s.get_int("rescore", 0)
        num, side = s.get_int("num", 1), s.get_int("side", 7)
        if side * side * ((1 + coords) * num + classes) != p.inputs:
            raise CfgError(f"{s.where(self.path)}: side*side*((1+coords)*num+classes) = "
                           f"{side * side * ((1 + coords) * num + classes)} but the previous layer outputs "
                           f"{p.inputs} (upstream asserts)")
        l.inputs = l.outputs = p.inputs
        l.w = l.h = side
        for key in ("softmax", "sqrt"):
            s.get_int(key, 0)
        s.get_int("max", 90)
        s.get_float("coord_scale", 1)
        s.get_int("forced", 0)
        for key in ("object_scale", "noobject_scale", "class_scale"):
            s.get_float(key, 1)
        s.get_float("jitter", .2)
        s.get_int("random", 0)
        s.get_int("reorg", 0)
        l.params.update(n=num, classes=classes, coords=coords, side=side,
                        truths=side * side * (1 + coords + classes))

    def _l_cost(self, s: Section, p: _Params, l: LayerInfo) -> None:
        s.get_str("type", "sse")
        s.get_float("scale", 1)
        l.inputs = l.outputs = p.inputs
        for key, default in (("ratio", 0), ("noobj", 1), ("thresh", 0)):
            s.get_float(key, default)

    def _l_crop(self, s: Section, p: _Params, l: LayerInfo) -> None:
        crop_h, crop_w = s.get_int("crop_height", 1), s.get_int("crop_width", 1)
        s.get_int("flip", 0)
        for key, default in (("angle", 0), ("saturation", 1), ("exposure", 1)):
            s.get_float(key, default)
        self._need_image(s, p, "crop")
        s.get_int("noadjust", 0)
        l.w, l.h, l.c = p.w, p.h, p.c
        l.out_w, l.out_h, l.out_c = crop_w, crop_h, p.c
        l.inputs = p.w * p.h * p.c
        l.outputs = l.out_w * l.out_h * l.out_c
        s.get_float("shift", 0)

    def _l_reorg(self, s: Section, p: _Params, l: LayerInfo) -> None:
        stride = s.get_int("stride", 1)
        reverse, flatten, extra = s.get_int("reverse", 0), s.get_int("flatten", 0), s.get_int("extra", 0)
        self._need_image(s, p, "reorg")
        l.w, l.h, l.c = p.w, p.h, p.c
        if reverse:
            l.out_w, l.out_h, l.out_c = p.w * stride, p.h * stride, _cdiv(p.c, stride * stride)
        else:
            l.out_w, l.out_h, l.out_c = _cdiv(p.w, stride), _cdiv(p.h, stride), p.c * stride * stride
        l.outputs = l.out_h * l.out_w * l.out_c
        l.inputs = p.h * p.w * p.c
        if extra:
            l.out_w = l.out_h = l.out_c = 0
            l.outputs = l.inputs + extra
        l.params.update(stride=stride, reverse=reverse, flatten=flatten, extra=extra)

    def _l_maxpool(self, s: Section, p: _Params, l: LayerInfo) -> None:
        stride = s.get_int("stride", 1)
        size = s.get_int("size", stride)
        padding = s.get_int("padding", size - 1)
        self._need_image(s, p, "maxpool")
        l.w, l.h, l.c = p.w, p.h, p.c
        l.out_w = _cdiv(p.w + padding - size, stride) + 1
        l.out_h = _cdiv(p.h + padding - size, stride) + 1
        l.out_c = p.c
        l.outputs = l.out_h * l.out_w * l.out_c
        l.inputs = p.h * p.w * p.c
        l.params.update(size=size, stride=stride, pad=padding)

    def _l_avgpool(self, s: Section, p: _Params, l: LayerInfo) -> None:
        self._need_image(s, p, "avgpool")
        l.w, l.h, l.c = p.w, p.h, p.c
        l.out_w, l.out_h, l.out_c = 1, 1, p.c
        l.outputs = p.c
        l.inputs = p.h * p.w * p.c

    def _l_dropout(self, s: Section, p: _Params, l: LayerInfo) -> None:
        s.get_float("probability", .5)
        l.inputs = l.outputs = p.inputs
        l.out_w, l.out_h, l.out_c = p.w, p.h, p.c

    def _l_normalization(self, s: Section, p: _Params, l: LayerInfo) -> None:
        for key, default in (("alpha", .0001), ("beta", .75), ("kappa", 1)):
            s.get_float(key, default)
        s.get_int("size", 5)
        self._same_shape(p, l)
        l.inputs = l.outputs = p.w * p.h * p.c

    def _l_batchnorm(self, s: Section, p: _Params, l: LayerInfo) -> None:
        self._same_shape(p, l)
        l.inputs = l.outputs = p.w * p.h * p.c

    def _l_shortcut(self, s: Section, p: _Params, l: LayerInfo) -> None:
        value = s.find("from")
        if value is None:
            raise CfgError(f"{s.where(self.path)}: [shortcut] needs from= (upstream crashes without it)")
        index = self._earlier(s, "from", c_atoi(value), p)
        src = self.layers[index]
        # make_shortcut_layer: w, h, c are the source's, the output keeps the
        # previous layer's shape.
        l.w, l.h, l.c = src.out_w, src.out_h, src.out_c
        l.out_w, l.out_h, l.out_c = p.w, p.h, p.c
        l.outputs = l.inputs = p.w * p.h * p.c
        s.get_str("activation", "linear")
        s.get_float("alpha", 1)
        s.get_float("beta", 1)
        l.params.update(index=index)

    def _l_upsample(self, s: Section, p: _Params, l: LayerInfo) -> None:
        stride = s.get_int("stride", 2)
        l.w, l.h, l.c = p.w, p.h, p.c
        l.out_w, l.out_h, l.out_c = p.w * stride, p.h * stride, p.c
        if stride < 0:
            stride = -stride
            l.out_w, l.out_h = _cdiv(p.w, stride), _cdiv(p.h, stride)
        l.outputs = l.out_w * l.out_h * l.out_c
        l.inputs = p.w * p.h * p.c
        s.get_float("scale", 1)
        l.params.update(stride=stride)

    def _l_route(self, s: Section, p: _Params, l: LayerInfo) -> None:
        value = s.find("layers")
        if value is None:
            raise CfgError(f"{s.where(self.path)}: [route] needs layers= (upstream crashes without it)")
        idx = [self._earlier(s, "layers", i, p) for i in int_list(value)]
        first = self.layers[idx[0]]
        l.out_w, l.out_h, l.out_c = first.out_w, first.out_h, first.out_c
        for i in idx[1:]:
            nxt = self.layers[i]
            if nxt.out_w == first.out_w and nxt.out_h == first.out_h:
                l.out_c += nxt.out_c
            else:
                l.out_h = l.out_w = l.out_c = 0
        l.outputs = l.inputs = sum(self.layers[i].outputs for i in idx)
        l.params.update(n=len(idx), input_layers=idx, input_sizes=[self.layers[i].outputs for i in idx])

    def _l_iseg(self, s: Section, p: _Params, l: LayerInfo) -> None:
        classes, ids = s.get_int("classes", 20), s.get_int("ids", 32)
        l.w = l.out_w = p.w
        l.h = l.out_h = p.h
        l.c = l.out_c = classes + ids
        l.outputs = l.inputs = p.h * p.w * l.c
        if l.outputs != p.inputs:
            raise CfgError(f"{s.where(self.path)}: h*w*(classes+ids) = {l.outputs} but the previous layer "
                           f"outputs {p.inputs} (upstream asserts)")
        l.params.update(truths=90 * (p.w * p.h + 1))

    # ---- the loss layers --------------------------------------------------------

    def _check_inputs(self, s: Section, l: LayerInfo, p: _Params, what: str) -> None:
        if l.outputs != p.inputs:
            raise CfgError(
                f"{s.where(self.path)}: {what} = {l.outputs} values per image, but the previous layer outputs "
                f"{p.inputs} ({p.c}x{p.h}x{p.w}); upstream asserts l.outputs == params.inputs")

    def _l_yolo(self, s: Section, p: _Params, l: LayerInfo) -> None:
        classes = s.get_int("classes", 20)
        total = s.get_int("num", 1)
        mask_s = s.find("mask")
        mask = int_list(mask_s) if mask_s is not None else None
        n = len(mask) if mask is not None else total
        l.w = l.out_w = p.w
        l.h = l.out_h = p.h
        l.c = l.out_c = n * (classes + 4 + 1)
        l.outputs = l.inputs = p.h * p.w * l.c
        self._check_inputs(s, l, p, f"n*(classes+5)*w*h with n={n}, classes={classes}")
        max_boxes = s.get_int("max", 90)
        jitter = s.get_float("jitter", .2)
        ignore_thresh = s.get_float("ignore_thresh", .5)
        truth_thresh = s.get_float("truth_thresh", 1)
        random = s.get_int("random", 0)
        map_file = s.get_str("map")
        cmap = read_map(self._file(map_file)) if map_file is not None else None
        anchors_s = s.find("anchors")
        anchors = float_list(anchors_s) if anchors_s is not None else None
        l.loss = YoloLayer(classes=classes, anchors=anchors, total=total, mask=mask, ignore_thresh=ignore_thresh,
                           truth_thresh=truth_thresh, max_boxes=max_boxes, map=cmap, jitter=jitter, random=random)
        l.params.update(n=n, classes=classes, total=total, truths=90 * 5, map_file=map_file)

    def _l_region(self, s: Section, p: _Params, l: LayerInfo) -> None:
        coords, classes, num = s.get_int("coords", 4), s.get_int("classes", 20), s.get_int("num", 1)
        l.w = l.out_w = p.w
        l.h = l.out_h = p.h
        l.c = l.out_c = num * (classes + coords + 1)
        l.outputs = l.inputs = p.h * p.w * l.c
        self._check_inputs(s, l, p, f"num*(classes+coords+1)*w*h with num={num}, classes={classes}, coords={coords}")
        log, sqrt = s.get_int("log", 0), s.get_int("sqrt", 0)
        softmax, background = s.get_int("softmax", 0), s.get_int("background", 0)
        max_boxes = s.get_int("max", 30)
        jitter = s.get_float("jitter", .2)
        rescore = s.get_int("rescore", 0)
        thresh = s.get_float("thresh", .5)
        classfix, absolute, random = s.get_int("classfix", 0), s.get_int("absolute", 0), s.get_int("random", 0)
        coord_scale, object_scale = s.get_float("coord_scale", 1), s.get_float("object_scale", 1)
        noobject_scale, mask_scale = s.get_float("noobject_scale", 1), s.get_float("mask_scale", 1)
        class_scale = s.get_float("class_scale", 1)
        bias_match = s.get_int("bias_match", 0)
        tree_file, map_file = s.get_str("tree"), s.get_str("map")
        tree = self._file(tree_file) if tree_file is not None else None
        cmap = read_map(self._file(map_file)) if map_file is not None else None
        anchors_s = s.find("anchors")
        anchors = float_list(anchors_s) if anchors_s is not None else None
        if background not in (0, 1):
            raise CfgError(f"{s.where(self.path)}: background={background}; upstream adds it to the softmax's "
                           "class count, so only 0 and 1 are safe")
        l.loss = RegionLayer(
            classes=classes, anchors=anchors, coords=coords, num=num, softmax=softmax != 0,
            background=background != 0, rescore=rescore != 0, bias_match=bias_match != 0, thresh=thresh,
            coord_scale=coord_scale, object_scale=object_scale, noobject_scale=noobject_scale,
            class_scale=class_scale, mask_scale=mask_scale, max_boxes=max_boxes, map=cmap, tree=tree,
            jitter=jitter, random=random, log=log, sqrt=sqrt, absolute=absolute, classfix=classfix)
        l.params.update(n=num, classes=classes, coords=coords, truths=30 * (coords + 1), map_file=map_file,
                        tree_file=tree_file, flags=dict(softmax=softmax, rescore=rescore, bias_match=bias_match))

    # ---- what users read -----------------------------------------------------------

    @property
    def shapes(self) -> List[Tuple[int, int, int]]:
        """Every layer's (out_c, out_h, out_w), as upstream's parser computes them."""
        return [l.shape for l in self.layers]

    @property
    def loss_layers(self) -> List[Tuple[int, LossLayer]]:
        """[(darknet layer index, YoloLayer | RegionLayer)] in layer order."""
        return [(l.index, l.loss) for l in self.layers if l.loss is not None]

    def __repr__(self) -> str:
        kinds = ", ".join(f"{i}:{l.kind}" for i, l in self.loss_layers)
        return (f"Network({self.path!r}, {len(self.layers)} layers, {self.width}x{self.height}x{self.channels}, "
                f"batch={self.batch}, subdivisions={self.subdivisions}, loss layers [{kinds}])")

    def forward(self, inputs: Union[Mapping[int, np.ndarray], Sequence[np.ndarray]], truth: Any, *,
                seen: int = 0, train: bool = True) -> NetworkResult:
        """Every loss layer's forward on its input, and calc_network_cost.

        ``inputs``: {layer index: x} or a list in layer order, each x of
        shape (B, c, h, w) with (c, h, w) the shape the layer receives.
        ``truth``: as one layer takes it (packed, or a list of per-image
        (k, 5) arrays).  ``seen``: ``*net.seen`` during this forward
        (train_network adds the batch to it before the forward).
        """
        losses = self.loss_layers
        if not losses:
            raise ValueError(f"{self.path}: the network has no [yolo] or [region] layer")
        other = [l for l in self.layers if l.type in COST_TYPES and l.loss is None]
        if other:
            raise ValueError(
                f"{self.path}: calc_network_cost would average in the cost of "
                f"{', '.join(f'[{l.type}] layer {l.index}' for l in other)}, whose loss this package does not "
                "reproduce")
        if len({type(layer) for _, layer in losses}) > 1:
            raise ValueError(f"{self.path}: [yolo] and [region] layers read net.truth with different strides; "
                             "a network mixing them is not supported")
        if isinstance(inputs, Mapping):
            missing = [i for i, _ in losses if i not in inputs]
            extra = sorted(set(inputs) - {i for i, _ in losses})
            if missing or extra:
                raise ValueError(f"inputs must have one array per loss layer {[i for i, _ in losses]}: "
                                 f"missing {missing}, unexpected {extra}")
            xs = [inputs[i] for i, _ in losses]
        elif isinstance(inputs, (list, tuple)):
            if len(inputs) != len(losses):
                raise ValueError(f"inputs lists {len(inputs)} arrays for {len(losses)} loss layers "
                                 f"{[i for i, _ in losses]}")
            xs = list(inputs)
        else:
            raise TypeError("inputs must be a dict {layer index: array} or a list in layer order")
        results: Dict[int, LossResult] = {}
        for (index, layer), x in zip(losses, xs):
            info = self.layers[index]
            want = (info.c, info.h, info.w)
            if not isinstance(x, np.ndarray) or x.ndim != 4 or x.shape[1:] != want:
                got = x.shape if isinstance(x, np.ndarray) else type(x).__name__
                raise ValueError(f"layer {index} ([{info.type}], {self.path} line {info.line}) expects input "
                                 f"of shape (B, {want[0]}, {want[1]}, {want[2]}), got {got}")
            if isinstance(layer, YoloLayer):
                results[index] = layer.forward(x, truth, net_w=self.width, net_h=self.height, train=train,
                                               index=index)
            else:
                results[index] = layer.forward(x, truth, seen=seen, train=train)
        return NetworkResult(layers=results, cost=calc_network_cost([r.cost for r in results.values()]))


EXAMPLES = ("tiny-yolov3", "tiny-yolov2")


def example_cfg(name: str = "tiny-yolov3") -> Path:
    """The path of a cfg bundled with the package (ours, not upstream's):
    ``"tiny-yolov3"`` (two [yolo] scales, 128x128, 3 classes) or
    ``"tiny-yolov2"`` ([reorg] and [region], 96x96, 4 classes)."""
    if name not in EXAMPLES:
        raise ValueError(f"no bundled cfg {name!r}; there are {', '.join(EXAMPLES)}")
    return Path(__file__).resolve().parent / "examples" / f"{name}.cfg"


def calc_network_cost(costs: Sequence[Any]) -> np.float32:
    """calc_network_cost: a float sum of the layers' costs in layer order,
    divided by their count in float (0 layers: 0/0 = NaN)."""
    total = np.float32(0)
    for c in costs:
        total = np.float32(total + np.float32(c))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.float32(total / np.float32(len(costs)))


def train_loss(results: Sequence[Union[NetworkResult, Any]], batch: int) -> np.float32:
    """What train_network returns over its subdivisions: the float sum of
    the per-call network costs, divided by n*batch in float (n = number of
    calls, i.e. subdivisions)."""
    batch = _validate.integer("batch", batch, minimum=1)
    if not results:
        raise ValueError("train_loss needs at least one forward result")
    total = np.float32(0)
    for r in results:
        total = np.float32(total + np.float32(r.cost if isinstance(r, NetworkResult) else r))
    return np.float32(total / np.float32(len(results) * batch))
