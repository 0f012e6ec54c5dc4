"""Maxout discriminator layers: each output is the largest of its pieces, per copy."""

from __future__ import annotations

import pytest
import torch

from mtgan.config import ModelConfig
from mtgan.errors import ConfigError
from mtgan.nets import MultiGAN
from mtgan.nets.blocks import Block, LayerPlan


@pytest.mark.parametrize("copies", [None, 3])
def test_maxout_takes_the_largest_piece_of_each_unit(copies):
    torch.manual_seed(0)
    block = Block(LayerPlan("linear", (4,), (5,), pieces=3), copies)
    x = torch.randn(3, 7, 4)
    y = block(x)
    assert y.shape == (3, 7, 5)
    if copies is None:
        pre = block.affine(x.reshape(21, 4)).reshape(3, 7, 3, 5)
    else:
        pre = block.affine(x).reshape(3, 7, 3, 5)
    # piece-major layout: output unit u is the max over rows u, 5 + u, 10 + u
    torch.testing.assert_close(y, pre.max(-2).values)


def test_the_pacgan_reference_discriminator_builds():
    cfg = ModelConfig(d_activation="maxout", maxout_pieces=5, d_hidden=[200, 200, 200])
    model = MultiGAN(cfg, (2,), 1)
    assert [b.plan.pieces for b in model.discriminator.blocks] == [5, 5, 5, 1]
    assert model.discriminate(torch.randn(1, 8, 2)).shape == (1, 8)
    # 2·200·5 + 200·200·5 ·2 weights, biases of 1000 each, and the final 200 → 1
    assert sum(p.numel() for p in model.discriminator.parameters()) == 3000 + 2 * 201000 + 201


def test_maxout_is_for_mlps():
    with pytest.raises(ConfigError, match="maxout"):
        MultiGAN(
            ModelConfig(arch="dcgan", d_activation="maxout", g_hidden=[8], d_hidden=[8]),
            (1, 28, 28),
            1,
        )
