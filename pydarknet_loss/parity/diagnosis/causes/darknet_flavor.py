"""darknet_flavor: the other AlexeyAB-lineage darknet's values, bit for bit."""
from __future__ import annotations

import warnings
from typing import Optional

import numpy as np

from ..model import F, Array, CauseSpec, Claim


def darknet_flavor(arr: Array) -> Optional[Claim]:
    """Where the implementation's value is the other AlexeyAB-lineage
    darknet's on the same input, bit for bit, and upstream's is not
    (hank-ai f684e1d7 <-> AlexeyAB 59596d7): that darknet's own forward is
    the model."""
    from ....layers import alexeyab, hankai

    ev = arr.ev
    if ev is None or arr.name not in ("delta", "output"):
        return None
    layer = ev.layer
    params = layer.params()
    if isinstance(layer, hankai.YoloLayer):
        other, mine, theirs = alexeyab.YoloLayer(**params), "hank-ai f684e1d7", "AlexeyAB 59596d7"
    else:
        params.pop("show_details", None)
        other, mine, theirs = hankai.YoloLayer(**params), "AlexeyAB 59596d7", "hank-ai f684e1d7"
    B, n, P, H, W = ev.X.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = other.forward(ev.X.reshape(B, n * P, H, W), ev.truth, net_w=ev.net_w, net_h=ev.net_h)
        except ValueError:  # a truth row the other darknet refuses (hank-ai aborts on it)
            return None
    O = getattr(res, arr.name).reshape(arr.E.shape)
    bits = lambda a: np.ascontiguousarray(a, dtype=F).view(np.uint32)  # noqa: E731
    same = (bits(arr.A) == bits(O)) | (np.isnan(arr.A) & np.isnan(O))
    upstream = (bits(arr.E) == bits(O)) | (np.isnan(arr.E) & np.isnan(O))
    mask = same & ~upstream & arr.fail
    if not mask.any():
        return None

    def say(sel: np.ndarray) -> str:
        return (f"these {arr.name} elements are {theirs}'s values, bit for bit, where {mine}'s differ: the "
                f"implementation computes {theirs}'s arithmetic there ("
                + ("exp/log/atan rounded once from double, a NaN edge's other side picked"
                   if theirs.startswith("AlexeyAB") else "expf/logf/atanf rounded in float, NaN edges propagated")
                + f"). If {theirs} is the darknet you train with, check against pydarknet_loss."
                + ("alexeyab" if theirs.startswith("AlexeyAB") else "hankai") + ".YoloLayer instead.")
    return Claim(mask, say=say, detail={"darknet": theirs})


CAUSE = CauseSpec(
    code="darknet_flavor", stage="exact", model=darknet_flavor, kinds=("yolo_ab",), parts=("*",),
    summary="AlexeyAB's lineage: the value is the other darknet's, bit for bit (AlexeyAB 59596d7 rounds "
            "exp/log/atan once from double and picks a NaN edge's other side; hank-ai f684e1d7 rounds them in float "
            "and propagates the NaN)",
    recognised="the other darknet's own forward on your input gives your value exactly, and darknet's does not; "
                "tried before the rounding tolerance")
