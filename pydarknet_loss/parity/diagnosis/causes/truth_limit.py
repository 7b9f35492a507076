"""truth_limit: used rows beyond max_boxes (pjreddie's layers read a fixed
number of rows from a longer buffer), or, on AlexeyAB's [yolo] (whose buffer
holds exactly max_boxes rows), fewer rows than max_boxes."""
from __future__ import annotations

from typing import Optional

from ..model import Array, CauseSpec, Claim
from ._ab_models import fewer_rows
from ._rows import LIMIT_ROWS, unread_rows


def truth_limit(arr: Array) -> Optional[Claim]:
    """The rows' box deltas where the values show them, then (once they
    do) the cells whose ignore test or truth_thresh branch they change."""
    if getattr(arr.ev, "kind", None) == "yolo_ab":
        return fewer_rows(arr)
    return unread_rows(arr, LIMIT_ROWS, "truth_limit", ignore_cells="always")


CAUSE = CauseSpec(
    code="truth_limit", stage="decision", model=truth_limit, kinds=("yolo", "region", "yolo_ab"),
    parts=("box.x", "box.y", "box.w", "box.h", "objectness.positive", "objectness.negative", "objectness.ignored",
           "classes.positive", "classes.negative", "none"),
    summary="used rows beyond `max_boxes`; AlexeyAB: read fewer rows than `max_boxes` (a limit of its own)",
    recognised="the same, for rows past `max_boxes`; AlexeyAB: darknet's layer run on the first K rows gives your "
               "values")
