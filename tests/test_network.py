"""Network.forward over a cfg's loss layers, calc_network_cost and
train_network's loss, checked against the layers alone and against sums
done by hand in float32, in upstream's order."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import pydarknet_loss as pdl
from pydarknet_loss.parity import cli


def f32(bits: int) -> np.float32:
    return np.array(bits, np.uint32).view(np.float32)[()]


def test_loss_layers_and_shapes_of_the_bundled_yolov3() -> None:
    net = pdl.Network.from_cfg(pdl.example_cfg("tiny-yolov3"))
    assert [i for i, _ in net.loss_layers] == [10, 17]
    assert all(isinstance(l, pdl.YoloLayer) for _, l in net.loss_layers)
    assert net.shapes[10] == (24, 8, 8) and net.shapes[17] == (24, 16, 16)
    assert net.loss_layers[0][1].mask.tolist() == [3, 4, 5]


def test_forward_equals_each_layer_alone_and_averages_their_costs() -> None:
    net, calls = cli.demo_inputs(1)
    xs, boxes, seen = calls[0]
    res = net.forward(xs, boxes, seen=seen)
    by_list = net.forward([xs[10], xs[17]], boxes, seen=seen)
    costs = []
    for index, layer in net.loss_layers:
        alone = layer.forward(xs[index], boxes, net_w=128, net_h=128, index=index)
        assert np.array_equal(res.layers[index].delta, alone.delta)
        assert res.layers[index].stats == alone.stats
        assert res.layers[index].stats.line().startswith(f"Region {index} ")
        assert np.array_equal(by_list.layers[index].delta, alone.delta)
        costs.append(alone.cost)
    # calc_network_cost: float sum in layer order, then / count in float.
    total = np.float32(0)
    for c in costs:
        total = np.float32(total + c)
    assert res.cost.view(np.uint32) == np.float32(total / np.float32(2)).view(np.uint32)


def test_calc_network_cost_by_hand() -> None:
    one, big = np.float32(1), f32(0x4b800000)  # 1 and 2**24
    # In float, 2**24 + 1 is a tie that rounds back to 2**24, so the order of
    # the sum decides: layer order, as upstream adds them.
    assert pdl.calc_network_cost([big, one, one]) == np.float32(2**24) / np.float32(3)
    assert pdl.calc_network_cost([one, one, big]) == np.float32(2**24 + 2) / np.float32(3)
    assert np.isnan(pdl.calc_network_cost([]))  # 0/0, as upstream with no cost layer


def test_train_loss_by_hand() -> None:
    costs = [np.float32(1.5), np.float32(2.25), np.float32(0.1)]
    total = np.float32(np.float32(np.float32(0) + costs[0]) + costs[1])
    total = np.float32(total + costs[2])
    assert pdl.train_loss(costs, batch=4).view(np.uint32) == np.float32(total / np.float32(12)).view(np.uint32)
    with pytest.raises(ValueError, match="at least one"):
        pdl.train_loss([], batch=4)


def test_region_network_passes_seen() -> None:
    net = pdl.Network.from_cfg(pdl.example_cfg("tiny-yolov2"))
    (index, layer), = net.loss_layers
    assert isinstance(layer, pdl.RegionLayer) and layer.num == 3 and layer.softmax == 1
    x = np.random.default_rng(2).standard_normal((2, 27, 6, 6)).astype(np.float32)
    truth = pdl.pack_truth([np.array([[1, .3, .4, .2, .3]], np.float32),
                            np.array([[3, .6, .6, .5, .4]], np.float32)], layer)
    early = net.forward({index: x}, truth, seen=100)
    late = net.forward({index: x}, truth, seen=20000)
    assert np.array_equal(early.layers[index].delta, layer.forward(x, truth, seen=100).delta)
    assert not np.array_equal(early.layers[index].delta, late.layers[index].delta)


def test_forward_checks_inputs_and_names_the_layer() -> None:
    net, calls = cli.demo_inputs(0)
    xs, boxes, seen = calls[0]
    bad = dict(xs)
    bad[17] = np.zeros((2, 24, 8, 8), np.float32)
    with pytest.raises(ValueError, match=r"layer 17 \(\[yolo\], .* line \d+\) expects input of shape "
                                         r"\(B, 24, 16, 16\), got \(2, 24, 8, 8\)"):
        net.forward(bad, boxes)
    with pytest.raises(ValueError, match=r"missing \[17\]"):
        net.forward({10: xs[10]}, boxes)
    with pytest.raises(ValueError, match="2 loss layers"):
        net.forward([xs[10]], boxes)


def test_networks_with_other_cost_layers_are_refused() -> None:
    text = ("[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=24\nsize=1\n"
            "[yolo]\nclasses=3\nnum=3\nanchors=1,2,3,4,5,6\n[softmax]\n")
    net = pdl.Network.from_text(text)
    x = np.zeros((1, 24, 8, 8), np.float32)
    with pytest.raises(ValueError, match=r"average in the cost of \[softmax\] layer 2"):
        net.forward([x], [np.zeros((0, 5), np.float32)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = pdl.Network.from_text("[net]\nwidth=8\nheight=8\nchannels=3\n[maxpool]\nstride=2\n")
    with pytest.raises(ValueError, match=r"no \[yolo\] or \[region\] layer"):
        plain.forward([], None)
