"""pytest plugin (registered through the ``pytest11`` entry point).

* ``darknet_oracle``: a fixture that builds oracle layers (from parameters or
  a cfg) and carries ``compare`` and ``assert_parity``.
* ``--darknet-golden DIR`` (repeatable): every test that takes the
  ``darknet_golden_case`` fixture runs once per *training* golden case in
  DIR (``train=True``: the cases with a delta to compare).  Add
  ``--darknet-golden-inference`` to run the ``train=False`` cases too (their
  delta is all zero; compare ``output`` there).  The folders may also be
  set in the ini file (``darknet_golden = golden/``).
* A test that takes ``darknet_golden_case`` and gets no case (no
  ``--darknet-golden``, or folders without training cases) FAILS with a
  message that says how to give them: a CI that forgets the option does not
  stay green.  To run without golden cases on purpose, opt out explicitly:
  ``--darknet-golden=none`` (or ``darknet_golden = none`` in the ini file)
  skips such tests, as does the marker
  ``@pytest.mark.darknet_golden_optional`` on one test.
* At the end of the run, a pass/fail summary per golden tag ("fails only on
  cases tagged x0_terminator_mid or exp_overflow_mag").
* ``parts=`` (``darknet_oracle.check(..., parts=...)``,
  ``darknet_golden_case.check(actual, parts=...)``): judge only some of
  darknet's parts ("my box loss differs"); the failing elements of the
  others are reported as known departures, not failures.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest

from ..layers import alexeyab
from ..layers import hankai
from ..layers.pjreddie import RegionLayer, YoloLayer
from ..files.network import Network
from . import golden
from .cli import tag_summary
from .compare import ParityReport, assert_parity, compare

_TAGS = pytest.StashKey[Dict[str, Sequence[str]]]()
_OUTCOMES = pytest.StashKey[Dict[str, bool]]()


class DarknetOracle:
    """What the ``darknet_oracle`` fixture returns."""

    compare = staticmethod(compare)
    assert_parity = staticmethod(assert_parity)

    def yolo(self, **params: Any) -> YoloLayer:
        return YoloLayer(**params)

    def region(self, **params: Any) -> RegionLayer:
        return RegionLayer(**params)

    def yolo_ab(self, **params: Any) -> alexeyab.YoloLayer:
        return alexeyab.YoloLayer(**params)

    def yolo_hankai(self, **params: Any) -> hankai.YoloLayer:
        return hankai.YoloLayer(**params)
    def gaussian_yolo_ab(self, **params: Any) -> alexeyab.GaussianYoloLayer:
        """AlexeyAB's [Gaussian_yolo], by its cfg keys."""
        return alexeyab.GaussianYoloLayer(**params)

    def from_cfg(self, path: Any, base_dir: Optional[Any] = None, flavor: str = "pjreddie") -> Network:
        return Network.from_cfg(path, base_dir=base_dir, flavor=flavor)

    def from_params(self, kind: str, params: dict, base_dir: Optional[Any] = None) -> Any:
        """A layer from a golden case's ``params`` (``kind``: yolo, region, yolo_ab, yolo_hankai or
        gaussian_yolo_ab)."""
        return golden.layer_from_params(kind, params, base_dir)

    def check(self, expected: Any, actual: Any, layer: Any, *, parts: Any = None, **kw: Any) -> ParityReport:
        """assert_parity(): AssertionError with the report when it fails.
        ``parts``: judge only those parts (compare's ``parts=``, e.g.
        ``("objectness", "classes")``, with ``input=`` and ``truth=``); the
        others' failing elements are reported as known departures."""
        __tracebackhide__ = True
        if parts is not None:
            kw["parts"] = parts
        return assert_parity(expected, actual, layer, **kw)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pydarknet_loss")
    group.addoption("--darknet-golden", action="append", default=[], metavar="DIR",
                    help="run tests taking the darknet_golden_case fixture over the training golden cases in DIR "
                         "(repeatable; 'none': skip those tests on purpose, else they fail without cases)")
    parser.addini("darknet_golden", type="args", default=[],
                  help="golden case folders for darknet_golden_case when --darknet-golden is not given ('none': skip "
                       "those tests on purpose)")
    group.addoption("--darknet-golden-inference", action="store_true", default=False,
                    help="with --darknet-golden: also the train=False cases (output only, delta all zero)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "darknet_golden: a test parametrized over --darknet-golden cases")
    config.addinivalue_line("markers", "darknet_golden_optional: skip this test, instead of failing it, when no "
                                       "golden case is given")
    config.stash[_TAGS] = {}
    config.stash[_OUTCOMES] = {}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "darknet_golden_case" not in metafunc.fixturenames:
        return
    given: List[str] = metafunc.config.getoption("darknet_golden") or []
    source = "--darknet-golden"
    if not given:
        given = list(metafunc.config.getini("darknet_golden"))
        source = "the ini option darknet_golden"
    opted_out = any(d.lower() == "none" for d in given)
    dirs = [d for d in given if d.lower() != "none"]
    inference = bool(metafunc.config.getoption("darknet_golden_inference"))
    entries: List[golden.CaseEntry] = []
    for d in dirs:
        entries.extend(e for e in golden.case_entries(d) if inference or e.train)
    if not entries:
        if not dirs:
            why = ("no golden cases were given: pass --darknet-golden DIR (a folder written by `pydarknet-loss golden "
                   "export`), or set darknet_golden = DIR in the ini file")
        else:
            why = (f"{source} gave {', '.join(dirs)}, which hold{'s' if len(dirs) == 1 else ''} no "
                   f"{'' if inference else 'training '}golden case (write some with `pydarknet-loss golden export "
                   "--out DIR`)")
        metafunc.parametrize("darknet_golden_case", [_NoCases(why, opted_out)], ids=["no-golden-cases"],
                             indirect=True)
        return
    ids = [e.path.stem for e in entries]
    metafunc.parametrize("darknet_golden_case", [e.path for e in entries], ids=ids, indirect=True)
    tags = metafunc.config.stash[_TAGS]
    for e, i in zip(entries, ids):
        tags[f"{metafunc.definition.nodeid}[{i}]"] = e.tags


class _NoCases:
    """The parameter of a golden test that got no case: why, and whether the run opted out."""

    def __init__(self, why: str, opted_out: bool) -> None:
        self.why = why
        self.opted_out = opted_out


@pytest.fixture
def darknet_golden_case(request: pytest.FixtureRequest) -> golden.GoldenCase:
    """One training golden case (see --darknet-golden): .input, .truth,
    .params, .net (net_w, net_h or seen), .layer(), .expected(), .check(actual).
    Without cases the test fails, unless the run opts out (--darknet-golden=none,
    or the darknet_golden_optional marker), which skips it."""
    param = getattr(request, "param", None)
    if param is None or isinstance(param, _NoCases):
        why = param.why if isinstance(param, _NoCases) else "no golden cases were given: pass --darknet-golden DIR"
        if (isinstance(param, _NoCases) and param.opted_out) or \
                request.node.get_closest_marker("darknet_golden_optional") is not None:
            pytest.skip(f"no darknet golden cases, skipped on purpose ({why.split(':')[0]})")
        return _NoCases(why, False)  # type: ignore[return-value]  # the test FAILS (pytest_pyfunc_call)
    return golden.GoldenCase.load(param)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Optional[bool]:
    """A golden test without cases fails (as a test, not a setup error), saying how to give them."""
    param = pyfuncitem.funcargs.get("darknet_golden_case") if hasattr(pyfuncitem, "funcargs") else None
    if isinstance(param, _NoCases):
        pytest.fail(f"{pyfuncitem.name} is a darknet parity test, but {param.why}. To skip such tests on purpose, "
                    "pass --darknet-golden=none (or mark the test @pytest.mark.darknet_golden_optional).",
                    pytrace=False)
    return None


@pytest.fixture
def darknet_oracle() -> DarknetOracle:
    """Builds oracle layers and compares implementations with them."""
    return DarknetOracle()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Any:
    outcome = yield
    rep = outcome.get_result()
    tags = item.config.stash[_TAGS]
    if item.nodeid in tags and (rep.when == "call" or (rep.when == "setup" and not rep.passed)):
        item.config.stash[_OUTCOMES][item.nodeid] = bool(rep.passed)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    outcomes = config.stash[_OUTCOMES]
    if not outcomes:
        return
    tags = config.stash[_TAGS]
    results: List[Tuple[Sequence[str], bool]] = [(tags[n], ok) for n, ok in outcomes.items()]
    terminalreporter.section("darknet golden cases")
    n_bad = sum(1 for _, ok in results if not ok)
    terminalreporter.write_line(f"{len(results) - n_bad} of {len(results)} golden cases passed")
    for line in tag_summary(results):
        terminalreporter.write_line(line)
