"""wh_target: a w/h target other than log(w*net_w/anchor)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..model import Array, CauseSpec, Claim, cells_of, cells_str


def wh_target(arr: Array) -> Optional[Claim]:
    ev = arr.ev
    assert ev is not None
    cells = ev.e_assigned()
    xy_ok = ~arr.fail[:, :, 0:2].any(axis=2)
    mask = arr.role_mask([2, 3], cells & xy_ok)
    if not mask.any():
        return None

    def say(sel: np.ndarray) -> str:
        S = np.where(ev.sel.has, ev.sel.scale, np.nan)  # only when the claim is reported
        with np.errstate(invalid="ignore", divide="ignore"):
            implied = ev.X.astype(np.float64) + arr.A64 / S
        H, W = ev.Y.shape[3], ev.Y.shape[4]
        sizes = {2: (W, ev.net_w, "w", "W/net_w"), 3: (H, ev.net_h, "h", "H/net_h")}
        notes = []
        for e, (grid, net, name, ratio) in sizes.items():
            one = np.zeros_like(sel)
            one[:, :, e] = sel[:, :, e]
            diff = (implied - ev.sel.target)[one]
            diff = diff[np.isfinite(diff)]
            if not diff.size or np.ptp(diff) > 1e-3 * max(1.0, abs(float(np.median(diff)))):
                continue
            d = float(np.median(diff))
            guess = ""
            if ev.kind == "yolo" and abs(d - np.log(grid / net)) < 1e-3:
                guess = f" = log({ratio}) = log({grid}/{net}): pixel anchors used as if in grid units"
            notes.append(f"its {name} target is upstream's plus a constant {d:.6g}{guess}")
        const = ("; " + "; ".join(notes)) if notes else ""
        size = "net_w" if ev.kind == "yolo" else "W"
        return (f"upstream's w, h targets are log(w*{size}/anchor_w), log(h*{'net_h' if ev.kind == 'yolo' else 'H'}"
                f"/anchor_h) with anchors in {'network pixels' if ev.kind == 'yolo' else 'grid cells'}; the "
                f"implementation's differ{const} ({cells_str(ev, cells_of(sel))}). Use upstream's target.")
    return Claim(mask, say=say)

CAUSE = CauseSpec(
    code="wh_target", stage="decision", model=wh_target, kinds=("yolo", "region"), parts=("box.w", "box.h"),
    summary="a w/h target other than `log(w·net_w/anchor)`",
    recognised="w, h differ at an assigned cell whose x, y agree, and by one constant per entry over the cells "
               "(`log(W/net_w)`: pixel anchors used as if in grid units)")
