"""The public layer classes, their results and statistics."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence, Union

import numpy as np

from . import _native, _validate

YOLO_MAX_TRUTHS = 90  # upstream's truth stride per image, whatever `max` says

TruthLike = Union[np.ndarray, Sequence[np.ndarray]]


def _fmt(v: float) -> str:
    """printf("%f") of a double as glibc writes it: NaN carries its sign."""
    if math.isnan(v):
        return "-nan" if math.copysign(1.0, v) < 0 else "nan"
    return "%f" % v


@dataclass(frozen=True)
class YoloStats:
    """The values upstream's forward_yolo_layer prints, exactly (float32
    values held in Python floats).  0/0 is NaN, as upstream divides it."""

    avg_iou: float
    avg_cat: float
    avg_obj: float
    avg_anyobj: float
    recall: float
    recall75: float
    count: int
    index: int = field(default=0, compare=False)

    def line(self, index: Optional[int] = None) -> str:
        """Upstream's printed line, character for character, without the
        trailing newline (print() adds it back)."""
        i = self.index if index is None else index
        return (f"Region {i} Avg IOU: {_fmt(self.avg_iou)}, Class: {_fmt(self.avg_cat)}, "
                f"Obj: {_fmt(self.avg_obj)}, No Obj: {_fmt(self.avg_anyobj)}, "
                f".5R: {_fmt(self.recall)}, .75R: {_fmt(self.recall75)},  count: {self.count}")

    def as_array(self) -> np.ndarray:
        """The six printed floats as float64, in print order."""
        return np.array([self.avg_iou, self.avg_cat, self.avg_obj, self.avg_anyobj,
                         self.recall, self.recall75], dtype=np.float64)


def _check_build(build: str) -> str:
    if build not in ("cpu", "gpu"):
        raise ValueError(f"build must be 'cpu' or 'gpu', got {build!r}")
    return build


@dataclass(frozen=True)
class YoloResult:
    """What one forward_yolo_layer call leaves behind."""

    output: np.ndarray  #: l.output, float32, shape of x
    delta: np.ndarray  #: l.delta, float32, shape of x (minus the gradient of the implied loss)
    cost: np.float32  #: *l.cost = pow(mag_array(delta), 2)
    stats: Optional[YoloStats]  #: None when train=False

    def net_delta(self, build: str = "cpu") -> np.ndarray:
        """What backward_yolo_layer adds to net.delta: l.delta itself, on the
        CPU and the GPU build alike (a copy)."""
        _check_build(build)
        return self.delta.copy()


class YoloLayer:
    """Darknet's ``[yolo]`` layer (YOLOv3), bit-exact to upstream f6afaab.

    Parameters follow ``parse_yolo``; defaults are its defaults.  ``anchors``
    holds (w, h) pairs in network pixels; ``total`` defaults to the number of
    pairs (upstream's ``num``; with fewer pairs the remaining anchors stay at
    upstream's 0.5).  ``mask`` defaults to every anchor.

    Upstream behaviour reproduced on purpose:

    * a truth row with ``x == 0`` ends that image's truth list;
    * the truth buffer always has 90 rows per image, whatever ``max_boxes``
      says; only the first ``max_boxes`` are read;
    * class ids are truncated to int (``2.7`` is class 2) before ``map``;
      the cell of a truth is ``(int)(x*W)``, ``(int)(y*H)`` computed in float32;
    * when two truths land in the same cell and anchor, the later one
      overwrites the box and objectness deltas, and the class delta of the
      second only sets its own class (upstream's short-circuit);
    * statistics that divide 0 by 0 are NaN (printed ``-nan``).
    """

    kind = "yolo"

    def __init__(self, classes: int = 20, anchors: Optional[Sequence[float]] = None,
                 mask: Optional[Sequence[int]] = None, ignore_thresh: float = 0.5,
                 truth_thresh: float = 1.0, max_boxes: int = YOLO_MAX_TRUTHS,
                 map: Optional[Sequence[int]] = None, total: Optional[int] = None,
                 jitter: float = 0.2, random: int = 0) -> None:
        self.classes = _validate.integer("classes", classes, minimum=1)
        if anchors is None:
            if total is None:
                raise ValueError("give anchors (w, h pairs) or total")
            pairs = np.zeros(0, dtype=np.float32)
        else:
            pairs = _validate.anchors32(anchors)
        n_pairs = len(pairs) // 2
        self.total = n_pairs if total is None else _validate.integer("total", total, minimum=1)
        if n_pairs > self.total:
            raise ValueError(f"anchors give {n_pairs} pairs but total is {self.total}: upstream would "
                             "write past its biases")
        biases = np.full(2 * self.total, 0.5, dtype=np.float32)
        biases[:len(pairs)] = pairs
        self.anchors = biases
        if mask is None:
            self.mask = np.arange(self.total, dtype=np.int32)
        else:
            self.mask = _validate.int_array("mask", mask)
            bad = np.flatnonzero((self.mask < 0) | (self.mask >= self.total))
            if bad.size:
                i = int(bad[0])
                raise ValueError(f"mask[{i}] = {int(self.mask[i])} is not an anchor index: expected "
                                 f"0 <= mask < total = {self.total}")
        self.n = len(self.mask)
        self.ignore_thresh = _validate.real32("ignore_thresh", ignore_thresh)
        self.truth_thresh = _validate.real32("truth_thresh", truth_thresh)
        self.max_boxes = _validate.integer(
            "max_boxes", max_boxes, minimum=0, maximum=YOLO_MAX_TRUTHS)
        self.map = _validate.class_map(map, self.classes)
        self.jitter = _validate.real32("jitter", jitter)
        self.random = _validate.integer("random", random)

    @property
    def channels(self) -> int:
        """C of the layer's input: len(mask) * (5 + classes)."""
        return self.n * (4 + 1 + self.classes)

    def __repr__(self) -> str:
        return (f"YoloLayer(classes={self.classes}, total={self.total}, mask={self.mask.tolist()}, "
                f"ignore_thresh={float(self.ignore_thresh):g}, truth_thresh={float(self.truth_thresh):g}, "
                f"max_boxes={self.max_boxes}, map={'None' if self.map is None else 'len %d' % len(self.map)})")

    def _spec(self) -> _native.YoloSpec:
        return _native.YoloSpec(
            classes=self.classes, total=self.total, mask=self.mask, biases=self.anchors,
            max_boxes=self.max_boxes, ignore_thresh=self.ignore_thresh,
            truth_thresh=self.truth_thresh, map=self.map)

    def forward(self, x: np.ndarray, truth: Optional[TruthLike] = None, *, net_w: int = 416,
                net_h: int = 416, train: bool = True, index: int = 0,
                out: Optional[tuple[np.ndarray, np.ndarray]] = None) -> YoloResult:
        """Run upstream's forward_yolo_layer.

        ``x``: float32 (B, len(mask)*(5+classes), H, W), darknet's layout.
        ``truth``: float32 (B, 90, 5) packed (rows x, y, w, h, class; zeros
        after the last box), or a list of B float32 arrays of shape (k, 5).
        Not needed when ``train`` is False.  ``index`` is the layer index
        upstream prints in its statistics line.  ``out``: optional
        (output, delta) float32 arrays of x's shape to write into instead of
        allocating new ones (for repeated calls on large inputs); the result
        then refers to them.
        """
        x = _validate.layer_input(x, channels=self.channels,
                                  what=f"len(mask)={self.n} * (5 + classes={self.classes})")
        batch, _, h, w = x.shape
        net_w = _validate.integer("net_w", net_w, minimum=1)
        net_h = _validate.integer("net_h", net_h, minimum=1)
        index = _validate.integer("index", index)
        if not isinstance(train, (bool, np.bool_)):
            raise TypeError(f"train must be a bool, got {type(train).__name__}")
        out = _validate.out_buffers(out, x.shape)
        if out is not None and any(np.shares_memory(x, a) for a in out):
            raise ValueError("out arrays must not share memory with x")
        call = _native.yolo_call(self._spec(), batch, h, w, out)
        packed = None
        if truth is not None or train:
            if truth is None:
                raise ValueError("train=True needs truth")
            packed = _validate.truth_buffer(truth, batch=batch, rows=YOLO_MAX_TRUTHS, cols=5,
                                            used_rows=self.max_boxes)
            rc, image, row = call.check_truths(packed)
            if rc != _native.DN_OK:
                raise _validate.truth_error(_native.ERRORS[rc], image, row, packed, w=w, h=h,
                                            classes=self.classes, class_col=4, map_=self.map)
        rc = call.forward_yolo(x, packed, net_w, net_h, bool(train), index)
        if rc != _native.DN_OK:  # pragma: no cover - everything was checked above
            raise RuntimeError(f"the C core refused the input ({_native.ERRORS.get(rc, rc)})")
        stats = None
        if train:
            s = call.stats
            stats = YoloStats(avg_iou=s.avg_iou, avg_cat=s.avg_cat, avg_obj=s.avg_obj,
                              avg_anyobj=s.avg_anyobj, recall=s.recall, recall75=s.recall75,
                              count=s.count, index=index)
        return YoloResult(output=call.output, delta=call.delta,
                          cost=np.float32(call.cost[0]) if train else np.float32(0), stats=stats)
