"""read_labels and pack_truth: upstream's read_boxes, correct_boxes and
fill_truth_detection, checked against what upstream computed on label files
of ours (tests/data/labels, tests/data/upstream_labels.npz)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import goldens as G
import pydarknet_loss as pdl

DATA = G.HERE / "data"
UP = np.load(DATA / "upstream_labels.npz")
FILES = sorted((DATA / "labels").glob("img*.txt"))


@pytest.mark.parametrize("fi", range(6))
@pytest.mark.parametrize("ai", range(5))
def test_pack_truth_matches_upstreams_correct_boxes(fi: int, ai: int) -> None:
    dx, dy, sx, sy, flip = (float(v) for v in UP["augs"][ai])
    labels = pdl.read_labels(DATA / "labels" / f"img{fi}.txt")
    ids, xywh = UP[f"f{fi}_a{ai}_ids"], UP[f"f{fi}_a{ai}_xywh"]
    assert np.array_equal(labels.ids, ids)
    truth = pdl.pack_truth([labels], "yolo", dx=dx, dy=dy, sx=sx, sy=sy, flip=bool(flip))[0]
    # fill_truth_detection's loop, by hand: truncate to 90, then drop < .001.
    keep = [(x, i) for x, i in zip(xywh[:90], ids[:90]) if not (x[2] < .001 or x[3] < .001)]
    expect = np.zeros((90, 5), np.float32)
    for r, (x, i) in enumerate(keep):
        expect[r, :4], expect[r, 4] = x, i
    assert G.bits_equal(truth, expect)


def test_read_labels_edge_cases(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert len(pdl.read_labels(empty)) == 0
    f = tmp_path / "a.txt"
    f.write_text("1 0.5 0.5 0.25 0.125\n\n2 0.1 0.2 0.3 0.4")  # a blank line, no final newline
    lab = pdl.read_labels(f)
    assert lab.ids.tolist() == [1, 2] and lab.boxes[0].tolist() == [0.5, 0.5, 0.25, 0.125]
    crlf = tmp_path / "crlf.txt"
    crlf.write_text("1 0.5 0.5 0.25 0.125\r\n")
    assert len(pdl.read_labels(crlf)) == 1


@pytest.mark.parametrize("line,why", [
    ("1.5 0.5 0.5 0.2 0.2", "expected 'class x y w h'"),     # upstream: class 1, x = .5, ...
    ("1 0.5 0.5 0.2", "expected 'class x y w h'"),
    ("1 0.5 0.5 0.2 0.2 7", "expected 'class x y w h'"),
    ("cat 0.5 0.5 0.2 0.2", "expected 'class x y w h'"),
    ("-1 0.5 0.5 0.2 0.2", "class id >= 0"),
    ("1 1.5 0.5 0.2 0.2", r"in \[0, 1\]"),
    ("1 0.5 0.5 nan 0.2", r"in \[0, 1\]"),
])
def test_malformed_and_out_of_range_lines_name_file_and_line(tmp_path: Path, line: str, why: str) -> None:
    f = tmp_path / "bad.txt"
    f.write_text("0 0.5 0.5 0.2 0.2\n" + line + "\n")
    with pytest.raises(ValueError, match=f"bad.txt, line 2: .*{why}"):
        pdl.read_labels(f)


def test_missing_label_file() -> None:
    with pytest.raises(FileNotFoundError, match="label file not found"):
        pdl.read_labels("/nonexistent/labels.txt")


def test_border_boxes_are_clamped_and_small_ones_dropped_after_truncation() -> None:
    rows = np.array([
        [4, 0.98, 0.5, 0.2, 0.2],    # crosses the right edge: clamped to [0.88, 1]
        [5, 0.5, 0.5, 0.0005, 0.3],  # under .001 wide: dropped
        [6, 0.3, 0.3, 0.1, 0.1],
    ], np.float32)
    t = pdl.pack_truth([rows], "region")
    assert t.shape == (1, 30, 5)
    assert t[0, 0, 4] == 4 and t[0, 0, 0] == np.float32((np.float32(0.98 - 0.1) + np.float32(1)) / 2)
    assert t[0, 1, 4] == 6 and not t[0, 2:].any()
    # num_boxes=2 truncates first: the small box is one of the two, so only one row remains.
    t2 = pdl.pack_truth([rows], "yolo", num_boxes=2)
    assert t2[0, 0, 4] == 4 and not t2[0, 1:].any()


def test_a_box_at_the_origin_is_sent_far_away_as_upstream_does() -> None:
    t = pdl.pack_truth([np.array([[2, 0.0, 0.0, 0.2, 0.2]], np.float32)])
    assert t[0, 0].tolist() == [999999.0, 999999.0, 999999.0, 999999.0, 2.0]


def test_pack_truth_feeds_forward() -> None:
    layer = pdl.YoloLayer(classes=3, anchors=[10, 14, 23, 27, 37, 58], mask=[0, 1, 2])
    truth = pdl.pack_truth([pdl.read_labels(FILES[0]), pdl.read_labels(FILES[1])], layer)
    x = np.zeros((2, layer.channels, 4, 4), np.float32)
    with pytest.raises(ValueError, match="outside"):  # class ids up to 79 for a 3-class layer
        layer.forward(x, truth)
    truth[:, :, 4] = np.where(truth[:, :, 0] != 0, 1, 0)
    truth[truth[:, :, 0] >= 1] = 0  # boxes touching x == 1 would index column w
    res = layer.forward(x, truth)
    assert res.stats.count > 0


def test_pack_truth_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="'yolo', 'region' or a layer"):
        pdl.pack_truth([], "detection")
    with pytest.raises(ValueError, match=r"shape \(k, 5\)"):
        pdl.pack_truth([np.zeros((2, 4), np.float32)])
    with pytest.raises(ValueError, match="whole number"):
        pdl.pack_truth([np.array([[1.5, .5, .5, .2, .2]], np.float32)])
    with pytest.raises(ValueError, match="num_boxes must be <= 30"):
        pdl.pack_truth([], "region", num_boxes=31)
    with pytest.raises(ValueError, match="coords > 4"):
        pdl.pack_truth([], pdl.RegionLayer(classes=2, anchors=[1, 1], coords=5))
