"""chain: a part is darknet's times (or divided by) p(1 - p): a squared error on the
activated output differentiated through the logistic, or the gradient in p."""
from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from ..model import Array, CauseSpec


def say(arr: Array, detail: Mapping[str, Any]) -> Callable[[np.ndarray], str]:
    part, c, form = detail["part"], float(detail["factor"]), detail["form"]
    ev = arr.ev
    region_gpu = (ev is not None and ev.kind == "region" and form == "times"
                  and ("xy" in part or "objectness" in part))
    k = "" if abs(c - 1) <= 1e-5 else f"{c:.6g}·"
    from .scale import factor_name
    # c on top of the GPU form: e.g. the GPU build's values averaged over the batch (lightnet's)
    times_c = "" if not k else (f" times {c:.6g}{factor_name(c, arr.E.shape[0])}, a constant the implementation "
                                "applies on top (drop it)")

    gpu_compared = ev is not None and getattr(ev, "build", "cpu") == "gpu"

    def message(sel: np.ndarray) -> str:
        if gpu_compared and form == "divided" and abs(c - 1) <= 1e-5:
            return (f"compared with the GPU build (build='gpu'), your {part} values lack its p(1 - p) factor: they "
                    "are the CPU build's delta. Upstream's GPU build hands on delta·p(1 - p) for x, y and "
                    "objectness; multiply by it, or compare with build='cpu'.")
        if region_gpu and not gpu_compared:
            return (f"your {part} values are {k}darknet's times p(1 - p): these are the GPU build's values "
                    f"(net_delta('gpu')){times_c}: upstream's GPU build hands on delta·p(1 - p) for x, y and "
                    "objectness, its CPU build the delta as is. Compare with build='gpu' if you mean the GPU "
                    "build; otherwise drop the p(1 - p) factor.")
        if form == "times":
            return (f"your {part} values are {k}darknet's times p(1 - p) of the activated output p = sigmoid(x): "
                    "the gradient of a squared error on p taken through the logistic (the MSE-vs-BCE question; "
                    "'objectness_loss' when it is objectness). Darknet's delta there is t - p on the logit "
                    "(cross-entropy, no chain through the sigmoid); it vanishes where p saturates. Use "
                    "binary cross-entropy on the logit, or hand on t - p.")
        return (f"your {part} values are {k}darknet's divided by p(1 - p): a gradient with respect to the "
                "activated output p, not the logit x. Multiply by dp/dx = p(1 - p), or compute the loss on the "
                "logit.")
    return message


CAUSE = CauseSpec(
    code="chain", stage="factor", aliases=("objectness_loss",),
    parts=("box.x", "box.y", "objectness.positive", "objectness.negative", "classes.positive", "classes.negative"),
    summary="a part is darknet's times p(1 − p) (a squared error on the sigmoid's output differentiated through "
            "it; for `[region]`, the GPU build's values) or divided by it (`objectness_loss` is its objectness case)",
    recognised="`c·p(1−p)·darknet's` (or `÷`) is yours on ≥ 90 % of the part's telling elements, p darknet's "
               "activated output")
