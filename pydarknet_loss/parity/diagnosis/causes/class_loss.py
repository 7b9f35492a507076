"""class_loss: softmax cross-entropy where darknet uses independent logistics, or the reverse."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..model import Array, CauseSpec, Claim, cells_of, cells_str
from .class_target import _targets


def _softmax(z: np.ndarray, axis: int) -> np.ndarray:
    m = np.max(z, axis=axis, keepdims=True)
    e = np.exp(z - np.where(np.isfinite(m), m, 0))
    return e / e.sum(axis=axis, keepdims=True)


def class_loss(arr: Array) -> Optional[Claim]:
    """At cells given a truth: the implementation's classes are
    s·(t − q) with q the softmax of the class logits where darknet's p is
    each class's logistic (or q the logistics where darknet's is a softmax)."""
    ev = arr.ev
    if ev is None or not ev.has_selection or ev.kind not in ("yolo", "region"):
        return None
    if ev.kind == "region" and ev.layer.tree is not None:
        return None
    k0 = arr.coords + 1
    idx, t, s, _ = _targets(arr)
    if not idx[0].size or arr.E.shape[2] - k0 < 2:
        return None
    b, a, j, i = idx
    X = ev.X[b, a, k0:, j, i].astype(np.float64)
    softmax_used = ev.kind == "region" and ev.layer.softmax
    with np.errstate(over="ignore"):
        q = 1 / (1 + np.exp(-X)) if softmax_used else _softmax(X, axis=1)
    pred = s * (t - q)
    A = arr.a64_ix((b, a, slice(k0, None), j, i))
    ok = np.abs(A - pred) <= 1e-4 * np.abs(pred) + 4 * arr.bound_ix((b, a, slice(k0, None), j, i)) + 1e-7 * np.abs(s)
    cell_ok = (ok | ~np.isfinite(s)).all(axis=1)
    if not cell_ok.any():
        return None
    cells = np.zeros(arr.E.shape[:2] + arr.E.shape[3:], bool)
    cells[b[cell_ok], a[cell_ok], j[cell_ok], i[cell_ok]] = True
    mask = arr.role_mask(range(k0, arr.E.shape[2]), cells) & arr.fail

    def say(sel: np.ndarray) -> str:
        where = cells_str(ev, cells_of(sel))
        if softmax_used:
            return (f"with softmax=1 darknet's classes are one softmax over the cell's class logits; the "
                    f"implementation's class deltas are t - sigmoid(x) per class (independent logistics) at {where}. "
                    "Use a softmax cross-entropy.")
        return (f"darknet's classes are independent logistics (each class's delta t - sigmoid(x), binary "
                f"cross-entropy per class); the implementation's are t - softmax(x) at {where}: a softmax "
                "cross-entropy over the classes. Use per-class BCE on the logits.")
    return Claim(mask, say=say)


CAUSE = CauseSpec(
    code="class_loss", stage="decision", model=class_loss, kinds=("yolo", "region"),
    parts=("classes.positive", "classes.negative"),
    summary="softmax cross-entropy where darknet uses independent logistics, or the reverse",
    recognised="at a cell given a truth, every class is `s·(t − softmax(x))` (or `s·(t − σ(x))` under "
               "`softmax=1`)")
