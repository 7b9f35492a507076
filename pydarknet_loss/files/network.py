"""From a darknet .cfg to the loss layers and the cost darknet prints.

A cfg cannot say which darknet it is for: ``Network.from_cfg(path,
flavor="pjreddie" | "alexeyab" | "hankai")``.  Each darknet's parse and shape rules
live in their own module, ``files/flavors/pjreddie.py`` and
``files/flavors/alexeyab.py``: a table of one rule per layer type (upstream's
parse_* and make_*_layer with C integer arithmetic) that ``Network`` walks.
Every option a parse_* reads takes upstream's default when absent, and
options it never reads are reported as unused (upstream warns too).  Only
[yolo] and [region] compute anything here: the other layers are parsed for
their shapes alone.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .. import _validate
from .cfg import CfgError, PathLike, Section, parse_cfg_text, unused_fields
from .flavors import FLAVORS, Flavor, LayerInfo, get_flavor
from .flavors._common import INT_MAX, Params
from ..layers import alexeyab as _ab
from ..layers.pjreddie import RegionLayer, RegionResult, YoloLayer, YoloResult

LossLayer = Union[YoloLayer, RegionLayer, _ab.YoloLayer, Any]  # Any: alexeyab.RegionLayer, DetectionLayer (issue 23)
LossResult = Union[YoloResult, RegionResult, _ab.YoloResult, Any]

class DarknetCfgWarning(UserWarning):
    """What upstream's parser would print about a cfg: unused fields, skipped lines."""


@dataclass(frozen=True)
class NetworkResult:
    """One forward over a network's loss layers."""

    layers: Dict[int, LossResult]  #: per darknet layer index
    cost: np.float32  #: *net.cost as calc_network_cost (get_network_cost) leaves it

    def lines(self) -> List[str]:
        """Upstream's printed statistics lines, in layer order."""
        return [r.stats.line() for r in self.layers.values() if r.stats is not None]


class Network:
    """A darknet network read from a .cfg, with its loss layers.

    ``Network.from_cfg(path, base_dir=None, flavor="pjreddie")``; ``map``/
    ``tree`` files are read relative to ``base_dir`` (default: the cfg's
    folder).  ``flavor`` says which darknet the cfg is for: ``"pjreddie"``
    (f6afaab: [yolo] is pjreddie.YoloLayer, [region] RegionLayer),
    ``"alexeyab"`` (59596d7: [yolo] is alexeyab.YoloLayer) or ``"hankai"``
    (hank-ai f684e1d7: hankai.YoloLayer, read by hank-ai's stricter parser,
    whose fatal errors are CfgErrors).
    """

    # set by the flavor's parse_net ([net])
    batch: int  #: batch/subdivisions*time_steps (AlexeyAB: clamped to at least 1)
    subdivisions: int
    time_steps: int
    height: int
    width: int
    channels: int
    inputs: int
    random: int
    outputs: int  #: the network's output size, as upstream computes it
    truths: int  #: net.truths
    upstream_net: Dict[str, Any]  #: (alexeyab) the [net] fields upstream's JSON records

    def __init__(self, sections: List[Section], *, path: str = "<cfg>",
                 base_dir: Optional[PathLike] = None, flavor: str = "pjreddie") -> None:
        self.flavor: Flavor = get_flavor(flavor)
        self.path = path
        self.base_dir = Path(base_dir) if base_dir is not None else Path(path).resolve().parent
        if not sections:
            raise CfgError(f"{path}: the cfg has no sections")
        net = sections[0]
        if net.type not in ("[net]", "[network]"):
            raise CfgError(f"{net.where(path)}: the first section must be [net] or [network]")
        self.flavor.parse_net(self, net)
        self.net_options = {o.key: o.value for o in net.options}
        self.layers: List[LayerInfo] = []
        p = Params(self.batch, self.inputs, self.height, self.width, self.channels, self.time_steps)
        for count, s in enumerate(sections[1:]):
            p.index = count
            info = self._parse_layer(s, p, count)
            self.layers.append(info)
            p.h, p.w, p.c, p.inputs = info.out_h, info.out_w, info.out_c, info.outputs
        self.flavor.finish(self)  # what parse_network_cfg does after the last layer (outputs, truths, ...)
        self.unused = unused_fields(sections[1:])
        for line, text in self.unused:
            warnings.warn(f"{path}, line {line}: unused field '{text}' (upstream warns too)",
                          DarknetCfgWarning, stacklevel=3)

    # ---- construction -------------------------------------------------------

    @classmethod
    def from_cfg(cls, path: PathLike, base_dir: Optional[PathLike] = None, flavor: str = "pjreddie") -> "Network":
        get_flavor(flavor)
        p = _validate.path_str(path, "cfg file")
        try:
            text = _validate.read_text(p, "cfg file", error=CfgError)  # stops at a NUL byte
        except ValueError as exc:  # a FIFO or device: never opened
            if isinstance(exc, CfgError):
                raise
            raise CfgError(f"{exc} (a darknet .cfg)") from None
        return cls.from_text(text, path=p, base_dir=base_dir, flavor=flavor)

    @classmethod
    def from_text(cls, text: str, *, path: str = "<cfg>", base_dir: Optional[PathLike] = None,
                  flavor: str = "pjreddie") -> "Network":
        reader = get_flavor(flavor).read_text or parse_cfg_text
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sections = reader(text, path)
        for w in caught:  # re-issue where the caller can see them
            warnings.warn(w.message, w.category, stacklevel=3)
        return cls(sections, path=path, base_dir=base_dir if base_dir is not None else
                   (Path(path).resolve().parent if path != "<cfg>" else Path.cwd()), flavor=flavor)

    # ---- what the rules call -----------------------------------------------------

    def file(self, value: str) -> Path:
        """A file named in the cfg (map=, tree=), relative to base_dir."""
        p = Path(value)
        return p if p.is_absolute() else self.base_dir / p

    def earlier(self, s: Section, key: str, index: int, p: Params) -> int:
        """A layer index a section refers to (negative: relative), which must be an earlier layer."""
        if index < 0:
            index = p.index + index
        if not 0 <= index < p.index:
            raise CfgError(f"{s.where(self.path)}: {key} refers to layer {index}, which is not an earlier layer "
                           f"(0..{p.index - 1})")
        return index

    def _parse_layer(self, s: Section, p: Params, index: int) -> LayerInfo:
        where = f"{s.where(self.path)}, layer {index}"
        if "\r" in s.type:
            raise CfgError(f"{s.where(self.path)}: the section name ends in a carriage return (CRLF line "
                           "endings); upstream keeps the \\r and does not recognise the section")
        kind = self.flavor.sections.get(s.type)
        if kind is None:
            other = FLAVORS.get(self.flavor.other_flavor)
            hint = (f". {s.type} is a section of {other.name}'s darknet: read the cfg with flavor={other.name!r}"
                    if other is not None and s.type in other.sections else "")
            raise CfgError(f"{s.where(self.path)}: unknown section type {s.type} (layer {index}); "
                           f"{self.flavor.name}'s darknet knows {', '.join(sorted(self.flavor.sections))}{hint}")
        rule = self.flavor.rules.get(kind)
        if rule is None:
            raise CfgError(f"{where}: {s.type} ({self.flavor.upstream}): "
                           f"{self.flavor.unmodelled.get(kind, 'not modelled by this package')}")
        info = LayerInfo(index=index, type=kind, line=s.line, batch=p.batch)
        try:
            rule(self, s, p, info)
        except (ValueError, TypeError, ZeroDivisionError) as exc:
            if isinstance(exc, CfgError):
                raise
            msg = "a division by zero in upstream's size arithmetic" if isinstance(exc, ZeroDivisionError) else exc
            raise CfgError(f"{where}: {msg}{s.options_note()}") from exc
        after = self.flavor.after_layer(s)
        if after:
            info.params["after"] = after
        try:
            self._check_sizes(s, info, where)
        except CfgError as exc:
            # A size out of range follows from the options together: name them.
            raise CfgError(f"{exc}{s.options_note()}") from None
        self._check_other_flavor(s, kind, where)
        return info

    def _check_sizes(self, s: Section, l: LayerInfo, where: str) -> None:
        """What upstream would size from garbage, or allocate absurdly: refused
        here, before anything is allocated."""
        dims = dict(w=l.w, h=l.h, c=l.c, out_w=l.out_w, out_h=l.out_h, out_c=l.out_c)
        bad = {k: v for k, v in dims.items() if v < 0}
        if bad or l.outputs <= 0 or l.inputs < 0:
            shape = f"{l.out_c}x{l.out_h}x{l.out_w}"
            raise CfgError(f"{where}: this [{l.type}] layer's output would be {shape} ({l.outputs} values per "
                           f"image, input {l.c}x{l.h}x{l.w}); upstream would size the rest of the network from "
                           "that. Is a size, stride or filter count wrong, or the layer larger than its input?")
        for name, v in (("outputs", l.outputs), ("inputs", l.inputs), ("batch*outputs", l.batch * l.outputs)):
            if v > INT_MAX:
                raise CfgError(f"{where}: this [{l.type}] layer would hold {v} values ({name}: output "
                               f"{l.out_c}x{l.out_h}x{l.out_w}, batch {l.batch}); upstream counts them in a C int "
                               f"(at most {INT_MAX}) and would overflow or allocate an absurd size")

    def _check_other_flavor(self, s: Section, kind: str, where: str) -> None:
        other = self.flavor.other_options.get(kind)
        if not other:
            return
        foreign = [o for o in s.unused() if o.key in other]
        if foreign:
            o = foreign[0]
            raise CfgError(
                f"{self.path}, line {o.line} ({s.type}): '{o.key}' is an option of the other darknet's parser "
                f"({self.flavor.other_flavor}), which {self.flavor.upstream} never reads: this cfg was written for "
                f"{self.flavor.other_flavor}'s darknet, whose loss differs. Read it with "
                f"flavor={self.flavor.other_flavor!r}")

    def upstream_fields(self) -> Dict[str, Any]:
        """(alexeyab) What upstream's parse_network_cfg leaves, in the shared
        golden set's cfg JSON form: [net] fields, every layer's sizes and
        parse_yolo's fields."""
        if self.flavor.upstream_fields is None:
            raise ValueError(f"upstream_fields() is the alexeyab flavor's JSON form (this network is "
                             f"{self.flavor.name}'s)")
        return self.flavor.upstream_fields(self)

    # ---- what users read -----------------------------------------------------------

    @property
    def shapes(self) -> List[Tuple[int, int, int]]:
        """Every layer's (out_c, out_h, out_w), as upstream's parser computes them."""
        return [l.shape for l in self.layers]

    @property
    def loss_layers(self) -> List[Tuple[int, LossLayer]]:
        """[(darknet layer index, loss layer)] in layer order: YoloLayer | RegionLayer (pjreddie),
        alexeyab.YoloLayer (alexeyab)."""
        return [(l.index, l.loss) for l in self.layers if l.loss is not None]

    def __repr__(self) -> str:
        kinds = ", ".join(f"{i}:{l.kind}" for i, l in self.loss_layers)
        return (f"Network({self.path!r}, flavor={self.flavor.name!r}, {len(self.layers)} layers, "
                f"{self.width}x{self.height}x{self.channels}, "
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
            raise ValueError(f"{self.path}: the network has no [yolo] or [region] layer (nor [detection])")
        other = [l for l in self.layers if l.type in self.flavor.cost_types and l.loss is None]
        if other:
            raise ValueError(
                f"{self.path}: calc_network_cost would average in the cost of "
                f"{', '.join(f'[{l.type}] layer {l.index}' for l in other)}, whose loss this package does not "
                "reproduce")
        if len({type(layer) for _, layer in losses}) > 1:
            raise ValueError(f"{self.path}: [yolo] and [region] layers read net.truth with different strides; "
                             "a network mixing them is not supported")
        if self.flavor.name in ("alexeyab", "hankai") and len({layer.max_boxes for _, layer in losses}) > 1:
            raise ValueError(f"{self.path}: the [yolo] layers have different max= ("
                             f"{sorted({layer.max_boxes for _, layer in losses})}): each reads net.truth with "
                             "its own image stride max*6, so all but one read other images' rows; not supported")
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
            if info.type == "detection" and isinstance(x, np.ndarray) and x.ndim in (2, 4) and \
                    int(np.prod(x.shape[1:])) == info.inputs:  # issue 23: [detection] reads a flat buffer
                results[index] = self.flavor.forward_loss(self, info, x, truth, seen, train)
                continue
            if not isinstance(x, np.ndarray) or x.ndim != 4 or x.shape[1:] != want:
                got = x.shape if isinstance(x, np.ndarray) else type(x).__name__
                raise ValueError(f"layer {index} ([{info.type}], {self.path} line {info.line}) expects input "
                                 f"of shape (B, {want[0]}, {want[1]}, {want[2]}), got {got}")
            results[index] = self.flavor.forward_loss(self, info, x, truth, seen, train)
        return NetworkResult(layers=results, cost=calc_network_cost([r.cost for r in results.values()]))

    def train_loss(self, results: Sequence[Union[NetworkResult, Any]]) -> np.float32:
        """What train_network returns over this network's subdivisions (one
        forward result per subdivision): the float sum of the network costs
        divided by n*batch.  The same formula in both darknets."""
        return train_loss(results, batch=self.batch)


EXAMPLES = ("tiny-yolov3", "tiny-yolov2")


def example_cfg(name: str = "tiny-yolov3") -> Path:
    """The path of a cfg bundled with the package (ours, not upstream's):
    ``"tiny-yolov3"`` (two [yolo] scales, 128x128, 3 classes) or
    ``"tiny-yolov2"`` ([reorg] and [region], 96x96, 4 classes)."""
    if name not in EXAMPLES:
        raise ValueError(f"no bundled cfg {name!r}; there are {', '.join(EXAMPLES)}")
    return Path(__file__).resolve().parent / "examples" / f"{name}.cfg"


def calc_network_cost(costs: Sequence[Any]) -> np.float32:
    """calc_network_cost (pjreddie) / get_network_cost (AlexeyAB), the same
    arithmetic: a float sum of the layers' costs in layer order, divided by
    their count in float (0 layers: 0/0 = NaN).  ``costs``: one number per
    loss layer (``result.cost``); an array of several values is refused."""
    if isinstance(costs, (str, bytes)) or not isinstance(costs, (Sequence, np.ndarray)):
        raise TypeError(f"costs must be a list of the loss layers' costs (numbers), got {type(costs).__name__}")
    total = np.float32(0)
    for i, c in enumerate(costs):
        total = np.float32(total + _validate.scalar_cost(f"costs[{i}]", c))
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
    for i, r in enumerate(results):
        total = np.float32(total + _validate.scalar_cost(f"results[{i}]", r.cost if isinstance(r, NetworkResult) else r))
    return np.float32(total / np.float32(len(results) * batch))
