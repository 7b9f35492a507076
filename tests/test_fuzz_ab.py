"""pdl.fuzz(kind="yolo_ab") keeps each cause apart while shrinking (issue 20).

Held-out ports of AlexeyAB's [yolo] (tests/heldout_ab_impls.py, written from
upstream's sources, not from this package), each with one departure, are
fuzzed on yolov4.cfg's heads (the layer options the departure needs drawn
too, and only options the ports model); the minimal case the shrinking ends
on still has that departure's cause as its top cause, and is small.

What made it so:

* ignore_rule and scale_x_y show only where a cell predicts a box near a
  truth: the strategies plant such predictions for AlexeyAB's layers (before
  they did, ignore_rule was not found in 300 cases with any of 4 seeds);
* Hypothesis, told to report one bug, shrinks towards ANY smaller failure,
  whatever its exception type: fuzz now rejects a shrink whose top cause is
  not the first departure's (without that, 6 of 28 runs of the ports below
  ended on another cause than the one first found, e.g. the port with no
  iou_thresh and no class gate: first ignore_rule, shrunk to iou_thresh);
* the planted boxes reach darknet's truth_thresh branch at truth_thresh = 1
  (a float IoU that rounds above 1), which the truth_thresh cause now names.

Fixed seeds, database=None; each run takes well under 2 s."""
from __future__ import annotations

from typing import Any, List, Optional, Tuple

import numpy as np
import pytest

pytest.importorskip("hypothesis", reason="the [fuzz] extra (Hypothesis); [test] installs it")

# the held-out ports' exp of drawn logits overflows float32, as upstream's does
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")

import heldout_ab_impls as H  # noqa: E402

import pydarknet_loss as pdl  # noqa: E402
from pydarknet_loss import strategies as S  # noqa: E402

#: yolov4.cfg's heads with iou_thresh = 1 (no extra anchors), as the
#: held-out anchor_assignment case has it: with iou_thresh = 0.213 a best
#: anchor by CIoU also moves the extra anchors, which no cause models yet.
HEADS_NO_IOU_THRESH = [pdl.alexeyab.YoloLayer(**{**h, "iou_thresh": 1.0}) for h in S.STANDARD_HEADS["yolo_ab"][2]]

#: cause -> (the port's one departure, layer (None: yolov4.cfg's heads), the layer options drawn, seed)
PORTS = {
    "iou_thresh": (H.Dep(no_iou_thresh=True), None, None, 0),
    "normalizer": (H.Dep(no_iou_norm=True), None, None, 0),
    "box_loss": (H.Dep(box_loss="mse"), None, None, 0),
    "max_delta": (H.Dep(no_max_delta=True), None, ("normalizers", "max_delta"), 0),
    "ignore_rule": (H.Dep(ignore_no_gate=True), None, ("ignore_thresh",), 0),
    "scale_x_y": (H.Dep(ignore_no_sxy=True), None, ("scale_x_y", "ignore_thresh"), 0),
    "truth_thresh": (H.Dep(no_truth_thresh=True), None, ("truth_thresh",), 0),
    "label_smoothing": (H.Dep(no_smooth=True), None, ("label_smooth_eps",), 0),
    "anchor_assignment": (H.Dep(anchor_by_ciou=True), HEADS_NO_IOU_THRESH, None, 1),
    # seed 1: the first departure has two truths in one cell (with seeds 0,
    # 2 and 6 it is a one-truth case where the truth_thresh branch's box
    # delta is overwritten by the same truth's best anchor: truth_thresh and
    # overwrite_order reproduce it alike and are shown as alternatives);
    # without the cause kept, shrinking slipped to such a case
    "overwrite_order": (H.Dep(overwrite=True), None, None, 1),
}


def _rows(truth: np.ndarray) -> int:
    return int((truth[..., 0] != 0).sum())


def _recording(impl: Any) -> Tuple[Any, List[Tuple[Any, ...]]]:
    calls: List[Tuple[Any, ...]] = []

    def rec(x: np.ndarray, truth: np.ndarray, layer: Any, net_w: int, net_h: int) -> np.ndarray:
        calls.append((x.copy(), truth.copy(), layer, net_w, net_h))
        return impl(x, truth, layer, net_w, net_h)
    return rec, calls


def _first_cause(impl: Any, calls: List[Tuple[Any, ...]]) -> Optional[str]:
    """The top cause of the first case the run tried that departs, by a
    comparison of its own (not read from fuzz)."""
    for x, truth, layer, net_w, net_h in calls:
        expected = layer.forward(x, truth, net_w=net_w, net_h=net_h)
        rep = pdl.compare(expected, {"delta": impl(x, truth, layer, net_w, net_h)}, layer, input=x, truth=truth,
                          net_w=net_w, net_h=net_h)
        if not rep.ok:
            return rep.causes[0].code
    return None


@pytest.mark.parametrize("cause", list(PORTS))
def test_the_shrunk_case_keeps_the_ports_cause(cause: str) -> None:
    dep, layer, options, seed = PORTS[cause]
    res = pdl.fuzz(H.impl(dep), layer, kind="yolo_ab", examples=300, seed=seed, options=options, database=None)
    assert not res.ok and res.failure is not None, f"{cause}: no departure found in {res.examples} cases"
    f = res.failure
    codes = [c.code for c in f.report.causes]
    assert codes[0] == cause == f.cause, f"{cause}\n{f}"
    assert "unexplained" not in codes, f"{cause}\n{f}"
    b, _, h, w = f.input.shape
    # shrunk: one image, a tiny grid, the truths the departure needs (two
    # sharing a cell for the overwrite)
    assert b == 1 and h * w <= 4 and 1 <= _rows(f.truth) <= (2 if cause == "overwrite_order" else 1), \
        (cause, f.input.shape, _rows(f.truth))
    # the reproducer rebuilds that case
    assert f"# The minimal case on which your_implementation departs from darknet ({cause})" in f.reproducer


def test_two_departures_keep_the_first_and_report_the_other() -> None:
    # No iou_thresh anchors and no class gate in the ignore test.  With seed 3
    # the first case found departs for ignore_rule (seeds 0-7: 3 and 7 do), and iou_thresh cases are
    # smaller: shrinking used to slip to iou_thresh and lose ignore_rule.
    dep = H.Dep(no_iou_thresh=True, ignore_no_gate=True)
    impl, calls = _recording(H.impl(dep))
    res = pdl.fuzz(impl, kind="yolo_ab", examples=300, seed=3, options=("ignore_thresh",), database=None)
    assert res.failure is not None
    first = _first_cause(H.impl(dep), calls)
    assert first == "ignore_rule" and res.failure.cause == first, str(res)
    assert _rows(res.failure.truth) == 1
    # the other departure, seen while shrinking, is reported with its smallest case
    assert [o.cause for o in res.others] == ["iou_thresh"], str(res)
    other = res.others[0]
    assert not other.report.ok and other.report.causes[0].code == "iou_thresh"
    again = pdl.compare(other.layer.forward(other.input, other.truth, net_w=other.net_w, net_h=other.net_h),
                        {"delta": H.impl(dep)(other.input, other.truth, other.layer, other.net_w, other.net_h)},
                        other.layer, input=other.input, truth=other.truth, net_w=other.net_w, net_h=other.net_h)
    assert again.causes[0].code == "iou_thresh"
    assert "other causes seen while shrinking (smallest case seen, not shrunk): iou_thresh (" in str(res)


def test_the_correct_port_passes_the_planted_cases() -> None:
    # The planted predictions change nothing for a faithful port (and the
    # options drawn here are ones the held-out ports model).
    res = pdl.fuzz(H.CORRECT, kind="yolo_ab", examples=60, seed=1,
                   options=("ignore_thresh", "scale_x_y", "truth_thresh", "label_smooth_eps"), database=None)
    assert res.ok and not res.others, str(res)
