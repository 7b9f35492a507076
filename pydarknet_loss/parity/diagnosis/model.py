"""The pieces every cause works with: one compared array (``Array``), what a
cause claims (``Claim``), and the oracle's arithmetic that causes replay
(a truth row's box deltas at a cell, the classes a cell holds, the roles of
entries, float32 saturation)."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple

import numpy as np

from .evidence import Evidence

F = np.float32
Cell = Tuple[int, int, int, int]


@dataclass
class Claim:
    """What one cause's model reproduces: a mask over the array's elements
    (where the implementation's value is what the departure gives), the
    truth rows behind each cell it names, how to say it, and the model's
    parameters (``detail``: a part, a factor...)."""

    mask: np.ndarray
    rows: Dict[Cell, Set[int]] = field(default_factory=dict)
    say: Callable[[np.ndarray], str] = lambda sel: ""
    detail: Mapping[str, Any] = field(default_factory=dict)


class Array:
    """One compared array, split per anchor (B, n, entries, H, W): darknet's
    values ``E``, the implementation's ``A`` (possibly normalised by the
    engine: re-laid out, divided by a fitted factor), the failing elements,
    darknet's rounding bound, and the evidence.

    ``E64``, ``A64`` and ``bound`` are whole float64 arrays, made when a
    model first reads them (a large delta is tens of MB in float64); the
    engine's own steps read them at the elements they need
    (``e64_at``, ``a64_at``, ``bound_at``)."""

    def __init__(self, name: str, E: np.ndarray, A: np.ndarray, fail: np.ndarray, ev: Optional[Evidence],
                 layer: Any, A64: Optional[np.ndarray] = None) -> None:
        self.name, self.E, self.A, self.fail, self.ev, self.layer = name, E, A, fail, ev, layer
        #: A64 when given or made, shared by the views with these values (with_fail)
        self._vals: Dict[str, np.ndarray] = {} if A64 is None else {"A64": A64}
        #: E64 and the bound, shared by every view of this array (with_values, with_fail)
        self._shared: Dict[str, np.ndarray] = {}
        self.coords = int(layer.coords)
        self.obj = self.coords
        self._fail_flat: Optional[np.ndarray] = None

    def known_failing(self, flat: np.ndarray) -> "Array":
        """Says that ``np.flatnonzero(self.fail)`` is ``flat`` (the caller
        has it), so that it is not found again; returns self."""
        self._fail_flat = flat
        return self

    def fail_flat(self) -> np.ndarray:
        """``np.flatnonzero(self.fail)``."""
        if self._fail_flat is None:
            self._fail_flat = np.flatnonzero(self.fail)
        return self._fail_flat

    @property
    def E64(self) -> np.ndarray:
        got = self._shared.get("E64")
        if got is None:
            got = self._shared["E64"] = self.E.astype(np.float64)
        return got

    @property
    def A64(self) -> np.ndarray:
        got = self._vals.get("A64")
        if got is None:
            got = self._vals["A64"] = self.A.astype(np.float64)
        return got

    @property
    def bound(self) -> np.ndarray:
        got = self._shared.get("bound")
        if got is None:
            got = self._shared["bound"] = self.ev.bound_for(self.name) if self.ev is not None \
                else np.zeros(self.E.shape)
        return got

    def e64_at(self, flat: np.ndarray) -> np.ndarray:
        """``E64.reshape(-1)[flat]`` without making E64."""
        got = self._shared.get("E64")
        return got.reshape(-1)[flat] if got is not None else self.E.reshape(-1)[flat].astype(np.float64)

    def a64_at(self, flat: np.ndarray) -> np.ndarray:
        """``A64.reshape(-1)[flat]`` without making A64 (when it is A's own float64)."""
        got = self._vals.get("A64")
        return got.reshape(-1)[flat] if got is not None else self.A.reshape(-1)[flat].astype(np.float64)

    def _cell_flat(self, b: int, a: int, j: int, i: int) -> np.ndarray:
        """Flat indices of every entry of one cell."""
        _, n, P, H, W = self.E.shape
        step = self._shared.get("entry_step")
        if step is None:
            step = self._shared["entry_step"] = np.arange(P, dtype=np.int64) * (H * W)
        return step + (((b * n + a) * P) * (H * W) + j * W + i)

    def a64_cell(self, b: int, a: int, j: int, i: int) -> np.ndarray:
        """``A64[b, a, :, j, i]`` without making A64."""
        got = self._vals.get("A64")
        return got[b, a, :, j, i] if got is not None else self.A[b, a, :, j, i].astype(np.float64)

    def e64_cell(self, b: int, a: int, j: int, i: int) -> np.ndarray:
        """``E64[b, a, :, j, i]`` without making E64."""
        got = self._shared.get("E64")
        return got[b, a, :, j, i] if got is not None else self.E[b, a, :, j, i].astype(np.float64)

    def bound_cell(self, b: int, a: int, j: int, i: int) -> np.ndarray:
        """``bound[b, a, :, j, i]``: the same bits, without making the whole bound
        (kept per cell: the models ask for the same cells again)."""
        got = self._shared.get("bound")
        if got is not None:
            return got[b, a, :, j, i]
        cache = self._shared.get("cell_bound")
        if cache is None:
            cache = self._shared["cell_bound"] = self._bounds_near_truths()
        key = (int(b), int(a), int(j), int(i))
        out = cache.get(key)
        if out is None:
            out = cache[key] = self.bound_at(self._cell_flat(b, a, j, i))
            out.flags.writeable = False
        return out

    def _bounds_near_truths(self) -> Dict[Cell, np.ndarray]:
        """The bound of every entry of the cells the decision models look at
        (each truth row's cell, truncated and rounded, at every anchor, and
        the cells that fail, when few), in one pass: the models then ask
        for them cell by cell."""
        ev = self.ev
        if ev is None or ev._rec is None or ev.row_cell is None or ev.row_round is None:
            return {}
        B, n, P, H, W = self.E.shape
        rows = np.flatnonzero(ev.rec["best_anchor"].reshape(-1) >= 0)
        cells = []
        for where in (ev.row_cell, ev.row_round):
            jj, ii = where.reshape(-1, 2)[rows].T
            bb = rows // where.shape[1]
            ok = (jj >= 0) & (jj < H) & (ii >= 0) & (ii < W)
            for a in range(n):
                cells.append(((bb[ok] * n + a) * H + jj[ok]) * W + ii[ok])
        failing = np.flatnonzero(self.fail.any(axis=2))
        if failing.size <= 4096:
            cells.append(failing)
        lin = np.unique(np.concatenate(cells).astype(np.int64))
        if not lin.size:
            return {}
        ba, ji = lin // (H * W), lin % (H * W)
        step = np.arange(P, dtype=np.int64) * (H * W)
        got = self.bound_at(((ba * P) * (H * W) + ji)[:, None] + step[None, :]).reshape(lin.size, P)
        got.flags.writeable = False
        keys = zip(*(v.tolist() for v in np.unravel_index(lin, (B, n, H, W))))
        return dict(zip(keys, got))  # type: ignore[arg-type]

    def a64_ix(self, ix: Tuple[Any, ...]) -> np.ndarray:
        """``A64[ix]`` (a NumPy index) without making A64."""
        got = self._vals.get("A64")
        return got[ix] if got is not None else self.A[ix].astype(np.float64)

    def e64_ix(self, ix: Tuple[Any, ...]) -> np.ndarray:
        """``E64[ix]`` without making E64."""
        got = self._shared.get("E64")
        return got[ix] if got is not None else self.E[ix].astype(np.float64)

    def bound_ix(self, ix: Tuple[Any, ...]) -> np.ndarray:
        """``bound[ix]``: the same bits, at those elements only when the whole bound is not made."""
        got = self._shared.get("bound")
        if got is not None:
            return got[ix]
        flat = flat_ix(self.E.shape, ix)
        return self.bound_at(flat.reshape(-1)).reshape(flat.shape)

    def a_values(self) -> np.ndarray:
        """A64 when made or given, else A: the same numbers (A64 is then A in float64)."""
        got = self._vals.get("A64")
        return got if got is not None else self.A

    def bound_at(self, flat: np.ndarray) -> np.ndarray:
        """``bound.reshape(-1)[flat]``: the same bits, at those elements only when the whole bound is not made."""
        got = self._shared.get("bound")
        if got is not None:
            return got.reshape(-1)[flat]
        if self.ev is None:
            return np.zeros(np.shape(flat))
        return self.ev.bound_flat(self.name, flat)

    def with_values(self, A64: np.ndarray, fail: Optional[np.ndarray] = None) -> "Array":
        """The same array with the implementation's values replaced (a
        normalised view: the models then compare darknet's arithmetic with it)."""
        if A64 is self._vals.get("A64"):
            A32 = self.A
        else:
            with np.errstate(over="ignore", invalid="ignore"):
                A32 = A64.astype(F)
        out = Array.__new__(Array)
        out.__dict__.update(self.__dict__)
        out.A = A32
        out._vals = {"A64": A64}
        if fail is not None:
            out.fail, out._fail_flat = fail, None
        return out

    def with_fail(self, fail: np.ndarray) -> "Array":
        """The same values, another set of failing elements (``with_values(A64, fail)`` without making A64)."""
        out = Array.__new__(Array)
        out.__dict__.update(self.__dict__)
        out.fail, out._fail_flat = fail, None
        return out

    def close(self, a: np.ndarray, b: np.ndarray, rel: float = 1e-4) -> np.ndarray:
        """a within rel of b, allowing darknet's own rounding."""
        with np.errstate(invalid="ignore", over="ignore"):
            return np.abs(a - b) <= rel * np.abs(b) + 4 * self.bound + 1e-30

    def cell_mask(self, cells: np.ndarray) -> np.ndarray:
        """(B, n, H, W) -> every entry of those cells."""
        return np.broadcast_to(cells[:, :, None], self.E.shape)

    def role_mask(self, entries: Sequence[int], cells: Optional[np.ndarray] = None) -> np.ndarray:
        """These entries (at these (B, n, H, W) cells): written plane by plane,
        the other planes left as np.zeros gives them (no pass over them)."""
        m = np.zeros(self.E.shape, bool)
        if cells is None:
            m[:, :, list(entries)] = True
        else:
            m[:, :, list(entries)] = np.broadcast_to(cells, self.E.shape[:2] + self.E.shape[3:])[:, :, None]
        return m

    def a_assigned(self) -> np.ndarray:
        """(B, n, H, W): cells the implementation treats as holding a truth:
        a positive class or objectness delta (only a target of 1 gives one)."""
        cls = self.A[:, :, self.coords + 1:]
        return (cls > 0).any(axis=2) | (self.A[:, :, self.obj] > 0)


def flat_ix(shape: Tuple[int, ...], ix: Tuple[Any, ...]) -> np.ndarray:
    """The flat (C-order) indices of ``a[ix]`` for an array ``a`` of this
    shape, with NumPy's own indexing rules (each axis's coordinate read
    through a zero-stride view, so nothing of the array's size is made)."""
    flat: Any = 0
    mult = 1
    for k in reversed(range(len(shape))):
        axis = np.arange(shape[k], dtype=np.int64).reshape([-1 if d == k else 1 for d in range(len(shape))])
        flat = flat + np.broadcast_to(axis, shape)[ix] * mult
        mult *= shape[k]
    return np.asarray(flat, np.int64)


def nontrivial(arr: Array) -> np.ndarray:
    return np.abs(arr.E64) > arr.bound


def rows_str(rows: Set[Tuple[int, int]], limit: int = 4) -> str:
    rs = sorted(rows)
    s = ", ".join(f"image {b} row {t}" for b, t in rs[:limit])
    return s + (f" and {len(rs) - limit} more" if len(rs) > limit else "")


def cells_str(ev: Evidence, cells: Sequence[Tuple[int, int, int, int]], limit: int = 3) -> str:
    cs = sorted(set(cells))
    s = "; ".join(ev.cell_name(c) for c in cs[:limit])
    return s + (f"; and {len(cs) - limit} more cell{'s' if len(cs) - limit > 1 else ''}" if len(cs) > limit else "")


def cells_of(mask: np.ndarray) -> List[Tuple[int, int, int, int]]:
    cells = mask.any(axis=2)
    return [tuple(c) for c in np.argwhere(cells).tolist()]  # type: ignore[misc]


def box_matches(arr: Array, b: int, a: int, j: int, i: int, target: np.ndarray) -> bool:
    """The implementation's four box deltas at a cell are those of `target`
    (three of four within 1e-4, allowing darknet's rounding) and upstream's
    are not: a match that upstream's own values share says nothing."""
    def near(v: np.ndarray) -> bool:
        return int((np.abs(v - target) <= 1e-4 * np.abs(target) + 4 * bound).sum()) >= 3
    bound = arr.bound_cell(b, a, j, i)[:4]
    return near(arr.a64_cell(b, a, j, i)[:4]) and not near(arr.e64_cell(b, a, j, i)[:4])




def box_delta_of_row(ev: Evidence, b: int, a: int, t: int, j: int, i: int) -> np.ndarray:
    """The four box deltas upstream computes for truth row t at this cell
    (what it writes before a later truth overwrites them)."""
    cache = ev.__dict__.setdefault("_box_deltas", {})  # the models ask for the same rows and cells again
    key = (int(b), int(a), int(t), int(j), int(i))
    got = cache.get(key)
    if got is None:
        got = cache[key] = _box_delta_of_row(ev, b, a, t, j, i)
    return got.copy()


def _box_delta_of_row(ev: Evidence, b: int, a: int, t: int, j: int, i: int) -> np.ndarray:
    row = ev.truth[b, t]
    H, W = ev.Y.shape[3], ev.Y.shape[4]
    scale, tw, th = _row_terms(ev, b, a, t)
    t4 = (F(row[0] * F(W) - F(i)), F(row[1] * F(H) - F(j)), tw, th)
    v = (ev.Y[b, a, 0, j, i], ev.Y[b, a, 1, j, i], ev.X[b, a, 2, j, i], ev.X[b, a, 3, j, i])
    return np.array([F(scale * F(tk - vk)) for tk, vk in zip(t4, v)], np.float64)


def _row_terms(ev: Evidence, b: int, a: int, t: int) -> Tuple[Any, Any, Any]:
    """A truth row's box scale and w, h targets on anchor a: what its box
    deltas share wherever it lands (kept: the models place a row on several cells)."""
    cache = ev.__dict__.setdefault("_row_terms", {})
    key = (int(b), int(a), int(t))
    got = cache.get(key)
    if got is not None:
        return got
    row = ev.truth[b, t]
    H, W = ev.Y.shape[3], ev.Y.shape[4]
    if ev.kind == "yolo":
        anchor = int(ev.layer.mask[a])
        size_w, size_h = F(ev.net_w), F(ev.net_h)
        scale = F(F(2) - row[2] * row[3])
    else:
        anchor = a
        size_w, size_h = F(W), F(H)
        scale = F(ev.layer.coord_scale * F(F(2) - row[2] * row[3]))
    bias = ev.layer.anchors
    with np.errstate(divide="ignore"):
        tw = F(np.log(np.float64(F(F(row[2] * size_w) / bias[2 * anchor]))))
        th = F(np.log(np.float64(F(F(row[3] * size_h) / bias[2 * anchor + 1]))))
    got = cache[key] = (scale, tw, th)
    return got


def multi(ev: Evidence) -> Dict[Tuple[int, int, int, int], List[int]]:
    """Cells and anchors given two truths or more (loop 2, plus a truth_thresh assignment)."""
    out: Dict[Tuple[int, int, int, int], List[int]] = {}
    for c, rows in ev.assigned.items():
        extra = 1 if ev.thresh_cells is not None and ev.thresh_cells[c] else 0
        if len(rows) + extra >= 2:
            out[c] = rows
    return out




def class_of(ev: Evidence, b: int, t: int) -> int:
    c = int(ev.truth[b, t, ev.coords])
    if ev.layer.map is not None:
        c = int(ev.layer.map[c])
    return c




def positive_classes(arr: Array, A: bool, c: Tuple[int, int, int, int]) -> Set[int]:
    """The classes with target 1 at a cell: upstream's from the oracle's
    record, the implementation's where its delta is nearer 1 - p than -p
    (a saturated p makes 1 - p vanish, so the sign alone would not say)."""
    b, a, j, i = c
    k0 = arr.coords + 1
    ev = arr.ev
    assert ev is not None
    if not A:
        t = ev.sel_ix("target", (b, a, slice(k0, None), j, i))
        has = ev.sel_ix("has", (b, a, slice(k0, None), j, i))
        return set(int(k) for k in np.flatnonzero(has & (t == 1)))
    ix = (b, a, slice(k0, None), j, i)
    s = np.where(ev.sel_ix("has", ix), ev.sel_ix("scale", ix), 1.0)
    got = arr.a64_cell(b, a, j, i)[k0:]
    implied = got / np.where(s == 0, 1.0, s) + ev.Y[b, a, k0:, j, i]
    # A class without a delta has no target; 1 - p with p == 1 is the one
    # target of 1 that leaves no trace, and is taken as upstream's.
    unseen = (got == 0) & (ev.Y[b, a, k0:, j, i] == 1) & ev.sel_ix("has", ix) & (ev.sel_ix("target", ix) == 1)
    return set(int(k) for k in np.flatnonzero(((got != 0) & (implied > 0.5)) | unseen))




def sigmoid32(X: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return (F(1) / (F(1) + np.exp(-X))).astype(F)


def activated(ev: Evidence, P: int) -> List[int]:
    c = ev.coords
    if ev.kind == "yolo_ab":
        return [] if ev.layer.new_coords else [0, 1, c] + list(range(c + 1, P))
    if ev.kind == "yolo":
        return [0, 1, c] + list(range(c + 1, P))
    out = [0, 1] + ([] if ev.layer.background else [c])
    if not ev.layer.softmax and ev.layer.tree is None:
        out += list(range(c + 1, P))
    return out




def _saturated(X: np.ndarray) -> np.ndarray:
    p = sigmoid32(X)
    return (p == 0) | (p == 1) | ((p * (F(1) - p)).astype(F) < F(1e-12))


def saturated_cells(ev: Evidence) -> np.ndarray:
    """Where float32 sigmoid(x) rounds to 0 or 1, or p*(1 - p) falls below
    the 1e-12 that BCE on probabilities clamps its denominator to."""
    cached = getattr(ev, "_saturated", None)
    if cached is None:
        cached = ev._saturated = _saturated(ev.X)
    return cached


def saturated_entry(ev: Evidence, e: int) -> np.ndarray:
    """``saturated_cells(ev)[:, :, e]`` (elementwise, the same values),
    computed on that entry only when the whole array's is not at hand."""
    whole = getattr(ev, "_saturated", None)
    if whole is not None:
        return whole[:, :, e]
    cache = ev.__dict__.setdefault("_saturated_entry", {})
    if e not in cache:
        cache[e] = _saturated(ev.X[:, :, e])
    return cache[e]


def role_groups(arr: Array, entries: Sequence[int]) -> List[List[int]]:
    """Entries grouped by role: x and y, the mask coords, objectness, classes."""
    c = arr.coords
    groups: Dict[str, List[int]] = defaultdict(list)
    for e in entries:
        groups["xy" if e < 2 else "wh" if e < 4 else "mask" if e < c else "obj" if e == c else "class"].append(e)
    return list(groups.values())




def ties_decided_other_way(arr: Array) -> Optional[bool]:
    """Whether the implementation ignores cells whose best IoU equals the
    threshold (upstream's '>' keeps them negative): judged on such cells
    whose objectness logit is not saturated (where a vanishing gradient
    would look the same).  None when there is no such cell."""
    ev = arr.ev
    assert ev is not None
    o = arr.obj
    tie = ~ev.e_assigned() & (ev.rec["best_iou"] == F(ev.ignore))
    negative = tie & ~saturated_entry(ev, o) & (arr.E[:, :, o] != 0)
    if not negative.any():
        return None
    return bool((negative & (arr.A[:, :, o] == 0)).sum() >= 0.9 * negative.sum())




def role_name(arr: Array, e: int) -> str:
    if getattr(arr.layer, "kind", None) == "detection":  # per cell: classes, confidences, boxes
        from ..more_layers import names
        name = names(arr.layer)[e]
        return "class" if name.startswith("class ") else name
    c = arr.coords
    entries = getattr(arr.layer, "ENTRY_NAMES", None)  # [Gaussian_yolo]: x, sigma_x, y, ... objectness
    if entries is not None:
        return entries[e] if e < len(entries) else "class"
    if e < 4:
        return "xywh"[e]
    if e < c:
        return f"mask{e - 4}"
    if e == c:
        return "objectness"
    return "class"




# ---- what a cause is -------------------------------------------------------------------

#: Where in the engine a cause's model runs: ``exact`` (another darknet's
#: values bit for bit, before anything else), ``tolerance`` (darknet's own
#: rounding), ``layout`` (the array re-laid out), ``factor`` (a factor on
#: the whole array or on one part: fitted per part by the engine),
#: ``decision`` (a departure from one of darknet's decisions, replayed with
#: its arithmetic, on the values with the fitted factors taken out),
#: ``output`` (the output array), ``residual`` (what no model reproduces).
STAGES = ("exact", "tolerance", "layout", "factor", "decision", "output", "residual")
Model = Callable[[Array], Optional[Claim]]


@dataclass(frozen=True)
class CauseSpec:
    """One cause: its code, what the implementation did, how the engine
    recognises it, the parts it may claim, where it runs and (for
    ``decision`` and ``output`` causes) its model: ``model(arr)`` returns
    the elements where darknet's computation with this one departure gives
    the implementation's values, or None."""

    code: str
    summary: str
    recognised: str
    parts: Tuple[str, ...]
    stage: str
    model: Optional[Model] = None
    kinds: Tuple[str, ...] = ("yolo", "region", "yolo_ab")
    aliases: Tuple[str, ...] = ()
    #: whether the model needs the oracle's run on the input (most do); one
    #: that reads darknet's and your values alone also runs without it
    needs_evidence: bool = True

    def __post_init__(self) -> None:
        assert self.stage in STAGES, self.stage
        assert (self.model is not None) == (self.stage in ("exact", "decision", "output")), self.code
