"""hank-ai's layer everywhere AlexeyAB's is offered: golden check (of the
shared hank-ai cases, as upstream wrote them) and export (kind yolo_hankai),
compare with the darknet_flavor cause, strategies, fuzz, the plugin."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import goldens_hankai as GH
import pydarknet_loss as pdl
from pydarknet_loss import alexeyab, hankai
from pydarknet_loss.parity import cli, golden

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402

from pydarknet_loss import strategies as S  # noqa: E402

SMALL = dict(classes=3, anchors=[10, 14, 23, 27, 37, 58], mask=[0, 1, 2], iou_loss="ciou", iou_normalizer=0.07,
             max_boxes=20, scale_x_y=1.05, iou_thresh=0.213)


def _ab_result(case: golden.GoldenCase) -> alexeyab.YoloResult:
    p = case.params
    return alexeyab.layer_from_params(p).forward(case.input, case.truth, net_w=p["net_w"], net_h=p["net_h"],
                                                 train=case.train, index=p["net_index"])


def test_shared_hankai_cases_load_as_yolo_hankai_and_run_the_hankai_layer() -> None:
    for path in GH.cases(GH.REPO)[:20] + GH.cases(GH.EXTRA)[:5]:
        case = golden.GoldenCase.load(path)
        assert case.kind == "yolo_hankai" and isinstance(case.layer(), hankai.YoloLayer)
        res = case.run()
        assert golden.GoldenCase.load(path).check({"output": res.output, "delta": res.delta, "cost": res.cost},
                                                  tolerance="exact").ok


def test_golden_check_command_on_the_hankai_cases(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The product's own check on hank-ai's cases: ours pass; AlexeyAB's arrays fail where they differ, with
    the darknet_flavor cause."""
    ours, theirs = tmp_path / "ours", tmp_path / "ab"
    ours.mkdir(), theirs.mkdir()
    n_train = 0
    for path in GH.cases(GH.REPO):
        case = golden.GoldenCase.load(path)
        res, ab = case.run(), _ab_result(case)
        np.savez(ours / path.name, output=res.output, delta=res.delta, cost=res.cost)
        np.savez(theirs / path.name, output=ab.output, delta=ab.delta, cost=ab.cost)
        n_train += case.train
    assert cli.main(["check", "--golden", str(GH.REPO), "--actual", str(ours), "--tolerance", "exact"]) == 0
    assert f"{n_train} of {n_train} cases match (exact)" in capsys.readouterr().out
    assert cli.main(["check", "--golden", str(GH.REPO), "--actual", str(theirs), "--tolerance", "exact"]) == 1
    out = capsys.readouterr().out
    m = json.loads((GH.REPO / "MANIFEST.json").read_text())
    differ = sum(1 for c in m["cases"] if c["train"] and "delta" in c["vs_alexeyab_59596d7"])
    assert f"{n_train - differ} of {n_train} cases match" in out and "darknet_flavor" in out


def test_compare_names_the_other_flavor_both_ways() -> None:
    case = golden.GoldenCase.load(GH.REPO / "case_0005_yolo_ab.npz")  # CIoU head: 4 box deltas differ
    ab = _ab_result(case)
    rep = case.check({"delta": ab.delta}, tolerance="exact")
    assert not rep.ok and [c.code for c in rep.causes] == ["darknet_flavor"] and rep.causes[0].count == 4
    assert "pydarknet_loss.alexeyab.YoloLayer instead" in rep.causes[0].message
    # and an AlexeyAB user whose implementation is hank-ai's
    p = case.params
    layer = alexeyab.layer_from_params(p)
    rep = pdl.compare({"delta": ab.delta}, {"delta": case.delta}, layer, input=case.input, truth=case.truth,
                      net_w=p["net_w"], net_h=p["net_h"], tolerance="exact")
    assert not rep.ok and rep.causes[0].code == "darknet_flavor"
    assert "pydarknet_loss.hankai.YoloLayer instead" in rep.causes[0].message


def test_darknet_flavor_does_not_claim_a_look_alike() -> None:
    """One ULP off hank-ai's value where AlexeyAB's is the same: rounding, not the other flavor."""
    case = golden.GoldenCase.load(GH.REPO / "case_0005_yolo_ab.npz")
    ab = _ab_result(case)
    same = np.flatnonzero((case.delta.reshape(-1) == ab.delta.reshape(-1)) & (case.delta.reshape(-1) != 0))
    delta = case.delta.copy()
    delta.reshape(-1)[same[:3]] = np.nextafter(delta.reshape(-1)[same[:3]], np.float32(np.inf))
    rep = case.check({"delta": delta}, tolerance="exact")
    assert [c.code for c in rep.causes] == ["float_rounding"] and rep.causes[0].count == 3


def test_export_writes_yolo_hankai_cases_that_reverify(tmp_path: Path) -> None:
    spec = tmp_path / "layer.json"
    spec.write_text(json.dumps(dict(kind="yolo_hankai", w=5, h=4, net_w=160, net_h=128, **SMALL)))
    out = tmp_path / "g"
    assert cli.main(["golden", "export", "--layer-json", str(spec), "--cases", "4", "--seed", "3",
                     "--profile", "stress", "--out", str(out), "--no-progress"]) == 0
    m = json.loads((out / "MANIFEST.json").read_text())
    assert m["upstream_commit"] == hankai.HANKAI_COMMIT and {c["kind"] for c in m["cases"]} == {"yolo_hankai"}
    for f in sorted(out.glob("*.npz")):
        case = golden.GoldenCase.load(f)
        assert case.kind == "yolo_hankai" and "hank-ai/darknet" in case.provenance["computed_by"]
        res = case.run()
        assert case.check({"output": res.output, "delta": res.delta, "cost": res.cost}, tolerance="exact").ok
        if case.train:
            assert case.text == res.stats.line() + "\n" and case.text.startswith("v3 iou loss, Normalizer: (")


def test_export_from_a_hankai_cfg(tmp_path: Path) -> None:
    cfg = GH.REPO.parent / "cfg" / "yolov4-tiny.cfg"
    out = tmp_path / "g"
    assert cli.main(["golden", "export", "--cfg", str(cfg), "--flavor", "hankai", "--cases", "2", "--batch", "1",
                     "--out", str(out), "--no-progress"]) == 0
    assert all(golden.GoldenCase.load(f).kind == "yolo_hankai" for f in out.glob("*.npz"))


@settings(max_examples=25, deadline=None, database=None)
@given(case=S.cases(kind="yolo_hankai"))
def test_strategies_draw_hankai_cases_hankai_accepts(case: S.Case) -> None:
    assert isinstance(case.layer, hankai.YoloLayer)
    res = case.layer.forward(case.x, case.truth, net_w=case.net_w, net_h=case.net_h)
    assert res.stats is not None and res.text.startswith("v3 ")


def test_fuzz_passes_the_oracle_and_catches_alexeyabs_arithmetic() -> None:
    def hank(x, truth, layer, net_w, net_h):  # type: ignore[no-untyped-def]
        return layer.forward(x, truth, net_w=net_w, net_h=net_h).delta

    def ab(x, truth, layer, net_w, net_h):  # type: ignore[no-untyped-def]
        return alexeyab.YoloLayer(**layer.params()).forward(x, truth, net_w=net_w, net_h=net_h).delta

    layer = hankai.YoloLayer(**SMALL)
    assert pdl.fuzz(hank, layer, kind="yolo_hankai", examples=20, seed=1, tolerance="exact").ok
    res = pdl.fuzz(ab, layer, kind="yolo_hankai", examples=200, seed=1, tolerance="exact")
    assert not res.ok and res.failure.report.causes[0].code == "darknet_flavor"
    assert "pdl.hankai.YoloLayer(" in res.failure.reproducer


def test_the_plugin_oracle_builds_hankai_layers() -> None:
    from pydarknet_loss.parity.plugin import DarknetOracle

    o = DarknetOracle()
    assert isinstance(o.yolo_hankai(**SMALL), hankai.YoloLayer)
    case = golden.GoldenCase.load(GH.REPO / "case_0000_yolo_ab.npz")
    assert isinstance(o.from_params("yolo_ab", case.params), hankai.YoloLayer)  # params.upstream names hank-ai
