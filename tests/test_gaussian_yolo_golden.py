"""Every AlexeyAB [Gaussian_yolo] golden case, computed by upstream itself
(AlexeyAB/darknet 59596d7, strict CPU build), bit for bit: output, delta,
cost, the printed statistics (each value as passed to fprintf), count and
every printed character."""
from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

import goldens_gauss as GG

SHARED_SET = GG.cases(GG.REPO)
EXTRA_SET = GG.cases(GG.EXTRA) if (GG.EXTRA / "MANIFEST.json").is_file() else []


def test_the_shared_set_is_all_here() -> None:
    m = GG.manifest(GG.REPO)
    assert m["upstream_commit"] == "59596d7880f6504768df41d6daa586f5cb2b932f" and m["variant"] == "strict"
    assert m["layer"] == "gaussian_yolo_ab" and len(SHARED_SET) == 10


@pytest.mark.parametrize("path", SHARED_SET, ids=GG.ids(SHARED_SET))
def test_shared_case(path: Path) -> None:
    d = GG.load(path)
    GG.assert_matches(GG.run(d), d)


@pytest.mark.parametrize("path", EXTRA_SET, ids=GG.ids(EXTRA_SET))
def test_extra_case(path: Path) -> None:
    d = GG.load(path)
    GG.assert_matches(GG.run(d), d)


@pytest.mark.skipif(GG.shared() is None, reason=GG.SHARED_REASON)
def test_repo_copies_equal_the_shared_originals() -> None:
    root = GG.shared()
    names = [p.name for p in SHARED_SET] + ["MANIFEST.json"]
    match, mismatch, errors = filecmp.cmpfiles(root, GG.REPO, names, shallow=False)
    assert not mismatch and not errors and len(match) == 11
    assert filecmp.cmp(root.parent / "README.md", GG.REPO.parent / "README.md", shallow=False)
