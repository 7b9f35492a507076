"""activation: an output entry activated where upstream leaves it raw, or the reverse."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..model import Array, CauseSpec, Claim, role_name


def activation(arr: Array) -> Optional[Claim]:
    ev = arr.ev
    assert ev is not None
    X = ev.X.astype(np.float64)
    raw = ev.Y.view(np.uint32) == ev.X.view(np.uint32)
    with np.errstate(over="ignore"):
        sig = 1.0 / (1.0 + np.exp(-X))
    mask = (~raw & arr.close(arr.A64, X, rel=1e-6)) | (raw & arr.close(arr.A64, sig, rel=1e-5))
    if not mask.any():
        return None

    def say(sel: np.ndarray) -> str:
        roles = sorted({role_name(arr, int(e)) for e in np.argwhere(sel)[:, 2]})
        return (f"upstream applies the logistic to x, y, objectness and flat classes and leaves w, h raw; the "
                f"implementation's {', '.join(roles)} output entries are activated the other way round.")
    return Claim(mask, say=say)

CAUSE = CauseSpec(
    code="activation", stage="output", model=activation, parts=("*",),
    summary="an output entry activated where upstream leaves it raw, or the reverse",
    recognised="your output is `x` where darknet's is `σ(x)`, or the reverse")
