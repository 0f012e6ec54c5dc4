"""The resnet backbone (a factory on mtgan.nets.protocol, written as a user would) beside the
image presets: 2 processes equal 1 (batch norm synchronised). Its layouts and resume are in
test_layout_presets.py; a user's own factory in tests/nets/test_own_networks.py."""

from __future__ import annotations

import pytest
import torch
from resnet_worker import PRESETS, STEPS, resnet_config
from two_processes import launch, max_diff, trained, without_margin_bias

from mtgan.training import Trainer

TOLERANCE = 1e-5


@pytest.mark.parametrize("preset", PRESETS)
def test_resnet_builds_and_trains_under_each_image_preset(preset):
    trainer = Trainer(resnet_config(preset))
    record = [trainer.train_step(record=True) for _ in range(2)][-1]
    assert record["skipped"] == 0
    assert torch.isfinite(torch.tensor(list(record.values()))).all()


@pytest.mark.slow
def test_two_processes_equal_one_with_resnet(tmp_path):
    launch("resnet_worker.py", tmp_path)
    for preset in PRESETS:
        config = resnet_config(preset)
        one = without_margin_bias(trained(config, STEPS), config)
        two = without_margin_bias(torch.load(tmp_path / f"{preset}.pt", weights_only=True), config)
        diff = max_diff(one, two)
        print(f"resnet {preset}: 2 processes vs 1: max |Δw| = {diff:.2e}")
        assert diff < TOLERANCE, preset
