"""The one helper that reads golden cases (format: tests/golden/README.md).

In-repo copies live in tests/golden/; cases that embed upstream data (the 9k
tree) are read from ../shared/golden/ when it is there (as in CI) and skipped
with a reason otherwise.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

import pydarknet_loss as pdl

HERE = Path(__file__).resolve().parent
COMMIT_DIR = "pjreddie-f6afaab"
#: The shared set's in-repo copy.
REPO_GOLDEN = HERE / "golden" / COMMIT_DIR
#: Cases our own upstream build computed for these tests (same format).
EXTRA_GOLDEN = HERE / "golden" / "extra-f6afaab"


def shared_golden() -> Optional[Path]:
    """../shared/golden/pjreddie-f6afaab beside the checkout, or $PDL_SHARED_GOLDEN."""
    env = os.environ.get("PDL_SHARED_GOLDEN")
    candidates = [Path(env)] if env else []
    candidates.append(HERE.parent.parent / "shared" / "golden" / COMMIT_DIR)
    for c in candidates:
        if (c / "cases" / "MANIFEST.json").is_file():
            return c
    return None


SHARED_REASON = ("needs upstream data from ../shared/golden/pjreddie-f6afaab "
                 "(not in the repo; set PDL_SHARED_GOLDEN to point elsewhere)")


def manifest(root: Path, folder: str = "cases") -> List[Dict[str, Any]]:
    return json.loads((root / folder / "MANIFEST.json").read_text())["cases"]


def repo_cases(kind: str, folder: str = "cases", root: Path = REPO_GOLDEN) -> List[Path]:
    return [root / folder / c["file"] for c in manifest(root, folder) if c["kind"] == kind]


def extra_cases(kind: str, folder: str = "cases") -> List[Path]:
    return repo_cases(kind, folder, EXTRA_GOLDEN)


def shared_only_cases(kind: str, folder: str = "cases") -> List[str]:
    """File names of shared cases of this kind that are not copied in the repo."""
    root = shared_golden()
    if root is None:
        return []
    have = {p.name for p in (REPO_GOLDEN / folder).glob("*.npz")}
    return [c["file"] for c in manifest(root, folder) if c["kind"] == kind and c["file"] not in have]


def load(path: Path) -> Dict[str, Any]:
    with np.load(path, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    for key in ("params", "tags", "derived"):
        if key in d:
            d[key] = json.loads(str(d[key]))
    for key in ("kind", "text"):
        if key in d:
            d[key] = str(d[key])
    return d


def bits_equal(a: Any, b: Any) -> bool:
    """Same shape and same float bit patterns; NaN matches NaN of any payload."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind != "f":
        return bool(np.array_equal(a, b))
    u = {4: np.uint32, 8: np.uint64}[a.dtype.itemsize]
    both_nan = np.isnan(a) & np.isnan(b)
    return bool(np.all((a.view(u) == b.view(u)) | both_nan))


def first_difference(a: np.ndarray, b: np.ndarray) -> str:
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        return f"shapes {a.shape} vs {b.shape}"
    u = {4: np.uint32, 8: np.uint64}[a.dtype.itemsize]
    diff = (a.view(u) != b.view(u)) & ~(np.isnan(a) & np.isnan(b))
    idx = np.argwhere(diff)
    if not len(idx):
        return "no difference"
    i = tuple(idx[0])
    return f"{int(diff.sum())} elements differ; first at {i}: ours {a[i]!r} upstream {b[i]!r}"


def assert_matches(res: Any, d: Dict[str, Any]) -> None:
    """An oracle forward result equals a golden case: output, delta, cost
    and the printed statistics, bit for bit."""
    assert bits_equal(res.output, d["output"]), first_difference(res.output, d["output"])
    assert bits_equal(res.delta, d["delta"]), first_difference(res.delta, d["delta"])
    assert bits_equal(np.float32(res.cost), d["cost"]), (res.cost, d["cost"])
    if d["train"]:
        assert res.stats is not None
        assert bits_equal(res.stats.as_array(), d["stats"]), (res.stats, d["stats"])
        assert res.stats.count == int(d["count"])
        assert res.stats.line() + "\n" == d["text"]
    else:
        assert res.stats is None and int(d["count"]) == -1


def yolo_layer(p: Dict[str, Any]) -> pdl.YoloLayer:
    """The layer a golden case's params describe."""
    layer = pdl.golden.layer_from_params("yolo", p)
    assert isinstance(layer, pdl.YoloLayer)
    return layer


def region_layer(p: Dict[str, Any]) -> pdl.RegionLayer:
    """The layer a golden case's params describe.  A tree path is relative to
    the repository ("tests/...", our own small tree) or else to the shared
    golden folder (upstream's data/9k.tree)."""
    tree = p.get("tree")
    base = None
    if tree is not None:
        base = HERE.parent if tree.startswith("tests/") else shared_golden()
        if base is None:
            raise FileNotFoundError(SHARED_REASON)
    layer = pdl.golden.layer_from_params("region", p, base)
    assert isinstance(layer, pdl.RegionLayer)
    return layer


def ids(paths: List[Path]) -> List[str]:
    return [f"{p.parent.parent.name}/{p.stem}" for p in paths]
