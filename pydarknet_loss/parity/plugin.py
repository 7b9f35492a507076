"""pytest plugin (registered through the ``pytest11`` entry point).

* ``darknet_oracle``: a fixture that builds oracle layers (from parameters or
  a cfg) and carries ``compare`` and ``assert_parity``.
* ``--darknet-golden DIR`` (repeatable): every test that takes the
  ``darknet_golden_case`` fixture runs once per *training* golden case in
  DIR (``train=True``: the cases with a delta to compare).  Add
  ``--darknet-golden-inference`` to run the ``train=False`` cases too (their
  delta is all zero; compare ``output`` there).  Without ``--darknet-golden``
  such tests are skipped with that reason.
* At the end of the run, a pass/fail summary per golden tag ("fails only on
  cases tagged x0_terminator_mid or exp_overflow_mag").
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest

from ..layers import alexeyab
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

    def gaussian_yolo_ab(self, **params: Any) -> alexeyab.GaussianYoloLayer:
        """AlexeyAB's [Gaussian_yolo], by its cfg keys."""
        return alexeyab.GaussianYoloLayer(**params)

    def from_cfg(self, path: Any, base_dir: Optional[Any] = None, flavor: str = "pjreddie") -> Network:
        return Network.from_cfg(path, base_dir=base_dir, flavor=flavor)

    def from_params(self, kind: str, params: dict, base_dir: Optional[Any] = None) -> Any:
        """A layer from a golden case's ``params`` (``kind``: yolo, region, yolo_ab or gaussian_yolo_ab)."""
        return golden.layer_from_params(kind, params, base_dir)

    def check(self, expected: Any, actual: Any, layer: Any, **kw: Any) -> ParityReport:
        return assert_parity(expected, actual, layer, **kw)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pydarknet_loss")
    group.addoption("--darknet-golden", action="append", default=[], metavar="DIR",
                    help="run tests taking the darknet_golden_case fixture over the training golden cases in DIR")
    group.addoption("--darknet-golden-inference", action="store_true", default=False,
                    help="with --darknet-golden: also the train=False cases (output only, delta all zero)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "darknet_golden: a test parametrized over --darknet-golden cases")
    config.stash[_TAGS] = {}
    config.stash[_OUTCOMES] = {}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "darknet_golden_case" not in metafunc.fixturenames:
        return
    dirs: List[str] = metafunc.config.getoption("darknet_golden") or []
    inference = bool(metafunc.config.getoption("darknet_golden_inference"))
    entries: List[golden.CaseEntry] = []
    for d in dirs:
        entries.extend(e for e in golden.case_entries(d) if inference or e.train)
    if not entries:
        metafunc.parametrize("darknet_golden_case", [None], ids=["no-golden-dir"], indirect=True)
        return
    ids = [e.path.stem for e in entries]
    metafunc.parametrize("darknet_golden_case", [e.path for e in entries], ids=ids, indirect=True)
    tags = metafunc.config.stash[_TAGS]
    for e, i in zip(entries, ids):
        tags[f"{metafunc.definition.nodeid}[{i}]"] = e.tags


@pytest.fixture
def darknet_golden_case(request: pytest.FixtureRequest) -> golden.GoldenCase:
    """One training golden case (see --darknet-golden): .input, .truth,
    .params, .net (net_w, net_h or seen), .layer(), .expected(), .check(actual)."""
    path = getattr(request, "param", None)
    if path is None:
        pytest.skip("pass --darknet-golden DIR to run this test over golden cases")
    return golden.GoldenCase.load(path)


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
