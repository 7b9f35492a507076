"""Darknet label files and the packed truth buffer (src/data.c read_boxes,
correct_boxes, fill_truth_detection)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import numpy as np

from .. import _native, _validate
from ..layers.pjreddie import REGION_MAX_TRUTHS, YOLO_MAX_TRUTHS, RegionLayer, YoloLayer

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class Labels:
    """One image's boxes as a darknet label file holds them, in file order."""

    ids: np.ndarray  #: int32 (k,): class ids
    boxes: np.ndarray  #: float32 (k, 4): x, y, w, h (centre and size, relative to the image)
    path: Optional[str] = None

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_arrays(cls, ids: Any, boxes: Any) -> "Labels":
        ids = _validate.int_array("ids", ids, allow_empty=True)
        b = _validate.float32_array("boxes", boxes, 2)
        if b.shape != (len(ids), 4):
            raise ValueError(f"boxes must have shape ({len(ids)}, 4) to match ids, got {b.shape}")
        return cls(ids=ids, boxes=b)


_WHY = {
    _native.lib.DN_LABEL_MALFORMED: "expected 'class x y w h' (an integer and four numbers)",
    _native.lib.DN_LABEL_RANGE: "expected a class id >= 0 and x, y, w, h in [0, 1]",
}


def read_labels(path: PathLike) -> Labels:
    """darknet's read_boxes on one label file (``class x y w h`` per line,
    the class read as an int, the numbers as floats).

    Stricter than upstream, whose fscanf loop stops silently at the first
    line it cannot read (and reads a class ``1.5`` as class 1 followed by
    x = .5): a malformed line or an out-of-range value is a ValueError that
    names the file and line.  Blank lines are skipped.
    """
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise FileNotFoundError(f"label file not found: {p}")
    ids, boxes, bad, why = _native.read_boxes_file(p)
    if ids is None:
        if bad:
            raise ValueError(f"{p}, line {bad}: {_WHY.get(why, 'cannot read this line')}")
        raise ValueError(f"{p}: cannot read this label file")
    return Labels(ids=ids, boxes=boxes, path=p)


def pack_truth(labels: Sequence[Union[Labels, np.ndarray]], layer: Union[str, YoloLayer, RegionLayer] = "yolo", *,
               num_boxes: Optional[int] = None, dx: float = 0.0, dy: float = 0.0, sx: float = 1.0,
               sy: float = 1.0, flip: bool = False) -> np.ndarray:
    """Darknet's packed truth buffer for a batch: the deterministic part of
    fill_truth_detection, per image.

    ``labels``: one :class:`Labels` per image (or a float32 (k, 5) array of
    ``class x y w h`` rows).  ``layer``: ``"yolo"`` (90 rows per image) or
    ``"region"`` (30 rows), or a layer.  Per image: correct_boxes with the
    given ``dx, dy, sx, sy, flip`` (defaults: no augmentation), which clamps
    the edges to [0, 1] and sends a box at x == y == 0 to 999999; truncation
    to ``num_boxes`` (default: all rows); then boxes under .001 wide or high
    are dropped (after the truncation, as upstream does).  Upstream shuffles
    the boxes first (randomize_boxes); that is left out, so the order follows
    the file.
    """
    if isinstance(layer, YoloLayer) or layer == "yolo":
        rows = YOLO_MAX_TRUTHS
    elif isinstance(layer, RegionLayer) or layer == "region":
        if isinstance(layer, RegionLayer) and layer.coords != 4:
            raise ValueError("fill_truth_detection writes 5 columns; a [region] layer with coords > 4 "
                             "reads another layout")
        rows = REGION_MAX_TRUTHS
    else:
        raise ValueError(f"layer must be 'yolo', 'region' or a layer, got {layer!r}")
    n = rows if num_boxes is None else _validate.integer("num_boxes", num_boxes, minimum=0, maximum=rows)
    aug = [_validate.real32(name, v) for name, v in (("dx", dx), ("dy", dy), ("sx", sx), ("sy", sy))]
    if not isinstance(flip, (bool, np.bool_, int)):
        raise TypeError(f"flip must be a bool, got {type(flip).__name__}")
    if not isinstance(labels, (list, tuple)):
        raise TypeError("labels must be a list with one Labels (or (k, 5) array) per image")
    out = np.zeros((len(labels), rows, 5), dtype=np.float32)
    for b, lab in enumerate(labels):
        if isinstance(lab, np.ndarray):
            a = _validate.float32_array(f"labels[{b}]", lab, 2)
            if a.shape[1] != 5:
                raise ValueError(f"labels[{b}] must have shape (k, 5): class x y w h, got {a.shape}")
            if not np.array_equal(a[:, 0], np.trunc(a[:, 0])):
                raise ValueError(f"labels[{b}]: class ids must be whole numbers")
            lab = Labels.from_arrays(a[:, 0].astype(np.int64), np.ascontiguousarray(a[:, 1:]))
        elif not isinstance(lab, Labels):
            raise TypeError(f"labels[{b}] must be Labels or a float32 (k, 5) array, got {type(lab).__name__}")
        _native.fill_truth(lab.ids, lab.boxes, n, out[b], *aug, int(bool(flip)))
    return out
