"""Regression tests for cfgs upstream would misread, size from garbage or
overflow on: each is a CfgError naming the file, line and key (or layer),
in both flavors, before anything is allocated."""
from __future__ import annotations

from pathlib import Path

import pytest

import pydarknet_loss as pdl
from pydarknet_loss.files.cfg import CfgError, c_atof, c_atoi, parse_cfg_text, read_map

NET = "[net]\nwidth=32\nheight=32\nchannels=3\n"
FLAVORS = ["pjreddie", "alexeyab"]


def test_int_overflow_names_file_line_and_key(tmp_path: Path) -> None:
    p = tmp_path / "big.cfg"
    p.write_text(NET + "[convolutional]\nfilters=2147483648\n")
    for flavor in FLAVORS:
        with pytest.raises(CfgError, match=r"big\.cfg, line 6 \(\[convolutional\]\): filters=2147483648: "
                                           r"'2147483648' does not fit a C int"):
            pdl.Network.from_cfg(p, flavor=flavor)


def test_int_overflow_in_a_list_names_the_key() -> None:
    with pytest.raises(CfgError, match=r"line 8 \(\[route\]\): layers=-1,9999999999"):
        pdl.Network.from_text(NET + "[convolutional]\nfilters=4\n[route]\nlayers=-1,9999999999\n")


def test_int_overflow_in_a_map_file_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "m.map").write_text("1\n99999999999\n")
    with pytest.raises(CfgError, match=r"m\.map, line 2: '99999999999' does not fit a C int"):
        read_map(tmp_path / "m.map")


@pytest.mark.parametrize("text", ["６", "1٣", "²", "\u0661\u0662"])
def test_non_ascii_digits_are_not_numbers(text: str) -> None:
    """C's atoi/atof read ASCII digits only; Python's int() and \\d accept any Unicode digit."""
    assert c_atoi(text) == (1 if text.startswith("1") else 0)
    assert c_atof(text) == (1.0 if text.startswith("1") else 0.0)
    s = parse_cfg_text(f"[net]\nfilters={text}\n")[0]
    assert s.get_int("filters", 5) == (1 if text.startswith("1") else 0)


def test_non_ascii_filters_then_fail_as_upstream_would() -> None:
    # filters=６ is atoi 0: a [yolo] after it sees 0 values per image
    text = NET + "[convolutional]\nfilters=６\nsize=1\n"
    with pytest.raises(CfgError, match=r"layer 0: this \[convolutional\] layer's output would be 0x32x32"):
        pdl.Network.from_text(text)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_negative_width_is_refused(flavor: str) -> None:
    text = "[net]\nwidth=-32\nheight=32\nchannels=3\n[convolutional]\nfilters=4\nsize=1\n"
    with pytest.raises(CfgError, match=r"line (1|6)"):
        pdl.Network.from_text(text, flavor=flavor)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_conv_larger_than_its_input(flavor: str) -> None:
    text = "[net]\nwidth=16\nheight=16\nchannels=3\n[convolutional]\nfilters=4\nsize=32\nstride=1\n"
    with pytest.raises(CfgError, match=r"line 5 \(\[convolutional\]\), layer 0: this \[convolutional\] layer's "
                                       r"output would be 4x-15x-15 .*larger than its input"):
        pdl.Network.from_text(text, flavor=flavor)


def test_batch_below_1() -> None:
    text = "[net]\nbatch=-4\nwidth=32\nheight=32\nchannels=3\n[convolutional]\nfilters=4\nsize=1\n"
    with pytest.raises(CfgError, match=r"batch/subdivisions\*time_steps = -4\*1 = -4"):
        pdl.Network.from_text(text)
    # AlexeyAB's parse_network_cfg_custom defines it: batch < 1 becomes 1
    assert pdl.Network.from_text(text, flavor="alexeyab").batch == 1


@pytest.mark.parametrize("flavor", FLAVORS)
def test_upsample_stride_0(flavor: str) -> None:
    text = NET + "[convolutional]\nfilters=4\nsize=1\n[upsample]\nstride=0\n"
    with pytest.raises(CfgError, match=r"line 9 \(stride=0\), in \[upsample\] of line 8: stride=0 gives a 0x0 output"):
        pdl.Network.from_text(text, flavor=flavor)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_an_absurd_layer_is_refused_naming_its_size(flavor: str) -> None:
    text = "[net]\nwidth=1000000\nheight=1000000\nchannels=3\n[convolutional]\nfilters=1\nsize=1\n"
    with pytest.raises(CfgError, match=r"height\*width\*channels = 3000000000000 values; upstream counts them in a C int"):
        pdl.Network.from_text(text, flavor=flavor)
    # An input that fits, and a layer that does not.
    text = "[net]\nwidth=1000\nheight=1000\nchannels=3\n[upsample]\nstride=1000\n"
    with pytest.raises(CfgError, match=r"would hold 3000000000000 values \(outputs: output 3x1000000x1000000.*"
                                      r"stride=1000 \(line 6\)"):
        pdl.Network.from_text(text, flavor=flavor)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_batch_that_overflows_the_buffer_is_refused(flavor: str) -> None:
    text = "[net]\nbatch=100000\nwidth=416\nheight=416\nchannels=3\n[convolutional]\nfilters=16\nsize=1\n"
    with pytest.raises(CfgError, match=r"batch\*outputs: output 16x416x416, batch 100000"):
        pdl.Network.from_text(text, flavor=flavor)


def test_yolo_with_an_absurd_num_is_refused_not_allocated() -> None:
    text = NET + "[convolutional]\nfilters=24\nsize=1\n[yolo]\nclasses=3\nnum=1500000000\nmask=0,1,2\n"
    with pytest.raises(CfgError, match=r"num=1500000000 .*2\*num = 3000000000 anchors"):
        pdl.Network.from_text(text)
    with pytest.raises(CfgError, match=r"num=1500000000 .*2\*num = 3000000000 anchors"):
        pdl.Network.from_text(text, flavor="alexeyab")
