"""hank-ai/darknet's ``[yolo]`` layer ("Darknet/YOLO", the maintained C++
continuation of AlexeyAB's fork), bit-exact to upstream commit f684e1d7.

```python
from pydarknet_loss import hankai
layer = hankai.YoloLayer(classes=80, anchors=[...], mask=[6, 7, 8], iou_loss="ciou", iou_normalizer=.07,
                         scale_x_y=1.05, iou_thresh=.213)
res = layer.forward(x, truth, net_w=608, net_h=608, train=True, index=161)
res.output, res.delta, res.cost, res.stats.line(), res.labels, res.class_ids, res.total_bbox
```

The keyword arguments are :class:`pydarknet_loss.alexeyab.YoloLayer`'s
except ``show_details``, which hank-ai does not read.  The C core is
AlexeyAB's (``darknet_src/ab_yolo_layer.c``, ``ab_box.c``) with the layer's
``flavor`` set to hank-ai: ``darknet_loss.h`` lists every difference
(HANK(1)-(11)).  In short: hank-ai compiles as C++ with OpenCV's headers, so
``exp``, ``log`` and ``atan`` on a float are ``expf``, ``logf`` and ``atanf``
(box sizes, MSE targets, the IoU-loss chain rule, CIoU's aspect term); the
box overlap propagates a NaN prediction edge (``std::max``/``std::min``); the
detailed cost is always taken; a class id outside ``[0, classes)`` or a truth
outside the image is fatal (hank-ai aborts: here a ValueError naming image
and row); and the statistics line is another format (:meth:`YoloStats.line`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Sequence, Union

import numpy as np

from .. import _native, _validate
from . import alexeyab
from .alexeyab import YoloResult, _f32, _fmt

HANKAI_COMMIT = "f684e1d75d4594298c8e73acc727ba6cf2e81c60"
HANKAI_DESCRIBE = "v5.1-104-gf684e1d7"

__all__ = ["HANKAI_COMMIT", "YoloLayer", "YoloResult", "YoloStats", "forward_case", "layer_from_params"]


@dataclass(frozen=True)
class YoloStats(alexeyab.YoloStats):
    """What hank-ai prints at the end of a training forward when verbose
    (``--verbose``; to its output stream, stdout by default): the same four
    float values AlexeyAB computes, always all four."""

    def line(self) -> str:
        """hank-ai's line, character for character, without the final
        newline: ``std::fixed`` with precision 2 for the normalizers and 6
        for the rest (as printf's %.2f / %f of the float promoted to
        double), no "(" after "v3", "class_loss: ", no trailing space."""
        assert self.class_loss is not None and self.iou_loss is not None
        return (f"v3 {self.loss_name} loss, Normalizer: (iou: {_fmt(self.iou_normalizer, '%.2f')}, "
                f"obj: {_fmt(self.obj_normalizer, '%.2f')}, cls: {_fmt(self.cls_normalizer, '%.2f')}) "
                f"Region {self.index} Avg (IOU: {_fmt(self.avg_iou)}), count: {self.count}, "
                f"class_loss: {_fmt(self.class_loss)}, iou_loss: {_fmt(self.iou_loss)}, "
                f"total_loss: {_fmt(self.total_loss)}")

    @property
    def names(self) -> List[str]:
        return ["avg_iou", "class_loss", "iou_loss", "total_loss"]


class YoloLayer(alexeyab.YoloLayer):
    """hank-ai/darknet's ``[yolo]`` layer, bit-exact to upstream f684e1d7
    (its strict build, ``-O2 -fno-fast-math -ffp-contract=off``; hank-ai's own
    Release build, with -Ofast and -march=native, gives other numbers).

    Parameters: as :class:`pydarknet_loss.alexeyab.YoloLayer`, without
    ``show_details``.  What differs from AlexeyAB's results:

    * predicted w, h, the MSE targets' log, the IoU-loss ``dw *= exp(x)``
      and CIoU's atan are rounded in float (about a third of box sizes
      differ by an ULP, and every IoU and box delta they reach);
    * a NaN in a prediction's edge propagates through the IoU;
    * the cost is always the detailed one (AlexeyAB's ``show_details=1``);
    * a truth row (before the ``x == 0`` end) with a class id outside
      ``[0, classes)`` raises ValueError (hank-ai: "invalid class ID", abort),
      checked for every row before any row's coordinates; x, y outside
      [0, 1] or w, h < 0 raise too (hank-ai: "invalid coordinates", abort);
    * ``result.stats.line()`` is hank-ai's verbose line, and
      ``result.text`` that line and its newline.
    """

    kind = "yolo_hankai"  #: the golden cases' kind in this package's toolkit
    flavor = "hankai"

    def __init__(self, classes: int = 20, anchors: Union[Sequence[float], np.ndarray, None] = None,
                 mask: Optional[Sequence[int]] = None, total: Optional[int] = None, max_boxes: int = 200,
                 ignore_thresh: float = .5, truth_thresh: float = 1, iou_thresh: float = 1,
                 iou_thresh_kind: str = "iou", iou_loss: str = "mse", iou_normalizer: float = .75,
                 obj_normalizer: float = 1, cls_normalizer: float = 1, delta_normalizer: float = 1,
                 max_delta: Optional[float] = None, scale_x_y: float = 1, new_coords: int = 0,
                 objectness_smooth: int = 0, label_smooth_eps: float = 0, focal_loss: int = 0,
                 counters_per_class: Optional[Sequence[int]] = None, map: Optional[Sequence[int]] = None,
                 anchors_in: str = "pixels", stride: Any = None, **unknown: Any) -> None:
        if unknown:
            name = next(iter(unknown))
            why = (" (hank-ai reads no show_details: its cost is always AlexeyAB's show_details=1 formula, and "
                   "it prints the line only when verbose)" if name == "show_details" else "")
            raise TypeError(f"hankai.YoloLayer() got an unexpected keyword argument {name!r}{why}")
        for key, value, names in (("iou_loss", iou_loss, tuple(alexeyab.IOU_LOSS_ENUM)),
                                  ("iou_thresh_kind", iou_thresh_kind, alexeyab.IOU_THRESH_KINDS)):
            if not isinstance(value, str) or value not in names:
                raise ValueError(f"{key} must be one of {', '.join(names)}, got {value!r} (hank-ai's parser stops "
                                 "on any other name; names are case-sensitive)")
        super().__init__(
            classes=classes, anchors=anchors, mask=mask, total=total, max_boxes=max_boxes,
            ignore_thresh=ignore_thresh, truth_thresh=truth_thresh, iou_thresh=iou_thresh,
            iou_thresh_kind=iou_thresh_kind, iou_loss=iou_loss, iou_normalizer=iou_normalizer,
            obj_normalizer=obj_normalizer, cls_normalizer=cls_normalizer, delta_normalizer=delta_normalizer,
            max_delta=max_delta, scale_x_y=scale_x_y, new_coords=new_coords, objectness_smooth=objectness_smooth,
            label_smooth_eps=label_smooth_eps, focal_loss=focal_loss, counters_per_class=counters_per_class,
            map=map, show_details=1, anchors_in=anchors_in, stride=stride)

    def __repr__(self) -> str:
        return "hankai." + super().__repr__()[len("alexeyab."):]

    def params(self) -> dict:  # type: ignore[override]
        """The constructor's arguments, as they are held (no show_details)."""
        p = super().params()
        del p["show_details"]
        return p

    def _spec(self) -> _native.ABSpec:
        spec = super()._spec()
        spec.scalars["flavor"] = _native.AB_FLAVOR_HANKAI
        return spec

    def _stats(self, s: Any, index: int) -> YoloStats:
        return YoloStats(
            avg_iou=s.avg_iou, class_loss=s.class_loss, iou_loss=s.iou_loss, total_loss=s.total_loss,
            count=s.count, index=index,
            loss_name="mse" if self.iou_loss == "mse" else ("giou" if self.iou_loss == "giou" else "iou"),
            iou_normalizer=_f32(self.iou_normalizer), obj_normalizer=_f32(self.obj_normalizer),
            cls_normalizer=_f32(self.cls_normalizer), show_details=1)

    def _truth_error(self, kind: str, image: int, row: int, packed: np.ndarray, *, w: int, h: int) -> ValueError:
        return _validate.hank_truth_error(kind, image, row, packed, w=w, h=h, classes=self.classes, map_=self.map,
                                          truth_thresh=float(self.truth_thresh))


def layer_from_params(params: Mapping[str, Any]) -> YoloLayer:
    """The layer a hank-ai golden case's ``params`` describe (the format of
    hank-ai f684e1d7's golden cases, :mod:`pydarknet_loss.parity.golden_format`;
    its ``show_details`` is ignored)."""
    p = alexeyab.layer_from_params({**params, "show_details": 1}).params()
    del p["show_details"]
    return YoloLayer(**p)


def forward_case(case: Mapping[str, Any]) -> YoloResult:
    """Run a loaded hank-ai golden case (its arrays and its params dict)."""
    p = case["params"]
    return layer_from_params(p).forward(case["input"], case["truth"], net_w=p["net_w"], net_h=p["net_h"],
                                        train=bool(case["train"]), index=p["net_index"])


# hank-ai's [region] (issue 23): AlexeyAB's C core with the hank-ai flavor (hankai_more.py)
from .hankai_more import GaussianYoloLayer, GaussianYoloStats, RegionLayer, RegionStats  # noqa: E402,F401

__all__ += ["RegionLayer", "RegionStats", "GaussianYoloLayer", "GaussianYoloStats"]
