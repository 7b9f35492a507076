"""Which darknet?  How much each difference between AlexeyAB 59596d7 and
hank-ai f684e1d7 changes, measured with this package's two bit-exact layers
(and the C core's box functions) on the same inputs.  Prints the figures the
README's "Which darknet?" table quotes (scripts/measure_flavors.txt).

    python scripts/measure_flavors.py [--seeds 10]

Every figure is a count over explicit random draws (NumPy default_rng with
the seeds printed), so a re-run prints the same numbers."""
from __future__ import annotations

import argparse
import math
import platform
import sys
import time
import warnings

import numpy as np

import pydarknet_loss as pdl
from pydarknet_loss import alexeyab, hankai
from pydarknet_loss._native import ffi, lib

F = np.float32
V4 = [12, 16, 19, 36, 40, 28, 36, 75, 76, 55, 72, 146, 142, 110, 192, 243, 459, 401]
V3 = [10, 13, 16, 30, 33, 23, 30, 61, 62, 45, 59, 119, 116, 90, 156, 198, 373, 326]
HANK, AB = lib.AB_FLAVOR_HANKAI, lib.AB_FLAVOR_ALEXEYAB


def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=F).view(np.uint32)


def differ(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elements whose float32 bits differ (NaN == NaN)."""
    return (bits(a) != bits(b)) & ~(np.isnan(a) & np.isnan(b))


def c_box(x: float, y: float, w: float, h: float):  # type: ignore[no-untyped-def]
    b = ffi.new("box *")
    b.x, b.y, b.w, b.h = float(x), float(y), float(w), float(h)
    return b[0]


def box_sizes(rng: np.random.Generator, n: int) -> str:
    """HANK(1): predicted w, h = exp(x)*anchor/net (yolov4's 9 anchors, 608)."""
    x = rng.standard_normal(4 * n).astype(F)
    xp = ffi.from_buffer("float[]", x)
    bp = ffi.from_buffer("float[]", np.asarray(V4, F))
    d = 0
    for k in range(n):
        a = k % 9
        hb = lib.ab_get_yolo_box_fl(xp, bp, a, k, 0, 0, 19, 19, 608, 608, n, 0, HANK)
        ab = lib.ab_get_yolo_box_fl(xp, bp, a, k, 0, 0, 19, 19, 608, 608, n, 0, AB)
        d += (F(hb.w) != F(ab.w)) + (F(hb.h) != F(ab.h))
    return f"predicted w, h (x ~ N(0, 1), yolov4 anchors, 608): {d} of {2 * n} differ ({100 * d / (2 * n):.1f} %)"


def heads(kind: str, rng: np.random.Generator, nan: float = 0.0):  # type: ignore[no-untyped-def]
    """One random training forward through both layers: a yolov4-style CIoU
    head (19x19, anchors 0-2, iou_thresh .213, scale_x_y 1.2, max_delta 5,
    80 classes, B = 4, 20-60 truths per image) or a yolov3-style MSE head
    (13x13, anchors 6-8, 80 classes, B = 4, 5-40 truths)."""
    if kind == "ciou":
        kw = dict(classes=80, anchors=V4, mask=[0, 1, 2], iou_loss="ciou", iou_normalizer=.07, iou_thresh=.213,
                  scale_x_y=1.2, max_delta=5, ignore_thresh=.7, max_boxes=90)
        W, net, k, size = 19, 608, (20, 60), (0.005, 0.08)
    else:
        kw = dict(classes=80, anchors=V3, mask=[6, 7, 8], ignore_thresh=.7, max_boxes=90)
        W, net, k, size = 13, 416, (5, 40), (0.05, 0.9)
    B = 4
    h, a = hankai.YoloLayer(**kw), alexeyab.YoloLayer(**kw)
    x = rng.standard_normal((B, h.channels, W, W)).astype(F)
    if nan:
        idx = rng.choice(x.size, int(x.size * nan), replace=False)
        x.reshape(-1)[idx] = np.nan
    t = np.zeros((B, 90, 6), F)
    for b in range(B):
        for r in range(int(rng.integers(k[0], k[1] + 1))):
            t[b, r] = [rng.uniform(0.01, 0.99), rng.uniform(0.01, 0.99), *rng.uniform(*size, 2),
                       int(rng.integers(0, 80)), 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return (h.forward(x, t, net_w=net, net_h=net), a.forward(x, t, net_w=net, net_h=net))


def overall(kind: str, seeds: int) -> str:
    nz = dd = box = cases = cost = iou = out = 0
    for s in range(seeds):
        rh, ra = heads(kind, np.random.default_rng([21, s]))
        nzm = (rh.delta != 0) | (ra.delta != 0)
        dm = differ(rh.delta, ra.delta)
        nz += int(nzm.sum())
        dd += int(dm.sum())
        n = rh.delta.shape[1] // 85
        role = np.arange(rh.delta.shape[1]) % 85
        box += int(dm[:, role < 4].sum())
        cases += bool(dm.any())
        cost += bool(differ(np.float32(rh.cost), np.float32(ra.cost)))
        iou += bool(differ(np.float32(rh.stats.avg_iou), np.float32(ra.stats.avg_iou)))
        out += int(differ(rh.output, ra.output).sum())
        del n
    return (f"{kind} heads, {seeds} batches: {dd} of {nz} non-zero delta elements differ ({100 * dd / max(nz, 1):.3f} %), "
            f"{box} of them box entries; {cases}/{seeds} batches differ in delta, {cost}/{seeds} in cost, "
            f"{iou}/{seeds} in avg IOU; output elements differing: {out}")


def dw_products(rng: np.random.Generator, n: int) -> str:
    """HANK(3): dw *= exp(x) with x ~ N(0, 1), dw as dx_box_iou gives it (~N(0, .3))."""
    x = rng.standard_normal(n).astype(F)
    dw = (rng.standard_normal(n) * 0.3).astype(F)
    import ctypes
    import ctypes.util
    libm = ctypes.CDLL(ctypes.util.find_library("m"))
    libm.expf.restype, libm.expf.argtypes = ctypes.c_float, [ctypes.c_float]
    hank = np.array([F(dw[i] * F(libm.expf(x[i]))) for i in range(n)], F)
    ab = np.array([F(float(dw[i]) * math.exp(float(x[i]))) for i in range(n)], F)
    d = int(differ(hank, ab).sum())
    return f"IoU-loss dw *= exp(x) (x ~ N(0, 1)): {d} of {n} differ ({100 * d / n:.1f} %)"


def mse_targets(rng: np.random.Generator, n: int) -> str:
    """HANK(2): log(truth.w*net_w/anchor) for truth.w ~ U(.005, .9), yolov3 anchors, 416."""
    import ctypes
    import ctypes.util
    libm = ctypes.CDLL(ctypes.util.find_library("m"))
    libm.logf.restype, libm.logf.argtypes = ctypes.c_float, [ctypes.c_float]
    w = rng.uniform(0.005, 0.9, n).astype(F)
    anchors = np.asarray(V3, F)[rng.integers(0, 18, n)]
    arg = (w * F(416) / anchors).astype(F)
    hank = np.array([F(libm.logf(v)) for v in arg], F)
    ab = np.array([F(math.log(float(v))) for v in arg], F)
    d = int(differ(hank, ab).sum())
    return f"MSE targets tw = log(w*net_w/anchor): {d} of {n} differ ({100 * d / n:.2f} %)"


def ciou_terms(rng: np.random.Generator, n: int) -> str:
    """HANK(7): box_ciou on box pairs around the same centre, sizes U(.05, .6)."""
    d = dd = 0
    for _ in range(n):
        a = (*rng.uniform(0.3, 0.7, 2), *rng.uniform(0.05, 0.6, 2))
        b = (*rng.uniform(0.3, 0.7, 2), *rng.uniform(0.05, 0.6, 2))
        gt, pred = F(F(b[2]) / F(b[3])), F(F(a[2]) / F(a[3]))
        c = 4 / (math.pi * math.pi)
        import ctypes
        import ctypes.util
        libm = ctypes.CDLL(ctypes.util.find_library("m"))
        libm.atanf.restype, libm.atanf.argtypes = ctypes.c_float, [ctypes.c_float]
        dh = float(F(F(libm.atanf(gt)) - F(libm.atanf(pred))))
        da = math.atan(float(gt)) - math.atan(float(pred))
        d += F(c * dh * dh) != F(c * da * da)
        dd += F(lib.ab_box_ciou_fl(c_box(*a), c_box(*b), HANK)) != F(lib.ab_box_ciou_fl(c_box(*a), c_box(*b), AB))
    return (f"CIoU aspect term 4/pi^2*(atan(gt)-atan(pred))^2: {d} of {n} differ ({100 * d / n:.1f} %); "
            f"box_ciou itself: {dd} of {n} ({100 * dd / n:.1f} %)")


def nan_inputs(kind: str, seeds: int) -> str:
    """1 % of the logits NaN: where the NaN-propagating overlap (HANK(4)) shows."""
    ch, ca, nh, na, dn, tot = [], [], 0, 0, 0, 0
    bh = ba = 0
    for s in range(seeds):
        rh, ra = heads(kind, np.random.default_rng([22, s]), nan=0.01)
        bh += rh.total_bbox
        ba += ra.total_bbox
        ch.append(float(rh.cost))
        ca.append(float(ra.cost))
        nh += int(np.isnan(rh.delta).sum())
        na += int(np.isnan(ra.delta).sum())
        dn += int(differ(rh.delta, ra.delta).sum())
        tot += int(((rh.delta != 0) | (ra.delta != 0)).sum())
    fmt = lambda v: ", ".join(f"{c:.2f}" for c in v[:3])  # noqa: E731
    return (f"1 % NaN logits, {kind} heads, {seeds} batches: {dn} of {tot} non-zero or NaN delta elements differ; NaN "
            f"deltas: hank-ai {nh}, AlexeyAB {na}; box deltas written (total_bbox): hank-ai {bh}, AlexeyAB {ba} "
            f"(AlexeyAB's overlap takes the truth's edges for a NaN centre: IoUs above 1 fire its truth_thresh "
            f"branch); costs (first 3) hank-ai {fmt(ch)}, AlexeyAB {fmt(ca)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=10)
    args = ap.parse_args()
    t0 = time.time()
    print(f"pydarknet_loss {pdl.__version__}; core flags {pdl.BUILD_CFLAGS}")
    print(f"machine: {platform.machine()}, glibc {platform.libc_ver()[1]}; python {sys.version.split()[0]}, "
          f"numpy {np.__version__}")
    rng = np.random.default_rng(2021)
    print(box_sizes(rng, 20000))
    print(dw_products(rng, 20000))
    print(mse_targets(rng, 20000))
    print(ciou_terms(rng, 5000))
    print(overall("ciou", args.seeds))
    print(overall("mse", args.seeds))
    print(nan_inputs("ciou", args.seeds))
    print(nan_inputs("mse", args.seeds))
    print(f"done in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
