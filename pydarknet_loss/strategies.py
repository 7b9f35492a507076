"""Hypothesis strategies that draw valid darknet inputs (``pip install
'pydarknet_loss[fuzz]'``).

They compose as Hypothesis strategies do, and shrink towards the simplest
case: one image, a 1x1 grid, one class, no truths, logits near 0::

    from hypothesis import given
    from pydarknet_loss import strategies as S

    @given(S.cases(kind="yolo"))
    def test_my_yolo_loss(case):
        case.check(my_yolo_delta)          # AssertionError with the diagnosis when it departs

* :func:`yolo_layers`, :func:`region_layers`: layer settings (classes,
  anchors, mask, thresholds, map; region's flags);
* :func:`inputs`: a raw layer input for a layer and grid;
* :func:`truths`: a truth buffer for a layer and grid;
* :func:`cases`: all of it together, as :class:`Case`; ``pdl.fuzz`` draws from it.

Every part can be fixed: pass a layer (your cfg's) to :func:`cases`, a
network size with ``net=(w, h)``, or your own strategies for any argument.
The draws reach what the golden generator covers -- duplicate hits in one
cell, ``x == 0`` mid-list, border and cell-boundary boxes, fractional class
ids, saturating and ``exp``-overflowing logits, ``truth_thresh < 1``,
``seen`` on both sides of 12800, empty truth lists -- and never an input
the oracle refuses (a truth cell outside the grid, a class outside the
classes).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np

try:
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - depends on the environment
    raise ImportError("pydarknet_loss.strategies needs Hypothesis: pip install 'pydarknet_loss[fuzz]' "
                      "(or pip install hypothesis)") from None

from .layers import alexeyab
from .layers import hankai
from .layers.layout import from_nchw
from .layers.pjreddie import REGION_MAX_TRUTHS, YOLO_MAX_TRUTHS, RegionLayer, YoloLayer

__all__ = ["Case", "OPTIONS", "STANDARD_HEADS", "alexeyab_layers", "alexeyab_region_layers", "cases",
           "detection_layers", "gaussian_yolo_layers", "hankai_layers", "inputs", "region_layers", "standard_layers",
           "truths", "yolo_layers"]

Layer = Union[YoloLayer, RegionLayer, alexeyab.YoloLayer, alexeyab.GaussianYoloLayer]
Strat = Any  # a SearchStrategy

F = np.float32
#: Network input sizes drawn when none is fixed (the first is what shrinking reaches).
NETS = ((416, 416), (320, 416), (64, 64), (608, 608))
#: Logits that saturate float32's sigmoid, or make exp overflow.
EXTREME_LOGITS = (20.0, -20.0, 40.0, -40.0, 90.0, -90.0, 120.0, -120.0)


def _st(value: Any, default: Strat) -> Strat:
    """A strategy from an argument: a strategy as is, a value as st.just,
    None as the default."""
    if value is None:
        return default
    if hasattr(value, "example") and hasattr(value, "map"):
        return value
    return st.just(value)


# Strategies built once (building one per draw costs more than the draw).
_SEED = st.integers(0, 2**32 - 1)
_CLASSES = st.integers(1, 5)
_TOTAL = st.integers(1, 6)
_IGNORE = st.sampled_from([0.5, 0.7, 0.0, 1.0])
_TRUTH_THRESH = st.sampled_from([1.0, 0.6, 0.3])
_MAX_BOXES = st.sampled_from([YOLO_MAX_TRUTHS, 1, 2, 3])
_BATCH = st.integers(1, 2)
_GRID = st.integers(1, 4)
_MAGNITUDE = st.sampled_from([0.0, 1.0, 4.0, 20.0])
_EXTREME = st.sampled_from(EXTREME_LOGITS)
_STYLES = st.sampled_from(["plain", "tiny", "huge", "border", "cell", "at_anchor", "dup"])
_FRACTION = st.sampled_from([0.0, 0.0, 0.3, 0.99])
_REGION_COORDS = st.sampled_from([4, 4, 4, 5, 6])
_REGION_THRESH = st.sampled_from([0.5, 0.6, 0.0, 1.0])
_SCALE = st.sampled_from([1.0, 5.0, 0.5])
_SEEN = st.sampled_from([50000, 0, 12799, 12800])
_NETS = st.sampled_from(NETS)


def _map(draw: Any, n_classes: int) -> Optional[List[int]]:
    if not draw(st.integers(0, 4)) == 4:  # a class map in one layer of five
        return None
    rng = np.random.default_rng(draw(_SEED))
    return rng.integers(0, n_classes, int(rng.integers(1, 7))).tolist()


@st.composite
def yolo_layers(draw: Any, *, classes: Any = None, total: Any = None, map: Any = None) -> YoloLayer:
    """Settings of a ``[yolo]`` layer: 1 to 6 anchors (pixels, 2 to 400) of
    which a mask takes some, 1 to 5 classes, ``ignore_thresh`` in {.5, .7,
    0, 1} (0 and 1 make ties with the threshold), ``truth_thresh`` 1 or
    below, ``max_boxes`` 90 or a few, sometimes a class map."""
    n_classes = draw(_st(classes, _CLASSES))
    n_total = draw(_st(total, _TOTAL))
    anchors = np.random.default_rng(draw(_SEED)).integers(2, 401, 2 * n_total)
    bits = draw(st.integers(1, 2**n_total - 1))
    mask = [k for k in range(n_total) if bits >> k & 1]
    cmap = _map(draw, n_classes) if map is None else draw(_st(map, st.none()))
    return YoloLayer(classes=n_classes, anchors=[float(a) for a in anchors], mask=mask, total=n_total,
                     ignore_thresh=draw(_IGNORE), truth_thresh=draw(_TRUTH_THRESH), max_boxes=draw(_MAX_BOXES),
                     map=cmap)


@st.composite
def region_layers(draw: Any, *, classes: Any = None, num: Any = None, coords: Any = None) -> RegionLayer:
    """Settings of a ``[region]`` layer (no softmax tree): 1 to 5 anchors in
    grid cells, 1 to 5 classes, coords 4 (sometimes 5 or 6: mask coords),
    softmax, background, rescore and bias_match, thresh and the scales."""
    n_classes = draw(_st(classes, _CLASSES))
    n = draw(_st(num, st.integers(1, 5)))
    n_coords = draw(_st(coords, _REGION_COORDS))
    anchors = np.round(np.random.default_rng(draw(_SEED)).uniform(0.25, 8.0, 2 * n), 2)
    flags = draw(st.integers(0, 15))
    return RegionLayer(classes=n_classes, anchors=[float(a) for a in anchors], num=n, coords=n_coords,
                       softmax=bool(flags & 1), background=bool(flags & 2), rescore=bool(flags & 4),
                       bias_match=bool(flags & 8), thresh=draw(_REGION_THRESH), map=_map(draw, n_classes),
                       coord_scale=draw(_SCALE), object_scale=draw(_SCALE), noobject_scale=draw(_SCALE),
                       class_scale=draw(_SCALE))


@st.composite
def alexeyab_layers(draw: Any, *, classes: Any = None, total: Any = None) -> alexeyab.YoloLayer:
    """Settings of AlexeyAB's ``[yolo]``: its box losses (mse, giou, diou,
    ciou, iou) and normalizers, ``iou_thresh`` extra anchors of each kind,
    ``scale_x_y``, ``new_coords``, ``objectness_smooth``, label smoothing,
    focal loss, ``counters_per_class``, ``max_delta``, ``max_boxes``
    (AlexeyAB's truth stride) and both ``show_details``."""
    return alexeyab.YoloLayer(**_ab_kwargs(draw, classes, total), show_details=draw(st.sampled_from([1, 0])))


@st.composite
def hankai_layers(draw: Any, *, classes: Any = None, total: Any = None) -> hankai.YoloLayer:
    """Settings of hank-ai's ``[yolo]``: those of :func:`alexeyab_layers`
    but ``show_details``, which hank-ai does not read."""
    return hankai.YoloLayer(**_ab_kwargs(draw, classes, total))


def _ab_kwargs(draw: Any, classes: Any, total: Any) -> Dict[str, Any]:
    """The keyword arguments both darknets of AlexeyAB's lineage take."""
    n_classes = draw(_st(classes, _CLASSES))
    n_total = draw(_st(total, _TOTAL))
    anchors = np.random.default_rng(draw(_SEED)).integers(2, 401, 2 * n_total)
    bits = draw(st.integers(1, 2**n_total - 1))
    loss = draw(st.sampled_from(["mse", "ciou", "giou", "diou", "iou"]))
    counters = None
    if draw(st.integers(0, 3)) == 3:
        counters = np.random.default_rng(draw(_SEED)).integers(1, 500, n_classes).tolist()
    return dict(
        classes=n_classes, anchors=[float(a) for a in anchors], mask=[k for k in range(n_total) if bits >> k & 1],
        total=n_total, max_boxes=draw(st.sampled_from([200, 3, 6])), ignore_thresh=draw(_IGNORE),
        truth_thresh=draw(_TRUTH_THRESH), iou_thresh=draw(st.sampled_from([1.0, 0.213, 0.5])),
        iou_thresh_kind=draw(st.sampled_from(["iou", "giou", "diou", "ciou"])), iou_loss=loss,
        iou_normalizer=draw(st.sampled_from([0.75, 0.07, 1.0])), obj_normalizer=draw(st.sampled_from([1.0, 4.0])),
        cls_normalizer=draw(st.sampled_from([1.0, 0.5])), max_delta=draw(st.sampled_from([None, 5.0])),
        scale_x_y=draw(st.sampled_from([1.0, 1.05, 2.0])), new_coords=draw(st.sampled_from([0, 0, 0, 1])),
        objectness_smooth=draw(st.sampled_from([0, 0, 1])), label_smooth_eps=draw(st.sampled_from([0.0, 0.1])),
        focal_loss=draw(st.sampled_from([0, 0, 1])), counters_per_class=counters)


# ---- the standard heads, and layer options drawn only when opted in (issue 19) ----

_V3_ANCHORS = [10, 13, 16, 30, 33, 23, 30, 61, 62, 45, 59, 119, 116, 90, 156, 198, 373, 326]
_V4_ANCHORS = [12, 16, 19, 36, 40, 28, 36, 75, 76, 55, 72, 146, 142, 110, 192, 243, 459, 401]
#: Per kind: the cfg whose heads are fuzzed by default, its network size, and
#: each head's parameters as that cfg sets them (parse_yolo's / parse_region's
#: names; what the cfg leaves out is the parser's default).
STANDARD_HEADS: Dict[str, Tuple[str, Tuple[int, int], Tuple[Dict[str, Any], ...]]] = {
    "yolo": ("pjreddie/darknet cfg/yolov3.cfg", (608, 608), tuple(
        dict(classes=80, anchors=_V3_ANCHORS, mask=m, ignore_thresh=0.7, truth_thresh=1.0)
        for m in ([6, 7, 8], [3, 4, 5], [0, 1, 2]))),
    "region": ("pjreddie/darknet cfg/yolov2-voc.cfg", (416, 416), (
        dict(classes=20, coords=4, num=5, softmax=True, rescore=True, bias_match=True, thresh=0.6,
             object_scale=5.0, noobject_scale=1.0, class_scale=1.0, coord_scale=1.0,
             anchors=[1.3221, 1.73145, 3.19275, 4.00944, 5.05587, 8.09892, 9.47112, 4.84053, 11.2364, 10.0071]),)),
    "yolo_ab": ("AlexeyAB/darknet cfg/yolov4.cfg", (608, 608), tuple(
        dict(classes=80, anchors=_V4_ANCHORS, mask=m, scale_x_y=sxy, iou_thresh=0.213, cls_normalizer=1.0,
             iou_normalizer=0.07, iou_loss="ciou", max_delta=5.0, ignore_thresh=0.7, truth_thresh=1.0)
        for m, sxy in (([0, 1, 2], 1.2), ([3, 4, 5], 1.1), ([6, 7, 8], 1.05)))),
}
#: hank-ai's cfg/yolov4.cfg has the same heads (hank-ai's layers).
STANDARD_HEADS["yolo_hankai"] = ("hank-ai/darknet cfg/yolov4.cfg", (608, 608), STANDARD_HEADS["yolo_ab"][2])

#: The layer options ``options=`` can draw, per kind (``options="all"``
#: draws every setting: :func:`yolo_layers`, :func:`region_layers`,
#: :func:`alexeyab_layers`).
OPTIONS: Dict[str, Tuple[str, ...]] = {
    "yolo": ("classes", "anchors", "mask", "ignore_thresh", "truth_thresh", "max_boxes", "map"),
    "region": ("classes", "anchors", "coords", "softmax", "background", "rescore", "bias_match", "thresh",
               "scales", "map"),
    "yolo_ab": ("classes", "anchors", "mask", "max_boxes", "ignore_thresh", "truth_thresh", "iou_thresh",
                "iou_loss", "normalizers", "max_delta", "scale_x_y", "new_coords", "objectness_smooth",
                "label_smooth_eps", "focal_loss", "counters_per_class", "show_details"),
}
#: hank-ai's layer reads no show_details.
OPTIONS["yolo_hankai"] = tuple(o for o in OPTIONS["yolo_ab"] if o != "show_details")


def check_options(kind: str, options: Any) -> Optional[Tuple[str, ...]]:
    """``options`` as a tuple of names of :data:`OPTIONS` ``[kind]`` (None:
    none; ``"all"``: every one); a name it does not know is a ValueError
    that lists the known ones."""
    if options is None:
        return None
    if isinstance(options, str):
        if options == "all":
            return OPTIONS[kind]
        options = (options,)
    try:
        names = tuple(options)
    except TypeError:
        raise TypeError(f"options must be 'all' or a list of option names, got {type(options).__name__}") from None
    unknown = [o for o in names if o not in OPTIONS[kind]]
    if unknown:
        raise ValueError(f"options: {', '.join(map(repr, unknown))} not drawable for kind={kind!r}; "
                         f"the options are {', '.join(OPTIONS[kind])} (or 'all')")
    return names


def _build(kind: str, params: Dict[str, Any]) -> Layer:
    if kind == "yolo":
        return YoloLayer(**params)
    if kind == "region":
        return RegionLayer(**params)
    if kind == "yolo_hankai":
        return hankai.YoloLayer(**params)
    return alexeyab.YoloLayer(**params)


def _subset(draw: Any, n: int) -> List[int]:
    bits = draw(st.integers(1, 2**n - 1))
    return [k for k in range(n) if bits >> k & 1]


@st.composite
def standard_layers(draw: Any, kind: str = "yolo", options: Any = None) -> Layer:
    """One head of the standard cfg of ``kind`` (:data:`STANDARD_HEADS`:
    yolov3's three [yolo] heads, yolov2-voc's [region], yolov4's three
    AlexeyAB [yolo] heads), with only the ``options`` named drawn (see
    :data:`OPTIONS`; ``"all"`` draws every setting, as :func:`yolo_layers`
    and its siblings do).  Without options only which head is drawn."""
    if kind not in STANDARD_HEADS:
        raise ValueError(f"kind must be 'yolo', 'region', 'yolo_ab' or 'yolo_hankai', got {kind!r}")
    opts = check_options(kind, options)
    if opts == OPTIONS[kind]:
        return draw({"yolo": yolo_layers, "region": region_layers, "yolo_ab": alexeyab_layers,
                     "yolo_hankai": hankai_layers}[kind]())
    p = dict(draw(st.sampled_from(STANDARD_HEADS[kind][2])))
    opts = opts or ()
    if "classes" in opts:
        p["classes"] = draw(_CLASSES)
    if "anchors" in opts:
        if kind == "region":
            n = draw(st.integers(1, 5))
            p["num"] = n
            p["anchors"] = [float(a) for a in np.round(np.random.default_rng(draw(_SEED)).uniform(0.25, 8.0, 2 * n), 2)]
        else:
            n = draw(_TOTAL)
            p["anchors"] = [float(a) for a in np.random.default_rng(draw(_SEED)).integers(2, 401, 2 * n)]
            p["total"] = n
            p["mask"] = _subset(draw, n)
    if "mask" in opts and kind != "region":
        p["mask"] = _subset(draw, len(p["anchors"]) // 2)
    if kind == "yolo":
        for name, strat in (("ignore_thresh", _IGNORE), ("truth_thresh", _TRUTH_THRESH), ("max_boxes", _MAX_BOXES)):
            if name in opts:
                p[name] = draw(strat)
    elif kind == "region":
        if "coords" in opts:
            p["coords"] = draw(_REGION_COORDS)
        for name in ("softmax", "background", "rescore", "bias_match"):
            if name in opts:
                p[name] = draw(st.booleans())
        if "thresh" in opts:
            p["thresh"] = draw(_REGION_THRESH)
        if "scales" in opts:
            for name in ("coord_scale", "object_scale", "noobject_scale", "class_scale"):
                p[name] = draw(_SCALE)
    else:
        for name, strat in (
                ("max_boxes", st.sampled_from([200, 3, 6])), ("ignore_thresh", _IGNORE),
                ("truth_thresh", _TRUTH_THRESH), ("max_delta", st.sampled_from([None, 5.0])),
                ("scale_x_y", st.sampled_from([1.0, 1.05, 2.0])), ("new_coords", st.sampled_from([0, 0, 0, 1])),
                ("objectness_smooth", st.sampled_from([0, 0, 1])), ("label_smooth_eps", st.sampled_from([0.0, 0.1])),
                ("focal_loss", st.sampled_from([0, 0, 1])), ("show_details", st.sampled_from([1, 0]))):
            if name in opts:
                p[name] = draw(strat)
        if "iou_thresh" in opts:
            p["iou_thresh"] = draw(st.sampled_from([1.0, 0.213, 0.5]))
            p["iou_thresh_kind"] = draw(st.sampled_from(["iou", "giou", "diou", "ciou"]))
        if "iou_loss" in opts:
            p["iou_loss"] = draw(st.sampled_from(["mse", "ciou", "giou", "diou", "iou"]))
        if "normalizers" in opts:
            p["iou_normalizer"] = draw(st.sampled_from([0.75, 0.07, 1.0]))
            p["obj_normalizer"] = draw(st.sampled_from([1.0, 4.0]))
            p["cls_normalizer"] = draw(st.sampled_from([1.0, 0.5]))
        if "counters_per_class" in opts and draw(st.booleans()):
            p["counters_per_class"] = np.random.default_rng(draw(_SEED)).integers(1, 500, p["classes"]).tolist()
    if "map" in opts:
        p["map"] = _map(draw, p["classes"])
    return _build(kind, p)


def resolve_layer(layer: Any, kind: str) -> Tuple[Any, Optional[Tuple[int, int]]]:
    """What ``layer=`` of :func:`cases` / ``pdl.fuzz`` may be, as (layers,
    network size or None): a layer, a list of layers or a strategy as they
    are; a :class:`~pydarknet_loss.Network` or a cfg path (its loss layers
    and size; ``kind="yolo_ab"`` reads it as AlexeyAB's); a golden case or
    a golden ``.npz`` path (its layer and size)."""
    import os

    from .files.network import Network
    from .parity import golden

    if isinstance(layer, (str, os.PathLike)):
        path = os.fspath(layer)
        if path.endswith(".npz"):
            layer = golden.GoldenCase.load(path)
        else:
            layer = Network.from_cfg(path, flavor={"yolo_ab": "alexeyab", "yolo_hankai": "hankai"}.get(kind, "pjreddie"))
    if isinstance(layer, Network):
        found = [lay for _, lay in layer.loss_layers if lay.kind in ("yolo", "region", "yolo_ab", "yolo_hankai")]
        if not found:
            raise ValueError("layer: the network has no [yolo] or [region] layer to fuzz")
        return found, (layer.width, layer.height)
    if isinstance(layer, golden.GoldenCase):
        net = (int(layer.params["net_w"]), int(layer.params["net_h"])) if "net_w" in layer.params else None
        return layer.layer(), net
    return layer, None


@st.composite
def gaussian_yolo_layers(draw: Any, *, classes: Any = None, num: Any = None) -> alexeyab.GaussianYoloLayer:
    """Settings of AlexeyAB's ``[Gaussian_yolo]`` (cfg key names): its box
    losses and ``yolo_point``s, ``uc_normalizer`` and the other normalizers,
    ``iou_thresh`` extra anchors of each kind, ``scale_x_y``,
    ``objectness_smooth``, label smoothing, ``counters_per_class``,
    ``max_delta``, ``truth_thresh`` below 1 and ``max`` (the truth stride)."""
    n_classes = draw(_st(classes, _CLASSES))
    n_total = draw(_st(num, _TOTAL))
    anchors = np.random.default_rng(draw(_SEED)).integers(2, 401, 2 * n_total)
    bits = draw(st.integers(1, 2**n_total - 1))
    counters = None
    if draw(st.integers(0, 3)) == 3:
        counters = np.random.default_rng(draw(_SEED)).integers(1, 500, n_classes).tolist()
    return alexeyab.GaussianYoloLayer(
        classes=n_classes, num=n_total, anchors=[float(a) for a in anchors],
        mask=[k for k in range(n_total) if bits >> k & 1], max=draw(st.sampled_from([200, 3, 6])),
        ignore_thresh=draw(_IGNORE), truth_thresh=draw(st.sampled_from([1.0, 0.5])),
        iou_thresh=draw(st.sampled_from([1.0, 0.213, 0.5])),
        iou_thresh_kind=draw(st.sampled_from(["iou", "giou", "diou", "ciou"])),
        iou_loss=draw(st.sampled_from(["mse", "giou", "ciou", "diou", "iou"])),
        yolo_point=draw(st.sampled_from(["center", "left_top", "right_bottom"])),
        iou_normalizer=draw(st.sampled_from([0.75, 0.07, 1.0])), uc_normalizer=draw(st.sampled_from([1.0, 0.5])),
        obj_normalizer=draw(st.sampled_from([1.0, 4.0])), cls_normalizer=draw(st.sampled_from([1.0, 0.5])),
        max_delta=draw(st.sampled_from([None, 5.0])), scale_x_y=draw(st.sampled_from([1.0, 1.05, 2.0])),
        objectness_smooth=draw(st.sampled_from([0, 0, 1])), label_smooth_eps=draw(st.sampled_from([0.0, 0.1])),
        counters_per_class=counters)


@st.composite
def inputs(draw: Any, layer: Layer, *, batch: Any = None, h: Any = None, w: Any = None,
           magnitude: Any = None) -> np.ndarray:
    """A raw layer input, float32 (B, C, H, W) (by default 1 or 2 images on a
    grid of 1 to 4 by 1 to 4): ``magnitude * N(0, 1)`` from a
    drawn seed, and a few entries set to logits that saturate the sigmoid or
    overflow exp.  Shrinks towards one image, a 1x1 grid, magnitude 0 (all
    logits 0) and no extreme entries."""
    b = draw(_st(batch, _BATCH))
    hh = draw(_st(h, _GRID))
    ww = draw(_st(w, _GRID))
    mag = draw(_st(magnitude, _MAGNITUDE))
    x = (np.random.default_rng(draw(_SEED)).standard_normal((b, layer.channels, hh, ww)) * mag).astype(F)
    flat = x.reshape(-1)
    for _ in range(draw(st.integers(0, 4))):
        flat[draw(st.integers(0, x.size - 1))] = F(draw(_EXTREME))
    return x


def _inside(v: float, size: int) -> float:
    """v, nudged down until (int)(v*size) in float32 is a cell of the grid."""
    f = F(v)
    while F(f * F(size)) >= size:
        f = np.nextafter(f, F(0))
    return float(f)


def _box(draw: Any, layer: Layer, w: int, h: int, net: Tuple[int, int], n_classes: int, cols: int,
         prev: Optional[List[float]]) -> List[float]:
    """One truth row: its style and class drawn (they shrink), its numbers
    from a drawn seed."""
    style = draw(_STYLES)
    rng = np.random.default_rng(draw(_SEED))
    cx, cy = rng.uniform(0.01, 0.99, 2)
    bw, bh = rng.uniform(0.02, 0.7, 2)
    if style == "tiny":
        bw, bh = bw * 1e-3, bh * 1e-3
    elif style == "huge":
        bw, bh = 0.85 + bw * 0.2, 0.85 + bh * 0.2
    elif style == "border":
        cx = bw / 2
    elif style == "cell":
        cx = int(rng.integers(1, w)) / w if w > 1 else 0.5
    elif style == "at_anchor":
        # The box a zero logit predicts: the cell's centre, an anchor's
        # size; its IoU with that prediction is 1 (ties with thresholds).
        i, j = int(rng.integers(0, w)), int(rng.integers(0, h))
        cx, cy = (i + 0.5) / w, (j + 0.5) / h
        yolo = not isinstance(layer, RegionLayer)
        a = int(rng.choice(layer.mask)) if yolo else int(rng.integers(0, layer.n))
        size = net if yolo else (w, h)
        bw, bh = float(layer.anchors[2 * a] / F(size[0])), float(layer.anchors[2 * a + 1] / F(size[1]))
    elif style == "dup" and prev is not None:
        cx, cy = prev[0], prev[1]
    cls = draw(st.integers(0, n_classes - 1)) + draw(_FRACTION)
    extra = rng.uniform(0, 1, cols - 5).tolist() if isinstance(layer, RegionLayer) else []
    return [_inside(cx, w), _inside(cy, h), float(F(bw)), float(F(bh)), *extra, float(cls)]


@st.composite
def truths(draw: Any, layer: Layer, *, batch: int = 1, h: int = 1, w: int = 1, max_truths: Any = None,
           net: Tuple[int, int] = (416, 416)) -> np.ndarray:
    """Darknet's truth buffer for ``batch`` images of an ``h`` x ``w`` grid:
    per image 0 to ``max_truths`` (default 4) boxes, plain, tiny, huge,
    touching the border, on a cell boundary, exactly an anchor's predicted
    box, or in the previous one's cell; class ids sometimes fractional;
    sometimes an ``x == 0`` row in the middle of the list.  Shrinks towards
    no truths."""
    ab = isinstance(layer, (alexeyab.YoloLayer, alexeyab.GaussianYoloLayer))
    if ab:
        rows, cols = layer.max_boxes, 6  # AlexeyAB: max_boxes rows of x, y, w, h, class, track id
    else:
        rows = YOLO_MAX_TRUTHS if isinstance(layer, YoloLayer) else REGION_MAX_TRUTHS
        cols = layer.coords + 1
    n_classes = len(layer.map) if layer.map is not None else layer.classes
    if isinstance(layer, hankai.YoloLayer):
        n_classes = layer.classes  # an id past classes is fatal in hank-ai
    k_max = min(draw(_st(max_truths, st.just(4))), rows)
    out = np.zeros((batch, rows, cols), F)
    for b in range(batch):
        boxes: List[List[float]] = []
        for _ in range(draw(st.integers(0, k_max))):
            boxes.append(_box(draw, layer, w, h, net, n_classes, cols, boxes[-1] if boxes else None))
        if len(boxes) > 2 and draw(st.booleans()):
            boxes[draw(st.integers(1, len(boxes) - 2))][0] = 0.0  # x == 0 ends the list upstream reads
        for t, row in enumerate(boxes):
            if ab:
                row = row[:4] + [row[-1], float(draw(st.integers(0, 3)))]  # class id, then a track id
            out[b, t] = row
    return out


@dataclass
class Case:
    """One drawn case: the layer, its input and truth, and the network."""

    layer: Layer
    x: np.ndarray
    truth: np.ndarray
    net_w: int = 416
    net_h: int = 416
    seen: int = 0
    _expected: Optional[Any] = field(default=None, repr=False)

    @property
    def kind(self) -> str:
        return self.layer.kind

    def net(self) -> Dict[str, int]:
        """The network arguments of the layer's forward."""
        if _more(self.layer):  # issue 23: seen ([region] prior, [detection] random)
            return {"seen": self.seen}
        if isinstance(self.layer, RegionLayer):
            return {"seen": self.seen}
        return {"net_w": self.net_w, "net_h": self.net_h}

    def expected(self) -> Any:
        """The oracle's result on this case."""
        if self._expected is None:
            layer = self.layer
            if getattr(layer, "kind", None) == "detection":
                # a fresh layer (srand(0)): its first forward's rand() draws, which an
                # implementation under test can reproduce
                layer = type(layer)(**layer.params())
            self._expected = layer.forward(self.x, self.truth, **self.net())
        return self._expected

    def run(self, impl: Callable[..., Any], layout: str = "nchw") -> Dict[str, Any]:
        """``impl(x, truth, layer, net_w, net_h)`` (``seen=`` too when it
        takes it) on this case, its result as a dict with ``delta`` (and
        ``output``, ``cost`` when it returns them)."""
        x = self.x if _more(self.layer) else to_layout(self.x, layout, self.layer.n)
        kw = {"seen": self.seen} if _takes(impl, "seen") else {}
        got = impl(x, self.truth, self.layer, self.net_w, self.net_h, **kw)
        if isinstance(got, dict):
            return got
        return {"delta": got}

    def check(self, impl: Callable[..., Any], *, tolerance: Optional[str] = None, layout: str = "nchw",
              parts: Any = None, **tol: Any) -> Any:
        """Run ``impl`` and compare it with the oracle; AssertionError with
        the diagnosis when it departs.  ``tolerance`` defaults to "float32"
        (darknet's own rounding bound), "exact" for [Gaussian_yolo] (whose
        bound is not derived).  ``parts``: judge only those parts (compare's
        ``parts=``, e.g. ``("objectness", "classes")``: [yolo] and
        pjreddie's [region]); the others' failing elements are reported as
        known departures, not failures."""
        from .parity.compare import compare

        if tolerance is None:
            tolerance = "exact" if isinstance(self.layer, alexeyab.GaussianYoloLayer) else "float32"
        if _more(self.layer):  # no decision record: exact comparison (widened by atol/rtol/max_ulp)
            tolerance = "exact"
        if parts is not None:
            tol["parts"] = parts
        report = compare(self.expected(), self.run(impl, layout), self.layer, input=self.x, truth=self.truth,
                         layout=layout, tolerance=tolerance, **self.net(), **tol)
        if not report.ok:
            raise AssertionError(f"\n{self}\n{report}")
        return report

    def __str__(self) -> str:
        if _more(self.layer):
            rows = int((self.truth[..., 0] != 0).sum())
            return (f"case: {self.layer!r}, x {tuple(self.x.shape)} (|x| <= {float(np.abs(self.x).max()):.3g}), "
                    f"{rows} truth rows/cells, seen={self.seen}")
        b, c, h, w = self.x.shape
        rows = [(b_, t) for b_ in range(b) for t in range(self.truth.shape[1]) if self.truth[b_, t].any()]
        net = f"seen={self.seen}" if isinstance(self.layer, RegionLayer) else f"net {self.net_w}x{self.net_h}"
        return (f"case: {self.layer!r}, x {tuple(self.x.shape)} (|x| <= {float(np.abs(self.x).max()):.3g}), "
                f"{len(rows)} truth rows, {net}")


def to_layout(x: np.ndarray, layout: str, n: int) -> np.ndarray:
    """x, darknet's (B, C, H, W), in another layout (nhwc, bahwc); the
    public form is :func:`pydarknet_loss.to_layout`."""
    return from_nchw(x, layout, n)


def _takes(fn: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


@st.composite
def cases(draw: Any, layer: Any = None, *, kind: str = "yolo", net: Optional[Tuple[int, int]] = None,
          batch: Any = None, h: Any = None, w: Any = None, magnitude: Any = None, max_truths: Any = None,
          seen: Any = None, options: Any = None) -> Case:
    """A whole case: a layer, its input, its truths, the network size and,
    for [region], ``seen`` (0, 12799, 12800 or 50000).

    The layer: by default a head of the standard cfg of ``kind``
    (``"yolo"``: yolov3.cfg's, ``"region"``: yolov2-voc.cfg's,
    ``"yolo_ab"``: AlexeyAB's yolov4.cfg's, ``"yolo_hankai"``: the same heads
    as hank-ai's layers; :data:`STANDARD_HEADS`) at that
    cfg's network size, with no layer option drawn; ``options=`` opts into
    drawing some (e.g. ``("map", "max_boxes", "truth_thresh")``, see
    :data:`OPTIONS`) or ``"all"``.  ``"gaussian_yolo_ab"`` (AlexeyAB's
    [Gaussian_yolo]), ``"region_ab"`` (AlexeyAB's [region]) and
    ``"detection"`` (YOLOv1) have no standard head here: their layers are
    drawn.  Or ``layer``: yours (a layer, a list of
    layers, a strategy, a :class:`~pydarknet_loss.Network`, a cfg path, a
    golden case or its ``.npz`` path).  ``net=(w, h)`` fixes the network
    size (drawn only with ``options="all"`` and no layer given).  For
    AlexeyAB's and hank-ai's [yolo], up to three cells' predictions are set
    at a truth's box (sizes on both sides of the thresholds, class
    probabilities below the ignore test's 0.25 gate or not), so that the
    ignore test, its class gate and ``scale_x_y`` decide something."""
    if kind not in ("yolo", "region", "yolo_ab", "yolo_hankai", "gaussian_yolo_ab") + MORE_KINDS:
        raise ValueError(f"kind must be 'yolo', 'region', 'yolo_ab', 'yolo_hankai', 'gaussian_yolo_ab', "
                         f"'region_ab' or 'detection', got {kind!r}")
    if kind in MORE_KINDS or _more(layer) or (isinstance(layer, (list, tuple)) and layer and _more(layer[0])):
        if options not in (None, "all"):
            raise ValueError(f"options=: {kind}'s layers are drawn whole (options=None or 'all')")
        return draw(_more_case(layer, kind=kind, batch=batch, h=h, w=w, magnitude=magnitude,
                               max_truths=max_truths, seen=seen))
    if kind == "gaussian_yolo_ab":
        if options not in (None, "all"):
            raise ValueError("options=: [Gaussian_yolo]'s layers are drawn whole (options=None or 'all')")
        opts = None
        layer, layer_net = resolve_layer(layer, kind)
    else:
        opts = check_options(kind, options)
        layer, layer_net = resolve_layer(layer, kind)
    if layer is not None and opts is not None:
        raise ValueError("options= draws settings of the standard heads; with layer= the layer is yours and fixed "
                         "(pass one or the other)")
    if isinstance(layer, (list, tuple)):
        chosen = draw(st.sampled_from(list(layer)))
    elif layer is None and kind == "gaussian_yolo_ab":
        chosen = draw(gaussian_yolo_layers())
    elif layer is None:
        chosen = draw(standard_layers(kind, opts))
        if opts != OPTIONS[kind]:
            layer_net = STANDARD_HEADS[kind][1]
    else:
        chosen = draw(_st(layer, st.none()))
    b = draw(_st(batch, _BATCH))
    hh = draw(_st(h, _GRID))
    ww = draw(_st(w, _GRID))
    net_w, net_h = net if net is not None else (layer_net if layer_net is not None else draw(_NETS))
    x = draw(inputs(chosen, batch=b, h=hh, w=ww, magnitude=magnitude))
    truth = draw(truths(chosen, batch=b, h=hh, w=ww, max_truths=max_truths, net=(net_w, net_h)))
    if isinstance(chosen, alexeyab.YoloLayer):  # hank-ai's too (a subclass)
        x = draw(_planted(chosen, x, truth, (int(net_w), int(net_h))))
    s = draw(_st(seen, _SEEN)) if isinstance(chosen, RegionLayer) else 0
    return Case(layer=chosen, x=x, truth=truth, net_w=int(net_w), net_h=int(net_h), seen=int(s))


# Predictions set at a truth's box, for AlexeyAB's [yolo] (issue 20): the
# ignore test (its IoU threshold, class gate and scale_x_y'd box) and the
# truth_thresh branch decide only where a cell predicts a box near a truth,
# which random logits almost never do.
_PLANTS = st.integers(0, 3)
#: The planted box's size as a multiple of the truth's: IoU 1, and on both
#: sides of the thresholds drawn (.5, .7; iou_thresh .213 and .5 of shapes).
_PLANT_SIZE = st.sampled_from([1.0, 1.18, 1.2, 0.84, 0.83, 1.4, 0.7, 1.1])
_PLANT_CELL = st.sampled_from([0, 1, -1])
#: The class probabilities there: as drawn, all low (below the 0.25 of the
#: ignore test's class gate), or the truth's class high and the rest low.
_PLANT_CLASS = st.sampled_from(["as_drawn", "low", "truth"])


@st.composite
def _planted(draw: Any, layer: Any, x: np.ndarray, truth: np.ndarray, net: Tuple[int, int]) -> np.ndarray:
    """``x`` with up to three cells' predictions set to a truth's box (its
    cell or a neighbour, a drawn anchor of the mask, a drawn size factor),
    decoded as AlexeyAB's get_yolo_box does: x = (i + s*sxy - (sxy-1)/2)/W
    with s = logistic(tx) (new_coords: tx itself), w = exp(tw)*anchor/net_w
    (new_coords: 4*tw*tw*anchor/net_w).  Shrinks towards no plant."""
    rows = [(b, t) for b in range(truth.shape[0]) for t in range(truth.shape[1]) if truth[b, t, 0] != 0]
    n_plants = draw(_PLANTS)
    if not rows or n_plants == 0:
        return x
    B, _, H, W = x.shape
    x = x.copy()
    X = x.reshape(B, layer.n, 5 + layer.classes, H, W)
    sxy = float(layer.scale_x_y)
    new = bool(layer.new_coords)
    for _ in range(n_plants):
        b, t = rows[draw(st.integers(0, len(rows) - 1))]
        cx, cy, bw, bh = (float(v) for v in truth[b, t, :4])
        a = draw(st.integers(0, layer.n - 1))
        m = int(layer.mask[a])
        i = min(max(int(F(cx) * F(W)) + draw(_PLANT_CELL), 0), W - 1)
        j = min(max(int(F(cy) * F(H)), 0), H - 1)
        size = draw(_PLANT_SIZE)
        for k, (c, cell, n) in enumerate(((cx, i, W), (cy, j, H))):
            q = min(max((c * n - cell + 0.5 * (sxy - 1)) / sxy, 0.02), 0.98)
            X[b, a, k, j, i] = q if new else np.log(q / (1 - q))
        for k, (v, anchor, n) in ((2, (bw, float(layer.anchors[2 * m]), net[0])),
                                  (3, (bh, float(layer.anchors[2 * m + 1]), net[1]))):
            r = max(v * n / anchor * size, 1e-6)
            X[b, a, k, j, i] = np.sqrt(r / 4) if new else np.log(r)
        style = draw(_PLANT_CLASS)
        if style != "as_drawn":  # new_coords: the input is already a probability
            X[b, a, 5:, j, i] = 0.05 if new else -3.0
            cls = int(truth[b, t, 4])
            if style == "truth" and 0 <= cls < layer.classes:
                X[b, a, 5 + cls, j, i] = 0.95 if new else 3.0
    return x


# ==== issue 23: AlexeyAB's [region] (region_ab) and YOLOv1's [detection] (detection) ====

MORE_KINDS = ("region_ab", "detection")


def _more(layer: Any) -> bool:
    return getattr(layer, "kind", None) in MORE_KINDS


@st.composite
def alexeyab_region_layers(draw: Any, *, classes: Any = None, num: Any = None, coords: Any = None) -> Any:
    """Settings of AlexeyAB's ``[region]``: 1 to 5 anchors (grid cells; fewer
    values than 2*num sometimes, leaving upstream's 0.5), 1 to 5 classes,
    coords 4 (sometimes 5, 6), softmax, rescore, bias_match, focal_loss (with
    softmax only: without, logf of raw outputs is NaN), classfix -1..2,
    thresh, the scales, ``max`` 200 or a few, sometimes a class map."""
    n_classes = draw(_st(classes, _CLASSES))
    n = draw(_st(num, st.integers(1, 5)))
    n_coords = draw(_st(coords, _REGION_COORDS))
    rng = np.random.default_rng(draw(_SEED))
    anchors = np.round(rng.uniform(0.25, 8.0, 2 * n - draw(st.integers(0, 1))), 3)
    flags = draw(st.integers(0, 15))
    softmax = bool(flags & 1)
    cmap = None
    if draw(st.integers(0, 4)) == 4:
        cmap = rng.integers(0, n_classes, n_classes + int(rng.integers(0, 3))).tolist()
    return alexeyab.RegionLayer(
        classes=n_classes, coords=n_coords, num=n, max=draw(st.sampled_from([200, 3, 8])),
        anchors=[float(a) for a in anchors], softmax=int(softmax), rescore=int(bool(flags & 2)),
        bias_match=int(bool(flags & 4)), focal_loss=int(softmax and bool(flags & 8)),
        classfix=draw(st.sampled_from([0, -1, 1, 2])), thresh=draw(_REGION_THRESH), map=cmap,
        coord_scale=draw(_SCALE), object_scale=draw(_SCALE), noobject_scale=draw(_SCALE), class_scale=draw(_SCALE))


@st.composite
def detection_layers(draw: Any, *, classes: Any = None, num: Any = None, side: Any = None) -> Any:
    """Settings of YOLOv1's ``[detection]``: side 1 to 4, 1 to 3 boxes per
    cell, 1 to 5 classes, coords 4 (sometimes 5), rescore, softmax, sqrt,
    forced (with 2 boxes or more), random, and the scales."""
    from .layers.detection import DetectionLayer

    n = draw(_st(num, st.integers(1, 3)))
    flags = draw(st.integers(0, 31))
    return DetectionLayer(
        classes=draw(_st(classes, _CLASSES)), coords=draw(st.sampled_from([4, 4, 4, 5])), num=n,
        side=draw(_st(side, st.integers(1, 4))), rescore=int(bool(flags & 1)), softmax=int(bool(flags & 2)),
        sqrt=int(bool(flags & 4)), forced=int(bool(flags & 8) and n >= 2), random=int(bool(flags & 16)),
        coord_scale=draw(_SCALE), object_scale=draw(_SCALE), noobject_scale=draw(_SCALE), class_scale=draw(_SCALE))


def _region_ab_truth(draw: Any, layer: Any, batch: int, h: int, w: int, k_max: int) -> np.ndarray:
    rows = layer.max_boxes
    out = np.zeros((batch, rows, 6), F)
    k_max = min(k_max, rows)
    for b in range(batch):
        k = draw(st.integers(0, k_max))
        rng = np.random.default_rng(draw(_SEED))
        for t in range(k):
            style = draw(st.sampled_from(["plain", "tiny", "huge", "oob_class", "fraction"]))
            cx, cy = rng.uniform(0.01, 0.99, 2)
            bw, bh = rng.uniform(0.02, 0.7, 2)
            cls = float(rng.integers(0, layer.classes))
            if style == "tiny":
                bw, bh = bw * 1e-3, bh * 1e-3
            elif style == "huge":
                bw, bh = 1.2 + bw, 1.1 + bh
            elif style == "oob_class":
                cls = float(layer.classes + int(rng.integers(0, 2)))  # skipped upstream (a warning)
            elif style == "fraction":
                cls += 0.7
            out[b, t] = (_inside(cx, w), _inside(cy, h), bw, bh, cls, float(rng.integers(0, 4)))
        if k > 2 and draw(st.booleans()):
            out[b, draw(st.integers(1, k - 2)), 0] = 0.0  # x == 0 mid-list
    return out


def _detection_truth(draw: Any, layer: Any, batch: int) -> np.ndarray:
    loc = layer.side * layer.side
    out = np.zeros((batch, loc, 1 + layer.classes + layer.coords), F)
    p = draw(st.sampled_from([0.0, 0.3, 0.7, 1.0]))
    rng = np.random.default_rng(draw(_SEED))
    for b in range(batch):
        for i in range(loc):
            if rng.random() >= p:
                continue
            out[b, i, 0] = 1.0 if rng.random() > 0.1 else 0.6  # 0.6 truncates to "no object"
            if rng.random() < 0.8:
                out[b, i, 1 + int(rng.integers(0, layer.classes))] = 1
            else:
                out[b, i, 1:1 + layer.classes] = rng.random(layer.classes)  # soft labels
            out[b, i, 1 + layer.classes:5 + layer.classes] = (rng.random(), rng.random(), rng.uniform(0.02, 1),
                                                              rng.uniform(0.02, 1))
    return out


@st.composite
def _more_case(draw: Any, layer: Any = None, *, kind: str = "region_ab", batch: Any = None, h: Any = None,
               w: Any = None, magnitude: Any = None, max_truths: Any = None, seen: Any = None) -> Case:
    """cases() for region_ab and detection; never an input the oracle refuses."""
    if isinstance(layer, (list, tuple)):
        chosen = draw(st.sampled_from(list(layer)))
    elif layer is None:
        chosen = draw(alexeyab_region_layers() if kind == "region_ab" else detection_layers())
    else:
        chosen = draw(_st(layer, st.none()))
    b = draw(_st(batch, _BATCH))
    rng = np.random.default_rng(draw(_SEED))
    if chosen.kind == "region_ab":
        hh, ww = draw(_st(h, _GRID)), draw(_st(w, _GRID))
        mag = draw(_st(magnitude, _MAGNITUDE))
        x = (rng.standard_normal((b, chosen.channels, hh, ww)) * mag).astype(F)
        truth = _region_ab_truth(draw, chosen, b, hh, ww, draw(_st(max_truths, st.just(4))))
        s = draw(_st(seen, _SEEN))
    else:
        # |entries| <= 4: every box is within RMSE 20 of a truth, so one is always responsible
        mag = draw(_st(magnitude, st.sampled_from([0.0, 1.0, 4.0])))
        x = rng.uniform(0, 1, (b, chosen.inputs)).astype(F) if mag == 1.0 else \
            (rng.uniform(-1, 1, (b, chosen.inputs)) * mag).astype(F)
        truth = _detection_truth(draw, chosen, b)
        s = draw(_st(seen, st.sampled_from([64000, 0, 63999])))
    return Case(layer=chosen, x=x, truth=truth, seen=int(s))
