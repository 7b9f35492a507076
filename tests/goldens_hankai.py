"""Reading the hank-ai golden cases and comparing a result with one (format:
tests/golden/hankai-f684e1d7/README.md, which is AlexeyAB's `yolo_ab` format
with hank-ai's stream line in `text`).

- `tests/golden/hankai-f684e1d7/cases/`: a copy of the 80 shared cases;
- `tests/golden/hankai-extra-f684e1d7/cases/`: cases our own strict build of
  hank-ai computed for these tests (its README gives the provenance);
- hank-ai's cfgs and their JSON stay in ../shared (tests skip with a reason
  without it).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Optional

import goldens as G
import goldens_ab as GA
from pydarknet_loss import hankai

HERE = Path(__file__).resolve().parent
HANK_DIR = "hankai-f684e1d7"
REPO = HERE / "golden" / HANK_DIR / "cases"
EXTRA = HERE / "golden" / "hankai-extra-f684e1d7" / "cases"
SHARED_REASON = ("needs upstream's data from ../shared/golden/hankai-f684e1d7 (not in the repo; set "
                 "PDL_SHARED_GOLDEN_HANKAI to point elsewhere)")

manifest = GA.manifest
load = GA.load
ids = GA.ids


def shared() -> Optional[Path]:
    """../shared/golden/hankai-f684e1d7 beside the checkout, or $PDL_SHARED_GOLDEN_HANKAI."""
    env = os.environ.get("PDL_SHARED_GOLDEN_HANKAI")
    candidates = [Path(env)] if env else []
    candidates.append(HERE.parent.parent / "shared" / "golden" / HANK_DIR)
    for c in candidates:
        if (c / "cases" / "MANIFEST.json").is_file():
            return c
    return None


def cases(folder: Path) -> List[Path]:
    if not (folder / "MANIFEST.json").is_file():
        return []
    return [folder / c["file"] for c in manifest(folder)["cases"]]


def with_tag(tag: str, folder: Path = REPO) -> List[Path]:
    return [folder / c["file"] for c in manifest(folder)["cases"] if tag in c["tags"]]


def run(d: Dict[str, Any], **overrides: Any) -> hankai.YoloResult:
    """The case through the hank-ai layer its params describe."""
    p = dict(d["params"])
    layer = hankai.layer_from_params(p)
    if overrides:
        layer = hankai.YoloLayer(**{**layer.params(), **overrides})
    return layer.forward(d["input"], d["truth"], net_w=p["net_w"], net_h=p["net_h"], train=bool(d["train"]),
                         index=p["net_index"])


def assert_matches(res: hankai.YoloResult, d: Dict[str, Any]) -> None:
    """AlexeyAB's comparison (output, delta, cost, stats, text, count,
    labels, class_ids, exact counters), with hank-ai's line in `text`."""
    GA.assert_matches(res, d)
    if d["train"]:
        assert res.text == res.stats.line() + "\n" == d["text"]
