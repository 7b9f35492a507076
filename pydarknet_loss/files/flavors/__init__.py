"""Each darknet's cfg rules, one module per darknet: ``pjreddie`` (f6afaab),
``alexeyab`` (59596d7) and ``hankai`` (hank-ai f684e1d7: AlexeyAB's rules
behind its stricter C++ reader).  A module holds a `Flavor`: the section names
its parser knows, one rule per layer type (upstream's parse_* and
make_*_layer size arithmetic), its [net] reader and what it does after
every layer.  ``Network.from_cfg(path, flavor=...)`` walks one of them."""
from __future__ import annotations

from typing import Dict

from ._common import Flavor, LayerInfo, Params, cdiv
from . import alexeyab, pjreddie
from . import hankai

FLAVORS: Dict[str, Flavor] = {"pjreddie": pjreddie.FLAVOR, "alexeyab": alexeyab.FLAVOR, "hankai": hankai.FLAVOR}


def get_flavor(name: str) -> Flavor:
    if not isinstance(name, str) or name not in FLAVORS:
        raise ValueError(f"flavor must be one of {', '.join(repr(k) for k in FLAVORS)} (which darknet the cfg is "
                         f"for: a cfg cannot say), got {name!r}")
    return FLAVORS[name]


__all__ = ["FLAVORS", "Flavor", "LayerInfo", "Params", "cdiv", "get_flavor"]
