"""Cases for trying the gallery of classic mistakes: every upstream-computed
training case in the repository, and seeded generated ones whose layers
vary what the golden set holds fixed (ignore_thresh 0 and 1, where ties
with the threshold happen; truth_thresh below 1; max_boxes below the number
of truths; several images)."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Iterator, List

import numpy as np

import goldens as G
import pydarknet_loss as pdl
from pydarknet_loss.parity import golden


@dataclass
class Case:
    name: str
    layer: Any
    x: np.ndarray
    truth: np.ndarray
    net_w: int
    net_h: int
    seen: int
    expected: np.ndarray  #: the oracle's delta

    def compare(self, delta: np.ndarray, **kw: Any) -> pdl.ParityReport:
        return pdl.compare({"delta": self.expected}, {"delta": delta}, self.layer, input=self.x, truth=self.truth,
                           net_w=self.net_w, net_h=self.net_h, seen=self.seen, **kw)


def golden_cases(kind: str) -> List[Case]:
    """The in-repo training cases of this kind that the gallery's
    implementations cover (region: coords 4 without a tree)."""
    out = []
    for folder in (G.REPO_GOLDEN / "cases", G.EXTRA_GOLDEN / "cases"):
        for p in sorted(folder.glob(f"*_{kind}.npz")):
            c = golden.GoldenCase.load(p)
            if not c.train or "x_times_w_eq_w" in c.tags:
                continue
            if kind == "region" and ("tree" in c.params or c.params.get("coords", 4) != 4):
                continue
            out.append(Case(f"{folder.parent.name}/{p.stem}", c.layer(), c.input, c.truth,
                            c.params.get("net_w", 416), c.params.get("net_h", 416), c.seen, c.delta))
    return out


def generated_yolo(n: int, seed: int = 7) -> Iterator[Case]:
    """n seeded [yolo] training cases on small random layers."""
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        total = int(rng.integers(1, 7))
        anchors = rng.uniform(5, 300, 2 * total).round(1).tolist()
        mask = sorted(rng.choice(total, int(rng.integers(1, total + 1)), replace=False).tolist())
        kw = dict(classes=int(rng.integers(1, 5)), anchors=anchors, mask=mask,
                  ignore_thresh=float(rng.choice([0, .5, .7, 1.0])), truth_thresh=float(rng.choice([.6, 1.0, 1.0])))
        params = dict(batch=int(rng.integers(1, 4)), w=int(rng.integers(1, 7)), h=int(rng.integers(1, 7)),
                      net_w=int(rng.choice([416, 320])), net_h=416)
        d = golden.draw_case(pdl.YoloLayer(**kw), params, rng)
        # Sometimes fewer rows read than the image holds.
        layer = pdl.YoloLayer(max_boxes=int(rng.choice([90, 90, 3, 1])), **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = layer.forward(d["x"], d["truth"], net_w=params["net_w"], net_h=params["net_h"])
        yield Case(f"generated/yolo_{seed}_{i}", layer, d["x"], d["truth"], params["net_w"], params["net_h"], 0,
                   res.delta)
