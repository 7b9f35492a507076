"""pydarknet_loss: a bit-exact oracle for darknet's YOLO losses.

Reproduces the arithmetic of pjreddie/darknet (commit f6afaab) for the
``[yolo]`` and ``[region]`` layers, bit for bit, from NumPy.  See README.md.
"""
from ._version import UPSTREAM_COMMIT, __version__
from ._native import BUILD_CFLAGS, CudaError
from ._validate import DarknetQuirkWarning
from .layers.boxes import box_iou, box_rmse
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
from .layers.detection import DetectionLayer, DetectionResult, DetectionStats  # issue 23: YOLOv1's [detection]

__all__ = [
    "BUILD_CFLAGS",
    "CfgError",
    "CudaError",
    "DarknetCfgWarning",
    "Detections",
    "LayerInfo",
    "Labels",
    "Network",
    "NetworkResult",
    "ParityReport",
    "assert_parity",
    "compare",
    "calc_network_cost",
    "example_cfg",
    "fuzz",
    "golden",
    "implied",
    "mistakes",
    "nms_obj",
    "nms_sort",
    "pack_truth",
    "read_labels",
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
    "box_iou",
    "box_rmse",
    "read_tree",
    "__version__",
]


def fuzz(impl, layer=None, **kw):  # type: ignore[no-untyped-def]
    """Differential fuzzing with shrinking (needs Hypothesis, the [fuzz]
    extra): see :func:`pydarknet_loss.parity.fuzz.fuzz`."""
    from .parity.fuzz import fuzz as run

    return run(impl, layer, **kw)


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    # pdl.torch needs PyTorch and pdl.strategies Hypothesis, optional
    # extras: imported on first use.
    if name in ("torch", "strategies"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
