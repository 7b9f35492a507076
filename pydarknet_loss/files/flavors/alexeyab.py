"""AlexeyAB/darknet 59596d7: the cfg rules of its parser.c, as a table
``Network`` walks: parse_net_options and parse_network_cfg_custom, and the
parse_*/make_*_layer pairs of the layer types upstream's shipped YOLOv3,
YOLOv4(-tiny, -csp) and YOLOv7(-tiny) cfgs use ([convolutional],
[maxpool], [route], [shortcut], [upsample], [yolo]).

Where AlexeyAB's parser differs from pjreddie's (flavors/pjreddie.py):
  - [net]: batch < 1 becomes 1 and batch < time_steps becomes time_steps
    (pjreddie keeps them); many more options (mosaic, cutmix, ema_alpha, ...);
  - [convolutional]: stride_x/stride_y, dilation (which does not enter the
    output size: out = (in + 2*pad - size)/stride + 1), share_index;
  - [maxpool]: stride_x/stride_y, maxpool_depth/out_channels;
  - [route]: groups/group_id (outputs and out_c divided by groups), and
    w, h taken from the first input's *input* size;
  - [shortcut]: several `from` layers, weights_type/weights_normalization;
    the sizes must agree in w and h (upstream asserts);
  - [yolo]: parse_yolo reads ~40 options (see layers/alexeyab.py); `num`
    defaults to 1, `max` to 200; mask= and anchors= stop counting values
    at a '#'; anchors beyond 2*num are ignored;
  - after every layer: clip, dont_update, burnin_update, train_only_bn
    (besides onlyforward, stopbackward, dontload, dontloadscales,
    learning_rate); layers before the last stopbackward=1 become onlyforward;
  - the network cost (get_network_cost) averages the layers that have a
    cost slot: [cost], [detection], [Gaussian_yolo], [region], [softmax],
    [contrastive], [yolo].

Every other section type AlexeyAB knows is refused with the reason (this
package does not size it); a section type it does not know is an error, as
in the pjreddie flavor (upstream prints "Type not recognized" and goes on
with an empty layer).
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import TYPE_CHECKING, Any, Dict, List

import numpy as np

from ..cfg import CfgError, Section, c_atof, c_atoi, read_map
from ._common import (INT_MAX, Flavor, LayerInfo, Params, cdiv, check_anchor_count, check_input_size, check_inputs,
                      need_image, positive, upsample)
from ..._validate import DarknetQuirkWarning
from ...layers import alexeyab as ab
from .alexeyab_gaussian import gaussian_yolo

if TYPE_CHECKING:  # pragma: no cover
    from ..network import Network

UPSTREAM = "AlexeyAB/darknet 59596d7880f6504768df41d6daa586f5cb2b932f"

#: LAYER_TYPE (include/darknet.h), in enum order.
LAYER_TYPES = ("CONVOLUTIONAL", "DECONVOLUTIONAL", "CONNECTED", "MAXPOOL", "LOCAL_AVGPOOL", "SOFTMAX", "DETECTION",
               "DROPOUT", "CROP", "ROUTE", "COST", "NORMALIZATION", "AVGPOOL", "LOCAL", "SHORTCUT",
               "SCALE_CHANNELS", "SAM", "ACTIVE", "RNN", "GRU", "LSTM", "CONV_LSTM", "HISTORY", "CRNN",
               "BATCHNORM", "NETWORK", "XNOR", "REGION", "YOLO", "GAUSSIAN_YOLO", "ISEG", "REORG", "REORG_OLD",
               "UPSAMPLE", "LOGXENT", "L2NORM", "EMPTY", "BLANK", "CONTRASTIVE", "IMPLICIT")

#: string_to_layer_type: section name -> canonical type (LAYER_TYPE, lower case).
SECTIONS = {
    "[shortcut]": "shortcut", "[scale_channels]": "scale_channels", "[sam]": "sam", "[crop]": "crop",
    "[cost]": "cost", "[detection]": "detection", "[region]": "region", "[yolo]": "yolo",
    "[Gaussian_yolo]": "gaussian_yolo", "[local]": "local", "[conv]": "convolutional",
    "[convolutional]": "convolutional", "[activation]": "active", "[crnn]": "crnn", "[gru]": "gru",
    "[lstm]": "lstm", "[conv_lstm]": "conv_lstm", "[history]": "history", "[rnn]": "rnn", "[conn]": "connected",
    "[connected]": "connected", "[max]": "maxpool", "[maxpool]": "maxpool", "[local_avg]": "local_avgpool",
    "[local_avgpool]": "local_avgpool", "[reorg3d]": "reorg", "[reorg]": "reorg_old", "[avg]": "avgpool",
    "[avgpool]": "avgpool", "[dropout]": "dropout", "[lrn]": "normalization", "[normalization]": "normalization",
    "[batchnorm]": "batchnorm", "[soft]": "softmax", "[softmax]": "softmax", "[contrastive]": "contrastive",
    "[route]": "route", "[upsample]": "upsample", "[empty]": "empty", "[silence]": "empty",
    "[implicit]": "implicit",
}

#: get_layer_string: the name upstream prints for a type ("none" for the rest, [upsample] included).
TYPE_STRINGS = {
    "convolutional": "convolutional", "active": "activation", "local": "local", "deconvolutional": "deconvolutional",
    "connected": "connected", "rnn": "rnn", "gru": "gru", "lstm": "lstm", "crnn": "crnn", "maxpool": "maxpool",
    "reorg": "reorg", "avgpool": "avgpool", "softmax": "softmax", "detection": "detection", "region": "region",
    "yolo": "yolo", "gaussian_yolo": "Gaussian_yolo", "dropout": "dropout", "crop": "crop", "cost": "cost",
    "route": "route", "shortcut": "shortcut", "scale_channels": "scale_channels", "sam": "sam",
    "normalization": "normalization", "batchnorm": "batchnorm",
}

COST_TYPES = ("cost", "detection", "gaussian_yolo", "region", "softmax", "contrastive", "yolo")

#: learning_rate_policy (get_policy; an unknown name is CONSTANT, with a message).
POLICIES = {"constant": 0, "step": 1, "exp": 2, "poly": 3, "steps": 4, "sigmoid": 5, "random": 6, "sgdr": 7}


def _c_int_of_float(name: str, v: np.float32) -> int:
    """A float option stored into an int field: C truncation, refused where undefined."""
    if not (np.isfinite(v) and -2**31 - 1 < float(v) < 2**31):
        raise CfgError(f"{name} = {float(v)!r} does not fit the C int upstream stores it in")
    return int(float(v))


# ---- [net] -------------------------------------------------------------------------

def parse_net(net: "Network", s: Section) -> None:
    """parse_net_options, then parse_network_cfg_custom's batch clamps."""
    f: Dict[str, Any] = {}
    f["max_batches"] = s.get_int("max_batches", 0)
    batch = s.get_int("batch", 1)
    f["learning_rate"] = s.get_float("learning_rate", .001)
    s.get_float("learning_rate_min", .00001)
    s.get_int("sgdr_cycle", f["max_batches"])
    s.get_int("sgdr_mult", 2)
    f["momentum"] = s.get_float("momentum", .9)
    f["decay"] = s.get_float("decay", .0001)
    subdivs = s.get_int("subdivisions", 1)
    time_steps = s.get_int("time_steps", 1)
    f["track"] = s.get_int("track", 0)
    s.get_int("augment_speed", 2)
    s.get_int("sequential_subdivisions", subdivs)
    s.get_int("try_fix_nan", 0)
    if subdivs == 0:
        raise CfgError(f"{s.where(net.path, 'subdivisions')}: subdivisions=0 (upstream divides the batch by it)")
    batch = cdiv(batch, subdivs)  # mini_batch
    batch *= time_steps
    f["subdivisions"] = subdivs
    s.get_int("weights_reject_freq", 0)
    f["equidistant_point"] = s.get_int("equidistant_point", 0)
    f["badlabels_rejection_percentage"] = s.get_float("badlabels_rejection_percentage", 0)
    f["num_sigmas_reject_badlabels"] = s.get_float("num_sigmas_reject_badlabels", 0)
    f["ema_alpha"] = s.get_float("ema_alpha", 0)
    s.get_int("use_cuda_graph", 0)
    f["loss_scale"] = s.get_float("loss_scale", 1)
    f["dynamic_minibatch"] = s.get_int("dynamic_minibatch", 0)
    s.get_int("optimized_memory", 0)
    s.get_float("workspace_size_limit_MB", 1024)
    f["adam"] = s.get_int("adam", 0)
    if f["adam"]:
        for key, default in (("B1", .9), ("B2", .999), ("eps", .000001)):
            s.get_float(key, default)
    h, w, c = s.get_int("height", 0), s.get_int("width", 0), s.get_int("channels", 0)
    inputs = s.get_int("inputs", h * w * c if abs(h * w * c) <= INT_MAX else 0)
    s.get_int("max_crop", w * 2)
    s.get_int("min_crop", w)
    f["flip"] = s.get_int("flip", 1)
    s.get_int("blur", 0)
    s.get_int("gaussian_noise", 0)
    mixup = s.get_int("mixup", 0)
    cutmix = s.get_int("cutmix", 0)
    mosaic = s.get_int("mosaic", 0)
    f["mixup"] = 4 if (mosaic and cutmix) else 2 if cutmix else 3 if mosaic else mixup
    f["letter_box"] = s.get_int("letter_box", 0)
    f["mosaic_bound"] = s.get_int("mosaic_bound", 0)
    contrastive = s.get_int("contrastive", 0)
    for key in ("contrastive_jit_flip", "contrastive_color", "unsupervised"):
        s.get_int(key, 0)
    if contrastive and batch // max(time_steps, 1) < 2:
        raise CfgError(f"{s.where(net.path)}: contrastive=1 needs a mini_batch (batch/subdivisions) of 2 or more "
                       "(upstream stops with an error)")
    f["label_smooth_eps"] = s.get_float("label_smooth_eps", 0.0)
    f["resize_step"] = s.read("resize_step", lambda v: _c_int_of_float("resize_step", np.float32(c_atof(v))), 32)
    s.get_int("attention", 0)
    for key, default in (("adversarial_lr", 0), ("max_chart_loss", 20.0), ("angle", 0), ("aspect", 1),
                         ("saturation", 1), ("exposure", 1), ("hue", 0), ("power", 4)):
        s.get_float(key, default)
    if not inputs and not (h and w and c):
        raise CfgError(f"{s.where(net.path, 'height', 'width', 'channels', 'inputs')}: no input size (height, "
                       "width, channels or inputs); upstream stops")
    policy = str(s.get_str("policy", "constant"))
    f["policy"] = POLICIES.get(policy, 0)
    if policy not in POLICIES:
        warnings.warn(f"{s.where(net.path)}: policy={policy} is not a policy upstream knows; it goes with "
                      "constant (and says so)", DarknetQuirkWarning, stacklevel=5)
    f["burn_in"] = s.get_int("burn_in", 0)
    if policy == "step":
        s.get_int("step", 1)
        s.get_float("scale", 1)
    elif policy in ("steps", "sgdr"):
        steps, scales = s.find("steps"), s.find("scales")
        s.find("seq_scales")
        if policy == "steps" and (steps is None or scales is None):
            raise CfgError(f"{s.where(net.path)}: the steps policy needs steps and scales (upstream stops)")
    elif policy in ("exp", "sigmoid"):
        s.get_float("gamma", 1)
        if policy == "sigmoid":
            s.get_int("step", 1)
    s.get_float("show_receptive_field", 0)  # read by parse_network_cfg_custom from [net]
    # parse_network_cfg_custom (training, batch from the cfg): the clamps.
    if time_steps < 1:
        time_steps = 1
    if batch < 1:
        batch = 1
    if batch < time_steps:
        batch = time_steps
    f.update(batch=batch, time_steps=time_steps, h=h, w=w, c=c, inputs=inputs)
    check_input_size(net, s, height=h, width=w, channels=c, inputs=inputs)
    net.batch, net.subdivisions, net.time_steps = batch, subdivs, time_steps
    net.height, net.width, net.channels, net.inputs = h, w, c, inputs
    net.random = 0
    # The fields parse_network_cfg leaves that the shared JSON records.
    f.update(truths=0, adversarial=0, cur_iteration=0, seen=0)
    net.upstream_net = f


# ---- the layers ------------------------------------------------------------------------

def _positive(net: "Network", s: Section, **values: int) -> None:
    for key, v in values.items():
        if v < 1:
            raise CfgError(f"{s.where(net.path)}: {key}={v}; upstream divides by it (or sizes from it) and "
                           "computes garbage or crashes below 1")


def convolutional(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    n = s.get_int("filters", 1)
    groups = s.get_int("groups", 1)
    size = s.get_int("size", 1)
    positive(net, s, size=size)
    stride_x = s.get_int("stride_x", -1)
    stride_y = s.get_int("stride_y", -1)
    if stride_x < 1 or stride_y < 1:
        stride = s.get_int("stride", 1)
        positive(net, s, stride=stride)
        if stride_x < 1:
            stride_x = stride
        if stride_y < 1:
            stride_y = stride
    else:
        stride = s.get_int("stride", 1)
    dilation = s.get_int("dilation", 1)
    antialiasing = s.get_int("antialiasing", 0)
    if size == 1:
        dilation = 1
    pad = s.get_int("pad", 0)
    padding = s.get_int("padding", 0)
    if pad:
        padding = cdiv(size, 2)
    s.get_str("activation", "logistic")
    s.get_float("assisted_excitation", 0)
    share_index = s.get_int("share_index", -1000000000)
    need_image(net, s, p, "convolutional")
    batch_normalize = s.get_int("batch_normalize", 0)
    if s.get_int("cbn", 0):
        batch_normalize = 2
    s.get_int("binary", 0)
    xnor = s.get_int("xnor", 0)
    s.get_int("bin_output", 0)
    deform = [s.get_int(k, 0) for k in ("sway", "rotate", "stretch", "stretch_sway")]
    if sum(deform) > 1:
        raise CfgError(f"{s.where(net.path)}: only one of sway, rotate, stretch, stretch_sway may be set "
                       "(upstream stops)")
    if any(deform) and size == 1:
        raise CfgError(f"{s.where(net.path)}: sway/rotate/stretch need size >= 3 (upstream stops)")
    for key, default in (("flipped", 0), ("dot", 0), ("angle", 15), ("grad_centr", 0), ("reverse", 0),
                         ("coordconv", 0), ("stream", -1), ("wait_stream", -1)):
        (s.get_float if key in ("dot", "angle", "reverse") else s.get_int)(key, default)
    if antialiasing:
        raise CfgError(f"{s.where(net.path)}: antialiasing={antialiasing} is not modelled by this package "
                       "(upstream adds a blur layer inside the convolution)")
    _positive(net, s, stride_x=stride_x, stride_y=stride_y, size=size)
    if xnor or groups < 1:
        groups = 1
    l.w, l.h, l.c = p.w, p.h, p.c
    # convolutional_out_height/width: the plain kernel size, whatever the dilation.
    l.out_h = cdiv(p.h + 2 * padding - size, stride_y) + 1
    l.out_w = cdiv(p.w + 2 * padding - size, stride_x) + 1
    l.out_c = n
    l.outputs = l.out_h * l.out_w * l.out_c
    l.inputs = l.w * l.h * l.c
    nweights = cdiv(p.c, groups) * n * size * size
    if share_index != -1000000000:
        index = share_index if share_index >= 0 else p.index + share_index
        index = net.earlier(s, "share_index", index, p)
        other = net.layers[index]
        op = other.params
        if other.type != "convolutional" or (op.get("size"), op.get("nweights"), other.c, op.get("n")) != (
                size, nweights, p.c, n):
            raise CfgError(f"{s.where(net.path)}: share_index={share_index}: layer {index}'s size, weights, "
                           "channels or filters do not match (upstream stops)")
    l.params.update(n=n, size=size, stride_x=stride_x, stride_y=stride_y, dilation=dilation, pad=padding,
                    groups=groups, nweights=nweights, batch_normalize=batch_normalize)


def maxpool(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    stride = s.get_int("stride", 1)
    stride_x = s.get_int("stride_x", stride)
    stride_y = s.get_int("stride_y", stride)
    size = s.get_int("size", stride)
    positive(net, s, size=size, stride_x=stride_x, stride_y=stride_y)
    padding = s.get_int("padding", size - 1)
    maxpool_depth = s.get_int("maxpool_depth", 0)
    out_channels = s.get_int("out_channels", 1)
    antialiasing = s.get_int("antialiasing", 0)
    need_image(net, s, p, "[maxpool]")
    s.get_int("maxpool_zero_nonmax", 0)
    if antialiasing:
        raise CfgError(f"{s.where(net.path)}: antialiasing={antialiasing} is not modelled by this package")
    l.w, l.h, l.c = p.w, p.h, p.c
    if maxpool_depth:
        l.out_c, l.out_w, l.out_h = out_channels, p.w, p.h
    else:
        _positive(net, s, stride_x=stride_x, stride_y=stride_y)
        l.out_w = cdiv(p.w + padding - size, stride_x) + 1
        l.out_h = cdiv(p.h + padding - size, stride_y) + 1
        l.out_c = p.c
    l.outputs = l.out_h * l.out_w * l.out_c
    l.inputs = p.h * p.w * p.c
    l.params.update(size=size, stride_x=stride_x, stride_y=stride_y, pad=padding, maxpool_depth=maxpool_depth)


def _layer_list(net: "Network", s: Section, key: str, p: Params) -> List[int]:
    """parse_route/parse_shortcut: n = commas + 1, each atoi'd; negative = relative."""
    value = s.read(key, lambda v: [c_atoi(part) for part in v.split(",")])
    if value is None:
        raise CfgError(f"{s.where(net.path)}: [{s.name}] needs {key}= (upstream crashes without it)")
    return [net.earlier(s, key, i if i >= 0 else p.index + i, p) for i in value]


def route(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    idx = _layer_list(net, s, "layers", p)
    groups = s.get_int("groups", 1)
    group_id = s.get_int("group_id", 0)
    if groups == 0:
        raise CfgError(f"{s.where(net.path)}: groups=0 (upstream divides the outputs by it)")
    sizes = [net.layers[i].outputs for i in idx]
    l.outputs = l.inputs = cdiv(sum(sizes), groups)
    first = net.layers[idx[0]]
    l.out_w, l.out_h, l.out_c = first.out_w, first.out_h, first.out_c
    for i in idx[1:]:
        nxt = net.layers[i]
        if nxt.out_w == first.out_w and nxt.out_h == first.out_h:
            l.out_c += nxt.out_c
        else:
            l.out_h = l.out_w = l.out_c = 0
    l.out_c = cdiv(l.out_c, groups)
    # the first input's *input* size, not its output size
    l.w, l.h, l.c = first.w, first.h, l.out_c
    s.get_int("stream", -1)
    s.get_int("wait_stream", -1)
    l.params.update(n=len(idx), input_layers=idx, input_sizes=sizes, groups=groups, group_id=group_id)


def shortcut(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    s.get_str("activation", "linear")
    weights_type = s.get_str("weights_type", "none")
    if weights_type not in ("per_feature", "per_layer", "per_channel", "none"):
        raise CfgError(f"{s.where(net.path)}: weights_type={weights_type}: upstream knows none, per_feature, "
                       "per_channel (and stops)")
    weights_normalization = s.get_str("weights_normalization", "none")
    if weights_normalization not in ("relu", "avg_relu", "softmax") and weights_type != "none":
        # upstream tests weights_type here, not weights_normalization
        raise CfgError(f"{s.where(net.path)}: weights_normalization={weights_normalization} with "
                       f"weights_type={weights_type}: upstream stops")
    idx = _layer_list(net, s, "from", p)
    for i in idx:
        src = net.layers[i]
        if (src.out_w, src.out_h) != (p.w, p.h):
            raise CfgError(f"{s.where(net.path)}: layer {i} outputs {src.out_w}x{src.out_h} but the previous "
                           f"layer {p.w}x{p.h}; upstream asserts they agree")
    l.w = l.out_w = p.w
    l.h = l.out_h = p.h
    l.c = l.out_c = p.c
    l.outputs = l.inputs = p.w * p.h * p.c
    l.params.update(n=len(idx), input_layers=idx, index=idx[0])


def _value_list(value: str, convert: Any) -> List[Any]:
    """parse_yolo_mask / the anchors loop: n = 1 + the commas before any '#',
    each value read where the previous comma left off."""
    return [convert(part) for part in value.split("#")[0].split(",")]


def yolo(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    """parse_yolo and make_yolo_layer."""
    classes = s.get_int("classes", 20)
    total = s.get_int("num", 1)
    check_anchor_count(net, s, total)
    mask = s.read("mask", lambda v: _value_list(v, c_atoi))
    n = len(mask) if mask is not None else total
    max_boxes = s.get_int("max", 200)
    _positive(net, s, classes=classes, num=total, **({"max": max_boxes} if max_boxes < 0 else {}))
    l.w = l.out_w = p.w
    l.h = l.out_h = p.h
    l.c = l.out_c = n * (classes + 4 + 1)
    l.outputs = l.inputs = p.h * p.w * l.c
    check_inputs(net, s, l, p, f"n*(classes+5)*w*h with n={n}, classes={classes}")
    f: Dict[str, Any] = {}
    f["show_details"] = s.get_int("show_details", 1)
    max_delta = s.get_float("max_delta", float(np.finfo(np.float32).max))
    counters = s.read("counters_per_class", lambda v: _value_list(v, c_atoi))
    for key, default in (("label_smooth_eps", 0.0), ("scale_x_y", 1)):
        f[key] = s.get_float(key, default)
    f["objectness_smooth"] = s.get_int("objectness_smooth", 0)
    f["new_coords"] = s.get_int("new_coords", 0)
    for key, default in (("iou_normalizer", 0.75), ("obj_normalizer", 1), ("cls_normalizer", 1),
                         ("delta_normalizer", 1)):
        f[key] = s.get_float(key, default)
    iou_loss = s.get_str("iou_loss", "mse")
    loss_name = iou_loss if iou_loss in ab.IOU_LOSS_ENUM else "iou"
    if loss_name != iou_loss:
        warnings.warn(f"{s.where(net.path)}: iou_loss={iou_loss}: upstream reads any name other than mse, giou, "
                      "diou, ciou as iou (IOU)", DarknetQuirkWarning, stacklevel=5)
    kind = s.get_str("iou_thresh_kind", "iou")
    kind_name = kind if kind in ab.IOU_THRESH_KINDS else "iou"
    if kind_name != kind:
        warnings.warn(f"{s.where(net.path)}: iou_thresh_kind={kind}: upstream prints 'Wrong iou_thresh_kind' "
                      "and uses iou", DarknetQuirkWarning, stacklevel=5)
    f["beta_nms"] = s.get_float("beta_nms", 0.6)
    nms_kind = str(s.get_str("nms_kind", "default"))
    f["nms_kind_enum"] = {"greedynms": 1, "diounms": 2}.get(nms_kind, 0)
    f["jitter"] = s.get_float("jitter", .2)
    f["resize"] = s.get_float("resize", 1.0)
    f["focal_loss"] = s.get_int("focal_loss", 0)
    for key, default in (("ignore_thresh", .5), ("truth_thresh", 1), ("iou_thresh", 1), ("random", 0)):
        f[key] = s.get_float(key, default)
    f["track_history_size"] = s.get_int("track_history_size", 5)
    f["sim_thresh"] = s.get_float("sim_thresh", 0.8)
    f["dets_for_track"] = s.get_int("dets_for_track", 1)
    f["dets_for_show"] = s.get_int("dets_for_show", 1)
    f["track_ciou_norm"] = s.get_float("track_ciou_norm", 0.01)
    embedding = s.get_int("embedding_layer", 999999)
    if embedding < 0:
        embedding = p.index + embedding
    f["embedding_layer_id"], f["embedding_size"] = 0, 0
    if embedding != 999999:
        embedding = net.earlier(s, "embedding_layer", embedding, p)
        f["embedding_layer_id"] = embedding
        f["embedding_size"] = cdiv(net.layers[embedding].params.get("n", 0), n)
    map_file = s.get_str("map")
    cmap = read_map(net.file(map_file)) if map_file is not None else None
    anchors = s.read("anchors", lambda v: _value_list(v, lambda x: np.float32(c_atof(x))))
    if anchors is not None:
        anchors = anchors[:2 * total]  # upstream reads i < n && i < total*2
    biases = np.full(2 * total, 0.5, dtype=np.float32)
    if anchors:
        biases[:len(anchors)] = anchors
    if counters is not None and len(counters) != classes:
        raise CfgError(f"{s.where(net.path)}: counters_per_class has {len(counters)} values but classes={classes} "
                       "(upstream stops)")
    l.loss = ab.YoloLayer(
        classes=classes, anchors=biases, mask=mask, total=total, max_boxes=max_boxes,
        ignore_thresh=f["ignore_thresh"], truth_thresh=f["truth_thresh"], iou_thresh=f["iou_thresh"],
        iou_thresh_kind=kind_name, iou_loss=loss_name, iou_normalizer=f["iou_normalizer"],
        obj_normalizer=f["obj_normalizer"], cls_normalizer=f["cls_normalizer"],
        delta_normalizer=f["delta_normalizer"],
        max_delta=None if max_delta == np.finfo(np.float32).max else float(max_delta), scale_x_y=f["scale_x_y"],
        new_coords=f["new_coords"], objectness_smooth=f["objectness_smooth"],
        label_smooth_eps=f["label_smooth_eps"], focal_loss=f["focal_loss"], counters_per_class=counters,
        map=cmap, show_details=f["show_details"])
    layer = l.loss
    f.update(n=n, total=total, classes=classes, max_boxes=max_boxes, truth_size=6, truths=max_boxes * 6,
             mask=layer.mask.tolist(), biases=[float(b) for b in biases], max_delta=float(max_delta),
             classes_multipliers=None if layer.classes_multipliers is None
             else [float(v) for v in layer.classes_multipliers],
             iou_loss=iou_loss, iou_loss_enum=ab.IOU_LOSS_ENUM[loss_name], iou_thresh_kind=kind,
             iou_thresh_kind_enum=ab.IOU_LOSS_ENUM[kind_name], nms_kind=nms_kind,
             map_set=int(cmap is not None), map_first_classes=None if cmap is None else cmap[:classes],
             keep_delta_gpu=1, map_file=map_file)
    l.params.update(f)


# ---- issue 23: YOLOv2's [region] and the [reorg] / [reorg3d] before it -------------------------------

def reorg(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    """parse_reorg ([reorg3d]) and parse_reorg_old ([reorg]): the same sizes
    (make_reorg_layer / make_reorg_old_layer)."""
    stride = s.get_int("stride", 1)
    reverse = s.get_int("reverse", 0)
    need_image(net, s, p, "reorg")
    positive(net, s, stride=stride)
    l.w, l.h, l.c = p.w, p.h, p.c
    if reverse:
        l.out_w, l.out_h, l.out_c = p.w * stride, p.h * stride, cdiv(p.c, stride * stride)
    else:
        l.out_w, l.out_h, l.out_c = cdiv(p.w, stride), cdiv(p.h, stride), p.c * stride * stride
    l.outputs = l.out_h * l.out_w * l.out_c
    l.inputs = p.h * p.w * p.c
    l.params.update(stride=stride, reverse=reverse)


def region(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    """AlexeyAB's parse_region and make_region_layer (YOLOv2): alexeyab.RegionLayer."""
    coords, classes, num = s.get_int("coords", 4), s.get_int("classes", 20), s.get_int("num", 1)
    max_boxes = s.get_int("max", 200)
    check_anchor_count(net, s, num)
    _positive(net, s, classes=classes, num=num, **({"max": max_boxes} if max_boxes < 0 else {}))
    l.w = l.out_w = p.w
    l.h = l.out_h = p.h
    l.c = l.out_c = num * (classes + coords + 1)
    l.outputs = l.inputs = p.h * p.w * l.c
    check_inputs(net, s, l, p, f"num*(classes+coords+1)*w*h with num={num}, classes={classes}, coords={coords}")
    f: Dict[str, Any] = dict(log=s.get_int("log", 0), sqrt=s.get_int("sqrt", 0), softmax=s.get_int("softmax", 0),
                             focal_loss=s.get_int("focal_loss", 0), jitter=s.get_float("jitter", .2),
                             resize=s.get_float("resize", 1.0), rescore=s.get_int("rescore", 0),
                             thresh=s.get_float("thresh", .5), classfix=s.get_int("classfix", 0),
                             absolute=s.get_int("absolute", 0), random=s.get_float("random", 0),
                             coord_scale=s.get_float("coord_scale", 1), object_scale=s.get_float("object_scale", 1),
                             noobject_scale=s.get_float("noobject_scale", 1), mask_scale=s.get_float("mask_scale", 1),
                             class_scale=s.get_float("class_scale", 1), bias_match=s.get_int("bias_match", 0))
    tree_file, map_file = s.get_str("tree"), s.get_str("map")
    if tree_file is not None:
        raise CfgError(f"{s.where(net.path, 'tree')}: tree= (a softmax tree) in AlexeyAB's [region] is not modelled "
                       "by this package (pjreddie's [region] has it: flavor='pjreddie')")
    cmap = read_map(net.file(map_file)) if map_file is not None else None
    # the anchors loop: n = 1 + commas, atof of each piece, i < n && i < num*2 (no '#' handling here)
    anchors = s.read("anchors", lambda v: [np.float32(c_atof(x)) for x in v.split(",")])
    if anchors is not None:
        anchors = anchors[:2 * num]
    l.loss = ab.RegionLayer(classes=classes, coords=coords, num=num, max=max_boxes, anchors=anchors, map=cmap,
                            **{k: v for k, v in f.items()})  # any batch, as the [yolo] layers
    f.update(n=num, classes=classes, coords=coords, max_boxes=max_boxes, truth_size=6, truths=max_boxes * 6,
             biases=[float(b) for b in l.loss.anchors], map_file=map_file)
    l.params.update(f)


# ---- after every layer -------------------------------------------------------------------

#: parse_network_cfg_custom's lookups after every parse_* (with their defaults; learning_rate
#: becomes l.learning_rate_scale).
AFTER_LAYER = (("clip", 0.0), ("onlyforward", 0), ("dont_update", 0), ("burnin_update", 0), ("stopbackward", 0),
               ("train_only_bn", 0), ("dontload", 0), ("dontloadscales", 0), ("learning_rate", 1.0))


def after_layer(s: Section) -> Dict[str, Any]:
    out = {}
    for key, default in AFTER_LAYER:
        out["learning_rate_scale" if key == "learning_rate" else key] = (
            s.get_float(key, default) if isinstance(default, float) else s.get_int(key, default))
    return out


def forward_loss(network: "Network", info: LayerInfo, x: Any, truth: Any, seen: int, train: bool) -> Any:
    layer = info.loss
    if isinstance(layer, ab.GaussianYoloLayer):  # [Gaussian_yolo] (flavors/alexeyab_gaussian.py)
        return layer.forward(x, truth, net_w=network.width, net_h=network.height, train=train, seen=seen,
                             index=info.index)
    if isinstance(layer, ab.RegionLayer):  # issue 23
        return layer.forward(x, truth, seen=seen, train=train, net_w=network.width, net_h=network.height,
                             index=info.index)
    assert isinstance(layer, ab.YoloLayer)
    return layer.forward(x, truth, net_w=network.width, net_h=network.height, train=train, index=info.index)


def finish(net: "Network") -> None:
    """parse_network_cfg_custom after the last layer: layers before the last
    stopbackward=1 become onlyforward; net.outputs is get_network_output_size
    (the last layer that is not [cost]); net.truths stays 0."""
    last = -1
    for l in net.layers:
        if l.params.get("after", {}).get("stopbackward") == 1:
            last = l.index
    for l in net.layers[:max(last, 0)]:
        if "after" in l.params:
            l.params["after"]["onlyforward"] = 1
    i = len(net.layers) - 1
    while i > 0 and net.layers[i].type == "cost":
        i -= 1
    net.outputs = net.layers[i].outputs if net.layers else 0
    net.truths = 0


UNMODELLED = {t: "its shape rules are not modelled by this package's alexeyab flavor"
              for t in set(SECTIONS.values()) - {"convolutional", "maxpool", "route", "shortcut", "upsample",
                                                 "yolo", "gaussian_yolo", "region", "reorg", "reorg_old"}}

FLAVOR = Flavor(
    name="alexeyab", upstream=UPSTREAM, sections=SECTIONS,
    rules={"convolutional": convolutional, "maxpool": maxpool, "route": route, "shortcut": shortcut,
           "upsample": upsample, "yolo": yolo, "gaussian_yolo": gaussian_yolo,
           "region": region, "reorg": reorg, "reorg_old": reorg},  # region, reorg: issue 23
    parse_net=parse_net, after_layer=after_layer, cost_types=COST_TYPES, forward_loss=forward_loss,
    unmodelled=UNMODELLED, finish=finish,
    type_enums={t: (LAYER_TYPES.index(t.upper() if t != "active" else "ACTIVE"),
                    t.upper() if t != "active" else "ACTIVE") for t in set(SECTIONS.values())},
    other_flavor="pjreddie")


def upstream_fields(net: "Network") -> Dict[str, Any]:
    """What upstream's parse_network_cfg leaves, in the shared set's JSON
    form (cfg/NAME.json): the [net] fields and every layer's sizes, with
    parse_yolo's fields for [yolo] layers."""
    layers = []
    for l in net.layers:
        enum, name = FLAVOR.type_enums[l.type]
        d: Dict[str, Any] = dict(index=l.index, type_name=TYPE_STRINGS.get(l.type, "none"), type=enum,
                                 batch=l.batch, w=l.w, h=l.h, c=l.c, out_w=l.out_w, out_h=l.out_h,
                                 out_c=l.out_c, inputs=l.inputs, outputs=l.outputs, type_enum=name)
        if l.type in ("yolo", "gaussian_yolo"):
            d.update({k: v for k, v in l.params.items() if k not in ("map_file", "after")})
            d.update(l.params.get("after", {}))
        layers.append(d)
    f = dict(net.upstream_net)
    f.update(n=len(net.layers), outputs=net.outputs)
    return dict(net=f, layers=layers)


FLAVOR = dataclasses.replace(FLAVOR, upstream_fields=upstream_fields)
