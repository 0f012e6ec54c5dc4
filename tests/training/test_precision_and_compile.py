"""bf16 autocast and torch.compile are options that must not change what is trained."""

from __future__ import annotations

import pytest
import torch

from mtgan.config import load_config
from mtgan.training import Trainer


def _steps(overrides: list[str], n: int) -> tuple[Trainer, list[dict[str, float]]]:
    trainer = Trainer(load_config("pertask", overrides))
    return trainer, [trainer.train_step(record=True) for _ in range(n)]


def test_bf16_autocast_follows_the_fp32_run_closely(tiny):
    fp32, rec32 = _steps(tiny, 5)
    bf16, rec16 = _steps([*tiny, "train.precision=bf16"], 5)
    # Same first losses up to bfloat16 rounding (8 bits of mantissa: ~0.4 % per product).
    for key in ("d/loss", "g/loss"):
        assert rec16[0][key] == pytest.approx(rec32[0][key], rel=0.05), key
    # After 5 Adam steps of lr 2e-4 the weights have moved by ~1e-3; bf16 may differ by less.
    lr = fp32.config.train.lr_g
    for (name, a), b in zip(fp32.model.state_dict().items(), bf16.model.state_dict().values()):
        if a.is_floating_point():
            assert (a - b).abs().max() <= 10 * lr, name
    assert all(torch.isfinite(torch.tensor(list(r.values()))).all() for r in rec16)


def test_bf16_logits_reach_the_losses_in_float32(tiny):
    trainer = Trainer(load_config("pertask", [*tiny, "train.precision=bf16"]))
    x = trainer.data.sample(4, trainer.data_rng)
    with trainer.autocast:
        logits = trainer.model.discriminate(x)
    assert logits.dtype == torch.float32


@pytest.mark.slow
def test_compiled_networks_train_like_eager_ones(tiny):
    eager, rec_e = _steps(tiny, 3)
    compiled, rec_c = _steps([*tiny, "train.compile=true"], 3)
    assert list(compiled.model.state_dict()) == list(eager.model.state_dict())
    for key in ("d/loss", "g/loss"):
        assert rec_c[-1][key] == pytest.approx(rec_e[-1][key], rel=1e-4, abs=1e-5)
    # Fused kernels re-associate float sums; Adam turns a tiny gradient difference on a
    # near-zero gradient into a visible fraction of one step (lr = 2e-4): allow half a step.
    lr = eager.config.train.lr_g
    for a, b in zip(eager.model.state_dict().values(), compiled.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=lr / 2)
