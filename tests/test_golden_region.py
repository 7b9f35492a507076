"""Every [region] golden case, computed by upstream itself, bit for bit."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Dict

import pytest

import goldens as G

CASES = G.repo_cases("region") + G.extra_cases("region")
TREE_CASES = G.shared_only_cases("region")


def check(d: Dict[str, Any]) -> None:
    layer = G.region_layer(d["params"])
    kwargs = dict(seen=int(d["seen"]), train=bool(d["train"]))
    if "x_times_w_eq_w" in d["tags"]:
        with pytest.raises(ValueError, match="outside the .* grid"):
            layer.forward(d["input"], d["truth"], **kwargs)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tree warnings are tested elsewhere
        res = layer.forward(d["input"], d["truth"], **kwargs)
    G.assert_matches(res, d)


@pytest.mark.parametrize("path", CASES, ids=G.ids(CASES))
def test_region_case(path: Path) -> None:
    check(G.load(path))


@pytest.mark.skipif(G.shared_golden() is None, reason=G.SHARED_REASON)
@pytest.mark.parametrize("name", TREE_CASES or ["none"])
def test_region_tree_case_from_shared(name: str) -> None:
    """The 9k-tree cases carry upstream data, so they are read from ../shared."""
    d = G.load(G.shared_golden() / "cases" / name)
    assert "softmax_tree" in d["tags"]
    check(d)
