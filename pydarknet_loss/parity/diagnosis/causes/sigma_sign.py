"""sigma_sign: [Gaussian_yolo]'s sigma deltas negated, the rest darknet's."""
from __future__ import annotations

from typing import Optional


from ..model import Array, CauseSpec, Claim, nontrivial


def sigma_sign(arr: Array) -> Optional[Claim]:
    """Sigma deltas (entries 1, 3, 5, 7) whose value is darknet's negated."""
    if getattr(arr.layer, "kind", None) != "gaussian_yolo_ab" or arr.name != "delta":
        return None
    m = arr.fail & arr.role_mask([1, 3, 5, 7]) & nontrivial(arr) & arr.close(-arr.A64, arr.E64, rel=1e-6)
    if not m.any():
        return None
    return Claim(m, say=lambda sel: (
        f"{int(sel.sum())} sigma deltas (sigma_x, sigma_y, sigma_w, sigma_h) are darknet's with the sign flipped: "
        "upstream's is temp*((d/sigma)^2/sigma - 1/(sigma + 0.3)), minus the gradient of the Gaussian negative "
        "log-likelihood in the activated sigma; the implementation returned the gradient (or t - sigma)."))


CAUSE = CauseSpec(
    code="sigma_sign", stage="decision", model=sigma_sign, kinds=("gaussian_yolo_ab",), needs_evidence=False,
    parts=("*",),
    summary="`[Gaussian_yolo]`: the sigma deltas negated (the uncertainty gradient's sign), the rest darknet's",
    recognised="your sigma entries (1, 3, 5, 7) are `−darknet's` where darknet's stand out of its rounding")
