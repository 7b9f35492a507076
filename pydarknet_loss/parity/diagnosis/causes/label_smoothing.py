"""label_smoothing: AlexeyAB's label smoothing (targets 1*(1 - eps) + .5*eps
and .5*eps) missed, or added where the layer has none."""
from __future__ import annotations

from typing import Optional

from ..model import Array, CauseSpec, Claim
from ._ab_replay import replay, reproduced

#: eps tried when the layer has none (the ports' usual values)
TRIED = (0.1, 0.05, 0.01)


def label_smoothing(arr: Array) -> Optional[Claim]:
    eps = float(getattr(arr.layer, "label_smooth_eps", 0.0))
    cands = (0.0,) if eps else TRIED
    for e in cands:
        m = reproduced(arr, replay(arr, label_smooth_eps=e))
        if m is None:
            continue
        m = m & arr.role_mask(range(arr.coords + 1, arr.E.shape[2]))
        if m.any():
            if eps:
                text = (f"darknet's with label_smooth_eps = {eps:g} left out: upstream's class targets are "
                        f"1*(1 - eps) + .5*eps and .5*eps")
            else:
                text = f"darknet's with label smoothing eps = {e:g} added (the layer has none)"
            return Claim(m, say=lambda sel, text=text: f"{int(sel.sum())} class deltas are {text}.",
                         detail={"eps": e})
    return None


CAUSE = CauseSpec(
    code="label_smoothing", stage="decision", model=label_smoothing, kinds=("yolo_ab",),
    parts=("classes.positive", "classes.negative"),
    summary="AlexeyAB: `label_smooth_eps` missed (or smoothing added where the layer has none)",
    recognised="darknet's layer run with `label_smooth_eps` = 0 (or .1, .05, .01 where it has none) gives your "
               "class deltas")
