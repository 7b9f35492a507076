"""Issue 19, item 10: help that helps.

help(pdl) covers every layer of both darknets and the workflow and refers
only to what is installed; the golden format ships inside the package; the
API reference builds from the docstrings with warnings as errors."""
from __future__ import annotations

import importlib
import pkgutil
import pydoc
import re
import subprocess
import sys
from pathlib import Path

import pytest

import pydarknet_loss as pdl
from pydarknet_loss.parity import golden, golden_format

ROOT = Path(__file__).resolve().parent.parent


def _resolve(dotted: str) -> object:
    """The object a docstring's :mod:/:func:/:class: reference names, imported."""
    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        for attr in parts[k:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def test_help_pdl_covers_both_darknets_and_the_workflow() -> None:
    text = pydoc.render_doc(pdl, renderer=pydoc.plaintext)
    doc = pdl.__doc__ or ""
    for name in ("YoloLayer", "RegionLayer", "alexeyab.YoloLayer", "AlexeyAB", "pjreddie", "Network",
                 "compare", "assert_parity", "fuzz", "check_gradient", "golden export", "darknet_golden_case",
                 "pydarknet-loss check", "golden_format", "to_layout", "tolerance"):
        assert name in doc, name
    assert "README" not in text and "../shared" not in text


def test_every_reference_in_help_pdl_is_installed() -> None:
    refs = re.findall(r":(?:mod|func|class):`~?([\w.]+)`", pdl.__doc__ or "")
    assert len(refs) >= 15
    for ref in refs:
        name = ref if ref.startswith("pydarknet_loss") else f"pydarknet_loss.{ref}"
        assert _resolve(name) is not None, ref


def test_no_docstring_points_outside_the_installed_package() -> None:
    # The README and ../shared are not installed: help must not send users there.
    bad = []
    for info in pkgutil.walk_packages(pdl.__path__, "pydarknet_loss."):
        if info.name.endswith(".__main__") or (info.name.endswith(("._core", ".torch", ".strategies", ".fuzz"))
                                                and not _importable(info.name)):
            continue
        mod = importlib.import_module(info.name)
        text = pydoc.render_doc(mod, renderer=pydoc.plaintext)
        for needle in ("README", "../shared"):
            if needle in text:
                bad.append((info.name, needle))
    assert not bad, bad


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def test_the_golden_format_ships_inside_the_package() -> None:
    text = pydoc.render_doc(golden, renderer=pydoc.plaintext)
    assert "pydarknet_loss.parity.golden_format" in text
    fmt = golden_format.__doc__ or ""
    for key in golden_format.REQUIRED_KEYS + ("seen", "stats", "count", "text", "tags", "provenance",
                                              "MANIFEST.json", "truth_cols"):
        assert f"``{key}``" in fmt, key
    assert golden_format.REQUIRED_KEYS == golden._NEED  # the reader requires what the page says
    assert Path(golden_format.__file__).parent == Path(golden.__file__).parent


def test_the_api_reference_builds_without_warnings(tmp_path: Path) -> None:
    pytest.importorskip("sphinx", reason="the [docs] extra (Sphinx); CI installs it and runs this test")
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-E", "-W", "--keep-going", "-q", "-b", "html",
                           str(ROOT / "docs"), str(tmp_path / "html")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    page = (tmp_path / "html" / "api" / "layers.html").read_text()
    assert "pydarknet_loss.layers.alexeyab.YoloLayer" in page and "pydarknet_loss.layers.pjreddie.RegionLayer" in page
    assert (tmp_path / "html" / "api" / "parity.html").read_text().count("golden_format") >= 1
