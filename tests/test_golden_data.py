"""The golden data itself: the in-repo copies are upstream's cases, byte for
byte, and every shared case is run by some test."""
from __future__ import annotations

import json

import pytest

import goldens as G

needs_shared = pytest.mark.skipif(G.shared_golden() is None, reason=G.SHARED_REASON)


def test_repo_copy_counts() -> None:
    assert len(G.repo_cases("yolo")) == 83
    assert len(G.repo_cases("region")) == 62


@needs_shared
def test_every_shared_case_is_in_the_repo_or_needs_upstream_data() -> None:
    assert G.shared_only_cases("yolo") == []
    only = G.shared_only_cases("region")
    tags = {c["file"]: c["tags"] for c in G.manifest(G.shared_golden())}
    assert len(only) == 5 and all("softmax_tree" in tags[f] for f in only)


@needs_shared
def test_repo_copies_are_byte_identical() -> None:
    shared = G.shared_golden() / "cases"
    for path in G.repo_cases("yolo") + G.repo_cases("region"):
        assert (shared / path.name).read_bytes() == path.read_bytes(), path.name


def test_extra_cases_say_where_they_come_from() -> None:
    for kind in ("yolo", "region"):
        for path in G.extra_cases(kind):
            prov = json.loads(str(G.load(path)["provenance"]))
            assert "f6afaabcdf85f77e7aff2ec55c020c0e297c77f9" in prov["computed_by"]
            assert prov["cflags"] == "-O2 -fno-fast-math -ffp-contract=off"
