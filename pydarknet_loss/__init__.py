"""pydarknet_loss: a bit-exact oracle for darknet's YOLO losses.

It reproduces, bit for bit, the loss layers of two darknets, from NumPy (or
torch tensors), and tells another implementation where and why it departs.

The layers
----------
* pjreddie/darknet (commit f6afaab): YOLOv3's ``[yolo]``
  (:class:`YoloLayer`) and YOLOv2's ``[region]`` (:class:`RegionLayer`,
  softmax trees included: :func:`read_tree`, :class:`Tree`).
* AlexeyAB/darknet (commit 59596d7; the hank-ai fork keeps its
  arithmetic): YOLOv4/YOLOv7's ``[yolo]`` (:class:`pydarknet_loss.alexeyab.YoloLayer`).
* Each ``layer.forward(x, truth, ...)`` returns darknet's output, delta,
  cost and printed statistics; ``build="gpu"`` follows darknet's GPU build
  (:class:`CudaError` without one).  :class:`Network` reads a cfg
  (``Network.from_cfg(path, flavor="pjreddie" | "alexeyab")``) and runs its
  loss layers; :func:`example_cfg` gives two small bundled cfgs.
* Detections and NMS: :class:`Detections`, :func:`nms_sort`,
  :func:`nms_obj`; boxes: :func:`box_iou`, :func:`box_rmse`; truths in other
  formats: :func:`to_truth`; layouts: :func:`to_layout`, :func:`from_layout`.
* :mod:`pydarknet_loss.implied`: the loss darknet's delta is the gradient
  of, and each element's float32 rounding bound.

The workflow: check your implementation
---------------------------------------
1. ``report = pdl.compare(expected, {"delta": yours}, layer, input=x,
   truth=truth)`` (or :func:`assert_parity`): the verdict under the default
   tolerance, ``"float32"`` (darknet's own rounding; ``"exact"`` for a
   bit-exact port), and one cause per failing element
   (``report.causes``; :mod:`pydarknet_loss.parity.diagnose`).
2. ``pdl.fuzz(your_impl, layer)``: the smallest input on which it departs
   (needs Hypothesis, the ``[fuzz]`` extra; :mod:`pydarknet_loss.strategies`).
3. ``pdl.torch.check_gradient(your_loss, layer, x, truth)``: a PyTorch loss
   in one call (the ``[torch]`` extra).
4. In CI: ``pydarknet-loss golden export --cfg your.cfg --out golden/``,
   then the pytest plugin's ``darknet_golden_case`` fixture
   (``pytest --darknet-golden golden/``) or ``pydarknet-loss check``.
   :mod:`pydarknet_loss.parity.golden` reads and writes cases; their format
   is :mod:`pydarknet_loss.parity.golden_format`.
5. ``pdl.mistakes`` (:mod:`pydarknet_loss.parity.mistakes`): a gallery of implementations with one
   classic mistake each, and the cause each is named by.

``pydarknet-loss demo`` runs a built-in example; ``pydarknet-loss --help``
lists the commands.  Every function and class has its own help.
"""
from ._version import UPSTREAM_COMMIT, __version__
from ._native import BUILD_CFLAGS, CudaError
from ._validate import DarknetQuirkWarning
from .layers.boxes import box_iou, box_rmse
from .layers.layout import LAYOUTS, from_layout, to_layout
from .layers.detections import Detections, nms_obj, nms_sort
from .layers.pjreddie import RegionLayer, RegionResult, RegionStats, YoloLayer, YoloResult, YoloStats
from .files.cfg import CfgError
from .files.labels import Labels, pack_truth, read_labels
from .files.network import (DarknetCfgWarning, LayerInfo, Network, NetworkResult, calc_network_cost, example_cfg,
                            train_loss)
from .files.tree import Tree, read_tree
from .files.truth import to_truth
from .parity.compare import ParityReport, assert_parity, compare
from .parity import golden, mistakes
from . import implied
from .layers import alexeyab
from .layers import hankai
from .layers.detection import DetectionLayer, DetectionResult, DetectionStats  # issue 23: YOLOv1's [detection]

__all__ = [
    "BUILD_CFLAGS",
    "CfgError",
    "CudaError",
    "DarknetCfgWarning",
    "Detections",
    "LayerInfo",
    "Labels",
    "LAYOUTS",
    "Network",
    "NetworkResult",
    "ParityReport",
    "assert_parity",
    "compare",
    "calc_network_cost",
    "example_cfg",
    "from_layout",
    "fuzz",
    "golden",
    "implied",
    "mistakes",
    "nms_obj",
    "nms_sort",
    "pack_truth",
    "read_labels",
    "to_layout",
    "to_truth",
    "train_loss",
    "DarknetQuirkWarning",
    "DetectionLayer",
    "DetectionResult",
    "DetectionStats",
    "RegionLayer",
    "RegionResult",
    "RegionStats",
    "Tree",
    "UPSTREAM_COMMIT",
    "YoloLayer",
    "YoloResult",
    "YoloStats",
    "alexeyab",
    "hankai",
    "box_iou",
    "box_rmse",
    "read_tree",
    "__version__",
]


def fuzz(impl, layer=None, **kw):  # type: ignore[no-untyped-def]
    """Differential fuzzing with shrinking (needs Hypothesis, the [fuzz]
    extra): ``fuzz(your_impl, your_layer)`` runs ``your_impl(x, truth,
    layer, net_w, net_h)`` against the oracle on drawn inputs and truths and
    shrinks the first departure.  Without ``layer`` the heads of a standard
    cfg are fuzzed (``kind="yolo"``: yolov3.cfg's), layer options drawn only
    when opted in (``options=``).  See :func:`pydarknet_loss.parity.fuzz.fuzz`."""
    from .parity.fuzz import fuzz as run

    return run(impl, layer, **kw)


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    # pdl.torch needs PyTorch and pdl.strategies Hypothesis, optional
    # extras: imported on first use.
    if name in ("torch", "strategies"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
