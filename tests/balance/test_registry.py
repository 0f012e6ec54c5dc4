"""The balancer registry and the default balancer."""

from __future__ import annotations

import pytest
import torch

from mtgan.balance import BALANCERS, FixedWeights, build_balancer
from mtgan.balance.base import Objectives
from mtgan.errors import ConfigError


def test_fixed_weights_sums_weighted_task_losses():
    losses = {"adversarial": torch.tensor([1.0, 2.0, 3.0]), "gp": torch.tensor([0.5, 0.5, 1.0])}
    total = FixedWeights().combine(Objectives(losses, {"adversarial": 1.0, "gp": 10.0}))
    assert total.item() == pytest.approx(6.0 + 20.0)


def test_fixed_weights_gives_each_task_its_own_gradient_scale():
    w = torch.ones(3, requires_grad=True)
    losses = {"adversarial": w * torch.tensor([1.0, 2.0, 3.0])}
    FixedWeights().combine(Objectives(losses, {"adversarial": 2.0})).backward()
    assert torch.equal(w.grad, torch.tensor([2.0, 4.0, 6.0]))


def test_unknown_balancer_names_the_field_and_the_choices():
    with pytest.raises(ConfigError, match=r"balance\.g: unknown balancer 'pcgrd'.*fixed"):
        build_balancer("pcgrd", {}, "balance.g")
    assert "fixed" in BALANCERS


def test_unexpected_option_is_a_config_error():
    with pytest.raises(ConfigError, match="balance.d_options"):
        build_balancer("fixed", {"alpha": 1}, "balance.d")


def test_options_belong_to_the_balancer_they_name():
    options = {"gman": {"lam": 2.0}, "pcgrad": {"seed": 3}}
    assert build_balancer("gman", options, "balance.g").lam == 2.0
    assert build_balancer("pcgrad", {"gman": {"lam": 2.0}}, "balance.g").name == "pcgrad"
    with pytest.raises(ConfigError, match=r"'pcgrad' has no option lam; its options are at, seed"):
        build_balancer("pcgrad", {"lam": 2.0}, "balance.g")


def test_a_preset_balancer_option_does_not_follow_the_user(tiny):
    from mtgan.config import load_config
    from mtgan.training import Trainer

    config = load_config("gman", [*tiny, "data.tasks=single", "balance.g=pcgrad"])
    config = load_config(config, ["train.batch_size=10"])  # 5 discriminators split it
    assert config.balance.g_options == {"gman": {"lam": 1.0}}
    trainer = Trainer(config)
    assert trainer.phases[-1].balancer.name == "pcgrad"
    assert trainer.train_step(record=True)["g/weight/adversarial/d4"] > 0


def test_a_balancer_state_for_other_objectives_is_refused_on_resume(tmp_path, tiny):
    from mtgan.config import load_config
    from mtgan.errors import RunError
    from mtgan.training import RunDir, Trainer

    trainer = Trainer(load_config("pertask", [*tiny, "balance.d=dwa"]))
    trainer.train_step()
    trainer.save(RunDir(tmp_path))
    other = Trainer(load_config("pertask", [*tiny, "balance.d=dwa", "loss.gp=1"]))
    with pytest.raises(RunError, match=r"phase 'd'.*missing: \['gp/task0'"):
        other.restore(RunDir(tmp_path))
