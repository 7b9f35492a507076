"""The diagnosis engine: every failing element is given the cause whose
model reproduces the implementation's value there.

A cause is a model: one departure applied to darknet's own computation on
the same input.  It claims an element only where that reproduces the
implementation's value, within darknet's rounding.  The steps, per array:

1. ``float_rounding``: elements within darknet's own rounding bound.
2. ``layout``: when the buffer read in another memory order agrees with
   darknet's on most elements, the array is re-laid out; the re-laid
   elements that then agree are the layout's, the rest go on.
3. Factors, fitted per part (``parts``): one factor on the whole array
   (``sign``, ``scale``: seen on two part groups or more, none unchanged),
   a constant on one part (``weight``), p(1 - p) on one part (``chain``).
   Each claims the elements its factor reproduces.
4. Decisions (``decision`` causes): each model replays one of darknet's
   decisions differently (rows read, cells, anchors, the ignore test...)
   and claims where the implementation's values, with the fitted factors
   taken out, are what that gives; then once more on the values as they
   are.  So a departure combined with a factor (a layout, a sign, a batch
   mean, a part weight) is still named.
5. The report is the smallest set of models found: the model claiming the
   most elements not yet claimed is taken first, then the next; another
   model that reproduces (almost) the same elements is listed with it as
   an alternative.  What no model reproduces is ``unexplained``.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from collections.abc import Sequence as SequenceABC
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Set, Tuple

import numpy as np

from ... import _buffers
from .causes import _factors, float_rounding, layout, unexplained
from .evidence import Evidence, cell_index
from .model import Array, CauseSpec, Claim
from .parts import PartRow, fit, part_where, sigma_prime
from .registry import BY_CODE, REGISTRY

#: Share of a cause's elements another model must reproduce to be shown as its alternative.
ALTERNATIVE = 0.9
#: Failing elements above which the search is bounded (see _candidates).
LARGE = 20000


@dataclass(frozen=True)
class Cause:
    """One reason elements differ.  ``cells`` are (image, mask_index, row,
    col), ``truth_rows`` (image, row) of the truth buffer; ``detail`` the
    model's parameters (a part and factor for ``weight``...);
    ``alternatives`` other causes whose models reproduce the same elements
    on this input."""

    code: str
    count: int
    truth_rows: Tuple[Tuple[int, int], ...]
    cells: Sequence[Tuple[int, int, int, int]]  #: a tuple, or ``Cells`` (made into tuples when read)
    message: str
    arrays: Tuple[Tuple[str, int], ...] = ()  #: (array name, elements) pairs
    detail: Mapping[str, Any] = field(default_factory=dict)
    alternatives: Tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.code} ({self.count} element{'s' if self.count != 1 else ''}): {self.message}"


#: Cause codes by number, as ``Diagnosis.index`` stores them ("" = passes).
CODES: Tuple[str, ...] = ("",) + tuple(c.code for c in REGISTRY)
_CODE_NUMBER = {c: k for k, c in enumerate(CODES)}


@dataclass
class Diagnosis:
    """Per array, each element's cause as a number into ``CODES`` (0 where
    it passes: a uint8 array, not a str array of the delta's size); the
    causes; the delta's parts table."""

    index: Dict[str, np.ndarray]
    causes: List[Cause]
    parts: List[PartRow] = field(default_factory=list)

    @property
    def codes(self) -> Dict[str, np.ndarray]:
        """Per array, each element's cause code ('' where it passes), as str arrays."""
        table = np.array(CODES, dtype=object)
        return {k: table[v] for k, v in self.index.items()}


Candidate = Tuple[str, Claim]


def _decisions(arr: Array, kind: str, stage: str) -> List[CauseSpec]:
    return [c for c in REGISTRY if c.stage == stage and kind in c.kinds]


class _Failing:
    """The failing elements of one array as flat indices (ascending): the
    engine's own bookkeeping (what is left, what each model claims, the
    set cover) works on these alone, and a model's whole-array mask is
    read there only, so that a large delta with few failing elements costs
    those elements, not passes over the whole array."""

    def __init__(self, arr: Array) -> None:
        self.shape = arr.fail.shape
        self.flat = arr.fail_flat()
        self._ix: Optional[Tuple[np.ndarray, ...]] = None

    def at(self, mask: np.ndarray) -> np.ndarray:
        """A whole-array mask (or one that broadcasts to it) at the failing elements."""
        m = np.asarray(mask)
        if m.shape == self.shape and m.flags.c_contiguous:
            out = m.reshape(-1)[self.flat]
        else:  # a broadcast view (a cell mask): read through it, nothing of the array's size is made
            if self._ix is None:
                self._ix = np.unravel_index(self.flat, self.shape)
            out = np.broadcast_to(m, self.shape)[self._ix]
        return out if out.dtype == bool else out.astype(bool)

    def full(self, sel: np.ndarray) -> np.ndarray:
        """The whole-array mask of some failing elements (a bool array over ``flat``)."""
        out = _buffers.empty(self.shape, bool)  # recycled pages: a fresh mask this size is mostly page faults
        out.fill(False)
        out.reshape(-1)[self.flat[sel]] = True
        return out


#: A candidate: the cause's code, its model's claim, and the elements it
#: claims among those still to explain (a bool array over the failing ones).
Found = Tuple[str, Claim, np.ndarray]


def _run(spec: CauseSpec, arr: Array, space: _Failing, left: np.ndarray) -> Optional[Found]:
    assert spec.model is not None
    claim = spec.model(arr)
    if claim is None:
        return None
    mask = space.at(claim.mask) & left
    if not mask.any():
        return None
    return spec.code, claim, mask


def _candidates(arr: Array, ev: Optional[Evidence], todo: np.ndarray, space: _Failing, left: np.ndarray,
                parts_out: List[PartRow]) -> List[Found]:
    out: List[Found] = []
    arr = arr.with_fail(todo)  # the models look at what is still to explain

    def add(claims: Sequence[Candidate]) -> None:
        for code, claim in claims:
            out.append((code, claim, space.at(claim.mask) & left))

    if ev is None or arr.name != "delta":
        add(_factors.values_only(arr, todo).claims)
        kind = getattr(arr.layer, "kind", "")
        for spec in REGISTRY:  # models that need no oracle run (e.g. [Gaussian_yolo]'s)
            if spec.stage == "decision" and not spec.needs_evidence and kind in spec.kinds:
                c = _run(spec, arr, space, left)
                if c is not None:
                    out.append(c)
        if ev is not None and arr.name == "output":
            for spec in _decisions(arr, ev.kind, "output"):
                c = _run(spec, arr, space, left)
                if c is not None:
                    out.append(c)
        return out
    where = part_where(arr)
    sig = sigma_prime(arr)
    rows = fit(arr, None, todo, sig, where)
    parts_out.extend(rows)
    factors = _factors.fit(arr, where, rows, todo, sig)
    add(factors.claims)
    specs = _decisions(arr, ev.kind, "decision")
    # The search's bound: on a large array whose failing elements the factor
    # models reproduce every one of, the decisions are not replayed (they
    # could only add alternatives there, at the cost of whole-array passes).
    if factors.claims and int(left.sum()) > LARGE:
        covered = np.zeros_like(left)
        for _, _, m in out:
            covered |= m
        if not (left & ~covered).any():
            return out
    views = [arr]
    assert factors.f is not None
    for fac in (factors.f_group, factors.f):
        if fac is None or fac.is_one() or (fac is factors.f_group and fac.equals(factors.f)):
            continue
        dense = fac.dense()
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            f = np.where(np.isfinite(dense) & (dense != 0), dense, 1.0)
            views.insert(0, arr.with_values(arr.A64 / f, fail=todo))
    for view in views:
        for spec in specs:
            c = _run(spec, view, space, left)
            if c is not None:
                out.append(c)
    return out


def _cover(cands: List[Found], todo: np.ndarray) -> List[Tuple[str, np.ndarray, Claim, Tuple[str, ...]]]:
    """Greedy set cover: the model reproducing the most unclaimed elements
    first (registry order breaks ties), with the other models that
    reproduce its elements as alternatives.  ``todo`` and the candidates'
    masks are over the failing elements (``_Failing``)."""
    # Ties: a decision's model (it replays darknet's arithmetic) before a
    # fitted factor, then the registry's order.
    order = {c.code: k + (0 if c.stage == "decision" else len(REGISTRY)) for k, c in enumerate(REGISTRY)}
    left = todo.copy()
    chosen = []
    counts = [int(m.sum()) for _, _, m in cands]
    while left.any():
        best, best_n = None, 0
        for k, (code, claim, m) in enumerate(cands):
            if counts[k] < best_n:  # '<': a tie is still weighed by the order below
                continue
            n = int(np.count_nonzero(m & left))
            counts[k] = n
            if n > best_n or (n == best_n and best is not None and order[code] < order[cands[best][0]]):
                best, best_n = k, n
        if best is None or best_n == 0:
            break
        code, claim, m = cands[best]
        sel = m & left
        alts = sorted({c for c, _, other in cands
                       if c != code and np.count_nonzero(other & sel) >= ALTERNATIVE * best_n},
                      key=lambda c: order[c])
        chosen.append((code, sel, claim, tuple(alts)))
        left &= ~sel
    return chosen


@dataclass
class _Taken:
    """Elements one cause took in one array: ``sel`` over ``space``'s failing elements."""

    array: str
    space: _Failing
    sel: np.ndarray
    claim: Claim


def diagnose(arrays: Sequence[Array], ev: Optional[Evidence]) -> Diagnosis:
    codes: Dict[str, np.ndarray] = {}
    items: Dict[str, List[_Taken]] = defaultdict(list)
    alternatives: Dict[str, Set[str]] = defaultdict(set)
    parts: List[PartRow] = []
    for arr in arrays:
        space = _Failing(arr)
        flat = space.flat
        code = np.zeros(flat.size, np.uint8)  # each failing element's cause number
        left = np.ones(flat.size, bool)  # the failing elements still to explain
        todo = _buffers.empty(arr.fail.shape, bool)  # the same, over the whole array (the models and the
        np.copyto(todo, arr.fail)                    # factor fits read it)

        def take(name: str, sel: np.ndarray, claim: Claim) -> None:
            code[sel] = _CODE_NUMBER[name]
            items[name].append(_Taken(arr.name, space, sel, claim))
            left[sel] = False
            todo.reshape(-1)[flat[sel]] = False

        if ev is not None and left.any():
            for spec in _decisions(arr, ev.kind, "exact"):
                c = _run(spec, arr, space, left)
                if c is not None:
                    take(spec.code, c[2], c[1])
        if ev is not None and left.any():
            at = flat[left]  # darknet's own rounding, at the failing elements
            with np.errstate(invalid="ignore"):  # inf - inf where both are infinite
                within = np.abs(arr.a64_at(at) - arr.e64_at(at)) <= arr.bound_at(at)
            sel = np.zeros(flat.size, bool)
            sel[np.flatnonzero(left)[within]] = True
            if sel.any():
                take("float_rounding", sel, Claim(sel, say=lambda s, a=arr: float_rounding.message(a, s)))
        work = arr
        relaid = layout.relayout(arr, todo) if left.any() else None
        if relaid is not None:
            name, A64 = relaid
            work = arr.with_values(A64)
            at = flat[left]
            with np.errstate(invalid="ignore", over="ignore"):  # Array.close, at those elements
                e = arr.e64_at(at)
                ok = np.abs(A64.reshape(-1)[at] - e) <= 1e-6 * np.abs(e) + 4 * arr.bound_at(at) + 1e-30
            sel = np.zeros(flat.size, bool)
            sel[np.flatnonzero(left)[ok]] = True
            if sel.any():
                take("layout", sel, Claim(sel, say=lambda s, n=name: layout.message(n), detail={"layout": name}))
        if left.any():
            arr_parts: List[PartRow] = []
            cands = _candidates(work, ev, todo, space, left, arr_parts)
            if arr.name == "delta":
                parts = arr_parts
            for name, sel, claim, alts in _cover(cands, left):
                take(name, sel, claim)
                alternatives[name].update(alts)
        if left.any():
            sel = left.copy()
            relations = ", ".join(f"{r.part} {r.relation}" for r in parts if r.failing) if arr.name == "delta" else ""
            take("unexplained", sel, Claim(sel, say=lambda s, a=work, r=relations: unexplained.message(a, ev, s, r)))
        whole = np.zeros(arr.E.shape, np.uint8)
        whole.reshape(-1)[flat] = code
        codes[arr.name] = whole
    return Diagnosis(index=codes, causes=_causes(items, alternatives), parts=parts)


class Cells(SequenceABC):
    """A cause's cells, (image, mask_index, row, col) tuples in ascending
    linear order: a tuple's behaviour (len, indexing, iteration, equality
    with a tuple), made into Python tuples only when first read, so that a
    cause holding a whole grid of cells costs nothing until one looks."""

    __slots__ = ("_lin", "_shape", "_tuple")

    def __init__(self, lin: np.ndarray, shape: Tuple[int, ...]) -> None:
        self._lin, self._shape = lin, shape
        self._tuple: Optional[Tuple[Tuple[int, int, int, int], ...]] = None

    def _cells(self) -> Tuple[Tuple[int, int, int, int], ...]:
        if self._tuple is None:
            axes = np.unravel_index(self._lin, self._shape)
            self._tuple = tuple(zip(*(ax.tolist() for ax in axes)))  # type: ignore[arg-type]
        return self._tuple

    def __len__(self) -> int:
        return int(self._lin.size)

    def __bool__(self) -> bool:
        return bool(self._lin.size)

    def __getitem__(self, k: Any) -> Any:
        return self._cells()[k]

    def __iter__(self) -> Iterator[Tuple[int, int, int, int]]:
        return iter(self._cells())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Cells):
            other = other._cells()
        return self._cells() == other

    def __hash__(self) -> int:
        return hash(self._cells())

    def __repr__(self) -> str:
        return repr(self._cells())


def _causes(items: Dict[str, List[_Taken]], alternatives: Dict[str, Set[str]]) -> List[Cause]:
    causes = []
    for name, got in items.items():
        sizes = [int(np.count_nonzero(t.sel)) for t in got]
        count = sum(sizes)
        rows: Set[Tuple[int, int]] = set()
        held_any: Optional[np.ndarray] = None  # over the (B, n, H, W) cells: some claim holds elements there
        cell_shape: Optional[Tuple[int, ...]] = None
        for t in got:
            B, n, P, H, W = t.space.shape
            shape = (B, n, H, W)
            g = t.space.flat[t.sel]
            # The cells this claim holds elements of, as linear (B, n, H, W) indices, ascending.
            mark = np.zeros(B * n * H * W, bool)
            mark[cell_index(g, t.space.shape)] = True
            held = np.flatnonzero(mark)
            keys = [c for c, ts in t.claim.rows.items()  # the truth rows behind the cells it holds
                    if ts and all(0 <= v < d for v, d in zip(c, shape))]
            if keys and held.size:
                lin = np.ravel_multi_index(tuple(np.array(keys, np.int64).T), shape)
                pos = np.minimum(np.searchsorted(held, lin), held.size - 1)
                for c, hit in zip(keys, (held[pos] == lin).tolist()):
                    if hit:
                        rows.update((c[0], r) for r in t.claim.rows[c])
            if cell_shape is None or cell_shape == shape:
                held_any = mark if held_any is None else held_any | mark
                cell_shape = shape
            else:  # pragma: no cover - the arrays of one layer share their cells
                raise AssertionError("arrays of one layer with different cells")
        assert held_any is not None and cell_shape is not None
        msgs: List[str] = []
        for t in got:
            m = t.claim.say(t.space.full(t.sel))
            if m and m not in msgs:
                msgs.append(m if len(got) == 1 else f"{t.array}: {m}")
        alts = tuple(sorted(alternatives.get(name, set()) - {name}))
        if alts:
            msgs.append(f"(On this input {', '.join(alts)} reproduce{'s' if len(alts) == 1 else ''} the same "
                        "elements: the arrays cannot tell them apart here.)")
        detail = got[int(np.argmax(sizes))].claim.detail  # the first of the largest, as max() picks
        causes.append(Cause(code=name, count=count, truth_rows=tuple(sorted(rows)),
                            cells=Cells(np.flatnonzero(held_any), cell_shape), message=" ".join(msgs),
                            arrays=tuple((t.array, k) for t, k in zip(got, sizes)),
                            detail=dict(detail), alternatives=alts))
    causes = _joint(causes)
    order = {c.code: k for k, c in enumerate(REGISTRY)}
    causes.sort(key=lambda c: (-c.count, order[c.code]))
    return causes


def _joint(causes: List[Cause]) -> List[Cause]:
    """Several departures at once that only together give some elements
    (Tianxiaomo's MSE box without iou_normalizer): the cause whose model
    claims them lists the others in ``detail['with']``; each of those is
    named too, as a cause holding no element of its own (``count`` 0,
    ``detail['joint_with']``), unless it claims elements of its own (whose
    message then names the departures it acts with)."""
    present = {c.code: k for k, c in enumerate(causes)}
    out = list(causes)
    for c in causes:
        for w in c.detail.get("with", ()) or ():
            if w not in BY_CODE or w == c.code:
                continue
            if w in present:  # it claims elements of its own: its message names the departures it acts with
                continue
            note = (f"{c.count} element{'s' if c.count != 1 else ''} of {c.code} are darknet's only with this "
                    f"departure too ({c.code}'s message says how): fix both.")
            present[w] = len(out)
            out.append(Cause(code=w, count=0, truth_rows=c.truth_rows, cells=c.cells,
                             message=f"together with {c.code}: {BY_CODE[w].summary}; no element is this departure's "
                                     f"alone, but {note}",
                             detail={"joint_with": c.code, "elements": c.count}))
    return out


__all__ = ["Cause", "Diagnosis", "diagnose", "BY_CODE"]
