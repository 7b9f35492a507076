"""pjreddie/darknet's ``[detection]`` layer (YOLOv1), bit-exact to upstream
commit f6afaab (src/detection_layer.c).

```python
import pydarknet_loss as pdl
layer = pdl.DetectionLayer(classes=20, coords=4, side=7, num=3, rescore=1, softmax=0, sqrt=1,
                           object_scale=1, noobject_scale=.5, class_scale=1, coord_scale=5)
res = layer.forward(x, truth, seen=64000)        # x: (B, side*side*((1+coords)*num+classes))
res.output, res.delta, res.cost, res.stats.line()
```

The layer has no activation (except the optional per-cell class softmax).
Per image the buffer holds ``side*side*classes`` class scores (cell-major),
then ``side*side*num`` confidences, then ``side*side*num*coords`` box entries.
The truth holds, per cell, ``is_obj``, ``classes`` class values, then x, y
(relative to the cell) and w, h (relative to the image).

``random=1`` with ``seen < 64000`` picks the responsible box with glibc's
``rand() % num``; upstream seeds rand() with ``srand(0)`` in
``make_detection_layer``.  Each layer object carries its own copy of that
generator, seeded at construction and advanced by every such forward (one
draw per object cell, in order): :meth:`DetectionLayer.rand_state`,
:meth:`DetectionLayer.srand`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

import numpy as np

from .. import _native, _validate
from ._readonly import ReadOnly
from .detections import Detections

PJ_COMMIT = "f6afaabcdf85f77e7aff2ec55c020c0e297c77f9"


def _fmt(v: float) -> str:
    if math.isnan(v):
        return "-nan" if math.copysign(1.0, v) < 0 else "nan"
    return "%f" % v


@dataclass(frozen=True)
class DetectionStats:
    """The values forward_detection_layer hands to printf (stdout), divided
    as upstream divides them (count 0 gives NaN, printed "-nan")."""

    avg_iou: float
    pos_cat: float
    all_cat: float
    pos_obj: float
    any_obj: float
    count: int

    names = ("avg_iou", "pos_cat", "all_cat", "pos_obj", "any_obj")  #: the golden cases' stats_names

    def line(self) -> str:
        """The printed line, character for character, without its newline."""
        return (f"Detection Avg IOU: {_fmt(self.avg_iou)}, Pos Cat: {_fmt(self.pos_cat)}, "
                f"All Cat: {_fmt(self.all_cat)}, Pos Obj: {_fmt(self.pos_obj)}, Any Obj: {_fmt(self.any_obj)}, "
                f"count: {self.count}")

    def as_array(self) -> np.ndarray:
        return np.array([self.avg_iou, self.pos_cat, self.all_cat, self.pos_obj, self.any_obj], dtype=np.float64)


@dataclass(frozen=True)
class DetectionResult:
    """What one forward_detection_layer call leaves behind; arrays (B, inputs)."""

    output: np.ndarray  #: l.output, float32 (the input, classes softmaxed with softmax=1)
    delta: np.ndarray  #: l.delta, float32 (minus the gradient of the squared-error terms; see README)
    cost: np.float32  #: *l.cost = pow(mag_array(delta), 2) (upstream's running sum is overwritten)
    stats: Optional[DetectionStats]  #: None when train=False
    count: int  #: the printed count (object cells); -1 when train=False
    draws: int = 0  #: rand() values this call drew from the layer's generator
    picks: Optional[np.ndarray] = None  #: (B, side*side) int32: the box each object cell used (-1: "box -1"), -2 elsewhere

    @property
    def text(self) -> str:
        return "" if self.stats is None else self.stats.line() + "\n"


def _int_opt(name: str, value: Any) -> int:
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    return _validate.integer(name, value, minimum=-2**31, maximum=2**31 - 1)


_WHY = {
    "det-truth": "is_obj is NaN, infinite or does not fit a C int (upstream truncates it with (int), undefined there)",
    "det-pick": ("has an object but the box upstream picks lies outside the buffer: no predicted box overlaps the "
                 "truth and none lies within RMSE 20 of it, so upstream's best_index stays -1 and it indexes box -1 "
                 "(or forced=1 picks box 1 with num=1); inside the buffer that is reproduced (another cell's box), "
                 "here it would read and write outside l.output/l.delta"),
    "det-coords": ("has an object but coords < 4: upstream reads four box entries per box and four truth values "
                   "(past the cell's own)"),
}


class DetectionLayer(ReadOnly):
    """pjreddie's ``[detection]`` layer (YOLOv1), bit-exact to upstream f6afaab.

    Options are ``parse_detection``'s cfg keys with its defaults (note
    upstream's defaults ``coords=1``, ``classes=1``, ``side=7``, ``num=1``;
    a training forward with an object cell needs ``coords >= 4``).
    ``max``, ``jitter`` and ``reorg`` are parsed but not read by the layer.

    Upstream behaviour reproduced (tests/test_more_layers.py names them):
    ``is_obj`` truncated to int; the responsible box by IoU, else by RMSE
    below 20 -- and when none qualifies, "box -1" (the previous cell's last
    box), or with ``forced`` and ``num=1`` "box 1" (the next cell's), as long
    as those stay inside the buffer; ``forced``; ``random`` with glibc's ``rand()`` from ``srand(0)``;
    ``1. - out`` in double for the objectness delta; ``sqrt`` targets through
    double sqrt; the cost overwritten by ``pow(mag_array(delta), 2)``.
    """

    kind = "detection"  #: the golden cases' kind

    def __init__(self, classes: int = 1, coords: int = 1, rescore: int = 0, num: int = 1, side: int = 7,
                 softmax: int = 0, sqrt: int = 0, max: int = 90, coord_scale: float = 1, forced: int = 0,
                 object_scale: float = 1, noobject_scale: float = 1, class_scale: float = 1, jitter: float = .2,
                 random: int = 0, reorg: int = 0, batch: Optional[int] = None) -> None:
        self.classes = _validate.integer("classes", classes, minimum=1)
        self.coords = _validate.integer("coords", coords, minimum=0)
        self.num = _validate.integer("num", num, minimum=1)
        self.side = _validate.integer("side", side, minimum=1)
        self.rescore = _int_opt("rescore", rescore)
        self.softmax = _int_opt("softmax", softmax)
        self.sqrt = _int_opt("sqrt", sqrt)
        self.forced = _int_opt("forced", forced)
        self.random = _int_opt("random", random)
        self.max_boxes = _validate.integer("max", max, minimum=-2**31, maximum=2**31 - 1)
        self.reorg = _int_opt("reorg", reorg)
        self.coord_scale = _validate.real32("coord_scale", coord_scale)
        self.object_scale = _validate.real32("object_scale", object_scale)
        self.noobject_scale = _validate.real32("noobject_scale", noobject_scale)
        self.class_scale = _validate.real32("class_scale", class_scale)
        self.jitter = _validate.real32("jitter", jitter)
        self.batch = None if batch is None else _validate.integer("batch", batch, minimum=1)
        locations = self.side * self.side
        if locations * ((1 + self.coords) * self.num + self.classes) * (self.batch or 1) > _validate.INT_MAX:
            raise ValueError("side*side*((1+coords)*num+classes) does not fit a C int")
        self._rand = _native.glibc_rand_state(0)  # make_detection_layer's srand(0)
        self._freeze()

    # ---- the generator ---------------------------------------------------------------------------
    def srand(self, seed: int = 0) -> None:
        """Reseed the layer's rand() as glibc's srand(seed) does (a new layer is at srand(0))."""
        seed = _validate.integer("seed", seed, minimum=0, maximum=2**32 - 1)
        _native.lib.dn_glibc_srand(self._rand, seed)

    def rand_state(self) -> np.ndarray:
        """A copy of the generator's state: glibc's 31-word table, then the front and rear indices."""
        s = self._rand
        return np.array(list(s.r) + [s.f, s.b], dtype=np.int64)

    def rand(self, count: int = 1) -> np.ndarray:
        """The next ``count`` values of the layer's rand() (advancing it), as glibc's rand() would give them."""
        return _native.glibc_rand(self._rand, _validate.integer("count", count, minimum=0))

    # ---- shape -----------------------------------------------------------------------------------
    @property
    def n(self) -> int:
        return self.num

    @property
    def inputs(self) -> int:
        """side*side*((1 + coords)*num + classes)."""
        return self.side * self.side * ((1 + self.coords) * self.num + self.classes)

    @property
    def truths(self) -> int:
        """Truth floats per image: side*side*(1 + coords + classes)."""
        return self.side * self.side * (1 + self.coords + self.classes)

    def __repr__(self) -> str:
        return (f"DetectionLayer(classes={self.classes}, coords={self.coords}, side={self.side}, num={self.num}, "
                f"softmax={self.softmax}, sqrt={self.sqrt}, rescore={self.rescore}, forced={self.forced}, "
                f"random={self.random})")

    def params(self) -> Dict[str, Any]:
        f = float
        return dict(classes=self.classes, coords=self.coords, rescore=self.rescore, num=self.num, side=self.side,
                    softmax=self.softmax, sqrt=self.sqrt, max=self.max_boxes, coord_scale=f(self.coord_scale),
                    forced=self.forced, object_scale=f(self.object_scale), noobject_scale=f(self.noobject_scale),
                    class_scale=f(self.class_scale), jitter=f(self.jitter), random=self.random, reorg=self.reorg)

    def _spec(self) -> _native.DetectionSpec:
        return _native.DetectionSpec(
            side=self.side, n=self.num, classes=self.classes, coords=self.coords,
            scalars=dict(rescore=self.rescore, softmax=self.softmax, sqrt=self.sqrt, forced=self.forced,
                         random=self.random, coord_scale=self.coord_scale, object_scale=self.object_scale,
                         noobject_scale=self.noobject_scale, class_scale=self.class_scale))

    def _input(self, x: Any) -> np.ndarray:
        x = _validate.float32_array("x", x, 2)
        if x.shape[0] < 1 or x.shape[1] != self.inputs:
            raise ValueError(f"x must have shape (B, {self.inputs}) = (batch, side*side*((1 + coords)*num + classes)) "
                             f"with side={self.side}, coords={self.coords}, num={self.num}, classes={self.classes}; "
                             f"got {x.shape}")
        if self.batch is not None and x.shape[0] != self.batch:
            raise ValueError(f"x has batch {x.shape[0]} but the layer was made with batch={self.batch}")
        return np.ascontiguousarray(x)

    def pack_truth(self, truth: Any, batch: int) -> np.ndarray:
        """The (batch, side*side, 1 + classes + coords) float32 truth upstream reads."""
        t = _validate.float32_array("truth", truth, 3)
        want = (batch, self.side * self.side, 1 + self.classes + self.coords)
        if t.shape != want:
            raise ValueError(f"truth must have shape {want} = (batch, side*side cells, is_obj + classes class values + "
                             f"coords box values), got {t.shape}")
        return np.ascontiguousarray(t)

    def forward(self, x: np.ndarray, truth: Optional[np.ndarray] = None, *, train: bool = True, seen: int = 0,
                net_w: int = 448, net_h: int = 448, index: int = 0) -> DetectionResult:
        """Run upstream's forward_detection_layer.  ``seen`` is ``*net.seen``
        (``random`` acts below 64000).  ``net_w``, ``net_h``, ``index`` are
        not read by this layer (accepted for symmetry)."""
        x = self._input(x)
        batch = x.shape[0]
        if not isinstance(train, (bool, np.bool_)):
            raise TypeError(f"train must be a bool, got {type(train).__name__}")
        train = bool(train)
        seen = _validate.integer("seen", seen, minimum=0, maximum=_native.SIZE_MAX)
        _validate.c_int("net_w", net_w)
        _validate.c_int("net_h", net_h)
        _validate.c_int("index", index)
        call = _native.DetectionCall(self._spec(), batch, self._rand)
        packed = None
        if train:
            if truth is None:
                raise ValueError("train=True needs truth")
            packed = self.pack_truth(truth, batch)
            rc, image, cell = call.check_truths(x, packed, seen)
            if rc != _native.DN_OK:
                kind = _native.ERRORS_MORE.get(rc, str(rc))
                if cell < 0:
                    raise ValueError(f"the C core refused {self!r}")
                row = packed[image, cell]
                raise ValueError(f"truth image {image} cell {cell} (row {cell // self.side}, column {cell % self.side}; "
                                 f"is_obj={float(row[0])!r}, box={[float(v) for v in row[1 + self.classes:]]}) "
                                 f"{_WHY.get(kind, kind)}")
        rc = call.forward(x, packed, train=train, seen=seen, index=index)
        if rc != _native.DN_OK:  # pragma: no cover - checked above
            raise RuntimeError(f"the C core refused the input (code {rc})")
        if not train:
            return DetectionResult(output=call.output, delta=call.delta, cost=np.float32(0), stats=None, count=-1)
        s = call.stats
        stats = DetectionStats(avg_iou=float(s.avg_iou), pos_cat=float(s.pos_cat), all_cat=float(s.all_cat),
                               pos_obj=float(s.pos_obj), any_obj=float(s.any_obj), count=int(s.count))
        draws = int(s.count) if (self.random and seen < 64000) else 0
        return DetectionResult(output=call.output, delta=call.delta, cost=np.float32(call.cost[0]), stats=stats,
                               count=int(s.count), draws=draws, picks=call.picks)

    def detections(self, output: np.ndarray, w: int, h: int, thresh: float = .2) -> Detections:
        """get_detection_detections (f6afaab) on image 0 of ``output``:
        side*side*num boxes in pixels of a w x h image (x, y the centre),
        objectness the confidence, prob = confidence*class score where it
        exceeds thresh, else 0.  Four box entries per box are read whatever
        coords is (upstream's stride); coords < 4 is refused."""
        if self.coords < 4:
            raise ValueError(f"coords = {self.coords}: get_detection_detections reads 4 box entries per box, past "
                             "the buffer with coords < 4")
        out = self._input(output)
        w = _validate.c_int("w", w, minimum=1)
        h = _validate.c_int("h", h, minimum=1)
        call = _native.DetectionCall(self._spec(), 1, self._rand)
        call.output[...] = out[0]
        bbox, obj, prob = call.detections(w, h, _validate.real32("thresh", thresh))
        return Detections(bbox=bbox, objectness=obj, prob=prob)


def layer_from_case(params: Mapping[str, Any]) -> DetectionLayer:
    """The layer a ``detection`` golden case's params describe."""
    return DetectionLayer(**params["kwargs"], batch=params["batch"])


def forward_case(case: Mapping[str, Any]) -> DetectionResult:
    """Run a loaded ``detection`` golden case through a fresh layer (srand(0), as upstream makes it)."""
    p = case["params"]
    return layer_from_case(p).forward(case["input"], case["truth"], train=bool(case["train"]), seen=int(case["seen"]),
                                      net_w=p["net_w"], net_h=p["net_h"], index=p["net_index"])
