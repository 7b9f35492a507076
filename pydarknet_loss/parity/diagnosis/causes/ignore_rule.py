"""ignore_rule: a cell's objectness negative where upstream ignores it, or the reverse."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..model import F, Array, CauseSpec, Claim, cells_of, cells_str, ties_decided_other_way


def _ignore_rule(arr: Array, ties_only: bool) -> Optional[Claim]:
    ev = arr.ev
    assert ev is not None
    o = arr.obj
    thr = ev.ignore
    best = ev.rec["best_iou"]
    free = ~ev.e_assigned()
    up_ignored = arr.E[:, :, o] == 0
    impl_ignored = arr.A[:, :, o] == 0
    cells = free & (up_ignored != impl_ignored)
    if ties_only:
        # Ties with the threshold, when the implementation shows it decides
        # them the other way at a cell whose logit is not saturated (where
        # a vanishing gradient would explain a 0 as well).
        cells &= best == F(thr)
        if not ties_decided_other_way(arr):
            return None
    if not cells.any():
        return None
    mask = arr.role_mask([o], cells)
    name = "ignore_thresh" if ev.kind == "yolo" else "thresh"

    def say(sel: np.ndarray) -> str:
        cs = cells_of(sel)
        tie = [c for c in cs if best[c] == F(thr)]
        neg = [c for c in cs if up_ignored[c]]
        parts = []
        if tie:
            parts.append(f"at {len(tie)} cell{'s' if len(tie) > 1 else ''} the best IoU equals {name} = {thr:g} "
                         f"exactly ({cells_str(ev, tie, 2)}): upstream's test is best IoU > {name} (strict), so "
                         "the cell stays a negative; the implementation uses '>='")
        if len(tie) < len(cs):
            rest = [c for c in cs if c not in tie]
            ious = ", ".join(f"{float(best[c]):.6g}" for c in rest[:3])
            parts.append(f"upstream {'ignores' if neg else 'treats as negative'} {len(rest)} cell"
                         f"{'s' if len(rest) > 1 else ''} (best IoU with a truth {ious} against {name} = {thr:g}) "
                         f"that the implementation {'treats as negative' if neg else 'ignores'}"
                         f" ({cells_str(ev, rest, 2)}): check how it computes the predicted boxes and their IoU")
        return "; ".join(parts) + ". Ignore a cell's objectness exactly when its best IoU with a truth upstream " \
                                  f"reads is > {name}."
    return Claim(mask, say=say)


def _either(first: Optional[Claim], second: Optional[Claim]) -> Optional[Claim]:
    """Two models of the ignore test as one claim: the elements either
    reproduces, each described by the model that reproduces it (the first
    where both do)."""
    if first is None or second is None:
        return first or second
    m1, m2 = np.asarray(first.mask), np.asarray(second.mask)
    only2 = m2 & ~m1

    def say(sel: np.ndarray) -> str:
        parts = [c.say(sel & m) for c, m in ((first, m1), (second, only2)) if (sel & m).any()]
        return " ".join(parts)
    return Claim(m1 | m2, say=say, detail={**second.detail, **first.detail})


def ignore_rule(arr: Array) -> Optional[Claim]:
    """Ties with the threshold decided the other way when the
    implementation shows it does so at unsaturated ties; else every
    unassigned cell whose objectness is 0 in one array and not the other."""
    if arr.ev is not None and arr.ev.kind == "yolo_ab":  # AlexeyAB's layer: causes/_ab_models.py
        from ._ab_models import ignore_gate, ignore_variants
        return _either(ignore_gate(arr), ignore_variants(arr))
    return _ignore_rule(arr, ties_only=True) or _ignore_rule(arr, ties_only=False)


CAUSE = CauseSpec(
    code="ignore_rule", stage="decision", model=ignore_rule, kinds=("yolo", "region", "yolo_ab"),
    parts=("objectness.negative", "objectness.ignored"),
    summary="treated a cell's objectness as negative where upstream ignores it, or the reverse (`>` vs `>=` shows "
            "here)",
    recognised="an unassigned cell's objectness is 0 in one array and not the other; ties with the threshold "
               "first, when your non-saturated ties are ignored; AlexeyAB: the ignore test's variant (class gate "
               "off, x, y without `scale_x_y`, images whose truths all belong to other heads skipped, another "
               "threshold) with the fewest departures that splits your ignored cells from your negative ones")
