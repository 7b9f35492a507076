"""What both darknets' cfg parsers share: the per-layer record, size_params,
C int arithmetic, and the `Flavor` a rule table is held in."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, FrozenSet, Mapping, Optional, Tuple

from ..cfg import CfgError, Section

if TYPE_CHECKING:  # pragma: no cover
    from ..network import Network

INT_MAX = 2**31 - 1


@dataclass
class LayerInfo:
    """One layer as upstream's parser sizes it (fields named as darknet's)."""

    index: int
    type: str  # canonical type, e.g. "convolutional"
    line: int
    batch: int = 0
    w: int = 0
    h: int = 0
    c: int = 0
    out_w: int = 0
    out_h: int = 0
    out_c: int = 0
    inputs: int = 0
    outputs: int = 0
    params: Dict[str, Any] = field(default_factory=dict)  # type-specific fields (size, stride, ...)
    loss: Optional[Any] = None  # the loss layer object ([yolo], [region])

    @property
    def shape(self) -> Tuple[int, int, int]:
        return (self.out_c, self.out_h, self.out_w)


class Params:
    """parse_network_cfg's size_params: what the previous layer hands on."""

    def __init__(self, batch: int, inputs: int, h: int, w: int, c: int, time_steps: int) -> None:
        self.batch, self.inputs, self.h, self.w, self.c = batch, inputs, h, w, c
        self.time_steps = time_steps
        self.index = 0


def cdiv(a: int, b: int) -> int:
    """C's int division (truncation toward zero)."""
    if b == 0:
        raise ZeroDivisionError
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


#: rule(net, section, params, layer): fills the layer's shape (and loss) from the section.
Rule = Callable[["Network", Section, Params, LayerInfo], None]


@dataclass(frozen=True)
class Flavor:
    """One darknet's cfg rules: which section names it knows, how each layer
    type is parsed and sized, how [net] is read, which layers carry a cost,
    and how a loss layer runs.  ``Network`` walks this table."""

    name: str
    upstream: str  #: e.g. "pjreddie/darknet f6afaab"
    sections: Mapping[str, str]  #: section name as written ("[conv]") -> canonical type
    rules: Mapping[str, Rule]  #: canonical type -> rule
    parse_net: Callable[["Network", Section], None]  #: parse_net_options (sets the Network's fields)
    after_layer: Callable[[Section], Optional[Dict[str, Any]]]  #: parse_network_cfg's lookups after every parse_*
    cost_types: Tuple[str, ...]  #: types whose make_*_layer allocates l.cost (the network cost averages them)
    forward_loss: Callable[..., Any]  #: (network, layer info, x, truth, seen, train) -> a layer result
    unmodelled: Mapping[str, str] = field(default_factory=dict)  #: types upstream knows, not sized here: why
    type_enums: Mapping[str, Tuple[int, str]] = field(default_factory=dict)  #: type -> (LAYER_TYPE value, name)
    other_options: Mapping[str, FrozenSet[str]] = field(default_factory=dict)
    """type -> options only the *other* darknet reads in that section: an error here, because the
    cfg was written for the other darknet and would compute something else."""
    other_flavor: str = ""
    #: (hankai) the flavor's own cfg reader, text and path -> sections; None: read_cfg's rules (cfg.py)
    read_text: Optional[Callable[[str, str], Any]] = None
    finish: Callable[["Network"], None] = lambda net: None  #: after the last layer: net.outputs, net.truths, ...
    upstream_fields: Optional[Callable[["Network"], Dict[str, Any]]] = None  #: upstream's parse as JSON, if known


def need_image(net: "Network", s: Section, p: Params, what: str) -> None:
    if not (p.h and p.w and p.c):
        why = ""
        if net.layers:
            prev = net.layers[-1]
            why = f": layer {prev.index} ([{prev.type}] at line {prev.line}) outputs {prev.out_c}x{prev.out_h}x{prev.out_w}"
            if prev.params.get("no_image"):
                why += f"; its {prev.params['no_image']}"
        raise CfgError(f"{s.where(net.path)}: the layer before this {what} layer must output an image{why}")


def positive(net: "Network", s: Section, **values: int) -> None:
    """Kernel sizes and strides below 1 are no layer (a 0x0 kernel, a 0 or
    negative step): refused, naming the option and its line.  A value with
    non-ASCII digits (``size=３``) reads as 0, as atoi reads it."""
    for key, v in values.items():
        if v < 1:
            o = s._peek(key)
            how = "" if o is None or o.value is None or o.value.strip("+- ").isdigit() else \
                f" ({o.value!r} has no ASCII digit where atoi starts, so upstream reads 0)"
            raise CfgError(f"{s.where(net.path, key)}: {key}={v}{how}: expected a {key} of at least 1")


def same_shape(p: Params, l: LayerInfo) -> None:
    l.w = l.out_w = p.w
    l.h = l.out_h = p.h
    l.c = l.out_c = p.c


def check_inputs(net: "Network", s: Section, l: LayerInfo, p: Params, what: str) -> None:
    if l.outputs != p.inputs:
        raise CfgError(
            f"{s.where(net.path)}: {what} = {l.outputs} values per image, but the previous layer outputs "
            f"{p.inputs} ({p.c}x{p.h}x{p.w}); upstream asserts l.outputs == params.inputs")


def upsample(net: "Network", s: Section, p: Params, l: LayerInfo) -> None:
    """parse_upsample / make_upsample_layer: the same in both darknets."""
    stride = s.get_int("stride", 2)
    if stride == 0:
        raise CfgError(f"{s.where(net.path, 'stride')}: stride=0 gives a 0x0 output (upstream then sizes every later "
                       "layer from nothing)")
    l.w, l.h, l.c = p.w, p.h, p.c
    l.out_w, l.out_h, l.out_c = p.w * stride, p.h * stride, p.c
    if stride < 0:
        stride = -stride
        l.out_w, l.out_h = cdiv(p.w, stride), cdiv(p.h, stride)
    l.outputs = l.out_w * l.out_h * l.out_c
    l.inputs = p.w * p.h * p.c
    s.get_float("scale", 1)
    l.params.update(stride=stride)


def check_anchor_count(net: "Network", s: Section, total: int) -> None:
    """num= sizes the anchors (calloc(total*2) floats upstream, an int product)."""
    if 2 * total > INT_MAX:
        raise CfgError(f"{s.where(net.path)}: num={total} asks for 2*num = {2 * total} anchors, beyond the C int "
                       "upstream multiplies it in (it would overflow, or allocate an absurd size)")


def check_input_size(net: "Network", s: Section, **sizes: int) -> None:
    """[net] height, width, channels, inputs: negative sizes make upstream size every layer from garbage."""
    for key, v in sizes.items():
        if v < 0:
            raise CfgError(f"{s.where(net.path, key)}: {key}={v}; a negative input size makes upstream size every "
                           "layer from garbage")
    if {"height", "width", "channels"} <= set(sizes):
        n = sizes["height"] * sizes["width"] * sizes["channels"]
        if n > INT_MAX:
            raise CfgError(f"{s.where(net.path, 'height', 'width', 'channels')}: an input of height*width*channels = "
                           f"{n} values; upstream counts them in a C int (at most {INT_MAX}) and would overflow or "
                           "allocate an absurd size")
