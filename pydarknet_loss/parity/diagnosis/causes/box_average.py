"""box_average: [Gaussian_yolo]'s box deltas not divided by the cell's positive classes."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..model import Array, CauseSpec, Claim, nontrivial


def box_average(arr: Array) -> Optional[Claim]:
    """Box deltas k times darknet's in a cell with k >= 2 classes of
    positive delta (upstream divides by k after loop 2)."""
    if getattr(arr.layer, "kind", None) != "gaussian_yolo_ab" or arr.name != "delta":
        return None
    k = (arr.E[:, :, 9:] > 0).sum(axis=2).astype(np.float64)  # (B, n, H, W)
    scaled = arr.E64 * k[:, :, None]
    m = (arr.fail & arr.role_mask(range(8)) & arr.cell_mask(k >= 2) & nontrivial(arr)
         & arr.close(arr.A64, scaled, rel=1e-5))
    if not m.any():
        return None
    return Claim(m, say=lambda sel: (
        f"{int(sel.sum())} box deltas are darknet's times the number of their cell's classes with a positive "
        "delta: after the truth loop upstream divides every cell's eight box deltas (x, sigma_x, ..., sigma_h) by "
        "that number (averages_gaussian_yolo_deltas); the implementation did not."))


CAUSE = CauseSpec(
    code="box_average", stage="decision", model=box_average, kinds=("gaussian_yolo_ab",), needs_evidence=False,
    parts=("*",),
    summary="`[Gaussian_yolo]`: a cell's eight box deltas not divided by its number of classes with a positive "
            "delta, as upstream divides them after the truth loop",
    recognised="your box entries are `k·darknet's` at cells with k ≥ 2 positive class deltas")
