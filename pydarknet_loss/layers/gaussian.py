"""AlexeyAB/darknet's ``[Gaussian_yolo]`` layer (Gaussian YOLOv3: boxes with
uncertainty), bit-exact to upstream commit 59596d7
(src/gaussian_yolo_layer.c, parse_gaussian_yolo in src/parser.c).

```python
from pydarknet_loss import alexeyab
layer = alexeyab.GaussianYoloLayer(classes=80, num=9, mask=[6, 7, 8], anchors=[...], batch=2)
res = layer.forward(x, truth, net_w=608, net_h=608, index=106)
res.output, res.delta, res.cost, res.stats.line(), res.text
```

The options are the cfg keys of a ``[Gaussian_yolo]`` section, already
parsed, with upstream's defaults.  The C core is
``darknet_src/ab_gaussian_yolo_layer.c`` (``ab_forward_gaussian_yolo_layer``),
which lists what differs from AlexeyAB's ``[yolo]``.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .. import _native, _validate
from . import layout as layout_mod
from ._readonly import ReadOnly
from .alexeyab import IOU_LOSS_ENUM, IOU_THRESH_KINDS, _flag, _fmt

TruthLike = Union[np.ndarray, Sequence[np.ndarray]]
OutBuffers = Tuple[np.ndarray, np.ndarray]

#: YOLO_POINT (include/darknet.h): upstream reads "left_top" and "right_bottom"; anything else is the centre.
YOLO_POINT_ENUM = {"center": 1, "left_top": 2, "right_bottom": 4}
YOLO_POINT_NAMES = {v: k for k, v in YOLO_POINT_ENUM.items()}
#: NMS_KIND (include/darknet.h), for the detections' NMS.
NMS_KIND_ENUM = {"default": 0, "greedynms": 1, "diounms": 2, "cornersnms": 3}
#: Keys a cfg section may hold that do not change this layer's forward: what parse_network_cfg
#: reads after every layer, and [yolo]-only options parse_gaussian_yolo never reads (upstream
#: reports them as unused).  Accepted, with a DarknetQuirkWarning, so that a section's options
#: can be passed as they are; any other unknown key is a TypeError.
IGNORED_KEYS = ("clip", "onlyforward", "dont_update", "burnin_update", "stopbackward", "train_only_bn", "dontload",
                "dontloadscales", "learning_rate", "show_details", "new_coords", "focal_loss", "track_history_size",
                "sim_thresh", "dets_for_track", "dets_for_show", "track_ciou_norm", "embedding_layer")
#: The entries of one anchor before its classes (entry_gaussian_index).
ENTRIES = ("x", "sigma_x", "y", "sigma_y", "w", "sigma_w", "h", "sigma_h", "objectness")


@dataclass(frozen=True)
class GaussianYoloStats:
    """The values upstream hands to the final fprintf (stderr) of a training
    forward, exactly: float values divided as upstream divides them (NaN
    where a count is 0: upstream prints ``-nan``)."""

    avg_iou: float  #: avg_iou/count: the IoU for iou_loss=mse, the GIoU for every other iou_loss
    avg_cat: float  #: avg_cat/class_count
    avg_obj: float  #: avg_obj/count
    avg_anyobj: float  #: avg_anyobj/(w*h*n*batch)
    recall: float  #: .5R
    recall75: float  #: .75R
    count: int
    class_count: int
    class_loss: float  #: |delta without the 8 box entries|^2 / batch (%.2f)
    iou_loss: float  #: (|delta without w, sigma_w, h, sigma_h|^2 - class part) / batch (%.2f)
    uc_loss: float  #: (|delta|^2 - the previous) / batch (%.2f)
    total_loss: float  #: |delta|^2 / batch (%.2f)
    index: int = 0

    #: The names of the printed values, in print order (the golden cases' ``stats_names``).
    NAMES = ("avg_iou", "class", "obj", "no_obj", ".5R", ".75R", "class_loss", "iou_loss", "uc_loss", "total_loss")

    def line(self) -> str:
        """Upstream's line, character for character (two spaces before
        ``count``, a trailing space), without the final newline."""
        return (f"Region {self.index} Avg IOU: {_fmt(self.avg_iou)}, Class: {_fmt(self.avg_cat)}, "
                f"Obj: {_fmt(self.avg_obj)}, No Obj: {_fmt(self.avg_anyobj)}, .5R: {_fmt(self.recall)}, "
                f".75R: {_fmt(self.recall75)},  count: {self.count}, class_loss = {_fmt(self.class_loss, '%.2f')}, "
                f"iou_loss = {_fmt(self.iou_loss, '%.2f')}, uc_loss = {_fmt(self.uc_loss, '%.2f')}, "
                f"total_loss = {_fmt(self.total_loss, '%.2f')} ")

    def as_array(self) -> np.ndarray:
        """The printed %f / %.2f values as float64, in print order (the
        golden cases' ``stats``)."""
        return np.array([self.avg_iou, self.avg_cat, self.avg_obj, self.avg_anyobj, self.recall, self.recall75,
                         self.class_loss, self.iou_loss, self.uc_loss, self.total_loss], dtype=np.float64)


@dataclass(frozen=True)
class GaussianYoloResult:
    """What one forward_gaussian_yolo_layer call leaves behind, in darknet's
    (B, C, H, W) layout with C = n*(9 + classes) (entries per anchor:
    x, sigma_x, y, sigma_y, w, sigma_w, h, sigma_h, objectness, classes)."""

    output: np.ndarray  #: l.output, float32 (activated; w and h raw)
    delta: np.ndarray  #: l.delta, float32
    cost: np.float32  #: *l.cost = |delta|^2 (0 when train=False)
    stats: Optional[GaussianYoloStats]  #: None when train=False
    count: int  #: the printed count (-1 when train=False)
    warnings: str = ""  #: the stdout warnings for class ids >= classes (see ``text``)

    @property
    def text(self) -> str:
        """Everything gaussian_yolo_layer.c prints during the call, in
        order: the class-id warnings (stdout), then the statistics line and
        its newline (stderr).  Empty when train=False."""
        if self.stats is None:
            return ""
        return self.warnings + self.stats.line() + "\n"

    def net_delta(self) -> np.ndarray:
        """What backward_gaussian_yolo_layer adds to state.delta: l.delta (a copy)."""
        return self.delta.copy()


def _real(name: str, value: Any) -> np.float32:
    return _validate.real32(name, value)


def _choice(name: str, value: Any, allowed: Sequence[str], upstream: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r} ({upstream})")
    return value


class GaussianYoloLayer(ReadOnly):
    """AlexeyAB's ``[Gaussian_yolo]`` layer, bit-exact to upstream 59596d7.

    The keyword arguments are the section's cfg keys, already parsed, with
    ``parse_gaussian_yolo``'s defaults: ``classes`` (20), ``num`` (1: the
    anchors of the network), ``mask`` (default: every anchor), ``anchors``
    (w, h pairs; fewer than ``2*num`` values leave upstream's 0.5), ``max``
    (200: truth rows per image), ``max_delta`` (None: unset),
    ``counters_per_class`` (``classes`` ints: class multipliers),
    ``label_smooth_eps``, ``scale_x_y``, ``objectness_smooth``,
    ``uc_normalizer`` (1), ``iou_normalizer`` (.75), ``obj_normalizer``,
    ``cls_normalizer``, ``delta_normalizer`` (read by backward on the GPU
    only), ``iou_loss`` ("mse", "iou", "giou", "diou", "ciou"),
    ``iou_thresh_kind`` ("iou", "giou", "diou", "ciou"), ``beta_nms``,
    ``nms_kind``, ``yolo_point`` ("center", "left_top", "right_bottom"),
    ``jitter``, ``resize``, ``random`` (data loading only), ``ignore_thresh``
    (.5), ``truth_thresh`` (1), ``iou_thresh`` (1), ``map`` (a class map: the
    map file's ints).  ``batch``: the images a forward takes (None: any).

    Refused, because upstream would read or write outside its buffers: more
    than ``2*num`` anchor values (the parser writes past ``biases``), mask
    values outside ``[0, num)``, map values outside ``[0, classes)``, and at
    forward time truth rows whose class id loop 2 uses outside
    ``[0, classes)`` (or outside the map), and rows whose cell lies outside
    the grid.  Upstream behaviour reproduced on purpose is listed in the
    project's documentation ("AlexeyAB's [Gaussian_yolo]"), each quirk
    tested by name.
    """

    kind = "gaussian_yolo_ab"  #: the golden cases' kind
    coords = 8  #: x, sigma_x, y, sigma_y, w, sigma_w, h, sigma_h before objectness
    ENTRY_NAMES = ENTRIES  #: the entries of one anchor before its classes

    def __init__(self, *, classes: int = 20, num: int = 1, mask: Optional[Sequence[int]] = None,
                 anchors: Union[Sequence[float], np.ndarray, None] = None, max: int = 200,
                 max_delta: Optional[float] = None, counters_per_class: Optional[Sequence[int]] = None,
                 label_smooth_eps: float = 0, scale_x_y: float = 1, objectness_smooth: int = 0,
                 uc_normalizer: float = 1, iou_normalizer: float = .75, obj_normalizer: float = 1,
                 cls_normalizer: float = 1, delta_normalizer: float = 1, iou_loss: str = "mse",
                 iou_thresh_kind: str = "iou", beta_nms: float = .6, nms_kind: str = "default",
                 yolo_point: str = "center", jitter: float = .2, resize: float = 1, ignore_thresh: float = .5,
                 truth_thresh: float = 1, iou_thresh: float = 1, random: float = 0,
                 map: Optional[Sequence[int]] = None, batch: Optional[int] = None, **ignored: Any) -> None:
        for key in ignored:
            if key not in IGNORED_KEYS:
                raise TypeError(f"GaussianYoloLayer() got an unexpected keyword argument {key!r}: "
                                f"parse_gaussian_yolo reads none such (its options: {', '.join(_OPTIONS)})")
            warnings.warn(f"{key}: parse_gaussian_yolo never reads it for the loss (upstream leaves it to the "
                          "network or reports it unused); ignored", _validate.DarknetQuirkWarning, stacklevel=2)
        self.classes = _validate.integer("classes", classes, minimum=1, maximum=2**31 - 10)
        self.num = _validate.integer("num", num, minimum=1, maximum=_validate.MAX_ANCHORS)
        self.total = self.num
        values = np.zeros(0, dtype=np.float32) if anchors is None else _validate.anchors32(anchors, pairs=False)
        if len(values) > 2 * self.num:
            raise ValueError(f"anchors give {len(values)} values but num = {self.num} holds {2 * self.num}: "
                             "upstream's parse_gaussian_yolo writes every value into l.biases, past its end "
                             "(give num = the number of anchor pairs)")
        self.anchors = np.full(2 * self.num, 0.5, dtype=np.float32)
        self.anchors[:len(values)] = values
        self.mask_given = mask is not None
        if mask is not None:
            m = _validate.int_array("mask", mask)
            bad = np.flatnonzero((m < 0) | (m >= self.num))
            if bad.size:
                i = int(bad[0])
                raise ValueError(f"mask[{i}] = {int(m[i])} is not an anchor index: expected 0 <= mask < num = "
                                 f"{self.num} (upstream would read past its biases)")
            self.mask = m
        else:
            self.mask = np.arange(self.num, dtype=np.int32)
        self.n = len(self.mask)
        self.max = _validate.integer("max", max, minimum=0, maximum=2**31 - 1)
        self.max_delta = None if max_delta is None else _real("max_delta", max_delta)
        self.label_smooth_eps = _real("label_smooth_eps", label_smooth_eps)
        self.scale_x_y = _real("scale_x_y", scale_x_y)
        self.objectness_smooth = _flag("objectness_smooth", objectness_smooth)
        self.uc_normalizer = _real("uc_normalizer", uc_normalizer)
        self.iou_normalizer = _real("iou_normalizer", iou_normalizer)
        self.obj_normalizer = _real("obj_normalizer", obj_normalizer)
        self.cls_normalizer = _real("cls_normalizer", cls_normalizer)
        self.delta_normalizer = _real("delta_normalizer", delta_normalizer)
        self.iou_loss = _choice("iou_loss", iou_loss, tuple(IOU_LOSS_ENUM),
                                "upstream's parser reads any other string as 'iou'; say 'iou' if you mean it")
        self.iou_thresh_kind = _choice("iou_thresh_kind", iou_thresh_kind, IOU_THRESH_KINDS,
                                       "upstream prints 'Wrong iou_thresh_kind' and uses iou")
        self.beta_nms = _real("beta_nms", beta_nms)
        self.nms_kind = _choice("nms_kind", nms_kind, tuple(NMS_KIND_ENUM),
                                "upstream's parser reads any other string as 'default'")
        self.yolo_point = _choice("yolo_point", yolo_point, tuple(YOLO_POINT_ENUM),
                                  "upstream's parser reads any other string as 'center'; say 'center' if you "
                                  "mean it")
        self.jitter = _real("jitter", jitter)
        self.resize = _real("resize", resize)
        self.ignore_thresh = _real("ignore_thresh", ignore_thresh)
        self.truth_thresh = _real("truth_thresh", truth_thresh)
        self.iou_thresh = _real("iou_thresh", iou_thresh)
        self.random = _real("random", random)
        if self.max == 0 and (self.truth_thresh < 0 or (self.ignore_thresh < 0 and self.objectness_smooth)):
            raise ValueError(
                "truth_thresh < 0 (or ignore_thresh < 0 with objectness_smooth) with max = 0: every cell then "
                "takes truth row 0 as its truth (best_iou = 0 already beats the threshold), and with max = 0 "
                "the truth buffer has no row 0 (upstream reads outside it)")
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
            mp = _validate.int_array("map", map)
            bad = np.flatnonzero((mp < 0) | (mp >= self.classes))
            if bad.size:
                i = int(bad[0])
                raise ValueError(f"map[{i}] = {int(mp[i])} sends class {i} outside [0, {self.classes}): "
                                 "upstream would index its deltas with it")
            self.map = mp
        self.batch = None if batch is None else _validate.integer("batch", batch, minimum=1, maximum=2**31 - 1)
        self._freeze()

    def _max_delta32(self) -> np.float32:
        return _native.FLT_MAX if self.max_delta is None else np.float32(self.max_delta)

    @property
    def max_boxes(self) -> int:
        """``max``: the truth rows per image (the image stride is max*6), as [yolo] names it."""
        return self.max

    @property
    def channels(self) -> int:
        """C of the layer's input: n * (8 + 1 + classes)."""
        return self.n * (9 + self.classes)

    def __repr__(self) -> str:
        return (f"alexeyab.GaussianYoloLayer(classes={self.classes}, num={self.num}, mask={self.mask.tolist()}, "
                f"iou_loss={self.iou_loss!r}, yolo_point={self.yolo_point!r}, max={self.max})")

    def params(self) -> Dict[str, Any]:
        """The constructor's arguments as held (float32 values as Python
        floats), cfg keys as names."""
        f = float
        return dict(
            classes=self.classes, num=self.num, mask=self.mask.tolist() if self.mask_given else None,
            anchors=[f(v) for v in self.anchors], max=self.max,
            max_delta=None if self.max_delta is None else f(self.max_delta),
            counters_per_class=None if self.counters_per_class is None else self.counters_per_class.tolist(),
            label_smooth_eps=f(self.label_smooth_eps), scale_x_y=f(self.scale_x_y),
            objectness_smooth=self.objectness_smooth, uc_normalizer=f(self.uc_normalizer),
            iou_normalizer=f(self.iou_normalizer), obj_normalizer=f(self.obj_normalizer),
            cls_normalizer=f(self.cls_normalizer), delta_normalizer=f(self.delta_normalizer),
            iou_loss=self.iou_loss, iou_thresh_kind=self.iou_thresh_kind, beta_nms=f(self.beta_nms),
            nms_kind=self.nms_kind, yolo_point=self.yolo_point, jitter=f(self.jitter), resize=f(self.resize),
            ignore_thresh=f(self.ignore_thresh), truth_thresh=f(self.truth_thresh), iou_thresh=f(self.iou_thresh),
            random=f(self.random), map=None if self.map is None else self.map.tolist(), batch=self.batch)

    def _spec(self) -> _native.GaussianSpec:
        return _native.GaussianSpec(
            n=self.n, classes=self.classes, total=self.total, max_boxes=self.max, biases=self.anchors,
            mask=self.mask, map=self.map, classes_multipliers=self.classes_multipliers,
            scalars=dict(ignore_thresh=self.ignore_thresh, truth_thresh=self.truth_thresh,
                         iou_thresh=self.iou_thresh, iou_thresh_kind=IOU_LOSS_ENUM[self.iou_thresh_kind],
                         iou_loss=IOU_LOSS_ENUM[self.iou_loss], iou_normalizer=self.iou_normalizer,
                         uc_normalizer=self.uc_normalizer, obj_normalizer=self.obj_normalizer,
                         cls_normalizer=self.cls_normalizer, max_delta=self._max_delta32(),
                         scale_x_y=self.scale_x_y, label_smooth_eps=self.label_smooth_eps,
                         objectness_smooth=self.objectness_smooth, yolo_point=YOLO_POINT_ENUM[self.yolo_point]))

    def pack_truth(self, truth: TruthLike, batch: int) -> np.ndarray:
        """The (batch, max, 6) float32 buffer upstream reads (rows x, y, w,
        h, class_id, track_id; zeros after the last box)."""
        return _validate.ab_truth_buffer(truth, batch=batch, max_boxes=self.max)

    def _input(self, x: Any) -> np.ndarray:
        x = _validate.layer_input(x, channels=self.channels,
                                  what=f"n={self.n} * (8 + 1 + classes={self.classes})")
        if self.batch is not None and x.shape[0] != self.batch:
            raise ValueError(f"x has batch {x.shape[0]} but the layer was made for batch = {self.batch}")
        return x

    def forward(self, x: np.ndarray, truth: Optional[TruthLike] = None, *, train: bool = True,
                seen: Optional[int] = None, net_w: int = 416, net_h: int = 416, index: int = 0,
                out: Optional[OutBuffers] = None, layout: str = "nchw") -> GaussianYoloResult:
        """Run upstream's forward_gaussian_yolo_layer (CPU build).

        ``x``: float32 (B, n*(9+classes), H, W), darknet's layout.
        ``truth``: float32 (B, max, 6) packed, or a list of B arrays of
        shape (k, 5) or (k, 6); not needed when ``train`` is False.
        ``seen``: accepted for a uniform signature; this layer never reads
        it.  ``net_w``, ``net_h``: the network's input size.  ``index``: the
        layer index printed as "Region %d".  ``out``: optional (output,
        delta) float32 arrays of x's shape to write into.  ``layout``: x (and
        the returned output, delta) as "nchw" (darknet's), "nhwc" or "bahwc"
        ((B, n, H, W, 9 + classes)).
        """
        net_w = _validate.c_int("net_w", net_w, minimum=1)
        net_h = _validate.c_int("net_h", net_h, minimum=1)
        index = _validate.c_int("index", index)
        if seen is not None:
            _validate.integer("seen", seen, minimum=0)
        if not isinstance(train, (bool, np.bool_)):
            raise TypeError(f"train must be a bool, got {type(train).__name__}")
        train = bool(train)
        if layout_mod.check(layout) != "nchw":
            if out is not None:
                raise ValueError(f"out= takes darknet's (B, C, H, W) arrays: with layout={layout!r} the result is "
                                 "a converted copy, so pass out=None (or x in 'nchw')")
            res = self.forward(layout_mod.to_nchw(x, layout, self.n), truth, train=train, seen=seen, net_w=net_w,
                               net_h=net_h, index=index)
            return replace(res, output=layout_mod.from_nchw(res.output, layout, self.n),
                           delta=layout_mod.from_nchw(res.delta, layout, self.n))
        x = self._input(x)
        batch, _, h, w = x.shape
        out = _validate.out_buffers(out, x.shape)
        if out is not None and any(np.shares_memory(x, a) for a in out):
            raise ValueError("out arrays must not share memory with x")
        if batch * self.max * 6 > _validate.INT_MAX:
            raise ValueError(f"the truth buffer would hold batch*max*6 = {batch * self.max * 6} floats, more than "
                             f"a C int counts ({_validate.INT_MAX}): upstream's l.truths*batch overflows")
        call = _native.GaussianCall(self._spec(), batch, h, w, out)
        if call.check_layer() != _native.DN_OK:
            raise ValueError(f"the C core refused {self!r} on a {w}x{h} grid (sizes too large for a C int?)")
        packed = None
        if train:
            if truth is None:
                raise ValueError("train=True needs truth")
            packed = self.pack_truth(truth, batch)
            if out is not None:
                _validate.no_aliasing({"output": out[0], "delta": out[1]}, {"x": x, "truth": packed})
            rc, image, row = call.check_truths(packed, net_w, net_h)
            if rc != _native.DN_OK:
                if row < 0:
                    raise ValueError(f"the C core refused {self!r}")
                raise _validate.gaussian_truth_error(_native.ERRORS[rc], image, row, packed, w=w, h=h,
                                                     classes=self.classes, map_=self.map,
                                                     yolo_point=self.yolo_point)
        rc = call.forward(x, packed, train=train, net_w=net_w, net_h=net_h, index=index)
        if rc != _native.DN_OK:  # pragma: no cover - everything was checked above
            raise RuntimeError(f"the C core refused the input ({_native.ERRORS.get(rc, rc)})")
        if not train:
            return GaussianYoloResult(output=call.output, delta=call.delta, cost=np.float32(0), stats=None,
                                      count=-1)
        s = call.stats
        stats = GaussianYoloStats(
            avg_iou=s.avg_iou, avg_cat=s.avg_cat, avg_obj=s.avg_obj, avg_anyobj=s.avg_anyobj, recall=s.recall,
            recall75=s.recall75, count=s.count, class_count=s.class_count, class_loss=s.class_loss,
            iou_loss=s.iou_loss, uc_loss=s.uc_loss, total_loss=s.total_loss, index=index)
        assert packed is not None
        return GaussianYoloResult(output=call.output, delta=call.delta, cost=np.float32(call.cost[0]), stats=stats,
                                  count=s.count, warnings=self._warnings(packed, w * h * self.n))

    def skipped_rows(self, packed: np.ndarray) -> List[List[Tuple[int, Tuple[float, float, float, float, int]]]]:
        """Per image, the truth rows loop 1 skips with a warning: class id
        (truncated) >= classes, among the rows it reads (up to the first
        x == 0 row whose class id is below classes: such a row with x == 0
        and an id >= classes does *not* end loop 1's list)."""
        rows = []
        for b in range(packed.shape[0]):
            image = []
            for t, r in enumerate(packed[b]):
                cid = int(r[4])
                if cid >= self.classes:
                    image.append((t, (float(r[0]), float(r[1]), float(r[2]), float(r[3]), cid)))
                    continue
                if r[0] == 0:
                    break
            rows.append(image)
        return rows

    def _warnings(self, packed: np.ndarray, cells: int) -> str:
        """The two printf lines per skipped row, for every cell and anchor of
        its image (loop 1), images in order."""
        out = []
        top = self.classes - 1
        for image in self.skipped_rows(packed):
            if not image:
                continue
            block = "".join(
                f"\n Warning: in txt-labels class_id={cid} >= classes={self.classes} in cfg-file. In txt-labels "
                f"class_id should be [from 0 to {top}] \n"
                f" truth.x = {_fmt(x)}, truth.y = {_fmt(y)}, truth.w = {_fmt(w)}, truth.h = {_fmt(h)}, "
                f"class_id = {cid} \n" for _, (x, y, w, h, cid) in image)
            out.append(block * cells)
        return "".join(out)

    def detections(self, output: np.ndarray, *, img_w: int, img_h: int, net_w: int = 416, net_h: int = 416,
                   thresh: float = .5, relative: bool = True, letter: bool = False) -> "GaussianDetections":
        """get_gaussian_yolo_detections on image 0 of ``output`` (a forward's
        activated output, (B, C, H, W)): boxes whose objectness is above
        ``thresh`` (a NaN objectness passes, as upstream notes), each with
        its four sigmas (``uc``: activated sigma_x, sigma_y, sigma_w,
        sigma_h) and class probabilities objectness*class*(1 - mean sigma),
        zeroed at or below ``thresh``; then correct_gaussian_yolo_boxes
        (``letter``: letterboxed input; ``relative``: boxes relative to the
        image, else in pixels)."""
        from .detections import Detections

        out = self._input(output)
        iw, ih, nw, nh = _validate.image_sizes(img_w, img_h, net_w, net_h)
        th = _real("thresh", thresh)
        if not isinstance(relative, (bool, np.bool_)) or not isinstance(letter, (bool, np.bool_)):
            raise TypeError("relative and letter must be bools")
        batch, _, h, w = out.shape
        call = _native.GaussianCall(self._spec(), batch, h, w)
        if call.check_layer() != _native.DN_OK:
            raise ValueError(f"the C core refused {self!r} on a {w}x{h} grid")
        res = call.detections(out, iw, ih, nw, nh, th, bool(relative), bool(letter))
        dets = Detections(bbox=res["bbox"], objectness=res["objectness"], prob=res["prob"])
        return GaussianDetections(dets=dets, uc=res["uc"])


@dataclass(frozen=True, eq=False)
class GaussianDetections:
    """get_gaussian_yolo_detections' result: the detections and, per
    detection, its ``uc`` (the four activated sigmas, (N, 4) float32)."""

    dets: Any
    uc: np.ndarray

    def __len__(self) -> int:
        return len(self.uc)


_OPTIONS = ("classes", "num", "mask", "anchors", "max", "max_delta", "counters_per_class", "label_smooth_eps",
            "scale_x_y", "objectness_smooth", "uc_normalizer", "iou_normalizer", "obj_normalizer", "cls_normalizer",
            "delta_normalizer", "iou_loss", "iou_thresh_kind", "beta_nms", "nms_kind", "yolo_point", "jitter",
            "resize", "ignore_thresh", "truth_thresh", "iou_thresh", "random", "map", "batch")


def layer_from_params(params: Mapping[str, Any]) -> GaussianYoloLayer:
    """The layer a ``gaussian_yolo_ab`` golden case's ``params`` describe:
    its ``kwargs`` (the cfg section's options, parsed), its ``map`` and
    ``batch``."""
    kw = dict(params["kwargs"])
    if "map" in kw or params.get("map") is not None:
        kw["map"] = params.get("map")
    return GaussianYoloLayer(**kw, batch=params["batch"])


def forward_case(case: Mapping[str, Any]) -> GaussianYoloResult:
    """Run a loaded ``gaussian_yolo_ab`` golden case (its arrays and its
    params dict) through the layer its params describe."""
    p = case["params"]
    layer = layer_from_params(p)
    return layer.forward(case["input"], case["truth"], train=bool(case["train"]), seen=int(case.get("seen", 0)),
                         net_w=p["net_w"], net_h=p["net_h"], index=p["net_index"])


__all__ = ["GaussianYoloLayer", "GaussianYoloResult", "GaussianYoloStats", "GaussianDetections", "ENTRIES",
           "YOLO_POINT_ENUM", "layer_from_params", "forward_case"]
