"""Every hank-ai [yolo] golden case, computed by upstream itself (hank-ai/darknet
f684e1d7, strict CPU build with OpenCV's headers), bit for bit: output, delta,
cost, the verbose stream line, count, labels, class_ids and the exact
total_bbox/rewritten_bbox."""
from __future__ import annotations

import filecmp
import json
from pathlib import Path

import numpy as np
import pytest

import goldens as G
import goldens_ab as GA
import goldens_hankai as GH
from pydarknet_loss import alexeyab

SHARED_SET = GH.cases(GH.REPO)
EXTRA_SET = GH.cases(GH.EXTRA)


def test_the_shared_set_is_all_here() -> None:
    m = GH.manifest(GH.REPO)
    assert m["upstream_commit"] == "f684e1d75d4594298c8e73acc727ba6cf2e81c60" and m["variant"] == "strict"
    assert len(SHARED_SET) == 80


@pytest.mark.parametrize("path", SHARED_SET, ids=GH.ids(SHARED_SET))
def test_shared_case(path: Path) -> None:
    d = GH.load(path)
    GH.assert_matches(GH.run(d), d)


@pytest.mark.parametrize("path", EXTRA_SET, ids=GH.ids(EXTRA_SET))
def test_extra_case(path: Path) -> None:
    d = GH.load(path)
    GH.assert_matches(GH.run(d), d)


def test_the_flavors_really_differ_where_upstream_says() -> None:
    """The AlexeyAB layer on the same input gives what upstream's crosscheck
    says it gives: equal where the case is tagged same_as_alexeyab_59596d7,
    and different in exactly the listed fields otherwise (so the hank-ai
    variation points are not no-ops, and not more than they should be)."""
    seen_diff = 0
    for path in SHARED_SET:
        d = GH.load(path)
        vs = json.loads(str(d["vs_alexeyab_59596d7"]))
        p = dict(d["params"])
        ab = alexeyab.layer_from_params(p).forward(d["input"], d["truth"], net_w=p["net_w"], net_h=p["net_h"],
                                                   train=bool(d["train"]), index=p["net_index"])
        differing = set()
        if not G.bits_equal(ab.delta, d["delta"]):
            differing.add("delta")
        if not G.bits_equal(ab.output, d["output"]):
            differing.add("output")
        if not G.bits_equal(np.float32(ab.cost), d["cost"]):
            differing.add("cost")
        if d["train"]:
            for k, name in enumerate(d["stats_names"]):
                if not G.bits_equal(np.float64(ab.stats.as_array()[k]), np.float64(d["stats"][k])):
                    differing.add(f"stats.{name}")
        assert differing == set(vs["fields_differing"]) - {"labels", "class_ids", "counters", "count"}, path.name
        seen_diff += bool(differing)
    assert seen_diff == 54


@pytest.mark.skipif(GH.shared() is None, reason=GH.SHARED_REASON)
def test_repo_copies_equal_the_shared_originals() -> None:
    root = GH.shared() / "cases"
    names = [p.name for p in SHARED_SET] + ["MANIFEST.json"]
    match, mismatch, errors = filecmp.cmpfiles(root, GH.REPO, names, shallow=False)
    assert not mismatch and not errors and len(match) == 81
