"""The golden cases the implied-loss tests run on, shared by the NumPy and
the PyTorch tests."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Tuple

import goldens as G
import pydarknet_loss as pdl

# Configurations where darknet's delta is not a gradient (see
# test_implied.py for the proof by Jacobian asymmetry).
NOT_A_GRADIENT_TAGS = ("combo_s1_b1_r0_m0", "combo_s1_b1_r0_m1", "combo_s1_b1_r1_m0", "combo_s1_b1_r1_m1")


def training_cases(kind: str) -> List[Path]:
    out = []
    for p in G.repo_cases(kind) + G.extra_cases(kind):
        d = G.load(p)
        if d["train"] and "x_times_w_eq_w" not in d["tags"]:
            out.append(p)
    return out


def shared_tree_cases() -> List[str]:
    """The 9k-tree cases that are not NaN (temperature set)."""
    root = G.shared_golden()
    if root is None:
        return []
    return [c["file"] for c in G.manifest(root) if "tree_temperature_set" in c["tags"]]


def build_loss(d: Dict[str, Any], build: str) -> Tuple[Any, Any]:
    """(ImpliedLoss, layer) for a case; NotAGradientError where none exists."""
    p = d["params"]
    if d["kind"] == "yolo":
        layer = G.yolo_layer(p)
        return pdl.implied.yolo(d["input"], d["truth"], layer, net_w=p["net_w"], net_h=p["net_h"]), layer
    layer = G.region_layer(p)
    return pdl.implied.region(d["input"], d["truth"], layer, seen=int(d["seen"]), build=build), layer


def expected_refusal(d: Dict[str, Any], build: str) -> bool:
    """Whether no implied loss exists for this case and build."""
    if d["kind"] != "region" or build == "cpu":
        return False
    p = d["params"]
    if p["softmax"] and p["background"] and not p.get("tree"):
        return True
    h, w = d["input"].shape[2:]
    if p.get("tree"):
        # NaN at upstream's temperature 0; cells mixed when num*h*w > 1.
        return not p.get("temperature") or p["num"] * h * w > 1
    return False
