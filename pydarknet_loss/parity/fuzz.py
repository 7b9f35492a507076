"""Differential fuzzing with shrinking: the smallest input on which an
implementation departs from darknet (``pip install 'pydarknet_loss[fuzz]'``).

:func:`fuzz` draws cases from :func:`pydarknet_loss.strategies.cases`, runs
your implementation and the oracle on each, and on the first departure lets
Hypothesis shrink the case to a minimal one that departs *for the same
cause*: the first failing case's top cause is the run's cause, and a
shrink whose top cause is another one is not taken (Hypothesis is told the
case is invalid, so it neither shrinks towards it nor reports it).  An
implementation with two departures thus keeps the first one found; the
other causes seen while shrinking are reported beside it
(:attr:`FuzzResult.others`, each with the smallest case seen, not shrunk).
It returns a
:class:`FuzzResult`: either how many cases passed and the largest
difference seen (the headroom), or the minimal case with its diagnosis, a
ready-to-paste reproducer, and (with ``out=``) the case written as a golden
``.npz`` that a CI can check from then on.

Hypothesis keeps the failing cases it found in an example database and
tries them first next time.  :func:`fuzz` and :func:`parity_test` keep it,
and Hypothesis's other caches, in a per-user cache folder
(:func:`default_database_path`), never in the working directory unless
``database=`` names a folder there.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Type

import numpy as np

try:
    from hypothesis import HealthCheck, Phase, given, reject, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase
except ImportError:  # pragma: no cover - depends on the environment
    raise ImportError("pydarknet_loss.fuzz needs Hypothesis: pip install 'pydarknet_loss[fuzz]' "
                      "(or pip install hypothesis)") from None

from .. import strategies as S
from ..layers import alexeyab
from ..layers.pjreddie import RegionLayer, YoloLayer
from . import diagnose as dg
from . import golden
from .compare import DEFAULT_TOLERANCE, LAYOUTS, ParityReport, compare

Impl = Callable[..., Any]


# ---- where Hypothesis keeps what it found ------------------------------------------------------------

#: The environment variable that moves the folder :func:`default_database_path` names.
DATABASE_ENV = "PYDARKNET_LOSS_HYPOTHESIS_DB"


class _DefaultDatabase:
    """The default of ``database=``: the per-user cache folder."""

    def __repr__(self) -> str:
        return "DEFAULT_DATABASE"


#: ``database=``'s default: the examples folder under :func:`default_database_path`.
DEFAULT_DATABASE: Any = _DefaultDatabase()


def default_database_path() -> Path:
    """The folder Hypothesis keeps its state in for :func:`fuzz` and
    :func:`parity_test` unless told otherwise: ``$PYDARKNET_LOSS_HYPOTHESIS_DB``
    when set, else ``$XDG_CACHE_HOME/pydarknet_loss/hypothesis`` (an absolute
    ``XDG_CACHE_HOME`` only, as the XDG spec says), else
    ``~/.cache/pydarknet_loss/hypothesis``.  The example database is its
    ``examples`` folder, as in Hypothesis's own ``.hypothesis``."""
    env = os.environ.get(DATABASE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "pydarknet_loss" / "hypothesis"


def example_database(database: Any = DEFAULT_DATABASE) -> Optional[ExampleDatabase]:
    """``database=`` as Hypothesis takes it: the default (the ``examples``
    folder of :func:`default_database_path`), a folder (str or path), a
    Hypothesis ``ExampleDatabase`` (used as is), or None (no database:
    nothing found is kept)."""
    if database is DEFAULT_DATABASE:
        return DirectoryBasedExampleDatabase(default_database_path() / "examples")
    if database is None or isinstance(database, ExampleDatabase):
        return database
    if isinstance(database, (str, os.PathLike)):
        if not str(database):
            raise ValueError("database= must name a folder, got an empty path (None disables the database)")
        return DirectoryBasedExampleDatabase(Path(database).expanduser())
    raise TypeError(f"database= must be a folder path, a hypothesis ExampleDatabase or None, "
                    f"got {type(database).__name__}")


@contextlib.contextmanager
def _hypothesis_home(keep: bool = True) -> Iterator[None]:
    """Point Hypothesis's own storage (its caches, e.g. the constants it
    collects from local modules, which it writes even without a database)
    at :func:`default_database_path` while a run lasts, instead of
    ``./.hypothesis``; with ``keep=False`` (``database=None``) at a
    temporary folder removed afterwards.  Left alone where the user chose
    a place (``HYPOTHESIS_STORAGE_DIRECTORY`` or ``set_hypothesis_home_dir``)."""
    from hypothesis import configuration as hc

    if os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY") or not hasattr(hc, "set_hypothesis_home_dir"):
        yield
        return
    # Hypothesis keeps the chosen home in a private global; its default is
    # ./.hypothesis, taken lazily on first use.
    before = getattr(hc, "__hypothesis_home_directory", None)
    if before is not None and before != getattr(hc, "__hypothesis_home_directory_default", None):
        yield
        return
    with contextlib.ExitStack() as stack:
        home = default_database_path() if keep else Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix="pydarknet_loss-hypothesis-")))
        hc.set_hypothesis_home_dir(home)
        try:
            yield
        finally:
            hc.set_hypothesis_home_dir(before)


@contextlib.contextmanager
def _repeatable_draws(active: bool) -> Iterator[None]:
    """Make a seeded run draw the same cases in every process.

    Hypothesis (6.131 on) now and then draws a constant found in the
    source of whatever local modules are imported at that moment, so the
    same seed drew other cases under a whole test suite than in a single
    test file (the seeded run repeated only within one set of imports).
    While a seeded run lasts the pool of local constants is empty, which
    is what it is where no local module is loaded; Hypothesis's own
    constants stay.  Where its internals are not as expected, nothing
    is changed."""
    try:
        from hypothesis.internal.conjecture import providers as hp
    except ImportError:  # pragma: no cover - an older Hypothesis draws no local constants
        hp = None
    if not active or hp is None or not all(
            hasattr(hp, n) for n in ("_get_local_constants", "Constants", "CONSTANTS_CACHE")):
        yield
        return
    saved = hp._get_local_constants
    empty = hp.Constants()
    hp.CONSTANTS_CACHE.cache.clear()
    hp._get_local_constants = lambda: empty
    try:
        yield
    finally:
        hp._get_local_constants = saved
        hp.CONSTANTS_CACHE.cache.clear()


def _database_key(impl: Impl, *parts: Any) -> bytes:
    """The example database's key of a run: the implementation's name (not
    its source: a fixed implementation is tried first on what failed
    before) and what the cases are drawn from and judged by."""
    name = (f"{getattr(impl, '__module__', '')}:"
            f"{getattr(impl, '__qualname__', None) or type(impl).__qualname__}")
    return hashlib.sha256(repr((name,) + parts).encode()).hexdigest().encode()


@dataclass(frozen=True)
class Difference:
    """The largest difference seen between the implementation and the
    oracle: ``used``, the largest share of the tolerance any element's
    difference took (0: every element bit-identical; at most 1 when every
    case passed; the headroom is 1 minus it), and the largest absolute and
    ULP differences (between values of one sign) over all elements."""

    abs: float = 0.0
    ulp: int = 0
    used: float = 0.0
    tolerance: str = ""  #: the tolerance, as the reports name it

    def __str__(self) -> str:
        if self.used == 0:
            return "every element bit-identical to darknet's"
        from .compare import _share

        return (f"headroom: the largest difference uses {_share(self.used)} of the tolerance"
                + (f" ({self.tolerance})" if self.tolerance else ""))


@dataclass
class Failure:
    """The minimal case found, with its diagnosis."""

    input: np.ndarray
    truth: np.ndarray
    layer: Any
    net_w: int
    net_h: int
    seen: int
    report: ParityReport  #: the diagnosis; report.causes[0] is the top cause
    reproducer: str  #: Python source that reproduces the departure
    path: Optional[Path] = None  #: the golden .npz written with out=

    @property
    def cause(self) -> str:
        return self.report.causes[0].code if self.report.causes else "problem"

    def __str__(self) -> str:
        b, c, h, w = self.input.shape
        rows = int(sum(1 for bb in range(b) for t in range(self.truth.shape[1]) if self.truth[bb, t].any()))
        lines = [f"minimal case: {self.layer!r}, input {b}x{c}x{h}x{w}, {rows} truth row{'s' if rows != 1 else ''}",
                 self.report.summary()]
        if self.path is not None:
            lines.append(f"stored as a golden case: {self.path}")
        return "\n".join(lines)


@dataclass
class FuzzResult:
    """What :func:`fuzz` found.  ``ok``: no departure; ``examples``: cases
    run (shrinking included); ``max_difference``: the largest difference
    among the cases that passed (the headroom); ``failure``: None, or the
    minimal failing case."""

    ok: bool
    examples: int
    max_difference: Difference
    failure: Optional[Failure] = None
    seconds: float = 0.0
    passed: int = 0  #: cases that passed
    #: Departures whose top cause is one ``failure``'s report does not name,
    #: seen while it was shrunk (shrinking keeps to the first cause found):
    #: for each cause, in the order first seen, the smallest such case seen,
    #: NOT shrunk.  Fuzz again after fixing the first cause (or with
    #: ``parts=`` leaving its part out) to shrink one of them.
    others: List[Failure] = field(default_factory=list)

    def __str__(self) -> str:
        if self.ok:
            tol = f" under tolerance {self.max_difference.tolerance}" if self.max_difference.tolerance else ""
            return f"{self.passed} cases passed{tol} in {self.seconds:.1f} s; {_difference_words(self.max_difference)}"
        assert self.failure is not None
        text = (f"departs from darknet ({self.failure.cause}) after {self.examples} cases, shrunk to:\n"
                f"{self.failure}")
        return text + _others_words(self.others)


def _others_words(others: List["Failure"]) -> str:
    if not others:
        return ""
    seen = "; ".join(f"{o.cause} ({_size_words(o)})" for o in others)
    return f"\nother causes seen while shrinking (smallest case seen, not shrunk): {seen}"


def _rows(truth: np.ndarray) -> int:
    """The truth rows in use (any non-zero value), as Failure's summary counts them."""
    if truth.ndim < 2 or truth.size == 0:
        return int(truth.any())
    return int(truth.reshape(-1, truth.shape[-1]).any(axis=-1).sum())


def _size_words(f: "Failure") -> str:
    n = _rows(f.truth)
    dims = "x".join(str(d) for d in f.input.shape)
    return f"{n} truth row{'s' if n != 1 else ''}, input {dims}"


def _difference_words(d: Difference) -> str:
    """The headroom, without repeating the tolerance the line already names."""
    return str(Difference(d.abs, d.ulp, d.used))


class ParityFailure(AssertionError):
    """Raised by :func:`fuzz` with ``raise_on_failure=True``; ``.result``
    holds the :class:`FuzzResult`."""

    def __init__(self, result: FuzzResult) -> None:
        super().__init__(str(result))
        self.result = result


class _Departure(Exception):
    """A case the implementation fails; one subclass per cause code, so that
    Hypothesis shrinks each cause on its own."""

    def __init__(self, case: S.Case, report: ParityReport) -> None:
        super().__init__(report.summary())
        self.case = case
        self.report = report


_KINDS: Dict[str, Type[_Departure]] = {}


def _departure(code: str) -> Type[_Departure]:
    if code not in _KINDS:
        _KINDS[code] = type(f"Departure_{code}", (_Departure,), {})
    return _KINDS[code]


def _evaluate(impl: Impl, case: S.Case, layout: str, tolerance: str, tol: Dict[str, Any]) -> ParityReport:
    if isinstance(case.layer, alexeyab.GaussianYoloLayer) or S._more(case.layer):
        # [Gaussian_yolo], AlexeyAB's [region], [detection]: no record of the
        # oracle's decisions and no derived float32 bound, so the comparison is
        # exact (atol/rtol/max_ulp widen it)
        try:
            actual = case.run(impl, layout)
        except Exception as exc:
            raise RuntimeError(f"the implementation raised on {case}: {type(exc).__name__}: {exc}") from exc
        if S._more(case.layer):  # as upstream stores them
            return compare(case.expected(), actual, case.layer, layout="nchw", tolerance="exact", **tol)
        return compare(case.expected(), actual, case.layer, input=case.x, truth=case.truth, layout=layout,
                       tolerance="exact", **case.net(), **tol)
    # One oracle run serves as the expected result and as the record the
    # diagnosis reads.
    ev = dg.evidence(case.layer, case.x, case.truth, **case.net())
    try:
        actual = case.run(impl, layout)
    except Exception as exc:  # the implementation itself failed: report it as the user's error
        raise RuntimeError(f"the implementation raised on {case}: {type(exc).__name__}: {exc}") from exc
    return compare(ev.expected(), actual, case.layer, input=case.x, truth=case.truth, layout=layout,
                   tolerance=tolerance, _evidence=ev, **case.net(), **tol)


def _headroom(report: ParityReport, best: Difference) -> Difference:
    rows = [c for c in report.components if not c.component.startswith(("class ", "+"))]
    a = max([best.abs] + [c.max_abs for c in rows])
    u = max([best.ulp] + [c.max_ulp for c in rows if c.max_ulp is not None and c.max_ulp < 2**40])
    return Difference(abs=float(a), ulp=int(u), used=max(best.used, report.tolerance_used),
                      tolerance=str(report.tolerance))


def fuzz(impl: Impl, layer: Any = None, *, kind: str = "yolo", examples: int = 500,
         tolerance: str = DEFAULT_TOLERANCE, seed: Optional[int] = None, layout: str = "nchw",
         out: Optional[Any] = None, net: Optional[Tuple[int, int]] = None, cases: Any = None,
         raise_on_failure: bool = False, progress: Optional[Callable[[str], None]] = None, options: Any = None,
         parts: Any = None, database: Any = DEFAULT_DATABASE, **tol: Any) -> FuzzResult:
    """Run ``impl(x, truth, layer, net_w, net_h)`` (and ``seen=`` for
    [region] when it takes it) against the oracle on drawn cases.

    ``impl`` returns its delta (darknet's (B, C, H, W), or ``layout``), or a
    dict with ``delta``, ``output`` and/or ``cost``.

    ``layer`` is the layer your implementation claims: yours (a layer, a
    list to choose from, a :class:`~pydarknet_loss.Network`, a cfg path, a
    golden case or its ``.npz`` path).  Without it the heads of the
    standard cfg of ``kind`` are fuzzed (``"yolo"``: yolov3.cfg's three
    [yolo] heads at 608x608; ``"region"``: yolov2-voc.cfg's [region];
    ``"yolo_ab"``: AlexeyAB's yolov4.cfg's heads), only the inputs and
    truths drawn; ``options=`` opts into drawing layer settings too (e.g.
    ``("map", "max_boxes", "truth_thresh")``, or ``"all"``: see
    :data:`pydarknet_loss.strategies.OPTIONS`).  ``net=(w, h)`` fixes the
    network size, ``cases`` the whole strategy (see
    :func:`pydarknet_loss.strategies.cases`).  ``tolerance``: ``"float32"``
    (the default: darknet's own rounding) or ``"exact"``.  ``examples``: how many
    cases to try; ``seed`` makes the run repeatable (and, as Hypothesis
    does for a seeded test, consults no example database).  On the first
    departure the case is shrunk to a minimal one with the same top cause
    (the other causes seen while shrinking: ``result.others``);
    ``out``: a folder to write it to as a golden ``.npz`` (a regression test
    from then on), with a reproducer script beside it.  ``parts``: judge
    only those parts of darknet's delta (compare's ``parts=``, e.g.
    ``("objectness", "classes")`` when your box loss differs on purpose);
    the other keywords (``atol``, ``rtol``, ``max_ulp``, ``build``) go to
    :func:`~pydarknet_loss.compare` too.  ``database``: where Hypothesis
    keeps the failing cases it found, to try them first next time: by
    default the per-user cache folder :func:`default_database_path` (never
    the working directory), or a folder, a Hypothesis ``ExampleDatabase``,
    or None to keep nothing.  Returns a :class:`FuzzResult` (or raises
    :class:`ParityFailure` with ``raise_on_failure``)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(map(repr, LAYOUTS))}, got {layout!r}")
    if not callable(impl):
        raise TypeError(f"impl must be callable as impl(x, truth, layer, net_w, net_h), got {type(impl).__name__}")
    if not (isinstance(examples, int) and examples >= 1):
        raise ValueError(f"examples must be a positive int, got {examples!r}")
    if cases is not None and options is not None:
        raise ValueError("options= chooses what cases draws; with cases= the strategy is yours (pass one)")
    db = example_database(database)
    if parts is not None:
        tol["parts"] = parts
    strategy = cases if cases is not None else S.cases(layer, kind=kind, net=net, options=options)
    start = time.monotonic()
    # target: the top cause of the first departure, the one shrinking keeps
    # to; others: code -> (size, case, report), the smallest case seen of
    # each other top cause.
    state: Dict[str, Any] = {"n": 0, "passed": 0, "best": Difference(), "last": start, "target": None,
                             "others": {}}

    def body(case: S.Case) -> None:
        state["n"] += 1
        report = _evaluate(impl, case, layout, tolerance, tol)
        if not report.ok:
            code = report.causes[0].code if report.causes else "problem"
            if state["target"] is None:
                state["target"] = code
            elif code != state["target"]:
                # With report_multiple_bugs=False Hypothesis's shrinker takes
                # any failure that is smaller, whatever its kind; a case whose
                # top cause changed is no shrink of this departure: keep it
                # aside and have Hypothesis treat it as invalid.
                size = (_rows(case.truth), int(case.x.size))
                if code not in state["others"] or size < state["others"][code][0]:
                    state["others"][code] = (size, case, report)
                reject()
            raise _departure(code)(case, report)
        state["passed"] += 1
        state["best"] = _headroom(report, state["best"])
        if progress is not None and time.monotonic() - state["last"] >= 3.0:
            state["last"] = time.monotonic()
            progress(f"{state['passed']} cases passed ({state['best']})")

    # Each run its own key in the database: the body's source is the same for every run.
    body._hypothesis_internal_add_digest = _database_key(  # type: ignore[attr-defined]
        impl, kind, repr(layer), repr(cases), net, options, tolerance, layout, sorted(tol.items(), key=str))
    test = settings(max_examples=examples, deadline=None, database=db, derandomize=False,
                    report_multiple_bugs=False, print_blob=False,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
                    suppress_health_check=list(HealthCheck))(given(strategy)(body))
    if seed is not None:
        test = hypothesis_seed(seed)(test)
    failure: Optional[Failure] = None
    try:
        with _hypothesis_home(keep=db is not None), _repeatable_draws(seed is not None):
            test()
    except _Departure as dep:
        failure = _failure(impl, dep.case, dep.report, layout, out, tol)
    # the other top causes seen, less those the minimal case's report names too
    named = set() if failure is None else {c.code for c in failure.report.causes}
    others = [] if failure is None else [
        _failure(impl, c, r, layout, None, tol) for code, (_, c, r) in state["others"].items() if code not in named]
    result = FuzzResult(ok=failure is None, examples=state["n"], max_difference=state["best"], failure=failure,
                        seconds=time.monotonic() - start, passed=state["passed"], others=others)
    if progress is not None:
        progress(str(result).splitlines()[0])
    if failure is not None and raise_on_failure:
        raise ParityFailure(result)
    return result


# ---- the minimal case, as a reproducer and a golden case ----------------------------------------

def _floats(a: np.ndarray) -> str:
    return repr([float(v) for v in a.reshape(-1)])


def _array_source(name: str, a: np.ndarray) -> str:
    """Source that rebuilds a float32 array bit for bit."""
    if a.size <= 512:
        return f"{name} = np.array({_floats(a)}, np.float32).reshape({tuple(a.shape)})"
    return (f"{name} = np.frombuffer(bytes.fromhex({a.astype('<f4').tobytes().hex()!r}), '<f4')"
            f".reshape({tuple(a.shape)}).copy()")


def layer_source(layer: Any) -> str:
    """A constructor call that rebuilds the layer."""
    f = lambda v: float(np.float32(v))  # noqa: E731
    if getattr(layer, "kind", None) == "region_ab":  # issue 23
        return f"pdl.alexeyab.RegionLayer(**{layer.params()!r})"
    if getattr(layer, "kind", None) == "detection":
        return f"pdl.DetectionLayer(**{layer.params()!r})"
    cmap = None if layer.map is None else layer.map.tolist()
    if isinstance(layer, YoloLayer):
        return (f"pdl.YoloLayer(classes={layer.classes}, anchors={[f(a) for a in layer.anchors]}, "
                f"mask={layer.mask.tolist()}, total={layer.total}, ignore_thresh={f(layer.ignore_thresh)}, "
                f"truth_thresh={f(layer.truth_thresh)}, max_boxes={layer.max_boxes}, map={cmap})")
    if isinstance(layer, RegionLayer):
        return (f"pdl.RegionLayer(classes={layer.classes}, anchors={[f(a) for a in layer.anchors]}, "
                f"num={layer.num}, coords={layer.coords}, softmax={layer.softmax}, background={layer.background}, "
                f"rescore={layer.rescore}, bias_match={layer.bias_match}, thresh={f(layer.thresh)}, "
                f"coord_scale={f(layer.coord_scale)}, object_scale={f(layer.object_scale)}, "
                f"noobject_scale={f(layer.noobject_scale)}, class_scale={f(layer.class_scale)}, map={cmap})")
    if isinstance(layer, alexeyab.GaussianYoloLayer):
        return f"pdl.alexeyab.GaussianYoloLayer(**{layer.params()!r})"
    module = "hankai" if layer.kind == "yolo_hankai" else "alexeyab"
    return f"pdl.{module}.YoloLayer(**{layer.params()!r})"


def _impl_source(impl: Impl) -> Tuple[str, str]:
    """(import line, name to call) for an importable implementation."""
    mod = getattr(impl, "__module__", None)
    qual = getattr(impl, "__qualname__", None) or getattr(impl, "__name__", None)
    if mod and qual and "<" not in qual and mod != "__main__":
        top = qual.split(".")[0].split("[")[0]
        return f"from {mod} import {top}", qual
    return "# from your_module import your_implementation", "your_implementation"


def _keywords_source(tol: Optional[Dict[str, Any]]) -> str:
    """compare's other keywords as the run had them (build, parts, atol...),
    as source: the reproducer judges as the run did."""
    out = []
    for k, v in sorted((tol or {}).items()):
        if isinstance(v, (np.floating, np.integer)):
            v = v.item()
        elif isinstance(v, list):
            v = tuple(v)
        out.append(f", {k}={v!r}")
    return "".join(out)


def reproducer(impl: Impl, case: S.Case, report: ParityReport, layout: str,
               tol: Optional[Dict[str, Any]] = None) -> str:
    """Python source that rebuilds the case and prints the diagnosis
    (``tol``: the run's other compare keywords, e.g. ``build="gpu"``)."""
    imp, name = _impl_source(impl)
    rows = [case.truth[b, t] for b in range(case.truth.shape[0]) for t in range(case.truth.shape[1])
            if case.truth[b, t].any()]
    region = isinstance(case.layer, RegionLayer) or S._more(case.layer)
    net = f"seen={case.seen}" if region else f"net_w={case.net_w}, net_h={case.net_h}"
    call_net = f"{case.net_w}, {case.net_h}" + (f", seen={case.seen}" if region and S._takes(impl, "seen") else "")
    to_layout = f"pdl.to_layout(x, {layout!r}, layer)" if layout != "nchw" and not S._more(case.layer) else "x"
    truth_lines = [f"truth = np.zeros({tuple(case.truth.shape)}, np.float32)"]
    for b in range(case.truth.shape[0]):
        for t in range(case.truth.shape[1]):
            if case.truth[b, t].any():
                truth_lines.append(f"truth[{b}, {t}] = {_floats(case.truth[b, t])}")
    return "\n".join([
        f"# The minimal case on which {name} departs from darknet ({report.causes[0].code if report.causes else ''}),",
        f"# found by pydarknet_loss.fuzz ({len(rows)} truth rows, input {tuple(case.x.shape)}).",
        "import numpy as np",
        "import pydarknet_loss as pdl",
        imp,
        "",
        f"layer = {layer_source(case.layer)}",
        _array_source("x", case.x),
        *truth_lines,
        f"expected = layer.forward(x, truth, {net})",
        f"mine = {name}({to_layout}, truth, layer, {call_net})",
        "report = pdl.compare(expected, mine if isinstance(mine, dict) else {\"delta\": mine}, layer, input=x, "
        f"truth=truth, {net}, layout={layout!r}, tolerance={report.tolerance.float32 and 'float32' or 'exact'!r}"
        f"{_keywords_source(tol)})",
        "print(report)",
        "",
    ])


def _failure(impl: Impl, case: S.Case, report: ParityReport, layout: str, out: Optional[Any],
             tol: Optional[Dict[str, Any]] = None) -> Failure:
    src = reproducer(impl, case, report, layout, tol)
    fail = Failure(input=case.x, truth=case.truth, layer=case.layer, net_w=case.net_w, net_h=case.net_h,
                   seen=case.seen, report=report, reproducer=src)
    if out is not None:
        fail.path = store(case, report, Path(out), src, build=(tol or {}).get("build", "cpu"))
    return fail


def store(case: S.Case, report: ParityReport, out: Path, source: str = "", build: str = "cpu") -> Path:
    """Write the case as a golden ``.npz`` (tags ``fuzz`` and the cause) into
    ``out``, add it to the folder's MANIFEST.json, and the reproducer beside it.
    ``build="gpu"`` (the run compared with the GPU build's values) adds the
    tag ``build_gpu``, with which the case's check compares the same way."""
    out.mkdir(parents=True, exist_ok=True)
    cause = report.causes[0].code if report.causes else "problem"
    digest = hashlib.sha256(case.x.tobytes() + case.truth.tobytes()).hexdigest()[:10]
    name = f"fuzz_{cause}_{digest}"
    layer = case.layer
    kind = layer.kind
    b, h, w = (case.x.shape[0], case.x.shape[2], case.x.shape[3]) if case.x.ndim == 4 else (case.x.shape[0], 1, 1)
    params = golden.layer_params(layer, w=w, h=h, batch=b, net_w=case.net_w, net_h=case.net_h)
    res = case.expected()
    tags = ["fuzz", f"cause_{cause}"] + (["build_gpu"] if build == "gpu" else [])
    arrays = golden.case_arrays(kind, params, case.x, case.truth, True, case.seen, res, tags,
                                golden.provenance(found_by="pydarknet_loss.fuzz", cause=cause))
    path = out / f"{name}.npz"
    golden.write_npz(path, arrays)
    if source:
        (out / f"{name}.py").write_text(source)
    man = out / "MANIFEST.json"
    data: Dict[str, Any] = {"cases": []}
    if man.is_file():
        try:
            data = json.loads(man.read_text())
        except json.JSONDecodeError:
            data = {"cases": []}
    entries = [c for c in data.get("cases", []) if c.get("file") != path.name]
    entries.append({"file": path.name, "kind": kind, "shape": list(case.x.shape), "train": True, "tags": tags,
                    "cost": float(res.cost)})
    data["cases"] = entries
    man.write_text(json.dumps(data, indent=1, sort_keys=True))
    return path


# ---- the pytest form -------------------------------------------------------------------------------

def parity_test(impl: Impl, layer: Any = None, *, kind: str = "yolo", net: Optional[Tuple[int, int]] = None,
                tolerance: str = DEFAULT_TOLERANCE, layout: str = "nchw", options: Any = None, parts: Any = None,
                database: Any = DEFAULT_DATABASE, max_examples: Optional[int] = None,
                **tol: Any) -> Callable[..., None]:
    """A pytest test function that checks ``impl`` on drawn cases under
    Hypothesis' own settings, with an example database so that a departure
    found once is tried first next time::

        test_my_yolo_loss = parity_test(my_yolo_delta)            # in a test module

    ``database``: as :func:`fuzz`'s (by default the ``examples`` folder of
    the per-user cache folder :func:`default_database_path`, not
    ``./.hypothesis``; a folder, an ``ExampleDatabase``, or None) and
    ``max_examples`` (default: the active profile's) are its settings.
    An outer ``@settings(...)`` replaces them, as Hypothesis does: name
    ``database=example_database()`` in it to keep the cache folder.
    ``parts``: judge only those parts."""
    db = example_database(database)

    def test_parity(case: S.Case) -> None:
        case.check(impl, tolerance=tolerance, layout=layout, parts=parts, **tol)

    test_parity.__name__ = test_parity.__qualname__ = f"test_parity_of_{getattr(impl, '__name__', 'impl')}"
    # The database only: Hypothesis's other caches follow its configuration
    # in the user's test session (HYPOTHESIS_STORAGE_DIRECTORY).  Set as
    # hypothesis.seed sets it (the settings given() starts from), not with
    # @settings, so that the test stays one that @settings can decorate.
    chosen = settings(database=db) if max_examples is None else settings(database=db, max_examples=max_examples)
    test_parity._hypothesis_internal_use_settings = chosen  # type: ignore[attr-defined]
    return given(case=S.cases(layer, kind=kind, net=net, options=options))(test_parity)


# ---- the command line ------------------------------------------------------------------------------

def load_impl(spec: str) -> Impl:
    """``package.module:function`` (the current folder importable, as pytest does)."""
    if ":" not in spec:
        raise ValueError(f"expected package.module:function, got {spec!r}")
    mod_name, _, attr = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {mod_name!r} ({exc}); run from the folder that holds it, or install it")
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{mod_name} has no {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{spec} is not callable")
    return obj


@dataclass
class JobOutcome:
    """What one process of a --jobs run found (plain data, sent back between processes)."""

    job: int
    seed: Optional[int]
    ok: bool
    examples: int
    passed: int
    max_difference: Difference
    seconds: float
    summary: str = ""
    reproducer: str = ""
    path: Optional[str] = None
    cause: str = ""
    report: str = field(default="", repr=False)


def run_job(args: Tuple[Any, ...]) -> JobOutcome:
    """One job of ``pydarknet-loss fuzz``: its own seed, its share of the
    examples.  ``args``: (impl spec, layers, kind, examples, seed, tolerance,
    layout, out, net, job[, options[, parts[, database[, build]]]]); database:
    a folder, ``"none"`` (no database) or absent (the default); build:
    ``"cpu"`` (the default) or ``"gpu"``."""
    spec, layers, kind, examples, seed, tolerance, layout, out, net, job = args[:10]
    options = args[10] if len(args) > 10 else None
    parts = args[11] if len(args) > 11 else None
    database: Any = args[12] if len(args) > 12 else DEFAULT_DATABASE
    if database is None:
        database = DEFAULT_DATABASE
    elif isinstance(database, str) and database.lower() == "none":
        database = None
    build = args[13] if len(args) > 13 else "cpu"
    impl = load_impl(spec)

    def say(msg: str) -> None:
        print(f"[job {job}] {msg}", file=sys.stderr, flush=True)

    res = fuzz(impl, layers, kind=kind, examples=examples, seed=seed, tolerance=tolerance, layout=layout, out=out,
               net=net, progress=say, options=options, parts=parts, database=database,
               **({"build": build} if build != "cpu" else {}))
    f = res.failure
    return JobOutcome(job=job, seed=seed, ok=res.ok, examples=res.examples, passed=res.passed,
                      max_difference=res.max_difference, seconds=res.seconds,
                      summary=str(f) + _others_words(res.others) if f is not None else "",
                      reproducer=f.reproducer if f is not None else "",
                      path=str(f.path) if f is not None and f.path is not None else None,
                      cause=f.cause if f is not None else "", report=str(f.report) if f is not None else "")
