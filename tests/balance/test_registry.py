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
