"""Shared pytest setup: make sure the installed package (with its compiled
core) is what the tests import, not the bare source folder."""
import importlib.util

import pytest

pytest_plugins = ["pytester"]


def pytest_configure(config: pytest.Config) -> None:
    spec = importlib.util.find_spec("pydarknet_loss._core")
    if spec is None:
        raise pytest.UsageError(
            "pydarknet_loss is importable but its compiled core is not: install it with "
            "`pip install '.[test]'` and run `pytest` (not `python -m pytest`, which puts the "
            "source folder first on sys.path), or build in place with `python build_ffi.py`.")
