"""pydarknet_loss: a bit-exact oracle for darknet's YOLO losses.

Reproduces the arithmetic of pjreddie/darknet (commit f6afaab) for the
``[yolo]`` and ``[region]`` layers, bit for bit, from NumPy.  See README.md.
"""
from ._native import BUILD_CFLAGS
from ._validate import DarknetQuirkWarning
from .boxes import box_iou, box_rmse
from .cfg import CfgError
from .detections import Detections, nms_obj, nms_sort
from .labels import Labels, pack_truth, read_labels
from .layers import RegionLayer, RegionResult, RegionStats, YoloLayer, YoloResult, YoloStats
from .network import (DarknetCfgWarning, LayerInfo, Network, NetworkResult, calc_network_cost, example_cfg,
                      train_loss)
from .tree import Tree, read_tree

__version__ = "0.1.0"

#: The upstream darknet commit whose arithmetic is reproduced.
UPSTREAM_COMMIT = "f6afaabcdf85f77e7aff2ec55c020c0e297c77f9"

__all__ = [
    "BUILD_CFLAGS",
    "CfgError",
    "DarknetCfgWarning",
    "Detections",
    "LayerInfo",
    "Labels",
    "Network",
    "NetworkResult",
    "calc_network_cost",
    "example_cfg",
    "nms_obj",
    "nms_sort",
    "pack_truth",
    "read_labels",
    "train_loss",
    "DarknetQuirkWarning",
    "RegionLayer",
    "RegionResult",
    "RegionStats",
    "Tree",
    "UPSTREAM_COMMIT",
    "YoloLayer",
    "YoloResult",
    "YoloStats",
    "box_iou",
    "box_rmse",
    "read_tree",
    "__version__",
]
