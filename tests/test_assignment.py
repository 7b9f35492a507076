"""report.assignment (issue 20): darknet's decision per cell and anchor
beside the implementation's.  Each expectation is derived from what the
mistake does (its description), not from a run of the reader."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import pydarknet_loss as pdl
from pydarknet_loss.parity import mistakes

import heldout_ab_impls as AB
import heldout_impls as H

F = np.float32


def _report(case: Any, delta: np.ndarray, **kw: Any) -> pdl.ParityReport:
    return pdl.compare(case.layer.forward(case.x, case.truth, net_w=case.net_w, net_h=case.net_h, **kw),
                       {"delta": delta}, case.layer, input=case.x, truth=case.truth, net_w=case.net_w,
                       net_h=case.net_h, **kw)


def _yolo(seed: int = 3) -> Any:
    return H.yolo_case(seed)


def test_the_correct_port_agrees_everywhere() -> None:
    c = _yolo()
    a = _report(c, mistakes.YOLO["correct"](c.x, c.truth, c.layer, c.net_w, c.net_h)).assignment
    assert a.differ == []
    assert a.counts.get(("assigned", "positive"), 0) >= 1  # the case assigns truths at all
    assert sum(a.counts.values()) == c.x.shape[0] * c.layer.n * c.x.shape[2] * c.x.shape[3]
    assert "0 decided otherwise than darknet" in str(a)


def test_rounded_cells_show_as_assigned_elsewhere() -> None:
    """rounded_cell writes a truth at the rounded cell: darknet's cell is
    left negative by it, and the rounded one is positive where darknet has
    it negative."""
    c = _yolo()
    rep = _report(c, mistakes.YOLO["rounded_cell"](c.x, c.truth, c.layer, c.net_w, c.net_h))
    differ = rep.assignment.differ
    assert differ
    kinds = {(d.darknet, d.implementation) for d in differ}
    assert ("assigned", "negative") in kinds and ("negative", "positive") in kinds
    for d in differ:
        if d.darknet == "assigned":
            assert "best anchor" in d.why and d.expected > 0
    assert "<- differ" in str(rep.assignment)


def test_ignore_rule_departure_shows_ignored_cells() -> None:
    """ignore_ge ignores cells whose best IoU equals ignore_thresh exactly:
    where it departs, darknet keeps the cell negative and the port gives 0."""
    c = H.ignore_tie_case(5)
    rep = _report(c, mistakes.YOLO["ignore_ge"](c.x, c.truth, c.layer, c.net_w, c.net_h))
    assert not rep.ok
    differ = rep.assignment.differ
    assert differ and all((d.darknet, d.implementation) == ("negative", "ignored") for d in differ)
    assert all(d.actual == 0 for d in differ)


def test_ab_missing_iou_thresh_anchors() -> None:
    """A port without iou_thresh's extra anchors: those cells are darknet's
    'assigned (iou_thresh)' and the port's what its cell loop left there
    (negative, or ignored where the prediction already overlaps a truth
    above ignore_thresh); the best-anchor cells agree."""
    c = AB.CASES["ab_no_iou_thresh"]()
    rep = _report(c, AB.run("ab_no_iou_thresh", c))
    a = rep.assignment
    assert a.differ
    for d in a.differ:
        assert d.darknet == "assigned" and d.implementation in ("negative", "ignored")
        assert "iou_thresh" in d.why and "best anchor" not in d.why
    assert any("best anchor" in d.why and d.agrees for d in a.cells)


def test_ab_correct_port_agrees() -> None:
    c = AB.CASES["ab_correct_ciou"]()
    a = _report(c, AB.run("ab_correct_ciou", c)).assignment
    assert a.differ == []
    assert any("iou_thresh" in d.why for d in a.cells)  # the case has extra anchors, and they agree


def test_ab_weighted_negatives_read_by_sign() -> None:
    """obj_normalizer missed scales every objectness delta: the decisions
    are still the same (read by the sign where no darknet form matches)."""
    c = AB.CASES["ab_obj_normalizer_missed"]()
    a = _report(c, AB.run("ab_obj_normalizer_missed", c)).assignment
    assert a.differ == []


def test_region_assignment_and_gpu_form() -> None:
    c = H.region_case(4, seen=20000)
    d = c.layer.forward(c.x, c.truth, seen=c.seen)
    rep = pdl.compare(d, {"delta": d.delta}, c.layer, input=c.x, truth=c.truth, seen=c.seen)
    assert rep.ok and rep.assignment.differ == []
    assert rep.assignment.counts.get(("assigned", "positive"), 0) >= 1
    # the GPU build's values (times p(1 - p)) are read in the CPU build's terms
    g = pdl.compare(d, {"delta": d.net_delta("gpu")}, c.layer, input=c.x, truth=c.truth, seen=c.seen, build="gpu")
    assert g.ok and g.assignment.differ == []
    # a port that never ignores: darknet's ignored cells are negative there
    d5 = d.delta.reshape(c.x.shape[0], c.layer.n, -1, *c.x.shape[2:]).copy()
    ign = [x for x in rep.assignment.cells if x.darknet == "ignored"]
    assert ign, "the case has ignored cells"
    y = d.output.reshape(d5.shape)
    for x in ign:
        d5[x.image, x.anchor, c.layer.coords, x.row, x.col] = c.layer.noobject_scale * (0 - y[x.image, x.anchor, c.layer.coords, x.row, x.col])
    r2 = pdl.compare(d, {"delta": d5.reshape(d.delta.shape)}, c.layer, input=c.x, truth=c.truth, seen=c.seen)
    assert {(x.darknet, x.implementation, x.how) for x in r2.assignment.differ} == {("ignored", "negative", "form")}
    assert len(r2.assignment.differ) == len(ign)


def test_assignment_needs_input_and_truth() -> None:
    c = _yolo()
    d = c.layer.forward(c.x, c.truth, net_w=c.net_w, net_h=c.net_h)
    rep = pdl.compare(d, {"delta": d.delta}, c.layer)
    with pytest.raises(ValueError, match="input= and truth="):
        rep.assignment


def test_ab_objectness_smooth_names_the_target() -> None:
    """objectness_smooth: darknet's ignored cells keep a delta towards their
    class-gated best IoU (the record's target form), and the reason says so
    with the same IoU; a port that zeroes them decides the same (ignored),
    though its values differ: the assignment reads decisions, report.ok
    values."""
    c = AB.ab_case(17, AB.CIOU_HEAD, n_truth=5, objectness_smooth=1, ignore_thresh=0.5)
    d = c.layer.forward(c.x, c.truth, net_w=c.net_w, net_h=c.net_h)
    a = _report(c, d.delta).assignment
    smooth = [x for x in a.cells if x.darknet == "ignored" and "objectness_smooth" in x.why]
    assert smooth and a.differ == []
    for x in smooth:
        iou = x.why.split("best IoU ")[1].split(" ")[0]
        assert x.why.endswith(f"target {iou})") and x.expected != 0
    d5 = d.delta.reshape(c.x.shape[0], c.layer.n, -1, *c.x.shape[2:]).copy()
    for x in smooth:
        d5[x.image, x.anchor, 4, x.row, x.col] = 0
    rep = _report(c, d5.reshape(d.delta.shape))
    assert not rep.ok and rep.assignment.differ == []
    assert {(x.darknet, x.implementation, x.how) for x in rep.assignment.cells if x.actual == 0 and
            x.darknet == "ignored"} >= {("ignored", "ignored", "0")}


def test_assignment_for_without_a_report() -> None:
    """assignment_for reads the same as report.assignment, for pjreddie's
    and AlexeyAB's layers, and refuses what it cannot read."""
    from pydarknet_loss.parity.assignment import assignment_for

    for c, delta in ((_yolo(), None), (AB.CASES["ab_no_iou_thresh"](), "ab_no_iou_thresh")):
        actual = (mistakes.YOLO["rounded_cell"](c.x, c.truth, c.layer, c.net_w, c.net_h) if delta is None
                  else AB.run(delta, c))
        via_report = _report(c, actual).assignment
        direct = assignment_for(c.layer, actual, input=c.x, truth=c.truth, net_w=c.net_w, net_h=c.net_h)
        assert direct.differ and direct.counts == via_report.counts
        assert [str(x) for x in direct.cells] == [str(x) for x in via_report.cells]
    with pytest.raises(ValueError, match="shape"):
        assignment_for(c.layer, actual[:1], input=c.x, truth=c.truth, net_w=c.net_w, net_h=c.net_h)
    with pytest.raises(ValueError, match="layer must be"):
        assignment_for(object(), actual, input=c.x, truth=c.truth)
