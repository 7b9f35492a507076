"""The parity toolkit on AlexeyAB's [yolo]: compare with the generic causes,
golden export --flavor alexeyab writing the yolo_ab format, check, the
plugin's case loader, and fuzz."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import goldens_ab as GA
import pydarknet_loss as pdl
from pydarknet_loss.parity import cli, golden


def _case(i: int = 0) -> golden.GoldenCase:
    return golden.GoldenCase.load(GA.cases(GA.REPO)[i])


def test_golden_yolo_ab_cases_load_run_and_check() -> None:
    case = _case(3)
    assert case.kind == "yolo_ab" and case.truth.shape[2] == 6
    res = case.run()
    assert np.array_equal(res.delta.view(np.uint32), case.delta.view(np.uint32))
    assert case.check(case.expected()).ok
    flipped = case.check({"delta": -case.delta})
    assert not flipped.ok and flipped.causes[0].code == "sign"
    d = case.delta.copy()
    i = int(np.flatnonzero(d.reshape(-1))[0])
    d.reshape(-1)[i] = np.nextafter(d.reshape(-1)[i], np.float32(np.inf))
    one = case.check({"delta": d}, tolerance="exact")  # exact: the one ULP is named float_rounding
    assert [c.code for c in one.causes] == ["float_rounding"]
    assert case.check({"delta": d}, tolerance="float32").ok


def test_export_alexeyab_from_layer_json_and_check_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec = tmp_path / "ab.json"
    spec.write_text(json.dumps({"kind": "yolo_ab", "classes": 3, "anchors": [12, 16, 19, 36, 40, 28], "mask": [0, 1, 2],
                                "iou_loss": "ciou", "iou_normalizer": 0.07, "scale_x_y": 1.05, "iou_thresh": 0.213,
                                "max_boxes": 20, "w": 4, "h": 4, "batch": 2, "net_w": 128, "net_h": 128}))
    assert cli.main(["golden", "export", "--layer-json", str(spec), "--cases", "4", "--out", str(tmp_path / "g")]) == 0
    capsys.readouterr()
    cases = golden.load_cases(tmp_path / "g")
    assert len(cases) == 4 and all(c.kind == "yolo_ab" and c.truth.shape == (2, 20, 6) for c in cases)
    for c in cases:
        res = c.run()
        assert np.array_equal(res.delta.view(np.uint32), c.delta.view(np.uint32))
        if c.train:
            assert c.text == res.text and c.count == res.count
            assert int(c.extra["total_bbox"]) == res.total_bbox
    actual = tmp_path / "a"
    actual.mkdir()
    for c in cases:
        np.savez(actual / c.path.name, delta=c.delta, output=c.output, cost=c.cost)
    assert cli.main(["check", "--golden", str(tmp_path / "g"), "--actual", str(actual)]) == 0
    assert "cases match" in capsys.readouterr().out


def test_export_alexeyab_cfg(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    shared = GA.shared()
    if shared is None:
        pytest.skip(GA.SHARED_REASON)
    cfg = shared / "cfg" / "yolov4-tiny.cfg"
    assert cli.main(["golden", "export", "--cfg", str(cfg), "--flavor", "alexeyab", "--cases", "2", "--batch", "1",
                     "--out", str(tmp_path / "g")]) == 0
    m = json.loads((tmp_path / "g" / "MANIFEST.json").read_text())
    assert m["upstream_commit"] == pdl.alexeyab.AB_COMMIT and {c["kind"] for c in m["cases"]} == {"yolo_ab"}
    for c in golden.load_cases(tmp_path / "g"):
        assert np.array_equal(c.run().delta.view(np.uint32), c.delta.view(np.uint32))


def test_fuzz_on_alexeyab_layers() -> None:
    pytest.importorskip("hypothesis", reason="the [fuzz] extra")

    def same(x: np.ndarray, truth: np.ndarray, layer: object, net_w: int, net_h: int) -> np.ndarray:
        return layer.forward(x, truth, net_w=net_w, net_h=net_h).delta  # type: ignore[attr-defined]

    def flipped(x: np.ndarray, truth: np.ndarray, layer: object, net_w: int, net_h: int) -> np.ndarray:
        return -same(x, truth, layer, net_w, net_h)

    assert pdl.fuzz(same, kind="yolo_ab", seed=0, examples=100).ok
    res = pdl.fuzz(flipped, kind="yolo_ab", seed=0, examples=100)
    assert not res.ok and res.failure.cause == "sign" and res.failure.layer.kind == "yolo_ab"
