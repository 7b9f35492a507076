"""The factor models: one factor on the whole array (sign, scale), on one
part (weight), or p(1 - p) on one part (chain).  Fitted per part
(``parts.fit``); each claims only the elements where its factor times
darknet's value is the implementation's."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set, Tuple

import numpy as np

from ..model import Array, Claim
from ..parts import GROUP, PART_ID, PartRow

#: Coarse names for sets of fine parts, the largest first.
NAMES: Tuple[Tuple[str, Set[str]], ...] = (
    ("box", {"box.x", "box.y", "box.w", "box.h"}), ("xy", {"box.x", "box.y"}), ("wh", {"box.w", "box.h"}),
    ("objectness", {"objectness.positive", "objectness.negative"}),
    ("classes", {"classes.positive", "classes.negative"}))


def part_name(parts: Set[str]) -> str:
    """'box', 'xy', 'objectness'... for a set of fine parts."""
    left, names = set(parts), []
    for name, members in NAMES:
        if members <= left:
            names.append(name)
            left -= members
    names += sorted(p.replace("box.", "") if p.startswith("box.") else p for p in left)
    return "+".join(names)


class Factor:
    """A per-element factor over the array, kept as a constant ``k`` and the
    values set on some elements (flat indices, in the order they were set,
    the last winning): the dense float64 array only when one asks for it
    (``dense``), so that fitting factors costs the parts' elements, not the
    whole array."""

    def __init__(self, shape: Tuple[int, ...], k: float = 1.0) -> None:
        self.shape = shape
        self.k = float(k)
        self._set: List[Tuple[np.ndarray, np.ndarray]] = []

    def fill(self, k: float) -> None:
        """Every element k (``f[...] = k``)."""
        self.k, self._set = float(k), []

    def put(self, idx: np.ndarray, vals: Any) -> None:
        """``f.reshape(-1)[idx] = vals``."""
        idx = np.asarray(idx, np.int64)
        self._set.append((idx, np.array(np.broadcast_to(np.asarray(vals, np.float64), idx.shape))))

    def at(self, idx: np.ndarray) -> np.ndarray:
        """``f.reshape(-1)[idx]``."""
        idx = np.asarray(idx, np.int64)
        out = np.full(idx.shape, self.k)
        for i, v in self._set:
            if not i.size or not idx.size:
                continue
            order = np.argsort(i, kind="stable")
            si = i[order]
            p = np.minimum(np.searchsorted(si, idx, side="right") - 1, si.size - 1)
            p = np.maximum(p, 0)
            hit = si[p] == idx  # the last of equal indices: the one a dense assignment leaves
            out[hit] = v[order][p[hit]]
        return out

    def dense(self) -> np.ndarray:
        out = np.full(self.shape, self.k)
        flat = out.reshape(-1)
        for i, v in self._set:
            flat[i] = v
        return out

    def touched(self) -> np.ndarray:
        """The flat indices set on, ascending, unique."""
        if not self._set:
            return np.zeros(0, np.int64)
        return np.unique(np.concatenate([i for i, _ in self._set]))

    def is_one(self) -> bool:
        """``np.all(dense() == 1)``."""
        return self.k == 1 and all(bool(np.all(v == 1)) for _, v in self._set)

    def equals(self, other: "Factor") -> bool:
        """``np.array_equal(dense(), other.dense())``."""
        if self.shape != other.shape:
            return False
        u = np.union1d(self.touched(), other.touched())
        if u.size < int(np.prod(self.shape)) and self.k != other.k:
            return False
        return bool(np.array_equal(self.at(u), other.at(u)))

    def copy(self) -> "Factor":
        out = Factor(self.shape, self.k)
        out._set = list(self._set)
        return out


@dataclass
class Factors:
    """The fitted factors: the whole array's (``k``, 1 when none, and the
    parts it was seen on), the per-element factor ``f`` the decision models
    take out, and the claims (code, Claim)."""

    k: float = 1.0
    global_parts: Set[str] = field(default_factory=set)
    f: Optional[Factor] = None
    claims: List[Tuple[str, Claim]] = field(default_factory=list)
    ambiguous: bool = False  #: the factor was seen on one part group only, which is all there is
    #: ``f`` with a part whose values follow no factor of their own (a decision departs there) given its
    #: group's factor (objectness.positive the objectness.negative chain...): a second view for the decisions.
    f_group: Optional[Factor] = None


def _close(arr: Array, k: float, rel: float, where: np.ndarray) -> np.ndarray:
    """Where (within ``where``) the implementation's value is k times darknet's."""
    return _close_at(arr, k, rel, np.flatnonzero(where))


def _close_at(arr: Array, k: float, rel: float, flat: np.ndarray) -> np.ndarray:
    """The same, for flat indices; a mask of the array's shape."""
    out = np.zeros(arr.E.shape, bool)
    pred = k * arr.e64_at(flat)
    with np.errstate(invalid="ignore", over="ignore"):
        ok = np.abs(arr.a64_at(flat) - pred) <= rel * np.abs(pred) + \
            4 * arr.bound_at(flat) * max(1.0, abs(k)) + 1e-30
    out.reshape(-1)[flat[ok]] = True
    return out


def fit(arr: Array, where: Dict[int, np.ndarray], rows: List[PartRow], todo: np.ndarray, sig: Any) -> Factors:
    """``where``: part id -> flat indices (parts.part_indices)."""
    from . import chain, scale, sign, weight

    out = Factors(f=Factor(arr.E.shape))
    f = out.f
    tod = todo.reshape(-1)
    empty = np.zeros(0, np.int64)
    at = lambda part: where.get(PART_ID[part], empty)  # noqa: E731
    scaled = [r for r in rows if r.relation in ("×k", "negated")]
    by_k: Dict[float, List[PartRow]] = defaultdict(list)
    for r in scaled:
        by_k[float(r.factor)].append(r)  # type: ignore[arg-type]
    telling_groups = {GROUP[r.part] for r in rows if r.telling}
    # The factors in order of the telling elements they hold on; the first
    # that spans two part groups (or the only one with values) is the whole
    # array's, the others then part weights on top of it (a batch mean with
    # a prior weighted 10 times: the prior's factor, 5, holds on more
    # elements than the mean's, 0.5, but on one group only).
    for k, krows in sorted(by_k.items(), key=lambda kv: -sum(r.telling for r in kv[1])):
        # A part with one telling element has no factor of its own; it goes
        # with k when its failing elements are k times darknet's.
        for r in rows:
            idx = at(r.part)
            idx = idx[tod[idx]]
            if r.relation == "other" and r.telling < 2 and idx.size and \
                    _close_at(arr, k, 1e-5, idx).reshape(-1)[idx].all():
                krows = krows + [r]
        groups = {GROUP[r.part] for r in krows}
        # A part that carries darknet's values unchanged refutes a factor on the whole array.
        unchanged = {GROUP[r.part] for r in rows if r.telling and r.relation == "equal"} - groups
        if (len(groups) >= 2 or (groups == telling_groups and len(groups) == 1)) and not unchanged:
            out.k, out.global_parts = k, {r.part for r in krows}
            out.ambiguous = len(groups) == 1
            break
    f.fill(out.k)
    if out.global_parts:
        mask = _close(arr, out.k, 1e-5, todo)
        if mask.any():
            spec = sign if out.k == -1 else scale
            out.claims.append((spec.CAUSE.code, Claim(mask, say=spec.say(arr, out), detail={"factor": out.k})))
        if out.ambiguous:
            # Only one part group has values here: a weight on it reproduces
            # the same elements, and is offered as the alternative.
            parts = set(out.global_parts)
            detail = {"part": part_name(parts), "factor": out.k, "parts": tuple(sorted(parts))}
            out.claims.append((weight.CAUSE.code, Claim(mask, say=weight.say(arr, detail, out), detail=detail)))
            out.global_parts = set()
    # Per-part factors: weights (a constant) and chains (p(1 - p)).
    weights: Dict[float, Set[str]] = defaultdict(set)
    chains: Dict[Tuple[str, float], Set[str]] = defaultdict(set)
    for r in rows:
        if r.part in out.global_parts or r.factor is None or (out.ambiguous and r.relation in ("×k", "negated")):
            continue
        idx = at(r.part)
        if r.relation in ("×k", "negated"):
            f.put(idx, r.factor)
            weights[float(r.factor)].add(r.part)
        elif r.relation in ("×σ′", "÷σ′"):
            with np.errstate(divide="ignore"):
                g = sig.at(idx) if r.relation == "×σ′" else 1 / sig.at(idx)
            f.put(idx, r.factor * g)
            chains[(r.relation, float(r.factor))].add(r.part)
    sibling: Dict[str, np.ndarray] = {}
    for r in rows:
        if r.part not in out.global_parts and r.factor is not None:
            sibling.setdefault(GROUP[r.part], at(r.part))
    fg = None
    for r in rows:
        if r.relation in ("other", "zero") and GROUP[r.part] in sibling:
            if fg is None:
                out.f_group = fg = out.f.copy()
            src = sibling[GROUP[r.part]]
            idx = at(r.part)
            vals = f.at(src)
            if vals.size and np.all(vals == vals.flat[0]):
                fg.put(idx, vals.flat[0])
            elif vals.size:  # a chain: the same c times this part's own p(1 - p)
                ss = sig.at(src)
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = vals / np.where(np.isfinite(ss) & (ss != 0), ss, np.nan)
                c = np.nanmedian(ratio) if np.isfinite(ratio).any() else np.nan
                if np.isfinite(c):
                    fg.put(idx, c * sig.at(idx))
    for w, parts in weights.items():
        idx = np.concatenate([at(p) for p in parts])
        mask = _close_at(arr, w, 1e-5, idx[tod[idx]])
        if mask.any():
            name = part_name(parts)
            detail = {"part": name, "factor": w / out.k, "parts": tuple(sorted(parts))}
            out.claims.append((weight.CAUSE.code, Claim(mask, say=weight.say(arr, detail, out), detail=detail)))
    for (form, c), parts in chains.items():
        idx = np.concatenate([at(p) for p in parts])
        idx = idx[tod[idx]]
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            g = sig.at(idx) if form == "×σ′" else 1 / sig.at(idx)
            pred = c * g * arr.e64_at(idx)
            ok = np.abs(arr.a64_at(idx) - pred) <= 1e-3 * np.abs(pred) + \
                4 * arr.bound_at(idx) * np.maximum(1, np.abs(c * g)) + 1e-30
        mask = np.zeros(arr.E.shape, bool)
        mask.reshape(-1)[idx[ok]] = True
        if mask.any():
            detail = {"part": part_name(parts), "factor": c, "form": "times" if form == "×σ′" else "divided",
                      "parts": tuple(sorted(parts))}
            out.claims.append((chain.CAUSE.code, Claim(mask, say=chain.say(arr, detail), detail=detail)))
    _chain_at_one(arr, rows, at, tod, sig, chains, out)
    _prior_on_box_forms(arr, rows, at, tod, sig, out)
    return out


_BOX = ("box.x", "box.y", "box.w", "box.h")


def _prior_on_box_forms(arr: Array, rows: List[PartRow], at: Any, tod: np.ndarray, sig: Any, out: Factors) -> None:
    """[region]'s prior holds box entries (x, y, w, h at cells no truth
    takes): where the box parts carry forms of their own (the GPU build's
    p(1 - p) on x, y, a batch mean) the prior carries them too, and a prior
    weight shows only on top of them (lightnet's prior, 10 times darknet's,
    in GPU-build values averaged over the batch: 5·p(1 - p) on x, y and 5 on
    w, h).  The weight is fitted on the prior's values divided by its box
    entries' forms; it claims the elements that product reproduces."""
    from . import weight

    prior = next((r for r in rows if r.part == "prior" and r.failing and r.relation == "other"), None)
    if prior is None:
        return
    form: Dict[str, Tuple[str, float]] = {}
    for r in rows:
        if r.part not in _BOX:
            continue
        if r.relation == "×σ′" and r.factor:
            form[r.part] = ("σ′", float(r.factor))
        elif r.relation in ("×k", "negated") and r.factor:
            form[r.part] = ("k", float(r.factor))
        elif r.relation == "equal":
            form[r.part] = ("k", 1.0)
    if len(form) < 4 or all(f == ("k", 1.0) for f in form.values()):
        return
    idx = at("prior")
    idx = idx[tod[idx]]
    if not idx.size:
        return
    shape = arr.E.shape
    entry = (idx // (shape[3] * shape[4])) % shape[2]
    g = np.ones(idx.size)
    for e, part in enumerate(_BOX):
        sel = entry == e
        kind, c = form[part]
        g[sel] = c * (sig.at(idx[sel]) if kind == "σ′" else 1.0)
    E, A, b = arr.e64_at(idx), arr.a64_at(idx), arr.bound_at(idx)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        tell = np.isfinite(E) & (np.abs(E) > 4 * b) & (g != 0)
        if tell.sum() < 2:
            return
        r = float(np.median(A[tell] / (g[tell] * E[tell])))
        from ..parts import _round_factor, _simple
        if not (np.isfinite(r) and _simple(r)) or abs(r - 1) <= 1e-5:
            return
        r = _round_factor(r)
        pred = r * g * E
        ok = np.abs(A - pred) <= 1e-3 * np.abs(pred) + 4 * b * np.maximum(1.0, np.abs(r * g)) + 1e-30
    if ok[tell].mean() < 0.9:
        return
    mask = np.zeros(shape, bool)
    mask.reshape(-1)[idx[ok]] = True
    forms = "; ".join(f"{'x, y' if p == 'box.x' else 'w, h'}: " + (f"{c:g}·p(1 - p)" if k == "σ′" else f"×{c:g}")
                      for p, (k, c) in form.items() if p in ("box.x", "box.w"))
    detail = {"part": "prior", "factor": r, "parts": ("prior",), "on_box_forms": forms}
    base = weight.say(arr, detail, out)
    out.claims.append((weight.CAUSE.code, Claim(mask, say=lambda sel: (
        f"{base(sel)} (On top of the forms your box entries carry elsewhere, {forms}: the prior holds box "
        "entries too.)"), detail=detail)))


#: The parts a squared error on the sigmoid's output reaches through p(1 - p).
_LOGISTIC_PARTS = ("box.x", "box.y", "objectness.positive", "objectness.negative")


def _chain_at_one(arr: Array, rows: List[PartRow], at: Any, tod: np.ndarray, sig: Any,
                  chains: Dict[Tuple[str, float], Set[str]], out: Factors) -> None:
    """The plain chain, darknet's times p(1 - p), where the part's fit could
    not say so: on a part whose telling elements are all saturated (the
    values there are 0 and p(1 - p) is 0 too), or too few to fit.  It claims
    the failing elements it reproduces, so that a model of saturation or of
    another target that reproduces them as well is shown beside it, not
    alone."""
    from . import chain

    parts = [r.part for r in rows if r.part in _LOGISTIC_PARTS and r.failing
             and not any(r.part in ps for (form, _), ps in chains.items() if form == "×σ′")]
    if not parts:
        return
    idx = np.concatenate([at(p) for p in parts])
    idx = idx[tod[idx]]
    if not idx.size:
        return
    with np.errstate(invalid="ignore", over="ignore"):
        g = sig.at(idx)
        pred = g * arr.e64_at(idx)
        ok = np.abs(arr.a64_at(idx) - pred) <= 1e-3 * np.abs(pred) + 4 * arr.bound_at(idx) + 1e-30
    if not ok.any():
        return
    mask = np.zeros(arr.E.shape, bool)
    mask.reshape(-1)[idx[ok]] = True
    held = {p for p in parts if ok[np.isin(idx, at(p))].any()}
    # one model, one claim: joined with the fitted chain at c = 1, if any
    for k, (code, claim) in enumerate(out.claims):
        d = claim.detail or {}
        if code == chain.CAUSE.code and d.get("form") == "times" and d.get("factor") == 1.0:
            mask |= claim.mask
            held |= set(d.get("parts", ()))
            del out.claims[k]
            break
    detail = {"part": part_name(held), "factor": 1.0, "form": "times", "parts": tuple(sorted(held))}
    out.claims.append((chain.CAUSE.code, Claim(mask, say=chain.say(arr, detail), detail=detail)))


def values_only(arr: Array, todo: np.ndarray) -> Factors:
    """Without the oracle's record (no input and truth, or the output
    array): one factor on the whole array, from the median ratio of the
    elements darknet gives a value out of its rounding; it must hold on
    95 % of them, two or more."""
    from . import scale, sign

    out = Factors(f=Factor(arr.E.shape))
    big = np.abs(arr.E64) > arr.bound
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = arr.A64[big] / arr.E64[big]
    ratio = ratio[np.isfinite(ratio)]
    if ratio.size < 2:
        return out
    k = float(np.median(ratio))
    if k == 0 or abs(k - 1) <= 1e-5:
        return out
    ok = _close(arr, k, 1e-5, big | todo)
    if (ok & big).sum() >= 0.95 * big.sum():
        from ..parts import _round_factor

        out.k = _round_factor(k)
        mask = todo & ok
        if mask.any():
            spec = sign if out.k == -1 else scale
            out.claims.append((spec.CAUSE.code, Claim(mask, say=spec.say(arr, out), detail={"factor": out.k})))
    return out
