"""The matrix reaches a loss term only through the presets that switch it on (and the
penalty axis): a registered term that none does is never tried with a balancer, a schedule,
augmentation, resume or 2 processes. Every term must be on somewhere."""

from __future__ import annotations

from matrix import PENALTIES, PRESETS, tiny

from mtgan.config import load_config
from mtgan.objectives.terms import TERM_BUILDERS


def test_every_registered_term_is_on_in_some_preset_of_the_matrix():
    on = set()
    for preset in PRESETS:
        for penalty in PENALTIES.values():
            config = load_config(preset, tiny(preset, *penalty))
            on |= {name for name, build in TERM_BUILDERS.items() if build(config)}
    assert set(TERM_BUILDERS) <= on, f"terms no preset switches on: {set(TERM_BUILDERS) - on}"
