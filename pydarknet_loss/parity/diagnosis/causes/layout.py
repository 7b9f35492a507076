"""layout: the implementation's array holds darknet's numbers in another memory order."""
from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

import numpy as np

from ..model import Array, CauseSpec

#: Memory orders an implementation's buffer may be in, read back into darknet's (B, n, P, H, W).
LAYOUTS: Dict[str, Callable[[np.ndarray, Tuple[int, ...]], np.ndarray]] = {
    "nhwc": lambda f, s: f.reshape(s[0], s[3], s[4], s[1] * s[2]).transpose(0, 3, 1, 2).reshape(s),
    "bahwc": lambda f, s: f.reshape(s[0], s[1], s[3], s[4], s[2]).transpose(0, 1, 4, 2, 3),
    "bhwac": lambda f, s: f.reshape(s[0], s[3], s[4], s[1], s[2]).transpose(0, 3, 4, 1, 2),
    "entry-major [b][entry][anchor]": lambda f, s: f.reshape(s[0], s[2], s[1], s[3], s[4]).transpose(0, 2, 1, 3, 4),
}


def relayout(arr: Array, todo: np.ndarray) -> Optional[Tuple[str, np.ndarray]]:
    """The memory order in which the implementation's buffer agrees with
    darknet's values on the most elements, when that is at least half of
    them and far more than as given (a part weighted differently, or a
    departure at a few cells, still leaves the order plain)."""
    B, n, P, H, W = arr.E.shape
    if not todo.any():
        return None
    values = arr.a_values()  # A64 when the engine normalised A, else A (the same numbers in float32)
    flat = values.reshape(-1)
    nbad = int(np.count_nonzero(todo))  # (sum() of a bool array this size is ~10x slower)
    size = arr.E.size
    # A cheap look first, on an even sample of the elements: a candidate
    # order must look as good there as the whole-array test below asks.
    # The sample is gathered through each order's view, so no order is
    # copied (nor A, E or the bound made in float64) unless it passes.
    step = max(1, size // 20000)
    sample = np.arange(0, size, step)
    at = np.unravel_index(sample, arr.E.shape)
    e_s, b_s = arr.e64_at(sample), 4 * arr.bound_at(sample)

    def agree(values: np.ndarray) -> int:
        with np.errstate(invalid="ignore", over="ignore"):
            return int((np.abs(values - e_s) <= 1e-6 * np.abs(e_s) + b_s + 1e-30).sum())
    base_s = agree(flat[sample].astype(np.float64))
    base: Optional[int] = None
    best: Optional[Tuple[int, str, np.ndarray]] = None
    for name, view in LAYOUTS.items():
        if (H * W == 1 and name != "entry-major [b][entry][anchor]") or (n == 1 and "anchor" in name):
            continue
        cand = view(flat, arr.E.shape)
        score_s = agree(cand[at].astype(np.float64))
        if score_s * 2 <= sample.size or score_s <= base_s + (nbad * sample.size // size) // 8:
            continue
        cand = cand.astype(np.float64)  # the whole array: this order looked right on the sample
        if base is None:
            base = int(arr.close(arr.A64, arr.E64, rel=1e-6).sum())
        ok = arr.close(cand, arr.E64, rel=1e-6)
        score, fixed = int(ok.sum()), int((ok & todo).sum())
        # It must put right at least half of what fails, and more than it breaks.
        if fixed >= max(2, (nbad + 1) // 2) and score > base + nbad // 4 and score > size // 2 and \
                (best is None or score > best[0]):
            best = (score, name, np.ascontiguousarray(cand))
    return None if best is None else (best[1], best[2])


def message(name: str) -> str:
    hint = f"pass layout={name!r}" if name in ("nhwc", "bahwc") else "transpose it to darknet's layout"
    return (f"the values are darknet's, in {name} memory order: upstream's buffer is [b][anchor][entry][row][col] "
            f"(NCHW for a conv output); the implementation's array holds the same numbers laid out as {name}. "
            f"Reorder it ({hint}).")


CAUSE = CauseSpec(
    code="layout", stage="layout", parts=("*",),
    summary="the array is in another memory layout",
    recognised="your buffer read as NHWC, `(B,A,H,W,5+C)`, `(B,H,W,A,5+C)` or entry-major agrees with darknet's "
               "on most elements; it claims those, and the other causes are looked for in the re-laid array")
