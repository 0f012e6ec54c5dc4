"""The resnet backbone (a factory on mtgan.nets.protocol, written as a user would) beside the
image presets: 2 processes equal 1 (batch norm synchronised). Its layouts and resume are in
test_layout_presets.py; a user's own factory in tests/nets/test_own_networks.py."""

from __future__ import annotations

import pytest
import torch
from resnet_worker import PRESETS, STEPS, resnet_config
from two_processes import assert_two_equal_one

from mtgan.training import Trainer

# Adam's first steps move a parameter by about ±lr whatever its gradient's size, so one whose
# gradient is zero up to float rounding (summed in another order over 2 processes) can end 2·lr
# apart: 4e-4. Unsynchronised batch norm, what this must catch, ends 3–4e-2 apart (measured
# with train.sync_bn=false in the worker, 2026-12-07); the built-in MLP presets agree to 1e-5.
TOLERANCE = 2 * 2e-4


@pytest.mark.parametrize("preset", PRESETS)
def test_resnet_builds_and_trains_under_each_image_preset(preset):
    trainer = Trainer(resnet_config(preset))
    record = [trainer.train_step(record=True) for _ in range(2)][-1]
    assert record["skipped"] == 0
    assert torch.isfinite(torch.tensor(list(record.values()))).all()


@pytest.mark.slow
def test_two_processes_equal_one_with_resnet(tmp_path):
    configs = {preset: resnet_config(preset) for preset in PRESETS}
    assert_two_equal_one("resnet_worker.py", tmp_path, configs, STEPS, TOLERANCE, "resnet")
