"""Every shipped preset builds, shares what it says it shares, and trains a few steps."""

from __future__ import annotations

import pytest
import torch

from mtgan.config import load_config, preset_names
from mtgan.training import Trainer

FAST = ["data.limit=16", "train.batch_size=20", "train.progress=false", "train.precision=fp32"]


@pytest.mark.parametrize("name", preset_names())
def test_preset_trains_a_few_steps_and_changes_both_families(name):
    trainer = Trainer(load_config(name, FAST))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    for _ in range(2):
        trainer.train_step()
    after = trainer.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert any(k.startswith("generator.") for k in changed), name
    assert any(k.startswith("discriminator.") for k in changed), name


@pytest.mark.parametrize("name", ["cogan-edges", "cogan-negative"])
def test_cogan_shares_all_but_the_last_g_layer_and_the_first_d_layer(name):
    trainer = Trainer(load_config(name, FAST))
    g, d = trainer.model.generator.blocks, trainer.model.discriminator.blocks
    assert [b.shared for b in g[:-1]] == [True] * (len(g) - 1) and not g[-1].shared
    assert [b.shared for b in d] == [False, True, True]
    assert trainer.data.names == ["all", f"all/{name.split('-')[1]}"]
    # disjoint halves: no source image in both domains
    first, second = (
        set(trainer.data.source[o : o + c].tolist())
        for o, c in zip(trainer.data.offsets.tolist(), trainer.data.counts.tolist())
    )
    assert not first & second
    # the same z through both generators (the coupling), in training and in the sample grids
    assert torch.equal(trainer.fixed_z[0], trainer.fixed_z[1])


def test_seed_gd_ties_a_generator_layer_to_a_discriminator_layer():
    trainer = Trainer(load_config("seed-gd", FAST))
    tied = trainer.model.generator.blocks[1].affine
    assert tied is trainer.model.discriminator.blocks[1].affine
    assert tied.weight.shape == (10, 256, 256)
    before = tied.weight.detach().clone()
    d_phase = trainer.phases[0]
    trainer.train_step()
    assert not torch.equal(before, tied.weight)
    assert any(p is tied.weight for p in d_phase.params)
