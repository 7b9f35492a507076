"""Truths in the formats other implementations hold them, packed into
darknet's truth buffer.

Darknet's truth rows are ``x, y, w, h, class`` (centre and size relative
to the image; AlexeyAB adds a track id), zero-padded to a fixed number of
rows per image, and an image's list ends at the first row with ``x == 0``.
Most other code holds them otherwise:

* ``"darknet"``: ``x y w h class`` rows, per image;
* ``"yolo"``: ``class x y w h`` rows, per image (YOLO txt files, most PyTorch ports);
* ``"ultralytics"``: one ``(N, 6)`` array of ``image class x y w h`` rows;
* any of the per-image formats as one padded ``(B, K, 5)`` array, the
  padding rows marked by ``pad`` (a row whose class is ``pad``, or whose
  values are all ``pad``; all-zero rows by default).

:func:`to_truth` converts and packs, in row order, without darknet's label
augmentation (that is :func:`pydarknet_loss.pack_truth`).
"""
from __future__ import annotations

import warnings
from typing import Any, List, Optional, Sequence, Union

import numpy as np

from .. import _validate
from .._validate import class_first_warning, looks_class_first
from ..layers import alexeyab
from ..layers.pjreddie import REGION_MAX_TRUTHS, YOLO_MAX_TRUTHS, RegionLayer, YoloLayer

FORMATS = ("darknet", "yolo", "ultralytics")


def _rows_of(layer: Any) -> tuple:
    if isinstance(layer, alexeyab.YoloLayer):
        return layer.max_boxes, 6
    if isinstance(layer, YoloLayer) or layer == "yolo":
        return YOLO_MAX_TRUTHS, 5
    if isinstance(layer, RegionLayer):
        return REGION_MAX_TRUTHS, layer.coords + 1
    if layer == "region":
        return REGION_MAX_TRUTHS, 5
    raise ValueError(f"layer must be 'yolo', 'region' or a layer, got {layer!r}")


def _is_pad(rows: np.ndarray, class_col: int, pad: Optional[float]) -> np.ndarray:
    if pad is None:
        return np.all(rows == 0, axis=1)
    p = np.float32(pad)
    return (rows[:, class_col] == p) | np.all(rows == p, axis=1)


def to_truth(rows: Any, format: str = "darknet", *, layer: Union[str, Any] = "yolo", batch: Optional[int] = None,
             pad: Optional[float] = None) -> np.ndarray:
    """Darknet's packed truth buffer, float32 ``(B, rows, cols)``, from
    truths in another format (see the module docstring).

    ``rows``: a list of per-image float32 arrays, a padded ``(B, K, 5)``
    float32 array (``format`` ``"darknet"`` or ``"yolo"``), or for
    ``"ultralytics"`` one ``(N, 6)`` array (``batch`` images, default one
    more than the largest image index).  ``layer``: ``"yolo"`` (90 rows
    per image), ``"region"`` (30), or a layer (AlexeyAB's: ``max_boxes``
    rows of 6, the track id 0).  Padding rows (``pad``) are dropped; a row
    darknet would read as the end of the list (``x == 0``) warns, as the
    layers do."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(map(repr, FORMATS))}, got {format!r}")
    n_rows, cols = _rows_of(layer)
    images: List[np.ndarray] = []
    if format == "ultralytics":
        a = _validate.float32_array("rows", rows, 2)
        if a.shape[1] != 6:
            raise ValueError(f"ultralytics targets are (N, 6) rows of image, class, x, y, w, h; got {a.shape}")
        idx = a[:, 0]
        if a.shape[0] and (not np.all(idx == np.trunc(idx)) or idx.min() < 0):
            bad = int(np.flatnonzero((idx != np.trunc(idx)) | (idx < 0))[0])
            raise ValueError(f"rows[{bad}]: the image index {float(idx[bad]):g} is not a whole number >= 0")
        b = int(idx.max()) + 1 if a.shape[0] else 0
        batch = _validate.integer("batch", batch, minimum=max(b, 1)) if batch is not None else max(b, 1)
        for i in range(batch):
            sel = a[idx == i]
            images.append(np.ascontiguousarray(np.concatenate([sel[:, 2:6], sel[:, 1:2]], axis=1)))
    else:
        if isinstance(rows, np.ndarray) and rows.ndim == 3:
            a = _validate.float32_array("rows", rows, 3)
            seq: Sequence[np.ndarray] = [a[i] for i in range(a.shape[0])]
            if pad is None:
                pad_rows = [np.all(r == 0, axis=1) for r in seq]
            else:
                pad_rows = [_is_pad(r, 0 if format == "yolo" else 4, pad) for r in seq]
            seq = [r[~m] for r, m in zip(seq, pad_rows)]
        elif isinstance(rows, (list, tuple)):
            seq = [_validate.float32_array(f"rows[{i}]", r, 2) for i, r in enumerate(rows)]
            if pad is not None:
                seq = [r[~_is_pad(r, 0 if format == "yolo" else 4, pad)] for r in seq]
        else:
            raise TypeError(f"rows must be a list of per-image float32 arrays or a (B, K, 5) float32 array, got "
                            f"{type(rows).__name__}")
        if batch is not None and _validate.integer("batch", batch, minimum=1) != len(seq):
            raise ValueError(f"rows hold {len(seq)} images but batch is {batch}")
        for i, r in enumerate(seq):
            if r.shape[1] != 5:
                raise ValueError(f"rows[{i}] must have 5 columns ({'class x y w h' if format == 'yolo' else 'x y w h class'}), "
                                 f"got shape {r.shape}")
            if format == "yolo":
                r = np.concatenate([r[:, 1:5], r[:, 0:1]], axis=1)
            elif looks_class_first(r):
                warnings.warn(class_first_warning(f"rows[{i}]"), _validate.DarknetQuirkWarning, stacklevel=2)
            images.append(np.ascontiguousarray(r, dtype=np.float32))
    out = np.zeros((len(images), n_rows, cols), np.float32)
    for i, r in enumerate(images):
        if len(r) > n_rows:
            raise ValueError(f"image {i} has {len(r)} truths; darknet's buffer holds {n_rows} per image")
        bad = ~np.isfinite(r).all(axis=1)
        if bad.any():
            raise ValueError(f"image {i}, row {int(np.flatnonzero(bad)[0])}: NaN or infinite values")
        out[i, :len(r), :4] = r[:, :4]
        out[i, :len(r), 4] = r[:, 4]
        zero = np.flatnonzero(r[:, 0] == 0)
        if zero.size:
            warnings.warn(f"image {i}, row {int(zero[0])} has x == 0: darknet stops reading an image's truths at "
                          "the first x == 0, so that row and the ones after it are never used",
                          _validate.DarknetQuirkWarning, stacklevel=2)
    return out
