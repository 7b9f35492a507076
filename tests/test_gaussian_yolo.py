"""AlexeyAB's [Gaussian_yolo]: upstream behaviour reproduced on purpose (each
checked against a case upstream computed), the inputs refused because
upstream would index outside its buffers, inference decoding against
upstream's get_gaussian_yolo_detections, the cfg rule of the alexeyab
flavor and the parity toolkit on this kind."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest

import goldens as G
import goldens_gauss as GG
from pydarknet_loss import CfgError, Network, alexeyab, compare
from pydarknet_loss.parity import golden

EXTRA = {GG.load(p)["name"].item() if hasattr(GG.load(p)["name"], "item") else str(GG.load(p)["name"]): p
         for p in GG.cases(GG.EXTRA)}
DETS = GG.EXTRA / "inference"


def extra(name: str) -> Dict[str, Any]:
    d = GG.load(EXTRA[name])
    d["name"] = str(d["name"])
    return d


def small_layer(**kw: Any) -> alexeyab.GaussianYoloLayer:
    opts: Dict[str, Any] = dict(classes=3, num=4, mask=[1, 2], anchors=[10, 14, 23, 27, 37, 58, 81, 82])
    opts.update(kw)
    return alexeyab.GaussianYoloLayer(**opts)


def x_for(layer: alexeyab.GaussianYoloLayer, b: int = 1, h: int = 4, w: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((b, layer.channels, h, w)).astype(np.float32)


def truth(rows: Any, layer: alexeyab.GaussianYoloLayer, b: int = 1) -> np.ndarray:
    t = np.zeros((b, layer.max, 6), np.float32)
    for i, r in enumerate(rows):
        t[0, i, :len(r)] = r
    return t


# ---- quirks, each on a case upstream computed ---------------------------------------------

def test_every_extra_case_is_named_and_from_the_strict_build() -> None:
    m = GG.manifest(GG.EXTRA)
    assert m["upstream_commit"] == "59596d7880f6504768df41d6daa586f5cb2b932f" and m["variant"] == "strict"
    assert "-O2 -fno-fast-math -ffp-contract=off" in m["provenance"]["cflags"]
    names = {c["name"] for c in m["cases"]}
    assert {f"loss_{l}_point_{p}" for l in ("mse", "iou", "giou", "diou", "ciou")
            for p in ("center", "left_top", "right_bottom")} <= names
    assert len(m["cases"]) == len(GG.cases(GG.EXTRA)) == 32


@pytest.mark.parametrize("loss", ["iou", "giou", "diou", "ciou"])
def test_avg_iou_prints_giou_for_every_iou_loss(loss: str) -> None:
    """delta_gaussian_yolo_box returns GIoU for every iou_loss but mse: the
    printed Avg IOU is a mean of GIoUs, which an IoU mean cannot be when it is
    negative (upstream's own line says so)."""
    d = extra(f"loss_{loss}_point_center")
    res = GG.run(d)
    GG.assert_matches(res, d)
    ious = [extra(f"loss_{loss}_point_{p}")["stats"][0] for p in ("center", "left_top", "right_bottom")]
    assert min(ious) < 0  # a GIoU; IoU is never negative


def test_class_id_out_of_range_is_warned_per_cell_and_anchor() -> None:
    d = extra("class_id_out_of_range_warned")
    res = GG.run(d)
    GG.assert_matches(res, d)
    layer = gaussian_layer(d)
    skipped = layer.skipped_rows(d["truth"])
    cells = d["params"]["w"] * d["params"]["h"] * layer.n
    assert d["text"].count("\n Warning: in txt-labels class_id=") == cells * sum(len(r) for r in skipped) > 0
    assert res.warnings and res.text.startswith(res.warnings)


def test_x0_row_with_oob_class_does_not_end_loop_1() -> None:
    """Loop 1 skips a class id >= classes before testing x == 0, so such a
    row with x == 0 does not end its list; loop 2 stops there."""
    d = extra("x0_row_with_oob_class")
    GG.assert_matches(GG.run(d), d)
    layer = gaussian_layer(d)
    t = d["truth"]
    b, r = next((b, r) for b in range(t.shape[0]) for r in range(t.shape[1])
                if t[b, r, 0] == 0 and int(t[b, r, 4]) >= layer.classes)
    assert any(row == r for row, _ in layer.skipped_rows(t)[b])


@pytest.mark.parametrize("name", ["truth_thresh_negative", "ignore_thresh_negative_objectness_smooth", "max_0",
                                  "nonfinite_inputs", "anchors_short", "class_map_longer_than_classes"])
def test_named_edge(name: str) -> None:
    d = extra(name)
    GG.assert_matches(GG.run(d), d)


def test_negative_fractional_class_ids_truncate_to_0() -> None:
    case = GG.load(next(p for p in GG.cases(GG.REPO) if "neg_fractional_class_id" in G.load(p)["tags"]))
    t = case["truth"]
    assert ((t[..., 4] < 0) & (t[..., 4] > -1) & (t[..., 0] != 0)).any()
    GG.assert_matches(GG.run(case), case)


def gaussian_layer(d: Dict[str, Any]) -> alexeyab.GaussianYoloLayer:
    from pydarknet_loss.layers import gaussian

    return gaussian.layer_from_params(d["params"])


# ---- refusals -------------------------------------------------------------------------------

def test_more_anchors_than_2_num_are_refused() -> None:
    with pytest.raises(ValueError, match="past its end"):
        alexeyab.GaussianYoloLayer(classes=2, num=1, anchors=[10, 13, 16, 30])


def test_fewer_anchors_leave_05() -> None:
    layer = alexeyab.GaussianYoloLayer(classes=2, num=3, anchors=[10, 13, 16])
    assert layer.anchors.tolist() == [10, 13, 16, .5, .5, .5]


@pytest.mark.parametrize("mask", [[4], [-1], [0, 7]])
def test_mask_outside_num_is_refused(mask: Any) -> None:
    with pytest.raises(ValueError, match="read past its biases"):
        small_layer(mask=mask)


def test_map_outside_classes_is_refused() -> None:
    with pytest.raises(ValueError, match=r"map\[1\] = 3 sends class 1 outside \[0, 3\)"):
        small_layer(map=[0, 3, 1])


@pytest.mark.parametrize("key,value", [("iou_loss", "l1"), ("iou_thresh_kind", "mse"), ("yolo_point", "centre"),
                                       ("nms_kind", "soft")])
def test_unknown_names_are_refused(key: str, value: str) -> None:
    with pytest.raises(ValueError, match=key):
        small_layer(**{key: value})


def test_an_assigned_row_with_class_id_ge_classes_is_refused_with_its_row() -> None:
    layer = small_layer(mask=[0, 1, 2, 3])  # every anchor: every row is assigned
    t = truth([[.5, .5, .2, .2, 1], [.3, .3, .1, .1, 3]], layer)
    with pytest.raises(ValueError, match=r"truth image 0, row 1 .*outside \[0, 3\).*no class check"):
        layer.forward(x_for(layer), t, net_w=160, net_h=128)


def test_an_unassigned_row_with_class_id_ge_classes_is_only_warned() -> None:
    # anchor 3 (81x82) is the best for this box and is not in the mask [1, 2]: loop 2 never indexes with it
    layer = small_layer()
    t = truth([[.5, .5, .5, .6, 7]], layer)
    res = layer.forward(x_for(layer), t, net_w=160, net_h=128, index=3)
    assert res.count == 0 and res.warnings.count("class_id=7 >= classes=3") == 4 * 5 * 2
    assert res.text.endswith(res.stats.line() + "\n")


def test_negative_class_ids_are_refused() -> None:
    layer = small_layer()
    with pytest.raises(ValueError, match=r"class id -1 "):
        layer.forward(x_for(layer), truth([[.5, .5, .1, .1, -1]], layer), net_w=160, net_h=128)


def test_x_times_w_equal_w_is_refused_for_the_centre_only() -> None:
    layer = small_layer()
    t = truth([[1.0, .5, .1, .1, 0]], layer)
    with pytest.raises(ValueError, match="outside the 5x4 grid"):
        layer.forward(x_for(layer), t, net_w=160, net_h=128)
    # left_top / right_bottom clamp their corner into the grid (min_val_cmp/max_val_cmp)
    for point in ("left_top", "right_bottom"):
        res = small_layer(yolo_point=point).forward(x_for(layer), t, net_w=160, net_h=128)
        assert np.isfinite(res.cost)


def test_nan_in_a_truth_row_is_refused() -> None:
    layer = small_layer()
    with pytest.raises(ValueError, match="NaN or an infinity"):
        layer.forward(x_for(layer), truth([[.5, np.nan, .1, .1, 0]], layer), net_w=160, net_h=128)


def test_negative_truth_thresh_reads_row_0_whatever_it_is() -> None:
    layer = small_layer(truth_thresh=-.5)
    with pytest.raises(ValueError, match=r"row 0 .*outside \[0, 3\)"):
        # row 0 is the x == 0 terminator, but its class id is used by every cell
        layer.forward(x_for(layer), truth([[0, 0, 0, 0, 5]], layer), net_w=160, net_h=128)
    with pytest.raises(ValueError, match="no row 0"):
        small_layer(truth_thresh=-.5, max=0)


def test_batch_and_shape_are_checked() -> None:
    layer = small_layer(batch=2)
    with pytest.raises(ValueError, match="batch = 2"):
        layer.forward(x_for(layer), truth([], layer), net_w=160, net_h=128)
    with pytest.raises(ValueError):
        layer.forward(np.zeros((2, 10, 4, 5), np.float32), None, net_w=160, net_h=128)


def test_layer_is_read_only_and_train_false_needs_no_truth() -> None:
    layer = small_layer()
    with pytest.raises(AttributeError):
        layer.classes = 4  # type: ignore[misc]
    res = layer.forward(x_for(layer), None, train=False)
    assert res.stats is None and res.cost == 0 and res.text == "" and not res.delta.any()


# ---- inference --------------------------------------------------------------------------------

DET_CASES = sorted(DETS.glob("*.npz"))


def test_detection_cases_are_here() -> None:
    m = json.loads((DETS / "MANIFEST.json").read_text())
    assert len(m["cases"]) == len(DET_CASES) == 12
    assert {(c["relative"], c["letter"]) for c in m["cases"]} == {(True, True), (True, False), (False, True),
                                                                 (False, False)}


@pytest.mark.parametrize("path", DET_CASES, ids=[p.stem for p in DET_CASES])
def test_detections_match_upstream(path: Path) -> None:
    d = G.load(path)
    p = d["params"]
    layer = gaussian_layer({"params": p})
    res = layer.forward(d["input"], d["truth"], net_w=p["net_w"], net_h=p["net_h"], index=p["net_index"])
    assert G.bits_equal(res.output, d["output"])
    a = p["detections"]
    dets = layer.detections(res.output, img_w=a["img_w"], img_h=a["img_h"], net_w=p["net_w"], net_h=p["net_h"],
                            thresh=a["thresh"], relative=a["relative"], letter=a["letter"])
    assert len(dets) == len(d["objectness"]) > 0
    for key in ("bbox", "objectness", "prob"):
        assert G.bits_equal(getattr(dets.dets, key), d[key]), key
    assert G.bits_equal(dets.uc, d["uc"])


# ---- cfg ------------------------------------------------------------------------------------------

def _cfg_for(d: Dict[str, Any]) -> str:
    p = d["params"]
    layer = gaussian_layer(d)
    return "\n".join([
        "[net]", f"batch={p['batch']}", "subdivisions=1", f"width={p['net_w']}", f"height={p['net_h']}",
        "channels=3", "", "[convolutional]", f"filters={layer.channels}", "size=1",
        f"stride_x={p['net_w'] // p['w']}", f"stride_y={p['net_h'] // p['h']}", "activation=linear", "",
        "[Gaussian_yolo]", *p["cfg_section"], ""])


NET_CASES = ["counters_per_class_max_delta", "ignore_thresh_negative_objectness_smooth", "iou_thresh_kind_giou",
             "loss_giou_point_right_bottom", "loss_mse_point_left_top", "loss_mse_point_right_bottom"]


@pytest.mark.parametrize("name", NET_CASES)
def test_network_from_cfg_parses_the_section_as_upstream(name: str) -> None:
    """The section lines upstream's parse_gaussian_yolo read, through
    Network.from_text(flavor='alexeyab'): the same bits."""
    d = extra(name)
    p = d["params"]
    assert p["net_w"] % p["w"] == 0 and p["net_h"] % p["h"] == 0 and p["map"] is None
    net = Network.from_text(_cfg_for(d), flavor="alexeyab")
    [(index, layer)] = net.loss_layers
    assert isinstance(layer, alexeyab.GaussianYoloLayer) and index == 1
    out = net.forward({1: d["input"]}, d["truth"])
    res = out.layers[1]
    assert G.bits_equal(res.output, d["output"]) and G.bits_equal(res.delta, d["delta"])
    assert G.bits_equal(np.float32(res.cost), d["cost"]) and res.count == int(d["count"])
    assert net.upstream_fields()["layers"][1]["type_name"] == "Gaussian_yolo"


def test_cfg_anchors_count_every_comma() -> None:
    d = extra("loss_mse_point_left_top")
    text = _cfg_for(d).replace("[Gaussian_yolo]", "[Gaussian_yolo]\nanchors=10,13 # two, more")
    # upstream counts the commas in the comment too: 3 values for num=...
    net_text = text if "num=1" in text else text.replace("[Gaussian_yolo]", "[Gaussian_yolo]\nnum=1")
    with pytest.raises(CfgError, match="past its end"):
        Network.from_text(net_text, flavor="alexeyab")


# ---- the parity toolkit ------------------------------------------------------------------------

def test_golden_check_reads_the_shared_format() -> None:
    entries = golden.case_entries(GG.REPO)
    assert len(entries) == 10 and {e.kind for e in entries} == {"gaussian_yolo_ab"}
    case = golden.GoldenCase.load(entries[2].path)
    res = case.run()
    assert case.check({"output": res.output, "delta": res.delta, "cost": res.cost}).ok
    bad = res.delta.copy()
    bad[0, 5, 0, 0] += 1
    report = case.check({"output": res.output, "delta": bad, "cost": res.cost})
    assert not report.ok and report.mismatches == 1 and "sigma_w" in str(report)


def test_golden_export_round_trip(tmp_path: Path) -> None:
    layer = small_layer(iou_loss="giou", yolo_point="left_top", iou_thresh=.2)
    params = golden.layer_params(layer, w=5, h=4, batch=2, net_w=160, net_h=128, net_index=7)
    paths = golden.export([dict(kind="gaussian_yolo_ab", layer=layer, params=params)], 4, 1, tmp_path / "g")
    assert json.loads((tmp_path / "g" / "MANIFEST.json").read_text())["upstream_commit"] == alexeyab.AB_COMMIT
    for p in paths:
        case = golden.GoldenCase.load(p)
        assert {**case.layer().params(), "batch": None} == layer.params()
        res = case.run()
        assert case.check({"output": res.output, "delta": res.delta, "cost": res.cost}).ok
        assert case.text == res.text


def test_compare_names_the_gaussian_entries() -> None:
    layer = small_layer()
    x = x_for(layer)
    t = truth([[.5, .5, .3, .3, 1]], layer)
    res = layer.forward(x, t, net_w=160, net_h=128)
    out = res.output.copy()
    out[0, 1, 0, 0] += 1  # anchor 0, sigma_x
    report = compare(res, {"output": out}, layer)
    assert not report.ok and report.worst[0].component == "sigma_x"


# ---- strategies and fuzz ----------------------------------------------------------------------------

def _oracle_delta(x: np.ndarray, truth: np.ndarray, layer: Any, net_w: int, net_h: int) -> np.ndarray:
    return layer.forward(x, truth, net_w=net_w, net_h=net_h).delta


def _sigma_sign_flipped(x: np.ndarray, truth: np.ndarray, layer: Any, net_w: int, net_h: int) -> np.ndarray:
    """A port that got the sigma gradient's sign wrong."""
    d = layer.forward(x, truth, net_w=net_w, net_h=net_h).delta.copy()
    b, c, h, w = d.shape
    d5 = d.reshape(b, layer.n, c // layer.n, h, w)
    d5[:, :, [1, 3, 5, 7]] *= -1
    return d


def test_fuzz_passes_the_oracle_and_finds_a_sigma_sign_error() -> None:
    pytest.importorskip("hypothesis")
    import pydarknet_loss as pdl

    ok = pdl.fuzz(_oracle_delta, kind="gaussian_yolo_ab", examples=25, seed=1)
    assert ok.ok and ok.examples >= 25
    bad = pdl.fuzz(_sigma_sign_flipped, kind="gaussian_yolo_ab", examples=200, seed=1)
    assert not bad.ok
    worst = bad.failure.report.worst[0]
    assert worst.component in ("sigma_x", "sigma_y", "sigma_w", "sigma_h")
    assert isinstance(bad.failure.layer, alexeyab.GaussianYoloLayer)
    assert "pdl.alexeyab.GaussianYoloLayer(" in bad.failure.reproducer


# ---- the C API -------------------------------------------------------------------------------------

def test_c_program_links_the_core_and_agrees_with_python(tmp_path: Path) -> None:
    import shutil
    import subprocess

    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    root = Path(__file__).resolve().parent.parent
    src = root / "darknet_src"
    exe = tmp_path / "gaussian_yolo_api"
    subprocess.run([cc, "-std=c99", "-O2", "-fno-fast-math", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror",
                    "-I", str(src), str(root / "tests" / "c" / "gaussian_yolo_api.c"),
                    *(str(src / f) for f in ("ab_gaussian_yolo_layer.c", "ab_yolo_layer.c", "ab_box.c", "box.c",
                                             "utils.c", "ab_fast.c", "ab_fast_avx2.c", "fast.c", "fast_avx2.c",
                                             "parallel.c", "activations.c")),
                    "-lm", "-pthread", "-o", str(exe)], check=True)
    lines = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.splitlines()
    head = lines[0].split()
    assert head[:2] == ["rc", "0"]
    layer = alexeyab.GaussianYoloLayer(classes=2, num=4, mask=[1, 2], anchors=[10, 14, 23, 27, 37, 58, 81, 82],
                                       max=4, iou_loss="giou", yolo_point="left_top", uc_normalizer=.5,
                                       scale_x_y=1.05, iou_thresh=.213, max_delta=5)
    x = np.array([((i * 37) % 11 - 5) / 4 for i in range(22 * 6)], dtype=np.float32).reshape(1, 22, 2, 3)
    res = layer.forward(x, [np.array([[.3, .6, .3, .5, 1, 7]], np.float32)], net_w=96, net_h=64, index=30)
    values = np.array([[float.fromhex(v) for v in ln.split()] for ln in lines[1:-2]], dtype=np.float32)
    assert np.array_equal(values[:, 0], res.output.ravel()) and np.array_equal(values[:, 1], res.delta.ravel())
    assert float.fromhex(head[3]) == res.cost and int(head[5]) == res.count > 0
    assert float.fromhex(head[7]) == np.float32(res.stats.avg_iou)
    assert float.fromhex(head[9]) == np.float32(res.stats.uc_loss)
    dets = layer.detections(res.output, img_w=640, img_h=480, net_w=96, net_h=64, thresh=.25, letter=True)
    d = lines[-2].split()
    assert d[0] == "dets" and int(d[1]) == len(dets) > 0
    got = np.array([float.fromhex(v) for v in d[2:]], np.float32).reshape(-1, 3)
    assert np.array_equal(got[:, 0], dets.dets.bbox[:, 0]) and np.array_equal(got[:, 1], dets.dets.objectness)
    assert np.array_equal(got[:, 2], dets.uc[:, 1])
    assert lines[-1] == f"refused {-6} 1 untouched 1"


def test_cli_exports_and_checks_gaussian_cases(tmp_path: Path) -> None:
    from pydarknet_loss.parity.cli import main

    spec = {"kind": "gaussian_yolo_ab", "classes": 3, "num": 4, "mask": [1, 2],
            "anchors": [10, 14, 23, 27, 37, 58, 81, 82], "iou_loss": "ciou", "yolo_point": "right_bottom",
            "w": 4, "h": 3, "net_w": 128, "net_h": 96}
    (tmp_path / "g.json").write_text(json.dumps(spec))
    assert main(["golden", "export", "--layer-json", str(tmp_path / "g.json"), "--out", str(tmp_path / "g"),
                 "--cases", "3", "--seed", "2"]) == 0
    act = tmp_path / "act"
    act.mkdir()
    for p in sorted((tmp_path / "g").glob("*.npz")):
        z = np.load(p)
        delta = z["delta"].copy()
        if p.name.startswith("case_0001"):
            delta.reshape(-1)[0] += 1  # one departure, in case 1
        np.savez(act / p.name, output=z["output"], delta=delta, cost=z["cost"])
    assert main(["check", "--golden", str(tmp_path / "g"), "--actual", str(act)]) == 1
    case = golden.GoldenCase.load(tmp_path / "g" / "case_0000_gaussian_yolo_ab.npz")
    assert case.kind == "gaussian_yolo_ab" and case.layer().yolo_point == "right_bottom"


def test_diagnosis_names_a_sigma_sign_error_and_a_missed_box_average() -> None:
    d = extra("loss_mse_point_center")
    layer = gaussian_layer(d)
    p = d["params"]
    res = GG.run(d)
    b, c, h, w = res.delta.shape
    # a sigma gradient of the wrong sign
    flipped = res.delta.copy().reshape(b, layer.n, c // layer.n, h, w)
    flipped[:, :, [1, 3, 5, 7]] *= -1
    rep = compare(res, {"delta": flipped.reshape(b, c, h, w)}, layer, input=d["input"], truth=d["truth"],
                  net_w=p["net_w"], net_h=p["net_h"])
    assert not rep.ok and [c_.code for c_ in rep.causes] == ["sigma_sign"]
    # box deltas not divided by the cell's number of positive class deltas (upstream's data: such cells exist)
    e5 = np.asarray(d["delta"]).reshape(b, layer.n, c // layer.n, h, w)
    k = (e5[:, :, 9:] > 0).sum(axis=2)
    assert (k >= 2).any()
    undivided = e5.copy()
    undivided[:, :, :8] *= np.maximum(k, 1)[:, :, None]
    rep = compare(res, {"delta": undivided.reshape(b, c, h, w)}, layer, input=d["input"], truth=d["truth"],
                  net_w=p["net_w"], net_h=p["net_h"])
    assert not rep.ok and [c_.code for c_ in rep.causes] == ["box_average"]


def test_out_buffers_and_layouts_give_the_same_bits() -> None:
    d = extra("loss_giou_point_left_top")
    layer = gaussian_layer(d)
    p = d["params"]
    kw = dict(net_w=p["net_w"], net_h=p["net_h"], index=p["net_index"])
    out = (np.empty_like(d["input"]), np.empty_like(d["input"]))
    res = layer.forward(d["input"], d["truth"], out=out, **kw)
    assert res.output is out[0] and res.delta is out[1]
    GG.assert_matches(res, d)
    b, c, h, w = d["input"].shape
    bahwc = d["input"].reshape(b, layer.n, c // layer.n, h, w).transpose(0, 1, 3, 4, 2).copy()
    r2 = layer.forward(bahwc, d["truth"], layout="bahwc", **kw)
    assert G.bits_equal(r2.delta.transpose(0, 1, 4, 2, 3).reshape(b, c, h, w), d["delta"])
    assert r2.text == d["text"]
    with pytest.raises(ValueError, match="out= takes darknet's"):
        layer.forward(bahwc, d["truth"], layout="bahwc", out=out, **kw)


def test_pytest_plugin_runs_gaussian_golden_cases(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mine='''
import numpy as np

def test_mine(darknet_golden_case, darknet_oracle):
    layer = darknet_golden_case.layer()
    assert layer.kind == "gaussian_yolo_ab"
    assert darknet_oracle.gaussian_yolo_ab(classes=2, num=1).kind == "gaussian_yolo_ab"
    res = darknet_golden_case.run()
    darknet_golden_case.assert_parity({"output": res.output, "delta": res.delta, "cost": res.cost})
''')
    result = pytester.runpytest("--darknet-golden", str(GG.REPO), "-q")
    result.assert_outcomes(passed=10)


def test_pjreddie_flavor_refuses_gaussian_yolo_and_says_which_flavor_knows_it() -> None:
    cfg = "\n".join(["[net]", "batch=1", "width=64", "height=64", "channels=3", "", "[convolutional]", "filters=11",
                     "size=1", "stride=32", "activation=linear", "", "[Gaussian_yolo]", "classes=2", "num=1", ""])
    with pytest.raises(CfgError, match=r"unknown section type \[Gaussian_yolo\].*flavor='alexeyab'"):
        Network.from_text(cfg)
    net = Network.from_text(cfg, flavor="alexeyab")
    assert isinstance(net.loss_layers[0][1], alexeyab.GaussianYoloLayer)


def test_options_the_layer_never_reads_are_warned_others_refused() -> None:
    import warnings as w

    from pydarknet_loss import DarknetQuirkWarning

    with pytest.warns(DarknetQuirkWarning) as rec:
        layer = small_layer(show_details=0, stopbackward=1)
    assert sorted(str(r.message).split(":")[0] for r in rec) == ["show_details", "stopbackward"]
    with w.catch_warnings():
        w.simplefilter("ignore")
        assert small_layer(focal_loss=1).params() == small_layer().params()
    assert layer.params() == small_layer().params()
    with pytest.raises(TypeError, match="'ignore_tresh'.*ignore_thresh"):
        small_layer(ignore_tresh=.3)
