"""dn_compare_arrays on planes that are the same bits in both arrays, of every
kind a delta holds (all +0, +0 and -0, zeros with infinities or NaN, only
subnormals, one value among zeros), in every order with planes that differ:
the table's per-entry reductions must be the Python definitions' (_per_entry),
which is what the C pass's shortcut on such planes has to preserve."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from test_compare import assert_c_compare_is_the_python_one

F = np.float32
H, W = 3, 5


def _plane(kind: str, rng: np.random.Generator) -> np.ndarray:
    p = np.zeros((H, W), F)
    if kind == "negzero":
        p[1, 2] = -0.0
    elif kind == "inf":
        p[0, 0], p[2, 4] = np.inf, -np.inf
    elif kind == "nan":
        p[1, 1] = np.nan
    elif kind == "subnormal":
        p[2, 3] = 1e-42
    elif kind == "one":
        p[int(rng.integers(0, H)), int(rng.integers(0, W))] = F(rng.standard_normal())
    elif kind == "dense":
        p[...] = rng.standard_normal((H, W)).astype(F)
    return p


# (A plane of NaN alone is left out: there the C pass's max_ulp is 0, NaN from
# NaN, and _per_entry's -1, before and after the shortcut alike.)
KINDS = ["zero", "negzero", "inf", "nan", "subnormal", "one", "dense"]


@pytest.mark.parametrize("order", list(itertools.permutations(["same", "differs", "same2"])))
def test_identical_planes_of_every_kind(order: tuple) -> None:
    rng = np.random.default_rng(len(order[0]) * 7 + len(order[1]))
    blocks = len(order)
    e = np.zeros((blocks, 1, len(KINDS), H, W), F)
    for b in range(blocks):
        for k, kind in enumerate(KINDS):
            e[b, 0, k] = _plane(kind, rng)
    a = e.copy()
    for b, what in enumerate(order):
        if what == "differs":  # one element per entry moved (a NaN plane gets a number)
            for k in range(len(KINDS)):
                a[b, 0, k, 1, 3] = F(0.5) if np.isnan(e[b, 0, k, 1, 3]) else np.nextafter(e[b, 0, k, 1, 3], F(9))
    for atol, rtol, mu in ((0.0, 0.0, 0), (1e-3, 0.0, 0)):
        assert_c_compare_is_the_python_one(e, a, atol, rtol, mu, order)


def test_all_planes_identical() -> None:
    rng = np.random.default_rng(5)
    e = np.stack([np.stack([_plane(k, rng) for k in KINDS])[None] for _ in range(2)])
    n, got = assert_c_compare_is_the_python_one(e, e.copy(), 0.0, 0.0, 0)
    assert n == 0
    # a zero entry has a (zero) difference and no relative one; a dense one both
    k_zero, k_dense = KINDS.index("zero"), KINDS.index("dense")
    assert got.max_abs[k_zero] == 0 and not got.max_rel[k_zero] >= 0 and got.max_rel[k_dense] == 0


@pytest.mark.parametrize("seed", range(6))
def test_runs_of_the_same_bits_inside_a_plane_that_differs(seed: int) -> None:
    """Planes longer than the C pass's run (256 floats) that differ in one
    run only: the runs of the same bits around it, holding each kind of
    value, must count as the element loop counts them."""
    rng = np.random.default_rng([seed, 256])
    hw = 700
    e = np.zeros((2, 1, len(KINDS), hw), F)
    for b in range(2):
        for k, kind in enumerate(KINDS):
            where = int(rng.integers(0, hw - 20))
            e[b, 0, k, where:where + 15] = _plane(kind, rng).reshape(-1)
    a = e.copy()
    for k in range(len(KINDS)):  # one element moved, in the middle run of image 1's plane only
        at = 300 + int(rng.integers(0, 200))
        a[1, 0, k, at] = F(0.25) if not np.isfinite(e[1, 0, k, at]) else np.nextafter(e[1, 0, k, at], F(-9))
    e, a = e.reshape(2, 1, len(KINDS), 7, 100), a.reshape(2, 1, len(KINDS), 7, 100)
    n, _ = assert_c_compare_is_the_python_one(np.ascontiguousarray(e), np.ascontiguousarray(a), 0.0, 0.0, 0)
    assert n == len(KINDS)


def test_the_worst_elements_are_the_full_sorts_first() -> None:
    """report.worst's selection (compare._largest_first) is the stable
    argsort's first k: largest ULP first, ties in index order."""
    from pydarknet_loss.parity.compare import ULP_INF, _largest_first

    rng = np.random.default_rng(11)
    for _ in range(2000):
        n = int(rng.integers(0, 300))
        v = rng.integers(0, int(rng.integers(1, 12)), n).astype(np.int64)
        if n and rng.random() < 0.3:
            v[rng.integers(0, n, 3)] = ULP_INF
        k = int(rng.integers(0, 25))
        assert np.array_equal(_largest_first(v, k), np.argsort(-v, kind="stable")[:k]), (n, k)
