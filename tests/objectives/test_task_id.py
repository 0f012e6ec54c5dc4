"""loss.task_id: AC-GAN's auxiliary classifier with the task as the class (TAC-GAN's setting)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mtgan.config import load_config
from mtgan.data import build_tasks
from mtgan.errors import ConfigError
from mtgan.objectives.terms import build_terms
from mtgan.training import Trainer
from mtgan.training.context import StepContext

OVERLAP = [
    "data.name=ring8",
    "data.tasks=[[0,1,2,3],[2,3,4,5]]",
    "data.n_points=1000",
    "model.g_hidden=[16,16]",
    "model.d_hidden=[16,16]",
    "train.batch_size=16",
    "train.progress=false",
    "train.device=cpu",
    "train.precision=fp32",
    "loss.task_id=0.5",
]
SHARED_D = [*OVERLAP, "model.share.discriminator=all"]


def _context(trainer: Trainer, n: int = 16) -> StepContext:
    real, labels = trainer.data.sample_labelled(n, trainer.data_rng)
    m = trainer.model
    z = torch.randn(m.num_generators, n, m.z_dim, generator=torch.Generator().manual_seed(1))
    return StepContext(m, real, z, 0, trainer.noise_rng, labels)


def _direct(trainer: Trainer, x: torch.Tensor) -> torch.Tensor:
    """Per-discriminator mean of −log softmax(task head)[slot's task] on x (ND, n, 2)."""
    m = trainer.model
    logits = m.heads["task"](m.discriminator.features(x))  # (ND, n, T)
    picked = [
        -F.log_softmax(logits[j], dim=-1)[:, task].mean()
        for j, task in enumerate(m.discriminator_tasks)
    ]
    return torch.stack(picked)


def _terms(trainer: Trainer) -> dict[str, object]:
    return {t.phase: t for t in trainer.terms if t.name == "task_id"}


def test_the_d_and_g_phases_get_the_task_cross_entropy_with_its_weight():
    terms = {
        (t.phase, t.name, t.weight, t.head) for t in build_terms(load_config("gan-2d", OVERLAP))
    }
    assert ("d", "task_id", 0.5, "task") in terms and ("g", "task_id", 0.5, "task") in terms
    assert not any(t.name == "task_id" for t in build_terms(load_config("gan-2d", OVERLAP[:-1])))


@pytest.mark.parametrize("share", ["all", "none"])
def test_the_losses_are_the_cross_entropy_against_each_slots_task(share):
    torch.manual_seed(0)
    trainer = Trainer(load_config("gan-2d", [*OVERLAP, f"model.share.discriminator={share}"]))
    head = trainer.model.heads["task"]
    assert head.affine.out_features == 2  # one output per task
    # a shared D has one task head that tells the tasks apart; task-own Ds a head each
    assert head.affine.weight.dim() == (2 if share == "all" else 3)
    ctx, terms = _context(trainer), _terms(trainer)
    with torch.no_grad():
        d_loss, g_loss = terms["d"].fn(ctx), terms["g"].fn(ctx)
        real = _direct(trainer, ctx.real_d)
        fake = _direct(trainer, ctx.fake_d)
    assert d_loss.shape == g_loss.shape == (2,)
    torch.testing.assert_close(d_loss, real + fake)
    torch.testing.assert_close(g_loss, fake)
    assert not torch.allclose(real, fake)  # the real and fake rows really are both read


def test_the_g_term_trains_the_generators_and_the_d_term_only_the_discriminator():
    torch.manual_seed(0)
    trainer = Trainer(load_config("gan-2d", SHARED_D))
    m, terms = trainer.model, _terms(trainer)
    generator, head = list(m.generator.parameters()), list(m.heads["task"].parameters())
    d_loss, g_loss = terms["d"].fn(_context(trainer)).sum(), terms["g"].fn(_context(trainer)).sum()
    d_grads = torch.autograd.grad(d_loss, generator + head, allow_unused=True)
    assert all(g is None for g in d_grads[: len(generator)])  # fakes are constants in D's phase
    assert all(g is not None and g.abs().sum() > 0 for g in d_grads[len(generator) :])
    g_grads = torch.autograd.grad(g_loss, generator, allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in g_grads)


@pytest.mark.parametrize("tasks", ["single", "[[0,1,2,3]]"])
def test_one_task_is_refused_naming_the_field(tasks):
    config = load_config("gan-2d", [*OVERLAP, f"data.tasks={tasks}"])
    with pytest.raises(ConfigError, match=r"loss\.task_id=0\.5 needs at least two tasks"):
        build_terms(config)


def test_a_single_task_the_config_could_not_foresee_is_refused_at_the_first_step():
    # data.tasks=classes leaves the count to the data; here the data hands over one task
    config = load_config("gan-2d", [*OVERLAP, "data.tasks=classes"])
    one = build_tasks(load_config("gan-2d", [*OVERLAP, "data.tasks=single"]).data, 0)
    trainer = Trainer(config, data=one)
    with pytest.raises(ConfigError, match=r"loss\.task_id needs at least two tasks.*1 task"):
        trainer.train_step()


def test_overlapping_ring_tasks_train_with_one_shared_discriminator():
    torch.manual_seed(0)
    trainer = Trainer(load_config("gan-2d", SHARED_D))
    assert trainer.model.discriminator_tasks == [0, 1]
    records = [trainer.train_step(record=True) for _ in range(4)]
    for key in ("d/task_id/task0", "d/task_id/task1", "g/task_id/task0", "g/task_id/task1"):
        assert all(math.isfinite(r[key]) for r in records), key
    # D starts at chance on two tasks: real + fake cross-entropy ≈ 2 log 2
    assert records[0]["d/task_id"] == pytest.approx(2 * math.log(2), abs=0.5)
