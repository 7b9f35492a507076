"""The GPU build: forward(..., build="gpu"), the pdl.torch losses on it.

Upstream's GPU build (GPU=1) activates a loss layer's input on the device,
pulls the activations and runs the CPU loss on them with the CPU activation
compiled out.  Its two halves are tested where each can be:

* everywhere (CI has no GPU): the CPU half.  Handed upstream's own CPU-build
  activations (a golden case's output) as an already activated input, the
  CPU loss must give upstream's delta, cost and statistics bit for bit: the
  loss code cannot tell who activated its input.  And build="gpu" without a
  CUDA build or a device is a CudaError that says what to do.
* on a GPU only: the device half, against upstream's own GPU build
  (tests/golden-gpu/, computed by upstream built with GPU=1 on a GPU), and
  the device logistic on all 2^32 floats against the recorded hash.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest

import goldens as G
import pydarknet_loss as pdl
from pydarknet_loss import _native

CUDA = _native.cuda_info()
GPU_GOLDEN = Path(__file__).resolve().parent / "golden-gpu"
needs_gpu = pytest.mark.skipif(CUDA.device_count == 0,
                               reason="needs a CUDA device (the CUDA build is present; the runtime sees no GPU)"
                               if CUDA.built else "needs the CUDA build (PYDARKNET_LOSS_CUDA=1) and a CUDA device")

def _training_cases(root: Path) -> list:
    """The training cases whose input upstream accepts (not the refused x*W == W ones)."""
    return [root / "cases" / c["file"] for c in G.manifest(root)
            if c["train"] and c["kind"] in ("yolo", "region") and "x_times_w_eq_w" not in c["tags"]]


TRAIN_CASES = _training_cases(G.REPO_GOLDEN) + _training_cases(G.EXTRA_GOLDEN)


def _stats(layer: Any, call: Any, index: int) -> np.ndarray:
    s = call.stats
    if isinstance(layer, pdl.YoloLayer):
        return pdl.YoloStats(avg_iou=s.avg_iou, avg_cat=s.avg_cat, avg_obj=s.avg_obj, avg_anyobj=s.avg_anyobj,
                             recall=s.recall, recall75=s.recall75, count=s.count, index=index).as_array()
    return pdl.RegionStats(avg_iou=s.avg_iou, avg_cat=s.avg_cat, avg_obj=s.avg_obj, avg_anyobj=s.avg_anyobj,
                           recall=s.recall, count=s.count).as_array()


@pytest.mark.parametrize("path", TRAIN_CASES, ids=G.ids(TRAIN_CASES))
def test_the_cpu_loss_on_handed_activations_is_upstreams(path: Path) -> None:
    d = G.load(path)
    assert d["train"]
    p = d["params"]
    if d["kind"] == "yolo":
        layer: Any = G.yolo_layer(p)
        net: Dict[str, Any] = dict(net_w=int(p["net_w"]), net_h=int(p["net_h"]), index=int(p.get("net_index", 0)))
    else:
        layer = G.region_layer(p)
        net = dict(seen=int(d["seen"]))
    for threads in (1, 2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            call, _ = layer._run(d["output"], d["truth"], train=True, out=None, activated=True, threads=threads,
                                 **net)
        assert G.bits_equal(call.output, d["output"]), G.first_difference(call.output, d["output"])
        assert G.bits_equal(call.delta, d["delta"]), G.first_difference(call.delta, d["delta"])
        assert G.bits_equal(np.float32(call.cost[0]), d["cost"]), (call.cost[0], d["cost"])
        assert G.bits_equal(_stats(layer, call, net.get("index", 0)), d["stats"])


def _case() -> Any:
    layer = pdl.YoloLayer(classes=2, anchors=[10, 13, 16, 30], mask=[0, 1])
    x = np.random.default_rng(0).standard_normal((1, layer.channels, 4, 4)).astype(np.float32)
    return layer, x, [np.array([[0.5, 0.5, 0.2, 0.2, 1]], np.float32)]


@pytest.mark.skipif(CUDA.device_count > 0, reason="a CUDA device is present")
def test_build_gpu_without_a_device_says_what_to_do() -> None:
    layer, x, truth = _case()
    expected = "PYDARKNET_LOSS_CUDA=1 pip install" if not CUDA.built else "sees no GPU"
    with pytest.raises(pdl.CudaError, match=expected):
        layer.forward(x, truth, build="gpu")
    region = pdl.RegionLayer(classes=2, anchors=[1, 1, 2, 2])
    xr = np.zeros((1, region.channels, 3, 3), np.float32)
    with pytest.raises(pdl.CudaError, match=expected):
        region.forward(xr, train=False, build="gpu")
    # the CPU build is untouched by the attempt
    assert layer.forward(x, truth).cost == layer.forward(x, truth, build="cpu").cost


def test_build_names_are_checked() -> None:
    layer, x, truth = _case()
    with pytest.raises(ValueError, match="build must be one of 'cpu', 'gpu'"):
        layer.forward(x, truth, build="cuda")


@pytest.mark.skipif(CUDA.device_count > 0, reason="a CUDA device is present")
def test_torch_losses_on_the_gpu_build_need_it() -> None:
    torch = pytest.importorskip("torch")
    layer, x, truth = _case()
    with pytest.raises(pdl.CudaError):
        pdl.torch.YoloLoss(layer, build="gpu")(torch.from_numpy(x), truth)
    region = pdl.RegionLayer(classes=2, anchors=[1, 1, 2, 2])
    xr = torch.zeros((1, region.channels, 3, 3))
    with pytest.raises(pdl.CudaError):
        pdl.torch.RegionLoss(region, activations="gpu")(xr, [np.array([[0.5, 0.5, 0.2, 0.2, 1]], np.float32)])
    with pytest.raises(ValueError, match="activations must be"):
        pdl.torch.RegionLoss(region, activations="device")


# ---- on a GPU -------------------------------------------------------------------------------------------

def _gpu_golden() -> Dict[str, Any]:
    manifest = GPU_GOLDEN / "MANIFEST.json"
    if not manifest.is_file():
        pytest.skip("tests/golden-gpu/ (upstream's GPU build's results) is not in this checkout yet: it is "
                    "generated on a GPU session")
    return json.loads(manifest.read_text())


@needs_gpu
def test_every_case_equals_upstreams_gpu_build() -> None:
    meta = _gpu_golden()
    for entry in meta["cases"]:
        d = G.load(GPU_GOLDEN / "cases" / entry["file"])
        p = d["params"]
        if d["kind"] == "yolo":
            res = G.yolo_layer(p).forward(d["input"], d["truth"], net_w=int(p["net_w"]), net_h=int(p["net_h"]),
                                          train=bool(d["train"]), index=int(p.get("net_index", 0)), build="gpu")
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = G.region_layer(p).forward(d["input"], d["truth"], seen=int(d["seen"]),
                                                train=bool(d["train"]), build="gpu")
        G.assert_matches(res, d)


@needs_gpu
def test_the_device_logistic_on_every_float() -> None:
    meta = _gpu_golden()
    hashes = ffi_hash()
    recorded = meta["logistic_all"]
    assert hashes == (int(recorded["hash"], 16), int(recorded["nans"])), (hashes, recorded)


def ffi_hash() -> Any:
    h = _native.ffi.new("unsigned long long *")
    n = _native.ffi.new("unsigned long long *")
    rc = _native.lib.dn_cuda_logistic_all(h, n)
    assert rc == _native.DN_OK, _native.cuda_error(rc)
    return int(h[0]), int(n[0])
