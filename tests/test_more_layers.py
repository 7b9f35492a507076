"""AlexeyAB's [region] (alexeyab.RegionLayer, upstream 59596d7) and pjreddie's YOLOv1
[detection] (pdl.DetectionLayer, upstream f6afaab): every golden case bit for bit (output,
delta, cost, printed stats, count, line and text), the quirks by name, glibc's rand(), and
the inputs refused because upstream would index out of bounds."""
from __future__ import annotations

import ctypes
import ctypes.util
import filecmp
import json
import os
import warnings
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest

import pydarknet_loss as pdl
from pydarknet_loss import alexeyab
from pydarknet_loss.layers import ab_region, detection

HERE = Path(__file__).resolve().parent
SHARED_COPY = HERE / "golden" / "more-layers"
EXTRA = HERE / "golden" / "more-layers-extra"
KINDS = ("region_ab", "detection")


def _shared() -> Path | None:
    env = os.environ.get("PDL_SHARED_GOLDEN")
    for root in ([Path(env)] if env else []) + [HERE.parent.parent / "shared" / "golden", Path("/work/shared/golden")]:
        if (root / "more-layers").is_dir():
            return root / "more-layers"
    return None


def _cases(root: Path) -> List[Path]:
    return sorted(p for k in KINDS for p in (root / k).glob("*.npz"))


SHARED_CASES = _cases(SHARED_COPY)
EXTRA_CASES = _cases(EXTRA)


def load(path: Path) -> Dict[str, Any]:
    with np.load(path, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    d["params"] = json.loads(str(d["params"]))
    return d


def same_bits(a: Any, b: Any) -> bool:
    """float32 bit patterns equal, NaN matching NaN of any payload."""
    a = np.asarray(a, dtype=np.float32).ravel()
    b = np.asarray(b, dtype=np.float32).ravel()
    if a.shape != b.shape:
        return False
    na, nb = np.isnan(a), np.isnan(b)
    return bool(np.array_equal(na, nb) and np.array_equal(a.view(np.uint32)[~na], b.view(np.uint32)[~nb]))


def run(d: Dict[str, Any]) -> Any:
    p = d["params"]
    if str(d["kind"]) == "region_ab":
        return ab_region.forward_case(d)
    layer = detection.layer_from_case(p)
    res = None
    for _ in range(p.get("forwards", 1)):  # forwards on one layer: its rand() continues
        res = layer.forward(d["input"], d["truth"], train=bool(d["train"]), seen=int(d["seen"]))
    return res


def assert_matches(res: Any, d: Dict[str, Any]) -> None:
    assert res.output.shape == d["output"].shape
    assert same_bits(res.output, d["output"]), "output"
    assert same_bits(res.delta, d["delta"]), "delta"
    assert same_bits(res.cost, d["cost"]), "cost"
    # the printed %f values are floats promoted to double: compare them as float32
    assert same_bits(res.stats.as_array().astype(np.float32), d["stats"].astype(np.float32)), "stats"
    assert np.array_equal(res.stats.as_array(), d["stats"].astype(np.float64), equal_nan=True)
    assert list(res.stats.names) == json.loads(str(d["stats_names"]))
    assert res.count == int(d["count"])
    assert res.stats.line() == str(d["line"]).rstrip("\n")
    assert res.text == str(d["text"])


def _id(p: Path) -> str:
    return p.stem


def test_the_shared_sets_are_here() -> None:
    assert len([p for p in SHARED_CASES if "region_ab" in p.name]) == 10
    assert len([p for p in SHARED_CASES if "detection" in p.name]) == 10


@pytest.mark.parametrize("path", SHARED_CASES, ids=_id)
def test_shared_case(path: Path) -> None:
    d = load(path)
    assert_matches(run(d), d)


@pytest.mark.parametrize("path", EXTRA_CASES, ids=_id)
def test_extra_case(path: Path) -> None:
    d = load(path)
    assert_matches(run(d), d)


def test_extra_set_provenance_and_coverage() -> None:
    m = json.loads((EXTRA / "MANIFEST.json").read_text())
    assert "-O2 -fno-fast-math -ffp-contract=off" in m["cflags"]
    assert "59596d7880f6504768df41d6daa586f5cb2b932f" in m["upstream"]["region_ab"]
    assert "f6afaabcdf85f77e7aff2ec55c020c0e297c77f9" in m["upstream"]["detection"]
    assert len(m["cases"]) == len(EXTRA_CASES) == 92
    tags = [t for c in m["cases"] for t in c["tags"]]
    # what the shared set lacks: rand() draws, several forwards on one layer, classfix -1 / 2, a class map,
    # upstream's "box -1" when no box qualifies and forced's "box 1" with num=1
    for t in ("random_lt_64000", "forwards_2", "forwards_3", "classfix_-1", "classfix_2", "class_map",
              "no_box_qualifies", "forced_num_1"):
        assert t in tags, t


@pytest.mark.skipif(_shared() is None, reason="../shared/golden/more-layers is not present (set PDL_SHARED_GOLDEN)")
def test_repo_copies_equal_the_shared_originals() -> None:
    root = _shared()
    assert root is not None
    for kind in KINDS:
        names = sorted(p.name for p in (root / kind).glob("*.npz")) + ["MANIFEST.json"]
        match, mismatch, errors = filecmp.cmpfiles(root / kind, SHARED_COPY / kind, names, shallow=False)
        assert not mismatch and not errors and len(match) == 11


# ---- glibc's rand() ---------------------------------------------------------------------------------

def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
        return libc
    except (OSError, AttributeError):
        return None


def test_glibc_rand_first_values_from_seed_0() -> None:
    # glibc's well-known sequence: srand(0) acts as srand(1)
    layer = pdl.DetectionLayer(classes=2, coords=4, side=2, num=2)
    assert layer.rand(5).tolist() == [1804289383, 846930886, 1681692777, 1714636915, 1957747793]


@pytest.mark.skipif(_libc() is None, reason="not a glibc system: the C library's rand() is another generator")
@pytest.mark.parametrize("seed", [0, 1, 42, 12345, 2**31 - 1, 2**32 - 1])
def test_glibc_rand_equals_the_c_library(seed: int) -> None:
    libc = _libc()
    libc.srand(ctypes.c_uint(seed))
    expected = [libc.rand() for _ in range(2000)]
    layer = pdl.DetectionLayer(classes=1, coords=4, side=1, num=1)
    layer.srand(seed)
    assert layer.rand(2000).tolist() == expected


def test_each_layer_has_its_own_generator() -> None:
    a = pdl.DetectionLayer(classes=1, coords=4, side=1, num=3, random=1)
    b = pdl.DetectionLayer(classes=1, coords=4, side=1, num=3, random=1)
    a.rand(7)
    assert b.rand(1).tolist() == [1804289383]
    assert a.rand_state().tolist() != pdl.DetectionLayer(classes=1, coords=4, side=1, num=1).rand_state().tolist()


def _det_case(rng: np.random.Generator, side: int = 3, num: int = 3, classes: int = 2, batch: int = 2):
    loc = side * side
    x = rng.random((batch, loc * (5 * num + classes))).astype(np.float32)
    t = np.zeros((batch, loc, 1 + classes + 4), np.float32)
    t[:, ::2, 0] = 1
    t[:, ::2, 1] = 1
    t[:, ::2, 1 + classes:] = (.5, .5, .3, .3)
    return x, t


def test_random_draws_rand_mod_num_once_per_object_cell() -> None:
    """random=1 with seen < 64000: the responsible box is rand() % num, cells in order."""
    rng = np.random.default_rng(3)
    x, t = _det_case(rng)
    layer = pdl.DetectionLayer(classes=2, coords=4, side=3, num=3, random=1)
    ref = pdl.DetectionLayer(classes=2, coords=4, side=3, num=3)
    picks = ref.rand(10) % 3  # the same sequence, from a fresh srand(0)
    res = layer.forward(x, t, seen=100)
    assert res.count == 10 and res.draws == 10
    inputs = layer.inputs
    loc = 9
    k = 0
    for b in range(2):
        for i in range(0, 9, 2):
            conf = res.delta[b, loc * 2 + i * 3: loc * 2 + i * 3 + 3]
            # the picked box gets object_scale*(1 - out); the others noobject_scale*(0 - out)
            out = x[b, loc * 2 + i * 3: loc * 2 + i * 3 + 3]
            for j in range(3):
                expected = np.float32(1. - out[j]) if j == picks[k] else np.float32(0 - out[j])
                assert conf[j] == expected
            k += 1
    assert inputs == x.shape[1]
    # seen >= 64000: no draw, the generator stays where it was
    before = layer.rand_state()
    layer.forward(x, t, seen=64000)
    assert np.array_equal(layer.rand_state(), before)


def test_is_obj_is_truncated_to_int() -> None:
    rng = np.random.default_rng(4)
    x, t = _det_case(rng, batch=1)
    layer = pdl.DetectionLayer(classes=2, coords=4, side=3, num=3)
    t2 = t.copy()
    t2[0, 0, 0] = .6  # (int).6 == 0: no object
    assert layer.forward(x, t2).count == layer.forward(x, t).count - 1


# ---- AlexeyAB [region] quirks ---------------------------------------------------------------------

def _region(**kw: Any) -> alexeyab.RegionLayer:
    base = dict(classes=3, coords=4, num=2, anchors=[1, 1, 2, 3])
    base.update(kw)
    return alexeyab.RegionLayer(**base)


def test_region_output_is_flattened_channels_last_with_only_objectness_activated() -> None:
    rng = np.random.default_rng(5)
    layer = _region()
    x = rng.standard_normal((2, 16, 3, 4)).astype(np.float32)
    res = layer.forward(x, train=False)
    assert res.output.shape == (2, 3, 4, 16)
    back = res.output_nchw()
    obj = [4, 12]
    raw = [c for c in range(16) if c not in obj]
    assert np.array_equal(back[:, raw], x[:, raw])  # x, y, w, h and classes stay raw (softmax=0)
    # upstream's logistic in float: 1.f/(1.f + expf(-x)), with the C library's expf
    libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    libm.expf.restype = ctypes.c_float
    libm.expf.argtypes = [ctypes.c_float]
    v = x[:, obj].ravel()
    expected = np.array([np.float32(1) / (np.float32(1) + np.float32(libm.expf(float(-a)))) for a in v], np.float32)
    assert np.array_equal(back[:, obj].ravel(), expected)


def test_region_class_id_at_or_past_classes_does_not_end_the_list() -> None:
    """The class test comes before the x == 0 test: an x == 0 row with an out-of-range class is
    skipped (with a printed warning), and the rows after it are still read."""
    rng = np.random.default_rng(6)
    layer = _region(max=4)
    x = rng.standard_normal((1, 16, 3, 3)).astype(np.float32)
    t = np.zeros((1, 4, 6), np.float32)
    t[0, 0] = (0, 0, .3, .3, 3, 0)  # x == 0 but class 3 >= classes: skipped, not the end
    t[0, 1] = (.5, .5, .3, .3, 1, 0)
    res = layer.forward(x, t, seen=20000)
    assert res.count == 1
    assert res.text.startswith("\n Warning: in txt-labels class_id=3 >= classes=3 in cfg-file.")
    t[0, 0, 4] = 2  # now a real terminator
    assert layer.forward(x, t, seen=20000).count == 0


def test_region_truth_no_anchor_overlaps_writes_at_index_0_of_the_whole_buffer() -> None:
    """best_index starts at 0: a truth with w == 0 overlaps no anchor, and its deltas land on image
    0's first cell, even though the truth belongs to image 1."""
    rng = np.random.default_rng(7)
    layer = _region(noobject_scale=0)
    x = rng.standard_normal((2, 16, 3, 3)).astype(np.float32)
    t = np.zeros((2, 200, 6), np.float32)
    t[1, 0] = (.5, .5, 0, .3, 1, 0)
    res = layer.forward(x, t, seen=20000)
    assert res.count == 1
    assert np.all(res.delta[1] == 0)  # nothing in image 1
    assert res.delta[0, 0:4, 0, 0].any() and res.delta[0, 4, 0, 0] != 0  # image 0, anchor 0, cell (0, 0)


def test_region_seen_below_12800_pulls_every_anchor_to_its_prior() -> None:
    rng = np.random.default_rng(8)
    layer = _region(noobject_scale=0)
    x = rng.standard_normal((1, 16, 2, 2)).astype(np.float32)
    t = np.zeros((1, 200, 6), np.float32)
    assert not layer.forward(x, t, seen=12800).delta.any()
    d = layer.forward(x, t, seen=12799).delta
    assert d[0, [0, 1, 2, 3, 8, 9, 10, 11]].all()


def test_region_focal_loss_without_softmax_gives_nan_for_negative_outputs() -> None:
    layer = _region(focal_loss=1)
    x = np.full((1, 16, 1, 1), -2, np.float32)
    t = np.zeros((1, 200, 6), np.float32)
    t[0, 0] = (.5, .5, .5, .5, 0, 0)
    res = layer.forward(x, t, seen=20000)
    assert np.isnan(res.delta).any() and np.isnan(res.cost)


# ---- refusals: where upstream would read or write outside its buffers --------------------------------

def _refused(fn: Any, *words: str) -> None:
    with pytest.raises(ValueError) as e:
        fn()
    for w in words:
        assert w in str(e.value), str(e.value)


def test_region_refusals() -> None:
    _refused(lambda: _region(coords=3), "coords = 3")
    _refused(lambda: _region(map=[0, 5, 1]), "map[1] = 5")
    _refused(lambda: _region(tree="x.tree"), "tree=")
    layer = _region(max=3)
    x = np.zeros((2, 16, 3, 3), np.float32)
    t = np.zeros((2, 3, 6), np.float32)
    t[1, 0] = (1.0, .5, .3, .3, 0, 0)  # x == 1: column w
    _refused(lambda: layer.forward(x, t), "image 1 row 0", "outside the 3x3 grid")
    t[1, 0] = (.5, .5, .3, .3, -1, 0)
    assert layer.forward(x, t).count == 1  # used as it is (see the quirk test)
    _refused(lambda: _region(max=3, map=[0, 1, 2]).forward(x, t), "image 1 row 0", "below 0")  # map[-1]
    t[1, 0, 4] = -6
    _refused(lambda: _region(max=3, focal_loss=1).forward(x, t), "image 1 row 0", "below -5 with focal_loss=1")
    t[1, 0] = (.5, np.nan, .3, .3, 0, 0)
    _refused(lambda: layer.forward(x, t), "NaN")
    t[1, 0] = (.5, .5, .3, .3, 3e9, 0)
    _refused(lambda: layer.forward(x, t), "does not fit a C int")
    _refused(lambda: layer.forward(np.zeros((2, 15, 3, 3), np.float32), t), "15 channels")
    _refused(lambda: _region(batch=3).forward(x, train=False), "batch=3")
    short_map = _region(classes=3, map=[0, 1, 2])
    assert short_map.forward(x, np.zeros((2, 200, 6), np.float32)).count == 0


def test_detection_refusals() -> None:
    rng = np.random.default_rng(9)
    x, t = _det_case(rng, batch=1)
    layer = pdl.DetectionLayer(classes=2, coords=4, side=3, num=3)
    far = x.copy()
    boxes = 9 * 2 + 9 * 3
    far[0, boxes::4] = 1e6  # every box's x far away: no IoU, no RMSE under 20
    far[0, boxes + 2::4] = .1
    # no box qualifies anywhere: upstream uses "box -1", inside the buffer here (reproduced, see below)
    assert layer.forward(far, t).count == 5
    # random=1 below 64000 replaces the pick
    assert pdl.DetectionLayer(classes=2, coords=4, side=3, num=3, random=1).forward(far, t, seen=0).count == 5
    # where box -1 lies before the buffer's start (image 0, cell 0, side 1: 1*(1 + 1) - 4 = -2) it is refused
    tiny = pdl.DetectionLayer(classes=1, coords=4, side=1, num=1)
    xt = np.array([[.5, .5, 1e6, 1e6, .1, .1]], np.float32)
    tt = np.array([[[1, 1, .5, .5, .2, .2]]], np.float32)
    _refused(lambda: tiny.forward(xt, tt), "image 0 cell 0", "outside the buffer")
    one = pdl.DetectionLayer(classes=2, coords=4, side=3, num=1, forced=1)
    x1 = rng.random((1, 9 * 5 + 9 * 2)).astype(np.float32)
    _refused(lambda: one.forward(x1, t), "forced=1 picks box 1")
    c1 = pdl.DetectionLayer(classes=2, side=3, num=3)  # upstream's default coords=1
    xc = np.zeros((1, c1.inputs), np.float32)
    tc = np.zeros((1, 9, 1 + 2 + 1), np.float32)
    assert c1.forward(xc, tc).count == 0  # no object: fine
    tc[0, 4, 0] = 1
    _refused(lambda: c1.forward(xc, tc), "cell 4", "coords < 4")
    t2 = t.copy()
    t2[0, 2, 0] = np.nan
    _refused(lambda: layer.forward(x, t2), "cell 2", "is_obj")
    _refused(lambda: layer.forward(x[:, :-1], t), "shape (B, 153)")
    _refused(lambda: layer.forward(x, t[:, :-1]), "truth must have shape")
    with pytest.raises(ValueError):
        layer.detections(np.zeros((1, c1.inputs), np.float32), 100, 100)


def test_detection_decoding_from_first_principles() -> None:
    layer = pdl.DetectionLayer(classes=2, coords=4, side=2, num=1, sqrt=1)
    out = np.zeros((1, 4 * 2 + 4 * 1 + 4 * 4), np.float32)
    out[0, 2:4] = (.5, .25)  # cell 1's class scores
    out[0, 8 + 1] = .8  # cell 1's confidence
    out[0, 12 + 4:12 + 8] = (.5, .25, .5, .4)  # cell 1's box
    dets = layer.detections(out, 200, 100, thresh=.3)
    assert len(dets) == 4
    assert dets.bbox[1].tolist() == [np.float32((.5 + 1) / 2 * 200), np.float32((.25 + 0) / 2 * 100),
                                     np.float32(.25 * 200),
                                     np.float32(float(np.float32(.4)) ** 2 * 100)]  # pow in double
    assert dets.objectness[1] == np.float32(.8)
    assert dets.prob[1].tolist() == [np.float32(.8) * np.float32(.5), 0]  # .8*.25 = .2 is not above .3
    assert not dets.prob[[0, 2, 3]].any()


# ---- Network.from_cfg builds them: each shared case's own cfg lines through the flavors' parsers ------------

@pytest.mark.parametrize("path", SHARED_CASES + EXTRA_CASES[::4], ids=_id)
def test_network_from_cfg_reads_the_cases_section(path: Path, tmp_path: Path) -> None:
    d = load(path)
    p = d["params"]
    kind = str(d["kind"])
    lines = []
    for line in p["cfg_section"]:
        if line.startswith("map="):
            (tmp_path / "classes.map").write_text("".join(f"{v}\n" for v in p["map"]))
            line = "map=classes.map"
        lines.append(line)
    if kind == "region_ab":
        c = d["input"].shape[1]
        net = f"[net]\nbatch={p['batch']}\nsubdivisions=1\nwidth={p['w']}\nheight={p['h']}\nchannels={c}\n"
        text = net + "\n[region]\n" + "\n".join(lines) + "\n"
        flavor = "alexeyab"
    else:
        net = f"[net]\nbatch={p['batch']}\nsubdivisions=1\nwidth=1\nheight=1\nchannels={d['input'].shape[1]}\n"
        text = net + "\n[detection]\n" + "\n".join(lines) + "\n"
        flavor = "pjreddie"
    (tmp_path / "net.cfg").write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        network = pdl.Network.from_cfg(tmp_path / "net.cfg", flavor=flavor)
    [(index, layer)] = network.loss_layers
    assert index == 0 and layer.kind == kind
    x = d["input"] if kind == "region_ab" else d["input"].reshape(d["input"].shape[0], -1, 1, 1)
    res = None
    for _ in range(p.get("forwards", 1)):
        res = network.forward({0: x}, d["truth"], seen=int(d["seen"])).layers[0]
    assert_matches(res, d)


# ---- the parity toolkit on these layers ---------------------------------------------------------------

def test_golden_case_loads_runs_and_checks_the_shared_cases() -> None:
    from pydarknet_loss.parity import golden

    for path in SHARED_CASES:
        case = golden.GoldenCase.load(path)
        assert case.kind in ("region_ab", "detection")
        res = case.run()
        assert case.check({"output": res.output, "delta": res.delta, "cost": res.cost}).ok


def test_compare_names_the_component_that_departs() -> None:
    from pydarknet_loss.parity import golden

    case = golden.GoldenCase.load(SHARED_COPY / "detection" / "case_0005_detection.npz")
    res = case.run()
    delta = res.delta.copy()
    layer = case.layer()
    # image 0, the last cell, its last box's w: after the class block and the confidences, cell-major boxes
    loc = layer.side * layer.side
    cell, box = loc - 1, layer.num - 1
    k = loc * (layer.classes + layer.num) + (cell * layer.num + box) * layer.coords + 2
    delta[0, k] += 1
    report = case.check({"output": res.output, "delta": delta, "cost": res.cost})
    assert not report.ok and report.mismatches == 1
    [worst] = report.worst
    assert (worst.array, worst.image, worst.row, worst.col, worst.component) == \
        ("delta", 0, cell // layer.side, cell % layer.side, "w")
    case = golden.GoldenCase.load(SHARED_COPY / "region_ab" / "case_0002_region_ab.npz")
    res = case.run()
    out = res.output.copy()  # (B, H, W, C): channel 4 is anchor 0's objectness
    out[0, 1, 0, 4] = -out[0, 1, 0, 4]
    report = case.check({"output": out, "delta": res.delta})
    [worst] = report.worst
    assert (worst.array, worst.anchor, worst.row, worst.col, worst.component) == ("output", 0, 1, 0, "objectness")
    with pytest.raises(ValueError, match="exactly"):
        case.check({"delta": res.delta}, tolerance="float32")


@pytest.mark.parametrize("cfg,flavor", [("yolov2-ab", "alexeyab"), ("yolov1", "pjreddie")])
def test_golden_export_writes_cases_that_check(tmp_path: Path, cfg: str, flavor: str) -> None:
    from pydarknet_loss.parity import golden

    if cfg == "yolov1":
        text = ("[net]\nbatch=2\nsubdivisions=1\nwidth=1\nheight=1\nchannels=63\n\n[detection]\nclasses=2\ncoords=4\n"
                "side=3\nnum=1\nrandom=1\nrescore=1\n")
    else:
        text = ("[net]\nbatch=2\nsubdivisions=1\nwidth=3\nheight=2\nchannels=24\n\n[region]\nclasses=3\ncoords=4\n"
                "num=3\nanchors=1,2,3,4,5,6\nsoftmax=1\nfocal_loss=1\nclassfix=2\n")
    (tmp_path / "net.cfg").write_text(text)
    net = pdl.Network.from_cfg(tmp_path / "net.cfg", flavor=flavor)
    [(index, layer)] = net.loss_layers
    params = golden.layer_params(layer, w=net.layers[index].w, h=net.layers[index].h, batch=2)
    paths = golden.export([{"kind": layer.kind, "layer": layer, "params": params}], 8, 5, tmp_path / "out",
                          profile="stress")
    assert len(paths) == 8
    for p in paths:
        case = golden.GoldenCase.load(p)
        res = case.run()
        assert case.check({"output": res.output, "delta": res.delta, "cost": res.cost}).ok
        d = load(p)
        assert d["text"] == res.text and int(d["count"]) == res.count


@pytest.mark.parametrize("kind", ["region_ab", "detection"])
def test_fuzz_passes_the_oracle_and_finds_a_wrong_delta(kind: str) -> None:
    pytest.importorskip("hypothesis")
    from pydarknet_loss.parity.fuzz import fuzz

    def oracle(x: Any, truth: Any, layer: Any, net_w: int, net_h: int, seen: int = 0) -> Dict[str, Any]:
        fresh = type(layer)(**layer.params())
        r = fresh.forward(x, truth, seen=seen)
        return {"output": r.output, "delta": r.delta, "cost": r.cost}

    ok = fuzz(oracle, kind=kind, examples=25, seed=1)
    assert ok.ok and ok.examples == 25

    def halved(x: Any, truth: Any, layer: Any, net_w: int, net_h: int, seen: int = 0) -> Any:
        return oracle(x, truth, layer, net_w, net_h, seen)["delta"] * np.float32(0.5)

    bad = fuzz(halved, kind=kind, examples=50, seed=1)
    assert not bad.ok and bad.failure is not None
    assert "pdl." in bad.failure.reproducer


def test_detection_no_box_qualifies_uses_box_minus_1() -> None:
    """best_index stays -1 when no predicted box overlaps the truth and none is within RMSE 20:
    upstream then indexes "box -1" of the cell, i.e. the previous cell's last box (written after
    that cell's own no-object deltas, so they stay).  Expected values from first principles."""
    classes, num, side = 2, 2, 2
    layer = pdl.DetectionLayer(classes=classes, coords=4, side=side, num=num, coord_scale=3, object_scale=2)
    loc = side * side
    x = np.zeros((1, layer.inputs), np.float32)
    boxes = loc * (classes + num)
    x[0, boxes:] = np.tile(np.float32([5e3, 5e3, .1, .1]), loc * num)  # every box far away
    x[0, loc * classes:boxes] = np.arange(1, loc * num + 1, dtype=np.float32) / 10
    t = np.zeros((1, loc, 1 + classes + 4), np.float32)
    cell = loc - 1  # the object is in the last cell
    t[0, cell, 0] = 1
    t[0, cell, 1] = 1
    t[0, cell, 1 + classes:] = (.5, .5, .2, .2)
    res = layer.forward(x, t, seen=64000)
    assert res.count == 1
    f = np.float32
    p_minus_1 = loc * classes + cell * num - 1  # the previous cell's last confidence
    assert res.delta[0, p_minus_1] == f(2.0 * (1.0 - float(x[0, p_minus_1])))  # object_scale*(1. - out) in double
    box_minus_1 = boxes + (cell * num - 1) * 4  # the previous cell's last box
    for k in range(4):
        v = x[0, box_minus_1 + k]
        assert res.delta[0, box_minus_1 + k] == f(3) * (f(t[0, cell, 1 + classes + k]) - v)
    # the cell's own boxes: no-object deltas on their confidences, nothing on their box entries
    own = loc * classes + cell * num
    assert np.array_equal(res.delta[0, own:own + num], f(1) * (f(0) - x[0, own:own + num]))
    assert not res.delta[0, boxes + cell * num * 4:].any()


def test_region_ab_decoding_from_first_principles() -> None:
    """custom_get_region_detections: get_region_boxes on image 0's flattened output (x, y through the
    float logistic, w, h = exp(double)*anchor/grid), objectness 1, prob = score*class above thresh; then
    correct_yolo_boxes (no letterbox here: the boxes only scale to the image)."""
    layer = alexeyab.RegionLayer(classes=2, coords=4, num=1, anchors=[2, 3])
    x = np.zeros((2, 7, 1, 2), np.float32)
    x[0, :, 0, 1] = (.5, -1, .25, -.5, 2, 1, 3)  # cell (0, 1): x, y, w, h, objectness logit, 2 class scores
    out = layer.forward(x, train=False).output
    libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    libm.expf.restype = ctypes.c_float
    libm.expf.argtypes = [ctypes.c_float]
    sig = lambda v: np.float32(1) / (np.float32(1) + np.float32(libm.expf(-v)))  # noqa: E731
    dets = layer.detections(out, 200, 100, net_w=416, net_h=416, thresh=.9, relative=0, letter=0)
    assert len(dets) == 2 and np.array_equal(dets.objectness, [1, 1])
    f = np.float32
    bx = (f(1) + sig(.5)) / f(2) * f(200)
    by = (f(0) + sig(-1.)) / f(1) * f(100)
    bw = f(np.exp(np.float64(f(.25))) * 2 / 2) * f(1 / f(1)) * f(200)
    bh = f(np.exp(np.float64(f(-.5))) * 3 / 1) * f(1 / f(1)) * f(100)
    assert dets.bbox[1].tolist() == [bx, by, bw, bh]
    score = sig(2.)
    assert dets.prob[1].tolist() == [0, score * f(3)]  # score*1 = .88 is not above .9
    assert not dets.prob[0].any()


def test_region_negative_class_id_gets_the_background_delta_on_every_class() -> None:
    """(int)-1.0 == -1 passes upstream's `class_id >= classes` test; no class equals it, so every
    class entry gets scale*(0 - p) and avg_cat adds nothing."""
    rng = np.random.default_rng(12)
    layer = _region(class_scale=2)
    x = rng.standard_normal((1, 16, 2, 2)).astype(np.float32)
    t = np.zeros((1, 200, 6), np.float32)
    t[0, 0] = (.3, .6, .4, .4, -1, 0)
    res = layer.forward(x, t, seen=20000)
    assert res.count == 1 and res.stats.class_count == 1 and res.stats.avg_cat == 0
    d = res.delta.reshape(1, 2, 8, 2, 2)
    cells = [(a, j, i) for a in range(2) for j in range(2) for i in range(2) if d[0, a, 5:, j, i].any()]
    [(a, j, i)] = cells  # the responsible anchor at the truth's cell (row 1, column 0)
    assert (j, i) == (1, 0)
    out = res.output_nchw().reshape(1, 2, 8, 2, 2)
    assert np.array_equal(d[0, a, 5:, j, i], np.float32(2) * (np.float32(0) - out[0, a, 5:, j, i]))


def test_cli_check_reads_the_more_layers_folders(tmp_path: Path, capsys: Any) -> None:
    """`pydarknet-loss check` on a more-layers folder (its MANIFEST names the kind once, as "layer"):
    the oracle's own arrays pass, a doubled delta fails with the case named."""
    from pydarknet_loss.parity import cli, golden

    for kind in KINDS:
        for p in sorted((SHARED_COPY / kind).glob("*.npz")):
            r = golden.GoldenCase.load(p).run()
            delta = r.delta * np.float32(2) if p.name.startswith("case_0003") else r.delta
            np.savez(tmp_path / p.name, output=r.output, delta=delta, cost=r.cost)
        capsys.readouterr()
        assert cli.main(["check", "--golden", str(SHARED_COPY / kind), "--actual", str(tmp_path)]) == 1
        out = capsys.readouterr().out
        assert "9 of 10 cases match" in out and f"case_0003_{kind}.npz: " in out


# ---- PyTorch: the [detection] implied loss ---------------------------------------------------------

def test_detection_torch_loss_gradient_is_minus_delta_and_its_value_the_terms() -> None:
    torch = pytest.importorskip("torch")
    from pydarknet_loss.torch import DetectionLoss

    rng = np.random.default_rng(21)
    x, t = _det_case(rng, side=3, num=2, classes=2, batch=2)
    layer = pdl.DetectionLayer(classes=2, coords=4, side=3, num=2, sqrt=1, rescore=0, object_scale=2,
                               noobject_scale=.5, class_scale=1.5, coord_scale=5)
    xt = torch.tensor(x, requires_grad=True)
    loss = DetectionLoss(layer)(xt, t)
    loss.backward()
    res = pdl.DetectionLayer(**layer.params()).forward(x, t)
    assert np.array_equal(xt.grad.numpy().view(np.uint32), (np.float32(0) - res.delta).view(np.uint32))
    # the value from first principles (float64): ½ s (t - out)² per term, the picks from the oracle
    loc, n, cls = 9, 2, 2
    v = 0.0
    for b in range(2):
        for i in range(loc):
            for j in range(n):
                v += 0.5 * .5 * float(x[b, loc * cls + i * n + j]) ** 2
            p = int(res.picks[b, i])
            if p < 0:
                continue
            o = float(x[b, loc * cls + i * n + p])
            v += 0.5 * 2 * (1 - o) ** 2 - 0.5 * .5 * o ** 2
            v += sum(0.5 * 1.5 * (float(t[b, i, 1 + k]) - float(x[b, i * cls + k])) ** 2 for k in range(cls))
            box = x[b, loc * (cls + n) + (i * n + p) * 4:][:4].astype(np.float64)
            tb = t[b, i, 1 + cls:].astype(np.float64)
            target = np.array([tb[0], tb[1], np.sqrt(tb[2]), np.sqrt(tb[3])])
            v += float(0.5 * 5 * ((target - box) ** 2).sum())
    # the value is float64 built from float32 deltas: equal to ~1e-6 (the gradient above is exact)
    assert abs(float(loss.detach()) - v) <= 1e-6 * abs(v)


def test_detection_torch_loss_refusals() -> None:
    torch = pytest.importorskip("torch")
    from pydarknet_loss.implied import NotAGradientError
    from pydarknet_loss.torch import DetectionLoss

    with pytest.raises(NotAGradientError, match="softmax=1"):
        DetectionLoss(pdl.DetectionLayer(classes=2, coords=4, side=3, num=3, softmax=1))
    classes, num, side = 2, 2, 2
    layer = pdl.DetectionLayer(classes=classes, coords=4, side=side, num=num)
    x = np.zeros((1, layer.inputs), np.float32)
    x[0, side * side * (classes + num):] = np.tile(np.float32([5e3, 5e3, .1, .1]), side * side * num)
    t = np.zeros((1, side * side, 1 + classes + 4), np.float32)
    t[0, 3, 0], t[0, 3, 1:] = 1, (1, 0, .5, .5, .2, .2)
    with pytest.raises(ValueError, match="image 0 cell 3.*box -1"):
        DetectionLoss(layer)(torch.tensor(x), t)


def test_cli_golden_export_layer_json_for_both_kinds(tmp_path: Path) -> None:
    from pydarknet_loss.parity import cli, golden

    specs = {"detection": {"kind": "detection", "kwargs": {"classes": 3, "coords": 4, "side": 3, "num": 2,
                                                             "random": 1}, "batch": 2},
             "region_ab": {"kind": "region_ab", "kwargs": {"classes": 3, "num": 2, "anchors": [1, 2, 3, 4],
                                                             "softmax": 1}, "w": 3, "h": 2, "batch": 1}}
    for kind, spec in specs.items():
        (tmp_path / f"{kind}.json").write_text(json.dumps(spec))
        out = tmp_path / f"out_{kind}"
        assert cli.main(["golden", "export", "--layer-json", str(tmp_path / f"{kind}.json"), "--cases", "3",
                         "--out", str(out), "--no-progress"]) == 0
        cases = golden.load_cases(out)
        assert len(cases) == 3 and {c.kind for c in cases} == {kind}
        for c in cases:
            r = c.run()
            assert c.check({"output": r.output, "delta": r.delta, "cost": r.cost}).ok


@pytest.mark.parametrize("opts", [dict(softmax=1, rescore=1), dict(softmax=0, classfix=2, bias_match=1),
                                  dict(softmax=1, classfix=-1, coords=5), dict(softmax=1, classfix=1, rescore=1)])
@pytest.mark.parametrize("seen", [0, 20000])
def test_ab_region_torch_loss_gradient_is_minus_delta(opts: Dict[str, Any], seen: int) -> None:
    """x.grad is 0 - delta bit for bit; and the recorded terms are the right ones: the float64
    expression's own autograd gradient agrees with darknet's delta (to float32 rounding)."""
    torch = pytest.importorskip("torch")
    from pydarknet_loss.torch import ABRegionLoss

    rng = np.random.default_rng(31 + seen)
    layer = _region(classes=3, num=2, thresh=.3, object_scale=5, class_scale=2, coord_scale=1.5, **opts)
    x = rng.standard_normal((2, layer.channels, 3, 4)).astype(np.float32)
    t = np.zeros((2, 200, 6), np.float32)
    for b in range(2):
        for r in range(3):
            t[b, r] = (rng.uniform(.05, .95), rng.uniform(.05, .95), rng.uniform(.1, .7), rng.uniform(.1, .7),
                       int(rng.integers(0, 3)), 0)
    xt = torch.tensor(x, requires_grad=True)
    loss_fn = ABRegionLoss(layer, seen=seen)
    loss_fn(xt, t).backward()
    res = layer.forward(x, t, seen=seen)
    assert np.array_equal(xt.grad.numpy().view(np.uint32), (np.float32(0) - res.delta).view(np.uint32))
    x64 = torch.tensor(x, requires_grad=True)
    value, _ = loss_fn.terms(x64, t)
    (g,) = torch.autograd.grad(value, x64)
    # the float64 expression of the implied loss against darknet's float32 delta: rounding apart
    assert np.allclose(g.numpy(), -res.delta, rtol=1e-4, atol=1e-6)
    assert float(value.detach()) > 0 and set(loss_fn.last_parts) == {"xy", "wh", "obj", "class"}


def test_ab_region_torch_loss_refuses_focal_loss() -> None:
    pytest.importorskip("torch")
    from pydarknet_loss.implied import NotAGradientError
    from pydarknet_loss.torch import ABRegionLoss

    with pytest.raises(NotAGradientError, match="focal_loss=1"):
        ABRegionLoss(_region(softmax=1, focal_loss=1))
    with pytest.raises(TypeError, match="alexeyab.RegionLayer"):
        ABRegionLoss(pdl.RegionLayer(classes=3, anchors=[1, 1, 2, 3]))


def test_c_program_runs_both_layers_and_agrees_with_python(tmp_path: Path) -> None:
    import subprocess

    root = HERE.parent
    src = root / "darknet_src"
    exe = tmp_path / "more_layers_api"
    cmd = ["cc", "-std=c99", "-O2", "-fno-fast-math", "-ffp-contract=off", "-I", str(src),
           str(HERE / "c" / "more_layers_api.c"), *map(str, sorted(src.glob("*.c"))), str(src / "cuda" / "no_cuda.c"),
           "-lm", "-pthread", "-o", str(exe)]
    subprocess.run(cmd, check=True, capture_output=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.splitlines()

    def bits(v: Any) -> str:
        return f"{int(np.float32(v).view(np.uint32)):08x}"

    def sum_bits(a: np.ndarray) -> str:
        h = 0
        for u in np.ascontiguousarray(a, np.float32).reshape(-1).view(np.uint32).tolist():
            h = (h * 31 + u) & 0xFFFFFFFF
        return f"{h:08x}"

    # the same computation through Python
    layer = alexeyab.RegionLayer(classes=3, coords=4, num=2, max=4, anchors=[1.5, 2, 3, 1], softmax=1, rescore=1)
    x = ((np.arange(2 * 8 * 6) * 37) % 11 - 5).astype(np.float32) / np.float32(4)
    truth = np.zeros((1, 4, 6), np.float32)
    truth[0, 0, :5] = (.3, .6, .3, .4, 1)
    r = layer.forward(x.reshape(1, 16, 2, 3), truth, seen=20000)
    assert out[0] == (f"region rc 0 cost {bits(r.cost)} count {r.count} iou {bits(r.stats.avg_iou)} "
                      f"output {sum_bits(r.output)} delta {sum_bits(r.delta)}")
    assert out[1] == "region refused 1 0 0"
    assert out[2] == "rand 1804289383 846930886"
    det = pdl.DetectionLayer(classes=2, coords=4, side=2, num=2, random=1, sqrt=1)
    xd = ((np.arange(2 * 48) * 29) % 13).astype(np.float32) / np.float32(13)
    td = np.zeros((2, 4, 7), np.float32)
    for i in range(0, 8, 2):
        b, c = divmod(i, 4)
        td[b, c, 0] = 1
        td[b, c, 1 + i % 2] = 1
        td[b, c, 3:] = (.4, .6, .3, .5)
    rd = det.forward(xd.reshape(2, 48), td, seen=100)
    picks = " ".join(str(int(p)) for p in rd.picks.reshape(-1))
    assert out[3] == (f"detection rc 0 cost {bits(rd.cost)} count {rd.count} iou {bits(rd.stats.avg_iou)} "
                      f"output {sum_bits(rd.output)} delta {sum_bits(rd.delta)} picks {picks}")
    assert out[4] == "detection refused 1 0 0"


def test_network_layers_take_any_batch_as_the_yolo_layers_do() -> None:
    v1 = pdl.Network.from_text("[net]\nbatch=64\nsubdivisions=2\nwidth=1\nheight=1\nchannels=28\n\n[detection]\n"
                               "classes=2\ncoords=4\nside=2\nnum=1\n")
    t = np.zeros((3, 4, 7), np.float32)
    assert v1.forward({0: np.zeros((3, 28), np.float32)}, t).layers[0].count == 0
    v2 = pdl.Network.from_text("[net]\nbatch=64\nsubdivisions=2\nwidth=2\nheight=2\nchannels=16\n\n[region]\n"
                               "classes=3\nnum=2\nanchors=1,2,3,4\n", flavor="alexeyab")
    assert v2.forward({0: np.zeros((3, 16, 2, 2), np.float32)}, [np.zeros((0, 5), np.float32)] * 3,
                      seen=0).layers[0].count == 0
