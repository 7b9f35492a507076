"""x0_terminator: used truth rows at or after a row with x == 0, where upstream stops reading."""
from __future__ import annotations

from typing import Optional

from ..model import Array, CauseSpec, Claim
from ._ab_models import rows_past_x0
from ._rows import X0_ROWS, unread_rows


def x0_terminator(arr: Array) -> Optional[Claim]:
    """The rows' box deltas where the values show them, then (once they
    do) the cells whose ignore test or truth_thresh branch they change."""
    if getattr(arr.ev, "kind", None) == "yolo_ab":
        return rows_past_x0(arr)
    return unread_rows(arr, X0_ROWS, "x0_terminator", ignore_cells="always")


CAUSE = CauseSpec(
    code="x0_terminator", stage="decision", model=x0_terminator, kinds=("yolo", "region", "yolo_ab"),
    parts=("box.x", "box.y", "box.w", "box.h", "objectness.positive", "objectness.negative", "objectness.ignored",
           "classes.positive", "classes.negative", "none"),
    summary="used truth rows at or after a row with `x == 0`, where upstream stops reading",
    recognised="your box deltas at such a row's cell and anchor are that row's; or a cell's objectness is ignored "
               "because of such a row; AlexeyAB: darknet's layer run with the x == 0 rows taken out gives your values")
