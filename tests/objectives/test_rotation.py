"""SS-GAN's rotation task: labels, gradients where they belong, clear errors."""

from __future__ import annotations

import pytest
import torch

from mtgan.config import load_config
from mtgan.errors import ConfigError
from mtgan.objectives.terms import rotations
from mtgan.training import Trainer
from mtgan.training.context import StepContext

FAST = ["data.limit=16", "train.batch_size=4", "train.progress=false", "train.precision=fp32"]


def test_rotations_turn_every_image_four_ways_with_labels():
    x = torch.arange(2 * 3 * 1 * 2 * 2, dtype=torch.float32).reshape(2, 3, 1, 2, 2)
    turned, labels = rotations(x)
    assert turned.shape == (2, 12, 1, 2, 2) and labels.shape == (2, 12)
    assert labels[0].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    torch.testing.assert_close(turned[:, 3:6], torch.rot90(x, 1, dims=(-2, -1)))
    torch.testing.assert_close(turned[:, :3], x)


def test_d_learns_rotations_of_real_images_and_g_of_its_fakes():
    trainer = Trainer(load_config("ssgan", FAST))
    real = trainer.data.sample(4, trainer.data_rng)
    z = torch.randn((1, 4, trainer.model.z_dim))
    ctx = StepContext(trainer.model, real, z, 0, trainer.noise_rng)
    d_phase, g_phase = trainer.phases
    head = trainer.model.heads["rotation"].affine.weight
    d_loss = d_phase.objectives(ctx).losses["rotation"]
    assert d_loss.shape == (1,) and d_loss.item() > 0
    d_grads = dict(zip(map(id, d_phase.params), d_phase.gradients(d_loss.sum())))
    assert d_grads[id(head)].abs().sum() > 0
    g_grads = g_phase.gradients(g_phase.objectives(ctx).losses["rotation"].sum())
    assert sum(g.abs().sum() for g in g_grads if g is not None) > 0
    weights = {(t.phase, t.name): t.weight for t in trainer.terms}
    assert weights[("d", "rotation")] == 1.0 and weights[("g", "rotation")] == 0.2


def test_rotation_builds_its_own_head_and_needs_images():
    config = load_config("baseline", [*FAST, "loss.rotation_d=1"])
    assert Trainer(config).model.heads["rotation"].affine.out_features == 4
    with pytest.raises(ConfigError, match="model.heads.rotation=3, but the loss"):
        Trainer(load_config("baseline", [*FAST, "loss.rotation_d=1", "model.heads={rotation: 3}"]))
    trainer = Trainer(load_config("ssgan", [*FAST, "data.name=ring8", "data.n_points=200"]))
    with pytest.raises(ConfigError, match="square images"):
        trainer.train_step()
