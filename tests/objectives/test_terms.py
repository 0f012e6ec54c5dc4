"""Terms are built from the config through the registry, never by the trainer."""

from __future__ import annotations

import pytest

from mtgan.config import load_config
from mtgan.errors import ConfigError
from mtgan.objectives.terms import build_terms


def _names(overrides):
    return {
        (t.phase, t.name, t.weight, t.every) for t in build_terms(load_config("pertask", overrides))
    }


def test_default_terms_are_the_adversarial_pair():
    assert _names([]) == {("d", "adversarial", 1.0, 1), ("g", "adversarial", 1.0, 1)}


def test_penalties_join_the_d_phase_with_their_weights():
    terms = _names(["loss.gp=10", "loss.r1=2", "loss.r1_every=8"])
    assert ("d", "gp", 10.0, 1) in terms
    assert ("d", "gp", 40.0, 4) in _names(["loss.gp=10", "loss.gp_every=4"])  # lazy GP
    # lazy R1: γ/2 scaled by the interval, evaluated every 8 steps
    assert ("d", "r1", 8.0, 8) in terms


def test_networks_must_be_one_per_task_or_all_on_one_task():
    from mtgan.nets import MultiGAN

    config = load_config("pertask", ["model.generators=3"])
    with pytest.raises(ConfigError, match="model.generators=3 does not fit 10 tasks"):
        MultiGAN(config.model, (1, 28, 28), 10)
    single = load_config("baseline", ["model.generators=3", "model.discriminators=2"])
    model = MultiGAN(single.model, (1, 28, 28), 1)
    assert model.generator_tasks == [0, 0, 0] and model.discriminator_tasks == [0, 0]


def test_generator_id_declares_its_head_sized_by_the_generators():
    from mtgan.nets import MultiGAN
    from mtgan.objectives.terms import declared_heads

    config = load_config("baseline", ["model.generators=4", "loss.generator_id=0.1"])
    model = MultiGAN(config.model, (1, 28, 28), 1, heads=declared_heads(config))
    assert model.heads["generator"].affine.out_features == 4
    assert {t.head for t in build_terms(config) if t.name == "generator_id"} == {"generator"}
    terms = _names(["model.generators=4", "model.heads={generator: 4}", "loss.generator_id=0.1"])
    assert ("g", "generator_id", 0.1, 1) in terms and ("d", "generator_id", 1.0, 1) in terms
