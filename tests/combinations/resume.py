"""The resume half of the combination matrix's bit-exact checks: a run stopped halfway,
checkpointed to disk and resumed in a fresh trainer must end as the uninterrupted run."""

from __future__ import annotations

from pathlib import Path

import torch

from mtgan.config import ExperimentConfig
from mtgan.training import RunDir, Trainer


def assert_resume_bit_exact(
    straight: Trainer, config: ExperimentConfig, steps: int, run_dir: Path
) -> dict[str, float]:
    """Assert `config` stopped halfway, saved and resumed ends as `straight`; return its record."""
    first = Trainer(config)
    for _ in range(steps // 2):
        first.train_step(record=True)
    first.save(RunDir(run_dir))
    resumed = Trainer(config)
    assert resumed.restore(RunDir(run_dir)) and resumed.step == steps // 2
    record: dict[str, float] = {}
    for _ in range(steps - steps // 2):
        record = resumed.train_step(record=True)
    a, b = straight.weights().state_dict(), resumed.weights().state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    return record
