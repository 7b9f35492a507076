"""Every AlexeyAB [yolo] golden case, computed by upstream itself (AlexeyAB/darknet
59596d7, strict CPU build), bit for bit: output, delta, cost, the printed
"v3 (...)" line and every stdout warning, count, labels, class_ids and the exact
total_bbox/rewritten_bbox."""
from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

import goldens_ab as GA

SHARED_SET = GA.cases(GA.REPO)
EXTRA_SET = GA.cases(GA.EXTRA)


def test_the_shared_set_is_all_here() -> None:
    m = GA.manifest(GA.REPO)
    assert m["upstream_commit"] == "59596d7880f6504768df41d6daa586f5cb2b932f" and m["variant"] == "strict"
    assert len(SHARED_SET) == 80


@pytest.mark.parametrize("path", SHARED_SET, ids=GA.ids(SHARED_SET))
def test_shared_case(path: Path) -> None:
    d = GA.load(path)
    GA.assert_matches(GA.run(d), d)


@pytest.mark.parametrize("path", EXTRA_SET, ids=GA.ids(EXTRA_SET))
def test_extra_case(path: Path) -> None:
    d = GA.load(path)
    GA.assert_matches(GA.run(d), d)


def test_extra_set_provenance() -> None:
    m = GA.manifest(GA.EXTRA)
    assert m["upstream_commit"] == "59596d7880f6504768df41d6daa586f5cb2b932f" and m["variant"] == "strict"
    assert "-O2 -fno-fast-math -ffp-contract=off" in m["provenance"]["cflags"]
    assert len(EXTRA_SET) == len(m["cases"]) >= 40
    # what the shared set covers thinly: every iou_thresh_kind with iou_loss=ciou, and large batches
    names = {c["name"] for c in m["cases"]}
    assert {f"iou_thresh_kind_{k}_loss_ciou" for k in ("iou", "giou", "diou", "ciou")} <= names
    assert any(c["shape"][0] == 16 and c["shape"][2:] == [26, 26] for c in m["cases"])


@pytest.mark.skipif(GA.shared() is None, reason=GA.SHARED_REASON)
def test_repo_copies_equal_the_shared_originals() -> None:
    root = GA.shared() / "cases"
    names = [p.name for p in SHARED_SET] + ["MANIFEST.json"]
    match, mismatch, errors = filecmp.cmpfiles(root, GA.REPO, names, shallow=False)
    assert not mismatch and not errors and len(match) == 81
