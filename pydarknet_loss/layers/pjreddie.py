"""The public layer classes, their results and statistics."""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from .. import _native, _validate
from . import layout as layout_mod
from ._readonly import ReadOnly
from .detections import Detections
from ..files.tree import Tree, as_tree

YOLO_MAX_TRUTHS = 90  # upstream's truth stride per image for [yolo], whatever `max` says
REGION_MAX_TRUTHS = 30  # and for [region]
BUILDS = ("cpu", "gpu")  # darknet's CPU build and its GPU=1 build (forward(build=...))

TruthLike = Union[np.ndarray, Sequence[np.ndarray]]
OutBuffers = Tuple[np.ndarray, np.ndarray]


def _fmt(v: float) -> str:
    """printf("%f") of a double as glibc writes it: NaN carries its sign."""
    if math.isnan(v):
        return "-nan" if math.copysign(1.0, v) < 0 else "nan"
    return "%f" % v


def _check_build(build: str) -> str:
    if build not in ("cpu", "gpu"):
        raise ValueError(f"build must be 'cpu' or 'gpu', got {build!r}")
    return build


# ---- statistics -------------------------------------------------------------

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


@dataclass(frozen=True)
class RegionStats:
    """The values upstream's forward_region_layer prints, exactly."""

    avg_iou: float
    avg_cat: float
    avg_obj: float
    avg_anyobj: float
    recall: float
    count: int

    def line(self) -> str:
        """Upstream's printed line (it prints no layer index), without the
        trailing newline."""
        return (f"Region Avg IOU: {_fmt(self.avg_iou)}, Class: {_fmt(self.avg_cat)}, "
                f"Obj: {_fmt(self.avg_obj)}, No Obj: {_fmt(self.avg_anyobj)}, "
                f"Avg Recall: {_fmt(self.recall)},  count: {self.count}")

    def as_array(self) -> np.ndarray:
        """The five printed floats as float64, in print order."""
        return np.array([self.avg_iou, self.avg_cat, self.avg_obj, self.avg_anyobj, self.recall],
                        dtype=np.float64)


# ---- results ----------------------------------------------------------------

@dataclass(frozen=True)
class YoloResult:
    """What one forward_yolo_layer call leaves behind."""

    output: np.ndarray  #: l.output, float32, shape of x
    delta: np.ndarray  #: l.delta, float32, shape of x (minus the gradient of the implied loss)
    cost: np.float32  #: *l.cost = pow(mag_array(delta), 2)
    stats: Optional[YoloStats]  #: None when train=False
    layout: str = field(default="nchw", repr=False)  #: the layout of output and delta (as forward's x)

    def net_delta(self, build: str = "cpu") -> np.ndarray:
        """What backward_yolo_layer adds to net.delta: l.delta itself, on the
        CPU and the GPU build alike (a copy)."""
        _check_build(build)
        return self.delta.copy()


@dataclass(frozen=True)
class RegionResult:
    """What one forward_region_layer call (CPU build) leaves behind."""

    output: np.ndarray  #: l.output, float32, shape of x
    delta: np.ndarray  #: l.delta, float32, shape of x
    cost: np.float32  #: *l.cost = pow(mag_array(delta), 2)
    stats: Optional[RegionStats]  #: None when train=False
    n: int = field(default=1, repr=False)
    coords: int = field(default=4, repr=False)
    background: int = field(default=0, repr=False)
    layout: str = field(default="nchw", repr=False)  #: the layout of output and delta (as forward's x)

    def net_delta(self, build: str = "cpu") -> np.ndarray:
        """What backward_region_layer adds to net.delta.

        ``"cpu"``: zero.  Upstream's CPU backward_region_layer has its whole
        body commented out, so a CPU build trains the layers below on no
        gradient from [region] at all.

        ``"gpu"``: backward_region_layer_gpu multiplies delta by the logistic's
        derivative (1-y)*y, computed in float as the kernel does, on x, y, the
        mask coords (coords > 4) and objectness (unless background); classes
        and w, h pass as they are.  So on a GPU build x, y and objectness learn
        a squared error on the sigmoid's output, not a cross-entropy on its
        logit.  This applies the GPU backward to this result's output and
        delta, which are the CPU build's: a GPU build's own forward differs
        (its logistic runs expf in float, it activates the mask coords, and its
        tree softmax is per cell).
        """
        if _check_build(build) == "cpu":
            return np.zeros_like(self.delta)
        delta = layout_mod.to_nchw(self.delta, self.layout, self.n, "delta")
        output = layout_mod.to_nchw(self.output, self.layout, self.n, "output")
        b, c, h, w = delta.shape
        per_anchor = c // self.n
        entries = [0, 1, *range(4, self.coords)] + ([] if self.background else [self.coords])
        y = output.reshape(b, self.n, per_anchor, h, w)[:, :, entries]
        nd = delta.copy()
        v = nd.reshape(b, self.n, per_anchor, h, w)
        v[:, :, entries] = v[:, :, entries] * ((np.float32(1) - y) * y)
        return layout_mod.from_nchw(nd, self.layout, self.n)


# ---- layers -----------------------------------------------------------------

class _LossLayer(ReadOnly):
    """What [yolo] and [region] share: input checks, truth packing, the call.

    A layer is validated once, when it is built, and is read-only after
    that: assigning an attribute raises AttributeError, and its arrays are
    read-only copies that cannot be made writable again.  (The arrays that
    reach C are checked again on every call, so even a layer changed behind
    its back with object.__setattr__ is refused, not read out of bounds.)
    """

    kind = ""
    rows = 0  # the truth buffer's rows per image
    n: int
    classes: int
    coords: int
    map: Optional[np.ndarray]
    def _freeze(self) -> None:
        c = _validate.INT_MAX
        if self.channels > c:
            raise ValueError(f"n*(coords+1+classes) = {self.n}*({self.coords}+1+{self.classes}) = {self.channels} "
                             f"channels do not fit the C core's int (<= {c})")
        if self.rows * (self.coords + 1) > c:
            raise ValueError(f"coords = {self.coords}: the truth stride {self.rows}*(coords+1) does not fit the C "
                             f"core's int (<= {c})")
        super()._freeze()

    def _spec(self) -> _native.LayerSpec:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def channels(self) -> int:
        """C of the layer's input: n * (coords + 1 + classes)."""
        return self.n * (self.coords + 1 + self.classes)

    def _used_rows(self) -> int:
        return self.rows

    def _run(self, x: Any, truth: Any, *, train: Any, out: Any, targets: Any = False, layout_: str = "nchw",
             build: str = "cpu", **net: Optional[int]) -> Tuple[_native.Call, bool]:
        if build not in BUILDS:
            raise ValueError(f"build must be one of {', '.join(map(repr, BUILDS))} (darknet's CPU or GPU=1 "
                             f"build), got {build!r}")
        if layout_ != "nchw":
            if out is not None:
                raise ValueError(f"out= takes darknet's (B, C, H, W) arrays: with layout={layout_!r} the result is "
                                 "a converted copy, so pass out=None (or x in 'nchw')")
            x = layout_mod.to_nchw(x, layout_, self.n)
        x = _validate.layer_input(
            x, channels=self.channels,
            what=f"n={self.n} * (coords={self.coords} + 1 + classes={self.classes})")
        batch, _, h, w = x.shape
        if not isinstance(train, (bool, np.bool_)):
            raise TypeError(f"train must be a bool, got {type(train).__name__}")
        if batch * self.rows * (self.coords + 1) > _validate.INT_MAX:
            raise ValueError(f"x's batch of {batch} images needs a truth buffer of {batch}*{self.rows}*"
                             f"{self.coords + 1} floats, more than the C core indexes ({_validate.INT_MAX})")
        out = _validate.out_buffers(out, x.shape)
        packed = None
        if truth is not None or train:
            if truth is None:
                raise ValueError("train=True needs truth")
            packed = _validate.truth_buffer(truth, batch=batch, rows=self.rows, cols=self.coords + 1,
                                            used_rows=self._used_rows())
        if out is not None:
            # After packing: what C reads is x and the packed truth.
            _validate.no_aliasing({"output": out[0], "delta": out[1]}, {"x": x, "truth": packed})
        call = _native.Call(self._spec(), batch, h, w, out, targets=targets)
        why = call.check_layer()
        if why is not None:
            raise ValueError(f"the C core refused {self!r} on a {w}x{h} grid: {why}")
        if packed is not None:
            rc, image, row = call.check_truths(packed)
            if rc != _native.DN_OK:
                raise _validate.truth_error(_native.ERRORS[rc], image, row, packed, w=w, h=h,
                                            classes=self.classes, class_col=self.coords, map_=self.map)
        rc = call.forward(x, packed, train=bool(train), gpu=build == "gpu", **net)
        if _native.is_cuda_code(rc):
            raise _native.cuda_error(rc)
        if rc != _native.DN_OK:  # pragma: no cover - everything was checked above
            raise RuntimeError(f"the C core refused the input ({_native.ERRORS.get(rc, rc)})")
        return call, bool(train)


class YoloLayer(_LossLayer):
    """Darknet's ``[yolo]`` layer (YOLOv3), bit-exact to upstream f6afaab.

    Parameters follow ``parse_yolo``; defaults are its defaults.  ``anchors``
    holds (w, h) pairs in network pixels; ``total`` defaults to the number of
    pairs (upstream's ``num``; with fewer pairs the remaining anchors stay at
    upstream's 0.5).  ``mask`` defaults to every anchor.  Anchors held in grid
    cells (as many PyTorch ports hold them): ``anchors_in="grid"`` with
    ``stride`` = net_w / W of their head (one number, or one per pair).

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
    rows = YOLO_MAX_TRUTHS
    coords = 4

    def __init__(self, classes: int = 20, anchors: Optional[Sequence[float]] = None,
                 mask: Optional[Sequence[int]] = None, ignore_thresh: float = 0.5,
                 truth_thresh: float = 1.0, max_boxes: int = YOLO_MAX_TRUTHS,
                 map: Optional[Sequence[int]] = None, total: Optional[int] = None,
                 jitter: float = 0.2, random: int = 0, anchors_in: str = "pixels",
                 stride: Any = None) -> None:
        self.classes = _validate.c_int("classes", classes, minimum=1)
        anchors = _validate.pixel_anchors(anchors, anchors_in, stride)
        self.total, self.anchors = _validate.biases(anchors, total, "total")
        self.mask = _validate.mask_indices(mask, self.total)
        self.n = len(self.mask)
        _validate.layer_channels(self.n, self.classes)  # l.outputs is an int
        self.ignore_thresh = _validate.real32("ignore_thresh", ignore_thresh)
        self.truth_thresh = _validate.real32("truth_thresh", truth_thresh)
        self.max_boxes = _validate.integer("max_boxes", max_boxes, minimum=0, maximum=YOLO_MAX_TRUTHS)
        self.map = _validate.class_map(map, self.classes)
        self.jitter = _validate.real32("jitter", jitter)
        self.random = _validate.c_int("random", random)
        self._freeze()

    def __repr__(self) -> str:
        return (f"YoloLayer(classes={self.classes}, total={self.total}, mask={self.mask.tolist()}, "
                f"ignore_thresh={float(self.ignore_thresh):g}, truth_thresh={float(self.truth_thresh):g}, "
                f"max_boxes={self.max_boxes}, map={'None' if self.map is None else 'len %d' % len(self.map)})")

    def _used_rows(self) -> int:
        return self.max_boxes

    def _spec(self) -> _native.LayerSpec:
        return _native.LayerSpec(
            kind="yolo", n=self.n, classes=self.classes, total=self.total, biases=self.anchors,
            mask=self.mask, map=self.map,
            scalars=dict(max_boxes=self.max_boxes, ignore_thresh=self.ignore_thresh,
                         truth_thresh=self.truth_thresh))

    def forward(self, x: np.ndarray, truth: Optional[TruthLike] = None, *, net_w: int = 416,
                net_h: int = 416, train: bool = True, index: int = 0,
                out: Optional[OutBuffers] = None, layout: str = "nchw",
                threads: Optional[int] = None, build: str = "cpu") -> YoloResult:
        """Run upstream's forward_yolo_layer.

        ``x``: float32 (B, len(mask)*(5+classes), H, W), darknet's layout.
        ``truth``: float32 (B, 90, 5) packed (rows x, y, w, h, class; zeros
        after the last box), or a list of B float32 arrays of shape (k, 5).
        Not needed when ``train`` is False.  ``index`` is the layer index
        upstream prints in its statistics line.  ``out``: optional
        (output, delta) float32 arrays of x's shape to write into instead of
        allocating new ones (for repeated calls on large inputs); the result
        then refers to them.  ``layout``: x's layout, and the result's:
        ``"nchw"`` (darknet's), ``"nhwc"`` or ``"bahwc"`` ((B, A, H, W, 5+classes)).
        ``threads``: how many threads work on separate images (default:
        $PYDARKNET_LOSS_THREADS, or every CPU this process may use); the
        result is the same bit for bit whatever it is.  ``build``: ``"cpu"``
        (darknet's CPU build) or ``"gpu"`` (its GPU=1 build: the logistic is
        the device's float kernel, computed on this machine's GPU; needs the
        CUDA build and a device, else :class:`CudaError`).
        """
        net_w = _validate.c_int("net_w", net_w, minimum=1)
        net_h = _validate.c_int("net_h", net_h, minimum=1)
        index = _validate.c_int("index", index)
        layout_ = layout_mod.check(layout)
        if threads is not None:
            threads = _validate.integer("threads", threads, minimum=1, maximum=1024)
        call, train = self._run(x, truth, train=train, out=out, layout_=layout_, net_w=net_w, net_h=net_h,
                                index=index, threads=threads, build=build)
        stats = None
        if train:
            s = call.stats
            stats = YoloStats(avg_iou=s.avg_iou, avg_cat=s.avg_cat, avg_obj=s.avg_obj,
                              avg_anyobj=s.avg_anyobj, recall=s.recall, recall75=s.recall75,
                              count=s.count, index=index)
        return YoloResult(output=layout_mod.from_nchw(call.output, layout_, self.n),
                          delta=layout_mod.from_nchw(call.delta, layout_, self.n),
                          cost=np.float32(call.cost[0]) if train else np.float32(0), stats=stats, layout=layout_)

    def detections(self, output: np.ndarray, *, img_w: int, img_h: int, net_w: int = 416, net_h: int = 416,
                   thresh: float = 0.5, relative: bool = True) -> Detections:
        """upstream's get_yolo_detections with correct_yolo_boxes.

        ``output`` is the activated buffer, what ``forward(..., train=False)
        .output`` returns; it is not modified (``output_after`` holds the
        buffer as upstream leaves it).  Boxes come from image 0; with a
        batch of 2, image 1 is taken as the mirrored image and averaged in,
        with upstream's index mix-up (anchor 0's first planes negated, an odd
        width's middle column untouched).  The letterbox uses int division.
        """
        output = _validate.layer_input(output, channels=self.channels, name="output",
                                       what=f"len(mask)={self.n} * (5 + classes={self.classes})")
        img_w, img_h, net_w, net_h = _validate.image_sizes(img_w, img_h, net_w, net_h)
        res = _native.yolo_detections(self._spec(), output, img_w, img_h, net_w, net_h,
                                      _validate.real32("thresh", thresh), _validate.flag("relative", relative))
        return Detections(**res)


class RegionLayer(_LossLayer):
    """Darknet's ``[region]`` layer (YOLOv2, YOLO9000), the CPU build's
    forward pass, bit-exact to upstream f6afaab.

    Parameters follow ``parse_region``; defaults are its defaults (``coords=4``,
    ``softmax=0``, ``thresh=.5``, every scale 1, ``max=30``); ``num`` defaults to
    the number of anchor pairs (anchors in grid cells).  ``tree`` is a darknet
    tree file's path, a :class:`Tree`, or a parent array; ``map`` a list of
    ints.  ``temperature`` is an extension: upstream's parser never sets it,
    so it is 0 and the CPU tree softmax gives NaN; 1.0 makes the tree
    arithmetic usable.  ``log``, ``sqrt``, ``absolute``, ``classfix``,
    ``jitter``, ``random`` and ``max_boxes`` are parsed by upstream and never
    read by the forward pass; they are kept for completeness.

    Upstream behaviour reproduced on purpose, besides what :class:`YoloLayer`
    lists (x == 0 terminator, int truncation, overwrites, NaN statistics):

    * the truth buffer has 30 rows per image and all 30 are read, whatever
      ``max_boxes`` says;
    * while ``seen < 12800`` every cell and anchor is pulled towards its
      anchor box at the cell centre (scale .01);
    * ``mask_scale`` is truncated to int; the mask targets (``coords > 4``)
      are read one entry late, from truth column 5, so the last one is the
      class id; the CPU build leaves the mask coords un-activated;
    * the flat class short-circuit is off when ``softmax`` is on, and it adds
      nothing to the class statistic;
    * the tree softmax applies the group offset per element (it mixes cells
      and anchors when ``n*w*h > 1``) and at temperature 0 is NaN.
    """

    kind = "region"
    rows = REGION_MAX_TRUTHS

    def __init__(self, classes: int = 20, anchors: Optional[Sequence[float]] = None, coords: int = 4,
                 num: Optional[int] = None, softmax: Union[bool, int] = False,
                 background: Union[bool, int] = False, rescore: Union[bool, int] = False,
                 bias_match: Union[bool, int] = False, thresh: float = 0.5, coord_scale: float = 1,
                 object_scale: float = 1, noobject_scale: float = 1, class_scale: float = 1,
                 mask_scale: float = 1, max_boxes: int = REGION_MAX_TRUTHS,
                 map: Optional[Sequence[int]] = None, tree: Any = None, temperature: float = 0.0,
                 jitter: float = 0.2, random: int = 0, log: int = 0, sqrt: int = 0,
                 absolute: int = 0, classfix: int = 0) -> None:
        self.classes = _validate.c_int("classes", classes, minimum=1)
        self.coords = _validate.c_int("coords", coords, minimum=4)
        self.num, self.anchors = _validate.biases(anchors, num, "num", per_anchor=self.coords + 1 + self.classes)
        self.n = self.num
        self.softmax = _validate.flag("softmax", softmax)
        self.background = _validate.flag("background", background)
        self.rescore = _validate.flag("rescore", rescore)
        self.bias_match = _validate.flag("bias_match", bias_match)
        self.thresh = _validate.real32("thresh", thresh)
        self.coord_scale = _validate.real32("coord_scale", coord_scale)
        self.object_scale = _validate.real32("object_scale", object_scale)
        self.noobject_scale = _validate.real32("noobject_scale", noobject_scale)
        self.class_scale = _validate.real32("class_scale", class_scale)
        self.mask_scale = _validate.real32("mask_scale", mask_scale)
        if not -2**31 < float(self.mask_scale) < 2**31:
            raise ValueError(f"mask_scale = {float(self.mask_scale)!r} does not fit the int upstream truncates it "
                             f"to: expected -2**31 < mask_scale < 2**31")
        self.max_boxes = _validate.c_int("max_boxes", max_boxes, minimum=0)
        self.map = _validate.class_map(map, self.classes)
        self.tree: Optional[Tree] = as_tree(tree)
        if self.tree is not None and self.tree.n != self.classes:
            raise ValueError(f"the tree has {self.tree.n} nodes but classes is {self.classes}: "
                             "upstream's tree has one node per class")
        self.temperature = _validate.real32("temperature", temperature)
        self.jitter = _validate.real32("jitter", jitter)
        self.random = _validate.c_int("random", random)
        self.log = _validate.c_int("log", log)
        self.sqrt = _validate.c_int("sqrt", sqrt)
        self.absolute = _validate.c_int("absolute", absolute)
        self.classfix = _validate.c_int("classfix", classfix)
        self._freeze()

    def __repr__(self) -> str:
        return (f"RegionLayer(classes={self.classes}, coords={self.coords}, num={self.num}, "
                f"softmax={self.softmax}, background={self.background}, rescore={self.rescore}, "
                f"bias_match={self.bias_match}, tree={self.tree!r})")

    def _spec(self) -> _native.LayerSpec:
        return _native.LayerSpec(
            kind="region", n=self.n, classes=self.classes, coords=self.coords, biases=self.anchors,
            map=self.map, tree=None if self.tree is None else self.tree._arrays(),
            scalars=dict(softmax=self.softmax, background=self.background, rescore=self.rescore,
                         bias_match=self.bias_match, thresh=self.thresh, coord_scale=self.coord_scale,
                         object_scale=self.object_scale, noobject_scale=self.noobject_scale,
                         class_scale=self.class_scale, mask_scale=self.mask_scale,
                         temperature=self.temperature, max_boxes=self.max_boxes))

    def _warn_tree(self, h: int, w: int) -> None:
        if self.tree is None:
            return
        if self.temperature == 0:
            warnings.warn(
                "upstream's CPU softmax-tree path is broken and reproduced as is: parse_region never "
                "sets the temperature, so it is 0 and every group's softmax is NaN (pass "
                "temperature=1.0 to use the tree arithmetic)", _validate.DarknetQuirkWarning, stacklevel=3)
        if self.n * h * w > 1:
            warnings.warn(
                f"upstream's CPU softmax-tree path applies the group offset per element: with "
                f"n*w*h = {self.n * h * w} > 1 each group's softmax mixes entries of different cells "
                "and anchors and overwrites them (reproduced as is)", _validate.DarknetQuirkWarning,
                stacklevel=3)

    def forward(self, x: np.ndarray, truth: Optional[TruthLike] = None, *, seen: int = 0,
                train: bool = True, out: Optional[OutBuffers] = None, layout: str = "nchw",
                threads: Optional[int] = None, build: str = "cpu") -> RegionResult:
        """Run upstream's forward_region_layer (``build="cpu"``, the default)
        or forward_region_layer_gpu (``build="gpu"``).

        ``x``: float32 (B, num*(coords+1+classes), H, W).  ``truth``: float32
        (B, 30, coords+1) packed, or a list of B float32 arrays of shape
        (k, coords+1).  ``seen``: upstream's ``*net.seen`` (images seen so
        far; below 12800 the prior-box rule applies).  ``layout``: x's layout,
        and the result's (``"nchw"``, ``"nhwc"``, ``"bahwc"``).  ``threads`` as
        for :meth:`YoloLayer.forward`.  ``build="gpu"``: darknet's GPU=1
        build, computed on this machine's GPU: the float logistic kernel (on
        the mask coords too), the device softmax (its largest value taken
        over ints) and the tree softmax at temperature 1, one cell and anchor
        at a time (neither CPU tree quirk); needs the CUDA build and a device.
        """
        seen = _validate.integer("seen", seen, minimum=0, maximum=_native.SIZE_MAX)
        layout_ = layout_mod.check(layout)
        if isinstance(x, np.ndarray) and x.ndim == 4 and layout_ != "bahwc" and build == "cpu":
            self._warn_tree(*(x.shape[2:4] if layout_ == "nchw" else x.shape[1:3]))
        if threads is not None:
            threads = _validate.integer("threads", threads, minimum=1, maximum=1024)
        call, train = self._run(x, truth, train=train, out=out, layout_=layout_, seen=seen, threads=threads,
                                build=build)
        stats = None
        if train:
            s = call.stats
            stats = RegionStats(avg_iou=s.avg_iou, avg_cat=s.avg_cat, avg_obj=s.avg_obj,
                                avg_anyobj=s.avg_anyobj, recall=s.recall, count=s.count)
        return RegionResult(output=layout_mod.from_nchw(call.output, layout_, self.n),
                            delta=layout_mod.from_nchw(call.delta, layout_, self.n),
                            cost=np.float32(call.cost[0]) if train else np.float32(0), stats=stats,
                            n=self.n, coords=self.coords, background=self.background, layout=layout_)

    def detections(self, output: np.ndarray, *, img_w: int, img_h: int, net_w: int = 416, net_h: int = 416,
                   thresh: float = 0.5, relative: bool = True, tree_thresh: float = 0.5,
                   map: Optional[Sequence[int]] = None) -> Detections:
        """upstream's get_region_detections with correct_region_boxes: all
        num*h*w detections of image 0 (index anchor*h*w + cell), in that
        order.  Batch 2 is flip-averaged as [yolo]'s.  With a tree the class
        probabilities are multiplied down the hierarchy in place; then
        ``map`` (tree only) picks 200 classes, as upstream reads map[0..199]
        whatever its length, so a map must have at least 200 entries; without
        a map the deepest class above ``tree_thresh`` gets the objectness.
        ``mask`` holds the mask coords when coords > 4.
        """
        output = _validate.layer_input(
            output, channels=self.channels, name="output",
            what=f"n={self.n} * (coords={self.coords} + 1 + classes={self.classes})")
        img_w, img_h, net_w, net_h = _validate.image_sizes(img_w, img_h, net_w, net_h)
        cmap = None
        if map is not None and self.tree is None:
            warnings.warn("map is only read on the tree path; upstream ignores it for this layer",
                          _validate.DarknetQuirkWarning, stacklevel=2)
        if map is not None and self.tree is not None:
            cmap = _validate.class_map(map, self.classes)
            if len(cmap) < 200:
                raise ValueError(f"map has {len(cmap)} entries; upstream's tree+map path reads map[0..199] "
                                 "whatever its length (upstream's own coco9k.map, 80 lines, overruns)")
            if self.classes < 200:
                raise ValueError(f"upstream's tree+map path writes 200 class probabilities into a "
                                 f"{self.classes}-class detection")
            cmap = np.ascontiguousarray(cmap[:200])
        res = _native.region_detections(self._spec(), output, img_w, img_h, net_w, net_h,
                                        _validate.real32("thresh", thresh),
                                        _validate.real32("tree_thresh", tree_thresh),
                                        _validate.flag("relative", relative), cmap)
        return Detections(**res)
