"""truth_limit: used rows beyond max_boxes."""
from __future__ import annotations

from typing import Optional

from ..model import Array, CauseSpec, Claim
from ._rows import LIMIT_ROWS, unread_rows


def truth_limit(arr: Array) -> Optional[Claim]:
    """The rows' box deltas where the values show them, then (once they
    do) the cells whose ignore test or truth_thresh branch they change."""
    return unread_rows(arr, LIMIT_ROWS, "truth_limit", ignore_cells="always")


CAUSE = CauseSpec(
    code="truth_limit", stage="decision", model=truth_limit, kinds=("yolo", "region"),
    parts=("box.x", "box.y", "box.w", "box.h", "objectness.positive", "objectness.negative", "objectness.ignored",
           "classes.positive", "classes.negative", "none"),
    summary="used rows beyond `max_boxes`",
    recognised="the same, for rows past `max_boxes`")
