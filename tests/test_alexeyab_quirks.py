"""AlexeyAB/darknet 59596d7's [yolo]: the behaviour the oracle reproduces on
purpose, one test per quirk, each named after it.

Every test first checks the oracle against a case upstream computed (bit for
bit), then shows the quirk in *upstream's own numbers* with an independent
computation (float32 NumPy, or the C library's expf through ctypes), so the
test would fail if upstream did not behave as stated.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import math
import re
from typing import Any, Dict, List, Tuple

import numpy as np
import pytest

import goldens as G
import goldens_ab as GA
import pydarknet_loss as pdl
from pydarknet_loss import alexeyab

f32 = np.float32
_libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
_libm.expf.restype = ctypes.c_float
_libm.expf.argtypes = [ctypes.c_float]


def shared(name: str) -> Dict[str, Any]:
    d = GA.load(GA.REPO / name)
    GA.assert_matches(GA.run(d), d)
    return d


def extra(name: str) -> Dict[str, Any]:
    d = GA.by_name(name)
    GA.assert_matches(GA.run(d), d)
    return d


def planes(d: Dict[str, Any], key: str) -> np.ndarray:
    """(B, n, 5+classes, H, W) view of a (B, C, H, W) array."""
    p = d["params"]
    a = d[key]
    return a.reshape(a.shape[0], p["n"], p["classes"] + 5, a.shape[2], a.shape[3])


def truths(d: Dict[str, Any], b: int) -> List[np.ndarray]:
    """Rows upstream reads (up to the first x == 0) with an in-range class."""
    out = []
    for row in d["truth"][b]:
        if row[0] == 0:
            break
        if 0 <= int(row[4]) < d["params"]["classes"]:
            out.append(row)
    return out


def iou32(a: Tuple[float, ...], b: Tuple[float, ...]) -> float:
    """AlexeyAB's box_iou in float32 (0 when the intersection or the union is 0)."""
    def overlap(x1: Any, w1: Any, x2: Any, w2: Any) -> Any:
        left = max(f32(x1) - f32(w1) / f32(2), f32(x2) - f32(w2) / f32(2))
        right = min(f32(x1) + f32(w1) / f32(2), f32(x2) + f32(w2) / f32(2))
        return f32(right - left)
    w = overlap(a[0], a[2], b[0], b[2])
    h = overlap(a[1], a[3], b[1], b[3])
    inter = f32(0) if (w < 0 or h < 0) else f32(w * h)
    union = f32(f32(f32(a[2]) * f32(a[3]) + f32(b[2]) * f32(b[3])) - inter)
    if inter == 0 or union == 0:
        return 0.0
    return float(f32(inter / union))


def pred_box(d: Dict[str, Any], b: int, n: int, j: int, i: int) -> Tuple[float, ...]:
    p = d["params"]
    o = planes(d, "output")[b, n, :, j, i]
    anchor = p["mask"][n]
    bw = f32(math.exp(float(o[2])) * float(f32(p["anchors"][2 * anchor])) / p["net_w"])
    bh = f32(math.exp(float(o[3])) * float(f32(p["anchors"][2 * anchor + 1])) / p["net_h"])
    return (f32(f32(i + o[0]) / p["w"]), f32(f32(j + o[1]) / p["h"]), bw, bh)


def best_anchor(d: Dict[str, Any], row: np.ndarray) -> int:
    p = d["params"]
    best, best_n = 0.0, 0
    for a in range(p["total"]):
        anchor = (0.0, 0.0, f32(f32(p["anchors"][2 * a]) / p["net_w"]), f32(f32(p["anchors"][2 * a + 1]) / p["net_h"]))
        v = iou32(anchor, (0.0, 0.0, row[2], row[3]))
        if v > best:
            best, best_n = v, a
    return best_n


# ---- activation ----------------------------------------------------------------------

def test_logistic_is_float_expf_not_pjreddies_double_exp() -> None:
    """output = 1.f/(1.f + expf(-x)) in float (then x, y scaled); pjreddie
    rounds 1./(1. + exp(-x)) from double, which differs in the last bit for
    some inputs."""
    d = shared("case_0000_yolo_ab.npz")  # yolov3 head 0, scale_x_y 1
    x = planes(d, "input")[:, :, 4:].ravel()
    out = planes(d, "output")[:, :, 4:].ravel()
    ours_f = np.array([f32(f32(1) / f32(f32(1) + f32(_libm.expf(float(-v))))) for v in x], np.float32)
    assert G.bits_equal(ours_f, out)
    double = (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(np.float32)
    assert np.count_nonzero(double != out) > 0  # pjreddie's double logistic is another function


def test_scale_x_y_scales_around_the_cell_centre_with_beta_rounded_once() -> None:
    """x, y become sigma*s + (float)(-0.5*(s - 1)): the double product rounded once into a float."""
    d = shared("case_0003_yolo_ab.npz")  # yolov4 head 0, scale_x_y 1.2
    s = f32(d["params"]["scale_x_y"])
    assert s == f32(1.2)
    beta = f32(-0.5 * float(s - f32(1)))
    x = planes(d, "input")[:, :, :2].ravel()
    sig = np.array([f32(1) / f32(f32(1) + f32(_libm.expf(float(-v)))) for v in x], np.float32)
    assert G.bits_equal(sig * s + beta, planes(d, "output")[:, :, :2].ravel())


def test_new_coords_activates_nothing_but_still_scales_x_y() -> None:
    d = extra("new_coords_ciou")
    p = d["params"]
    s, beta = f32(p["scale_x_y"]), f32(-0.5 * float(f32(p["scale_x_y"]) - f32(1)))
    inp, out = planes(d, "input"), planes(d, "output")
    assert G.bits_equal(out[:, :, 2:], inp[:, :, 2:])
    assert G.bits_equal(out[:, :, :2], inp[:, :, :2] * s + beta)


# ---- loop 1 ------------------------------------------------------------------------------

def test_best_match_iou_needs_some_class_probability_above_0_25() -> None:
    """A cell's objectness delta is zeroed only if its best IoU *among truths
    while some class probability > 0.25* beats ignore_thresh, whatever the
    truth's class.  Upstream keeps -obj_normalizer*o where only the plain
    best IoU beats it."""
    d = extra("ignore_thresh_0_25_rule")
    p = d["params"]
    out, delta = planes(d, "output"), planes(d, "delta")
    kept = zeroed = 0
    for b in range(d["input"].shape[0]):
        rows = truths(d, b)
        for n in range(p["n"]):
            for j in range(p["h"]):
                for i in range(p["w"]):
                    best = max([iou32(pred_box(d, b, n, j, i), tuple(r[:4])) for r in rows] or [0.0])
                    if not best > f32(p["ignore_thresh"]) or delta[b, n, 0, j, i] != 0:
                        continue  # (skip cells with a box delta: assigned in loop 2)
                    confident = bool(np.any(out[b, n, 5:, j, i] > f32(0.25)))
                    if confident:
                        assert delta[b, n, 4, j, i] == 0
                        zeroed += 1
                    else:
                        assert delta[b, n, 4, j, i] == f32(p["obj_normalizer"]) * (f32(0) - out[b, n, 4, j, i])
                        kept += 1
    assert kept > 0 and zeroed > 0


def test_truth_thresh_below_zero_gives_every_cell_truth_row_0() -> None:
    """best_t starts at 0 and best_iou at 0, so with truth_thresh < 0 every
    cell without a better truth takes row 0 as its truth: a box delta in
    every cell of every image."""
    d = extra("truth_thresh_negative_row0")
    p = d["params"]
    cells = d["input"].shape[0] * p["n"] * p["h"] * p["w"]
    assert int(d["total_bbox"]) >= cells
    assert np.all(planes(d, "delta")[:, :, 0:4] != 0)


def test_nan_objectness_is_zeroed_in_the_output() -> None:
    """Loop 1 writes 0 over a NaN or infinite objectness (in l.output) once
    the image has a truth with a valid class; the delta then sees 0."""
    for name in ("nonfinite_inputs_mse", "nonfinite_inputs_ciou"):
        d = extra(name)
        inp, out = planes(d, "input"), planes(d, "output")
        bad = ~np.isfinite(inp[:, :, 4])
        bad &= np.array([len(truths(d, b)) > 0 for b in range(inp.shape[0])])[:, None, None, None]
        assert bad.any()
        assert np.all(out[:, :, 4][bad] == 0)


# ---- loop 2 and the box delta ------------------------------------------------------------

def test_mse_box_delta_is_pjreddies_times_iou_normalizer() -> None:
    """MSE: ((2 - w*h)*(t - x))*iou_normalizer, added to the cell; with the
    default iou_normalizer .75 the box deltas are 0.75x pjreddie's."""
    d = shared("case_0000_yolo_ab.npz")  # yolov3: mse, iou_normalizer .75 (default)
    p = d["params"]
    assert p["iou_loss"] == "mse" and f32(p["iou_normalizer"]) == f32(0.75)
    out, delta = planes(d, "output"), planes(d, "delta")
    checked = 0
    for b in range(d["input"].shape[0]):
        for row in truths(d, b):
            a = best_anchor(d, row)
            if a not in p["mask"]:
                continue
            n = p["mask"].index(a)
            i, j = int(f32(row[0]) * f32(p["w"])), int(f32(row[1]) * f32(p["h"]))
            scale = f32(f32(2) - f32(row[2]) * f32(row[3]))
            tx = f32(f32(row[0]) * f32(p["w"]) - f32(i))
            tw = f32(math.log(float(f32(f32(row[2]) * f32(p["net_w"])) / f32(p["anchors"][2 * a]))))
            want_x = f32(f32(scale * f32(tx - out[b, n, 0, j, i])) * f32(0.75))
            want_w = f32(f32(scale * f32(tw - out[b, n, 2, j, i])) * f32(0.75))
            if int(d["rewritten_bbox"]) == 0:
                assert delta[b, n, 0, j, i] == want_x and delta[b, n, 2, j, i] == want_w
                checked += 1
    assert checked > 0


def test_box_deltas_accumulate_over_truths_in_the_same_cell() -> None:
    """pjreddie overwrites the box delta of a cell that a later truth hits
    again; AlexeyAB adds to it, and counts the addition in rewritten_bbox."""
    d = shared("case_0079_yolo_ab.npz")  # dup_cell_hit, bbox_rewritten
    assert int(d["rewritten_bbox"]) > 0 and "dup_cell_hit" in d["tags"]
    p = d["params"]
    # the same input with only one of the two truths of the shared cell each time
    for b in range(d["input"].shape[0]):
        rows = truths(d, b)
        cells = [(int(f32(r[0]) * f32(p["w"])), int(f32(r[1]) * f32(p["h"])), best_anchor(d, r)) for r in rows]
        for k, c in enumerate(cells):
            if c in cells[:k] and c[2] in p["mask"]:
                first = cells.index(c)
                n = p["mask"].index(c[2])
                i, j = c[0], c[1]
                singles = []
                for keep in (first, k):
                    t = d["truth"].copy()
                    t[b] = 0
                    t[b, 0] = rows[keep]
                    singles.append(GA.run({**d, "truth": t}).delta.reshape(planes(d, "delta").shape)[b, n, :4, j, i])
                upstream = planes(d, "delta")[b, n, :4, j, i]
                if "iou_thresh_lt_1" not in d["tags"]:
                    assert G.bits_equal(upstream, singles[0] + singles[1])
                assert not G.bits_equal(upstream, singles[1])  # not overwritten
                return
    pytest.fail("no shared cell found")


def test_iou_thresh_assigns_further_anchors_of_the_mask() -> None:
    """Besides each truth's best anchor, every other anchor of the mask whose
    centred IoU of kind iou_thresh_kind beats iou_thresh is assigned too (and
    counted); only best-anchor assignments write labels."""
    for kind in ("iou", "giou", "diou", "ciou"):
        d = extra(f"iou_thresh_kind_{kind}_loss_ciou")
        p = d["params"]
        best = sum(best_anchor(d, r) in p["mask"] for b in range(d["input"].shape[0]) for r in truths(d, b))
        assert int(d["count"]) > best
        assert np.count_nonzero(d["labels"] != -1) <= best < int(d["count"])


def test_mask_with_a_repeated_anchor_leaves_the_second_plane_unused() -> None:
    """int_index finds the first occurrence: with mask=4,4,5 the second plane
    never gets a truth (best anchor or iou_thresh extra)."""
    d = extra("mask_duplicate_anchor")
    assert d["params"]["mask"] == [4, 4, 5]
    delta = planes(d, "delta")
    assert np.all(delta[:, 1, 0:4] == 0) and np.all(d["labels"][:, 1] == -1)
    assert np.any(delta[:, 0, 0:4] != 0)


# ---- class deltas ----------------------------------------------------------------------------

def test_duplicate_hit_tests_the_target_class_and_skips_cls_normalizer() -> None:
    """When the target class's delta is already non-zero, only it is set, to
    (smoothed 1 - p)*multiplier without cls_normalizer; a first hit gets
    (y - p) for every class and multiplier*cls_normalizer on the target."""
    d = extra("counters_per_class_dup_hit_no_cls_normalizer")
    p = d["params"]
    eps, cls_norm = f32(p["label_smooth_eps"]), f32(p["cls_normalizer"])
    mult = alexeyab.layer_from_params(p).classes_multipliers
    y1 = f32(float(f32(f32(1) * f32(f32(1) - eps))) + 0.5 * float(eps))
    out, delta = planes(d, "output"), planes(d, "delta")
    first = dup = 0
    for b, n, j, i in zip(*np.nonzero(d["class_ids"] != -1)):
        c = int(d["class_ids"][b, n, j, i])
        got = delta[b, n, 5 + c, j, i]
        once = f32(f32(y1 - out[b, n, 5 + c, j, i]) * f32(mult[c] * cls_norm))
        again = f32(f32(y1 - out[b, n, 5 + c, j, i]) * mult[c])
        assert got in (once, again)
        first += got == once
        dup += got == again and again != once
    assert first > 0 and dup > 0


def test_focal_loss_delta() -> None:
    """Focal loss: ((n == id) - p)*(0.5*grad) for every class, grad =
    -(1 - pt)(2 pt logf(pt) + pt - 1), pt = p_id + 1e-15f; no smoothing."""
    d = extra("focal_loss_counters_per_class")
    out, delta = planes(d, "output"), planes(d, "delta")
    _libm.logf.restype = ctypes.c_float
    _libm.logf.argtypes = [ctypes.c_float]
    checked = 0
    for b, n, j, i in zip(*np.nonzero(d["class_ids"] != -1)):
        c = int(d["class_ids"][b, n, j, i])
        pt = f32(out[b, n, 5 + c, j, i] + f32(1e-15))
        grad = f32(-f32(f32(1) - pt) * f32(f32(f32(f32(2) * pt) * f32(_libm.logf(float(pt))) + pt) - f32(1)))
        for k in range(d["params"]["classes"]):
            want = f32(f32(f32(k == c) - out[b, n, 5 + k, j, i]) * f32(f32(0.5) * grad))
            if not np.isclose(delta[b, n, 5 + k, j, i], want, rtol=4e-7, atol=0):
                break
        else:
            checked += 1
    assert checked > 0


def test_classes_multipliers_from_counters_per_class_clipped_by_max_delta() -> None:
    """max_counter/counter in float (counters below 1 count as 1), clipped to
    max_delta: the values upstream's parser derived, from the shared set."""
    for name in ("case_0046_yolo_ab.npz", "case_0047_yolo_ab.npz"):
        d = shared(name)
        p = d["params"]
        layer = alexeyab.layer_from_params(p)
        assert G.bits_equal(layer.classes_multipliers, np.float32(p["classes_multipliers"]))
    assert max(GA.load(GA.REPO / "case_0046_yolo_ab.npz")["params"]["classes_multipliers"]) == 2.0  # max_delta=2


def test_out_of_range_class_ids_are_skipped_and_warned_per_cell() -> None:
    """A row whose (int)class_id is outside [0, classes) is skipped in both
    loops; loop 1 prints two warning lines for it in every cell and anchor
    (stdout).  The oracle counts such rows (skipped_truths) and rebuilds the
    text; it never prints."""
    for path in GA.with_tag("class_id_out_of_range"):
        d = GA.load(path)
        res = GA.run(d)
        GA.assert_matches(res, d)
        p = d["params"]
        rows = d["truth"][0]
        used = rows[:np.flatnonzero(rows[:, 0] == 0)[0]] if np.any(rows[:, 0] == 0) else rows
        bad = [r for r in used if not 0 <= int(r[4]) < p["classes"]]
        warns = d["text"].count("Warning: in txt-labels")
        assert warns == len(bad) * p["n"] * p["h"] * p["w"] and res.skipped_truths == len(bad)


# ---- counters, labels, cost, printing ------------------------------------------------------------

def test_count_prints_1_when_nothing_was_assigned() -> None:
    for path in GA.with_tag("zero_truths"):
        d = GA.load(path)
        GA.assert_matches(GA.run(d), d)
        if d["train"]:
            assert int(d["count"]) == 1 and int(d["total_bbox"]) == 0


def test_x0_row_ends_the_truth_list_in_both_loops() -> None:
    for path in GA.with_tag("x0_terminator_mid"):
        d = GA.load(path)
        t = d["truth"].copy()
        for b in range(t.shape[0]):
            z = np.flatnonzero(t[b, :, 0] == 0)
            if z.size:
                t[b, z[0]:] = 0
        # upstream's result on the full list equals the oracle's on the cut list
        GA.assert_matches(GA.run({**d, "truth": t}), d)


def test_labels_hold_the_track_id_truncated_and_the_last_truth_wins() -> None:
    for path in GA.with_tag("track_ids"):
        d = GA.load(path)
        GA.assert_matches(GA.run(d), d)
        tracks = {int(v) for v in d["truth"][:, :, 5].ravel()}
        assert set(np.unique(d["labels"][d["labels"] != -1]).tolist()) <= tracks


def test_counters_are_exact_where_upstream_races() -> None:
    """Upstream increments total_bbox/rewritten_bbox from one thread per image
    without a lock; the stored values are upstream's exact sums (each image
    alone), and the oracle's batched call gives them."""
    d = extra("batch16_grid26_yolov4tiny_head")
    res = GA.run(d)
    per_image = 0
    for b in range(16):
        one = {**d, "input": d["input"][b:b + 1], "truth": d["truth"][b:b + 1]}
        r = GA.run(one)
        assert G.bits_equal(r.delta[0], d["delta"][b])
        per_image += r.total_bbox
    assert res.total_bbox == per_image == int(d["total_bbox"])


def test_statistics_are_per_image_float_sums_added_in_image_order() -> None:
    """tot_iou is a float sum per image (one thread each), added in image
    order: summing all assignments in one float sequence can differ."""
    d = extra("batch16_grid13_yolov4tiny_head")
    res = GA.run(d)
    total, count = f32(0), 0
    for b in range(16):
        r = GA.run({**d, "input": d["input"][b:b + 1], "truth": d["truth"][b:b + 1]})
        total = f32(total + f32(r.sums["tot_iou"]))
        count += r.sums["count"]
    assert f32(total / f32(count)) == f32(d["stats"][0]) == f32(res.stats.avg_iou)


def _mag2(a: np.ndarray) -> float:
    s = f32(0)
    with np.errstate(over="ignore", invalid="ignore"):
        for v in a.ravel():
            s = f32(s + f32(v * v))
    return float(f32(math.pow(float(f32(math.sqrt(float(s)))), 2)))


@pytest.mark.parametrize("name", ["case_0000_yolo_ab.npz", "case_0006_yolo_ab.npz", "case_0003_yolo_ab.npz"])
def test_cost_is_the_iou_loss_mean_plus_class_loss_for_iou_losses(name: str) -> None:
    """show_details=1: for MSE the cost is pow(mag_array(delta), 2); for the
    IoU losses it is iou_normalizer*mean(1 - IoU) plus obj_normalizer*|delta
    without box entries|^2, not the sum of squared deltas."""
    d = shared(name)
    p = d["params"]
    delta = planes(d, "delta").copy()
    total = _mag2(delta)
    delta[:, :, :4] = 0
    class_loss = f32(float(f32(p["obj_normalizer"])) * _mag2(delta))
    if p["iou_loss"] == "mse":
        assert f32(total) == d["cost"]
    else:
        assert f32(total) != d["cost"]
        avg = f32(d["cost"] - class_loss)
        assert 0 <= avg <= f32(p["iou_normalizer"]) * 2  # iou_normalizer*(1 - IoU), IoU in [-1, 1] for GIoU
    assert f32(class_loss / f32(d["params"]["batch"])) == f32(d["stats"][1])


def test_diou_and_ciou_print_iou_loss() -> None:
    for tag, name in (("iou_loss_diou", "iou"), ("iou_loss_ciou", "iou"), ("iou_loss_giou", "giou"),
                      ("iou_loss_mse", "mse")):
        d = GA.load(GA.with_tag(tag)[0])
        assert d["text"].startswith(f"v3 ({name} loss, Normalizer: (iou: ")
        assert GA.run(d).stats.line().startswith(f"v3 ({name} loss,")


def test_show_details_0_prints_only_the_total() -> None:
    d = GA.load(GA.with_tag("show_details_0")[0])
    res = GA.run(d)
    GA.assert_matches(res, d)
    assert res.stats.class_loss is None and "class_loss" not in d["text"]
    assert re.fullmatch(r"v3 \(\w+ loss, Normalizer: \(iou: [0-9.]+, obj: [0-9.]+, cls: [0-9.]+\) Region \d+ Avg "
                        r"\(IOU: \S+\), count: \d+, total_loss = \S+ \n", d["text"])


def test_delta_normalizer_is_parsed_but_never_read() -> None:
    d = GA.load(GA.REPO / "case_0003_yolo_ab.npz")
    GA.assert_matches(GA.run(d, delta_normalizer=7.0), d)


def test_network_cost_averages_layers_with_a_cost_slot() -> None:
    """get_network_cost: float sum over the layers that have l.cost, divided by
    their count; the same arithmetic as pjreddie's calc_network_cost."""
    assert pdl.calc_network_cost([f32(1), f32(2), f32(4)]) == f32(f32(7) / f32(3))


@pytest.mark.parametrize("loss", ["mse", "giou", "diou", "ciou", "iou"])
def test_iou_loss_deltas_are_not_a_gradient(loss: str) -> None:
    """The IoU-loss box delta skips the chain rule through the logistic for
    x, y but takes it through exp for w, h: measured here, the Jacobian of the
    delta in the raw input is not symmetric (a gradient's would be), and
    pdl.implied refuses with NotAGradientError."""
    l = alexeyab.YoloLayer(classes=1, anchors=[30, 40], iou_loss=loss, iou_normalizer=1.0)
    x = np.zeros((1, 6, 1, 1), np.float32)
    x[0, :4, 0, 0] = [0.3, -0.2, 0.1, 0.2]
    truth = [np.array([[0.6, 0.45, 0.12, 0.09, 0]], np.float32)]

    def box_delta(v: np.ndarray) -> np.ndarray:
        return l.forward(v, truth, net_w=416, net_h=416).delta[0, :4, 0, 0].astype(np.float64)

    h = np.float32(1e-2)
    jac = np.zeros((4, 4))
    for k in range(4):
        xp, xm = x.copy(), x.copy()
        xp[0, k] += h
        xm[0, k] -= h
        jac[:, k] = (box_delta(xp) - box_delta(xm)) / (2 * float(h))
    if loss == "mse":  # the control: each MSE box delta depends on its own entry alone
        assert np.allclose(jac, jac.T, rtol=0.05, atol=1e-3) and np.count_nonzero(np.diag(jac)) == 4
        return
    assert not np.allclose(jac, jac.T, rtol=0.05, atol=1e-3)
    with pytest.raises(pdl.implied.NotAGradientError, match=f"iou_loss={loss}"):
        pdl.implied.yolo(x, truth, l)
