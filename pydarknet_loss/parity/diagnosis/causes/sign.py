"""sign: the gradient returned instead of darknet's delta (minus the gradient)."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..model import Array, CauseSpec


def say(arr: Array, factors: Any) -> Callable[[np.ndarray], str]:
    def message(sel: np.ndarray) -> str:
        return ("every value is darknet's with the sign flipped: darknet's delta is minus the gradient of its loss "
                "(target - output); the implementation returned the gradient. Negate it (or compare -grad).")
    return message


CAUSE = CauseSpec(
    code="sign", stage="factor", parts=("*",),
    summary="returned the gradient instead of the delta",
    recognised="`−yours` is darknet's on the elements it claims, and the factor −1 holds on two part groups or "
               "more (box, objectness, classes) with none left unchanged")
