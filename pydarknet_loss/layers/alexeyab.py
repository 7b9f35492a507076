"""AlexeyAB/darknet's ``[yolo]`` layer (YOLOv4, YOLOv7), bit-exact to
upstream commit 59596d7.  (hank-ai's C++ fork rounds some of the same
arithmetic in float: :mod:`pydarknet_loss.layers.hankai`.)::

    from pydarknet_loss import alexeyab
    layer = alexeyab.YoloLayer(classes=80, anchors=[...], mask=[6, 7, 8], iou_loss="ciou", iou_normalizer=.07,
                               scale_x_y=1.05, iou_thresh=.213)
    res = layer.forward(x, truth, net_w=608, net_h=608, train=True, index=161)
    res.output, res.delta, res.cost, res.stats.line(), res.labels, res.class_ids, res.total_bbox

The C core is ``darknet_src/ab_yolo_layer.c`` (``ab_forward_yolo_layer``);
what differs from pjreddie's layer is listed there.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .. import _native, _validate
from . import layout as layout_mod
from ._readonly import ReadOnly

AB_COMMIT = "59596d7880f6504768df41d6daa586f5cb2b932f"

#: IOU_LOSS in upstream's enum order.
IOU_LOSS_ENUM = {"iou": 0, "giou": 1, "mse": 2, "diou": 3, "ciou": 4}
IOU_LOSS_NAMES = {v: k for k, v in IOU_LOSS_ENUM.items()}
#: iou_thresh_kind takes these (upstream maps anything else, "mse" included, to iou with a warning).
IOU_THRESH_KINDS = ("iou", "giou", "diou", "ciou")

TruthLike = Union[np.ndarray, Sequence[np.ndarray]]
OutBuffers = Tuple[np.ndarray, np.ndarray]


def _fmt(v: float, spec: str = "%f") -> str:
    """printf of a double as glibc writes it: NaN carries its sign."""
    if math.isnan(v):
        return "-nan" if math.copysign(1.0, v) < 0 else "nan"
    return spec % v


def _f32(v: Any) -> float:
    """A C float's value as the Python float printf receives (float promoted to double)."""
    return float(np.float32(v))


# ---- statistics ---------------------------------------------------------------

@dataclass(frozen=True)
class YoloStats:
    """What upstream prints at the end of a training forward ("v3 (...)",
    stderr), exactly: the float values it hands to fprintf.

    ``class_loss`` and ``iou_loss`` are None with ``show_details=0``
    (upstream prints neither).  ``count`` is the printed count (1 when
    nothing was assigned).
    """

    avg_iou: float
    class_loss: Optional[float]
    iou_loss: Optional[float]
    total_loss: float
    count: int
    index: int = 0
    loss_name: str = "mse"  #: as printed: mse, giou or iou (DIoU and CIoU print "iou")
    iou_normalizer: float = 0.75
    obj_normalizer: float = 1.0
    cls_normalizer: float = 1.0
    show_details: int = 1

    def line(self) -> str:
        """Upstream's "v3 (...)" line, character for character, including
        its trailing space, without the final newline."""
        head = (f"v3 ({self.loss_name} loss, Normalizer: (iou: {_fmt(self.iou_normalizer, '%.2f')}, "
                f"obj: {_fmt(self.obj_normalizer, '%.2f')}, cls: {_fmt(self.cls_normalizer, '%.2f')}) "
                f"Region {self.index} Avg (IOU: {_fmt(self.avg_iou)}), count: {self.count}, ")
        if self.show_details == 0:
            return head + f"total_loss = {_fmt(self.total_loss)} "
        assert self.class_loss is not None and self.iou_loss is not None
        return head + (f"class_loss = {_fmt(self.class_loss)}, iou_loss = {_fmt(self.iou_loss)}, "
                       f"total_loss = {_fmt(self.total_loss)} ")

    @property
    def names(self) -> List[str]:
        """The names of the printed %f values, in print order."""
        if self.show_details == 0:
            return ["avg_iou", "total_loss"]
        return ["avg_iou", "class_loss", "iou_loss", "total_loss"]

    def as_array(self) -> np.ndarray:
        """The printed %f values as float64, in print order (the golden
        cases' ``stats``)."""
        return np.array([getattr(self, k) for k in self.names], dtype=np.float64)


# ---- result -------------------------------------------------------------------------

@dataclass(frozen=True)
class YoloResult:
    """What one AlexeyAB forward_yolo_layer call leaves behind.  Arrays are
    in darknet's (B, C, H, W) layout (labels and class_ids: (B, n, H, W))."""

    output: np.ndarray  #: l.output, float32
    delta: np.ndarray  #: l.delta, float32 (minus a gradient for MSE; for the IoU losses, see the layer's iou_loss)
    cost: np.float32  #: *l.cost (its formula depends on show_details and iou_loss)
    stats: Optional[YoloStats]  #: None when train=False
    count: int  #: the printed count (1 when nothing was assigned); -1 when train=False
    labels: np.ndarray  #: l.labels, int32: the assigned truth's track id per best-anchor cell, -1 elsewhere
    class_ids: np.ndarray  #: l.class_ids, int32: its class id (after map), -1 elsewhere
    total_bbox: int  #: *net.total_bbox after the call (from 0): box deltas written, counted exactly
    rewritten_bbox: int  #: *net.rewritten_bbox: box deltas added onto a non-zero one, counted exactly
    skipped_truths: int  #: truth rows skipped for a class id outside [0, classes) (upstream warns per cell)
    sums: Dict[str, Any] = field(default_factory=dict, repr=False)  #: the per-image sums added in image order
    _warn: Tuple[Any, ...] = field(default=(), repr=False, compare=False)

    def net_delta(self, build: str = "cpu") -> np.ndarray:
        """What backward_yolo_layer adds to state.delta: l.delta itself (a copy)."""
        if build not in ("cpu", "gpu"):
            raise ValueError(f"build must be 'cpu' or 'gpu', got {build!r}")
        return self.delta.copy()

    def warnings_text(self) -> str:
        """The stdout warnings upstream prints for out-of-range class ids:
        two lines per truth row, repeated for every cell and anchor of the
        image (loop 1), images in order.  Upstream prints them from one
        thread per image: with such rows in several images of a batch its
        own order varies from run to run."""
        if not self._warn:
            return ""
        cells, classes, rows = self._warn
        out = []
        for image_rows in rows:
            if not image_rows:
                continue
            block = "".join(
                f"\n Warning: in txt-labels class_id={cid} >= classes={classes} in cfg-file. In txt-labels "
                f"class_id should be [from 0 to {classes - 1}] \n"
                f"\n truth.x = {_fmt(x)}, truth.y = {_fmt(y)}, truth.w = {_fmt(w)}, truth.h = {_fmt(h)}, "
                f"class_id = {cid} \n" for x, y, w, h, cid in image_rows)
            out.append(block * cells)
        return "".join(out)

    @property
    def text(self) -> str:
        """Everything yolo_layer.c prints during the call, in order: the
        class-id warnings, then the "v3 (...)" line and its newline
        (empty when train=False)."""
        if self.stats is None:
            return ""
        return self.warnings_text() + self.stats.line() + "\n"


# ---- the layer ---------------------------------------------------------------------------

def _flag(name: str, value: Any) -> int:
    """An option upstream reads with option_find_int and tests for non-zero."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    return _validate.integer(name, value, minimum=-2**31, maximum=2**31 - 1)


class YoloLayer(ReadOnly):
    """AlexeyAB's ``[yolo]`` layer, bit-exact to upstream 59596d7.

    Parameters are ``parse_yolo``'s options with its defaults (``max=`` is
    ``max_boxes``; ``num=`` is ``total``, which defaults here to the number
    of anchor pairs).  ``anchors`` fills ``l.biases``: fewer than
    ``2*total`` values leave upstream's 0.5, more are ignored as upstream's
    parser ignores them.  ``mask`` defaults to every anchor.  ``max_delta``
    None means unset (FLT_MAX).  ``counters_per_class`` (``classes`` ints)
    gives upstream's class multipliers.  ``map`` is a class map (a list of
    ints, which may be longer than ``classes``).

    Upstream behaviour reproduced on purpose (each has a test named after
    it in tests/test_alexeyab_quirks.py):

    * a row with ``x == 0`` ends the image's truth list, in both loops;
    * a class id outside ``[0, classes)`` (after truncation) skips the row
      (upstream prints a warning per cell and anchor);
    * box deltas accumulate over truths and loops (``rewritten_bbox``);
    * the duplicate-hit test looks at the target class's own delta, and
      only multiplies it by its class multiplier (no ``cls_normalizer``);
    * ``best_match_iou`` only counts when the cell has any class
      probability above 0.25, whatever the truth's class;
    * the IoU-loss box deltas are the gradient in the activated x, y (not
      through the logistic) and through exp for w, h;
    * ``count`` prints as 1 when nothing was assigned.
    """

    coords = 4
    kind = "yolo_ab"  #: the golden cases' kind
    coords = 4  #: x, y, w, h before objectness, as in every [yolo]

    def __init__(self, classes: int = 20, anchors: Union[Sequence[float], np.ndarray, None] = None,
                 mask: Optional[Sequence[int]] = None, total: Optional[int] = None, max_boxes: int = 200,
                 ignore_thresh: float = .5, truth_thresh: float = 1, iou_thresh: float = 1,
                 iou_thresh_kind: str = "iou", iou_loss: str = "mse", iou_normalizer: float = .75,
                 obj_normalizer: float = 1, cls_normalizer: float = 1, delta_normalizer: float = 1,
                 max_delta: Optional[float] = None, scale_x_y: float = 1, new_coords: int = 0,
                 objectness_smooth: int = 0, label_smooth_eps: float = 0, focal_loss: int = 0,
                 counters_per_class: Optional[Sequence[int]] = None, map: Optional[Sequence[int]] = None,
                 show_details: int = 1, anchors_in: str = "pixels", stride: Any = None) -> None:
        self.classes = _validate.c_int("classes", classes, minimum=1)
        anchors = _validate.pixel_anchors(anchors, anchors_in, stride)  # grid-cell anchors: times stride
        self.total, self.anchors = self._biases(anchors, total)
        self.mask = _validate.mask_indices(mask, self.total)
        self.n = len(self.mask)
        _validate.layer_channels(self.n, self.classes)  # l.outputs is an int
        self.max_boxes = _validate.integer("max_boxes", max_boxes, minimum=0, maximum=2**31 - 1)
        self.ignore_thresh = self._real("ignore_thresh", ignore_thresh)
        self.truth_thresh = self._real("truth_thresh", truth_thresh)
        self.iou_thresh = self._real("iou_thresh", iou_thresh)
        if self.truth_thresh < 0 and self.max_boxes == 0:
            raise ValueError(
                f"truth_thresh = {float(self.truth_thresh):g} < 0 with max_boxes = 0: every cell then takes truth "
                "row 0 as its truth (best_iou = 0 already beats truth_thresh), and with max_boxes = 0 the truth "
                "buffer has no row 0 (upstream reads outside it)")
        if not isinstance(iou_loss, str) or iou_loss not in IOU_LOSS_ENUM:
            raise ValueError(f"iou_loss must be one of {', '.join(IOU_LOSS_ENUM)}, got {iou_loss!r} (upstream's "
                             "parser reads any other string as 'iou'; say 'iou' if you mean it)")
        self.iou_loss = iou_loss
        if not isinstance(iou_thresh_kind, str) or iou_thresh_kind not in IOU_THRESH_KINDS:
            raise ValueError(f"iou_thresh_kind must be one of {', '.join(IOU_THRESH_KINDS)}, got "
                             f"{iou_thresh_kind!r} (upstream prints 'Wrong iou_thresh_kind' and uses iou)")
        self.iou_thresh_kind = iou_thresh_kind
        self.iou_normalizer = self._real("iou_normalizer", iou_normalizer)
        self.obj_normalizer = self._real("obj_normalizer", obj_normalizer)
        self.cls_normalizer = self._real("cls_normalizer", cls_normalizer)
        self.delta_normalizer = self._real("delta_normalizer", delta_normalizer)
        self.max_delta = None if max_delta is None else self._real("max_delta", max_delta)
        self.scale_x_y = self._real("scale_x_y", scale_x_y)
        self.label_smooth_eps = self._real("label_smooth_eps", label_smooth_eps)
        self.new_coords = _flag("new_coords", new_coords)
        self.objectness_smooth = _flag("objectness_smooth", objectness_smooth)
        self.focal_loss = _flag("focal_loss", focal_loss)
        self.show_details = _flag("show_details", show_details)
        self.counters_per_class: Optional[np.ndarray] = None
        self.classes_multipliers: Optional[np.ndarray] = None
        if counters_per_class is not None:
            cpc = _validate.int_array("counters_per_class", counters_per_class)
            if len(cpc) != self.classes:
                raise ValueError(f"counters_per_class has {len(cpc)} values but classes is {self.classes} "
                                 "(upstream stops with an error)")
            self.counters_per_class = cpc
            self.classes_multipliers = _native.ab_classes_multipliers(cpc, self.classes, self._max_delta32())
        self.map: Optional[np.ndarray] = None
        if map is not None:
            m = _validate.int_array("map", map)
            used = m[:self.classes]
            bad = np.flatnonzero((used < 0) | (used >= self.classes))
            if bad.size:
                i = int(bad[0])
                raise ValueError(f"map[{i}] = {int(m[i])} sends class {i} outside [0, {self.classes})")
            self.map = m
        self._freeze()

    @staticmethod
    def _real(name: str, value: Any) -> np.float32:
        """A float option as upstream stores it (atof into a float); NaN and
        infinities are refused."""
        return _validate.real32(name, value)

    @staticmethod
    def _biases(anchors: Any, total: Any) -> Tuple[int, np.ndarray]:
        if anchors is None:
            if total is None:
                raise ValueError("give anchors (w, h pairs) or total")
            values = np.zeros(0, dtype=np.float32)
        else:
            values = _validate.anchors32(anchors, pairs=total is None)
        n = len(values) // 2 if total is None else _validate.c_int("total", total, minimum=1)
        _validate.anchor_count(n, "total")  # before 2*n biases are allocated
        if len(values) > 2 * n:
            warnings.warn(f"anchors give {len(values)} values but total is {n}: upstream's parser reads only the "
                          f"first {2 * n}", _validate.DarknetQuirkWarning, stacklevel=3)
            values = values[:2 * n]
        b = np.full(2 * n, 0.5, dtype=np.float32)
        b[:len(values)] = values
        return n, b

    def _max_delta32(self) -> np.float32:
        return _native.FLT_MAX if self.max_delta is None else np.float32(self.max_delta)

    @property
    def channels(self) -> int:
        """C of the layer's input: len(mask) * (4 + 1 + classes)."""
        return self.n * (4 + 1 + self.classes)

    def __repr__(self) -> str:
        return (f"alexeyab.YoloLayer(classes={self.classes}, total={self.total}, mask={self.mask.tolist()}, "
                f"iou_loss={self.iou_loss!r}, iou_normalizer={float(self.iou_normalizer):g}, "
                f"scale_x_y={float(self.scale_x_y):g}, iou_thresh={float(self.iou_thresh):g}, "
                f"max_boxes={self.max_boxes})")

    def params(self) -> Dict[str, Any]:
        """The constructor's arguments, as they are held (float32 values as
        Python floats)."""
        f = float
        return dict(
            classes=self.classes, anchors=[f(v) for v in self.anchors], mask=self.mask.tolist(), total=self.total,
            max_boxes=self.max_boxes, ignore_thresh=f(self.ignore_thresh), truth_thresh=f(self.truth_thresh),
            iou_thresh=f(self.iou_thresh), iou_thresh_kind=self.iou_thresh_kind, iou_loss=self.iou_loss,
            iou_normalizer=f(self.iou_normalizer), obj_normalizer=f(self.obj_normalizer),
            cls_normalizer=f(self.cls_normalizer), delta_normalizer=f(self.delta_normalizer),
            max_delta=None if self.max_delta is None else f(self.max_delta), scale_x_y=f(self.scale_x_y),
            new_coords=self.new_coords, objectness_smooth=self.objectness_smooth,
            label_smooth_eps=f(self.label_smooth_eps), focal_loss=self.focal_loss,
            counters_per_class=None if self.counters_per_class is None else self.counters_per_class.tolist(),
            map=None if self.map is None else self.map.tolist(), show_details=self.show_details)

    def _spec(self) -> _native.ABSpec:
        return _native.ABSpec(
            n=self.n, classes=self.classes, total=self.total, max_boxes=self.max_boxes, biases=self.anchors,
            mask=self.mask, map=self.map, classes_multipliers=self.classes_multipliers,
            scalars=dict(ignore_thresh=self.ignore_thresh, truth_thresh=self.truth_thresh,
                         iou_thresh=self.iou_thresh, iou_thresh_kind=IOU_LOSS_ENUM[self.iou_thresh_kind],
                         iou_loss=IOU_LOSS_ENUM[self.iou_loss], iou_normalizer=self.iou_normalizer,
                         obj_normalizer=self.obj_normalizer, cls_normalizer=self.cls_normalizer,
                         delta_normalizer=self.delta_normalizer, max_delta=self._max_delta32(),
                         scale_x_y=self.scale_x_y, label_smooth_eps=self.label_smooth_eps,
                         new_coords=self.new_coords, objectness_smooth=self.objectness_smooth,
                         focal_loss=self.focal_loss, show_details=self.show_details))

    def pack_truth(self, truth: TruthLike, batch: int) -> np.ndarray:
        """The (batch, max_boxes, 6) float32 buffer upstream reads."""
        return _validate.ab_truth_buffer(truth, batch=batch, max_boxes=self.max_boxes)

    def forward(self, x: np.ndarray, truth: Optional[TruthLike] = None, *, net_w: int = 416, net_h: int = 416,
                train: bool = True, index: int = 0, out: Optional[OutBuffers] = None,
                layout: str = "nchw", threads: Optional[int] = None) -> YoloResult:
        """Run upstream's forward_yolo_layer (CPU build).

        ``x``: float32 (B, len(mask)*(5+classes), H, W), darknet's layout.
        ``truth``: float32 (B, max_boxes, 6) packed (rows x, y, w, h,
        class_id, track_id; zeros after the last box), or a list of B
        float32 arrays of shape (k, 5) or (k, 6).  Not needed when ``train``
        is False.  ``net_w``, ``net_h``: the network's input size.
        ``index``: the layer index printed as "Region %d".  ``out``:
        optional (output, delta) float32 arrays of x's shape to write into.
        ``threads``: how many threads work on separate images and anchors
        (default: $PYDARKNET_LOSS_THREADS, or every CPU this process may use,
        from 2^19 input floats up); the result is the same bit for bit
        whatever it is.  (Upstream starts one thread per image.)
        """
        net_w = _validate.c_int("net_w", net_w, minimum=1)
        net_h = _validate.c_int("net_h", net_h, minimum=1)
        index = _validate.c_int("index", index)
        layout_ = layout_mod.check(layout)
        if threads is not None:
            threads = _validate.integer("threads", threads, minimum=1, maximum=1024)
        if layout_ != "nchw":
            if out is not None:
                raise ValueError(f"out= takes darknet's (B, C, H, W) arrays: with layout={layout_!r} the result is "
                                 "a converted copy, so pass out=None (or x in 'nchw')")
            res = self.forward(layout_mod.to_nchw(x, layout_, self.n), truth, net_w=net_w, net_h=net_h,
                               train=train, index=index, threads=threads)
            return replace(res, output=layout_mod.from_nchw(res.output, layout_, self.n),
                           delta=layout_mod.from_nchw(res.delta, layout_, self.n))
        x = _validate.layer_input(x, channels=self.channels,
                                  what=f"len(mask)={self.n} * (4 + 1 + classes={self.classes})")
        batch, _, h, w = x.shape
        if not isinstance(train, (bool, np.bool_)):
            raise TypeError(f"train must be a bool, got {type(train).__name__}")
        train = bool(train)
        out = _validate.out_buffers(out, x.shape)
        if out is not None and any(np.shares_memory(x, a) for a in out):
            raise ValueError("out arrays must not share memory with x")
        if batch * self.max_boxes * 6 > _validate.INT_MAX:
            raise ValueError(f"the truth buffer would hold batch*max_boxes*6 = {batch}*{self.max_boxes}*6 = "
                             f"{batch * self.max_boxes * 6} floats, more than a C int counts ({_validate.INT_MAX}): "
                             "upstream's l.truths*batch overflows")
        call = _native.ABCall(self._spec(), batch, h, w, out)
        if call.check_layer() != _native.DN_OK:
            raise ValueError(f"the C core refused {self!r} on a {w}x{h} grid (sizes too large for a C int?)")
        packed = None
        if truth is not None or train:
            if truth is None:
                raise ValueError("train=True needs truth")
            packed = self.pack_truth(truth, batch)
            if out is not None:  # checked after packing: the buffers the C core reads
                _validate.no_aliasing({"output": out[0], "delta": out[1]}, {"x": x, "truth": packed})
            if train:
                rc, image, row = call.check_truths(packed)
                if rc != _native.DN_OK:
                    if row < 0:
                        raise ValueError(f"the C core refused {self!r}")
                    raise self._truth_error(_native.ERRORS[rc], image, row, packed, w=w, h=h)
        rc = call.forward(x, packed, train=train, net_w=net_w, net_h=net_h, index=index, threads=threads)
        if rc != _native.DN_OK:  # pragma: no cover - everything was checked above
            raise RuntimeError(f"the C core refused the input ({_native.ERRORS.get(rc, rc)})")
        if not train:
            return YoloResult(output=call.output, delta=call.delta, cost=np.float32(0), stats=None, count=-1,
                              labels=call.labels, class_ids=call.class_ids, total_bbox=0, rewritten_bbox=0,
                              skipped_truths=0)
        s = call.stats
        stats = self._stats(s, index)
        sums = call.sums()
        warn: Tuple[Any, ...] = ()
        if sums["skipped_truths"] and packed is not None:
            warn = (self.n * h * w, self.classes, self._skipped_rows(packed))
        return YoloResult(output=call.output, delta=call.delta, cost=np.float32(call.cost[0]), stats=stats,
                          count=s.count, labels=call.labels, class_ids=call.class_ids,
                          total_bbox=int(sums["total_bbox"]), rewritten_bbox=int(sums["rewritten_bbox"]),
                          skipped_truths=int(sums["skipped_truths"]), sums=sums, _warn=warn)

    def _stats(self, s: Any, index: int) -> YoloStats:
        """The printed statistics from the C core's ab_yolo_stats."""
        details = self.show_details != 0
        return YoloStats(
            avg_iou=s.avg_iou, class_loss=s.class_loss if details else None,
            iou_loss=s.iou_loss if details else None, total_loss=s.total_loss, count=s.count, index=index,
            loss_name="mse" if self.iou_loss == "mse" else ("giou" if self.iou_loss == "giou" else "iou"),
            iou_normalizer=_f32(self.iou_normalizer), obj_normalizer=_f32(self.obj_normalizer),
            cls_normalizer=_f32(self.cls_normalizer), show_details=self.show_details)

    def _truth_error(self, kind: str, image: int, row: int, packed: np.ndarray, *, w: int, h: int) -> ValueError:
        """The ValueError for a truth row the C core refused."""
        return _validate.ab_truth_error(kind, image, row, packed, w=w, h=h, classes=self.classes, map_=self.map,
                                        truth_thresh=float(self.truth_thresh))

    def _skipped_rows(self, packed: np.ndarray) -> List[List[Tuple[float, float, float, float, int]]]:
        """Per image, the rows upstream warns about (before the x == 0 end)."""
        rows = []
        for b in range(packed.shape[0]):
            image = []
            for r in packed[b]:
                if r[0] == 0:
                    break
                cid = int(r[4])
                if not 0 <= cid < self.classes:
                    image.append((float(r[0]), float(r[1]), float(r[2]), float(r[3]), cid))
            rows.append(image)
        return rows


def layer_from_params(params: Mapping[str, Any]) -> YoloLayer:
    """The layer a ``yolo_ab`` golden case's ``params`` describe (the shared
    set's format): parse_yolo's resolved fields."""
    p = params
    max_delta = p.get("max_delta")
    if max_delta is not None and np.float32(max_delta) == _native.FLT_MAX:
        max_delta = None
    return YoloLayer(
        classes=p["classes"], anchors=p["anchors"], mask=p["mask"], total=p["total"], max_boxes=p["max_boxes"],
        ignore_thresh=p["ignore_thresh"], truth_thresh=p["truth_thresh"], iou_thresh=p["iou_thresh"],
        iou_thresh_kind=IOU_LOSS_NAMES[p["iou_thresh_kind_enum"]] if "iou_thresh_kind_enum" in p
        else p["iou_thresh_kind"],
        iou_loss=IOU_LOSS_NAMES[p["iou_loss_enum"]] if "iou_loss_enum" in p else p["iou_loss"],
        iou_normalizer=p["iou_normalizer"], obj_normalizer=p["obj_normalizer"], cls_normalizer=p["cls_normalizer"],
        delta_normalizer=p.get("delta_normalizer", 1), max_delta=max_delta, scale_x_y=p["scale_x_y"],
        new_coords=p["new_coords"], objectness_smooth=p["objectness_smooth"],
        label_smooth_eps=p["label_smooth_eps"], focal_loss=p["focal_loss"],
        counters_per_class=p.get("counters_per_class"), map=p.get("map"), show_details=p["show_details"])


def forward_case(case: Mapping[str, Any]) -> YoloResult:
    """Run a loaded ``yolo_ab`` golden case (its arrays and its params dict)
    through the layer its params describe."""
    p = case["params"]
    layer = layer_from_params(p)
    return layer.forward(case["input"], case["truth"], net_w=p["net_w"], net_h=p["net_h"],
                         train=bool(case["train"]), index=p["net_index"])


# AlexeyAB's [Gaussian_yolo] lives in its own module; it is part of this namespace.
from .gaussian import GaussianDetections, GaussianYoloLayer, GaussianYoloResult, GaussianYoloStats  # noqa: E402,F401
# ---- AlexeyAB's [region] (issue 23; its own module) ----------------------------
from .ab_region import RegionLayer, RegionResult, RegionStats  # noqa: E402,F401
