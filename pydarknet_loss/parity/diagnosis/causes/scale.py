"""scale: the whole array off by one factor (a batch mean, 1/2)."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..model import Array, CauseSpec


def factor_name(k: float, batch: int) -> str:
    for v, name in ((1 / batch, f"1/{batch}: a mean over the batch of {batch}"), (0.5, "1/2"), (2.0, "2"),
                    (-1.0, "-1")):
        if abs(k - v) <= 1e-5 * abs(v):
            return f" (= {name})"
    return ""


def say(arr: Array, factors: Any) -> Callable[[np.ndarray], str]:
    k = float(factors.k)
    guess = factor_name(k, arr.E.shape[0])

    def message(sel: np.ndarray) -> str:
        return (f"every value is darknet's times {k:.6g}{guess}: darknet sums its loss over the batch and scales "
                "nothing; the implementation multiplies the whole delta by a constant. Drop the factor.")
    return message


CAUSE = CauseSpec(
    code="scale", stage="factor", parts=("*",),
    summary="the whole array off by one factor (a batch mean, ½)",
    recognised="`k·darknet's` is yours on the elements it claims, and the factor k holds on two part groups or "
               "more with none left unchanged (without input and truth: on 95 % of the array's values)")
