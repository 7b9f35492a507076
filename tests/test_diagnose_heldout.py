"""The diagnosis on a HELD-OUT set of mistaken implementations (tests/heldout_impls.py).

The set was written before the diagnosis was tuned to it, from upstream's sources and
without reading the diagnosis or pdl.mistakes, so that it tests "a diagnosis that is
right about code it has never seen" (issue 18).  Per configuration: the verdict, the
top cause, every expected cause named, no element claimed by a cause outside the
expected ones, at most 2% of the failing elements unexplained, and the part and factor
of a part weight where the cause reports them.  The sanity tests check that the
correct port agrees with the oracle and that each departure changes its delta.

First run against the NEW engine (pydarknet_loss.parity.diagnosis, commit d0dfdc7, tuned
only on pdl.mistakes before this set was merged): 36 of 41 right.  Wrong then:
correct_float64 and region_correct_float64 (darknet's tolerance missed the rounding of
x*W, of the prior's (i + .5)/W and of rescore's float32 IoU: the bound now has them),
region_gpu_form+no_rescore (the chain's factor was not carried to the cells a decision
changes: decisions now also run with a part's group factor taken out), and the two
marked xfail below: class_ids_off_by_one (cells where two truths share the classes are
left to the short-circuit model, which does not model a shifted id) and giou_box_loss
(no box_loss model yet).

First run against the old diagnosis at commit 3c026f7: 18 of 41 right.
(right = every assertion of test_diagnosis_on_held_out_implementation holds; the counts are elements claimed.)
  WRONG  correct_float64 [yolo] (expected: -): named cell_assignment 3
  WRONG  region_correct_float64 [region] (expected: -): named unexplained 352, cell_assignment 14, wh_target 1
  WRONG  box_x2 [yolo] (expected: weight): named cell_assignment 32
  WRONG  box_lambda_coord5 [yolo] (expected: weight): named cell_assignment 28, unexplained 4
  WRONG  classes_x2 [yolo] (expected: weight): named cell_assignment 28, unexplained 4
  WRONG  negative_objectness_x0.5 [yolo] (expected: weight): named unexplained 949, objectness_loss 41, cell_assignment 4
  WRONG  positive_objectness_x5 [yolo] (expected: weight): named cell_assignment 5, unexplained 3
  WRONG  xy_times_sigmoid_prime [yolo] (expected: chain): named cell_assignment 14, unexplained 2
  WRONG  mse_objectness [yolo] (expected: chain): named objectness_loss 1000
  WRONG  softmax_ce_classes [yolo] (expected: class_loss): named cell_assignment 24, unexplained 8
  WRONG  class_ids_off_by_one [yolo] (expected: class_target): named cell_assignment 12, unexplained 4
  WRONG  label_smoothing_0.1 [yolo] (expected: class_target): named cell_assignment 28, unexplained 4
  WRONG  label_smoothing_bce_0.1 [yolo] (expected: class_target): named cell_assignment 28, unexplained 4
  WRONG  objectness_target_iou [yolo] (expected: objectness_target): named cell_assignment 6, unexplained 2
  WRONG  giou_box_loss [yolo] (expected: box_loss): named cell_assignment 28, unexplained 4
  right  bce_on_probabilities [yolo] (expected: saturated_gradient): named saturated_gradient 164
  right  no_x0_stop [yolo] (expected: x0_terminator): named x0_terminator 33
  right  rows_past_max_boxes [yolo] (expected: truth_limit): named truth_limit 61
  right  rounded_cells [yolo] (expected: cell_assignment): named cell_assignment 54
  right  best_anchor_within_mask [yolo] (expected: anchor_assignment): named anchor_assignment 27
  right  first_truth_wins [yolo] (expected: overwrite_order): named overwrite_order 5
  right  no_short_circuit [yolo] (expected: class_short_circuit): named class_short_circuit 1
  right  no_box_scale [yolo] (expected: box_scale): named box_scale 32
  right  wh_in_grid_units [yolo] (expected: wh_target): named wh_target 16
  right  ignore_ge [yolo] (expected: ignore_rule): named ignore_rule 1
  right  no_truth_thresh_branch [yolo] (expected: truth_thresh): named truth_thresh 171
  right  gradient_sign [yolo] (expected: sign): named sign 1059
  right  batch_mean [yolo] (expected: scale): named scale 1070
  right  nhwc_layout [yolo] (expected: layout): named layout 2003
  WRONG  region_prior_x10 [region] (expected: weight): named unexplained 6628, cell_assignment 100
  right  region_no_prior [region] (expected: prior_rule): named prior_rule 6728
  right  region_no_rescore [region] (expected: rescore): named rescore 8
  right  region_rows_past_x0 [region] (expected: x0_terminator): named x0_terminator 75
  WRONG  region_gpu_form [region] (expected: chain): named objectness_loss 1687, cell_assignment 14, unexplained 2
  right  region_batch_mean [region] (expected: scale): named scale 8609
  WRONG  sign+box_x2 [yolo] (expected: sign, weight): named sign 1065
  WRONG  batch_mean+ignore_ge [yolo] (expected: ignore_rule, scale): named scale 1065
  WRONG  nhwc+negative_objectness_x0.5 [yolo] (expected: layout, weight): named unexplained 1072, ignore_rule 891, cell_assignment 60
  WRONG  region_gpu_form+no_rescore [region] (expected: chain, rescore): named objectness_loss 1678, cell_assignment 24
  WRONG  xy_chain+classes_x2 [yolo] (expected: chain, weight): named cell_assignment 42, unexplained 6
  WRONG  batch_mean+first_truth_wins [yolo] (expected: overwrite_order, scale): named scale 1038
Notes on the first run: the two float64 ports fail only because tolerance="float32" does not cover
darknet's own float32 rounding of intermediate products (e.g. tx = truth.x*W - i rounds truth.x*W to
float32: ~2.4e-7 absolute at W=13; the region prior's (i + .5)/W rounded to float), and the yolo one is
then called cell_assignment; `objectness_loss` is the old name of chain's objectness case (issue 18).
These assertions are meant to fail until the diagnosis of issue 18 exists: run
`pytest tests/test_diagnose_heldout.py` to see where it stands.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Dict, Tuple

import numpy as np
import pytest

import pydarknet_loss as pdl

import heldout_impls as H

NAMES = list(H.TABLE)
IGNORED = {"", "float_rounding"}


@functools.lru_cache(maxsize=None)
def _case(name: str) -> Tuple[Any, Any]:
    """The case and the oracle's result on it."""
    c = H.CASES[name]()
    _, kind, _ = H.TABLE[name]
    if kind == "yolo":
        res = c.layer.forward(c.x, c.truth, net_w=c.net_w, net_h=c.net_h)
    else:
        res = c.layer.forward(c.x, c.truth, seen=c.seen)
    return c, res


def _compare(name: str, delta: np.ndarray) -> Any:
    c, res = _case(name)
    _, kind, _ = H.TABLE[name]
    kw: Dict[str, Any] = dict(input=c.x, truth=c.truth, net_w=c.net_w, net_h=c.net_h, tolerance="float32")
    if kind == "region":
        kw["seen"] = c.seen
    return pdl.compare(res, {"delta": delta}, c.layer, **kw)


def _correct_delta(name: str) -> np.ndarray:
    c, _ = _case(name)
    _, kind, _ = H.TABLE[name]
    extra = (c.seen,) if kind == "region" else ()
    return H.CORRECT[kind](c.x, c.truth, c.layer, c.net_w, c.net_h, *extra)


@functools.lru_cache(maxsize=None)
def diagnose(name: str) -> Tuple[Any, np.ndarray]:
    """The report on the named configuration, and its cause map of the delta."""
    c, _ = _case(name)
    report = _compare(name, H.run(name, c))
    return report, report.cause_map("delta")


def _codes(report: Any) -> list:
    return [cause.code for cause in report.causes if cause.code != "float_rounding"]


def test_table_is_large_and_covers_the_vocabulary() -> None:
    assert len(NAMES) >= 30
    named = set().union(*(exp["codes"] for _, _, exp in H.TABLE.values()))
    vocabulary = {"layout", "sign", "scale", "weight", "chain", "class_loss", "class_target", "objectness_target",
                  "box_loss", "x0_terminator", "truth_limit", "truth_thresh", "anchor_assignment",
                  "cell_assignment", "overwrite_order", "class_short_circuit", "saturated_gradient",
                  "ignore_rule", "rescore", "prior_rule", "box_scale", "wh_target"}
    # `activation` is about the output array; these implementations hand back a delta only
    assert vocabulary <= named, vocabulary - named
    assert sum(len(exp["codes"]) == 2 for _, _, exp in H.TABLE.values()) >= 5
    assert any(not exp["codes"] for _, _, exp in H.TABLE.values())


@pytest.mark.parametrize("name", NAMES)
def test_correct_port_agrees_with_the_oracle(name: str) -> None:
    """The port without departures agrees with darknet within its float32 rounding on every case."""
    report = _compare(name, _correct_delta(name))
    assert report.ok, str(report)


@pytest.mark.parametrize("name", [n for n in NAMES if H.TABLE[n][2]["codes"]])
def test_departure_shows_on_its_case(name: str) -> None:
    """No configuration is vacuous: its delta differs from the correct port's on its case."""
    c, res = _case(name)
    delta = H.run(name, c)
    assert delta.shape == res.delta.shape and delta.dtype == np.float32
    good = _correct_delta(name)
    # beyond float32 rounding: more than a few ULPs somewhere
    assert np.any(np.abs(delta - good) > 1e-5 * np.maximum(1.0, np.abs(good))), name


@pytest.mark.parametrize("name", [n for n in NAMES if len(H.TABLE[n][2]["codes"]) == 2])
def test_each_departure_of_a_pair_shows(name: str) -> None:
    """In a pair, each departure alone changes the delta on the pair's case (neither is vacuous)."""
    c, _ = _case(name)
    _, kind, _ = H.TABLE[name]
    good = _correct_delta(name)
    changed = {f: v for f, v in vars(H.DEPS[name]).items() if v != getattr(H.Dep(), f)}
    assert len(changed) == 2, changed
    for f, v in changed.items():
        dep = H.Dep(**{f: v})
        if kind == "yolo":
            delta = H.yolo_port(c.x, c.truth, c.layer, c.net_w, c.net_h, dep)
        else:
            delta = H.region_port(c.x, c.truth, c.layer, c.net_w, c.net_h, c.seen, dep)
        assert np.any(np.abs(delta - good) > 1e-5 * np.maximum(1.0, np.abs(good))), (name, f)


#: Known gaps, failing for the reason given (strict: they fail the suite once they pass).
NOT_YET = {
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(reason=NOT_YET[n], strict=True))
                                  if n in NOT_YET else n for n in NAMES])
def test_diagnosis_on_held_out_implementation(name: str) -> None:
    _, _, expected = H.TABLE[name]
    want = set(expected["codes"])
    report, cmap = diagnose(name)
    codes = _codes(report)
    if not want:
        assert report.ok, str(report)
        assert codes == [], codes
        return
    # (a) the verdict
    assert not report.ok
    # (b) the top cause
    assert codes, "no cause named"
    assert codes[0] in want, f"top cause {codes[0]!r}, expected one of {sorted(want)}; named {codes}"
    # (c) every expected cause named
    assert want <= set(codes), f"missing {sorted(want - set(codes))}; named {codes}"
    # (d) no element claimed by a cause outside the expected ones
    failing = cmap != ""
    claimed = set(np.unique(cmap[failing]).tolist()) - IGNORED - {"unexplained"}
    assert claimed <= want, f"elements claimed by {sorted(claimed - want)}"
    # (e) at most 2% of the failing elements unexplained
    n_fail = int(failing.sum())
    n_unexpl = int((cmap == "unexplained").sum())
    assert n_unexpl <= 0.02 * n_fail, f"{n_unexpl} of {n_fail} failing elements unexplained"
    # (f) the part (and factor) of a part weight or chain, where the cause reports them
    for code, det in expected.get("details", {}).items():
        details = [getattr(cause, "detail", None) for cause in report.causes if cause.code == code]
        details = [d for d in details if d is not None]
        if not details:
            continue

        def fits(d: Any) -> bool:
            for key, value in det.items():
                if key == "factor":
                    if not math.isclose(float(d.get("factor", math.nan)), value, rel_tol=1e-3):
                        return False
                elif d.get(key) != value:
                    return False
            return True

        assert any(fits(d) for d in details), f"{code}: expected {det}, reported {details}"


@pytest.mark.parametrize("seed", range(6))
def test_correct_port_on_random_cases(seed: int) -> None:
    """The correct port agrees with the oracle on more cases than the table's, truths packed or listed."""
    yolo = H.yolo_case(200 + seed, n_truth=2 + seed, plant=seed % 2 == 1, truth_thresh=0.7 if seed % 3 else 1.0,
                       H=13 if seed < 3 else 7, ignore_thresh=0.5 + 0.05 * seed)
    listed = [t[t[:, 0] != 0] for t in yolo.truth]
    for truth in (yolo.truth, listed):
        res = yolo.layer.forward(yolo.x, truth, net_w=416, net_h=416)
        delta = H.CORRECT["yolo"](yolo.x, truth, yolo.layer, 416, 416)
        assert pdl.compare(res, {"delta": delta}, yolo.layer, input=yolo.x, truth=truth,
                           tolerance="float32").ok
    region = H.region_case(300 + seed, n_truth=1 + seed, seen=0 if seed % 2 else 12800,
                           rescore=seed % 3 != 0, softmax=seed % 4 != 1)
    listed = [t[t[:, 0] != 0] for t in region.truth]
    for truth in (region.truth, listed):
        res = region.layer.forward(region.x, truth, seen=region.seen)
        delta = H.CORRECT["region"](region.x, truth, region.layer, 416, 416, region.seen)
        assert pdl.compare(res, {"delta": delta}, region.layer, input=region.x, truth=truth, seen=region.seen,
                           tolerance="float32").ok
