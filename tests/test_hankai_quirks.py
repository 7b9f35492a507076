"""hank-ai f684e1d7's [yolo] where it departs from AlexeyAB 59596d7: each
variation point (darknet_loss.h, HANK(n)) checked from first principles
(glibc's expf/logf/atanf called directly, float32 arithmetic in NumPy), its
fatal bad labels as ValueErrors naming image and row, and its line."""
from __future__ import annotations

import ctypes
import ctypes.util
import math

import numpy as np
import pytest

import goldens as G
import goldens_hankai as GH
from pydarknet_loss import _native, alexeyab, hankai
from pydarknet_loss._native import ffi, lib

F = np.float32
LIBM = ctypes.CDLL(ctypes.util.find_library("m"))
for _name in ("expf", "logf", "atanf"):
    getattr(LIBM, _name).restype = ctypes.c_float
    getattr(LIBM, _name).argtypes = [ctypes.c_float]
HANK, AB = lib.AB_FLAVOR_HANKAI, lib.AB_FLAVOR_ALEXEYAB


def expf(v: float) -> F:
    return F(LIBM.expf(F(v)))


def atanf(v: float) -> F:
    return F(LIBM.atanf(F(v)))


def box(x: float, y: float, w: float, h: float):  # type: ignore[no-untyped-def]
    b = ffi.new("box *")
    b.x, b.y, b.w, b.h = x, y, w, h
    return b[0]


def bits(v: float) -> int:
    return int(np.array(F(v)).view(np.uint32))


LAYER = dict(classes=3, anchors=[10, 14, 23, 27, 37, 58], mask=[0, 1, 2], max_boxes=10)


def truth_rows(*rows):  # type: ignore[no-untyped-def]
    t = np.zeros((2, 10, 6), F)
    for image, row, values in rows:
        t[image, row] = values
    return t


# ---- HANK(1), (3): exp in float --------------------------------------------------------------

def test_get_yolo_box_w_h_are_expf_times_anchor_over_net_size_in_float() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(4 * 200).astype(F)
    biases = np.array([37.0, 58.0], F)
    xp, bp = ffi.from_buffer("float[]", x), ffi.from_buffer("float[]", biases)
    differ = 0
    for k in range(200):
        hb = lib.ab_get_yolo_box_fl(xp, bp, 0, k, 1, 2, 13, 13, 416, 416, 200, 0, HANK)
        ab = lib.ab_get_yolo_box_fl(xp, bp, 0, k, 1, 2, 13, 13, 416, 416, 200, 0, AB)
        want_w = F(F(expf(x[2 * 200 + k]) * biases[0]) / F(416))
        want_h = F(F(expf(x[3 * 200 + k]) * biases[1]) / F(416))
        assert bits(hb.w) == bits(want_w) and bits(hb.h) == bits(want_h)
        assert bits(ab.w) == bits(F(math.exp(float(x[2 * 200 + k])) * 37.0 / 416))
        differ += bits(hb.w) != bits(ab.w)
    assert differ > 20  # about a third, as upstream measured


# ---- HANK(4)-(6): the overlap and the IoU ----------------------------------------------------

def test_a_nan_prediction_edge_propagates_where_alexeyab_picks_the_truths() -> None:
    pred, truth = box(math.nan, 0.5, 0.2, 0.2), box(0.5, 0.5, 0.2, 0.2)
    half = F(F(0.2) / F(2))
    side = F(F(F(0.5) + half) - F(F(0.5) - half))  # the truth's edges, in float
    inter = F(side * side)
    area = F(F(0.2) * F(0.2))
    want = F(inter / F(F(area + area) - inter))
    assert bits(lib.ab_box_iou_fl(pred, truth, AB)) == bits(want)  # ternary: the truth's edges
    assert math.isnan(lib.ab_box_iou_fl(pred, truth, HANK))  # std::max/min: the NaN edge
    # a NaN in the second box's edge: the other way round (the union reads w, h only: finite)
    assert bits(lib.ab_box_iou_fl(truth, pred, HANK)) == bits(want)
    assert math.isnan(lib.ab_box_iou_fl(truth, pred, AB))


def test_a_zero_width_intersection_is_0_even_against_an_infinite_height() -> None:
    a, b = box(0.25, 0.5, 0.5, math.inf), box(0.75, 0.5, 0.5, math.inf)  # touching: w = 0, h = inf
    assert lib.ab_box_iou_fl(a, b, HANK) == 0.0  # w <= 0 returns before 0 * inf
    assert math.isnan(lib.ab_box_iou_fl(a, b, AB))  # w < 0 is false: 0 * inf = NaN


def _ciou(a: tuple, b: tuple, iou: float, da: float) -> F:
    """box_ciou in float32 step by step, with the atan difference da given."""
    top, bot = min(F(a[1] - F(a[3] / 2)), F(b[1] - F(b[3] / 2))), max(F(a[1] + F(a[3] / 2)), F(b[1] + F(b[3] / 2)))
    left, right = min(F(a[0] - F(a[2] / 2)), F(b[0] - F(b[2] / 2))), max(F(a[0] + F(a[2] / 2)), F(b[0] + F(b[2] / 2)))
    cw, ch = F(right - left), F(bot - top)
    diag = F(F(cw * cw) + F(ch * ch))
    dist = F(F(F(a[0] - b[0]) * F(a[0] - b[0])) + F(F(a[1] - b[1]) * F(a[1] - b[1])))
    d = F(dist / diag)
    ar_loss = F(4 / (math.pi * math.pi) * da * da)
    alpha = F(float(ar_loss) / (float(F(F(1) - F(iou)) + ar_loss) + 0.000001))
    return F(F(iou) - F(d + F(alpha * ar_loss)))


def test_ciou_aspect_term_uses_atanf_and_a_float_difference() -> None:
    rng = np.random.default_rng(2)
    differ = 0
    for _ in range(300):
        a = tuple(F(v) for v in (*rng.uniform(0.3, 0.7, 2), *rng.uniform(0.05, 0.6, 2)))
        b = tuple(F(v) for v in (*rng.uniform(0.3, 0.7, 2), *rng.uniform(0.05, 0.6, 2)))
        ar_gt, ar_pred = F(b[2] / b[3]), F(a[2] / a[3])
        iou = lib.ab_box_iou_fl(box(*a), box(*b), HANK)
        assert bits(iou) == bits(lib.ab_box_iou_fl(box(*a), box(*b), AB))
        hank = lib.ab_box_ciou_fl(box(*a), box(*b), HANK)
        ab = lib.ab_box_ciou_fl(box(*a), box(*b), AB)
        assert bits(hank) == bits(_ciou(a, b, iou, float(F(atanf(ar_gt) - atanf(ar_pred)))))
        assert bits(ab) == bits(_ciou(a, b, iou, math.atan(float(ar_gt)) - math.atan(float(ar_pred))))
        differ += bits(hank) != bits(ab)
    assert differ > 30


# ---- HANK(8): show_details is not read --------------------------------------------------------

def test_show_details_is_not_a_keyword_and_the_c_core_ignores_it_for_hankai() -> None:
    with pytest.raises(TypeError, match="show_details.*hank-ai reads no show_details"):
        hankai.YoloLayer(show_details=0, **LAYER)
    d = GH.load(GH.cases(GH.REPO)[5])  # a CIoU head: the two cost formulas differ
    layer = hankai.layer_from_params(d["params"])
    spec = layer._spec()
    spec.scalars["show_details"] = 0
    B, _, H, W = d["input"].shape
    call = _native.ABCall(spec, B, H, W)
    p = d["params"]
    assert call.forward(d["input"], d["truth"], train=True, net_w=p["net_w"], net_h=p["net_h"], index=0) == 0
    assert G.bits_equal(F(call.cost[0]), d["cost"])
    ab0 = alexeyab.YoloLayer(**{**layer.params(), "show_details": 0}).forward(
        d["input"], d["truth"], net_w=p["net_w"], net_h=p["net_h"])
    assert not G.bits_equal(F(ab0.cost), d["cost"])


def test_unknown_loss_names_say_hankai_stops() -> None:
    with pytest.raises(ValueError, match="iou_loss must be one of .*got 'CIOU' \\(hank-ai's parser stops"):
        hankai.YoloLayer(iou_loss="CIOU", **LAYER)
    with pytest.raises(ValueError, match="iou_thresh_kind must be one of iou, giou, diou, ciou, got 'mse'"):
        hankai.YoloLayer(iou_thresh_kind="mse", **LAYER)


def test_the_c_core_refuses_an_unknown_flavor() -> None:
    spec = hankai.YoloLayer(**LAYER)._spec()
    spec.scalars["flavor"] = 2
    assert _native.ABCall(spec, 1, 2, 2).check_layer() == lib.DN_E_LAYER


# ---- HANK(9), (10): fatal bad labels -----------------------------------------------------------

def run(t: np.ndarray) -> hankai.YoloResult:
    x = np.zeros((2, 24, 4, 4), F)
    return hankai.YoloLayer(**LAYER).forward(x, t, net_w=128, net_h=128)


def test_a_class_id_out_of_range_is_fatal_naming_image_and_row() -> None:
    t = truth_rows((0, 0, [0.5, 0.5, 0.2, 0.2, 1, 0]), (1, 0, [0.3, 0.3, 0.1, 0.1, 0, 0]),
                   (1, 1, [0.6, 0.6, 0.1, 0.1, 3, 0]))
    with pytest.raises(ValueError, match=r"truth image 1, row 1 \(.*\): class id 3 \(truncated to int\) is outside "
                                         r"\[0, 3\); hank-ai stops with 'invalid class ID #3' "
                                         r"\(yolo_layer.cpp:545\) and aborts"):
        run(t)
    # AlexeyAB skips the row
    x = np.zeros((2, 24, 4, 4), F)
    assert alexeyab.YoloLayer(**LAYER).forward(x, t, net_w=128, net_h=128).skipped_truths == 1


def test_class_ids_are_checked_in_every_row_before_any_coordinates() -> None:
    t = truth_rows((0, 0, [0.5, 0.5, -0.2, 0.2, 1, 0]), (0, 1, [0.5, 0.5, 0.2, 0.2, -1, 0]))
    with pytest.raises(ValueError, match=r"image 0, row 1 .*invalid class ID #-1"):
        run(t)
    t[0, 1, 4] = 2
    with pytest.raises(ValueError, match=r"image 0, row 0 .*hank-ai stops with 'invalid coordinates, width, or "
                                         r"height \(x=0.500000, y=0.500000, w=-0.200000, h=0.200000\)' "
                                         r"\(yolo_layer.cpp:662\)"):
        run(t)


def test_ids_in_minus_1_to_0_truncate_to_0_and_rows_after_the_end_are_not_read() -> None:
    t = truth_rows((0, 0, [0.5, 0.5, 0.2, 0.2, -0.5, 0]), (0, 2, [0.5, 0.5, 0.2, 0.2, 7, 0]))
    res = run(t)  # row 1 is x == 0: row 2 is never read
    assert res.class_ids.max() == 0 and res.count == 1


def test_a_truth_on_the_grids_edge_is_refused_as_for_alexeyab() -> None:
    t = truth_rows((0, 0, [1.0, 0.5, 0.2, 0.2, 0, 0]))
    with pytest.raises(ValueError, match="outside the 4x4 grid"):
        run(t)


# ---- HANK(11): the line -------------------------------------------------------------------------

@pytest.mark.parametrize("loss, name", [("mse", "mse"), ("giou", "giou"), ("iou", "iou"), ("diou", "iou"),
                                        ("ciou", "iou")])
def test_the_verbose_line(loss: str, name: str) -> None:
    x = np.random.default_rng(1).standard_normal((2, 24, 4, 4)).astype(F)
    t = truth_rows((0, 0, [0.5, 0.5, 0.2, 0.2, 1, 0]))
    res = hankai.YoloLayer(iou_loss=loss, iou_normalizer=0.07, **LAYER).forward(x, t, net_w=128, net_h=128,
                                                                                  index=30)
    s = res.stats
    assert res.text == (f"v3 {name} loss, Normalizer: (iou: 0.07, obj: 1.00, cls: 1.00) Region 30 Avg (IOU: "
                        f"{float(s.avg_iou):f}), count: 1, class_loss: {float(s.class_loss):f}, iou_loss: "
                        f"{float(s.iou_loss):f}, total_loss: {float(s.total_loss):f}\n")
    assert res.stats.names == ["avg_iou", "class_loss", "iou_loss", "total_loss"]


def test_threads_do_not_change_the_bits() -> None:
    d = GH.load(GH.cases(GH.EXTRA)[1])  # B = 2, many truths
    p = d["params"]
    layer = hankai.layer_from_params(p)
    a = layer.forward(d["input"], d["truth"], net_w=p["net_w"], net_h=p["net_h"], index=p["net_index"], threads=1)
    b = layer.forward(d["input"], d["truth"], net_w=p["net_w"], net_h=p["net_h"], index=p["net_index"], threads=4)
    assert G.bits_equal(a.delta, b.delta) and G.bits_equal(a.output, b.output) and a.text == b.text == d["text"]
