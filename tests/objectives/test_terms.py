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
    # lazy R1: γ/2 scaled by the interval, evaluated every 8 steps
    assert ("d", "r1", 8.0, 8) in terms


def test_adversarial_pairs_need_one_network_per_task():
    with pytest.raises(ConfigError, match="model.generators"):
        build_terms(load_config("pertask", ["model.generators=3"]))
