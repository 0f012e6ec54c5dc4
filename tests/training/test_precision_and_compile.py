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
    with trainer.engine.autocast:
        logits = trainer.model.discriminate(x)
    assert logits.dtype == torch.float32


def _first_gradients(trainer: Trainer) -> list[list[torch.Tensor]]:
    """Every phase's gradients at the first step (taken as `apply` receives them)."""
    captured: list[list[torch.Tensor]] = []
    for phase in trainer.phases:
        original = phase.apply

        def capture(grads, skip=None, original=original):
            captured.append([g.detach().clone() for g in grads])
            original(grads, skip)

        phase.apply = capture
    trainer.train_step()
    return captured


@pytest.mark.slow
def test_compiled_networks_train_like_eager_ones(tiny):
    # What compile must preserve is the computation: the same gradients from the same weights,
    # up to float re-association, i.e. relative to each gradient's own scale. (Weights after a
    # few Adam steps are no measure: Adam turns a rounding difference on a near-zero gradient
    # into a sizeable fraction of a step, and how large depends on the CPU's summation order.)
    eager = _first_gradients(Trainer(load_config("pertask", tiny)))
    compiled = _first_gradients(Trainer(load_config("pertask", [*tiny, "train.compile=true"])))
    assert len(eager) == len(compiled) == 2
    for grads_e, grads_c in zip(eager, compiled):
        # the phase's largest gradient: a bias before a batch norm has a true gradient of 0,
        # computed as rounding noise of the sums that feed it
        scale = max(e.abs().max().item() for e in grads_e)
        for e, c in zip(grads_e, grads_c):
            torch.testing.assert_close(c, e, rtol=1e-3, atol=1e-5 * scale)
    trained_e, rec_e = _steps(tiny, 3)
    trained_c, rec_c = _steps([*tiny, "train.compile=true"], 3)
    assert list(trained_c.model.state_dict()) == list(trained_e.model.state_dict())
    for key in ("d/loss", "g/loss"):
        assert rec_c[-1][key] == pytest.approx(rec_e[-1][key], rel=1e-4, abs=1e-5)
