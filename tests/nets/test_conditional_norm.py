"""`model.g_norm=conditional`: batch norm whose γ and β are per task even in a shared layer
(conditional batch norm), so a generator with every layer shared still differs by task, and
each task's γ, β reach that task's samples only."""

from __future__ import annotations

import pytest
import torch

from mtgan.config import load_config
from mtgan.errors import ConfigError
from mtgan.nets import MultiGAN
from mtgan.nets.blocks import Block, LayerPlan

MNIST = (1, 28, 28)
TASKS = 4
SMALL = ["model.z_dim=8", "model.g_hidden=[16,32]", "model.d_hidden=[32,16]"]


def build(norm: str, share: str = "all") -> MultiGAN:
    torch.manual_seed(0)  # the same initial weights for every norm
    overrides = [*SMALL, f"model.g_norm={norm}", f"model.share.generator={share}"]
    return MultiGAN(load_config("pertask", overrides).model, MNIST, TASKS)


def _norm(model: MultiGAN, layer: int = 0):
    norm = model.generator.blocks[layer].norm
    assert norm is not None
    return norm


def test_a_wrong_norm_name_is_a_config_error_naming_the_allowed_ones():
    with pytest.raises(ConfigError, match="model.g_norm") as e:
        load_config("pertask", ["model.g_norm=cbn"])
    assert all(name in str(e.value) for name in ("'none'", "'batch'", "'conditional'"))


@pytest.mark.parametrize(("norm", "rows"), [("batch", 1), ("conditional", TASKS)])
def test_a_shared_layer_keeps_one_gamma_beta_with_batch_and_one_per_task_with_conditional(
    norm, rows
):
    model = build(norm)
    for block in model.generator.blocks[:-1]:
        assert block.shared
        assert block.norm.weight.shape == block.norm.bias.shape == (rows, block.plan.out_shape[0])


def test_conditional_norm_in_a_task_own_layer_is_plain_per_task_batch_norm():
    # stacked layers have γ, β per network already; `conditional` changes nothing there
    cond, batch = build("conditional", "none"), build("batch", "none")
    assert cond.generator.blocks[0].norm.weight.shape == (TASKS, 16)
    z = torch.randn(TASKS, 5, 8)
    torch.testing.assert_close(cond.generate(z), batch.generate(z))


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("layer", [0, 1])
def test_changing_task_k_gamma_changes_only_task_ks_samples(mode, layer):
    model = build("conditional")
    model.train(mode == "train")
    z = torch.randn(1, 6, 8).expand(TASKS, 6, 8)  # the same noise for every task
    before = model.generate(z).detach()
    assert all(torch.equal(before[0], before[k]) for k in range(1, TASKS))  # γ=1, β=0 at init
    with torch.no_grad():
        _norm(model, layer).weight[2] += 0.5
    after = model.generate(z).detach()
    assert not torch.allclose(after[2], before[2])
    for k in (0, 1, 3):
        assert torch.equal(after[k], before[k]), k


def test_with_batch_norm_a_fully_shared_generator_gives_every_task_the_same_samples():
    # the contrast: shared γ, β leave the generator no way to tell its tasks apart
    model = build("batch")
    with torch.no_grad():
        _norm(model).weight += torch.rand_like(_norm(model).weight)
    z = torch.randn(1, 6, 8).expand(TASKS, 6, 8)
    out = model.generate(z)
    assert all(torch.equal(out[0], out[k]) for k in range(1, TASKS))


def test_task_k_loss_reaches_task_ks_gamma_beta_and_no_other_tasks():
    model = build("conditional")
    model.generate(torch.randn(TASKS, 6, 8))[1].square().sum().backward()
    norm = _norm(model)
    for grad in (norm.weight.grad, norm.bias.grad):
        assert grad[1].abs().sum() > 0
        assert torch.equal(grad[[0, 2, 3]], torch.zeros_like(grad[[0, 2, 3]]))
    assert model.generator.blocks[0].affine.weight.grad.abs().sum() > 0  # the shared weights too


def test_block_splits_a_shared_layer_into_shared_weights_and_task_own_gamma_beta():
    plan = LayerPlan("linear", (8,), (16,), activation="relu", norm="conditional")
    block = Block(plan, None, family=TASKS)
    assert [tuple(p.shape) for p in block.own_parameters()] == [(TASKS, 16), (TASKS, 16)]
    assert {id(p) for p in block.shared_parameters()} == {
        id(block.affine.weight),
        id(block.affine.bias),
    }
    assert "cond. batchnorm" in plan.describe()
    batch = Block(LayerPlan("linear", (8,), (16,), norm="batch"), None, family=TASKS)
    assert batch.own_parameters() == [] and len(batch.shared_parameters()) == 4
    stacked = Block(plan, TASKS)
    assert len(stacked.own_parameters()) == 4 and stacked.shared_parameters() == []


def test_own_and_shared_parameters_partition_every_block_of_the_cgan_preset():
    model = MultiGAN(load_config("cgan", SMALL).model, MNIST, TASKS)
    for net in (model.generator, model.discriminator):
        for block in net.blocks:
            own, shared = block.own_parameters(), block.shared_parameters()
            assert {id(p) for p in own} | {id(p) for p in shared} == {
                id(p) for p in block.parameters()
            }
            assert not {id(p) for p in own} & {id(p) for p in shared}
    own_g = sum(p.numel() for b in model.generator.blocks for p in b.own_parameters())
    assert own_g == 2 * TASKS * (16 + 32)  # γ and β of both hidden layers, per task
