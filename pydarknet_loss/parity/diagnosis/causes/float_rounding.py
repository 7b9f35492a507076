"""float_rounding: within darknet's own float32 rounding of that element."""
from __future__ import annotations

import numpy as np

from ..model import Array, CauseSpec


def message(arr: Array, sel: np.ndarray) -> str:
    d = np.abs(arr.A64 - arr.E64)[sel]
    return (f"the {arr.name} values differ from darknet's by at most {float(d.max()):.3g}, within darknet's own "
            "float32 rounding of each element (ImpliedLoss.rounding_bound): a float32 or float64 implementation of "
            "the same formulas does this. Not a defect: compare with tolerance='float32'.")


CAUSE = CauseSpec(
    code="float_rounding", stage="tolerance", parts=("*",),
    summary="within darknet's own float32 rounding of that element; not a defect under `tolerance=\"float32\"`",
    recognised="`|yours − darknet's|` ≤ the element's rounding bound")
