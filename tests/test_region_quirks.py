"""Upstream [region] behaviour the oracle reproduces, each shown on a case
upstream itself computed (tests/golden/extra-f6afaab, checked bit for bit
first), then as the property it implies."""
from __future__ import annotations

import math
import warnings
from typing import Any, Dict

import numpy as np
import pytest

import goldens as G
import pydarknet_loss as pdl

NAMES = {c["name"]: c["file"] for c in G.manifest(G.EXTRA_GOLDEN) if c["kind"] == "region"}


def case(name: str) -> Dict[str, Any]:
    return G.load(G.EXTRA_GOLDEN / "cases" / NAMES[name])


def run(d: Dict[str, Any], truth: Any = None, seen: Any = None, **over: Any) -> pdl.RegionResult:
    layer = G.region_layer(dict(d["params"], **over))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pdl.DarknetQuirkWarning)
        return layer.forward(d["input"], d["truth"] if truth is None else truth,
                             seen=int(d["seen"]) if seen is None else seen, train=bool(d["train"]))




def anchor_block(res: pdl.RegionResult, d: Dict[str, Any], a: int) -> np.ndarray:
    p = d["params"]
    per = p["coords"] + 1 + p["classes"]
    return res.delta[:, a * per:(a + 1) * per]


def test_prior_rule_applies_below_12800_images_seen() -> None:
    below, at = case("prior_seen_12799"), case("prior_seen_12800")
    r_below, r_at = run(below), run(at)
    G.assert_matches(r_below, below)
    G.assert_matches(r_at, at)
    # At 12800 the x, y, w, h deltas of cells without a truth are 0; below,
    # every cell and anchor is pulled towards its anchor (scale .01).
    xy_below = r_below.delta.reshape(1, 5, 9, 3, 4)[:, :, :4]
    xy_at = r_at.delta.reshape(1, 5, 9, 3, 4)[:, :, :4]
    assert np.count_nonzero(xy_at) == 4  # the one truth's box
    assert np.count_nonzero(xy_below) > 4 * 5 * 3 * 4 - 8


def test_flat_short_circuit_is_on_without_softmax() -> None:
    d = case("dup_short_circuit")
    res = run(d)
    G.assert_matches(res, d)
    # Both truths land in cell (1, 1) with one anchor: classes 0 and 2 are
    # pushed to 1, class 1 to 0.
    hit = [a for a in range(5) if anchor_block(res, d, a)[0, 5:, 1, 1].any()]
    assert len(hit) == 1
    cls = anchor_block(res, d, hit[0])[0, 5:, 1, 1]
    p = res.output.reshape(1, 5, 9, 3, 4)[0, hit[0], 5:, 1, 1]
    assert G.bits_equal(cls, np.array([1 - p[0], 0 - p[1], 1 - p[2], 0 - p[3]], np.float32))


def test_short_circuit_is_off_with_softmax() -> None:
    d = case("dup_softmax_no_short_circuit")
    res = run(d)
    G.assert_matches(res, d)
    hit = [a for a in range(5) if anchor_block(res, d, a)[0, 5:, 1, 1].any()]
    cls = anchor_block(res, d, hit[0])[0, 5:, 1, 1]
    p = res.output.reshape(1, 5, 9, 3, 4)[0, hit[0], 5:, 1, 1]
    # The second truth rewrites every class: only class 2 is pushed to 1.
    assert G.bits_equal(cls, np.array([0 - p[0], 0 - p[1], 1 - p[2], 0 - p[3]], np.float32))


def test_mask_targets_are_read_from_column_5_and_mask_scale_truncates() -> None:
    d = case("mask_coords")
    res = run(d)
    G.assert_matches(res, d)
    assert d["params"]["coords"] == 6 and d["params"]["mask_scale"] == pytest.approx(2.9)
    t = d["truth"][0, 0]  # x y w h m0 m1 class
    h, w = d["input"].shape[2:]
    i, j = int(np.float32(t[0]) * np.float32(w)), int(np.float32(t[1]) * np.float32(h))
    per = 6 + 1 + 4
    hit = [a for a in range(5) if res.delta[0, a * per + 4:a * per + 6, j, i].any()]
    a = hit[0]
    y = res.output[0, a * per + 4:a * per + 6, j, i]  # raw: the CPU build does not activate them
    assert G.bits_equal(y, d["input"][0, a * per + 4:a * per + 6, j, i])
    # Targets: truth[5] (the second mask value) and truth[6] (the class id); scale (int)2.9 = 2.
    expect = np.array([2 * (t[5] - y[0]), 2 * (t[6] - y[1])], np.float32)
    assert G.bits_equal(res.delta[0, a * per + 4:a * per + 6, j, i], expect)


def test_mask_scale_below_one_truncates_to_zero() -> None:
    d = case("mask_scale_below_one")
    res = run(d)
    G.assert_matches(res, d)
    mask_rows = res.delta.reshape(1, 5, 10, 3, 4)[:, :, 4]
    assert not mask_rows.any()


def test_background_softmax_starts_at_objectness() -> None:
    d = case("background_softmax")
    res = run(d)
    G.assert_matches(res, d)
    # Objectness and the 4 classes form one softmax group per cell.
    o = res.output.reshape(1, 5, 9, 3, 4)[:, :, 4:]
    assert np.allclose(o.sum(axis=2), 1, atol=1e-6)


def test_tree_at_temperature_zero_is_nan_and_warns() -> None:
    d = case("tree_t0_one_cell")
    layer = G.region_layer(d["params"])
    with pytest.warns(pdl.DarknetQuirkWarning, match="temperature"):
        res = layer.forward(d["input"], d["truth"], seen=int(d["seen"]))
    G.assert_matches(res, d)
    assert np.isnan(res.output[0, 5:]).all() and math.isnan(res.cost)


def test_tree_group_offset_bug_overwrites_other_cells_and_warns() -> None:
    d = case("tree_t1_group_offset_bug")
    layer = G.region_layer(d["params"])
    with pytest.warns(pdl.DarknetQuirkWarning, match="group offset"):
        res = layer.forward(d["input"], d["truth"], seen=int(d["seen"]))
    G.assert_matches(res, d)
    # A per-cell softmax (what the GPU build does) gives different outputs:
    # the CPU path mixed cells and anchors.
    per = 4 + 1 + 14
    x = d["input"].reshape(2, 2, per, 2, 3)
    t = pdl.read_tree(G.HERE / "data" / "small.tree")
    ok = np.empty_like(x[:, :, 5:])
    for g in range(t.groups):
        s, e = int(t.group_offset[g]), int(t.group_offset[g] + t.group_size[g])
        z = x[:, :, 5 + s:5 + e].astype(np.float64)
        z = np.exp(z - z.max(axis=2, keepdims=True))
        ok[:, :, s:e] = z / z.sum(axis=2, keepdims=True)
    ours = res.output.reshape(2, 2, per, 2, 3)[:, :, 5:]
    assert not np.allclose(ours, ok, atol=1e-3)


def test_tree_with_temperature_one_on_one_cell_is_a_proper_softmax() -> None:
    d = case("tree_t1_one_cell")
    res = run(d)
    G.assert_matches(res, d)
    t = pdl.read_tree(G.HERE / "data" / "small.tree")
    probs = res.output[0, 5:, 0, 0]
    for g in range(t.groups):
        s, e = int(t.group_offset[g]), int(t.group_offset[g] + t.group_size[g])
        assert probs[s:e].sum() == pytest.approx(1, abs=1e-6)


def test_classification_only_label_skips_the_images_boxes() -> None:
    d = case("tree_t1_onlyclass")
    res = run(d)
    G.assert_matches(res, d)
    # Image 0 holds a classification-only row: its box rows are skipped, so
    # only image 1's box counts.
    assert res.stats.count == 1
    # And no x, y, w, h delta is written in image 0 (seen >= 12800).
    per = 4 + 1 + 14
    assert not res.delta.reshape(2, 2, per, 1, 2)[0, :, :4].any()


def test_net_delta_cpu_is_zero_and_gpu_applies_the_logistic_derivative() -> None:
    d = case("mask_coords")
    res = run(d)
    assert not res.net_delta("cpu").any()
    gpu = res.net_delta("gpu")
    per, coords = 11, 6
    y = res.output.reshape(1, 5, per, 3, 4)
    dl = res.delta.reshape(1, 5, per, 3, 4)
    g = gpu.reshape(1, 5, per, 3, 4)
    one = np.float32(1)
    for e in range(per):
        if e in (0, 1, 4, 5, coords):  # x, y, mask coords, objectness
            assert G.bits_equal(g[:, :, e], dl[:, :, e] * ((one - y[:, :, e]) * y[:, :, e]))
        else:  # w, h and the classes pass unchanged
            assert G.bits_equal(g[:, :, e], dl[:, :, e])
    # With background the objectness entry is not touched either.
    bg = case("background_softmax")
    rb = run(bg)
    assert G.bits_equal(rb.net_delta("gpu").reshape(1, 5, 9, 3, 4)[:, :, 4],
                        rb.delta.reshape(1, 5, 9, 3, 4)[:, :, 4])
    with pytest.raises(ValueError, match="'cpu' or 'gpu'"):
        res.net_delta("cuda")


def test_zero_truths_give_nan_statistics() -> None:
    d = case("zero_truths")
    res = run(d)
    G.assert_matches(res, d)
    assert res.stats.count == 0 and math.isnan(res.stats.avg_iou)
    assert "Avg Recall: -nan" in res.stats.line()
