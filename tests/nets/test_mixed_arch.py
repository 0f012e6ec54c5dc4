"""model.d_arch: discriminators of another family than the generators (an MLP generator judged
by a convolutional discriminator), sharing and all."""

from __future__ import annotations

import pytest
import torch

from mtgan.config import load_config
from mtgan.errors import ConfigError
from mtgan.nets import MultiGAN

MNIST = (1, 28, 28)
MIXED = [
    "model.z_dim=8",
    "model.g_hidden=[16]",
    "model.d_arch=dcgan",
    "model.d_hidden=[4,8]",
    "model.share.discriminator=all_but_first",
]


def test_an_mlp_generator_with_conv_discriminators_that_share_all_but_their_first_layer():
    torch.manual_seed(0)
    model = MultiGAN(load_config("pertask", MIXED).model, MNIST, 2)
    assert [b.plan.kind for b in model.generator.blocks] == ["linear", "linear"]
    assert [b.plan.kind for b in model.discriminator.blocks] == ["conv", "conv", "linear"]
    z = torch.randn(2, 3, 8)
    fake = model.generator(z)
    assert fake.shape == (2, 3, 784)  # flat; each block reads its input in its own shape
    logits = model.discriminator(fake)
    assert logits.shape[:2] == (2, 3)
    logits.sum().backward()
    nets = [model.network_parameters("d", k) for k in range(2)]
    assert nets[0]["blocks.0.affine.weight"] is not nets[1]["blocks.0.affine.weight"]
    for key in ("blocks.1.affine.weight", "blocks.2.affine.weight"):
        assert nets[0][key] is nets[1][key]
    assert all(p.grad is not None for p in model.discriminator.parameters())


def test_d_arch_defaults_to_arch_and_is_checked_against_the_data():
    assert load_config("pertask").model.d_arch is None
    with pytest.raises(ConfigError, match="model.d_arch"):
        load_config("gan-2d", ["model.d_arch=dcgan"])
