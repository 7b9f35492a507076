"""Layers are validated once, when they are built, and read-only after:
an attribute changed afterwards could send the C core past a buffer
(a shorter anchors array, a mask index out of range)."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import _validate


class ReadOnly:
    """Attributes set in ``__init__``; :meth:`_freeze` (its last line) makes
    them read-only and each array an immutable copy."""

    _frozen = False

    def __setattr__(self, name: str, value: Any) -> None:
        if self._frozen:
            raise AttributeError(
                f"{type(self).__name__}.{name} is read-only: a layer is validated once, when it is built; "
                f"build a new {type(self).__name__}(...) with the {name} you want")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__}.{name} cannot be deleted: a layer is read-only")

    def _freeze(self) -> None:
        for name, value in vars(self).items():
            if isinstance(value, np.ndarray):
                object.__setattr__(self, name, _validate.frozen(value))
        object.__setattr__(self, "_frozen", True)
