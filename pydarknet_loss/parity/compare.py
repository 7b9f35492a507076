"""Compare another implementation's output, delta and cost with the
oracle's: where, by how much, and where it disagrees in kind."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

from ..layers.pjreddie import RegionLayer, RegionResult, YoloLayer, YoloResult

LayerLike = Union[YoloLayer, RegionLayer]
ARRAYS = ("output", "delta")


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in float32 units in the last place (int64).  NaN against NaN
    is 0, NaN against a number is the largest distance; +0 and -0 are 0
    apart."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)

    def ordered(x: np.ndarray) -> np.ndarray:
        i = x.view(np.int32).astype(np.int64)
        return np.where(i < 0, -(i & 0x7FFFFFFF), i)

    d = np.abs(ordered(a) - ordered(b))
    na, nb = np.isnan(a), np.isnan(b)
    d = np.where(na & nb, 0, d)
    return np.where(na ^ nb, np.iinfo(np.int64).max, d)


@dataclass(frozen=True)
class Tolerance:
    """A value passes when it is within ``max_ulp`` ULP, or within
    ``atol + rtol*|expected|``.  All zero (the default) means exact (NaN
    matching NaN, the sign of zero ignored)."""

    atol: float = 0.0
    rtol: float = 0.0
    max_ulp: int = 0

    def passes(self, expected: np.ndarray, actual: np.ndarray, ulp: np.ndarray) -> np.ndarray:
        ok = ulp <= self.max_ulp
        if self.atol or self.rtol:
            e64, a64 = expected.astype(np.float64), actual.astype(np.float64)
            with np.errstate(invalid="ignore"):
                ok |= np.abs(a64 - e64) <= self.atol + self.rtol * np.abs(e64)
        return ok

    def __str__(self) -> str:
        if not (self.atol or self.rtol or self.max_ulp):
            return "exact"
        return f"atol={self.atol:g}, rtol={self.rtol:g}, max_ulp={self.max_ulp}"


@dataclass(frozen=True)
class ComponentStats:
    """One component (x, y, w, h, mask, objectness, classes) of one array."""

    array: str
    component: str
    size: int
    mismatches: int
    max_abs: float
    max_rel: float
    max_ulp: int


@dataclass(frozen=True)
class Location:
    """One element: where it is and both values."""

    array: str
    image: int
    anchor: int
    row: int
    col: int
    component: str
    expected: float
    actual: float
    ulp: int

    def __str__(self) -> str:
        return (f"{self.array}[image {self.image}, anchor {self.anchor}, row {self.row}, col {self.col}, "
                f"{self.component}]: expected {self.expected!r}, got {self.actual!r} ({_ulp_str(self.ulp)})")


@dataclass(frozen=True)
class KindIssue:
    """A disagreement in kind, found from where the deltas are non-zero."""

    kind: str  # "assignment", "ignored_as_negative", "negative_as_ignored", "short_circuit"
    image: int
    anchor: int
    row: int
    col: int
    message: str


def _ulp_str(u: int) -> str:
    return "NaN vs number" if u == np.iinfo(np.int64).max else f"{u} ulp"


@dataclass
class ParityReport:
    """The comparison of an implementation with the oracle."""

    kind: str  # "yolo" or "region"
    tolerance: Tolerance
    components: List[ComponentStats] = field(default_factory=list)
    worst: List[Location] = field(default_factory=list)
    issues: List[KindIssue] = field(default_factory=list)
    cost: Optional[Tuple[float, float, int]] = None  # expected, actual, ulp
    cost_ok: bool = True
    shape: Tuple[int, ...] = ()
    problems: List[str] = field(default_factory=list)  # missing arrays, bad shapes
    _diff: Dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _names: List[str] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        """The verdict under the tolerance."""
        return not self.problems and not self.mismatches and self.cost_ok

    @property
    def mismatches(self) -> int:
        return sum(c.mismatches for c in self.components if not c.component.startswith("class "))

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        head = (f"[{self.kind}] parity {'OK' if self.ok else 'FAILED'} ({self.tolerance}); "
                f"{self.mismatches} mismatching elements of shape {self.shape}")
        lines = [head]
        for p in self.problems:
            lines.append(f"  problem: {p}")
        if self.components:
            lines.append(f"  {'array':<7}{'component':<12}{'elements':>9}{'mismatch':>9}{'max abs':>12}"
                         f"{'max rel':>11}{'max ulp':>17}")
            for c in self.components:
                lines.append(f"  {c.array:<7}{c.component:<12}{c.size:>9}{c.mismatches:>9}{c.max_abs:>12.4g}"
                             f"{c.max_rel:>11.3g}{_ulp_str(c.max_ulp) if c.max_ulp else '0':>17}")
        if self.cost is not None:
            e, a, u = self.cost
            lines.append(f"  cost: expected {e!r}, got {a!r} ({_ulp_str(u)})")
        if self.issues:
            lines.append("  disagreements in kind:")
            for i in self.issues[:10]:
                lines.append(f"    - {i.message}")
            if len(self.issues) > 10:
                lines.append(f"    ... and {len(self.issues) - 10} more")
        if self.worst and not self.ok:
            lines.append("  worst elements:")
            for w in self.worst:
                lines.append(f"    {w}")
        return "\n".join(lines)

    def plot(self, path: str) -> str:
        """Write a PNG heatmap per component of where the arrays differ (ULP
        distance, log scale, summed over images and anchors).  Needs
        matplotlib (``pip install 'pydarknet_loss[plot]'``)."""
        try:
            import matplotlib

            matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError("ParityReport.plot needs matplotlib: pip install 'pydarknet_loss[plot]' "
                              "(or pip install matplotlib)") from None
        groups: Dict[str, List[int]] = {}
        for k, nm in enumerate(self._names):
            groups.setdefault(_group(nm), []).append(k)
        panels = [(arr, idx, g) for arr in self._diff for g, idx in groups.items()]
        if not panels:
            raise ValueError("nothing was compared, so there is nothing to plot")
        cols = min(4, len(panels))
        rows = math.ceil(len(panels) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False)
        for ax in axes.ravel():
            ax.axis("off")
        for ax, (arr, idx, comp) in zip(axes.ravel(), panels):
            d = self._diff[arr][:, :, idx]  # (B, n, entries, H, W) ULP distances of failing elements
            heat = np.log10(1 + np.minimum(d, 2**31).astype(np.float64).sum(axis=(0, 1, 2)))
            im = ax.imshow(heat, cmap="magma", interpolation="nearest", vmin=0)
            ax.set_title(f"{arr}: {comp}", fontsize=9)
            ax.axis("on")
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        fig.suptitle(f"[{self.kind}] log10(1 + ULP distance) of failing elements, summed over images, "
                     "anchors and entries", fontsize=10)
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=80)
        plt.close(fig)
        return path


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _as_nchw(a: Any, layout: str, name: str) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"actual {name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.ndim != 4:
        raise ValueError(f"actual {name} must have 4 dimensions, got shape {a.shape}")
    if layout == "nhwc":
        a = np.transpose(a, (0, 3, 1, 2))
    return np.asarray(a, dtype=np.float32) if a.dtype == np.float32 else a


def component_names(layer: LayerLike) -> List[str]:
    """Names of the entries of one anchor, in darknet's order."""
    coords = layer.coords
    names = ["x", "y", "w", "h"] + [f"mask{i}" for i in range(coords - 4)] + ["objectness"]
    return names + [f"class {k}" for k in range(layer.classes)]


def _group(name: str) -> str:
    return "classes" if name.startswith("class ") else name


def compare(expected: Union[YoloResult, RegionResult, Mapping[str, Any]], actual: Any,
            layer: LayerLike, *, layout: str = "nchw", atol: float = 0.0, rtol: float = 0.0,
            max_ulp: int = 0, worst: int = 10) -> ParityReport:
    """Compare another implementation with the oracle.

    ``expected``: an oracle result (``layer.forward(...)``) or a mapping with
    ``output``/``delta``/``cost`` (a golden case).  ``actual``: a mapping or
    object with any of ``output``, ``delta``, ``cost`` (float32 arrays in
    darknet's (B, C, H, W) layout, or (B, H, W, C) with ``layout="nhwc"``).
    Arrays present in ``actual`` are compared; the default tolerance is
    exact.
    """
    if not isinstance(layer, (YoloLayer, RegionLayer)):
        raise TypeError("layer must be the YoloLayer or RegionLayer the expected result came from")
    if layout not in ("nchw", "nhwc"):
        raise ValueError(f"layout must be 'nchw' or 'nhwc', got {layout!r}")
    tol = Tolerance(float(atol), float(rtol), int(max_ulp))
    names = component_names(layer)
    per = len(names)
    report = ParityReport(kind=layer.kind, tolerance=tol, _names=names)
    present = [k for k in ARRAYS if _get(actual, k) is not None]
    if not present and _get(actual, "cost") is None:
        raise ValueError("actual has none of output, delta, cost")
    for key in present:
        exp = _get(expected, key)
        if exp is None:
            report.problems.append(f"expected has no {key} to compare with")
            continue
        exp = np.asarray(exp, dtype=np.float32)
        act = _as_nchw(_get(actual, key), layout, key)
        report.shape = exp.shape
        if act.shape != exp.shape:
            report.problems.append(f"{key}: shape {act.shape} (as NCHW), expected {exp.shape}")
            continue
        if act.dtype != np.float32:
            report.problems.append(f"{key}: dtype {act.dtype}, expected float32 (compared after casting)")
            act = act.astype(np.float32)
        b, c, h, w = exp.shape
        if c % per:
            raise ValueError(f"{key} has {c} channels, not a multiple of {per} entries per anchor for this layer")
        n = c // per
        e5 = exp.reshape(b, n, per, h, w)
        a5 = act.reshape(b, n, per, h, w)
        ulp = ulp_distance(e5, a5)
        bad = ~tol.passes(e5, a5, ulp)
        report._diff[key] = np.where(bad, ulp, 0)
        with np.errstate(invalid="ignore", over="ignore"):
            absd = np.abs(a5.astype(np.float64) - e5.astype(np.float64))
            e_abs = np.abs(e5.astype(np.float64))
            # Relative to |expected|; against an expected 0 any difference is infinitely relative.
            rel = np.where(e_abs > 0, absd / np.where(e_abs > 0, e_abs, 1), np.where(absd > 0, np.inf, 0))
        groups: Dict[str, List[int]] = {}
        for k, nm in enumerate(names):
            groups.setdefault(_group(nm), []).append(k)
        for g, idx in groups.items():
            report.components.append(_component(key, g, idx, bad, absd, rel, ulp))
            if g == "classes":
                # Each class block that differs gets its own row.
                for k in idx:
                    if bad[:, :, k].any():
                        report.components.append(_component(key, names[k], [k], bad, absd, rel, ulp))
        flat = np.flatnonzero(bad)
        if flat.size:
            order = flat[np.argsort(-ulp.ravel()[flat], kind="stable")[:worst]]
            for f in order:
                bi, ai, ei, ri, ci = np.unravel_index(f, bad.shape)
                report.worst.append(Location(key, int(bi), int(ai), int(ri), int(ci), names[ei],
                                             float(e5[bi, ai, ei, ri, ci]), float(a5[bi, ai, ei, ri, ci]),
                                             int(ulp[bi, ai, ei, ri, ci])))
        if key == "delta":
            report.issues.extend(_kind_issues(e5, a5, layer))
    act_cost = _get(actual, "cost")
    if act_cost is not None:
        exp_cost = _get(expected, "cost")
        if exp_cost is None:
            report.problems.append("expected has no cost to compare with")
        else:
            e, a = np.array(np.float32(exp_cost)), np.array(np.float32(act_cost))
            u = ulp_distance(e, a)
            report.cost = (float(e), float(a), int(u))
            report.cost_ok = bool(tol.passes(e, a, u))
    return report


def _component(array: str, name: str, idx: List[int], bad: np.ndarray, absd: np.ndarray, rel: np.ndarray,
               ulp: np.ndarray) -> ComponentStats:
    """The row of one component (entries idx of every anchor) of one array."""
    sel = (slice(None), slice(None), idx)
    bd = bad[sel]
    fin = ~np.isnan(absd[sel])
    return ComponentStats(
        array=array, component=name, size=int(bd.size), mismatches=int(bd.sum()),
        max_abs=float(absd[sel][bd & fin].max()) if (bd & fin).any() else 0.0,
        max_rel=float(rel[sel][bd & fin].max()) if (bd & fin).any() else 0.0,
        max_ulp=int(ulp[sel][bd].max()) if bd.any() else 0)


def _kind_issues(e5: np.ndarray, a5: np.ndarray, layer: LayerLike) -> List[KindIssue]:
    """Where expected and actual deltas are non-zero decides the kind:
    a cell and anchor is *assigned* a truth when its class deltas are
    non-zero (only assigned cells get class deltas), *ignored* when it is not
    assigned and its objectness delta is exactly 0."""
    issues: List[KindIssue] = []
    obj = layer.coords
    cls = slice(layer.coords + 1, None)
    e_assigned = (e5[:, :, cls] != 0).any(axis=2)
    a_assigned = (a5[:, :, cls] != 0).any(axis=2)
    missing = np.argwhere(e_assigned & ~a_assigned)
    extra = np.argwhere(a_assigned & ~e_assigned)
    for b, n, r, c in missing:
        same_cell = [m for m in extra if m[0] == b and m[2] == r and m[3] == c]
        near = (f"; the implementation assigns anchor {same_cell[0][1]} of that cell instead" if same_cell else
                "; the implementation assigns no anchor of that cell" if not a_assigned[b, :, r, c].any() else "")
        issues.append(KindIssue("assignment", int(b), int(n), int(r), int(c),
                                f"image {b}: upstream assigns a truth to anchor {n} at row {r}, col {c}{near}"))
    for b, n, r, c in extra:
        if any(m[0] == b and m[2] == r and m[3] == c for m in missing):
            continue
        issues.append(KindIssue("assignment", int(b), int(n), int(r), int(c),
                                f"image {b}: the implementation assigns a truth to anchor {n} at row {r}, col {c}, "
                                "where upstream assigns none (another cell or anchor than upstream's)"))
    unassigned = ~e_assigned & ~a_assigned
    e_obj, a_obj = e5[:, :, obj], a5[:, :, obj]
    for b, n, r, c in np.argwhere(unassigned & (e_obj == 0) & (a_obj != 0)):
        issues.append(KindIssue("ignored_as_negative", int(b), int(n), int(r), int(c),
                                f"image {b}, anchor {n}, row {r}, col {c}: upstream ignores this cell (its best IoU "
                                "beats the threshold: objectness delta 0) but the implementation treats it as "
                                "a negative"))
    for b, n, r, c in np.argwhere(unassigned & (e_obj != 0) & (a_obj == 0)):
        issues.append(KindIssue("negative_as_ignored", int(b), int(n), int(r), int(c),
                                f"image {b}, anchor {n}, row {r}, col {c}: upstream pushes this cell's objectness "
                                "to 0 but the implementation ignores it"))
    both = e_assigned & a_assigned
    e_pos = (e5[:, :, cls] > 0).sum(axis=2)
    a_pos = (a5[:, :, cls] > 0).sum(axis=2)
    for b, n, r, c in np.argwhere(both & (e_pos >= 2) & (a_pos < e_pos)):
        issues.append(KindIssue("short_circuit", int(b), int(n), int(r), int(c),
                                f"image {b}, anchor {n}, row {r}, col {c}: two truths share this cell and anchor; "
                                f"upstream's class short-circuit keeps {int(e_pos[b, n, r, c])} classes at 1 - p, "
                                f"the implementation {int(a_pos[b, n, r, c])} (class short-circuit not reproduced)"))
    for b, n, r, c in np.argwhere(both & (a_pos >= 2) & (e_pos < a_pos)):
        issues.append(KindIssue("short_circuit", int(b), int(n), int(r), int(c),
                                f"image {b}, anchor {n}, row {r}, col {c}: the implementation keeps "
                                f"{int(a_pos[b, n, r, c])} classes at 1 - p where upstream keeps "
                                f"{int(e_pos[b, n, r, c])} (a short-circuit upstream does not apply here)"))
    return issues


def assert_parity(expected: Any, actual: Any, layer: LayerLike, **tol: Any) -> ParityReport:
    """compare(), raising AssertionError with the report when it fails."""
    report = compare(expected, actual, layer, **tol)
    if not report.ok:
        raise AssertionError("\n" + str(report))
    return report
