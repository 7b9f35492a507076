"""class_short_circuit: upstream's class-delta short-circuit at a cell two truths share."""
from __future__ import annotations

from typing import Dict, Optional, Set, Tuple

import numpy as np

from ..model import Array, CauseSpec, Claim, cells_of, class_of, multi, positive_classes, rows_str


def class_short_circuit(arr: Array) -> Optional[Claim]:
    """Cells with two truths or more where the implementation's positive
    classes are not upstream's: the short-circuit not reproduced (or
    applied where upstream has none).  A first-truth-wins implementation
    (positives = the first truth's class) is overwrite_order's."""
    ev = arr.ev
    assert ev is not None
    cells = np.zeros(ev.Y.shape[:2] + ev.Y.shape[3:], bool)
    who: Dict[Tuple[int, int, int, int], Set[int]] = {}
    k0 = arr.coords + 1
    flat = ev.kind == "region" and (ev.layer.softmax or ev.layer.tree is not None)
    for c, rows in multi(ev).items():
        e_pos, a_pos = positive_classes(arr, False, c), positive_classes(arr, True, c)
        if e_pos == a_pos:
            continue
        # The model's positives: without the short-circuit the last truth
        # writes the whole class vector (its class alone stays positive);
        # with one where upstream has none (softmax) every truth's class
        # stays.  Other sets (a row read past x == 0 adding its class) are
        # not this departure's.
        b = c[0]
        pred = {class_of(ev, b, r) for r in rows} if flat else {class_of(ev, b, rows[-1])}
        if a_pos != pred:
            continue
        # The classes in dispute hold what a truth setting them would write:
        # s*(0 - p) where upstream keeps 1 - p, s*(1 - p) the other way.
        b, a, j, i = c
        y = ev.Y[b, a, k0:, j, i].astype(np.float64)
        ix = (b, a, slice(k0, None), j, i)
        sc = np.where(ev.sel_ix("has", ix), ev.sel_ix("scale", ix), 1.0)
        want = {k: sc[k] * ((1.0 if k in a_pos else 0.0) - y[k]) for k in e_pos ^ a_pos}
        got = arr.a64_ix(ix)
        bound = arr.bound_ix(ix)
        if not all(abs(got[k] - v) <= 1e-4 * abs(v) + 4 * bound[k] for k, v in want.items()):
            continue
        cells[c] = True
        who[c] = set(rows)
    if not cells.any():
        return None
    mask = arr.role_mask(range(arr.coords + 1, arr.E.shape[2]), cells)

    def say(sel: np.ndarray) -> str:
        cs = cells_of(sel)
        used = {(c[0], t) for c in cs for t in who.get(c, ())}
        c = cs[0]
        e_pos, a_pos = sorted(positive_classes(arr, False, c)), sorted(positive_classes(arr, True, c))
        if flat:
            rule = ("with softmax upstream has no short-circuit: the last truth sets every class of the cell "
                    "(t - p for the softmax group)")
        else:
            rule = ("upstream's class delta short-circuits: when a cell and anchor already holds class deltas, a "
                    "second truth only sets its own class to 1 - p, so both truths' classes stay at 1 - p")
        return (f"{rule}; at {ev.cell_name(c)} ({rows_str(used)}) upstream's positive classes are "
                f"{e_pos}, the implementation's {a_pos}. Reproduce the short-circuit as upstream has it.")
    return Claim(mask, rows=who, say=say)

CAUSE = CauseSpec(
    code="class_short_circuit", stage="decision", model=class_short_circuit, kinds=("yolo", "region"),
    parts=("classes.positive", "classes.negative"),
    summary="upstream's class-delta short-circuit not reproduced",
    recognised="at a cell two truths share, your classes in dispute hold exactly `0 − p` (or `1 − p`) where "
               "upstream's hold the other")
