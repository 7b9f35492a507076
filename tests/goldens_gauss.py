"""Reading the AlexeyAB [Gaussian_yolo] (`gaussian_yolo_ab`) golden cases and
comparing a result with one (format: tests/golden/more-layers/README.md, a
copy of ../shared/golden/more-layers/README.md).

- `tests/golden/more-layers/gaussian_yolo_ab/`: a copy of the 10 shared cases;
- `tests/golden/gaussian_yolo_ab-extra-59596d7/`: cases our own strict build of
  upstream computed for these tests (its README gives the provenance).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

import goldens as G
from pydarknet_loss.layers import gaussian

HERE = Path(__file__).resolve().parent
SHARED_SUB = Path("more-layers") / "gaussian_yolo_ab"
REPO = HERE / "golden" / SHARED_SUB
EXTRA = HERE / "golden" / "gaussian_yolo_ab-extra-59596d7"
SHARED_REASON = ("needs ../shared/golden/more-layers/gaussian_yolo_ab (not in the repo; set "
                 "PDL_SHARED_GOLDEN_MORE to the more-layers folder)")


def shared() -> Optional[Path]:
    """../shared/golden/more-layers/gaussian_yolo_ab beside the checkout, or under $PDL_SHARED_GOLDEN_MORE."""
    env = os.environ.get("PDL_SHARED_GOLDEN_MORE")
    candidates = [Path(env) / "gaussian_yolo_ab"] if env else []
    candidates.append(HERE.parent.parent / "shared" / "golden" / SHARED_SUB)
    for c in candidates:
        if (c / "MANIFEST.json").is_file():
            return c
    return None


def manifest(folder: Path) -> Dict[str, Any]:
    return json.loads((folder / "MANIFEST.json").read_text())


def cases(folder: Path) -> List[Path]:
    return [folder / c["file"] for c in manifest(folder)["cases"]]


def load(path: Path) -> Dict[str, Any]:
    d = G.load(path)
    for key in ("printed", "stats_names"):
        if key in d:
            d[key] = json.loads(str(d[key]))
    d["line"] = str(d["line"])
    return d


def run(d: Dict[str, Any]) -> gaussian.GaussianYoloResult:
    return gaussian.forward_case(d)


def assert_matches(res: gaussian.GaussianYoloResult, d: Dict[str, Any]) -> None:
    """Output, delta, cost, the printed statistics, count and every printed
    character, bit for bit."""
    assert d["kind"] == "gaussian_yolo_ab"
    assert G.bits_equal(res.output, d["output"]), G.first_difference(res.output, d["output"])
    assert G.bits_equal(res.delta, d["delta"]), G.first_difference(res.delta, d["delta"])
    assert G.bits_equal(np.float32(res.cost), d["cost"]), (res.cost, d["cost"])
    assert res.count == int(d["count"])
    assert res.stats is not None
    assert list(res.stats.NAMES) == d["stats_names"]
    assert G.bits_equal(res.stats.as_array(), d["stats"]), (res.stats, d["stats"])
    assert res.stats.line() == d["line"]
    assert res.text == d["text"]
    # the final print call's arguments, exactly as passed
    last = d["printed"][-1]
    assert G.bits_equal(np.array([float.fromhex(h) for h in last["doubles_hex"]]), res.stats.as_array())
    assert "".join(p["text"] for p in d["printed"]) == res.text
    assert last["ints"] == [d["params"]["net_index"], res.count]


def ids(paths: List[Path]) -> List[str]:
    return [f"{p.parent.name}/{p.stem}" for p in paths]
