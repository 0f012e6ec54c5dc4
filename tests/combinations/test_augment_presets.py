"""`loss.augment` (DiffAugment) is an axis of the combination matrix: every preset on images
trains with every transform, and a run stopped, checkpointed and resumed ends bit for bit as the
uninterrupted one (ADA's p with it); a preset on 2D points refuses it at config time. The draws
follow the global batch: train.accumulate=2 gives the unsplit step, and 2 processes give 1
process's (slow), ADA's p included."""

from __future__ import annotations

import math

import pytest
from augment_worker import SETUPS, STEPS, augment_config
from matrix import AUGMENT, PRESETS, on_images, tiny
from resume import assert_resume_bit_exact
from two_processes import assert_two_equal_one, max_diff, trained

from mtgan.config import load_config
from mtgan.errors import ConfigError
from mtgan.training import Trainer

TOLERANCE = 1e-5
RESUME_STEPS = 4  # lazy R1 every 2nd step: once before the checkpoint, once after


def _run(trainer: Trainer, steps: int) -> dict[str, float]:
    record: dict[str, float] = {}
    for _ in range(steps):
        record = trainer.train_step(record=True)
    return record


@pytest.mark.parametrize("preset", PRESETS)
def test_every_image_preset_trains_and_resumes_bit_exact_with_augment(tmp_path, preset):
    overrides = tiny(preset, AUGMENT, "loss.r1=1", "loss.r1_every=2")
    if not on_images(preset):
        with pytest.raises(ConfigError, match=r"loss\.augment=.* is 2D points"):
            load_config(preset, overrides)
        return
    config = load_config(preset, overrides)
    straight = Trainer(config)
    assert straight.micro.augment is not None
    last = _run(straight, RESUME_STEPS)
    assert straight.skipped == 0 and all(math.isfinite(v) for v in last.values())
    assert any(p.name == "d_reg" for p in straight.phases)
    assert_resume_bit_exact(straight, config, RESUME_STEPS, tmp_path)


def test_ada_resumes_bit_exact_with_its_p_and_signs(tmp_path):
    config = augment_config("pertask-ada")
    straight = Trainer(config)
    _run(straight, STEPS)
    assert straight.micro.augment is not None and straight.micro.augment.p.item() != 0.5
    assert_resume_bit_exact(straight, config, STEPS, tmp_path)


def test_augment_changes_what_training_does():
    plain = trained(load_config("pertask", tiny("pertask")), 2)
    augmented = trained(load_config("pertask", tiny("pertask", AUGMENT)), 2)
    assert max_diff(plain, augmented) > 1e-4


@pytest.mark.parametrize("setup", list(SETUPS))
def test_accumulating_with_augment_equals_the_unsplit_step(setup):
    whole = trained(augment_config(setup, 1), 4)
    split = trained(augment_config(setup, 2), 4)
    diff = max_diff(whole, split)
    print(f"{setup} augment, accumulate=2 vs 1: max |Δw| = {diff:.2e}")
    assert diff < TOLERANCE


@pytest.mark.slow
def test_two_processes_with_augment_equal_one_process(tmp_path):
    # each setup on 2 gloo processes (pertask-accumulate: × 2 micro-batches each) against one
    # unsplit process
    configs = {s: augment_config(s, SETUPS[s][2]) for s in SETUPS}
    unsplit = {s: augment_config(s, 1) for s in SETUPS}
    assert_two_equal_one(
        "augment_worker.py", tmp_path, configs, STEPS, TOLERANCE, one_process=unsplit
    )
