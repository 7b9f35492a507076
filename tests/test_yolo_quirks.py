"""Each upstream quirk the [yolo] oracle reproduces, shown on a case that
upstream itself computed (tests/golden/extra-f6afaab, checked bit for bit
first), and then as the property it implies."""
from __future__ import annotations

import math
import warnings
from typing import Any, Dict

import numpy as np
import pytest

import goldens as G
import pydarknet_loss as pdl

#: The extra cases by the name the generator gave them (in MANIFEST.json).
NAMES = {c["name"]: c["file"] for c in G.manifest(G.EXTRA_GOLDEN) if c["kind"] == "yolo"}


def case(name: str) -> Dict[str, Any]:
    return G.load(G.EXTRA_GOLDEN / "cases" / NAMES[name])


def run(d: Dict[str, Any], truth: Any = None, **over: Any) -> pdl.YoloResult:
    p = dict(d["params"], **over)
    return G.yolo_layer(p).forward(d["input"], d["truth"] if truth is None else truth,
                                   net_w=p["net_w"], net_h=p["net_h"], train=bool(d["train"]),
                                   index=p["net_index"])




def test_quirk_x0_terminator_ends_the_truth_list() -> None:
    d = case("x0_terminator")
    res = run(d)
    G.assert_matches(res, d)
    # Row 1 has x == 0, so row 2 is never read: dropping it changes nothing...
    cut = d["truth"].copy()
    cut[0, 2] = 0
    assert G.bits_equal(run(d, cut).delta, res.delta)
    # ...while the same row placed before the terminator counts.
    moved = d["truth"].copy()
    moved[0, 1], moved[0, 2] = d["truth"][0, 2], d["truth"][0, 1]
    assert run(d, moved).stats.count > res.stats.count


def test_quirk_x0_terminator_warns_when_packing_a_list() -> None:
    d = case("x0_terminator")
    boxes = [d["truth"][0, :3].copy()]
    with pytest.warns(pdl.DarknetQuirkWarning, match="row 1 has x == 0"):
        res = run(d, boxes)
    G.assert_matches(res, d)


def test_quirk_truth_stride_is_90_whatever_max_boxes_says() -> None:
    d = case("stride_90_max_2")
    assert d["params"]["max_boxes"] == 2
    res = run(d)
    G.assert_matches(res, d)
    # Image 1's truths start at row 90 of the buffer, not at row max_boxes.
    assert res.stats.count == 3
    # Rows at or past max_boxes are never read.
    cut = d["truth"].copy()
    cut[0, 2:] = 0
    assert G.bits_equal(run(d, cut).delta, res.delta)
    # And the packed buffer must have 90 rows: 2 is a shape error.
    with pytest.raises(ValueError, match=r"\(2, 90, 5\)"):
        run(d, np.ascontiguousarray(d["truth"][:, :2]))


def test_quirk_class_ids_are_truncated_to_int() -> None:
    d = case("fractional_class")
    res = run(d)
    G.assert_matches(res, d)
    t = d["truth"].copy()
    assert set(t[0, :3, 4].tolist()) == {np.float32(1.7), -0.5, np.float32(2.999)}
    t[0, :3, 4] = np.trunc(t[0, :3, 4])  # 1, -0 (class 0), 2
    assert G.bits_equal(run(d, t).delta, res.delta)


def test_quirk_map_applies_after_truncation() -> None:
    d = case("class_map")
    res = run(d)
    G.assert_matches(res, d)
    mapped = d["truth"].copy()
    m = np.array(d["params"]["map"])
    mapped[0, :2, 4] = m[np.trunc(mapped[0, :2, 4]).astype(int)]
    assert G.bits_equal(run(d, mapped, map=None).delta, res.delta)


def test_quirk_later_truth_overwrites_earlier_in_same_cell_and_anchor() -> None:
    d = case("dup_cell_overwrite")
    res = run(d)
    G.assert_matches(res, d)
    t = d["truth"]
    h, w = d["input"].shape[2:]
    i, j = int(np.float32(t[0, 0, 0]) * np.float32(w)), int(np.float32(t[0, 0, 1]) * np.float32(h))
    assert (i, j) == (int(np.float32(t[0, 1, 0]) * np.float32(w)), int(np.float32(t[0, 1, 1]) * np.float32(h)))
    classes = d["params"]["classes"]
    a = 2  # both boxes pick anchor 8 = mask[2]
    plane = res.delta[0, a * (5 + classes):(a + 1) * (5 + classes), j, i]
    # Box entries: exactly those the second truth alone would write.
    second = t.copy()
    second[0, 0] = t[0, 1]
    second[0, 1] = 0
    alone = run(d, second).delta[0, a * (5 + classes):(a + 1) * (5 + classes), j, i]
    assert G.bits_equal(plane[:5], alone[:5])
    # Class entries: the short-circuit leaves the first truth's "1 - p" for
    # class 0 and only sets class 2 to "1 - p"; class 1 keeps "0 - p".
    p = res.output[0, a * (5 + classes) + 5:(a + 1) * (5 + classes), j, i]
    assert G.bits_equal(plane[5:], np.array([1 - p[0], 0 - p[1], 1 - p[2]], dtype=np.float32))


def test_quirk_zero_over_zero_statistics_are_nan() -> None:
    d = case("zero_truths")
    res = run(d)
    G.assert_matches(res, d)
    s = res.stats
    assert s.count == 0
    for v in (s.avg_iou, s.avg_cat, s.avg_obj, s.recall, s.recall75):
        assert math.isnan(v)
    assert not math.isnan(s.avg_anyobj)
    # x86's default NaN has its sign bit set, and glibc prints it "-nan".
    assert "Avg IOU: -nan, Class: -nan" in s.line()


def test_train_false_is_activation_only() -> None:
    d = case("inference")
    res = run(d)
    G.assert_matches(res, d)
    assert res.stats is None and res.cost == 0 and not res.delta.any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res2 = G.yolo_layer(d["params"]).forward(d["input"], None, train=False)
    assert G.bits_equal(res2.output, res.output)


def test_net_delta_is_delta_on_both_builds() -> None:
    d = case("dup_cell_overwrite")
    res = run(d)
    for build in ("cpu", "gpu"):
        nd = res.net_delta(build)
        assert G.bits_equal(nd, res.delta) and nd is not res.delta
    with pytest.raises(ValueError, match="'cpu' or 'gpu'"):
        res.net_delta("tpu")
