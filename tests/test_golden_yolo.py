"""Every [yolo] golden case, computed by upstream itself, bit for bit."""
from __future__ import annotations

from pathlib import Path

import pytest

import goldens as G

SHARED_SET = G.repo_cases("yolo")
CASES = SHARED_SET + G.extra_cases("yolo")


@pytest.mark.parametrize("path", CASES, ids=G.ids(CASES))
def test_yolo_case(path: Path) -> None:
    d = G.load(path)
    p = d["params"]
    layer = G.yolo_layer(p)
    kwargs = dict(net_w=p["net_w"], net_h=p["net_h"], train=bool(d["train"]), index=p["net_index"])
    if "x_times_w_eq_w" in d["tags"]:
        # Upstream spilled into a neighbouring cell or image here; we refuse.
        with pytest.raises(ValueError, match="outside the .* grid"):
            layer.forward(d["input"], d["truth"], **kwargs)
        return
    G.assert_matches(layer.forward(d["input"], d["truth"], **kwargs), d)
