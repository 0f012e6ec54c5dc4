"""The `cgan` preset: a class-conditional GAN (SNGAN-projection) as a share-everything
multi-task GAN. One task per digit class; the generators share every layer and keep γ, β per
task (conditional batch norm); the discriminators share all but their last layer, whose
task-own weight is the projection ψ + embed(y); hinge loss, spectral norm in D."""

from __future__ import annotations

import math

import pytest
import torch
from matrix import COMMON

from mtgan import api
from mtgan.config import load_config
from mtgan.nets import MultiGAN

MNIST = (1, 28, 28)
SMALL = ["model.z_dim=8", "model.g_hidden=[16,32]", "model.d_hidden=[32,16]"]


@pytest.fixture
def cgan() -> MultiGAN:
    torch.manual_seed(0)
    return MultiGAN(load_config("cgan", SMALL).model, MNIST, 10)


def test_cgan_is_one_task_per_class_with_pertasks_networks_hinge_and_spectral_norm():
    cgan, pertask = load_config("cgan"), load_config("pertask")
    assert cgan.data.tasks == pertask.data.tasks == "classes"
    for field in ("arch", "z_dim", "g_hidden", "d_hidden"):
        assert getattr(cgan.model, field) == getattr(pertask.model, field), field
    assert (cgan.train.steps, cgan.train.batch_size, cgan.train.ema) == (
        pertask.train.steps,
        pertask.train.batch_size,
        pertask.train.ema,
    )
    assert cgan.loss.adversarial == "hinge"
    assert cgan.model.g_norm == "conditional" and cgan.model.d_norm == "spectral"
    assert not cgan.model.conditional  # the class is the task: no one-hot input (that is acgan)


def test_generator_shares_every_layer_and_discriminator_all_but_the_projection(cgan):
    rows: dict = {}
    for r in cgan.ownership():  # a layer's first row: its weights
        rows.setdefault((r.family, r.layer), r)
    assert [rows["g", i].shared for i in range(3)] == [True, True, True]
    assert [rows["d", i].shared for i in range(3)] == [True, True, False]
    assert rows["d", 2].owners == "own (10 copies)" and rows["d", 2].numel == 10 * (16 + 1)
    assert all(block.plan.spectral for block in cgan.discriminator.blocks)
    assert [b.plan.norm for b in cgan.generator.blocks] == ["conditional", "conditional", "none"]


def test_task_own_last_layer_is_the_projection_discriminator(cgan):
    """D_y(x) = ψ(φ(x)) + ⟨embed_y, φ(x)⟩ + b_y, with ψ the tasks' mean weight and embed_y
    each task's difference from it: the projection is the task-own last layer, exactly."""
    cgan.eval()  # spectral norm's power iteration stays put
    x = torch.randn(10, 5, *MNIST)
    phi = cgan.discriminator.features(x)  # (K, B, 16): the shared trunk φ
    last = cgan.discriminator.blocks[-1].affine
    w, b = last.weight[..., 0], last.bias[:, 0, 0]  # (K, 16) after spectral norm, (K,)
    psi, embed = w.mean(0), w - w.mean(0)
    projection = phi @ psi + (embed[:, None] * phi).sum(-1) + b[:, None]
    torch.testing.assert_close(cgan.discriminate(x), projection)
    assert not torch.allclose(embed, torch.zeros_like(embed))  # the classes' embeddings differ


def test_cgan_gamma_beta_are_its_only_task_own_generator_parameters(cgan):
    own = [p for b in cgan.generator.blocks for p in b.own_parameters()]
    norms = [b.norm for b in cgan.generator.blocks[:-1]]
    assert {id(p) for p in own} == {id(p) for n in norms for p in (n.weight, n.bias)}
    assert sum(p.numel() for p in own) == 2 * 10 * (16 + 32)


def test_describe_counts_the_per_task_gamma_beta_as_task_own(cgan):
    own = sum(r.numel for r in cgan.ownership() if not r.shared)
    assert own == 10 * (16 + 1) + 2 * 10 * (16 + 32)


@pytest.mark.slow
def test_training_cgan_through_the_api_gives_finite_losses(tmp_path):
    # the combination matrix's common overrides, at a batch of 8 (later overrides win)
    overrides = [*SMALL, *COMMON, "data.limit=20", "train.steps=4", "train.batch_size=8"]
    run = api.train("cgan", overrides, out=tmp_path / "cgan", quiet=True)
    assert run.step == 4 and run.task_names == [f"digit {c}" for c in range(10)]
    losses = [
        (k, v)
        for record in run.metrics()
        for k, v in record.items()
        if k.startswith(("d/", "g/")) and "loss" in k
    ]
    assert {k for k, _ in losses} >= {"d/loss", "g/loss"}, sorted({k for k, _ in losses})
    assert all(math.isfinite(v) for _, v in losses)
    samples = torch.stack([run.sample(k, n=4) for k in range(10)])  # the EMA generators'
    assert samples.shape == (10, 4, *MNIST) and torch.isfinite(samples).all()
    assert not torch.equal(samples[0], samples[1])  # conditional γ, β: tasks differ
