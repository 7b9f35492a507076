"""Compare another implementation's output, delta and cost with the
oracle's: where they differ, by how much (headroom included when they
agree), and why (:mod:`.diagnose`)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .. import _native, _validate
from ..layers import alexeyab
from ..layers import layout as lay
from ..layers.gaussian import ENTRIES as GAUSSIAN_ENTRIES
from ..layers.pjreddie import RegionLayer, RegionResult, YoloLayer, YoloResult
from . import diagnosis as dg
from . import more_layers as more  # issue 23: region_ab, detection
from .diagnosis import Cause, PartRow
from .diagnosis.parts import GROUP, PART_ID, part_ids

LayerLike = Union[YoloLayer, RegionLayer, alexeyab.YoloLayer, alexeyab.GaussianYoloLayer]
ARRAYS = ("output", "delta")
LAYOUTS = lay.LAYOUTS
TOLERANCES = ("exact", "float32")
#: The default tolerance everywhere a port is judged (compare, assert_parity,
#: check, check_gradient, fuzz, the pytest plugin): darknet's own float32
#: rounding of each element.  Bit-exactness (``"exact"``) is attainable only
#: by a bit-exact port of darknet's C; a correct float32 (or float64) port of
#: darknet's formulas passes ``"float32"``.
DEFAULT_TOLERANCE = "float32"
#: Per-class rows shown in a report before "N more".
CLASS_ROWS = 3
ULP_INF = np.iinfo(np.int64).max
#: The groups ``parts=`` takes besides darknet's parts (``diagnosis.PARTS``):
#: each names every entry of its kind, wherever it lies.
PART_GROUPS = ("box", "objectness", "classes")


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
    return np.where(na ^ nb, ULP_INF, d)


def same_sign(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Where a ULP distance means something: both values of one sign (a zero
    of either sign goes with anything), neither NaN."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    return ~((a > 0) & (b < 0) | (a < 0) & (b > 0)) & ~(np.isnan(a) | np.isnan(b))


@dataclass(frozen=True)
class Tolerance:
    """A value passes when it is bit-equal (NaN matching NaN, the sign of
    zero ignored); or, with ``float32``, within darknet's own rounding bound
    for that element; or within ``max_ulp`` ULP, or ``atol + rtol*|expected|``."""

    atol: float = 0.0
    rtol: float = 0.0
    max_ulp: int = 0
    float32: bool = False
    note: str = ""  #: why the tolerance is not the one asked for (float32 without input and truth)

    def passes(self, expected: np.ndarray, actual: np.ndarray, ulp: np.ndarray,
               bound: Optional[np.ndarray] = None) -> np.ndarray:
        ok = ulp <= self.max_ulp
        e64, a64 = expected.astype(np.float64), actual.astype(np.float64)
        with np.errstate(invalid="ignore"):
            if self.atol or self.rtol:
                ok |= np.abs(a64 - e64) <= self.atol + self.rtol * np.abs(e64)
            if self.float32 and bound is not None:
                ok |= np.abs(a64 - e64) <= bound
        return ok

    def ratio(self, expected: np.ndarray, actual: np.ndarray, ulp: np.ndarray,
              bound: Optional[np.ndarray] = None) -> np.ndarray:
        """Per element, how much of the tolerance the difference uses: 0 for
        equal bits, at most 1 where the element passes, inf where nothing
        but equal bits would do (the smallest ratio over the criteria)."""
        r = np.where(ulp == 0, 0.0, np.inf)
        if self.max_ulp:
            r = np.fmin(r, ulp.astype(np.float64) / self.max_ulp)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            absd = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
            for allowed in ([self.atol + self.rtol * np.abs(expected.astype(np.float64))]
                            if self.atol or self.rtol else []) + ([bound] if self.float32 and bound is not None
                                                                   else []):
                allowed = np.asarray(allowed, np.float64)
                r = np.fmin(r, np.where(allowed > 0, absd / np.where(allowed > 0, allowed, 1.0), np.inf))
        return np.where(ulp == 0, 0.0, r)

    def __str__(self) -> str:
        parts = ["float32 (darknet's own rounding)" if self.float32 else "exact"]
        extra = [f"{k}={v:g}" for k, v in (("atol", self.atol), ("rtol", self.rtol)) if v]
        if self.max_ulp:
            extra.append(f"max_ulp={self.max_ulp}")
        return ", ".join(parts + extra) + (f"; {self.note}" if self.note else "")


@dataclass(frozen=True)
class ComponentStats:
    """One component (x, y, w, h, mask, objectness, classes, class k) of one
    array: how many elements fail, and the largest differences over ALL its
    elements (the headroom, when nothing fails).  ``max_ulp`` counts only
    pairs of one sign; ``max_rel`` only where the expected value is not 0
    (None when there is none)."""

    array: str
    component: str
    size: int
    mismatches: int
    max_abs: float
    max_rel: Optional[float]
    max_ulp: Optional[int]
    sign_flips: int = 0


@dataclass(frozen=True)
class Location:
    """One element: where it is, both values and why it differs."""

    array: str
    image: int
    anchor: int  #: index into the layer's mask ([yolo]) or anchor ([region])
    row: int
    col: int
    component: str
    expected: float
    actual: float
    ulp: int
    cfg_anchor: Optional[int] = None  #: [yolo]: the cfg's anchor index, mask[anchor]
    cause: str = ""

    def where(self) -> str:
        a = (f"anchor {self.cfg_anchor} (mask {self.anchor})" if self.cfg_anchor is not None
             else f"anchor {self.anchor}")
        return f"{self.array}[image {self.image}, {a}, row {self.row}, col {self.col}, {self.component}]"

    def __str__(self) -> str:
        why = f" [{self.cause}]" if self.cause else ""
        return f"{self.where()}: expected {self.expected!r}, got {self.actual!r} ({_ulp_str(self.ulp)}){why}"


@dataclass(frozen=True)
class KnownDeparture:
    """Failing elements outside the parts ``parts=`` judges: reported, not
    judged.  ``part``: one of darknet's parts of the delta
    (``diagnosis.PARTS``) for the delta, an entry group (box, objectness,
    classes) for the output; ``relation``: how your values relate to
    darknet's on that part (``PartRow.relation_text``; ``""`` where none was
    fitted: the output, or a part left to the rounding and layout causes)."""

    array: str
    part: str
    elements: int
    failing: int
    relation: str = ""

    def __str__(self) -> str:
        rel = f", {self.relation}" if self.relation else ""
        return f"{self.array} {self.part}: {self.failing} of {self.elements} fail{rel} (not judged)"


class _Judge:
    """Which elements ``parts=`` judges (issue 20).  A group (box,
    objectness, classes) names every entry of its kind wherever it lies
    (box: x, y, w, h and [region]'s mask coords, at cells given a truth, in
    [region]'s prior and where darknet gives no delta); a part of darknet's
    names its elements, as the oracle's record places them
    (``diagnosis.parts.part_ids`` on darknet's own delta).  One map of
    positions serves the delta and the output: an output element belongs to
    the part of the delta element at its place."""

    def __init__(self, names: Tuple[str, ...], coords: int, ids: Callable[[], np.ndarray]) -> None:
        self.names = names
        self.groups = {g for g in names if g in PART_GROUPS}
        covered = {p for p in dg.PARTS if GROUP[p] in self.groups or (p == "prior" and "box" in self.groups)}
        fine = {p for p in names if p not in PART_GROUPS} - covered
        self.everything = self.groups == set(PART_GROUPS) or (fine | covered) == set(dg.PARTS)
        self.lut = np.zeros(len(dg.PARTS), bool)  # part id -> selected by a part name
        for p in fine:
            self.lut[PART_ID[p]] = True
        self.coords = coords
        self._ids_fn: Callable[[], np.ndarray] = ids
        self._ids: Optional[np.ndarray] = None

    def ids(self) -> np.ndarray:
        """(B, n, entries, H, W): every element's part id, from darknet's delta (computed once, when asked)."""
        if self._ids is None:
            self._ids = self._ids_fn()
        return self._ids

    def label(self) -> str:
        """The selection in words: groups whole, then the single parts."""
        return ", ".join(self.names)

    def judges_part(self, part: str) -> str:
        """Whether a part of the delta is judged: "yes", "no", or "partly"
        ("none" spans the entry groups)."""
        if self.everything or self.lut[PART_ID[part]]:
            return "yes"
        if part == "none":
            return "partly" if self.groups else "no"
        return "yes" if GROUP[part] in self.groups or (part == "prior" and "box" in self.groups) else "no"

    def entry_group(self, entries: np.ndarray) -> np.ndarray:
        """Entry index -> 0 box, 1 objectness, 2 classes."""
        return np.where(entries < self.coords, 0, np.where(entries == self.coords, 1, 2))

    def at(self, flat: np.ndarray, shape: Tuple[int, ...]) -> np.ndarray:
        """Whether each element (flat indices into the (B, n, entries, H, W)
        array) is judged."""
        if self.everything:
            return np.ones(flat.shape, bool)
        entries = (flat // (shape[3] * shape[4])) % shape[2]
        group_on = np.array([g in self.groups for g in PART_GROUPS])
        out = group_on[self.entry_group(entries)]
        if self.lut.any() and flat.size:
            out |= self.lut[self.ids().reshape(-1)[flat]]
        return out


def _ulp_str(u: Optional[int]) -> str:
    if u is None:
        return "-"
    return "NaN vs number" if u == ULP_INF else f"{u} ulp"


def _rel_str(r: Optional[float]) -> str:
    return "-" if r is None else f"{r:.3g}"


@dataclass
class ParityReport:
    """The comparison of an implementation with the oracle.

    ``ok`` is the verdict; ``causes`` the reasons elements fail, most
    elements first (:class:`~pydarknet_loss.parity.diagnose.Cause`);
    ``components`` the per-component table; ``worst`` the worst elements;
    ``cost`` (expected, actual, ulp).

    With ``compare(..., parts=)`` (``judged`` then holds the selection) the
    verdict judges only the elements in those parts: ``mismatches`` and
    ``causes`` count those; the failing elements elsewhere are known
    departures, listed per part in ``known`` and explained by
    ``known_causes`` (the same causes, counted on those elements), and the
    cost, which sums every part, is reported but not judged
    (``cost_judged``) unless every part is selected."""

    kind: str
    tolerance: Tolerance
    components: List[ComponentStats] = field(default_factory=list)
    worst: List[Location] = field(default_factory=list)
    causes: List[Cause] = field(default_factory=list)
    cost: Optional[Tuple[float, float, int]] = None
    cost_ok: bool = True
    shape: Tuple[int, ...] = ()
    problems: List[str] = field(default_factory=list)
    explained: bool = False  #: whether input and truth were given, so the causes come from the oracle's record
    parts: List[PartRow] = field(default_factory=list)  #: the delta's parts: elements, failing, relation
    #: the largest share of the tolerance any element's difference uses: 0 when every element is bit-equal,
    #: at most 1 when every element passes (the headroom is 1 minus it), inf when one needs more than it allows
    tolerance_used: float = 0.0
    layout: str = "nchw"  #: the layout the implementation's arrays were compared in (cause_map returns it)
    dtypes: Dict[str, str] = field(default_factory=dict)  #: arrays given in another dtype than float32
    _pairs: Dict[str, Tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)
    _codes: Dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _names: List[str] = field(default_factory=list, repr=False)
    _mask: Optional[List[int]] = field(default=None, repr=False)
    #: parts= (issue 20): the parts and groups judged, as given (validated); None without parts=
    judged: Optional[Tuple[str, ...]] = None
    #: parts=: the failing elements outside the judged parts, per array and part (reported, not judged)
    known: List[KnownDeparture] = field(default_factory=list)
    #: parts=: the causes of the known departures, each counted on the elements outside the judged parts
    known_causes: List[Cause] = field(default_factory=list)
    #: whether the cost counts in the verdict: not with parts= (the cost sums every part), unless every part is judged
    cost_judged: bool = True
    _judge: Optional[_Judge] = field(default=None, repr=False)
    _fails: Tuple[int, int] = field(default=(0, 0), repr=False)  #: parts=: failing elements judged, not judged
    #: how to read the assignment, when asked for: the oracle's run and the implementation's delta (CPU terms)
    _assign_src: Optional[Callable[[], Any]] = field(default=None, repr=False)
    _assignment: Any = field(default=None, repr=False)

    @property
    def assignment(self) -> Any:
        """Per cell and anchor, darknet's decision (assigned by which truth
        row and how, truth_thresh, ignored with which IoU, negative) beside
        what the implementation's objectness delta shows
        (:class:`~pydarknet_loss.parity.assignment.Assignment`; ``print`` it,
        or read ``.differ``).  Needs the delta compared with ``input=`` and
        ``truth=`` on a layer whose decisions the oracle records."""
        if self._assignment is None:
            if self._assign_src is None:
                raise ValueError("report.assignment needs the delta compared with input= and truth= on [yolo] "
                                 "(pjreddie's, AlexeyAB's, hank-ai's) or pjreddie's [region]: darknet's decisions "
                                 "are read from the oracle's record of its forward on that input")
            self._assignment = self._assign_src()
        return self._assignment

    @property
    def ok(self) -> bool:
        """The verdict under the tolerance (with parts=, on the judged parts only)."""
        return not self.problems and not self.mismatches and (self.cost_ok or not self.cost_judged)

    @property
    def mismatches(self) -> int:
        """Elements that fail (each counted once: per-class rows repeat the
        classes row); with parts=, those in the judged parts only."""
        if self._judge is not None:
            return self._fails[0]
        return sum(c.mismatches for c in self.components if not _per_class_row(c.component))

    @property
    def known_mismatches(self) -> int:
        """With parts=: the failing elements outside the judged parts (known departures); 0 without."""
        return self._fails[1]

    def judged_map(self, name: str, layout: Optional[str] = None) -> np.ndarray:
        """A bool array of the named array's shape: whether ``parts=`` judges
        each element (all True without parts=), in the layout compared (as
        :meth:`cause_map`)."""
        if name not in self._pairs:
            raise KeyError(f"no array {name!r} was compared (compared: {', '.join(sorted(self._pairs)) or 'none'})")
        shape = self._pairs[name][0].shape
        if self._judge is None:
            m = np.ones(shape, bool)
        else:
            m = self._judge.at(np.arange(int(np.prod(shape))), shape).reshape(shape)
        b, n, p, h, w = shape
        return lay.from_nchw(m.reshape(b, n * p, h, w), lay.check(layout or self.layout), n)

    def __bool__(self) -> bool:
        return self.ok

    def cause_map(self, name: str, layout: Optional[str] = None) -> np.ndarray:
        """A str array of the named array's shape: ``""`` where the element
        passes, else its cause code.  In the layout the arrays were compared
        in (``compare(..., layout=)``), so that it indexes like your array;
        ``layout="nchw"`` gives darknet's (B, C, H, W)."""
        if name not in self._codes and name not in self._pairs:
            compared = sorted(set(self._codes) | set(self._pairs))
            raise KeyError(f"no array {name!r} was compared (compared: {', '.join(compared) or 'none'})")
        idx = self._codes.get(name)
        if idx is None:  # nothing failed there
            idx = np.zeros(self._pairs[name][0].shape, np.uint8)
        c = np.array(dg.CODES, dtype=object)[idx]
        b, n, p, h, w = c.shape
        return lay.from_nchw(c.reshape(b, n * p, h, w).astype(str), lay.check(layout or self.layout), n)

    def headline(self) -> str:
        """The first line of every report: the verdict, the tolerance, and
        what fails (a dtype other than float32 first)."""
        verdict = "OK" if self.ok else "FAILED"
        total = sum(c.size for c in self.components if not _per_class_row(c.component))
        dt = ""
        if self.dtypes:
            given = sorted(set(self.dtypes.values()))
            dt = (f": {'/'.join(given)} given, float32 expected ({', '.join(self.dtypes)}); compared after a cast "
                  "to float32,")
        if self._judge is not None:
            m, k = self.mismatches, self.known_mismatches
            what = (f" parts judged: {self._judge.label()}; {m} element{'s' if m != 1 else ''} fail{'s' if m == 1 else ''}"
                    f" there, {k} in the other parts (known departures, not judged)")
        else:
            what = f" {self.mismatches} of {total} elements fail"
        return (f"[{self.kind}] parity {verdict} (tolerance: {self.tolerance}){dt}{';' if not dt else ''}"
                f"{what}" + (f", arrays of shape {self.shape}" if self.shape else ""))

    def headroom(self) -> str:
        """How much of the tolerance the largest difference uses, in words."""
        u = self.tolerance_used
        if u == 0:
            return "every element bit-identical to darknet's"
        if not np.isfinite(u):
            return f"some element differs beyond what the tolerance ({self.tolerance}) allows"
        return f"the largest difference uses {_share(u)} of the tolerance ({self.tolerance})"

    def __str__(self) -> str:
        lines = [self.headline()]
        for p in self.problems:
            lines.append(f"  problem: {p}")
        if self.components:
            lines.append(f"  {'array':<7}{'component':<14}{'elements':>9}{'fail':>7}{'max abs':>12}"
                         f"{'max rel':>10}{'max ulp':>16}")
            for c in self.components:
                flips = f" ({c.sign_flips} sign flips)" if c.sign_flips else ""
                lines.append(f"  {c.array:<7}{c.component:<14}{c.size:>9}{c.mismatches:>7}{c.max_abs:>12.4g}"
                             f"{_rel_str(c.max_rel):>10}{_ulp_str(c.max_ulp):>16}{flips}")
        judge = self._judge
        if judge is not None and self.known_mismatches and self.components:
            lines.append(f"  (the table counts every part; the verdict judges {judge.label()} only)")
        if self.cost is not None:
            e, a, u = self.cost
            verdict = ("" if self.cost_ok else " FAILS") if self.cost_judged else \
                f" (not judged: the cost sums every part{'' if self.cost_ok else ', and differs'})"
            lines.append(f"  cost: expected {e!r}, got {a!r} ({_ulp_str(u)}){verdict}")
        if self.parts and (not self.ok or self.known_mismatches):
            lines.append("  parts of the delta (how your values relate to darknet's there):")
            lines.append(f"    {'part':<22}{'elements':>10}{'fail':>9}  "
                         + (f"{'relation':<16}judged" if judge is not None else "relation"))
            for r in self.parts:
                rel = r.relation_text if r.failing else 'equal'
                lines.append(f"    {r.part:<22}{r.elements:>10}{r.failing:>9}  "
                             + (f"{rel:<16}{judge.judges_part(r.part)}" if judge is not None else rel)
                             + (f"  ({r.note})" if r.failing and r.note else ""))
        if self.known:
            lines.append(f"  known departures (outside the judged parts {judge.label() if judge else ''}: "
                         "reported, not judged):")
            lines.append(f"    {'array':<7}{'part':<22}{'elements':>10}{'fail':>9}  relation")
            for d in self.known:
                lines.append(f"    {d.array:<7}{d.part:<22}{d.elements:>10}{d.failing:>9}  {d.relation or '-'}")
        if self.causes:
            lines.append("  causes (most elements first):" if judge is None else
                         "  causes in the judged parts (most elements first):")
            lines.extend(_cause_lines(self.causes))
        elif not self.ok and not self.explained and self.mismatches:
            lines.append("  (pass input= and truth= to have each difference explained)")
        if self.known_causes:
            lines.append("  causes of the known departures (not judged):")
            lines.extend(_cause_lines(self.known_causes))
        if self.worst and not self.ok:
            lines.append("  worst elements:")
            for w in self.worst:
                lines.append(f"    {w}")
        return "\n".join(lines)

    def summary(self, causes: int = 3) -> str:
        """The verdict and the top causes, each with its message: the few
        lines that say what to change."""
        lines = [self.headline()]
        for p in self.problems:
            lines.append(f"  problem: {p}")
        if self.cost is not None and not self.cost_ok:
            e, a, u = self.cost
            lines.append(f"  cost: expected {e!r}, got {a!r} ({_ulp_str(u)})"
                         + ("" if self.cost_judged else " (not judged: the cost sums every part)"))
        for k, c in enumerate(self.causes[:causes], 1):
            lines.append(f"  {k}. {c.code}: {_count_text(c)}")
            lines.extend(_wrap(c.message, "     "))
        if len(self.causes) > causes:
            rest = self.causes[causes:]
            lines.append(f"  ... and {', '.join(f'{c.code} ({c.count})' for c in rest)}")
        if self.known:
            where = ", ".join(f"{d.part} {d.failing}" if d.array == "delta" else f"{d.array} {d.part} {d.failing}"
                              for d in self.known)
            why = ", ".join(f"{c.code} ({c.count})" for c in self.known_causes)
            lines.append(f"  known departures (not judged): {where}" + (f"; causes: {why}" if why else ""))
        return "\n".join(lines)

    def plot(self, path: str) -> str:
        """Write a PNG heatmap per array and component of where the arrays
        differ: log10(1 + ULP distance) of failing elements, summed over
        images, anchors and entries, on the layer's grid (columns across,
        rows down).  Needs matplotlib (``pip install 'pydarknet_loss[plot]'``)."""
        fig = self.figure()
        import matplotlib.pyplot as plt

        fig.savefig(path, format="png", dpi=80)
        plt.close(fig)
        return path

    def figure(self) -> Any:
        """The matplotlib Figure that :meth:`plot` saves."""
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
        diff = {k: np.where(bad, ulp_distance(e, a), 0) for k, (e, a, bad) in self._pairs.items()}
        panels = [(arr, idx, g) for arr in diff for g, idx in groups.items()]
        if not panels:
            raise ValueError("nothing was compared, so there is nothing to plot")
        cols = min(4, len(panels))
        rows = math.ceil(len(panels) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.0 * rows), squeeze=False)
        for ax in axes.ravel():
            ax.axis("off")
        for ax, (arr, idx, comp) in zip(axes.ravel(), panels):
            d = diff[arr][:, :, idx]
            heat = np.log10(1 + np.minimum(d, 2**31).astype(np.float64).sum(axis=(0, 1, 2)))
            im = ax.imshow(heat, cmap="magma", interpolation="nearest", vmin=0)
            ax.set_title(f"{arr}: {comp}", fontsize=9)
            ax.axis("on")
            ax.set_xlabel("col (grid x)", fontsize=8)
            ax.set_ylabel("row (grid y)", fontsize=8)
            ax.tick_params(labelsize=7)
            cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
            cb.set_label("log10(1 + ULP)", fontsize=7)
        fig.suptitle(f"[{self.kind}] where the implementation departs from darknet ({self.tolerance}): failing "
                     "elements' ULP distance, summed over images, anchors and entries", fontsize=9)
        fig.tight_layout()
        return fig


def _share(u: float) -> str:
    """A share of the tolerance, as a percentage that never rounds up to 100 % below it."""
    if u >= 1:
        return f"{u:.3g}x"
    pct = math.floor(u * 1000) / 10
    return f"{pct:g} %" if pct > 0 else "< 0.1 %"


def _per_class_row(name: str) -> bool:
    """A row of some classes ("class 7", "+77 classes"), which the classes row already counts."""
    return name.startswith(("class ", "+"))


def _count_text(c: Cause) -> str:
    """'88 elements', or for a departure that acts only jointly with another
    cause's model, 'with box_loss, in its 88 elements'."""
    if c.count == 0 and c.detail.get("joint_with"):
        n = int(c.detail.get("elements", 0))
        return f"with {c.detail['joint_with']}, in its {n} element{'s' if n != 1 else ''}"
    return f"{c.count} element{'s' if c.count != 1 else ''}"


def _cause_lines(causes: Sequence[Cause]) -> List[str]:
    lines = []
    for k, c in enumerate(causes, 1):
        where = []
        if c.cells:
            where.append(f"{len(c.cells)} cell{'s' if len(c.cells) > 1 else ''}")
        if c.truth_rows:
            where.append(f"truth rows {_rows(c.truth_rows)}")
        lines.append(f"    {k}. {c.code}: {_count_text(c)}"
                     + (f" ({'; '.join(where)})" if where else ""))
        lines.extend(_wrap(c.message, "       "))
    return lines


def _rows(rows: Sequence[Tuple[int, int]], limit: int = 6) -> str:
    s = ", ".join(f"{b}:{t}" for b, t in rows[:limit])
    return s + (f" (+{len(rows) - limit})" if len(rows) > limit else "")


def _wrap(text: str, indent: str, width: int = 110) -> List[str]:
    out, line = [], indent
    for word in text.split():
        if len(line) + len(word) + 1 > width and line.strip():
            out.append(line)
            line = indent
        line += ("" if line == indent else " ") + word
    if line.strip():
        out.append(line)
    return out


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def to_numpy(a: Any, name: str) -> np.ndarray:
    """A NumPy array from a NumPy array or a torch tensor (CPU or CUDA,
    detached and copied to the host); anything else is refused."""
    a = _validate.host_array(name, a)
    if isinstance(a, np.ndarray):
        return a
    mod = type(a).__module__
    if mod.startswith("torch") and hasattr(a, "detach"):
        return _validate.tensor_array(name, a)  # meta, sparse, nested tensors refused, naming them
    raise TypeError(f"{name} must be a numpy.ndarray or a torch.Tensor, got {type(a).__name__}")


def _to_nchw(a: np.ndarray, layout: str, name: str, n: int) -> np.ndarray:
    """A (B, C, H, W) view of an array in `layout`; shape errors name the
    layout (the hint of which layout it looks like is the caller's, once)."""
    if layout == "nchw" and a.ndim != 4:
        raise ValueError(f"{name} must have 4 dimensions (B, C, H, W), got shape {a.shape}")
    return lay.to_nchw(a, layout, n, name)


def component_names(layer: Any) -> List[str]:
    """Names of the entries of one anchor, in darknet's order."""
    if isinstance(layer, alexeyab.GaussianYoloLayer):  # x, sigma_x, y, sigma_y, ..., objectness
        return list(GAUSSIAN_ENTRIES) + [f"class {k}" for k in range(layer.classes)]
    coords = layer.coords
    names = ["x", "y", "w", "h"] + [f"mask{i}" for i in range(coords - 4)] + ["objectness"]
    return names + [f"class {k}" for k in range(layer.classes)]


def _group(name: str) -> str:
    return "classes" if name.startswith("class ") else name


def _guess_layout(shape: Tuple[int, ...], want: Tuple[int, ...], n: int) -> str:
    b, c, h, w = want
    if shape == (b, h, w, c):
        return " (it looks like (B, H, W, C): pass layout='nhwc')"
    if len(shape) == 5 and shape == (b, n, h, w, c // n):
        return " (it looks like (B, A, H, W, 5+classes): pass layout='bahwc')"
    if len(shape) == 5:
        return " (pass layout='bahwc' for (B, A, H, W, 5+classes))"
    return ""


def _host_truth(truth: Any) -> Any:
    """Truths as the oracle takes them, torch tensors (or a list of them) read into NumPy."""
    if isinstance(truth, (list, tuple)):
        return [_validate.host_array(f"truth[{k}]", t) for k, t in enumerate(truth)]
    return _validate.host_array("truth", truth)


def compare(expected: Any, actual: Any, layer: LayerLike, *, input: Optional[np.ndarray] = None,
            truth: Any = None, net_w: int = 416, net_h: int = 416, seen: int = 0, layout: str = "nchw",
            tolerance: Optional[str] = None, atol: float = 0.0, rtol: float = 0.0, max_ulp: int = 0,
            worst: int = 10, build: str = "cpu", parts: Union[str, Iterable[str], None] = None,
            _evidence: Optional[dg.Evidence] = None) -> ParityReport:
    """Compare another implementation with the oracle, and explain each difference.

    ``expected``: an oracle result (``layer.forward(...)``), a golden case
    (whose input and truth are then used), or a mapping with
    ``output``/``delta``/``cost``.  ``actual``: a mapping or object with any
    of ``output``, ``delta``, ``cost``: NumPy arrays or torch tensors (CPU or
    CUDA), float32, in ``layout`` ``"nchw"`` (darknet's (B, C, H, W)),
    ``"nhwc"`` or ``"bahwc"`` ((B, A, H, W, 5+classes)).

    ``input`` and ``truth`` (the raw layer input and truths both sides saw;
    ``net_w``, ``net_h`` for [yolo], ``seen`` for [region]) let every
    element that fails be attributed to one cause (``report.causes``), from
    what the oracle did on that input.

    ``tolerance``: ``"float32"`` (the default, everywhere in the package):
    darknet's own per-element rounding bound, the principled tolerance for
    an implementation of darknet's formulas in float32 (it needs ``input``
    and ``truth``; without them the default falls back to ``"exact"`` and
    the report says so), or ``"exact"``: bit for bit, attainable only by a
    bit-exact port.  ``atol``, ``rtol`` and ``max_ulp`` widen either.  The
    report's first line names the tolerance used.

    ``build``: whose delta the implementation's is compared with: ``"cpu"``
    (the forward's delta, the default) or ``"gpu"``: for [region], what
    upstream's GPU build hands on, the delta times p(1 - p) on x, y, the mask
    coords and objectness (``RegionResult.net_delta("gpu")``); pass the
    oracle's own result as ``expected`` and input and truth.  The causes are
    then found with that factor taken out of your values.  [yolo]'s GPU
    build hands on the delta as is.

    ``parts``: judge only some parts (issue 20: "my box loss differs, judge
    the rest").  One name or several, each a group (``"box"``,
    ``"objectness"``, ``"classes"``: every entry of that kind, wherever it
    lies) or one of darknet's parts of the delta (``"box.x"`` ...
    ``"objectness.ignored"``, ``"classes.positive"``, ``"classes.negative"``,
    ``"prior"``, ``"none"``: ``diagnosis.PARTS``).  The verdict then judges
    the elements in those parts only; the failing elements elsewhere are
    reported as known departures (``report.known``, ``report.known_causes``),
    not as failures.  It needs ``input`` and ``truth`` (darknet's parts are
    its decisions on them) and a layer whose decisions the oracle records
    ([yolo] of each darknet, pjreddie's [region]).  An output element
    belongs to the part of the delta element at its place.  The cost sums
    every part, so it is reported but not judged, unless every part is
    selected.
    """
    other = more.is_more(layer)  # AlexeyAB's [region] or [detection]: arrays as upstream stores them
    if not other and not isinstance(layer, (YoloLayer, RegionLayer, alexeyab.YoloLayer,
                                            alexeyab.GaussianYoloLayer)):
        raise TypeError("layer must be the YoloLayer, RegionLayer or alexeyab.YoloLayer (or "
                        "alexeyab.GaussianYoloLayer, alexeyab.RegionLayer, DetectionLayer) the expected result came "
                        "from")
    if other and ((tolerance is not None and tolerance != "exact") or layout != "nchw"):
        raise ValueError(f"{layer.kind}: compare() takes its arrays as upstream stores them (layout='nchw' here "
                         "means that) and compares them exactly (with atol/rtol/max_ulp if you must): no decision "
                         "record exists for this layer to bound darknet's own rounding")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(map(repr, LAYOUTS))}, got {layout!r}")
    defaulted = tolerance is None
    if defaulted:
        tolerance = DEFAULT_TOLERANCE
    if tolerance not in TOLERANCES:
        raise ValueError(f"tolerance must be 'exact' or 'float32', got {tolerance!r}")
    if build not in ("cpu", "gpu"):
        raise ValueError(f"build must be 'cpu' or 'gpu', got {build!r}")
    selected = None if parts is None else _validate.parts_option(parts, PART_GROUPS, dg.PARTS)
    gpu = build == "gpu" and isinstance(layer, RegionLayer)
    case = expected if hasattr(expected, "expected") and hasattr(expected, "input") else None
    if case is not None:
        input = case.input if input is None else input
        truth = case.truth if truth is None else truth
        net_w = case.params.get("net_w", net_w) if hasattr(case, "params") else net_w
        net_h = case.params.get("net_h", net_h) if hasattr(case, "params") else net_h
        seen = getattr(case, "seen", seen)
        if not case.train:
            truth = None
        expected = case.expected()
    atol, rtol, max_ulp, worst = _validate.tolerance_options(atol, rtol, max_ulp, worst)  # issue 22
    if truth is not None:
        truth = _host_truth(truth)
    tol = Tolerance(float(atol), float(rtol), int(max_ulp), float32=tolerance == "float32")
    names = more.names(layer) if other else component_names(layer)
    per = len(names)
    n = layer.n
    report = ParityReport(kind=layer.kind, tolerance=tol, _names=names, layout=layout,
                          _mask=[int(m) for m in layer.mask] if getattr(layer, "mask", None) is not None else None)
    present = [k for k in ARRAYS if _get(actual, k) is not None]
    if not present and _get(actual, "cost") is None:
        raise ValueError("actual has none of output, delta, cost")

    ev: Optional[dg.Evidence] = _evidence  # the oracle's own run, when the caller already has it
    x = to_numpy(input, "input") if input is not None else None
    if isinstance(x, np.ndarray) and x.dtype != np.float32:  # named as compare's argument, not forward's x
        raise TypeError(f"input must be float32 (the layer's input, as darknet computes), got {x.dtype}")
    # [Gaussian_yolo], AlexeyAB's [region], [detection]: no record of the
    # oracle's decisions, so only the causes that need none apply
    gaussian = isinstance(layer, alexeyab.GaussianYoloLayer)
    report.explained = ev is not None or (x is not None and truth is not None and not gaussian and not other)
    if selected is not None:
        if gaussian or other:
            raise ValueError(f"parts= is not available for {layer.kind}: darknet's parts of the delta are its "
                             "decisions (which cells are given a truth, which are ignored), read from the oracle's "
                             "record, and the oracle records them for [yolo] (pjreddie's, AlexeyAB's, hank-ai's) and "
                             "pjreddie's [region] only")
        if not report.explained:
            missing = " and ".join(k for k, v in (("input=", x), ("truth=", truth)) if v is None)
            raise ValueError(f"parts= needs input= and truth= ({missing} not given"
                             + (": an inference case (train=False) has no truth" if case is not None
                                and not case.train else "") + "): darknet's parts of the delta are its decisions on "
                             "that input (which cells are given a truth, which are ignored)")
        if not present:
            raise ValueError("parts= judges elements of the output or the delta, and actual holds only a cost, which "
                             "sums every part: give the delta (or the output) to judge some parts")
    if tol.float32 and (gaussian or other) and present:
        if not defaulted:
            raise ValueError("tolerance='float32' is not available for [Gaussian_yolo] (its per-element rounding "
                             "bound is not derived); use tolerance='exact' with atol/rtol/max_ulp")
        tol = Tolerance(tol.atol, tol.rtol, tol.max_ulp, float32=False,
                        note=f"float32, the default, is not derived for {layer.kind}")
        report.tolerance = tol
    elif tol.float32 and not report.explained and present and defaulted:
        tol = Tolerance(tol.atol, tol.rtol, tol.max_ulp, float32=False,
                        note="float32, the default, needs input= and truth=")
        report.tolerance = tol
    elif tol.float32 and not report.explained and present:
        raise ValueError("tolerance='float32' needs input= and truth=: the bound is darknet's own rounding of each "
                         "element on that input (a golden case carries both)")

    def oracle() -> Optional[dg.Evidence]:
        """The oracle's forward on the input, run when something differs."""
        nonlocal ev
        if ev is None and report.explained:
            ev = dg.evidence(layer, x, truth, net_w=net_w, net_h=net_h, seen=seen)
        if ev is not None and gpu:
            ev.build = "gpu"
        return ev

    judge: Optional[_Judge] = None
    if selected is not None:
        def delta_parts() -> np.ndarray:
            """Every element's part, from darknet's own delta on this input."""
            oracle_ev = oracle()
            assert oracle_ev is not None
            D = oracle_ev.D
            return part_ids(dg.Array("delta", D, D, np.zeros(D.shape, bool), oracle_ev, layer))

        judge = _Judge(selected, int(layer.coords), delta_parts)
        report._judge, report.judged, report.cost_judged = judge, selected, judge.everything

    if gpu and "delta" in present and not report.explained:
        raise ValueError("build='gpu' needs input= and truth=: the GPU build's factor p(1 - p) is taken from the "
                         "oracle's output on that input")

    arrays: List[dg.Array] = []
    failing: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}  # per array compared in NCHW: (flat indices, ULPs)
    for key in present:
        exp = _get(expected, key)
        if exp is None:
            report.problems.append(f"expected has no {key} to compare with")
            continue
        exp = np.asarray(exp)
        if exp.dtype != np.float32:
            raise TypeError(f"expected {key} must be float32 (darknet's arrays), got {exp.dtype}")
        raw = to_numpy(_get(actual, key), f"actual {key}")
        if other:
            try:
                e5 = more.view5(layer, key, exp, f"expected {key}")
                a5 = more.view5(layer, key, raw, f"actual {key}")
            except ValueError as exc:
                report.problems.append(str(exc))
                continue
            report.shape = exp.shape
            if a5.shape != e5.shape:
                report.problems.append(f"{key}: shape {raw.shape}, expected {exp.shape}")
                continue
            if a5.dtype != np.float32:
                report.problems.append(f"{key} has dtype {a5.dtype}; darknet computes float32 (compared as float32)")
                if a5.dtype.kind not in "fiu":
                    continue
                a5 = a5.astype(np.float32)
            e5, a5 = np.ascontiguousarray(e5), np.ascontiguousarray(a5)
            stats, bad, nbad = _native.compare_arrays(e5, a5, tol.atol, tol.rtol, tol.max_ulp)
            if nbad:
                flat = np.flatnonzero(bad)
                sub_e, sub_a = e5.reshape(-1)[flat], a5.reshape(-1)[flat]
                report.tolerance_used = max(report.tolerance_used, float(
                    tol.ratio(sub_e, sub_a, ulp_distance(sub_e, sub_a), None).max()))
            report._pairs[key] = (e5, a5, bad)
            if nbad:
                arrays.append(dg.Array(key, e5, a5, bad, None, layer))
            report.components.extend(_components(key, names, _PerEntry.of(stats)))
            continue
        try:
            act = _to_nchw(raw, layout, f"actual {key}", n)
        except ValueError as exc:
            msg = str(exc)
            report.problems.append(msg + ("" if "layout=" in msg else _guess_layout(raw.shape, exp.shape, n)))
            continue
        report.shape = exp.shape
        if act.shape != exp.shape:
            report.problems.append(f"{key}: shape {raw.shape} (layout {layout!r}), expected {exp.shape} as (B, C, H, W)"
                                   + _guess_layout(raw.shape, exp.shape, n))
            continue
        if act.dtype != np.float32:
            report.dtypes[key] = str(act.dtype)
            report.problems.append(
                f"{key} has dtype {act.dtype}; darknet computes float32, so a float32 implementation is what the "
                "oracle reproduces: return float32 (the comparison below casts your values to float32)")
            if act.dtype.kind not in "fiu":
                continue
            act = act.astype(np.float32)
        b, c, h, w = exp.shape
        if c % per:
            raise ValueError(f"{key} has {c} channels, not a multiple of {per} entries per anchor for this layer")
        e5 = np.ascontiguousarray(exp).reshape(b, c // per, per, h, w)
        a5 = np.ascontiguousarray(act).reshape(b, c // per, per, h, w)
        e_cpu, g = e5, None
        if gpu and key == "delta":
            oracle_ev = oracle()
            assert oracle_ev is not None
            g = _gpu_factor(layer, oracle_ev.Y)
            e5 = (e5 * g).astype(np.float32)  # backward_region_layer_gpu's delta*(1 - y)*y, in float
        # One pass in C: which elements are not bit-equal, and the table's
        # reductions; the tolerance is then applied at the cells that differ.
        stats, bad, nbad = _native.compare_arrays(e5, a5, 0.0, 0.0, 0)
        if nbad:
            flat = np.flatnonzero(bad)  # the elements that are not bit-equal
            sub_e, sub_a = e5.reshape(-1)[flat], a5.reshape(-1)[flat]
            bound = None
            if tol.float32:
                oracle_ev = oracle()
                assert oracle_ev is not None
                bound = oracle_ev.bound_at(key, flat)
                if g is not None:  # the GPU factor's own rounding, on top of the delta's
                    gs = g.reshape(-1)[flat].astype(np.float64)
                    ys = oracle_ev.Y.reshape(-1)[flat]
                    ec = e_cpu.reshape(-1)[flat].astype(np.float64)
                    u32 = lambda v: np.spacing(np.abs(v).astype(np.float32)).astype(np.float64)  # noqa: E731
                    bound = bound * gs + 2 * np.where(gs != 1, np.abs(ec) * u32(ys), 0) + 2 * u32(sub_e)
            ulp = ulp_distance(sub_e, sub_a)
            sub_bad = ~tol.passes(sub_e, sub_a, ulp, bound)
            ratio = tol.ratio(sub_e, sub_a, ulp, bound)
            if judge is not None:  # the headroom of the judged parts
                ratio = ratio[judge.at(flat, e5.shape)]
            report.tolerance_used = max(report.tolerance_used, float(ratio.max(initial=0.0)))
            bad.reshape(-1)[flat] = sub_bad
            stats["fail"] = np.bincount(np.unravel_index(flat, bad.shape)[2][sub_bad], minlength=per)
            failing[key] = (flat[sub_bad], ulp[sub_bad])  # the failing elements, ascending, and their ULPs
        report._pairs[key] = (e5, a5, bad)
        if key in failing and failing[key][0].size and g is not None:
            # The causes are found in the CPU build's terms: the GPU factor taken out of your values.
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                a64 = np.where(g != 0, a5.astype(np.float64) / g, a5.astype(np.float64))
            arrays.append(dg.Array(key, e_cpu, a64.astype(np.float32), bad, oracle(), layer, A64=a64)
                          .known_failing(failing[key][0]))
        elif key in failing and failing[key][0].size:
            arrays.append(dg.Array(key, e5, a5, bad, oracle(), layer).known_failing(failing[key][0]))
        report.components.extend(_components(key, names, _PerEntry.of(stats)))

    if report.explained and "delta" in report._pairs and not (gaussian or other):
        def read_assignment(a5: np.ndarray = report._pairs["delta"][1]) -> Any:
            from .assignment import assignment  # report.assignment: read when first asked for

            oracle_ev = oracle()
            assert oracle_ev is not None
            a = a5.astype(np.float64)
            if gpu:  # the implementation's values in the CPU build's terms, as the diagnosis reads them
                g = _gpu_factor(layer, oracle_ev.Y)
                with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                    a = np.where(g != 0, a / g, a)
            return assignment(oracle_ev, a)

        report._assign_src = read_assignment
    diag = dg.diagnose(arrays, ev)
    report.causes = diag.causes
    report._codes = diag.index
    report.parts = diag.parts
    judged: Dict[str, np.ndarray] = {}  # parts=: per array, whether each failing element is judged
    if judge is not None:
        judged = {arr.name: judge.at(np.flatnonzero(arr.fail), arr.fail.shape) for arr in arrays}
        _split(report, judge, arrays, judged, diag.index)
    for arr in arrays:
        E, A, _ = report._pairs[arr.name]  # as compared (the GPU build's delta with build="gpu")
        if arr.name in failing:
            flat, ulp = failing[arr.name]
        else:
            flat = np.flatnonzero(arr.fail)
            ulp = ulp_distance(E.reshape(-1)[flat], A.reshape(-1)[flat])
        if arr.name in judged:
            flat, ulp = flat[judged[arr.name]], ulp[judged[arr.name]]  # the worst elements of the judged parts
        if flat.size:
            top = _largest_first(ulp, worst)
            codes = diag.index[arr.name]
            for f, u in zip(flat[top], ulp[top]):
                bi, ai, ei, ri, ci = (int(v) for v in np.unravel_index(f, arr.fail.shape))
                report.worst.append(Location(arr.name, bi, ai, ri, ci, names[ei], float(E[bi, ai, ei, ri, ci]),
                                             float(A[bi, ai, ei, ri, ci]), int(u),
                                             cfg_anchor=None if report._mask is None else report._mask[ai],
                                             cause=dg.CODES[int(codes[bi, ai, ei, ri, ci])]))
    act_cost = _get(actual, "cost")
    if act_cost is not None:
        exp_cost = _get(expected, "cost")
        if exp_cost is None:
            report.problems.append("expected has no cost to compare with")
        else:
            e = np.array(_validate.scalar_cost("expected cost", exp_cost))
            a = np.array(_validate.scalar_cost("actual cost", act_cost))
            u = ulp_distance(e, a)
            report.cost = (float(e), float(a), int(u))
            report.cost_ok = bool(tol.passes(e, a, u))
            if report.cost_judged:
                report.tolerance_used = max(report.tolerance_used, float(tol.ratio(e, a, u)))
    return report


def _largest_first(v: np.ndarray, k: int) -> np.ndarray:
    """``np.argsort(-v, kind="stable")[:k]`` (the k largest, ties in index
    order) without sorting all of v: only the values at or above the k-th
    largest are sorted."""
    if k <= 0 or v.size <= 4 * k:
        return np.argsort(-v, kind="stable")[:max(k, 0)]
    kth = np.partition(-v, k - 1)[k - 1]  # the k-th smallest of -v
    cand = np.flatnonzero(-v <= kth)  # every element the full sort puts first, in index order
    return cand[np.argsort(-v[cand], kind="stable")[:k]]


def _split(report: ParityReport, judge: _Judge, arrays: Sequence[dg.Array], judged: Dict[str, np.ndarray],
           index: Dict[str, np.ndarray]) -> None:
    """parts=: count the failing elements in and outside the judged parts,
    list the known departures per part, and split each cause in two: its
    elements in the judged parts (``report.causes``) and outside them
    (``report.known_causes``); message and truth rows are the cause's whole."""
    n_in = sum(int(j.sum()) for j in judged.values())
    n_out = sum(int((~j).sum()) for j in judged.values())
    report._fails = (n_in, n_out)
    relation = {r.part: r.relation_text for r in report.parts if r.failing}
    for arr in arrays:
        flat = np.flatnonzero(arr.fail)[~judged[arr.name]]
        if not flat.size:
            continue
        if arr.name == "delta":
            ids = judge.ids()
            sizes = np.bincount(ids.reshape(-1), minlength=len(dg.PARTS))
            fails = np.bincount(ids.reshape(-1)[flat], minlength=len(dg.PARTS))
            for pid in np.flatnonzero(fails):
                part = dg.PARTS[pid]
                report.known.append(KnownDeparture("delta", part, int(sizes[pid]), int(fails[pid]),
                                                   relation.get(part, "")))
        else:  # the output: by entry group (no relation is fitted there)
            shape = arr.fail.shape
            per_entry = arr.fail.size // shape[2]
            entry_group = judge.entry_group(np.arange(shape[2]))
            groups = judge.entry_group((flat // (shape[3] * shape[4])) % shape[2])
            fails = np.bincount(groups, minlength=3)
            for g in np.flatnonzero(fails):
                report.known.append(KnownDeparture(arr.name, PART_GROUPS[g], int((entry_group == g).sum()) * per_entry,
                                                   int(fails[g])))
    number = {c: k for k, c in enumerate(dg.CODES)}
    failing = {}  # per array: the failing elements, their cause numbers
    for arr in arrays:
        flat = np.flatnonzero(arr.fail)
        failing[arr.name] = (flat, index[arr.name].reshape(-1)[flat])
    inside: List[Cause] = []
    outside: List[Cause] = []
    for c in report.causes:
        for side, out in ((True, inside), (False, outside)):
            per_array: List[Tuple[str, int]] = []
            cells = set()
            for arr in arrays:
                flat, codes = failing[arr.name]
                mine = flat[(codes == number[c.code]) & (judged[arr.name] == side)]
                if mine.size:
                    per_array.append((arr.name, int(mine.size)))
                    b, a, _, j, i = np.unravel_index(mine, arr.fail.shape)
                    cells.update(zip(b.tolist(), a.tolist(), j.tolist(), i.tolist()))
            if per_array:
                out.append(dataclasses.replace(c, count=sum(n for _, n in per_array), arrays=tuple(per_array),
                                               cells=tuple(sorted(cells))))
    for c in report.causes:  # a departure acting only jointly goes where its partner's elements are
        partner = c.detail.get("joint_with") if c.count == 0 else None
        for out in (inside, outside):
            if partner and any(o.code == partner for o in out):
                out.append(c)
    inside.sort(key=lambda c: -c.count)  # stable: the engine's order breaks ties
    outside.sort(key=lambda c: -c.count)
    report.causes, report.known_causes = inside, outside


def _gpu_factor(layer: RegionLayer, Y: np.ndarray) -> np.ndarray:
    """(B, n, entries, H, W) float32: what backward_region_layer_gpu
    multiplies the delta by, (1 - y)*y in float on x, y, the mask coords and
    objectness (unless background), 1 elsewhere (as RegionResult.net_delta)."""
    g = np.ones(Y.shape, np.float32)
    entries = [0, 1, *range(4, layer.coords)] + ([] if layer.background else [layer.coords])
    y = Y[:, :, entries]
    g[:, :, entries] = (np.float32(1) - y) * y
    return g


@dataclass
class _PerEntry:
    """Per entry of an anchor (axis 2), reductions over images, anchors and
    cells: what a table row needs, for a row being any set of entries."""

    size: np.ndarray  #: elements per entry
    fail: np.ndarray  #: failing elements
    max_abs: np.ndarray  #: largest finite |actual - expected| (-inf: none)
    max_rel: np.ndarray  #: largest relative difference where expected != 0 (-inf: none)
    max_ulp: np.ndarray  #: largest ULP distance between same-sign values (-1: none)
    nan_vs_num: np.ndarray  #: whether NaN meets a number
    flips: np.ndarray  #: sign flips

    @classmethod
    def of(cls, stats: Dict[str, np.ndarray]) -> "_PerEntry":
        """From dn_compare_arrays's per-entry reductions (-1 where none)."""
        none = lambda v: np.where(v < 0, -np.inf, v.astype(np.float64))  # noqa: E731
        return cls(size=stats["size"], fail=stats["fail"], max_abs=none(stats["max_abs"]),
                   max_rel=none(stats["max_rel"]), max_ulp=stats["max_ulp"], nan_vs_num=stats["nan_vs_num"] > 0,
                   flips=stats["flips"])

    def row(self, array: str, name: str, idx: List[int]) -> ComponentStats:
        ma, mr, mu = self.max_abs[idx].max(), self.max_rel[idx].max(), self.max_ulp[idx].max()
        return ComponentStats(
            array=array, component=name, size=int(self.size[idx].sum()), mismatches=int(self.fail[idx].sum()),
            max_abs=float(ma) if np.isfinite(ma) else 0.0, max_rel=float(mr) if np.isfinite(mr) else None,
            max_ulp=ULP_INF if self.nan_vs_num[idx].any() else (int(mu) if mu >= 0 else None),
            sign_flips=int(self.flips[idx].sum()))


def _per_entry(e5: np.ndarray, a5: np.ndarray, bad: np.ndarray, ulp: np.ndarray) -> _PerEntry:
    axes = (0, 1, 3, 4)
    with np.errstate(invalid="ignore", over="ignore"):
        absd = np.abs(a5.astype(np.float64) - e5.astype(np.float64))
        e_abs = np.abs(e5).astype(np.float64)
        rel = absd / np.where(e_abs > 0, e_abs, np.inf)
    fin = np.isfinite(absd)
    same = same_sign(e5, a5)
    per = bad.shape[2]
    size = np.full(per, bad.size // per)
    return _PerEntry(
        size=size, fail=bad.sum(axis=axes),
        max_abs=np.where(fin, absd, -np.inf).max(axis=axes, initial=-np.inf),
        max_rel=np.where(fin & (e_abs > 0), rel, -np.inf).max(axis=axes, initial=-np.inf),
        max_ulp=np.where(same, ulp, -1).max(axis=axes, initial=-1),
        nan_vs_num=(ulp == ULP_INF).any(axis=axes), flips=(~same & ~np.isnan(absd)).sum(axis=axes))


def _components(key: str, names: List[str], pe: _PerEntry) -> List[ComponentStats]:
    """The table rows of one array: a row per component (over all its
    elements: the headroom when nothing fails; ULPs only between values of
    one sign; relative differences only where the expected value is not 0),
    the classes as one row, then the worst few classes that fail and how
    many more."""
    groups: Dict[str, List[int]] = {}
    for k, nm in enumerate(names):
        groups.setdefault(_group(nm), []).append(k)
    out = []
    for g, idx in groups.items():
        out.append(pe.row(key, g, idx))
        if g == "classes" and len(idx) > 1:
            failing = [k for k in idx if pe.fail[k]]
            failing.sort(key=lambda k: (-int(pe.fail[k]), k))
            for k in failing[:CLASS_ROWS]:
                out.append(pe.row(key, names[k], [k]))
            if len(failing) > CLASS_ROWS:
                more = failing[CLASS_ROWS:]
                row = pe.row(key, f"+{len(more)} classes", more)
                out.append(ComponentStats(array=key, component=row.component, size=row.size,
                                          mismatches=row.mismatches, max_abs=row.max_abs, max_rel=None,
                                          max_ulp=None))
    return out


def assert_parity(expected: Any, actual: Any, layer: LayerLike, **kw: Any) -> ParityReport:
    """compare(), raising AssertionError with the report when it fails."""
    __tracebackhide__ = True  # pytest shows the caller's line, not this one
    report = compare(expected, actual, layer, **kw)
    if not report.ok:
        raise AssertionError("\n" + str(report))
    return report
