"""Sphinx configuration of pydarknet_loss's API reference (built from the docstrings).

Build: ``make docs`` (= ``cd docs && python -m sphinx -W --keep-going -b html . ../build/docs``:
from docs/, so that the installed package is imported, not the source folder); needs the
``[docs]`` extra.  Warnings are errors.
"""
from __future__ import annotations

import importlib.util

# The installed package (pip install '.[docs]'), whose C core is built: the
# source tree alone cannot be imported.
import pydarknet_loss

project = "pydarknet_loss"
author = "pydarknet_loss contributors"
copyright = "pydarknet_loss contributors"
release = version = pydarknet_loss.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.viewcode"]
autodoc_member_order = "bysource"
autodoc_typehints = "none"          # the signatures show them; descriptions stay readable
autodoc_default_options = {"members": True, "show-inheritance": False}
# The optional extras' modules import torch / Hypothesis (the plugin, pytest); where they are not
# installed the reference is still built from their docstrings.
autodoc_mock_imports = [m for m in ("torch", "hypothesis", "matplotlib", "pytest")
                        if importlib.util.find_spec(m) is None]
nitpicky = False
html_theme = "alabaster"
html_static_path: list = []
exclude_patterns = ["_build"]


# Docstrings quote darknet's C: ``*l.cost`` (a dereference) and ``|x|`` (an
# absolute value) are text there, not reST emphasis or a substitution.
# Outside ``literals`` they are escaped before docutils reads them.
import re  # noqa: E402

_DEREF = re.compile(r"(?<![\w*\\])\*(?=[A-Za-z_][\w]*[.\[])")
_ABS = re.compile(r"(?<![\w|\\])\|(?=[^|\s`][^|`]*\|)")


def _escape_c(app, what, name, obj, options, lines):  # type: ignore[no-untyped-def]
    for i, line in enumerate(lines):
        parts = line.split("``")
        for k in range(0, len(parts), 2):
            parts[k] = _ABS.sub(r"\\|", _DEREF.sub(r"\\*", parts[k]))
        lines[i] = "``".join(parts)


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("autodoc-process-docstring", _escape_c)
