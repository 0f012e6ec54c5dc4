"""Every term of every preset reaches the parameters it should and no others, and the family
presets share what they say they share."""

from __future__ import annotations

import pytest
import torch

from mtgan.config import load_config, preset_names
from mtgan.training import Trainer
from mtgan.training.context import StepContext

FAST = ["data.limit=16", "train.batch_size=20", "train.progress=false", "train.precision=fp32"]


def _context(trainer: Trainer) -> StepContext:
    real, labels = trainer.data.sample_labelled(20, trainer.data_rng)
    m = trainer.model
    z = torch.randn(m.num_generators, trainer.per_generator, m.z_dim)
    fake_labels = None
    if m.num_classes:
        fake_labels = torch.randint(m.num_classes, (m.num_generators, trainer.per_generator))
    return StepContext(m, real, z, 0, trainer.noise_rng, labels, fake_labels)


def test_the_step_context_provides_what_terms_read():
    from mtgan.objectives.context import TermContext

    assert isinstance(_context(Trainer(load_config("acgan", FAST))), TermContext)


def _reached(loss: torch.Tensor, params: list[torch.nn.Parameter]) -> bool:
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return any(g is not None and g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", preset_names())
def test_each_term_reaches_its_phase_and_only_its_own_head(name):
    torch.manual_seed(0)
    trainer = Trainer(load_config(name, FAST))
    m = trainer.model
    discriminator = list(m.discriminator.parameters())
    # a layer tied between G and D (seed-gd) belongs to both phases: leave it out of "G only"
    generator = [p for p in m.generator.parameters() if all(p is not q for q in discriminator)]
    for term in trainer.terms:
        loss = term.fn(_context(trainer)).sum()
        if term.phase == "d":
            # fakes are constants in the D phase: no gradient may reach a generator
            assert not _reached(loss, generator), (name, term.name)
            assert _reached(loss, discriminator) or term.head is not None, (name, term.name)
        else:
            assert _reached(loss, generator), (name, term.name)
        for head, module in m.heads.items():
            uses = term.head == head  # each term reaches the head it declares, and no other
            assert _reached(loss, list(module.parameters())) == uses, (name, term.name, head)


def _shared(net) -> list[bool]:
    return [block.shared for block in net.blocks]


def test_family_presets_share_what_they_say():
    built = {n: Trainer(load_config(n, FAST)).model for n in ["mgan", "madgan", "gman", "acgan"]}
    # MGAN: each generator its own first layer, the rest one set of weights
    assert _shared(built["mgan"].generator) == [False, True, True]
    assert built["mgan"].generator.blocks[0].affine.weight.shape[0] == 10
    # MAD-GAN: all but the last generator layer shared; a 5-way source head
    assert _shared(built["madgan"].generator) == [True, True, False]
    assert built["madgan"].heads["source"].affine.out_features == 5
    # GMAN: one generator, five discriminators with nothing shared
    assert built["gman"].num_generators == 1 and built["gman"].num_discriminators == 5
    assert _shared(built["gman"].discriminator) == [False, False, False]
    # AC-GAN: the generator reads z and a one-hot class; D has a 10-way class head
    first = built["acgan"].generator.blocks[0].affine
    assert first.in_features == 100 + 10
    assert built["acgan"].heads["class"].affine.out_features == 10


def test_acgan_samples_follow_the_label_asked_for():
    trainer = Trainer(load_config("acgan", FAST))
    z = torch.randn(1, 4, trainer.model.z_dim)
    a = trainer.generate(z, labels=torch.zeros(1, 4, dtype=torch.long))
    b = trainer.generate(z, labels=torch.full((1, 4), 7))
    assert not torch.equal(a, b)  # the class is an input: same z, other class, other image
