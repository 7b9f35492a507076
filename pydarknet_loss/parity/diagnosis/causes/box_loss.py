"""box_loss: AlexeyAB's box deltas from another loss: MSE where the cfg says
an IoU loss, an IoU loss where it says MSE, or another IoU kind (IoU, GIoU,
DIoU, CIoU)."""
from __future__ import annotations

from typing import Optional

from ..model import Array, CauseSpec, Claim
from ._ab_replay import replay, reproduced

KINDS = ("mse", "iou", "giou", "diou", "ciou")


def box_loss(arr: Array) -> Optional[Claim]:
    """The iou_loss whose replay reproduces the most failing box elements."""
    ev = arr.ev
    if ev is None or ev.kind != "yolo_ab":
        return None
    mine = getattr(arr.layer, "iou_loss", None)
    best, best_m = None, None
    for kind in KINDS:
        if kind == mine:
            continue
        alt = replay(arr, iou_loss=kind)
        m = reproduced(arr, alt)
        if m is None or alt is None:
            continue
        # four box deltas of 0 are what an unassigned cell has too (and the
        # IoU loss's gradient where the boxes do not overlap): they tell no loss
        unassigned = (arr.A64[:, :, :4] == 0).all(axis=2)
        m = m & arr.role_mask([0, 1, 2, 3]) & ~unassigned[:, :, None]
        if m.any() and (best_m is None or m.sum() > best_m.sum()):
            best, best_m = kind, m
    if best_m is None:
        return None

    def say(sel):
        how = ("the MSE form scale*(t - x)*iou_normalizer on the activated x, y and raw w, h" if best == "mse" else
               f"the {best.upper()} gradient (box.c dx_box_iou, w and h times exp, times iou_normalizer, NaN "
               "zeroed, clipped to max_delta)")
        return (f"{int(sel.sum())} box deltas are darknet's with iou_loss = {best} where the layer says {mine}: "
                f"{how}. Use the cfg's iou_loss.")
    return Claim(best_m, say=say, detail={"iou_loss": best})


CAUSE = CauseSpec(
    code="box_loss", stage="decision", model=box_loss, kinds=("yolo_ab",),
    parts=("box.x", "box.y", "box.w", "box.h"),
    summary="AlexeyAB: the box deltas of another loss: MSE against the IoU family, or another IoU kind "
            "(IoU, GIoU, DIoU, CIoU)",
    recognised="darknet's layer run with that `iou_loss` gives your box deltas")
