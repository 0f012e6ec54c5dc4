"""Several networks on one task: MGAN's generators pooled for one discriminator, GMAN's
discriminators each on its own slice of the batch, and the 'which generator' head."""

from __future__ import annotations

import pytest
import torch

from mtgan.config import load_config
from mtgan.errors import ConfigError
from mtgan.nets.routing import task_samples, to_discriminators
from mtgan.training import Trainer
from mtgan.training.context import StepContext

FAST = ["data.limit=16", "train.progress=false", "train.precision=fp32", "model.z_dim=8"]
FAST += ["model.g_hidden=[16,16]", "model.d_hidden=[16,16]"]


def _context(trainer: Trainer, batch: int) -> StepContext:
    real = trainer.data.sample(batch, trainer.data_rng)
    z = torch.randn((trainer.model.num_generators, batch, trainer.model.z_dim))
    return StepContext(trainer.model, real, z, 0, trainer.noise_rng)


def test_mgan_pools_every_generator_for_the_one_discriminator():
    trainer = Trainer(
        load_config("mgan", [*FAST, "model.generators=4", "model.heads={generator: 4}"])
    )
    ctx = _context(trainer, 6)
    assert ctx.real_d.shape[:2] == (1, 6) and ctx.fake_d.shape[:2] == (1, 24)
    assert ctx.fake_owner.tolist() == [[g for g in range(4) for _ in range(6)]]
    torch.testing.assert_close(ctx.fake_d[0, 6:12], ctx.fake[1])  # generator 1's samples
    outputs = ctx.outputs("fake")
    assert outputs["adv"].shape == (1, 24) and outputs["generator"].shape == (1, 24, 4)


def test_gman_gives_each_discriminator_its_own_slice():
    trainer = Trainer(load_config("gman", FAST))
    ctx = _context(trainer, 10)
    assert ctx.real_d.shape[:2] == (5, 2) and ctx.fake_d.shape[:2] == (5, 2)
    torch.testing.assert_close(ctx.real_d[3], ctx.real[0, 6:8])
    assert ctx.disc_real().shape == (5, 2)
    with pytest.raises(ConfigError, match="split evenly over 5 discriminators"):
        _context(trainer, 8).real_d  # noqa: B018


def test_routing_is_the_identity_with_one_network_per_task():
    x = torch.randn(3, 4, 2)
    assert to_discriminators(x, [0, 1, 2], [0, 1, 2]) is x


def test_generator_id_trains_the_head_in_d_and_the_generators_in_g():
    overrides = [*FAST, "model.generators=3", "model.heads={generator: 3}", "loss.generator_id=1"]
    trainer = Trainer(load_config("mgan", overrides))
    ctx = _context(trainer, 4)
    d_phase, g_phase = trainer.phases
    head = trainer.model.heads["generator"].affine.weight
    d_grads = dict(
        zip(
            map(id, d_phase.params),
            d_phase.gradients(d_phase.objectives(ctx).losses["generator_id"].sum()),
        )
    )
    assert d_grads[id(head)].abs().sum() > 0
    g_loss = g_phase.objectives(ctx).losses["generator_id"].sum()
    g_grads = [g for g in g_phase.gradients(g_loss) if g is not None]
    assert g_grads and sum(g.abs().sum() for g in g_grads) > 0
    assert all(p is not head for p in g_phase.params)  # G's phase never steps the classifier


def test_gman_softmax_is_the_mean_at_zero_and_the_max_when_large():
    from mtgan.balance import build_balancer
    from mtgan.balance.base import Objectives

    v = torch.tensor([1.0, 2.0, 4.0], requires_grad=True)
    mean = build_balancer("gman", {"lam": 0.0}, "balance.g").combine(
        Objectives({"adversarial": v}, {"adversarial": 1.0})
    )
    assert mean.item() == pytest.approx(7 / 3)
    harsh = build_balancer("gman", {"lam": 50.0}, "balance.g").combine(
        Objectives({"adversarial": v}, {"adversarial": 1.0})
    )
    assert harsh.item() == pytest.approx(4.0, abs=1e-6)
    harsh.backward()
    assert v.grad[2] == pytest.approx(1.0, abs=1e-6) and v.grad[:2].abs().max() < 1e-6
    with pytest.raises(ConfigError, match="lam"):
        build_balancer("gman", {"lam": -1}, "balance.g")


def test_task_samples_interleave_generators_so_every_prefix_is_balanced():
    # 10 generators × 500 samples; the PacGAN metric scores the first 2,500 of the pool, which
    # must come from all ten generators equally, not from generators 0–4.
    out = torch.arange(10)[:, None, None].expand(10, 500, 2).float()
    pooled = task_samples(out, [0] * 10, task=0, n=2500)
    assert pooled.shape == (2500, 2)
    assert torch.bincount(pooled[:, 0].long(), minlength=10).tolist() == [250] * 10


def test_mgan_discriminator_sees_as_many_fakes_as_reals():
    # Generators of one task split its batch: 5 generators × 4 = 20 fakes against 20 reals.
    overrides = ["train.batch_size=20", "model.generators=5", "model.heads={generator: 5}"]
    trainer = Trainer(load_config("mgan", [*FAST, *overrides]))
    assert trainer.per_generator == 4
    seen = []
    hook = trainer.model.discriminator.blocks[0].register_forward_hook(
        lambda _m, args, _out: seen.append(args[0].shape[1])
    )
    trainer.train_step()
    hook.remove()
    assert seen[0] == 40  # the D phase: 20 reals and 20 fakes in one pass
