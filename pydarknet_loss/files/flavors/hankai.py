"""hank-ai/darknet f684e1d7 ("Darknet/YOLO"): the cfg rules of its C++
parser (src-lib/darknet_cfg.cpp), on top of AlexeyAB's (flavors/alexeyab.py),
whose keys, defaults and size arithmetic it keeps.  What is stricter, each a
fatal error upstream (darknet_fatal_error, then abort()) and a CfgError here,
naming the file, the line and the key:

  - reading (CfgFile::read): each line is trimmed of " \\t\\r\\n" at both ends
    and matched against ``^\\[(.+)\\]`` (a section) or
    ``^[ \\t]*([^#= \\t]+)[ \\t]*=[ \\t]*([^#]+)`` (a key, a value up to '#');
    any other line (comments, a key without '=' or without a value) is
    skipped silently.  A key given twice in a section is fatal.  A section
    name hank-ai does not know is fatal; names are case-sensitive.
  - numbers: a value made only of ``-.0123456789`` is converted once, when
    the file is read, with std::stof (rounded once to float; AlexeyAB's atof
    rounds to double, then to float); one std::stof cannot read ("-", ".")
    is fatal even if no one asks for the key.  Asking for a number where the
    value has any other character (``7e-1``, ``0x10``, ``1,2``) is fatal.
    An integer key truncates the float (hank-ai prints a note if it had a
    fraction).
  - arrays (mask, counters_per_class, steps, from, layers: ints; anchors,
    scales: floats): every run of ``-0123456789`` (ints) or
    ``-.0123456789`` (floats) is one value; the first run std::sto* cannot
    read ends the list.
  - every key a section's parse did not read is fatal ("config line ... is
    unused or invalid"), [net] included: ``show_details=`` in [yolo],
    ``max_crop=``/``min_crop=`` in [net] (hank-ai no longer reads them).
  - unknown names of iou_loss, iou_thresh_kind, nms_kind, policy are fatal
    (AlexeyAB falls back); a counters_per_class count other than classes is
    fatal; more anchors than 2*num would be written past the biases upstream
    (refused here).

The [yolo] layer is :class:`pydarknet_loss.hankai.YoloLayer`; [region] is
:class:`pydarknet_loss.hankai.RegionLayer` and [Gaussian_yolo]
:class:`pydarknet_loss.hankai.GaussianYoloLayer` (AlexeyAB's keys and
defaults; anchors by find_float_array; in [Gaussian_yolo] an unknown
iou_loss, iou_thresh_kind, nms_kind or yolo_point name is fatal).
"""
from __future__ import annotations

import dataclasses
import re
import warnings
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

import numpy as np

from ..cfg import CfgError, Option, Section, read_map
from ._common import Flavor, LayerInfo, Params, check_anchor_count, check_inputs
from . import alexeyab as abf
from ..._validate import DarknetQuirkWarning
from ...layers import alexeyab as ab
from ...layers import hankai as hk

if TYPE_CHECKING:  # pragma: no cover
    from ..network import Network

UPSTREAM = "hank-ai/darknet f684e1d75d4594298c8e73acc727ba6cf2e81c60"

#: all_names_and_layers (darknet_enums.cpp): the section names hank-ai reads, case-sensitive.
SECTIONS = {f"[{k}]": v for k, v in {
    "shortcut": "shortcut", "scale_channels": "scale_channels", "sam": "sam", "cost": "cost",
    "region": "region", "yolo": "yolo", "Gaussian_yolo": "gaussian_yolo", "conv": "convolutional",
    "convolutional": "convolutional", "crnn": "crnn", "lstm": "lstm", "rnn": "rnn", "conn": "connected",
    "connected": "connected", "max": "maxpool", "maxpool": "maxpool", "local_avg": "local_avgpool",
    "local_avgpool": "local_avgpool", "reorg3d": "reorg", "avg": "avgpool", "avgpool": "avgpool",
    "dropout": "dropout", "soft": "softmax", "softmax": "softmax", "contrastive": "contrastive",
    "route": "route", "upsample": "upsample", "empty": "empty", "silence": "empty", "blank": "blank"}.items()}

IOU_LOSS_NAMES = ("iou", "giou", "mse", "diou", "ciou")
NMS_KINDS = {"default": 0, "greedynms": 1, "diounms": 2, "cornersnms": 3}
POLICIES = ("random", "poly", "constant", "step", "exp", "sigmoid", "steps", "sgdr")

_SECTION = re.compile(r"^\[(.+)\]")
_KEY = re.compile(r"^[ \t]*([^#= \t]+)[ \t]*=[ \t]*([^#]+)")
_NUMERIC = set("-.0123456789")
_STOF = re.compile(r"[ \t\n\v\f\r]*(-?(?:[0-9]+\.?[0-9]*|\.[0-9]+))")
_STOI = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)")
_F32_MAX = Fraction(float(np.finfo(np.float32).max))
_F32_TINY = Fraction(float(np.finfo(np.float32).tiny))


def _trim(s: str) -> str:
    """Darknet::trim: " \\t\\r\\n" off both ends."""
    return s.strip(" \t\r\n")


def _round_f32(q: Fraction) -> np.float32:
    """q rounded once to the nearest float32 (ties to even), as strtof does."""
    a = np.float32(float(q))  # within an ULP of the answer (double rounding)
    best = a
    for c in (np.nextafter(a, np.float32(-np.inf)), np.nextafter(a, np.float32(np.inf))):
        if not np.isfinite(c):
            continue
        d, e = abs(Fraction(float(c)) - q), abs(Fraction(float(best)) - q)
        if d < e or (d == e and int(np.array(c).view(np.uint32)) % 2 == 0):
            best = c
    return np.float32(best)


def stof(text: str) -> Optional[np.float32]:
    """std::stof on a value of -.0123456789 characters: the longest prefix
    strtof reads, rounded once to float; None where std::stof throws (no
    number, or out of float's range: strtof's ERANGE)."""
    m = _STOF.match(text)
    if not m:
        return None
    q = Fraction(m.group(1))
    if abs(q) >= 2 * _F32_MAX:
        return None  # overflow: ERANGE, std::out_of_range
    with np.errstate(over="ignore"):
        v = _round_f32(q)
    if not np.isfinite(v) or (q != 0 and abs(Fraction(float(v))) < _F32_TINY):
        return None  # overflow or underflow: ERANGE, std::out_of_range
    return v


def stoi(text: str) -> Optional[int]:
    m = _STOI.match(text)
    if not m:
        return None
    v = int(m.group(1))
    return v if -2**31 <= v < 2**31 else None


class HankSection(Section):
    """A section read by hank-ai's CfgFile::read, with its numeric rules."""

    numbers: Dict[str, np.float32]

    def _line(self, key: str) -> Optional[Option]:
        return self._peek(key)

    def _number(self, key: str, kind: str) -> Optional[np.float32]:
        o = self.option(key)
        if o is None:
            return None
        if key not in self.numbers:
            raise CfgError(f"{self.path}, line {o.line} ({self.type}): {key}={o.value}: hank-ai expects a number made "
                           f"only of the characters -.0123456789 and stops ('key \"{key}\" ... should be numeric', "
                           f"darknet_cfg.cpp); AlexeyAB's atof would read it")
        return self.numbers[key]

    def get_float(self, key: str, default: float) -> np.float32:
        v = self._number(key, "float")
        return np.float32(default) if v is None else v

    def get_int(self, key: str, default: int) -> int:
        v = self._number(key, "int")
        if v is None:
            return default
        whole = float(np.trunc(v))
        if not -2**31 <= whole < 2**31:
            o = self._line(key)
            raise CfgError(f"{self.path}, line {o.line if o else self.line} ({self.type}): {key}={float(v)!r} does "
                           "not fit the C int hank-ai converts it to")
        if whole != float(v):
            o = self._line(key)
            warnings.warn(f"{self.path}, line {o.line if o else self.line}: hank-ai expected an integer for "
                          f"'{key}' but found {float(v):g}; it truncates to {int(whole)} (and says so)",
                          DarknetQuirkWarning, stacklevel=4)
        return int(whole)

    def read(self, key: str, convert: Callable[[str], Any], default: Any = None) -> Any:
        # AlexeyAB's rules read comma lists (layers=, from=) with atoi: hank-ai's find_int_array
        if key in ("layers", "from", "mask", "counters_per_class", "steps"):
            v = self.int_array(key)
            return v or None  # no value read: hank-ai stops ("must specify input layers"), as without the key
        if key == "anchors":  # [region], [Gaussian_yolo]: find_float_array (issue 23)
            return self.float_array(key) or None
        if key == "resize_step":  # find_float, stored into an int
            f = self._number(key, "float")
            return default if f is None else convert(repr(float(f)))
        return super().read(key, convert, default)

    def int_array(self, key: str) -> Optional[List[int]]:
        """find_int_array: every run of -0123456789, by std::stoi, until one fails."""
        return self._array(key, "-0123456789", stoi)

    def float_array(self, key: str) -> Optional[List[np.float32]]:
        """find_float_array: every run of -.0123456789, by std::stof, until one fails."""
        return self._array(key, "-.0123456789", stof)

    def _array(self, key: str, chars: str, conv: Callable[[str], Any]) -> Optional[List[Any]]:
        o = self.option(key)
        if o is None or o.value is None:
            return None
        out: List[Any] = []
        for run in re.findall("[" + re.escape(chars) + "]+", o.value):
            v = conv(run)
            if v is None:
                break
            out.append(v)
        return out


def read_text(text: str, path: str = "<cfg>") -> List[Section]:
    """CfgFile::read on a file's text: the [net] section first, then the
    others; every error names the file and the line."""
    sections: List[HankSection] = []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for nu, raw in enumerate(lines, start=1):
        line = _trim(raw)
        m = _SECTION.match(line)
        if m:
            name = m.group(1)
            if not sections and name not in ("net", "network"):
                raise CfgError(f"{path}, line {nu}: expected [net] or [network] as the first section, found [{name}] "
                               "(hank-ai stops)")
            if sections and f"[{name}]" not in SECTIONS:
                known = ", ".join(sorted(SECTIONS))
                raise CfgError(f"{path}, line {nu}: layer name \"{name}\" is not supported by hank-ai (it stops; names "
                               f"are case-sensitive). It knows {known}")
            s = HankSection(type=f"[{name}]", line=nu, path=path)
            s.numbers = {}
            sections.append(s)
            continue
        m = _KEY.match(line)
        if not m:
            continue  # comments, blank lines, a key without '=' or value: skipped silently
        if not sections:
            raise CfgError(f"{path}, line {nu}: a configuration line before any section (hank-ai stops)")
        key, value = _trim(m.group(1)), _trim(m.group(2))
        s = sections[-1]
        prev = s._peek(key)
        if prev is not None:
            raise CfgError(f"{path}, lines {prev.line} and {nu}: duplicate key \"{key}\" in {s.type} (hank-ai stops; "
                           "AlexeyAB reads the first)")
        if value and set(value) <= _NUMERIC:
            v = stof(value)
            if v is None:
                raise CfgError(f"{path}, line {nu}: {key}={value}: hank-ai fails to parse this numeric value "
                               "(std::stof) and stops")
            s.numbers[key] = v
        s.options.append(Option(key=key, value=value, line=nu))
    if not sections:
        raise CfgError(f"{path}: an empty configuration (hank-ai stops: no [net] or [network] section)")
    return list(sections)


def check_unused(net: "Network", s: Section) -> None:
    """find_unused_lines: the first (in file order) key the parse did not read."""
    unused = sorted(s.unused(), key=lambda o: o.line)
    if unused:
        o = unused[0]
        why = (" (hank-ai reads no show_details: it prints the line with --verbose)" if o.key == "show_details"
               else "")
        raise CfgError(f"{net.path}, line {o.line} ({s.type}): {o.key}={o.value}: hank-ai stops with 'config line "
                       f"#{o.line} from section {s.type} is unused or invalid'{why}")


def _name(net: "Network", s: Section, key: str, default: str, names: Any, what: str) -> str:
    v = s.get_str(key, default)
    if v not in names:
        o = s._peek(key)
        raise CfgError(f"{net.path}, line {o.line if o else s.line} ({s.type}): {key}={v}: {what} \"{v}\" is not "
                       f"supported by hank-ai (it stops; names are case-sensitive: {', '.join(names)})")
    return str(v)


def parse_net(net: "Network", s: Section) -> None:
    """parse_net_section: AlexeyAB's keys and defaults, but an unknown policy
    is fatal and max_crop/min_crop are not read (darknet_cfg.cpp:1282-1283)."""
    o = s._peek("policy")
    if o is not None and o.value not in POLICIES:
        raise CfgError(f"{net.path}, line {o.line} ({s.type}): policy={o.value}: learning rate policy \"{o.value}\" is "
                       f"not supported by hank-ai (it stops; {', '.join(POLICIES)})")
    crop = [x for x in (s._peek("max_crop"), s._peek("min_crop")) if x is not None]
    abf.parse_net(net, s)
    for x in crop:
        x.used = False
    check_unused(net, s)


def yolo(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    """parse_yolo_section and make_yolo_layer."""
    assert isinstance(s, HankSection)
    classes = s.get_int("classes", 20)
    total = s.get_int("num", 1)
    check_anchor_count(net, s, total)
    max_boxes = s.get_int("max", 200)
    mask = s.int_array("mask") or None  # empty: num = total, mask 0..total-1
    n = len(mask) if mask is not None else total
    abf._positive(net, s, classes=classes, num=total, **({"max": max_boxes} if max_boxes < 0 else {}))
    l.w = l.out_w = p.w
    l.h = l.out_h = p.h
    l.c = l.out_c = n * (classes + 4 + 1)
    l.outputs = l.inputs = p.h * p.w * l.c
    check_inputs(net, s, l, p, f"n*(classes+5)*w*h with n={n}, classes={classes}")
    f: Dict[str, Any] = {}
    max_delta = s.get_float("max_delta", float(np.finfo(np.float32).max))
    counters = s.int_array("counters_per_class") or None
    if counters is not None and len(counters) != classes:
        o = s._peek("counters_per_class")
        raise CfgError(f"{net.path}, line {o.line if o else s.line} ({s.type}): counters_per_class has "
                       f"{len(counters)} values but classes={classes} (hank-ai stops)")
    for key, default in (("label_smooth_eps", 0.0), ("scale_x_y", 1)):
        f[key] = s.get_float(key, default)
    f["objectness_smooth"] = s.get_int("objectness_smooth", 0)
    f["new_coords"] = s.get_int("new_coords", 0)
    for key, default in (("iou_normalizer", 0.75), ("obj_normalizer", 1), ("cls_normalizer", 1),
                         ("delta_normalizer", 1)):
        f[key] = s.get_float(key, default)
    iou_loss = _name(net, s, "iou_loss", "mse", IOU_LOSS_NAMES, "IoU loss")
    kind = _name(net, s, "iou_thresh_kind", "iou", IOU_LOSS_NAMES, "IoU loss")
    if kind == "mse":
        kind_name = "iou"  # hank-ai stores MSE; box_iou_kind's switch falls to box_iou, as for iou
    else:
        kind_name = kind
    f["beta_nms"] = s.get_float("beta_nms", 0.6)
    nms_kind = _name(net, s, "nms_kind", "default", tuple(NMS_KINDS), "NMS kind")
    f["nms_kind_enum"] = NMS_KINDS[nms_kind]
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
        f["embedding_size"] = net.layers[embedding].params.get("n", 0) // n
    map_file = s.get_str("map")
    cmap = read_map(net.file(map_file)) if map_file else None
    anchors = s.float_array("anchors") or []
    if len(anchors) > 2 * total:
        o = s._peek("anchors")
        raise CfgError(f"{net.path}, line {o.line if o else s.line} ({s.type}): anchors gives {len(anchors)} values "
                       f"but num={total} holds {2 * total}: hank-ai writes every value into l.biases, past its end")
    biases = np.full(2 * total, 0.5, dtype=np.float32)
    biases[:len(anchors)] = anchors
    l.loss = hk.YoloLayer(
        classes=classes, anchors=biases, mask=mask, total=total, max_boxes=max_boxes,
        ignore_thresh=f["ignore_thresh"], truth_thresh=f["truth_thresh"], iou_thresh=f["iou_thresh"],
        iou_thresh_kind=kind_name, iou_loss=iou_loss, iou_normalizer=f["iou_normalizer"],
        obj_normalizer=f["obj_normalizer"], cls_normalizer=f["cls_normalizer"],
        delta_normalizer=f["delta_normalizer"],
        max_delta=None if max_delta == np.finfo(np.float32).max else float(max_delta), scale_x_y=f["scale_x_y"],
        new_coords=f["new_coords"], objectness_smooth=f["objectness_smooth"],
        label_smooth_eps=f["label_smooth_eps"], focal_loss=f["focal_loss"], counters_per_class=counters,
        map=cmap)
    layer = l.loss
    f.update(n=n, total=total, classes=classes, max_boxes=max_boxes, truth_size=6, truths=max_boxes * 6,
             mask=layer.mask.tolist(), biases=[float(b) for b in biases], max_delta=float(max_delta),
             classes_multipliers=None if layer.classes_multipliers is None
             else [float(v) for v in layer.classes_multipliers], show_details=0,
             iou_loss=iou_loss, iou_loss_enum=ab.IOU_LOSS_ENUM[iou_loss], iou_thresh_kind=kind,
             iou_thresh_kind_enum=ab.IOU_LOSS_ENUM[kind], nms_kind=nms_kind,
             map_set=int(cmap is not None), map_first_classes=None if cmap is None else cmap[:classes],
             keep_delta_gpu=1, map_file=map_file)
    l.params.update(f)


def region(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    """parse_region_section (darknet_cfg.cpp:1997): AlexeyAB's keys and
    defaults (anchors past 2*num ignored), the layer hankai.RegionLayer."""
    abf.region(net, s, p, l)
    kw = l.loss.params()
    l.loss = hk.RegionLayer(**kw)


def gaussian_yolo(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    """parse_gaussian_yolo_section (darknet_cfg.cpp:2057): AlexeyAB's keys and
    defaults, but unknown names are fatal; the layer hankai.GaussianYoloLayer."""
    for key, default, names, what in (("iou_loss", "mse", IOU_LOSS_NAMES, "IoU loss"),
                                      ("iou_thresh_kind", "iou", IOU_LOSS_NAMES, "IoU loss"),
                                      ("nms_kind", "default", tuple(NMS_KINDS), "NMS kind"),
                                      ("yolo_point", "center", ("center", "left_top", "right_bottom"),
                                       "YOLO point type")):
        _name(net, s, key, default, names, what)
    if s.get_str("iou_thresh_kind", "iou") == "mse":
        o = s._peek("iou_thresh_kind")
        raise CfgError(f"{net.path}, line {o.line if o else s.line} ({s.type}): iou_thresh_kind=mse is not modelled "
                       "for hank-ai's [Gaussian_yolo] here (use iou, giou, diou or ciou)")
    abf.gaussian_yolo(net, s, p, l)
    old = l.loss
    kw = old.params()
    try:
        l.loss = hk.GaussianYoloLayer(**kw)
    except ValueError as exc:
        raise CfgError(f"{s.where(net.path)}: {exc}") from None


def after_layer(s: Section) -> Dict[str, Any]:
    """create_network's lookups after every parse_*, then find_unused_lines."""
    out = abf.after_layer(s)
    unused = sorted(s.unused(), key=lambda o: o.line)
    if unused:
        o = unused[0]
        why = (" (hank-ai reads no show_details: it prints the line with --verbose)" if o.key == "show_details"
               else "")
        raise CfgError(f"{s.path}, line {o.line} ({s.type}): {o.key}={o.value}: hank-ai stops with 'config line "
                       f"#{o.line} from section {s.type} is unused or invalid'{why}")
    return out


def forward_loss(network: "Network", info: LayerInfo, x: Any, truth: Any, seen: int, train: bool) -> Any:
    layer = info.loss
    if isinstance(layer, (hk.RegionLayer, hk.GaussianYoloLayer)):  # issue 23: AlexeyAB's forward_loss calls
        return abf.forward_loss(network, info, x, truth, seen, train)
    assert isinstance(layer, hk.YoloLayer)
    return layer.forward(x, truth, net_w=network.width, net_h=network.height, train=train, index=info.index)


UNMODELLED = {t: "its shape rules are not modelled by this package's hankai flavor"
              for t in set(SECTIONS.values()) - {"convolutional", "maxpool", "route", "shortcut", "upsample", "yolo",
                                                 "region", "gaussian_yolo"}}

FLAVOR = dataclasses.replace(
    abf.FLAVOR, name="hankai", upstream=UPSTREAM, sections=SECTIONS,
    rules={**abf.FLAVOR.rules, "yolo": yolo, "region": region, "gaussian_yolo": gaussian_yolo},
    parse_net=parse_net, after_layer=after_layer,
    forward_loss=forward_loss, unmodelled=UNMODELLED,
    type_enums={t: abf.FLAVOR.type_enums.get(t, (abf.LAYER_TYPES.index("BLANK"), "BLANK"))
                for t in set(SECTIONS.values())},
    other_flavor="pjreddie", read_text=read_text)
