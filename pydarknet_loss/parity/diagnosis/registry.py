"""Every cause, in one table: the order is the documentation's and the
tie-break when two models claim the same number of elements (nothing else
depends on it).  Each cause is one module of ``causes/`` with its code,
model, parts and message; ``readme_table()`` renders the cause table the
project's documentation shows (a test checks that it does)."""
from __future__ import annotations

from typing import Dict, List

from .causes import (activation, anchor_assignment, box_average, box_loss, box_scale, cell_assignment, chain, class_loss,
                     class_short_circuit, class_target, darknet_flavor, float_rounding, ignore_rule, layout,
                     objectness_target, overwrite_order, prior_rule, rescore, saturated_gradient, scale, sigma_sign,
                     sign, truth_limit, truth_thresh, unexplained, weight, wh_target, x0_terminator)
from .causes import iou_thresh, label_smoothing, max_delta, new_coords, normalizer, scale_x_y  # AlexeyAB's lineage
from .model import CauseSpec

REGISTRY: List[CauseSpec] = [m.CAUSE for m in (
    darknet_flavor, float_rounding, layout, sign, scale, weight, chain, x0_terminator, truth_limit, truth_thresh, anchor_assignment,
    cell_assignment, overwrite_order, class_short_circuit, class_target, class_loss, objectness_target, box_loss,
    saturated_gradient, ignore_rule, rescore, prior_rule, box_scale, wh_target, sigma_sign, box_average,
    iou_thresh, normalizer, scale_x_y, label_smoothing, max_delta, new_coords, activation,
    unexplained)]
BY_CODE: Dict[str, CauseSpec] = {c.code: c for c in REGISTRY}
#: Old codes that are now a case of another cause.
ALIASES: Dict[str, str] = {a: c.code for c in REGISTRY for a in c.aliases}
#: code -> what the implementation did (the vocabulary).
CAUSES: Dict[str, str] = {c.code: c.summary for c in REGISTRY}


def canonical(code: str) -> str:
    """A cause code, with an alias (``objectness_loss``) resolved to its cause (``chain``)."""
    return ALIASES.get(code, code)


def readme_table() -> str:
    """The cause table (Markdown), from the registry: code, what the
    implementation did, how it is recognised."""
    lines = ["| code | what the implementation did | how it is recognised |", "|---|---|---|"]
    for c in REGISTRY:
        alias = f" (alias: {', '.join(f'`{a}`' for a in c.aliases)})" if c.aliases else ""
        lines.append(f"| `{c.code}`{alias} | {c.summary} | {c.recognised} |")
    return "\n".join(lines)
