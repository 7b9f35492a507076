"""hank-ai/darknet's ``[region]`` and ``[Gaussian_yolo]`` layers, bit-exact
to upstream commit f684e1d7 (src-lib/region_layer.cpp, src-lib/gaussian_yolo_layer.cpp).

```python
from pydarknet_loss import hankai
layer = hankai.RegionLayer(classes=20, coords=4, num=5, anchors=[...], softmax=1, rescore=1)
res = layer.forward(x, truth, seen=64000)
res.output, res.delta, res.cost, res.stats.line(), res.text
```

The keyword arguments are :class:`pydarknet_loss.alexeyab.RegionLayer`'s.
The C core is AlexeyAB's (``darknet_src/ab_region_layer.c``) with the layer's
``flavor`` set to hank-ai; that file lists every difference (HANK-R(1)-(6)).
In short: hank-ai compiles as C++ with OpenCV's headers, so ``exp`` and
``log`` on a float are ``expf`` and ``logf`` (predicted w, h; the w, h
targets; the class softmax), box_iou is hank-ai's (``std::max``/``std::min``
edges, no union test), a class id ``>= classes`` is fatal, and the line goes
through hank-ai's output stream in another format.

``hankai.GaussianYoloLayer`` likewise runs ``darknet_src/ab_gaussian_yolo_layer.c``
with the hank-ai flavor (HANK-G(1)-(11) there).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Mapping, Optional

import numpy as np

from .. import _native
from . import ab_region, gaussian

__all__ = ["RegionLayer", "RegionStats", "GaussianYoloLayer", "GaussianYoloStats", "forward_region_case",
           "forward_gaussian_case"]


def _g(v: float, precision: int = 6) -> str:
    """``std::ostream << float`` on hank-ai's output stream, which
    CfgAndState::reset() puts in ``std::fixed``: the float promoted to double
    and written as printf's ``%.{precision}f`` (libstdc++'s num_put; NaN with
    its sign, as glibc writes it)."""
    if math.isnan(v):
        return "-nan" if math.copysign(1.0, v) < 0 else "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return "%.*f" % (precision, v)


def _precision(precision: int) -> int:
    if isinstance(precision, bool) or not isinstance(precision, int) or not 0 <= precision <= 100:
        raise ValueError(f"precision must be an int in [0, 100] (the stream's std::setprecision), got {precision!r}")
    return precision


@dataclass(frozen=True)
class RegionStats(ab_region.RegionStats):
    """What hank-ai's forward_region_layer writes to its output stream
    (``Darknet::CfgAndState::output``, stdout by default) at the end of every
    training forward -- not only with ``--verbose`` -- the same values
    AlexeyAB's printf gets."""

    def line(self, precision: int = 6) -> str:
        """hank-ai's line, character for character, without the newline
        (``std::endl``).  The stream is ``std::fixed`` (CfgAndState::reset);
        its precision is whatever was last set on it: 6 until something
        else prints (hank-ai's training loop leaves it at 2 after its first
        progress line, detector.cpp:612): pass ``precision`` for that."""
        p = _precision(precision)
        return (f"Region avg IoU: {_g(self.avg_iou, p)}, class: {_g(self.avg_cat, p)}, obj: {_g(self.avg_obj, p)}, "
                f"no obj: {_g(self.avg_anyobj, p)}, avg recall: {_g(self.recall, p)}, count: {self.count}")


class RegionLayer(ab_region.RegionLayer):
    """hank-ai/darknet's ``[region]`` layer (YOLOv2), bit-exact to upstream
    f684e1d7's strict build (``-O2 -fno-fast-math -ffp-contract=off``).

    Parameters: as :class:`pydarknet_loss.alexeyab.RegionLayer` (hank-ai's
    parse_region reads the same keys).  What differs from AlexeyAB's results:

    * predicted w, h are ``expf(x)*anchor/w`` in float, the w, h targets
      ``logf`` (AlexeyAB: double exp/log, one rounding);
    * the class softmax (``softmax=1``) takes ``expf``;
    * the IoU is hank-ai's box_iou (a NaN edge propagates; no union test);
    * a truth row with a class id ``>= classes`` before the list's ``x == 0``
      end raises ValueError (hank-ai: darknet_fatal_error, abort), where
      AlexeyAB warns and skips the row;
    * ``result.stats.line()`` is hank-ai's line (printed on every training
      forward), ``result.text`` that line and its newline (no warnings).

    ``detections()`` is not offered: hank-ai's decoding was not checked here.
    """

    kind = "region_hankai"  #: the golden cases' kind
    flavor = "hankai"

    def __repr__(self) -> str:
        return "hankai." + super().__repr__()[len("alexeyab."):]

    def _spec(self) -> _native.ABRegionSpec:
        spec = super()._spec()
        spec.scalars["flavor"] = _native.AB_FLAVOR_HANKAI
        return spec

    def _forward(self, *args: Any, **kwargs: Any) -> Any:
        res, call = super()._forward(*args, **kwargs)
        if res.stats is not None:
            s = res.stats
            stats = RegionStats(avg_iou=s.avg_iou, avg_cat=s.avg_cat, avg_obj=s.avg_obj, avg_anyobj=s.avg_anyobj,
                                recall=s.recall, count=s.count, class_count=s.class_count)
            res = ab_region.RegionResult(output=res.output, delta=res.delta, cost=res.cost, stats=stats,
                                         count=res.count, warnings_text="")
        return res, call

    def warnings_text(self, packed: np.ndarray) -> str:
        """hank-ai prints no class-id warnings (such a row is fatal): always ""."""
        return ""

    def detections(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("hankai.RegionLayer.detections: hank-ai's [region] decoding is not reproduced "
                                  "here (use alexeyab.RegionLayer.detections for AlexeyAB's)")

    def _truth_error(self, rc: int, image: int, row: int, packed: np.ndarray, w: int, h: int) -> ValueError:
        if row >= 0 and rc == _native.lib.DN_E_TRUTH_CLASS and int(packed[image, row, 4]) >= self.classes:
            r = packed[image, row]
            return ValueError(
                f"truth image {image} row {row} (x={float(r[0])!r}, y={float(r[1])!r}, w={float(r[2])!r}, "
                f"h={float(r[3])!r}, class_id={float(r[4])!r}) has class id {int(r[4])} >= classes={self.classes}: "
                f"hank-ai's [region] stops with a fatal error (\"in txt-labels class_id={int(r[4])} >= "
                f"classes={self.classes} in cfg file\"); expected ids in [0, {self.classes})")
        return super()._truth_error(rc, image, row, packed, w, h)


def layer_from_case(params: Mapping[str, Any]) -> RegionLayer:
    """The layer a ``region_hankai`` golden case's params describe."""
    kw = dict(params["kwargs"])
    if params.get("map") is not None:
        kw["map"] = params["map"]
    return RegionLayer(**kw, batch=params["batch"])


def forward_region_case(case: Mapping[str, Any]) -> ab_region.RegionResult:
    """Run a loaded ``region_hankai`` golden case (arrays + params) through its layer."""
    p = case["params"]
    layer = layer_from_case(p)
    return layer.forward(case["input"], case["truth"], train=bool(case["train"]), seen=int(case["seen"]))




@dataclass(frozen=True)
class GaussianYoloStats(gaussian.GaussianYoloStats):
    """What hank-ai's forward_gaussian_yolo_layer writes to its output stream
    at the end of every training forward (not only with ``--verbose``): the
    values AlexeyAB's fprintf gets."""

    def line(self, precision: int = 6) -> str:
        """hank-ai's line, character for character, without the newline:
        ``std::fixed`` with the stream's precision (6 by default; see
        :meth:`RegionStats.line`)."""
        p = _precision(precision)
        return (f"Region {self.index}: avg IOU={_g(self.avg_iou, p)}, class={_g(self.avg_cat, p)}, "
                f"obj={_g(self.avg_obj, p)}, no obj={_g(self.avg_anyobj, p)}, recall 50%={_g(self.recall, p)}, "
                f"recall 75%={_g(self.recall75, p)}, count={self.count}, class loss={_g(self.class_loss, p)}, "
                f"IOU loss={_g(self.iou_loss, p)}, uc loss={_g(self.uc_loss, p)}, total loss={_g(self.total_loss, p)}")


class GaussianYoloLayer(gaussian.GaussianYoloLayer):
    """hank-ai/darknet's ``[Gaussian_yolo]`` layer, bit-exact to upstream
    f684e1d7's strict build.

    Parameters: as :class:`pydarknet_loss.alexeyab.GaussianYoloLayer`
    (hank-ai's parser reads the same keys).  What differs from AlexeyAB's:

    * predicted w, h (``expf``), the w, h targets (``logf``), the Gaussian
      gradient's ``temp``, the x, y, w, h deltas and the sigma deltas are
      computed in float (AlexeyAB: double constants make them double);
    * the IoU-loss chain rule ``dw *= expf(x)``; hank-ai's IoU family (a NaN
      edge propagates, no union test, CIoU's atanf);
    * ``label_smooth_eps``'s duplicate-class branch adds ``0.5f*eps`` in float;
    * ``yolo_point`` left_top / right_bottom: the truth's cell is
      ``std::clamp(i, w - 1, (int)(x -+ w/2)*w)``, libstdc++'s
      ``min(max(i, w - 1), hi)``: mostly column 0 or w - 1 (a cell outside
      the grid raises ValueError);
    * a truth row (before the ``x == 0`` end) with a class id ``>= classes``
      raises ValueError (hank-ai: "invalid class ID", abort), where AlexeyAB
      warns and skips it;
    * ``result.stats.line()`` is hank-ai's line (every training forward),
      ``result.text`` that line and its newline (no warnings).

    ``detections()`` is not offered: hank-ai's decoding was not checked here.
    """

    kind = "gaussian_yolo_hankai"  #: the golden cases' kind
    flavor = "hankai"

    def __repr__(self) -> str:
        return "hankai." + super().__repr__()[len("alexeyab."):]

    def _spec(self) -> _native.GaussianSpec:
        spec = super()._spec()
        spec.scalars["flavor"] = _native.AB_FLAVOR_HANKAI
        return spec

    def _warnings(self, packed: np.ndarray, cells: int) -> str:
        return ""  # hank-ai aborts on such a row instead (refused before the forward)

    def _fatal_class_row(self, packed: np.ndarray) -> Optional[ValueError]:
        """hank-ai's loop 1: the first row, before the x == 0 end, whose class
        id is >= classes stops it with darknet_fatal_error("invalid class ID")."""
        for b in range(packed.shape[0]):
            for t, r in enumerate(packed[b]):
                if not np.all(np.isfinite(r[:5])) or not (-2.0**31 - 1 < float(r[4]) < 2.0**31):
                    return None  # the C core's checks name this row
                cid = int(r[4])
                if cid >= self.classes:
                    return ValueError(
                        f"truth image {b} row {t} (x={float(r[0])!r}, y={float(r[1])!r}, w={float(r[2])!r}, "
                        f"h={float(r[3])!r}, class_id={float(r[4])!r}) has class id {cid} >= "
                        f"classes={self.classes}: hank-ai's [Gaussian_yolo] stops with a fatal error "
                        f"(\"invalid class ID #{cid}\"); expected ids in [0, {self.classes})")
                if r[0] == 0:
                    break
        return None

    def forward(self, x: np.ndarray, truth: Any = None, *, train: bool = True, seen: Optional[int] = None,
                net_w: int = 416, net_h: int = 416, index: int = 0, out: Any = None,
                layout: str = "nchw") -> gaussian.GaussianYoloResult:
        """As :meth:`pydarknet_loss.alexeyab.GaussianYoloLayer.forward`, with hank-ai's arithmetic, checks and line."""
        if train is True and truth is not None and layout == "nchw":
            xa = np.asarray(x)
            if xa.ndim == 4:
                err = self._fatal_class_row(self.pack_truth(truth, xa.shape[0]))
                if err is not None:
                    raise err
        res = super().forward(x, truth, train=train, seen=seen, net_w=net_w, net_h=net_h, index=index, out=out,
                              layout=layout)
        if res.stats is not None and not isinstance(res.stats, GaussianYoloStats):
            s = res.stats
            res = replace(res, stats=GaussianYoloStats(**{f: getattr(s, f) for f in s.__dataclass_fields__}),
                          warnings="")
        return res

    def detections(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("hankai.GaussianYoloLayer.detections: hank-ai's decoding is not reproduced here "
                                  "(use alexeyab.GaussianYoloLayer.detections for AlexeyAB's)")


def gaussian_layer_from_params(params: Mapping[str, Any]) -> GaussianYoloLayer:
    """The layer a ``gaussian_yolo_hankai`` golden case's params describe."""
    kw = dict(params["kwargs"])
    if "map" in kw or params.get("map") is not None:
        kw["map"] = params.get("map")
    return GaussianYoloLayer(**kw, batch=params["batch"])


def forward_gaussian_case(case: Mapping[str, Any]) -> gaussian.GaussianYoloResult:
    """Run a loaded ``gaussian_yolo_hankai`` golden case through its layer."""
    p = case["params"]
    layer = gaussian_layer_from_params(p)
    return layer.forward(case["input"], case["truth"], train=bool(case["train"]), net_w=p["net_w"],
                         net_h=p["net_h"], index=p["net_index"])
