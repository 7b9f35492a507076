"""class_target: another class positive (ids off by one, a map applied or not), or smoothed targets."""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

from ..model import Array, CauseSpec, Claim, cells_of, cells_str, multi


def _targets(arr: Array, shared: bool = False) -> Tuple[Tuple[np.ndarray, ...], np.ndarray, np.ndarray, np.ndarray]:
    """The cells given a truth whose classes fail, as index arrays (b, a,
    row, col) -- one truth only unless ``shared`` --; darknet's class
    targets, scales and outputs there (K, classes)."""
    ev = arr.ev
    assert ev is not None and ev.has_selection
    k0 = arr.coords + 1
    cells = ev.e_assigned() & arr.fail[:, :, k0:].any(axis=2)
    if not shared:
        for c in multi(ev):  # a shared cell's classes are the short-circuit's business
            cells[c] = False
    idx = np.nonzero(cells)
    b, a, j, i = idx
    ix = (b, a, slice(k0, None), j, i)
    t = np.nan_to_num(ev.sel_ix("target", ix), nan=0.0)
    sc = ev.sel_ix("scale", ix)
    s = np.where(ev.sel_ix("has", ix), sc, np.nan)
    y = ev.Y[b, a, k0:, j, i].astype(np.float64)
    return idx, t, s, y


def class_target(arr: Array) -> Optional[Claim]:
    """At cells given one truth: the implementation's classes are
    s·(t' − p) for t' darknet's one-hot target moved by one class (an id
    off by one), or t' = a·t + b (smoothed: positives a + b, the rest b)."""
    ev = arr.ev
    if ev is None or not ev.has_selection or ev.kind not in ("yolo", "region"):
        return None
    k0 = arr.coords + 1
    # Every cell given a truth: a class id moved by one moves the positives of
    # a cell two truths share too (their short-circuit kept as darknet has it).
    idx, t, s, y = _targets(arr, shared=True)
    if not idx[0].size:
        return None
    b, a, j, i = idx
    A = arr.a64_ix((b, a, slice(k0, None), j, i))
    bound = 4 * arr.bound_ix((b, a, slice(k0, None), j, i))
    fb = np.ones(A.shape, bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        implied = A / s + y  # the target the implementation's value implies
    best: Optional[Tuple[int, np.ndarray, Dict[str, float]]] = None
    cands = []
    for d in (1, -1):
        td = np.zeros_like(t)
        if d > 0:
            td[:, d:] = t[:, :-d]
        else:
            td[:, :d] = t[:, -d:]
        cands.append((td, {"shift": float(d)}))
        # the same, an id past either end wrapping around (id % classes)
        cands.append((np.roll(t, d, axis=1), {"shift": float(d), "wrap": 1.0}))
    pos, neg = fb & (t == 1), fb & (t == 0)
    if pos.any() and neg.any():
        a_b, q = float(np.nanmedian(implied[pos])), float(np.nanmedian(implied[neg]))
        if np.isfinite(a_b) and np.isfinite(q) and (abs(a_b - 1) > 1e-4 or abs(q) > 1e-6) and a_b > q:
            cands.append(((a_b - q) * t + q, {"positive": a_b, "negative": q}))
    for td, detail in cands:
        pred = s * (td - y)
        ok = np.abs(A - pred) <= 1e-4 * np.abs(pred) + bound + 1e-30
        cell_ok = (ok | ~np.isfinite(s)).all(axis=1)
        n = int(cell_ok.sum())
        if n and (best is None or n > best[0]):
            best = (n, cell_ok, detail)
    if best is None:
        return None
    _, cell_ok, detail = best
    cells = np.zeros(arr.E.shape[:2] + arr.E.shape[3:], bool)
    cells[b[cell_ok], a[cell_ok], j[cell_ok], i[cell_ok]] = True
    mask = arr.role_mask(range(k0, arr.E.shape[2]), cells) & arr.fail

    def say(sel: np.ndarray) -> str:
        where = cells_str(ev, cells_of(sel))
        if "shift" in detail:
            d = int(detail["shift"])
            return (f"at {where} the implementation's positive class is darknet's {'+' if d > 0 else '-'}1: class "
                    "ids off by one (a 1-based id, a background class counted first, or a class map applied "
                    "twice or not at all). Darknet uses the truth's class id as is (after the layer's map, if any).")
        p, q = detail["positive"], detail["negative"]
        eps = 1 - p + q
        return (f"the implementation's class targets are {p:.6g} for the truth's class and {q:.6g} for the others "
                f"(label smoothing, about eps = {eps:.4g}) at {where}; this darknet uses 1 and 0. Drop the "
                "smoothing (AlexeyAB's label_smooth_eps is another layer).")
    return Claim(mask, say=say, detail=detail)


CAUSE = CauseSpec(
    code="class_target", stage="decision", model=class_target, kinds=("yolo", "region"),
    parts=("classes.positive", "classes.negative"),
    summary="another class positive (ids off by one, a map applied or not), or smoothed targets (ε named)",
    recognised="at a cell given one truth, every class is `s·(t′ − p)` with t′ darknet's one-hot moved by one "
               "class, or `a·t + b`")
