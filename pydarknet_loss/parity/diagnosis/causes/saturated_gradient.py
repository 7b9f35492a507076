"""saturated_gradient: BCE on probabilities, whose gradient vanishes where float32 sigmoid saturates."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..model import (F, Array, CauseSpec, Claim, activated, multi, nontrivial, role_groups, role_name,
                     saturated_cells, sigmoid32, ties_decided_other_way)


def saturated_gradient(arr: Array) -> Optional[Claim]:
    ev = arr.ev
    assert ev is not None
    # Nothing to say unless some failing element sits at a saturated logit (a cheap look first).
    p = sigmoid32(ev.X[arr.fail])
    if not ((p == 0) | (p == 1) | ((p * (F(1) - p)).astype(F) < F(1e-12))).any():
        return None
    act = activated(ev, arr.E.shape[2])
    X = ev.X
    sat = saturated_cells(ev)
    smaller = (np.abs(arr.A64) < np.abs(arr.E64)) & (arr.A64 * arr.E64 >= 0)
    cand = arr.role_mask(act) & sat & nontrivial(arr)
    # A box or class delta that vanished where the implementation wrote no
    # box or class delta at all is a truth not given to that cell, not a
    # vanishing gradient: x, y and classes count where the cell holds w, h or
    # class deltas of the implementation's.
    c = arr.coords
    wrote = (arr.A[:, :, 2:4] != 0).any(axis=2) | (arr.A[:, :, c + 1:] != 0).any(axis=2)
    own = arr.role_mask([c]) | arr.cell_mask(wrote)
    mask = cand & smaller & own
    # In a cell two truths share a missing short-circuit leaves the same
    # small value, and at a tie with ignore_thresh '>=' leaves the same 0:
    # such cells count only when saturation shows elsewhere, and not when
    # elsewhere saturated elements keep upstream's value.
    ambiguous = np.zeros(ev.Y.shape[:2] + ev.Y.shape[3:], bool)
    if ev.rec:
        for c in multi(ev):
            ambiguous[c] = True
        if ties_decided_other_way(arr) is not False:
            ambiguous |= ~ev.e_assigned() & (ev.rec["best_iou"] == F(ev.ignore))
    plain = arr.cell_mask(~ambiguous)
    keep = np.zeros_like(mask)
    for group in role_groups(arr, act):
        g = arr.role_mask(group)
        # Evidence per role (an implementation may use BCE on probabilities
        # for objectness only): a vanishing gradient in a plain cell, or none
        # where a saturated element kept upstream's value.
        if (mask & g & plain).any() or not (cand & g & ~arr.fail).any():
            keep |= mask & g
    mask = keep
    if not mask.any():
        return None

    def say(sel: np.ndarray) -> str:
        xs = np.abs(X[sel]).astype(np.float64)
        roles = sorted({role_name(arr, int(e)) for e in np.argwhere(sel)[:, 2]})
        return (f"at {', '.join(roles)} entries whose logit is beyond float32 sigmoid saturation (|x| from "
                f"{xs.min():.4g} to {xs.max():.4g}, where float32 sigmoid(x) rounds to 1 or 0, or p(1 - p) < 1e-12), "
                "upstream's delta stays t - sigmoid(x) (up to +-1), computed in double; the implementation's "
                "gradient is 0 or far smaller: "
                "it applies BCE to sigmoid outputs (torch.nn.BCELoss on probabilities, or a clamped log). Compute "
                "the loss on the logits (BCEWithLogits), whose gradient is sigmoid(x) - t.")
    return Claim(mask, say=say)

CAUSE = CauseSpec(
    code="saturated_gradient", stage="decision", model=saturated_gradient,
    parts=("box.x", "box.y", "objectness.positive", "objectness.negative", "classes.positive", "classes.negative"),
    summary="0 (or far smaller) where darknet's delta is not, at a logit beyond float32 sigmoid saturation: BCE on "
            "probabilities instead of logits",
    recognised="float32 `σ(x)` is 0 or 1 (or `p(1−p)` < 1e-12) and your value is smaller, same sign, in a role "
               "where saturation shows outside cells that could be explained otherwise")
