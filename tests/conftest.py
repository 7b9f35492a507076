"""Shared pytest setup: make sure the installed package (with its compiled
core) is what the tests import, not the bare source folder."""
import importlib.util
import os
import shutil
import tempfile

import pytest

pytest_plugins = ["pytester"]


_HYPOTHESIS_DB = "PYDARKNET_LOSS_HYPOTHESIS_DB"
_made: list = []


def pytest_configure(config: pytest.Config) -> None:
    # pdl.fuzz keeps Hypothesis's state in a per-user cache folder; the
    # suite's runs (and the subprocesses they start) use a folder of their
    # own for the session, never the real ~/.cache.
    if not _made:
        _made.append(tempfile.mkdtemp(prefix="pdl-hypothesis-"))
        os.environ[_HYPOTHESIS_DB] = _made[0]
    spec = importlib.util.find_spec("pydarknet_loss._core")
    if spec is None:
        raise pytest.UsageError(
            "pydarknet_loss is importable but its compiled core is not: install it with "
            "`pip install '.[test]'` and run `pytest` (not `python -m pytest`, which puts the "
            "source folder first on sys.path), or build in place with `python build_ffi.py`.")


def pytest_unconfigure(config: pytest.Config) -> None:
    while _made:
        shutil.rmtree(_made.pop(), ignore_errors=True)
