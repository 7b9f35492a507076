"""pytest plugin (registered through the ``pytest11`` entry point).

* ``darknet_oracle``: a fixture that builds oracle layers (from parameters or
  a cfg) and carries ``compare`` and ``assert_parity``.
* ``--darknet-golden DIR`` (repeatable): every test that takes the
  ``darknet_golden_case`` fixture runs once per training-forward golden case
  in DIR.  Without the option such tests are skipped with that reason.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import pytest

from . import golden
from .compare import ParityReport, assert_parity, compare
from ..layers.pjreddie import RegionLayer, YoloLayer
from ..files.network import Network


class DarknetOracle:
    """What the ``darknet_oracle`` fixture returns."""

    compare = staticmethod(compare)
    assert_parity = staticmethod(assert_parity)

    def yolo(self, **params: Any) -> YoloLayer:
        return YoloLayer(**params)

    def region(self, **params: Any) -> RegionLayer:
        return RegionLayer(**params)

    def from_cfg(self, path: Any, base_dir: Optional[Any] = None) -> Network:
        return Network.from_cfg(path, base_dir=base_dir)

    def from_params(self, kind: str, params: dict, base_dir: Optional[Any] = None) -> Any:
        """A layer from a golden case's ``params`` (``kind``: yolo or region)."""
        return golden.layer_from_params(kind, params, base_dir)

    def check(self, expected: Any, actual: Any, layer: Any, **tol: Any) -> ParityReport:
        return assert_parity(expected, actual, layer, **tol)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pydarknet_loss")
    group.addoption("--darknet-golden", action="append", default=[], metavar="DIR",
                    help="run tests taking the darknet_golden_case fixture over the golden cases in DIR")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "darknet_golden: a test parametrized over --darknet-golden cases")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "darknet_golden_case" not in metafunc.fixturenames:
        return
    dirs: List[str] = metafunc.config.getoption("darknet_golden") or []
    paths: List[Path] = []
    for d in dirs:
        paths.extend(golden.case_files(d))
    if not paths:
        metafunc.parametrize("darknet_golden_case", [None], ids=["no-golden-dir"], indirect=True)
        return
    metafunc.parametrize("darknet_golden_case", paths, ids=[p.stem for p in paths], indirect=True)


@pytest.fixture
def darknet_golden_case(request: pytest.FixtureRequest) -> golden.GoldenCase:
    """One golden case (see --darknet-golden); .input, .truth, .layer(),
    .expected(), .check(actual)."""
    path = getattr(request, "param", None)
    if path is None:
        pytest.skip("pass --darknet-golden DIR to run this test over golden cases")
    return golden.GoldenCase.load(path)


@pytest.fixture
def darknet_oracle() -> DarknetOracle:
    """Builds oracle layers and compares implementations with them."""
    return DarknetOracle()
