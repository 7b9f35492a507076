"""AlexeyAB/darknet 59596d7's parse_gaussian_yolo (src/parser.c) and
make_gaussian_yolo_layer, as a rule of the alexeyab flavor's table
(flavors/alexeyab.py): a ``[Gaussian_yolo]`` section becomes an
``alexeyab.GaussianYoloLayer``.

Where it differs from parse_yolo (the [yolo] rule there):
  - fewer options (no new_coords, focal_loss, show_details, tracking,
    embedding); uc_normalizer; yolo_point (left_top, right_bottom, anything
    else the centre); nms_kind "cornersnms" too;
  - C = n*(classes + 8 + 1);
  - the anchors loop counts *every* comma (no '#' stop) and writes every
    value into l.biases, without upstream's [yolo] bound i < 2*num: more
    values than 2*num write past the buffer, which is refused here.
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Dict

import numpy as np

from ..._validate import DarknetQuirkWarning
from ...layers import gaussian as gy
from ...layers.alexeyab import IOU_LOSS_ENUM, IOU_THRESH_KINDS
from ..cfg import CfgError, Section, c_atof, c_atoi, read_map
from ._common import LayerInfo, Params, check_anchor_count, check_inputs

if TYPE_CHECKING:  # pragma: no cover
    from ..network import Network

FLT_MAX = float(np.finfo(np.float32).max)


def _mask_list(value: str) -> list:
    """parse_gaussian_yolo_mask: n = 1 + the commas before any '#'."""
    return [c_atoi(part) for part in value.split("#")[0].split(",")]


def gaussian_yolo(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    """parse_gaussian_yolo and make_gaussian_yolo_layer."""
    classes = s.get_int("classes", 20)
    max_boxes = s.get_int("max", 200)
    total = s.get_int("num", 1)
    check_anchor_count(net, s, total)
    mask = s.read("mask", _mask_list)
    n = len(mask) if mask is not None else total
    for key, v in (("classes", classes), ("num", total)):
        if v < 1:
            raise CfgError(f"{s.where(net.path, key)}: {key}={v}; upstream sizes its buffers from it and "
                           "computes garbage or crashes below 1")
    if max_boxes < 0:
        raise CfgError(f"{s.where(net.path, 'max')}: max={max_boxes}; upstream sizes the truth buffer from it")
    l.w = l.out_w = p.w
    l.h = l.out_h = p.h
    l.c = l.out_c = n * (classes + 8 + 1)
    l.outputs = l.inputs = p.h * p.w * l.c
    check_inputs(net, s, l, p, f"n*(classes+9)*w*h with n={n}, classes={classes}")
    f: Dict[str, Any] = {}
    max_delta = s.get_float("max_delta", FLT_MAX)
    counters = s.read("counters_per_class", _mask_list)
    f["label_smooth_eps"] = s.get_float("label_smooth_eps", 0.0)
    f["scale_x_y"] = s.get_float("scale_x_y", 1)
    f["objectness_smooth"] = s.get_int("objectness_smooth", 0)
    for key, default in (("uc_normalizer", 1.0), ("iou_normalizer", 0.75), ("obj_normalizer", 1.0),
                         ("cls_normalizer", 1), ("delta_normalizer", 1)):
        f[key] = s.get_float(key, default)
    iou_loss = str(s.get_str("iou_loss", "mse"))
    loss_name = iou_loss if iou_loss in IOU_LOSS_ENUM else "iou"
    if loss_name != iou_loss:
        warnings.warn(f"{s.where(net.path)}: iou_loss={iou_loss}: upstream reads any name other than mse, giou, "
                      "diou, ciou as iou (IOU)", DarknetQuirkWarning, stacklevel=5)
    kind = str(s.get_str("iou_thresh_kind", "iou"))
    kind_name = kind if kind in IOU_THRESH_KINDS else "iou"
    if kind_name != kind:
        warnings.warn(f"{s.where(net.path)}: iou_thresh_kind={kind}: upstream prints 'Wrong iou_thresh_kind' "
                      "and uses iou", DarknetQuirkWarning, stacklevel=5)
    f["beta_nms"] = s.get_float("beta_nms", 0.6)
    nms_kind = str(s.get_str("nms_kind", "default"))
    nms_name = nms_kind if nms_kind in gy.NMS_KIND_ENUM else "default"
    point = str(s.get_str("yolo_point", "center"))
    point_name = point if point in ("left_top", "right_bottom") else "center"
    if point_name != point:
        warnings.warn(f"{s.where(net.path)}: yolo_point={point}: upstream reads any name other than left_top, "
                      "right_bottom as the centre", DarknetQuirkWarning, stacklevel=5)
    f["jitter"] = s.get_float("jitter", .2)
    f["resize"] = s.get_float("resize", 1.0)
    for key, default in (("ignore_thresh", .5), ("truth_thresh", 1), ("iou_thresh", 1), ("random", 0)):
        f[key] = s.get_float(key, default)
    map_file = s.get_str("map")
    cmap = read_map(net.file(map_file)) if map_file is not None else None
    anchors = s.read("anchors", lambda v: [np.float32(c_atof(x)) for x in v.split(",")])
    if anchors is not None and len(anchors) > 2 * total:
        raise CfgError(f"{s.where(net.path, 'anchors')}: {len(anchors)} anchor values (upstream counts every "
                       f"comma, '#' comments included) but num={total} holds {2 * total}: parse_gaussian_yolo "
                       "writes them all into l.biases, past its end")
    if counters is not None and len(counters) != classes:
        raise CfgError(f"{s.where(net.path)}: counters_per_class has {len(counters)} values but classes={classes} "
                       "(upstream stops)")
    try:
        l.loss = gy.GaussianYoloLayer(
            classes=classes, num=total, mask=mask, anchors=anchors, max=max_boxes,
            max_delta=None if float(max_delta) == FLT_MAX else float(max_delta), counters_per_class=counters,
            label_smooth_eps=f["label_smooth_eps"], scale_x_y=f["scale_x_y"],
            objectness_smooth=f["objectness_smooth"], uc_normalizer=f["uc_normalizer"],
            iou_normalizer=f["iou_normalizer"], obj_normalizer=f["obj_normalizer"],
            cls_normalizer=f["cls_normalizer"], delta_normalizer=f["delta_normalizer"], iou_loss=loss_name,
            iou_thresh_kind=kind_name, beta_nms=f["beta_nms"], nms_kind=nms_name, yolo_point=point_name,
            jitter=f["jitter"], resize=f["resize"], ignore_thresh=f["ignore_thresh"],
            truth_thresh=f["truth_thresh"], iou_thresh=f["iou_thresh"], random=f["random"], map=cmap)
    except ValueError as exc:
        raise CfgError(f"{s.where(net.path)}: {exc}") from None
    layer = l.loss
    f.update(n=n, total=total, classes=classes, max_boxes=max_boxes, truth_size=6, truths=max_boxes * 6,
             mask=layer.mask.tolist(), biases=[float(b) for b in layer.anchors], max_delta=float(max_delta),
             classes_multipliers=None if layer.classes_multipliers is None
             else [float(v) for v in layer.classes_multipliers],
             iou_loss=iou_loss, iou_loss_enum=IOU_LOSS_ENUM[loss_name], iou_thresh_kind=kind,
             iou_thresh_kind_enum=IOU_LOSS_ENUM[kind_name], nms_kind=nms_kind,
             nms_kind_enum=gy.NMS_KIND_ENUM[nms_name], yolo_point_enum=gy.YOLO_POINT_ENUM[point_name],
             map_set=int(cmap is not None), keep_delta_gpu=1, map_file=map_file)
    l.params.update(f)
