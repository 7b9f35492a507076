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
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

import numpy as np

from .causes import _factors, float_rounding, layout, unexplained
from .evidence import Evidence
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
    cells: Tuple[Tuple[int, int, int, int], ...]
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


def _run(spec: CauseSpec, arr: Array, todo: np.ndarray) -> Optional[Claim]:
    assert spec.model is not None
    claim = spec.model(arr)
    if claim is None:
        return None
    mask = claim.mask & todo
    if not mask.any():
        return None
    return Claim(mask, rows=claim.rows, say=claim.say, detail=claim.detail)


def _candidates(arr: Array, ev: Optional[Evidence], todo: np.ndarray, parts_out: List[PartRow]) -> List[Candidate]:
    out: List[Candidate] = []
    arr = arr.with_fail(todo)  # the models look at what is still to explain
    if ev is None or arr.name != "delta":
        out += _factors.values_only(arr, todo).claims
        kind = getattr(arr.layer, "kind", "")
        for spec in REGISTRY:  # models that need no oracle run (e.g. [Gaussian_yolo]'s)
            if spec.stage == "decision" and not spec.needs_evidence and kind in spec.kinds:
                c = _run(spec, arr, todo)
                if c is not None:
                    out.append((spec.code, c))
        if ev is not None and arr.name == "output":
            for spec in _decisions(arr, ev.kind, "output"):
                c = _run(spec, arr, todo)
                if c is not None:
                    out.append((spec.code, c))
        return out
    where = part_where(arr)
    sig = sigma_prime(arr)
    rows = fit(arr, None, todo, sig, where)
    parts_out.extend(rows)
    factors = _factors.fit(arr, where, rows, todo, sig)
    out += factors.claims
    specs = _decisions(arr, ev.kind, "decision")
    # The search's bound: on a large array whose failing elements the factor
    # models reproduce every one of, the decisions are not replayed (they
    # could only add alternatives there, at the cost of whole-array passes).
    if factors.claims and int(todo.sum()) > LARGE:
        covered = np.zeros_like(todo)
        for _, c in factors.claims:
            covered |= c.mask
        if not (todo & ~covered).any():
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
            c = _run(spec, view, todo)
            if c is not None:
                out.append((spec.code, c))
    return out


def _cover(cands: List[Candidate], todo: np.ndarray) -> List[Tuple[str, np.ndarray, Claim, Tuple[str, ...]]]:
    """Greedy set cover: the model reproducing the most unclaimed elements
    first (registry order breaks ties), with the other models that
    reproduce its elements as alternatives."""
    # Ties: a decision's model (it replays darknet's arithmetic) before a
    # fitted factor, then the registry's order.
    order = {c.code: k + (0 if c.stage == "decision" else len(REGISTRY)) for k, c in enumerate(REGISTRY)}
    left = todo.copy()
    chosen = []
    counts = [int(c.mask.sum()) for _, c in cands]
    while left.any():
        best, best_n = None, 0
        for k, (code, claim) in enumerate(cands):
            if counts[k] < best_n:  # '<': a tie is still weighed by the order below
                continue
            n = int((claim.mask & left).sum())
            counts[k] = n
            if n > best_n or (n == best_n and best is not None and order[code] < order[cands[best][0]]):
                best, best_n = k, n
        if best is None or best_n == 0:
            break
        code, claim = cands[best]
        sel = claim.mask & left
        alts = sorted({c for c, other in cands if c != code and (other.mask & sel).sum() >= ALTERNATIVE * best_n},
                      key=lambda c: order[c])
        chosen.append((code, sel, claim, tuple(alts)))
        left &= ~sel
    return chosen


def diagnose(arrays: Sequence[Array], ev: Optional[Evidence]) -> Diagnosis:
    codes: Dict[str, np.ndarray] = {}
    items: Dict[str, List[Tuple[str, np.ndarray, Claim]]] = defaultdict(list)
    alternatives: Dict[str, Set[str]] = defaultdict(set)
    parts: List[PartRow] = []
    for arr in arrays:
        code = np.zeros(arr.E.shape, np.uint8)
        todo = arr.fail.copy()

        def take(name: str, sel: np.ndarray, claim: Claim) -> None:
            code[sel] = _CODE_NUMBER[name]
            items[name].append((arr.name, sel, claim))
            todo[...] = todo & ~sel

        if ev is not None and todo.any():
            for spec in _decisions(arr, ev.kind, "exact"):
                c = _run(spec, arr, todo)
                if c is not None:
                    take(spec.code, c.mask, c)
        if ev is not None and todo.any():
            flat = np.flatnonzero(todo)  # darknet's own rounding, at the failing elements
            with np.errstate(invalid="ignore"):  # inf - inf where both are infinite
                within = np.abs(arr.a64_at(flat) - arr.e64_at(flat)) <= arr.bound_at(flat)
            sel = np.zeros(todo.shape, bool)
            sel.reshape(-1)[flat[within]] = True
            if sel.any():
                take("float_rounding", sel, Claim(sel, say=lambda s, a=arr: float_rounding.message(a, s)))
        work = arr
        relaid = layout.relayout(arr, todo) if todo.any() else None
        if relaid is not None:
            name, A64 = relaid
            work = arr.with_values(A64)
            sel = todo & work.close(A64, arr.E64, rel=1e-6)
            if sel.any():
                take("layout", sel, Claim(sel, say=lambda s, n=name: layout.message(n), detail={"layout": name}))
        if todo.any():
            arr_parts: List[PartRow] = []
            cands = _candidates(work, ev, todo, arr_parts)
            if arr.name == "delta":
                parts = arr_parts
            for name, sel, claim, alts in _cover(cands, todo):
                take(name, sel, claim)
                alternatives[name].update(alts)
        if todo.any():
            sel = todo.copy()
            relations = ", ".join(f"{r.part} {r.relation}" for r in parts if r.failing) if arr.name == "delta" else ""
            take("unexplained", sel, Claim(sel, say=lambda s, a=work, r=relations: unexplained.message(a, ev, s, r)))
        codes[arr.name] = code
    return Diagnosis(index=codes, causes=_causes(items, alternatives), parts=parts)


def _causes(items: Dict[str, List[Tuple[str, np.ndarray, Claim]]], alternatives: Dict[str, Set[str]]) -> List[Cause]:
    causes = []
    for name, got in items.items():
        sizes = [int(sel.sum()) for _, sel, _ in got]
        count = sum(sizes)
        rows: Set[Tuple[int, int]] = set()
        held_any: Optional[np.ndarray] = None
        for _, sel, claim in got:
            held = sel.any(axis=2)  # (B, n, H, W): the cells this claim holds elements of
            for c, ts in claim.rows.items():  # the truth rows behind the cells it holds
                if ts and all(0 <= v < d for v, d in zip(c, held.shape)) and held[c]:
                    rows.update((c[0], t) for t in ts)
            if held_any is None or held_any.shape == held.shape:
                held_any = held if held_any is None else held_any | held
            else:  # pragma: no cover - the arrays of one layer share their cells
                raise AssertionError("arrays of one layer with different cells")
        assert held_any is not None
        # The cells, sorted: (image, anchor, row, col) in ascending linear order.
        cells = tuple(zip(*(ax.tolist() for ax in np.unravel_index(np.flatnonzero(held_any), held_any.shape))))
        msgs: List[str] = []
        for arr_name, sel, claim in got:
            m = claim.say(sel)
            if m and m not in msgs:
                msgs.append(m if len(got) == 1 else f"{arr_name}: {m}")
        alts = tuple(sorted(alternatives.get(name, set()) - {name}))
        if alts:
            msgs.append(f"(On this input {', '.join(alts)} reproduce{'s' if len(alts) == 1 else ''} the same "
                        "elements: the arrays cannot tell them apart here.)")
        detail = got[int(np.argmax(sizes))][2].detail  # the first of the largest, as max() picks
        causes.append(Cause(code=name, count=count, truth_rows=tuple(sorted(rows)), cells=cells,
                            message=" ".join(msgs), arrays=tuple((a, n) for (a, _, _), n in zip(got, sizes)),
                            detail=dict(detail), alternatives=alts))
    order = {c.code: k for k, c in enumerate(REGISTRY)}
    causes.sort(key=lambda c: (-c.count, order[c.code]))
    return causes


__all__ = ["Cause", "Diagnosis", "diagnose", "BY_CODE"]
