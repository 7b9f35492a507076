"""Darknet's parts of a delta, from the oracle's record, and the relation
that fits the implementation's values on each part.

Every element of a delta belongs to one part: the box entries (x, y, w, h,
[region]'s mask coords) of a cell given a truth; objectness at such a cell
(positive), at another cell with a delta (negative) or where the ignore
test leaves it 0 (ignored); the classes of a cell given a truth (the
positive ones, the others); [region]'s prior box deltas (``seen < 12800``);
and entries darknet gives no delta.

The relation of a part says how the implementation's values relate to
darknet's there, fitted on the part's elements whose darknet value stands
out of its rounding: ``equal``, ``×k`` (one factor; ``negated`` for -1),
``×σ′`` / ``÷σ′`` (times or divided by p(1 - p) of that element's
activated output, with a factor), ``zero``, or ``other``.  A relation holds
when at least 90 % of those elements follow it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .evidence import cell_index
from .model import Array, activated

#: Part names, in the order of their ids.
PARTS: Tuple[str, ...] = ("none", "box.x", "box.y", "box.w", "box.h", "box.mask", "objectness.positive",
                          "objectness.negative", "objectness.ignored", "classes.positive", "classes.negative",
                          "prior")
PART_ID: Dict[str, int] = {p: k for k, p in enumerate(PARTS)}
#: Fine part -> the coarse group a whole-array factor must span two of.
GROUP: Dict[str, str] = {p: p.split(".")[0] for p in PARTS}
#: Share of a part's telling elements a relation must hold on.
HOLDS = 0.9


@dataclass(frozen=True)
class PartRow:
    """One part of the delta: how many elements, how many fail, and the
    relation that fits the implementation's values there (``factor`` is k
    for ``×k``, the constant c of ``c·σ′`` and ``c/σ′``)."""

    part: str
    elements: int
    failing: int
    relation: str
    factor: Optional[float] = None
    telling: int = 0  #: elements whose darknet value stands out of its rounding (what the fit looks at)
    #: AlexeyAB's layer: (cells, elements, failing) of this part at the cells
    #: only an ``iou_thresh`` anchor assigns, and at the cells two writes or
    #: more accumulate (``"iou_thresh anchors"``, ``"accumulated"``)
    cells: Tuple[Tuple[str, int, int], ...] = ()

    @property
    def note(self) -> str:
        """The breakdown over those cells, e.g. ``iou_thresh anchors: 30 of 32 fail``."""
        return "; ".join(f"{label}: {failing} of {n} fail" for label, n, failing in self.cells)

    @property
    def relation_text(self) -> str:
        """The relation with its factor: ``equal``, ``×2``, ``negated``, ``×1·σ′``..."""
        if self.factor is None or self.relation == "negated":
            return self.relation
        if self.relation == "×k":
            return f"×{self.factor:.6g}"
        return f"{self.relation[0]}{self.factor:.6g}·σ′"

    def __str__(self) -> str:
        return f"{self.part}: {self.failing} of {self.elements} fail, {self.relation_text}"


def part_ids(arr: Array) -> np.ndarray:
    """(B, n, entries, H, W) int8: every element's part id (see ``PARTS``)."""
    ev = arr.ev
    assert ev is not None
    shape = arr.E.shape
    co = arr.coords
    ids = np.zeros(shape, np.int8)
    if ev.sel is None:  # AlexeyAB's layer: no record, parts from darknet's values
        assigned = (arr.E[:, :, :4] != 0).any(axis=2)
        has = arr.E != 0
        target_one = arr.E > 0
    else:
        assigned = ev.e_assigned()
        has = ev.sel.has
        target_one = ev.sel.target == 1
    cell = np.broadcast_to(assigned[:, :, None], shape)
    entry = np.broadcast_to(np.arange(shape[2])[None, None, :, None, None], shape)
    for k, name in enumerate(("box.x", "box.y", "box.w", "box.h")):
        ids[(entry == k) & cell] = PART_ID[name]
    ids[(entry >= 4) & (entry < co) & cell] = PART_ID["box.mask"]
    if ev.kind == "region":
        ids[(entry < co) & ~cell & has] = PART_ID["prior"]
    obj = entry == co
    ids[obj & cell] = PART_ID["objectness.positive"]
    ids[obj & ~cell & has & (arr.E != 0)] = PART_ID["objectness.negative"]
    ids[obj & ~cell & ~(has & (arr.E != 0))] = PART_ID["objectness.ignored"]
    cls = entry > co
    ids[cls & cell & has & target_one] = PART_ID["classes.positive"]
    ids[cls & cell & has & ~target_one] = PART_ID["classes.negative"]
    return ids


def part_where(arr: Array) -> Dict[int, np.ndarray]:
    """``part_indices(part_ids(arr))`` (part id -> the flat indices of its
    elements, ascending; every part but "none"), built from the cells
    darknet assigns and the few entries that decide a part, without a
    whole-array pass: a part is a set of cells times a set of entries."""
    ev = arr.ev
    assert ev is not None
    B, n, P, H, W = arr.E.shape
    HW = H * W
    co = arr.coords
    E = arr.E
    if not ev.has_selection:  # AlexeyAB's layer: no record, parts from darknet's values
        assigned = (E[:, :, :4] != 0).any(axis=2)
        scale = target = None
    else:
        assigned = ev.e_assigned()
        scale, target = ev.scale32, ev.target32
        if scale is None or target is None:  # an evidence made with its selection, without the forward's call
            assert ev.sel is not None
            scale, target = ev.sel.scale, ev.sel.target

    def has_at(e: int) -> np.ndarray:  # (B, n, H, W): entry e has a term
        return E[:, :, e] != 0 if scale is None else ~np.isnan(scale[:, :, e])

    def flat_of(cells: np.ndarray, entries: Sequence[int]) -> np.ndarray:
        """Flat indices of these entries at the cells of a (B, n, H, W) mask, ascending."""
        c = np.flatnonzero(cells)
        base = (c // HW) * (P * HW) + c % HW
        if len(entries) == 1:
            return base + entries[0] * HW
        return np.sort((base[:, None] + np.asarray(entries, np.int64)[None, :] * HW).reshape(-1))

    out: Dict[int, np.ndarray] = {}

    def put(name: str, idx: np.ndarray) -> None:
        if idx.size:
            out[PART_ID[name]] = idx

    for k, name in enumerate(("box.x", "box.y", "box.w", "box.h")):
        put(name, flat_of(assigned, [k]))
    if co > 4:
        put("box.mask", flat_of(assigned, list(range(4, co))))
    if ev.kind == "region":
        put("prior", np.sort(np.concatenate([flat_of(~assigned & has_at(e), [e]) for e in range(co)])))
    put("objectness.positive", flat_of(assigned, [co]))
    neg = has_at(co) & (E[:, :, co] != 0)
    put("objectness.negative", flat_of(~assigned & neg, [co]))
    put("objectness.ignored", flat_of(~assigned & ~neg, [co]))
    if P > co + 1:
        cls = flat_of(assigned, list(range(co + 1, P)))
        if scale is None:
            e = E.reshape(-1)[cls]
            has, one = e != 0, e > 0
        else:
            has, one = ~np.isnan(scale.reshape(-1)[cls]), target.reshape(-1)[cls] == 1
        put("classes.positive", cls[has & one])
        put("classes.negative", cls[has & ~one])
    return dict(sorted(out.items()))


class SigmaPrime:
    """p(1 - p) of darknet's activated output, computed where asked
    (``sig[mask]`` for a boolean mask of the delta's shape): NaN for entries
    upstream leaves raw.  Never the whole array at once."""

    def __init__(self, arr: Array) -> None:
        ev = arr.ev
        assert ev is not None
        self.Y = ev.Y
        self.act = np.zeros(self.Y.shape[2], bool)
        self.act[activated(ev, self.Y.shape[2])] = True

    def __getitem__(self, mask: np.ndarray) -> np.ndarray:
        return self.at(np.flatnonzero(mask))

    def at(self, flat: np.ndarray) -> np.ndarray:
        """At flat indices into the (B, n, entries, H, W) array."""
        y = self.Y.reshape(-1)[flat].astype(np.float64)
        out = y * (1 - y)
        entry = (flat // (self.Y.shape[3] * self.Y.shape[4])) % self.Y.shape[2]
        out[~self.act[entry]] = np.nan
        return out


def sigma_prime(arr: Array) -> SigmaPrime:
    """p(1 - p) of darknet's activated output at every element, on demand."""
    return SigmaPrime(arr)


def part_indices(ids: np.ndarray) -> Dict[int, np.ndarray]:
    """Part id -> the flat indices of its elements (every part but "none"),
    with one scan of the array."""
    flat = ids.reshape(-1)
    nz = np.flatnonzero(flat)
    pid = flat[nz]
    order = np.argsort(pid, kind="stable")
    counts = np.bincount(pid, minlength=len(PARTS))
    chunks = np.split(nz[order], np.cumsum(counts)[:-1])
    return {k: c for k, c in enumerate(chunks) if k and c.size}


def fit(arr: Array, ids: np.ndarray, todo: np.ndarray, sig: SigmaPrime,
        where: Optional[Dict[int, np.ndarray]] = None) -> List[PartRow]:
    """The relation of the implementation's values to darknet's on each
    part (``where``: :func:`part_indices` of ``ids``, when the caller has it)."""
    where = part_indices(ids) if where is None else where
    fail, tod = arr.fail.reshape(-1), todo.reshape(-1)
    ab_cells = _ab_cells(arr)
    rows: List[PartRow] = []
    for pid, name in enumerate(PARTS):
        idx = where.get(pid)
        if name == "none" or idx is None:
            continue
        e, a, b = arr.e64_at(idx), arr.a64_at(idx), arr.bound_at(idx)
        with np.errstate(invalid="ignore", over="ignore"):
            tell = np.isfinite(e) & (np.abs(e) > 4 * b)
        bad = tod[idx]
        relation, factor = _relation(e, a, b, tell, bad, lambda m, idx=idx: sig.at(idx[m])) if bad.any() \
            else ("equal", None)
        rows.append(PartRow(name, int(idx.size), int(fail[idx].sum()), relation, factor, int(tell.sum()),
                            _at_cells(ab_cells, arr.E.shape, idx, fail)))
    rows.append(_none_row(arr, where, fail, rows))
    return rows


def _ab_cells(arr: Array) -> List[Tuple[str, np.ndarray]]:
    """AlexeyAB's layer: the (B, n, H, W) cells only an ``iou_thresh``
    anchor assigns (not a row's best anchor, not the truth_thresh branch),
    and the cells written twice or more (ab_record.c's count of loop 1's
    branch and loop 2's writes), as flat cell masks."""
    ev = arr.ev
    if ev is None or ev.kind != "yolo_ab":
        return []
    from .evidence import ab_record
    rec = ab_record(ev)
    if rec is None:
        return []
    writes = rec["writes"]
    extra = np.zeros(writes.shape, bool)
    best = rec["best_iou_all"].astype(np.float32) > np.float32(ev.layer.truth_thresh)  # loop 1's branch
    for b, t in np.argwhere(rec["row_status"] == 0):
        i, j = int(rec["row_i"][b, t]), int(rec["row_j"][b, t])
        for a in np.flatnonzero(rec["extra"][b, t]):
            extra[b, a, j, i] = True
        if rec["best_in_mask"][b, t] >= 0:
            best[b, int(rec["best_in_mask"][b, t]), j, i] = True
    return [("iou_thresh anchors", (extra & ~best).reshape(-1)), ("accumulated", (writes >= 2).reshape(-1))]


def _at_cells(ab_cells: List[Tuple[str, np.ndarray]], shape: Tuple[int, ...], idx: np.ndarray,
              fail: np.ndarray) -> Tuple[Tuple[str, int, int], ...]:
    """A part's elements and failures at each of those cell sets, where it
    has any (``shape``: the (B, n, entries, H, W) array's)."""
    if not ab_cells or not idx.size:
        return ()
    cell = cell_index(idx, shape)
    out = []
    for label, cells in ab_cells:
        at = cells[cell]
        if at.any():
            out.append((label, int(at.sum()), int(fail[idx[at]].sum())))
    return tuple(out)


def _none_row(arr: Array, where: Dict[int, np.ndarray], fail: np.ndarray, rows: List[PartRow]) -> PartRow:
    """The entries darknet gives no delta (e.g. the box and classes of a
    cell it does not assign, a truth row read past x == 0): their count
    and failures from the other parts' (no pass over the array unless some
    fail); darknet's value there is 0, so a failing one is "other" (a
    value where darknet has none), never a factor."""
    n_none = fail.size - sum(r.elements for r in rows)
    n_fail = int(np.count_nonzero(fail)) - sum(r.failing for r in rows)
    if n_fail <= 0:
        return PartRow("none", n_none, 0, "equal")
    in_part = np.zeros(fail.size, bool)
    for idx in where.values():
        in_part[idx] = True
    a = arr.a64_at(np.flatnonzero(fail & ~in_part))  # A64's values there, without making A64
    return PartRow("none", n_none, n_fail, "zero" if (a == 0).mean() >= HOLDS else "other")


def _relation(e: np.ndarray, a: np.ndarray, b: np.ndarray, tell: np.ndarray, bad: np.ndarray,
              sig: Callable[[np.ndarray], np.ndarray],
              forms: Optional[Sequence[str]] = None) -> Tuple[str, Optional[float]]:
    """The relation on one part's elements (1-D: darknet's values, yours,
    the bound, which are telling, which fail; ``sig(mask)``: p(1 - p) there)."""
    E, A = e[tell], a[tell]
    fb = bad & tell
    if not fb.any():
        zero = (a[bad] == 0).mean() >= HOLDS
        return ("zero" if zero else "other"), None
    bound = 4 * b[tell]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        # A constant factor needs two elements or more to say anything (-1,
        # the sign, has no free parameter); a p(1 - p) form's factor c is a
        # prediction even on one element (1, 2 or 1/2), and is tried first
        # there.
        if forms is None:
            forms = ["k", "×σ′", "÷σ′"] if E.size >= 2 else ["×σ′", "÷σ′", "k"]
        for form in forms:
            if form == "k":
                r = np.median(a[fb] / e[fb])
                if not (np.isfinite(r) and r != 0 and (E.size >= 2 or abs(r + 1) <= 1e-5)):
                    continue
                ok = np.abs(A - r * E) <= 1e-5 * np.abs(r * E) + bound * max(1.0, abs(r))
                if ok.mean() >= HOLDS:
                    if abs(r - 1) <= 1e-5:
                        return "equal", None
                    snapped = _round_factor(float(r))
                    if not _simple(float(r)) and form == forms[0]:
                        # an odd constant (5e-28, 1.7e-4) on a part whose few
                        # telling elements share one p(1 - p): the chain with a
                        # simple c, when it fits, is the reading
                        alt = _relation(e, a, b, tell, bad, sig, forms=("×σ′", "÷σ′"))
                        if alt[0] in ("×σ′", "÷σ′") and alt[1] in (1.0, 2.0, 0.5):
                            return alt
                    return ("negated" if snapped == -1 else "×k"), snapped
                continue
            s = sig(tell)
            g = s if form == "×σ′" else 1 / s
            sb = sig(fb) if form == "×σ′" else 1 / sig(fb)
            q = a[fb] / (e[fb] * sb)
            q = q[np.isfinite(q)]
            c = np.median(q) if q.size else np.nan
            if not np.isfinite(c) or c == 0:
                continue
            c = _round_factor(float(c))
            if E.size < 2 and c not in (1.0, 2.0, 0.5):
                continue
            pred = c * g * E
            ok = np.abs(A - pred) <= 1e-3 * np.abs(pred) + bound * np.maximum(1.0, np.abs(c * g)) + 1e-30
            if np.mean(np.where(np.isfinite(pred), ok, False)) >= HOLDS and \
                    not np.allclose(pred, E, rtol=1e-5, atol=0):
                return form, c
    if (a[bad] == 0).mean() >= HOLDS:
        return "zero", None
    return "other", None


_SIMPLE = [float(v) for v in range(-16, 17) if v] + [1 / v for v in range(2, 129)] + \
    [-1 / v for v in range(2, 129)] + [v / 2 for v in range(1, 33, 2)]


def _simple(k: float) -> bool:
    """Whether k is a simple value (1/n, n, n/2) within 1e-5."""
    return any(abs(k - cand) <= 1e-5 * abs(cand) for cand in _SIMPLE)


def _round_factor(k: float) -> float:
    """A fitted factor, snapped to a simple value (1/n, n, n/2) when within 1e-5."""
    for cand in _SIMPLE:
        if abs(k - cand) <= 1e-5 * abs(cand):
            return cand
    return k
