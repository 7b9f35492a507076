"""The diagnosis on a HELD-OUT set of mistaken implementations of AlexeyAB's [yolo]
(tests/heldout_ab_impls.py, issue 20).

The set was written before any AlexeyAB cause existed, from upstream's sources
(AlexeyAB/darknet 59596d7 src/yolo_layer.c, src/box.c), not from this package's C
core or its diagnosis.  Per configuration: the verdict, the top cause, every
expected cause named, no element claimed by a cause outside the expected ones, at
most 5% of the failing elements unexplained.  The sanity tests check that the
correct port agrees with the oracle (tolerance="float32"; most cases bit for bit)
and that each departure changes its delta.

First run against main's engine (commit cb76c3b, before any AlexeyAB cause or record existed):
3 of 23 right, the three correct ports; every mistaken one WRONG (counts: failing elements per cause):
  right  ab_correct_ciou (expected: -): named -
  right  ab_correct_mse (expected: -): named -
  right  ab_correct_new_coords (expected: -): named -
  WRONG  ab_no_iou_thresh (expected: iou_thresh): named unexplained 171
  WRONG  ab_mse_no_iou_thresh (expected: iou_thresh): named unexplained 153
  WRONG  ab_anchor_by_ciou (expected: anchor_assignment): named unexplained 27
  WRONG  ab_ignore_no_class_gate (expected: ignore_rule): named unexplained 16
  WRONG  ab_ignore_no_scale_x_y (expected: scale_x_y): named unexplained 20
  WRONG  ab_overwrite_box (expected: overwrite_order): named unexplained 12
  WRONG  ab_no_truth_thresh (expected: truth_thresh): named unexplained 325
  WRONG  ab_iou_normalizer_missed (expected: normalizer): named unexplained 108
  WRONG  ab_mse_iou_normalizer_missed (expected: normalizer): named weight 88
  WRONG  ab_obj_normalizer_missed (expected: normalizer): named weight 659
  WRONG  ab_mse_where_ciou (expected: box_loss): named unexplained 104
  WRONG  ab_giou_where_ciou (expected: box_loss): named unexplained 106
  WRONG  ab_no_max_delta (expected: max_delta): named unexplained 86
  WRONG  ab_label_smoothing_missed (expected: label_smoothing): named weight 108
  WRONG  ab_new_coords_wh_exp (expected: new_coords): named unexplained 126
  WRONG  ab_tianxiaomo_like (expected: box_loss, iou_thresh): named unexplained 199
  WRONG  ab_no_iou_thresh+no_class_gate (expected: ignore_rule, iou_thresh): named unexplained 166
  WRONG  ab_overwrite+iou_normalizer (expected: normalizer, overwrite_order): named unexplained 56
  WRONG  ab_smoothing+max_delta (expected: label_smoothing, max_delta): named weight 92, unexplained 80
  WRONG  ab_anchor_by_ciou+scale_x_y (expected: anchor_assignment, scale_x_y): named unexplained 39
(`weight` named for the normalizer cases: a part factor, right in kind but not named as the
normalizer; for label smoothing, a wrong claim.)

After the causes of issue 20 (iou_thresh, normalizer, box_loss, scale_x_y, label_smoothing,
max_delta; truth_thresh, ignore_rule, overwrite_order, anchor_assignment on AlexeyAB's layer):
22 of 23 right; left: ab_new_coords_wh_exp (no new_coords cause; xfail below).

Second round (written before new_coords, iou_thresh "added", and x0_terminator / truth_limit /
cell_assignment on AlexeyAB's layer existed; commit 20b6b3b): 12 more ports, 0 of the 12 right on
first run (ab_row_limit and the rounded-cell ports had wrong claims by iou_thresh, the new_coords
ports a wrong claim by weight; the rest unexplained).  After those causes: 35 of 35 right, and
every random case (3 seeds each) of the 32 mistaken ones.

Fourth round (after the evaluation on Tianxiaomo's pytorch-YOLOv4; written before the models, on main
a5c0c4d): 6 more ports, 2 of the 6 right on first run (ab_anchor_by_ciou_corner+no_iou_thresh,
ab_no_iou_thresh+no_class_gate_at_extras); ab_mse+iou_normalizer+scale_x_y_missed named box_loss and
scale_x_y but not normalizer (box_loss's message names it); ab_ignore_skipped_unmatched and
ab_ignore_skipped+no_iou_thresh had a WRONG claim by new_coords (its flipped decoding also leaves the
skipped image's cells un-ignored); ab_ignore_thresh_lower was all unexplained.
"""
from __future__ import annotations

import functools
import warnings
from typing import Any, Tuple

import numpy as np
import pytest

import pydarknet_loss as pdl

import heldout_ab_impls as H

NAMES = list(H.TABLE)
IGNORED = {"", "float_rounding"}


@functools.lru_cache(maxsize=None)
def _case(name: str) -> Tuple[Any, Any]:
    c = H.CASES[name]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = c.layer.forward(c.x, c.truth, net_w=c.net_w, net_h=c.net_h)
    return c, res


def _compare(name: str, delta: np.ndarray, tolerance: str = "float32") -> Any:
    c, res = _case(name)
    return pdl.compare(res, {"delta": delta}, c.layer, input=c.x, truth=c.truth, net_w=c.net_w, net_h=c.net_h,
                       tolerance=tolerance)


def _correct_delta(name: str) -> np.ndarray:
    c, _ = _case(name)
    return H.CORRECT(c.x, c.truth, c.layer, c.net_w, c.net_h)


@functools.lru_cache(maxsize=None)
def diagnose(name: str) -> Tuple[Any, np.ndarray]:
    c, _ = _case(name)
    report = _compare(name, H.run(name, c))
    return report, report.cause_map("delta")


def _codes(report: Any) -> list:
    return [cause.code for cause in report.causes if cause.code != "float_rounding"]


def test_table_is_large_and_covers_the_vocabulary() -> None:
    wrong = [n for n in NAMES if H.TABLE[n][1]]
    assert len(wrong) >= 15
    named = set().union(*(exp for _, exp in H.TABLE.values()))
    assert {"iou_thresh", "anchor_assignment", "ignore_rule", "scale_x_y", "overwrite_order", "truth_thresh",
            "normalizer", "box_loss", "max_delta", "label_smoothing", "new_coords", "x0_terminator", "truth_limit",
            "cell_assignment"} <= named
    assert sum(len(exp) == 2 for _, exp in H.TABLE.values()) >= 8
    heads = {H.CASES[n]().layer.iou_loss for n in NAMES}
    assert {"mse", "ciou"} <= heads


@pytest.mark.parametrize("name", NAMES)
def test_correct_port_agrees_with_the_oracle(name: str) -> None:
    """The port without departures agrees with pdl.alexeyab.YoloLayer within darknet's float32 rounding,
    and bit for bit on all but at most a few elements (one ULP where NumPy's exp and glibc's differ)."""
    _, res = _case(name)
    good = _correct_delta(name)
    report = _compare(name, good)
    assert report.ok, str(report)
    assert int((good.view(np.uint32) != res.delta.view(np.uint32)).sum()) <= 2


def test_correct_port_is_bit_exact_on_the_mse_head() -> None:
    assert _compare("ab_correct_mse", _correct_delta("ab_correct_mse"), tolerance="exact").ok
    assert _compare("ab_correct_new_coords", _correct_delta("ab_correct_new_coords"), tolerance="exact").ok


@pytest.mark.parametrize("name", [n for n in NAMES if H.TABLE[n][1]])
def test_departure_shows_on_its_case(name: str) -> None:
    c, res = _case(name)
    delta = H.run(name, c)
    assert delta.shape == res.delta.shape and delta.dtype == np.float32
    good = _correct_delta(name)
    assert np.any(np.abs(delta - good) > 1e-5 * np.maximum(1.0, np.abs(good))), name


@pytest.mark.parametrize("name", [n for n in NAMES if len(H.TABLE[n][1]) == 2])
def test_each_departure_of_a_pair_shows(name: str) -> None:
    c, _ = _case(name)
    good = _correct_delta(name)
    changed = {f: v for f, v in vars(H.DEPS[name]).items() if v != getattr(H.Dep(), f)}
    assert len(changed) == 2, changed
    for f, v in changed.items():
        delta = H.ab_port(c.x, c.truth, c.layer, c.net_w, c.net_h, H.Dep(**{f: v}))
        assert np.any(np.abs(delta - good) > 1e-5 * np.maximum(1.0, np.abs(good))), (name, f)


#: Known gaps, failing for the reason given (strict: they fail the suite once they pass).
NOT_YET: dict = {}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(reason=NOT_YET[n], strict=True))
                                  if n in NOT_YET else n for n in NAMES])
def test_diagnosis_on_held_out_implementation(name: str) -> None:
    want = set(H.TABLE[name][1])
    report, cmap = diagnose(name)
    codes = _codes(report)
    if not want:
        assert report.ok, str(report)
        assert codes == [], codes
        return
    assert not report.ok
    assert codes, "no cause named"
    assert codes[0] in want, f"top cause {codes[0]!r}, expected one of {sorted(want)}; named {codes}"
    assert want <= set(codes), f"missing {sorted(want - set(codes))}; named {codes}"
    failing = cmap != ""
    claimed = set(np.unique(cmap[failing]).tolist()) - IGNORED - {"unexplained"}
    assert claimed <= want, f"elements claimed by {sorted(claimed - want)}"
    n_fail = int(failing.sum())
    n_unexpl = int((cmap == "unexplained").sum())
    assert n_unexpl <= 0.05 * n_fail, f"{n_unexpl} of {n_fail} failing elements unexplained"


RANDOM = [n for n in NAMES if H.TABLE[n][1] and n not in NOT_YET]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("name", RANDOM)
def test_diagnosis_on_random_cases_of_each_configuration(name: str, seed: int) -> None:
    """Each configuration on other random inputs (its case builder with other seeds): the top cause
    is an expected one, no element is claimed by another cause, at most 5% unexplained (issue 20).
    Written after the causes: 57 of 57 right when added (one, a pair, needed the class-gate model to
    take cells the other departure left unassigned); with the second round's 12 ports, 96 of 96."""
    orig = H.ab_case

    def shifted(sd: int, *a: Any, **k: Any) -> Any:
        return orig(sd + 1000 + 37 * seed, *a, **k)

    H.ab_case = shifted
    try:
        c = H.CASES[name]()
    finally:
        H.ab_case = orig
    want = set(H.TABLE[name][1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = c.layer.forward(c.x, c.truth, net_w=c.net_w, net_h=c.net_h)
    report = pdl.compare(res, {"delta": H.run(name, c)}, c.layer, input=c.x, truth=c.truth, net_w=c.net_w,
                         net_h=c.net_h, tolerance="float32")
    cmap = report.cause_map("delta")
    failing = cmap != ""
    if not failing.any():
        return  # the departure does not show on this input
    codes = _codes(report)
    assert codes and codes[0] in want, codes
    claimed = set(np.unique(cmap[failing]).tolist()) - IGNORED - {"unexplained"}
    assert claimed <= want, claimed
    assert (cmap == "unexplained").sum() <= 0.05 * failing.sum()
