"""loss.augment's strength: a fixed p gates each transform per sample (ADA's p), and with
loss.augment_target p follows ADA's heuristic r_t = E[sign(D(real))], on the device, saved in
checkpoints. Equal splits (accumulate, 2 processes) are in tests/combinations."""

from __future__ import annotations

import math

import pytest
import torch

from mtgan.config import load_config
from mtgan.errors import ConfigError
from mtgan.objectives.augment import ADA_INTERVAL, TRANSFORMS, Augment
from mtgan.training import Trainer

TINY = [
    "data.tasks=[[0],[1]]",
    "data.per_task=4",  # 4 images a digit: D soon tells them from anything
    "train.batch_size=8",
    "train.progress=false",
    "train.precision=fp32",
    "train.device=cpu",
    "model.z_dim=8",
    "model.g_hidden=[32,32]",
    "model.d_hidden=[32,32]",
    "loss.augment=[translation,cutout]",
]


def _images(n: int = 64) -> torch.Tensor:
    return torch.rand((2, n, 1, 12, 12), generator=torch.Generator().manual_seed(1)) * 2 - 1


def _rows(aug: Augment, x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand((*x.shape[:2], aug.draws), generator=gen)


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_p_gates_each_transform_per_sample(name):
    x = _images()
    gated = Augment([name], p=0.5)
    assert gated.draws == TRANSFORMS[name].draws + 1  # one gate draw of its own
    u = _rows(gated, x)
    out = gated(x, u)
    hit = u[..., -1] < 0.5
    # where the gate is open: the transform with the same draws; elsewhere: untouched
    full = Augment([name])(x, u[..., :-1])
    assert torch.equal(out[hit], full[hit]) and torch.equal(out[~hit], x[~hit])
    assert 0.3 < hit.float().mean() < 0.7
    assert torch.equal(Augment([name], p=0.0)(x, u), x)


def test_p_of_one_draws_and_transforms_as_without_a_strength():
    x = _images()
    plain = Augment(["color", "translation", "cutout"])
    assert plain.draws == 7 and not plain.gated
    u = _rows(plain, x)
    assert torch.equal(Augment(["color", "translation", "cutout"], p=1.0)(x, u), plain(x, u))


def test_ada_moves_p_towards_the_target_every_interval_within_0_and_1():
    aug = Augment(["cutout"], p=0.0, target=0.6, ramp=40)
    notch = ADA_INTERVAL / 40
    sure = torch.full((2, 8), 3.0)  # D calls every real image real: r_t = 1 > 0.6
    for step in range(3 * ADA_INTERVAL):
        aug.observe(sure)
        aug.adjust(step, lambda t: t)
    assert aug.p.item() == pytest.approx(3 * notch) and aug.rt.item() == 1.0
    unsure = torch.tensor([[1.0, 1.0, -1.0, -1.0, -1.0]])  # r_t = −0.2 < 0.6
    for step in range(3 * ADA_INTERVAL, 8 * ADA_INTERVAL):
        aug.observe(unsure)
        aug.adjust(step, lambda t: t)
    assert aug.p.item() == 0.0 and aug.rt.item() == pytest.approx(-0.2)
    # exactly at the target (3 of 4 positive: r_t = 0.5), p stays
    level = Augment(["cutout"], p=0.5, target=0.5, ramp=40)
    for step in range(ADA_INTERVAL):
        level.observe(torch.tensor([[1.0, 1.0, 1.0, -1.0]]))
        level.adjust(step, lambda t: t)
    assert level.p.item() == 0.5 and level.rt.item() == 0.5


def test_a_run_that_overfits_raises_p_logs_it_and_resumes_it(tmp_path):
    config = load_config("pertask", [*TINY, "loss.augment_target=0.6", "loss.augment_ramp=100"])
    trainer = Trainer(config)
    aug = trainer.micro.augment
    assert aug is not None and aug.adaptive and aug.p.item() == 0.0
    record: dict[str, float] = {}
    for _ in range(60):
        record = trainer.train_step(record=True)
    # a D that has 4 images a digit to learn is sure of them: r_t above 0.6, p up
    assert record["augment/rt"] > 0.6 and record["augment/p"] > 0.0
    assert record["augment/p"] == pytest.approx(aug.p.item())
    assert all(math.isfinite(v) for v in record.values())
    state = trainer.state_dict()
    again = Trainer(config)
    again.load_state_dict(state)
    assert torch.equal(again.micro.augment.p, aug.p)
    assert torch.equal(again.micro.augment.signs, aug.signs)


def test_a_strength_without_transforms_names_the_fields():
    with pytest.raises(ConfigError, match=r"augment_target=0.6 .* but loss.augment is \[\]"):
        load_config("pertask", ["loss.augment_target=0.6"])
    with pytest.raises(ConfigError, match=r"augment_p=0.5 .* but loss.augment is \[\]"):
        load_config("pertask", ["loss.augment_p=0.5"])
    with pytest.raises(ConfigError, match="loss.augment_p"):
        load_config("pertask", ["loss.augment=[cutout]", "loss.augment_p=1.5"])
