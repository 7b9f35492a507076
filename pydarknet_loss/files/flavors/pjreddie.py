"""pjreddie/darknet f6afaab: the cfg rules of its parser.c (parse_net_options,
parse_network_cfg and one parse_*/make_*_layer pair per layer type), as a
table ``Network`` walks.  Every option a parse_* reads is looked up here
with upstream's default, so that the same keys count as used."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Optional

from ..cfg import CfgError, Section, c_atoi, float_list, int_list, read_map
from ._common import (Flavor, LayerInfo, Params, cdiv, check_anchor_count, check_input_size, check_inputs, need_image,
                      positive, same_shape, upsample)
from ...layers.pjreddie import RegionLayer, YoloLayer
from ...layers.detection import DetectionLayer  # issue 23

if TYPE_CHECKING:  # pragma: no cover
    from ..network import Network

UPSTREAM = "pjreddie/darknet f6afaabcdf85f77e7aff2ec55c020c0e297c77f9"

# ---- one rule per layer type: upstream's parse_* and make_*_layer ---------


def convolutional(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    n, size, stride = s.get_int("filters", 1), s.get_int("size", 1), s.get_int("stride", 1)
    positive(net, s, size=size, stride=stride)
    pad, padding = s.get_int("pad", 0), s.get_int("padding", 0)
    groups = s.get_int("groups", 1)
    if pad:
        padding = cdiv(size, 2)
    s.get_str("activation", "logistic")
    need_image(net, s, p, "convolutional")
    for key in ("batch_normalize", "binary", "xnor", "flipped"):
        s.get_int(key, 0)
    s.get_float("dot", 0)
    l.w, l.h, l.c = p.w, p.h, p.c
    l.out_h = cdiv(p.h + 2 * padding - size, stride) + 1
    l.out_w = cdiv(p.w + 2 * padding - size, stride) + 1
    l.out_c = n
    l.outputs = l.out_h * l.out_w * l.out_c
    l.inputs = l.w * l.h * l.c
    l.params.update(n=n, size=size, stride=stride, pad=padding, groups=groups)


def deconvolutional(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    n, size, stride = s.get_int("filters", 1), s.get_int("size", 1), s.get_int("stride", 1)
    positive(net, s, size=size, stride=stride)
    s.get_str("activation", "logistic")
    need_image(net, s, p, "deconvolutional")
    s.get_int("batch_normalize", 0)
    pad, padding = s.get_int("pad", 0), s.get_int("padding", 0)
    if pad:
        padding = cdiv(size, 2)
    l.w, l.h, l.c = p.w, p.h, p.c
    l.out_h = (p.h - 1) * stride + size - 2 * padding
    l.out_w = (p.w - 1) * stride + size - 2 * padding
    l.out_c = n
    l.outputs = l.out_w * l.out_h * l.out_c
    l.inputs = l.w * l.h * l.c
    l.params.update(n=n, size=size, stride=stride, pad=padding)


def local(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    n, size = s.get_int("filters", 1), s.get_int("size", 1)
    stride, pad = s.get_int("stride", 1), s.get_int("pad", 0)
    positive(net, s, size=size, stride=stride)
    s.get_str("activation", "logistic")
    need_image(net, s, p, "local")
    l.w, l.h, l.c = p.w, p.h, p.c
    h = p.h - size if not pad else p.h - 1
    w = p.w - size if not pad else p.w - 1
    l.out_h, l.out_w, l.out_c = cdiv(h, stride) + 1, cdiv(w, stride) + 1, n
    l.outputs = l.out_h * l.out_w * l.out_c
    l.inputs = l.w * l.h * l.c
    l.params.update(n=n, size=size, stride=stride, pad=pad)


def activation(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    s.get_str("activation", "linear")
    l.inputs = l.outputs = p.inputs
    same_shape(p, l)


def logistic(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    l.inputs = l.outputs = p.inputs
    same_shape(p, l)


l2norm = logistic


def _recurrent(net: "Network", s: Section, p: Params, l: LayerInfo, output: int) -> None:
    if p.time_steps == 0:
        raise ZeroDivisionError
    l.batch = cdiv(p.batch, p.time_steps)
    l.inputs, l.outputs = p.inputs, output


def rnn(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    output = s.get_int("output", 1)
    s.get_str("activation", "logistic")
    s.get_int("batch_normalize", 0)
    _recurrent(net, s, p, l, output)
    s.get_int("shortcut", 0)


def gru(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    output = s.get_int("output", 1)
    s.get_int("batch_normalize", 0)
    _recurrent(net, s, p, l, output)
    s.get_int("tanh", 0)


def lstm(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    output = s.get_int("output", 1)
    s.get_int("batch_normalize", 0)
    _recurrent(net, s, p, l, output)


def crnn(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    output_filters = s.get_int("output_filters", 1)
    s.get_int("hidden_filters", 1)
    s.get_str("activation", "logistic")
    s.get_int("batch_normalize", 0)
    if p.time_steps == 0:
        raise ZeroDivisionError
    l.batch = cdiv(p.batch, p.time_steps)
    l.w, l.h, l.c = p.w, p.h, p.c
    l.out_w, l.out_h, l.out_c = p.w, p.h, output_filters
    l.inputs = p.h * p.w * p.c
    l.outputs = l.out_h * l.out_w * l.out_c
    s.get_int("shortcut", 0)


def connected(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    output = s.get_int("output", 1)
    s.get_str("activation", "logistic")
    s.get_int("batch_normalize", 0)
    l.inputs, l.outputs = p.inputs, output
    l.w, l.h, l.c = 1, 1, p.inputs
    l.out_w, l.out_h, l.out_c = 1, 1, output


def softmax(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    groups = s.get_int("groups", 1)
    l.inputs = l.outputs = p.inputs
    s.get_float("temperature", 1)
    tree = s.get_str("tree")
    if tree is not None:
        l.params["tree"] = str(net.file(tree))
    l.w, l.h, l.c = p.w, p.h, p.c  # out_w/out_h/out_c stay 0, as upstream leaves them
    s.get_float("spatial", 0)
    s.get_int("noloss", 0)
    l.params.update(groups=groups)


def detection(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    coords, classes = s.get_int("coords", 1), s.get_int("classes", 1)
    s.get_int("rescore", 0)
    num, side = s.get_int("num", 1), s.get_int("side", 7)
    if side * side * ((1 + coords) * num + classes) != p.inputs:
        raise CfgError(f"{s.where(net.path)}: side*side*((1+coords)*num+classes) = "
                       f"{side * side * ((1 + coords) * num + classes)} but the previous layer outputs "
                       f"{p.inputs} (upstream asserts)")
    l.inputs = l.outputs = p.inputs
    l.w = l.h = side
    for key in ("softmax", "sqrt"):
        s.get_int(key, 0)
    s.get_int("max", 90)
    s.get_float("coord_scale", 1)
    s.get_int("forced", 0)
    for key in ("object_scale", "noobject_scale", "class_scale"):
        s.get_float(key, 1)
    s.get_float("jitter", .2)
    s.get_int("random", 0)
    s.get_int("reorg", 0)
    l.params.update(n=num, classes=classes, coords=coords, side=side,
                    truths=side * side * (1 + coords + classes))
    # issue 23: the YOLOv1 loss itself (parse_detection's options, read again with their defaults)
    l.loss = DetectionLayer(
        classes=classes, coords=coords, rescore=s.get_int("rescore", 0), num=num, side=side,
        softmax=s.get_int("softmax", 0), sqrt=s.get_int("sqrt", 0), max=s.get_int("max", 90),
        coord_scale=s.get_float("coord_scale", 1), forced=s.get_int("forced", 0),
        object_scale=s.get_float("object_scale", 1), noobject_scale=s.get_float("noobject_scale", 1),
        class_scale=s.get_float("class_scale", 1), jitter=s.get_float("jitter", .2), random=s.get_int("random", 0),
        reorg=s.get_int("reorg", 0))  # any batch, as the [yolo] layers


def cost(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    s.get_str("type", "sse")
    s.get_float("scale", 1)
    l.inputs = l.outputs = p.inputs
    for key, default in (("ratio", 0), ("noobj", 1), ("thresh", 0)):
        s.get_float(key, default)


def crop(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    crop_h, crop_w = s.get_int("crop_height", 1), s.get_int("crop_width", 1)
    s.get_int("flip", 0)
    for key, default in (("angle", 0), ("saturation", 1), ("exposure", 1)):
        s.get_float(key, default)
    need_image(net, s, p, "crop")
    s.get_int("noadjust", 0)
    l.w, l.h, l.c = p.w, p.h, p.c
    l.out_w, l.out_h, l.out_c = crop_w, crop_h, p.c
    l.inputs = p.w * p.h * p.c
    l.outputs = l.out_w * l.out_h * l.out_c
    s.get_float("shift", 0)


def reorg(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    stride = s.get_int("stride", 1)
    reverse, flatten, extra = s.get_int("reverse", 0), s.get_int("flatten", 0), s.get_int("extra", 0)
    need_image(net, s, p, "reorg")
    l.w, l.h, l.c = p.w, p.h, p.c
    if reverse:
        l.out_w, l.out_h, l.out_c = p.w * stride, p.h * stride, cdiv(p.c, stride * stride)
    else:
        l.out_w, l.out_h, l.out_c = cdiv(p.w, stride), cdiv(p.h, stride), p.c * stride * stride
    l.outputs = l.out_h * l.out_w * l.out_c
    l.inputs = p.h * p.w * p.c
    if extra:
        l.out_w = l.out_h = l.out_c = 0
        l.outputs = l.inputs + extra
    l.params.update(stride=stride, reverse=reverse, flatten=flatten, extra=extra)


def maxpool(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    stride = s.get_int("stride", 1)
    size = s.get_int("size", stride)
    positive(net, s, size=size, stride=stride)
    padding = s.get_int("padding", size - 1)
    need_image(net, s, p, "maxpool")
    l.w, l.h, l.c = p.w, p.h, p.c
    l.out_w = cdiv(p.w + padding - size, stride) + 1
    l.out_h = cdiv(p.h + padding - size, stride) + 1
    l.out_c = p.c
    l.outputs = l.out_h * l.out_w * l.out_c
    l.inputs = p.h * p.w * p.c
    l.params.update(size=size, stride=stride, pad=padding)


def avgpool(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    need_image(net, s, p, "avgpool")
    l.w, l.h, l.c = p.w, p.h, p.c
    l.out_w, l.out_h, l.out_c = 1, 1, p.c
    l.outputs = p.c
    l.inputs = p.h * p.w * p.c


def dropout(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    s.get_float("probability", .5)
    l.inputs = l.outputs = p.inputs
    l.out_w, l.out_h, l.out_c = p.w, p.h, p.c


def normalization(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    for key, default in (("alpha", .0001), ("beta", .75), ("kappa", 1)):
        s.get_float(key, default)
    s.get_int("size", 5)
    same_shape(p, l)
    l.inputs = l.outputs = p.w * p.h * p.c


def batchnorm(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    same_shape(p, l)
    l.inputs = l.outputs = p.w * p.h * p.c


def shortcut(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    value = s.read("from", c_atoi)
    if value is None:
        raise CfgError(f"{s.where(net.path)}: [shortcut] needs from= (upstream crashes without it)")
    index = net.earlier(s, "from", value, p)
    src = net.layers[index]
    # make_shortcut_layer: w, h, c are the source's, the output keeps the
    # previous layer's shape.
    l.w, l.h, l.c = src.out_w, src.out_h, src.out_c
    l.out_w, l.out_h, l.out_c = p.w, p.h, p.c
    l.outputs = l.inputs = p.w * p.h * p.c
    s.get_str("activation", "linear")
    s.get_float("alpha", 1)
    s.get_float("beta", 1)
    l.params.update(index=index)


def route(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    value = s.read("layers", int_list)
    if value is None:
        raise CfgError(f"{s.where(net.path)}: [route] needs layers= (upstream crashes without it)")
    idx = [net.earlier(s, "layers", i, p) for i in value]
    first = net.layers[idx[0]]
    l.out_w, l.out_h, l.out_c = first.out_w, first.out_h, first.out_c
    for i in idx[1:]:
        nxt = net.layers[i]
        if nxt.out_w == first.out_w and nxt.out_h == first.out_h:
            l.out_c += nxt.out_c
        else:
            l.out_h = l.out_w = l.out_c = 0
            # Upstream's route of maps of different sizes is no image: say which.
            l.params["no_image"] = (f"[route] layers={s.find('layers')} (line {s.line}) joins maps of different "
                                    "sizes: " + ", ".join(f"layer {i} ([{net.layers[i].type}] at line "
                                                          f"{net.layers[i].line}) is {net.layers[i].out_c}x"
                                                          f"{net.layers[i].out_h}x{net.layers[i].out_w}"
                                                          for i in idx))
    l.outputs = l.inputs = sum(net.layers[i].outputs for i in idx)
    l.params.update(n=len(idx), input_layers=idx, input_sizes=[net.layers[i].outputs for i in idx])


def iseg(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    classes, ids = s.get_int("classes", 20), s.get_int("ids", 32)
    l.w = l.out_w = p.w
    l.h = l.out_h = p.h
    l.c = l.out_c = classes + ids
    l.outputs = l.inputs = p.h * p.w * l.c
    if l.outputs != p.inputs:
        raise CfgError(f"{s.where(net.path)}: h*w*(classes+ids) = {l.outputs} but the previous layer "
                       f"outputs {p.inputs} (upstream asserts)")
    l.params.update(truths=90 * (p.w * p.h + 1))

# ---- the loss layers --------------------------------------------------------------


def yolo(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    classes = s.get_int("classes", 20)
    total = s.get_int("num", 1)
    check_anchor_count(net, s, total)
    mask = s.read("mask", int_list)
    n = len(mask) if mask is not None else total
    l.w = l.out_w = p.w
    l.h = l.out_h = p.h
    l.c = l.out_c = n * (classes + 4 + 1)
    l.outputs = l.inputs = p.h * p.w * l.c
    check_inputs(net, s, l, p, f"n*(classes+5)*w*h with n={n}, classes={classes}")
    max_boxes = s.get_int("max", 90)
    jitter = s.get_float("jitter", .2)
    ignore_thresh = s.get_float("ignore_thresh", .5)
    truth_thresh = s.get_float("truth_thresh", 1)
    random = s.get_int("random", 0)
    map_file = s.get_str("map")
    cmap = read_map(net.file(map_file)) if map_file is not None else None
    anchors = s.read("anchors", float_list)
    l.loss = YoloLayer(classes=classes, anchors=anchors, total=total, mask=mask, ignore_thresh=ignore_thresh,
                       truth_thresh=truth_thresh, max_boxes=max_boxes, map=cmap, jitter=jitter, random=random)
    l.params.update(n=n, classes=classes, total=total, truths=90 * 5, map_file=map_file)


def region(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    coords, classes, num = s.get_int("coords", 4), s.get_int("classes", 20), s.get_int("num", 1)
    check_anchor_count(net, s, num)
    l.w = l.out_w = p.w
    l.h = l.out_h = p.h
    l.c = l.out_c = num * (classes + coords + 1)
    l.outputs = l.inputs = p.h * p.w * l.c
    check_inputs(net, s, l, p, f"num*(classes+coords+1)*w*h with num={num}, classes={classes}, coords={coords}")
    log, sqrt = s.get_int("log", 0), s.get_int("sqrt", 0)
    softmax, background = s.get_int("softmax", 0), s.get_int("background", 0)
    max_boxes = s.get_int("max", 30)
    jitter = s.get_float("jitter", .2)
    rescore = s.get_int("rescore", 0)
    thresh = s.get_float("thresh", .5)
    classfix, absolute, random = s.get_int("classfix", 0), s.get_int("absolute", 0), s.get_int("random", 0)
    coord_scale, object_scale = s.get_float("coord_scale", 1), s.get_float("object_scale", 1)
    noobject_scale, mask_scale = s.get_float("noobject_scale", 1), s.get_float("mask_scale", 1)
    class_scale = s.get_float("class_scale", 1)
    bias_match = s.get_int("bias_match", 0)
    tree_file, map_file = s.get_str("tree"), s.get_str("map")
    tree = net.file(tree_file) if tree_file is not None else None
    cmap = read_map(net.file(map_file)) if map_file is not None else None
    anchors = s.read("anchors", float_list)
    if background not in (0, 1):
        raise CfgError(f"{s.where(net.path)}: background={background}; upstream adds it to the softmax's "
                       "class count, so only 0 and 1 are safe")
    l.loss = RegionLayer(
        classes=classes, anchors=anchors, coords=coords, num=num, softmax=softmax != 0,
        background=background != 0, rescore=rescore != 0, bias_match=bias_match != 0, thresh=thresh,
        coord_scale=coord_scale, object_scale=object_scale, noobject_scale=noobject_scale,
        class_scale=class_scale, mask_scale=mask_scale, max_boxes=max_boxes, map=cmap, tree=tree,
        jitter=jitter, random=random, log=log, sqrt=sqrt, absolute=absolute, classfix=classfix)
    l.params.update(n=num, classes=classes, coords=coords, truths=30 * (coords + 1), map_file=map_file,
                    tree_file=tree_file, flags=dict(softmax=softmax, rescore=rescore, bias_match=bias_match))


# ---- [net] -----------------------------------------------------------------------------


def parse_net(net: "Network", s: Section) -> None:
    """parse_net_options: the fields the loss needs, and every lookup
    upstream makes (so that the same keys count as used)."""
    batch = s.get_int("batch", 1)
    for key, default in (("learning_rate", .001), ("momentum", .9), ("decay", .0001)):
        s.get_float(key, default)
    subdivs = s.get_int("subdivisions", 1)
    net.time_steps = s.get_int("time_steps", 1)
    s.get_int("notruth", 0)
    if subdivs == 0:
        raise CfgError(f"{s.where(net.path, 'subdivisions')}: subdivisions=0 (upstream divides by it)")
    net.batch = cdiv(batch, subdivs) * net.time_steps
    if net.batch < 1:
        # pjreddie keeps it: every layer is then sized for a batch of 0 or less (calloc of garbage).
        raise CfgError(f"{s.where(net.path, 'batch', 'subdivisions')}: batch/subdivisions*time_steps = {cdiv(batch, subdivs)}*"
                       f"{net.time_steps} = {net.batch}; pjreddie's parser sizes every layer with it (no "
                       "clamp), so it must be at least 1")
    net.subdivisions = subdivs
    net.random = s.get_int("random", 0)
    if s.get_int("adam", 0):
        for key, default in (("B1", .9), ("B2", .999), ("eps", .0000001)):
            s.get_float(key, default)
    net.height = s.get_int("height", 0)
    net.width = s.get_int("width", 0)
    net.channels = s.get_int("channels", 0)
    check_input_size(net, s, height=net.height, width=net.width, channels=net.channels)
    net.inputs = s.get_int("inputs", net.height * net.width * net.channels)
    check_input_size(net, s, inputs=net.inputs)
    for key in ("max_crop", "min_crop", "center"):
        s.get_int(key, 0)
    for key in ("max_ratio", "min_ratio", "clip", "angle", "aspect", "saturation", "exposure", "hue"):
        s.get_float(key, 0)
    if not net.inputs and not (net.height and net.width and net.channels):
        raise CfgError(f"{s.where(net.path, 'height', 'width', 'channels', 'inputs')}: no input size (height, "
                       "width, channels or inputs)")
    policy = s.get_str("policy", "constant")
    s.get_int("burn_in", 0)
    s.get_float("power", 4)
    if policy == "step":
        s.get_int("step", 1)
        s.get_float("scale", 1)
    elif policy == "steps":
        if s.find("steps") is None or s.find("scales") is None:
            raise CfgError(f"{s.where(net.path)}: the steps policy needs steps and scales")
    elif policy == "exp":
        s.get_float("gamma", 1)
    elif policy == "sigmoid":
        s.get_float("gamma", 1)
        s.get_int("step", 1)
    s.get_int("max_batches", 0)


#: Options parse_network_cfg reads for every layer after its parse_*.
COMMON_OPTIONS = ("truth", "onlyforward", "stopbackward", "dontsave", "dontload", "numload",
                  "dontloadscales", "learning_rate", "smooth")


def after_layer(s: Section) -> Optional[Dict[str, Any]]:
    for key in COMMON_OPTIONS:
        s.find(key)
    return None


def forward_loss(network: "Network", info: LayerInfo, x: Any, truth: Any, seen: int, train: bool) -> Any:
    layer = info.loss
    if isinstance(layer, YoloLayer):
        return layer.forward(x, truth, net_w=network.width, net_h=network.height, train=train, index=info.index)
    if isinstance(layer, DetectionLayer):  # issue 23: a flat (B, inputs) buffer
        return layer.forward(x.reshape(x.shape[0], -1), truth, seen=seen, train=train)
    assert isinstance(layer, RegionLayer)
    return layer.forward(x, truth, seen=seen, train=train)


def finish(net: "Network") -> None:
    """net.outputs: the last layer's; net.truths: the last layer's truths, else its outputs."""
    last = net.layers[-1] if net.layers else None
    net.outputs = last.outputs if last else 0
    truths = last.params.get("truths", 0) if last else 0
    net.truths = truths or net.outputs


#: Section names upstream's string_to_layer_type knows, by canonical type.
TYPE_NAMES = {
    "shortcut": ("shortcut",), "crop": ("crop",), "cost": ("cost",), "detection": ("detection",),
    "region": ("region",), "yolo": ("yolo",), "iseg": ("iseg",), "local": ("local",),
    "convolutional": ("conv", "convolutional"), "deconvolutional": ("deconv", "deconvolutional"),
    "activation": ("activation",), "logistic": ("logistic",), "l2norm": ("l2norm",),
    "crnn": ("crnn",), "gru": ("gru",), "lstm": ("lstm",), "rnn": ("rnn",),
    "connected": ("conn", "connected"), "maxpool": ("max", "maxpool"), "reorg": ("reorg",),
    "avgpool": ("avg", "avgpool"), "dropout": ("dropout",), "normalization": ("lrn", "normalization"),
    "batchnorm": ("batchnorm",), "softmax": ("soft", "softmax"), "route": ("route",),
    "upsample": ("upsample",),
}
#: Layer types whose make_*_layer allocates a cost slot; calc_network_cost
#: averages over all of them, computed or not.
COST_TYPES = ("cost", "detection", "iseg", "logistic", "region", "softmax", "yolo")

RULES = {
    "convolutional": convolutional, "deconvolutional": deconvolutional, "local": local, "activation": activation,
    "logistic": logistic, "l2norm": l2norm, "rnn": rnn, "gru": gru, "lstm": lstm, "crnn": crnn,
    "connected": connected, "softmax": softmax, "detection": detection, "cost": cost, "crop": crop,
    "reorg": reorg, "maxpool": maxpool, "avgpool": avgpool, "dropout": dropout, "normalization": normalization,
    "batchnorm": batchnorm, "shortcut": shortcut, "upsample": upsample, "route": route, "iseg": iseg,
    "yolo": yolo, "region": region,
}

#: [yolo] options AlexeyAB's parse_yolo reads and pjreddie's does not: a cfg
#: holding them was written for AlexeyAB's darknet, whose loss differs.
ALEXEYAB_YOLO_OPTIONS = frozenset((
    "show_details", "max_delta", "counters_per_class", "label_smooth_eps", "scale_x_y", "objectness_smooth",
    "new_coords", "iou_normalizer", "obj_normalizer", "cls_normalizer", "delta_normalizer", "iou_loss",
    "iou_thresh_kind", "beta_nms", "nms_kind", "resize", "focal_loss", "iou_thresh", "track_history_size",
    "sim_thresh", "dets_for_track", "dets_for_show", "track_ciou_norm", "embedding_layer"))

#: Options AlexeyAB's parser reads in other sections that pjreddie's does not,
#: where they change the shapes or the loss.
ALEXEYAB_OPTIONS = {
    "yolo": ALEXEYAB_YOLO_OPTIONS,
    "convolutional": frozenset(("stride_x", "stride_y", "dilation", "antialiasing", "share_index", "cbn",
                                "sway", "rotate", "stretch", "stretch_sway", "coordconv")),
    "maxpool": frozenset(("stride_x", "stride_y", "maxpool_depth", "out_channels", "antialiasing")),
    "route": frozenset(("groups", "group_id")),
    "shortcut": frozenset(("weights_type", "weights_normalization")),
}

FLAVOR = Flavor(
    name="pjreddie", upstream=UPSTREAM,
    sections={f"[{alias}]": t for t, aliases in TYPE_NAMES.items() for alias in aliases},
    rules=RULES, parse_net=parse_net, after_layer=after_layer, cost_types=COST_TYPES, forward_loss=forward_loss,
    other_options=ALEXEYAB_OPTIONS, other_flavor="alexeyab", finish=finish)
