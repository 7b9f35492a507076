"""Reading the AlexeyAB (`yolo_ab`) golden cases and comparing a result with
one (format: ../shared/golden/alexeyab-59596d7/README.md).

- `tests/golden/alexeyab-59596d7/cases/`: a copy of the 80 shared cases;
- `tests/golden/alexeyab-extra-59596d7/cases/`: cases our own strict build of
  upstream computed for these tests (MANIFEST.json gives the provenance);
- the six upstream cfgs and their JSON stay in ../shared (tests skip with a
  reason without it).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

import goldens as G
from pydarknet_loss import alexeyab

HERE = Path(__file__).resolve().parent
AB_DIR = "alexeyab-59596d7"
REPO = HERE / "golden" / AB_DIR / "cases"
EXTRA = HERE / "golden" / "alexeyab-extra-59596d7" / "cases"
SHARED_REASON = ("needs upstream's data from ../shared/golden/alexeyab-59596d7 (not in the repo; set "
                 "PDL_SHARED_GOLDEN_AB to point elsewhere)")


def shared() -> Optional[Path]:
    """../shared/golden/alexeyab-59596d7 beside the checkout, or $PDL_SHARED_GOLDEN_AB."""
    env = os.environ.get("PDL_SHARED_GOLDEN_AB")
    candidates = [Path(env)] if env else []
    candidates.append(HERE.parent.parent / "shared" / "golden" / AB_DIR)
    for c in candidates:
        if (c / "cases" / "MANIFEST.json").is_file():
            return c
    return None


def manifest(folder: Path) -> Dict[str, Any]:
    return json.loads((folder / "MANIFEST.json").read_text())


def cases(folder: Path) -> List[Path]:
    return [folder / c["file"] for c in manifest(folder)["cases"] if c["kind"] == "yolo_ab"]


def by_name(name: str) -> Dict[str, Any]:
    """An extra case by its MANIFEST name."""
    for c in manifest(EXTRA)["cases"]:
        if c["name"] == name:
            return load(EXTRA / c["file"])
    raise KeyError(name)


def with_tag(tag: str, folder: Path = REPO) -> List[Path]:
    return [folder / c["file"] for c in manifest(folder)["cases"] if tag in c["tags"]]


def load(path: Path) -> Dict[str, Any]:
    d = G.load(path)
    for key in ("printed", "stats_names", "truth_cols"):
        if key in d:
            d[key] = json.loads(str(d[key]))
    if "name" in d:
        d["name"] = str(d["name"])
    return d


def run(d: Dict[str, Any], **overrides: Any) -> alexeyab.YoloResult:
    """The case through the layer its params describe (params overridden by
    keyword, e.g. iou_loss="mse")."""
    p = dict(d["params"])
    layer = alexeyab.layer_from_params(p) if not overrides else alexeyab.YoloLayer(
        **{**alexeyab.layer_from_params(p).params(), **overrides})
    return layer.forward(d["input"], d["truth"], net_w=p["net_w"], net_h=p["net_h"], train=bool(d["train"]),
                         index=p["net_index"])


def assert_matches(res: alexeyab.YoloResult, d: Dict[str, Any]) -> None:
    """Output, delta, cost, the printed statistics and text, count, labels,
    class_ids and the exact counters, bit for bit."""
    assert G.bits_equal(res.output, d["output"]), G.first_difference(res.output, d["output"])
    assert G.bits_equal(res.delta, d["delta"]), G.first_difference(res.delta, d["delta"])
    assert G.bits_equal(np.float32(res.cost), d["cost"]), (res.cost, d["cost"])
    assert np.array_equal(res.labels, d["labels"]) and res.labels.dtype == d["labels"].dtype
    assert np.array_equal(res.class_ids, d["class_ids"])
    assert res.count == int(d["count"])
    if d["train"]:
        assert res.stats is not None
        assert res.stats.names == d["stats_names"]
        assert G.bits_equal(res.stats.as_array(), d["stats"]), (res.stats, d["stats"])
        assert res.text == d["text"]
        assert d["text"].endswith(res.stats.line() + "\n")
        assert res.total_bbox == int(d["total_bbox"]) and res.rewritten_bbox == int(d["rewritten_bbox"])
    else:
        assert res.stats is None and res.text == "" and d["text"] == ""
        assert int(d["total_bbox"]) == 0 == res.total_bbox


def ids(paths: List[Path]) -> List[str]:
    return [f"{p.parent.parent.name}/{p.stem}" for p in paths]
