"""Darknet label files and the packed truth buffer (src/data.c read_boxes,
correct_boxes, fill_truth_detection)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import numpy as np

from .. import _native, _validate
from ..layers.pjreddie import REGION_MAX_TRUTHS, YOLO_MAX_TRUTHS, RegionLayer, YoloLayer
from .tree import regular_file

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class Labels:
    """One image's boxes as a darknet label file holds them, in file order.

    Built directly or with :meth:`from_arrays`, the arrays follow
    :func:`read_labels`'s rules: class ids are integers >= 0 that fit a C
    int, boxes float32 (k, 4) with x, y, w, h in [0, 1] (no NaN).  The
    stored arrays are read-only copies.
    """

    ids: np.ndarray  #: int32 (k,): class ids
    boxes: np.ndarray  #: float32 (k, 4): x, y, w, h (centre and size, relative to the image)
    path: Optional[str] = None

    def __post_init__(self) -> None:
        ids, boxes = label_arrays(self.ids, self.boxes, "Labels")
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "boxes", boxes)
        if self.path is not None and not isinstance(self.path, str):
            raise TypeError(f"Labels path must be a str or None, got {type(self.path).__name__}")

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_arrays(cls, ids: Any, boxes: Any) -> "Labels":
        return cls(ids=ids, boxes=boxes)


def label_arrays(ids: Any, boxes: Any, where: str) -> tuple:
    """(ids, boxes) as read-only int32 (k,) and float32 (k, 4) arrays, with
    read_labels's rules: ids >= 0, x, y, w, h in [0, 1]."""
    i = _validate.int_array(f"{where} ids", ids, allow_empty=True)
    b = _validate.float32_array(f"{where} boxes", boxes, 2)
    if b.shape != (len(i), 4):
        raise ValueError(f"{where} boxes must have shape ({len(i)}, 4) (x, y, w, h per id), got {b.shape}")
    neg = np.flatnonzero(i < 0)
    if neg.size:
        r = int(neg[0])
        raise ValueError(f"{where} ids[{r}] = {int(i[r])}: expected a class id >= 0 (read_labels refuses it too)")
    bad = np.flatnonzero(~((b >= 0) & (b <= 1)).all(axis=1))
    if bad.size:
        r = int(bad[0])
        raise ValueError(f"{where} boxes[{r}] = ({', '.join(str(v) for v in b[r])}): expected x, y, w, h "
                         "in [0, 1], no NaN (read_labels refuses it too)")
    return _validate.frozen(i), _validate.frozen(b)


_WHY = {
    _native.lib.DN_LABEL_MALFORMED: "expected 'class x y w h' (an integer and four numbers)",
    _native.lib.DN_LABEL_RANGE: "expected a class id >= 0 and x, y, w, h in [0, 1]",
    _native.lib.DN_LABEL_NUL: "the line holds a NUL byte: expected text 'class x y w h'",
}


def read_labels(path: PathLike) -> Labels:
    """darknet's read_boxes on one label file (``class x y w h`` per line,
    the class read as an int, the numbers as floats).

    Stricter than upstream, whose fscanf loop stops silently at the first
    line it cannot read (and reads a class ``1.5`` as class 1 followed by
    x = .5): a malformed line or an out-of-range value is a ValueError that
    names the file and line.  Blank lines are skipped (a line with a NUL byte
    is not blank: it is refused).  A path that is not a regular file (a
    directory, a FIFO, a device) is refused, saying which.
    """
    p = os.fspath(path)
    if not isinstance(p, str):
        p = os.fsdecode(p)
    regular_file(p, "label file")
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
    flip_ = _validate.flag("flip", flip)
    if not isinstance(labels, (list, tuple)):
        raise TypeError(f"labels must be a list with one Labels (or (k, 5) array) per image, "
                        f"got {type(labels).__name__}")
    out = np.zeros((len(labels), rows, 5), dtype=np.float32)
    for b, lab in enumerate(labels):
        if isinstance(lab, np.ndarray):
            a = _validate.float32_array(f"labels[{b}]", lab, 2)
            if a.shape[1] != 5:
                raise ValueError(f"labels[{b}] must have shape (k, 5): class x y w h, got {a.shape}")
            cls_ = a[:, 0]
            bad = np.flatnonzero(~((cls_ == np.trunc(cls_)) & (cls_ >= 0) & (cls_ <= _validate.INT_MAX)))
            if bad.size:
                r = int(bad[0])
                raise ValueError(f"labels[{b}] row {r}: class id {float(cls_[r])!r}: expected a whole number "
                                 f"in [0, {_validate.INT_MAX}] (read_labels reads an int >= 0)")
            ids, boxes = label_arrays(cls_.astype(np.int64), a[:, 1:], f"labels[{b}]")
        elif isinstance(lab, Labels):
            ids, boxes = lab.ids, lab.boxes
        else:
            raise TypeError(f"labels[{b}] must be Labels or a float32 (k, 5) array, got {type(lab).__name__}")
        _native.fill_truth(ids, boxes, n, out[b], *aug, flip_)
    return out
