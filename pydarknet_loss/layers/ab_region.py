"""AlexeyAB/darknet's ``[region]`` layer (YOLOv2 in AlexeyAB's and hank-ai's
repositories), bit-exact to upstream commit 59596d7 (src/region_layer.c, CPU build).

```python
from pydarknet_loss import alexeyab
layer = alexeyab.RegionLayer(classes=20, coords=4, num=5, anchors=[1.08, 1.19, 3.42, 4.41, 6.63, 11.38,
                             9.42, 5.11, 16.62, 10.52], softmax=1, rescore=1, object_scale=5, noobject_scale=1,
                             class_scale=1, coord_scale=1, thresh=.6)
res = layer.forward(x, truth, seen=64000)
res.output   # (B, H, W, C): upstream's flattened, channels-last buffer
res.delta    # (B, C, H, W): darknet's layout
res.cost, res.stats.line(), res.text
```

This is **not** pjreddie's ``[region]`` (``pydarknet_loss.RegionLayer``): the
output stays flattened, x and y are not activated in the buffer (the logistic
is applied inside ``get_region_box``), the x, y and objectness deltas carry
``logistic_gradient``, and ``focal_loss`` / ``classfix`` exist.  The C core is
``darknet_src/ab_region_layer.c``.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from .. import _native, _validate
from ._readonly import ReadOnly

AB_COMMIT = "59596d7880f6504768df41d6daa586f5cb2b932f"

TruthLike = Union[np.ndarray, Sequence[np.ndarray]]


def _fmt(v: float) -> str:
    """printf("%f") of a float promoted to double, as glibc writes it (NaN with its sign)."""
    if math.isnan(v):
        return "-nan" if math.copysign(1.0, v) < 0 else "nan"
    return "%f" % v


@dataclass(frozen=True)
class RegionStats:
    """The values upstream's forward_region_layer hands to printf (stdout),
    already divided (0/0 is NaN, printed "-nan")."""

    avg_iou: float
    avg_cat: float
    avg_obj: float
    avg_anyobj: float
    recall: float
    count: int
    class_count: int

    names = ("avg_iou", "class", "obj", "no_obj", "recall")  #: the golden cases' stats_names

    def line(self) -> str:
        """The printed line, character for character, without its newline."""
        return (f"Region Avg IOU: {_fmt(self.avg_iou)}, Class: {_fmt(self.avg_cat)}, Obj: {_fmt(self.avg_obj)}, "
                f"No Obj: {_fmt(self.avg_anyobj)}, Avg Recall: {_fmt(self.recall)},  count: {self.count}")

    def as_array(self) -> np.ndarray:
        """The printed %f values as float64, in print order."""
        return np.array([self.avg_iou, self.avg_cat, self.avg_obj, self.avg_anyobj, self.recall], dtype=np.float64)


@dataclass(frozen=True)
class RegionResult:
    """What one AlexeyAB forward_region_layer call leaves behind."""

    output: np.ndarray  #: l.output, float32 (B, H, W, C): flattened channels-last, as upstream's CPU build leaves it
    delta: np.ndarray  #: l.delta, float32 (B, C, H, W), darknet's layout (un-flattened before the cost)
    cost: np.float32  #: *l.cost = pow(mag_array(delta), 2)
    stats: Optional[RegionStats]  #: None when train=False
    count: int  #: the printed count; -1 when train=False
    warnings_text: str = ""  #: the stdout class-id warnings printed before the stats line

    @property
    def text(self) -> str:
        """Everything the layer prints during the call: the class-id
        warnings, then the stats line and its newline ("" when train=False)."""
        if self.stats is None:
            return ""
        return self.warnings_text + self.stats.line() + "\n"

    def output_nchw(self) -> np.ndarray:
        """output in darknet's (B, C, H, W) layout (a copy): what the GPU
        build's device buffer would hold, flatten undone."""
        return np.ascontiguousarray(self.output.transpose(0, 3, 1, 2))


def _int_opt(name: str, value: Any) -> int:
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    return _validate.integer(name, value, minimum=-2**31, maximum=2**31 - 1)


class RegionLayer(ReadOnly):
    """AlexeyAB's ``[region]`` layer, bit-exact to upstream 59596d7 (CPU build).

    The options are ``parse_region``'s cfg keys with its defaults, values
    already parsed.  ``anchors`` fills ``l.biases`` (2*num values; fewer
    leave upstream's 0.5, more are ignored as its parser ignores them).
    ``map`` is a class map (a list of ints, as read from the map file).
    ``max`` is the truth rows per image (the truth stride is max*6).
    Options upstream parses but the forward never reads (``log``, ``sqrt``,
    ``jitter``, ``resize``, ``absolute``, ``random``, ``mask_scale``) are
    accepted and kept.  ``tree=`` (the softmax tree) is not supported.

    Upstream behaviour reproduced on purpose (tests/test_more_layers.py names them):

    * ``output`` stays flattened channels-last ([B, H, W, C]); only objectness
      is activated in it (and the classes with ``softmax=1``);
    * a truth row whose class id is ``>= classes`` is skipped in both loops
      (a warning is printed in the second) *before* the ``x == 0`` test, so
      such a row does not end the list;
    * a truth no anchor overlaps writes its deltas at index 0 of the whole
      buffer (image 0's first cell), upstream's ``best_index = 0`` start;
    * objectness at entry 4 and classes from entry 5 whatever ``coords`` is;
    * ``focal_loss`` without ``softmax`` takes ``logf`` of raw outputs (NaN);
    * the ``classfix`` class deltas of the first loop use the raw class id
      (no map).

    * a negative class id (-1 and below; ids in (-1, 0) truncate to 0) is used
      as it is: no class matches it, every class gets its background delta.

    Refused (upstream would read or write outside its buffers): ``coords < 4``,
    a used truth row with a NaN/infinite value, a cell outside the grid, a
    class id past the map, below 0 with a map, mapped outside ``[0, classes)``,
    or below -5 with ``focal_loss`` (it reads ``output[index + 5 + id]``).
    """

    kind = "region_ab"  #: the golden cases' kind

    def __init__(self, classes: int = 20, coords: int = 4, num: int = 1, max: int = 200,
                 anchors: Union[Sequence[float], np.ndarray, None] = None, softmax: int = 0, focal_loss: int = 0,
                 rescore: int = 0, thresh: float = .5, classfix: int = 0, bias_match: int = 0,
                 coord_scale: float = 1, object_scale: float = 1, noobject_scale: float = 1,
                 class_scale: float = 1, mask_scale: float = 1, map: Optional[Sequence[int]] = None,
                 tree: Any = None, log: int = 0, sqrt: int = 0, jitter: float = .2, resize: float = 1.0,
                 absolute: int = 0, random: float = 0, batch: Optional[int] = None) -> None:
        self.classes = _validate.integer("classes", classes, minimum=1)
        self.coords = _validate.integer("coords", coords, minimum=1)
        if self.coords < 4:
            raise ValueError(f"coords = {self.coords}: AlexeyAB's [region] reads objectness at entry 4 and classes "
                             "from entry 5 whatever coords says, so coords < 4 reads and writes past each anchor's "
                             "entries (the last ones past the buffer); use coords >= 4")
        self.num = _validate.integer("num", num, minimum=1)
        self.max_boxes = _validate.integer("max", max, minimum=0, maximum=2**31 - 1)
        b = np.full(2 * self.num, 0.5, dtype=np.float32)
        if anchors is not None:
            values = _validate.anchors32(anchors, pairs=False)
            if len(values) > 2 * self.num:
                warnings.warn(f"anchors give {len(values)} values but num is {self.num}: upstream's parser reads only "
                              f"the first {2 * self.num}", _validate.DarknetQuirkWarning, stacklevel=2)
                values = values[:2 * self.num]
            b[:len(values)] = values
        self.anchors = _validate.frozen(b)
        self.softmax = _int_opt("softmax", softmax)
        self.focal_loss = _int_opt("focal_loss", focal_loss)
        self.rescore = _int_opt("rescore", rescore)
        self.bias_match = _int_opt("bias_match", bias_match)
        self.classfix = _int_opt("classfix", classfix)
        self.thresh = _validate.real32("thresh", thresh)
        self.coord_scale = _validate.real32("coord_scale", coord_scale)
        self.object_scale = _validate.real32("object_scale", object_scale)
        self.noobject_scale = _validate.real32("noobject_scale", noobject_scale)
        self.class_scale = _validate.real32("class_scale", class_scale)
        self.mask_scale = _validate.real32("mask_scale", mask_scale)
        if tree is not None:
            raise ValueError("tree= (a softmax tree) is not supported for AlexeyAB's [region] here; pjreddie's "
                             "pydarknet_loss.RegionLayer has it")
        self.map: Optional[np.ndarray] = None
        if map is not None:
            m = _validate.int_array("map", map)
            used = m[:self.classes]
            bad = np.flatnonzero((used < 0) | (used >= self.classes))
            if bad.size:
                i = int(bad[0])
                raise ValueError(f"map[{i}] = {int(m[i])} sends class {i} outside [0, {self.classes}) (upstream would "
                                 "index the class deltas out of bounds)")
            self.map = _validate.frozen(m.astype(np.int32))
        # parsed, never read by the forward pass
        self.log = _int_opt("log", log)
        self.sqrt = _int_opt("sqrt", sqrt)
        self.absolute = _int_opt("absolute", absolute)
        self.jitter = _validate.real32("jitter", jitter)
        self.resize = _validate.real32("resize", resize)
        self.random = _validate.real32("random", random)
        self.batch = None if batch is None else _validate.integer("batch", batch, minimum=1)
        self._freeze()

    @property
    def n(self) -> int:
        return self.num

    @property
    def channels(self) -> int:
        """C of the layer's input: num * (coords + 1 + classes)."""
        return self.num * (self.coords + 1 + self.classes)

    def __repr__(self) -> str:
        return (f"alexeyab.RegionLayer(classes={self.classes}, coords={self.coords}, num={self.num}, "
                f"softmax={self.softmax}, focal_loss={self.focal_loss}, classfix={self.classfix}, max={self.max_boxes})")

    def params(self) -> Dict[str, Any]:
        """The constructor's arguments, as held (float32 values as Python floats)."""
        f = float
        return dict(classes=self.classes, coords=self.coords, num=self.num, max=self.max_boxes,
                    anchors=[f(v) for v in self.anchors], softmax=self.softmax, focal_loss=self.focal_loss,
                    rescore=self.rescore, thresh=f(self.thresh), classfix=self.classfix, bias_match=self.bias_match,
                    coord_scale=f(self.coord_scale), object_scale=f(self.object_scale),
                    noobject_scale=f(self.noobject_scale), class_scale=f(self.class_scale),
                    mask_scale=f(self.mask_scale), map=None if self.map is None else self.map.tolist(),
                    log=self.log, sqrt=self.sqrt, jitter=f(self.jitter), resize=f(self.resize),
                    absolute=self.absolute, random=f(self.random))

    def _spec(self) -> _native.ABRegionSpec:
        return _native.ABRegionSpec(
            n=self.num, classes=self.classes, coords=self.coords, max_boxes=self.max_boxes, biases=self.anchors,
            map=self.map,
            scalars=dict(softmax=self.softmax, focal_loss=self.focal_loss, rescore=self.rescore,
                         bias_match=self.bias_match, classfix=self.classfix, thresh=self.thresh,
                         coord_scale=self.coord_scale, object_scale=self.object_scale,
                         noobject_scale=self.noobject_scale, class_scale=self.class_scale))

    def pack_truth(self, truth: TruthLike, batch: int) -> np.ndarray:
        """The (batch, max, 6) float32 buffer upstream reads (rows x, y, w, h, class_id, track_id)."""
        return _validate.ab_truth_buffer(truth, batch=batch, max_boxes=self.max_boxes)

    def forward(self, x: np.ndarray, truth: Optional[TruthLike] = None, *, train: bool = True, seen: int = 0,
                net_w: int = 416, net_h: int = 416, index: int = 0) -> RegionResult:
        return self._forward(x, truth, train=train, seen=seen, net_w=net_w, net_h=net_h, index=index)[0]

    def terms(self, x: np.ndarray, truth: TruthLike, *, seen: int = 0) -> Any:
        """A training forward and, for every delta it writes last, its term's target
        and scale (darknet's (B, C, H, W); scale NaN: no term): ``(result, target,
        scale)``.  x, y, objectness: ``delta = s*(t - σ(x))*σ'(x)``; w, h:
        ``s*(t - x)``; classes: ``s*(t - p)`` (p the softmax with ``softmax=1``, else
        the raw output).  The focal loss's class deltas have no term (NaN)."""
        res, call = self._forward(x, truth, train=True, seen=seen, net_w=416, net_h=416, index=0, targets=True)
        return res, call.target, call.target_scale

    def _forward(self, x: np.ndarray, truth: Optional[TruthLike], *, train: bool, seen: int, net_w: int,
                 net_h: int, index: int, targets: bool = False) -> Any:
        """Run upstream's forward_region_layer (CPU build).

        ``x``: float32 (B, num*(coords+1+classes), H, W), darknet's layout.
        ``truth``: float32 (B, max, 6) packed, or a list of B arrays (k, 5)
        or (k, 6).  ``seen``: ``*net.seen`` (below 12800 every anchor is
        pulled towards its prior with scale .01).  ``net_w``, ``net_h``,
        ``index`` are not read by this layer (accepted for symmetry).
        """
        x = _validate.layer_input(x, channels=self.channels,
                                  what=f"num={self.num} * (coords={self.coords} + 1 + classes={self.classes})")
        batch, _, h, w = x.shape
        if self.batch is not None and batch != self.batch:
            raise ValueError(f"x has batch {batch} but the layer was made with batch={self.batch}")
        if not isinstance(train, (bool, np.bool_)):
            raise TypeError(f"train must be a bool, got {type(train).__name__}")
        train = bool(train)
        seen = _validate.integer("seen", seen, minimum=0, maximum=_native.SIZE_MAX)
        _validate.c_int("net_w", net_w)
        _validate.c_int("net_h", net_h)
        _validate.c_int("index", index)
        call = _native.ABRegionCall(self._spec(), batch, h, w, targets=targets)
        packed = None
        if train:
            if truth is None:
                raise ValueError("train=True needs truth")
            packed = np.ascontiguousarray(self.pack_truth(truth, batch))
            rc, image, row = call.check_truths(packed)
            if rc != _native.DN_OK:
                raise self._truth_error(rc, image, row, packed, w, h)
        rc = call.forward(np.ascontiguousarray(x), packed, train=train, seen=seen, index=index, net_w=net_w,
                          net_h=net_h)
        if rc != _native.DN_OK:  # pragma: no cover - everything was checked above
            raise RuntimeError(f"the C core refused the input (code {rc})")
        if not train:
            return RegionResult(output=call.output, delta=call.delta, cost=np.float32(0), stats=None, count=-1), call
        s = call.stats
        stats = RegionStats(avg_iou=float(s.avg_iou), avg_cat=float(s.avg_cat), avg_obj=float(s.avg_obj),
                            avg_anyobj=float(s.avg_anyobj), recall=float(s.recall), count=int(s.count),
                            class_count=int(s.class_count))
        assert packed is not None
        return RegionResult(output=call.output, delta=call.delta, cost=np.float32(call.cost[0]), stats=stats,
                            count=int(s.count), warnings_text=self.warnings_text(packed)), call

    def detections(self, output: np.ndarray, w: int, h: int, net_w: int = 416, net_h: int = 416,
                   thresh: float = .5, relative: int = 1, letter: int = 0) -> Any:
        """What AlexeyAB's darknet decodes from this layer (fill_network_boxes ->
        custom_get_region_detections; its get_region_detections is never reached):
        get_region_boxes on image 0 of ``output`` -- the flattened (B, H, W, C)
        buffer the forward leaves, read with a stride of ``classes + 5`` per anchor
        whatever ``coords`` is -- then correct_yolo_boxes (``letter``: letterboxed
        input).  Returns :class:`pydarknet_loss.Detections` (w*h*num of them,
        index ``(row*W + col)*num + anchor``): objectness 1 for every box (as
        upstream sets it), prob = objectness-score * class where above
        ``thresh`` (classfix=-1: scores under .5 count as 0)."""
        from .detections import Detections

        out = _validate.float32_array("output", output, 4)
        b, hh, ww, c = out.shape
        if c != self.channels or b < 1:
            raise ValueError(f"output must be the layer's flattened (B, H, W, C) buffer with C = {self.channels} "
                             f"(what forward returns), got shape {out.shape}")
        call = _native.ABRegionCall(self._spec(), 1, hh, ww)
        img = np.ascontiguousarray(out[0])
        bbox, prob = _native.ab_region_detections(call, img, w, h, net_w, net_h, _validate.real32("thresh", thresh),
                                                  _int_opt("relative", relative), _int_opt("letter", letter))
        return Detections(bbox=bbox, objectness=np.ones(len(bbox), np.float32), prob=prob)

    def warnings_text(self, packed: np.ndarray) -> str:
        """The stdout warnings upstream's second loop prints: one per truth
        row with class id >= classes before the list's end, images in order."""
        out: List[str] = []
        c = self.classes
        for b in range(packed.shape[0]):
            for r in packed[b]:
                cid = int(r[4])
                if cid >= c:
                    out.append(f"\n Warning: in txt-labels class_id={cid} >= classes={c} in cfg-file. In txt-labels "
                               f"class_id should be [from 0 to {c - 1}] \n")
                    continue
                if r[0] == 0:
                    break
        return "".join(out)

    def _truth_error(self, rc: int, image: int, row: int, packed: np.ndarray, w: int, h: int) -> ValueError:
        if row < 0:
            return ValueError(f"the C core refused {self!r} on a {w}x{h} grid")
        r = packed[image, row]
        where = (f"truth image {image} row {row} (x={float(r[0])!r}, y={float(r[1])!r}, w={float(r[2])!r}, "
                 f"h={float(r[3])!r}, class_id={float(r[4])!r})")
        why = {
            _native.lib.DN_E_TRUTH_VALUE: "holds NaN or an infinity; expected finite numbers",
            _native.lib.DN_E_TRUTH_INT: "has a class id that does not fit a C int (upstream's (int) cast is undefined)",
            _native.lib.DN_E_TRUTH_CLASS: (f"has a class id mapped outside [0, {self.classes}), or below -5 with "
                                           "focal_loss=1: upstream would index the class entries out of bounds; "
                                           f"expected ids in [0, {self.classes}) (ids >= classes are skipped with "
                                           "a warning, negative ids get every class's background delta)"),
            _native.lib.DN_E_TRUTH_CELL: (f"lies outside the {w}x{h} grid: (int)(x*w) and (int)(y*h) must be in "
                                          f"[0, {w}) and [0, {h}) (x == 1.0 indexes column w, past the grid)"),
            _native.lib.DN_E_MAP_INDEX: (f"has a class id past the class map (len {0 if self.map is None else len(self.map)}) "
                                         "or below 0; upstream would read outside it"),
        }.get(rc, f"was refused by the C core (code {rc})")
        return ValueError(f"{where} {why}")


def layer_from_case(params: Mapping[str, Any]) -> RegionLayer:
    """The layer a ``region_ab`` golden case's params describe (its kwargs; the map from params.map)."""
    kw = dict(params["kwargs"])
    if params.get("map") is not None:
        kw["map"] = params["map"]
    return RegionLayer(**kw, batch=params["batch"])


def forward_case(case: Mapping[str, Any]) -> RegionResult:
    """Run a loaded ``region_ab`` golden case (arrays + params dict) through its layer."""
    p = case["params"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", _validate.DarknetQuirkWarning)  # the case's anchors as its cfg gives them
        layer = layer_from_case(p)
        return layer.forward(case["input"], case["truth"], train=bool(case["train"]), seen=int(case["seen"]),
                             net_w=p["net_w"], net_h=p["net_h"], index=p["net_index"])
