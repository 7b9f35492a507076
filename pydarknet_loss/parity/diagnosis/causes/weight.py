"""weight: one part of the delta carries a constant factor darknet does not have."""
from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from ..model import Array, CauseSpec

ORIGINS = {2.0: "a squared error without its 1/2 (d/dx (x - t)^2 = 2(x - t))",
           0.5: "a 1/2 darknet does not have (lambda_noobj = 0.5, or a mean of two terms)",
           5.0: "lambda_coord = 5 (YOLOv1's box weight)"}


def origin(k: float) -> str:
    for v, text in ORIGINS.items():
        if abs(k - v) <= 1e-5 * v:
            return text
    if k != 0 and abs(1 / k - round(1 / k)) <= 1e-4 and round(1 / k) > 2:
        return f"a mean over {round(1 / k)} elements (cells, anchors or boxes) where darknet sums"
    return "a lambda weight or a normalizer darknet does not apply to this part"


def say(arr: Array, detail: Mapping[str, Any], factors: Any) -> Callable[[np.ndarray], str]:
    part, k = detail["part"], float(detail["factor"])
    also = f" (besides the factor {factors.k:g} on the whole array)" if factors.k != 1 else ""

    def message(sel: np.ndarray) -> str:
        alt = (" On this input only this part has values, so a factor on the whole array would look the same."
               if factors.ambiguous else "")
        return (f"the implementation's {part} deltas are darknet's times {k:.6g}{also}, the rest darknet's: "
                f"likely {origin(k)}. Darknet weighs {part} by 1 (its scales are in the cfg: object_scale, "
                f"noobject_scale, class_scale, coord_scale for [region]); drop the factor.{alt}")
    return message


CAUSE = CauseSpec(
    code="weight", stage="factor", parts=("box.x", "box.y", "box.w", "box.h", "objectness.positive",
                                          "objectness.negative", "classes.positive", "classes.negative", "prior"),
    summary="one part carries a constant factor: box, xy, wh, objectness (all, positive, negative), classes, the "
            "prior (×2: a squared error without ½; λ_coord, λ_noobj; a normalizer; a mean over cells)",
    recognised="`k·darknet's` is yours on ≥ 90 % of the part's telling elements (and it claims exactly those), "
               "while other parts keep darknet's values")
