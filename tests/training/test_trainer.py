"""The phase loop: determinism, exact resume, schedules, intervals, parameter de-duplication."""

from __future__ import annotations

import pytest
import torch

from mtgan import api
from mtgan.config import load_config
from mtgan.training import RunDir, Trainer


def _weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _train(config, steps: int) -> Trainer:
    trainer = Trainer(config)
    for _ in range(steps):
        trainer.train_step()
    return trainer


def test_same_seed_same_config_gives_identical_weights(tiny):
    config = load_config("pertask", tiny)
    a, b = _train(config, 5), _train(config, 5)
    _assert_same(_weights(a.model), _weights(b.model))


def test_different_seed_gives_different_weights(tiny):
    a = _train(load_config("pertask", tiny), 3)
    b = _train(load_config("pertask", [*tiny, "seed=1"]), 3)
    assert not torch.equal(
        a.model.generator.blocks[0].affine.weight, b.model.generator.blocks[0].affine.weight
    )


def test_resume_after_half_equals_uninterrupted_run(tmp_path, tiny):
    full = api.train(
        "pertask", [*tiny, "train.steps=6", "train.ema=0.9"], out=tmp_path / "full", quiet=True
    )
    half = api.train(
        "pertask", [*tiny, "train.steps=3", "train.ema=0.9"], out=tmp_path / "half", quiet=True
    )
    resumed = api.train(resume=half.path, overrides=["train.steps=6"], quiet=True)
    assert resumed.step == full.step == 6
    trainer_full, trainer_resumed = Trainer(full.config), Trainer(resumed.config)
    trainer_full.restore(RunDir(full.path))
    trainer_resumed.restore(RunDir(resumed.path))
    _assert_same(_weights(trainer_full.weights()), _weights(trainer_resumed.weights()))
    for pa, pb in zip(trainer_full.phases, trainer_resumed.phases):
        sa, sb = pa.optimizer.state_dict()["state"], pb.optimizer.state_dict()["state"]
        for i in sa:
            assert torch.equal(sa[i]["exp_avg"], sb[i]["exp_avg"])
    # metrics of the resumed run continue where the checkpoint stopped, without duplicates
    steps = [r["step"] for r in resumed.metrics()]
    assert steps == sorted(set(steps)) and steps[-1] == 6


def test_training_changes_both_families(tiny):
    config = load_config("pertask", tiny)
    trainer = Trainer(config)
    before = _weights(trainer.model)
    for _ in range(2):
        trainer.train_step()
    after = _weights(trainer.model)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert any(k.startswith("generator.") for k in changed)
    assert any(k.startswith("discriminator.") for k in changed)


def test_simultaneous_schedule_differs_from_alternating(tiny):
    alt = _train(load_config("pertask", tiny), 2)
    sim = _train(load_config("pertask", [*tiny, "train.schedule=simultaneous"]), 2)
    w_alt = alt.model.generator.blocks[-1].affine.weight
    w_sim = sim.model.generator.blocks[-1].affine.weight
    assert torch.isfinite(w_sim).all()
    # After one D step the alternating G update sees the updated D; the simultaneous one does not.
    assert not torch.equal(w_alt, w_sim)


def test_simultaneous_step_uses_gradients_at_the_same_parameters(tiny):
    """Both phases' gradients are taken before any update: the G gradient equals the one
    computed at the initial weights."""
    config = load_config("pertask", [*tiny, "train.schedule=simultaneous"])
    trainer = Trainer(config)
    reference = Trainer(config)
    g_phase = reference.phases[1]
    ctx_real = reference.data.sample(config.train.batch_size, reference.data_rng)
    z = torch.randn(
        (reference.model.num_generators, config.train.batch_size, reference.model.z_dim),
        generator=reference.noise_rng,
    )
    from mtgan.training.context import StepContext

    ctx = StepContext(reference.model, ctx_real, z, 0, reference.noise_rng)
    expected = g_phase.gradients(g_phase.loss(g_phase.objectives(ctx)))
    captured: list[torch.Tensor] = []
    g_apply = trainer.phases[1].apply

    def capture(grads, skip=None):  # gradients are freed after the update: keep a copy
        captured.extend(g.clone() for g in grads)
        g_apply(grads, skip)

    trainer.phases[1].apply = capture
    trainer.train_step()
    got = captured
    assert len(got) == len(expected)
    for e, g in zip(expected, got):
        torch.testing.assert_close(e, g)


def test_n_critic_updates_generator_every_nth_step(tiny):
    trainer = Trainer(load_config("pertask", [*tiny, "train.n_critic=3"]))
    g = trainer.model.generator.blocks[0].affine.weight
    history = []
    for _ in range(6):
        before = g.detach().clone()
        trainer.train_step()
        history.append(not torch.equal(before, g))
    assert history == [False, False, True, False, False, True]


def test_shared_layer_is_once_in_each_phase_optimizer(tiny):
    trainer = Trainer(load_config("pertask", tiny))
    for phase in trainer.phases:
        ids = [id(p) for group in phase.optimizer.param_groups for p in group["params"]]
        assert len(ids) == len(set(ids))
    shared = trainer.model.discriminator.blocks[1].affine.weight
    d_phase = trainer.phases[0]
    assert sum(p is shared for p in d_phase.params) == 1


def test_cross_shared_layer_belongs_to_both_phases(tiny):
    overrides = [*tiny, "model.g_hidden=[16,16]", "model.d_hidden=[16,16]"]
    overrides += ["model.share.cross=[[g.1,d.1]]"]
    trainer = Trainer(load_config("pertask", overrides))
    tied = trainer.model.generator.blocks[1].affine.weight
    assert tied is trainer.model.discriminator.blocks[1].affine.weight
    assert all(sum(p is tied for p in phase.params) == 1 for phase in trainer.phases)
    before = tied.detach().clone()
    trainer.train_step()
    assert not torch.equal(before, tied)


def test_penalty_terms_run_and_lazy_r1_is_a_phase_of_its_own(tiny):
    config = load_config("pertask", [*tiny, "loss.r1=10", "loss.r1_every=4", "loss.gp=1"])
    trainer = Trainer(config)
    assert [(p.name, p.every, [t.name for t in p.terms]) for p in trainer.phases] == [
        ("d", 1, ["adversarial", "gp"]),
        ("d_reg", 4, ["r1"]),
        ("g", 1, ["adversarial"]),
    ]
    d, d_reg, _ = trainer.phases
    assert d_reg.optimizer is d.optimizer and not d_reg.owns_optimizer
    assert d_reg.terms[0].weight == 10 / 2 * 4  # γ/2, scaled by the interval
    logged = [trainer.train_step(record=True) for _ in range(8)]
    # every 4th step, on the 4th: steps 3 and 7
    assert [i for i, r in enumerate(logged) if "d_reg/r1" in r] == [3, 7]
    assert all("d/r1" not in r for r in logged)
    assert all("d/gp" in r and r["d/gp"] >= 0 for r in logged)
    assert all(torch.isfinite(torch.tensor(list(r.values()))).all() for r in logged)


def test_ema_tracks_the_generator(tiny):
    trainer = _train(load_config("pertask", [*tiny, "train.ema=0.5"]), 3)
    ema_w = trainer.ema.net.blocks[0].affine.weight
    g_w = trainer.model.generator.blocks[0].affine.weight
    assert not torch.equal(ema_w, g_w)
    assert not ema_w.requires_grad
    # One more update with decay 0.5 moves the EMA halfway to the generator.
    expected = 0.5 * ema_w.detach() + 0.5 * g_w.detach()
    trainer.ema.update(trainer.model.generator)
    torch.testing.assert_close(ema_w, expected)


def test_ema_rampup_shortens_the_half_life_early_and_reaches_the_decay():
    from mtgan.training.ema import EMA

    ema = EMA(torch.nn.Linear(2, 2), 0.999, rampup=0.05)
    assert ema.decay_at(0) < 1e-5  # half-life 0.05 steps: the first update copies the net
    assert abs(ema.decay_at(1999) - 0.5 ** (1 / 100)) < 1e-12  # half-life 5 % of 2,000 steps
    assert ema.decay_at(100_000) == 0.999  # capped at train.ema's own half-life (693 steps)
    assert EMA(torch.nn.Linear(2, 2), 0.999).decay_at(0) == 0.999


def test_ema_rampup_follows_the_generator_in_a_short_run(tiny):
    """After 3 steps a 0.999 average is still almost its start; with the rampup it is
    almost the generator (and a resumed run would agree: the decay reads only the step)."""
    gaps = {}
    for rampup in ([], ["train.ema_rampup=0.05"]):
        trainer = _train(load_config("pertask", [*tiny, "train.ema=0.999", *rampup]), 3)
        g_w = trainer.model.generator.blocks[0].affine.weight
        gaps[bool(rampup)] = (trainer.ema.net.blocks[0].affine.weight - g_w).abs().max().item()
    assert gaps[True] < 0.05 * gaps[False], gaps


def test_ema_rampup_needs_an_ema(tiny):
    from mtgan.errors import ConfigError

    with pytest.raises(ConfigError, match="train.ema"):
        load_config("pertask", [*tiny, "train.ema=0", "train.ema_rampup=0.05"])


def test_each_loss_trains_without_nonfinite_values(tiny):
    for loss in ("minimax", "nonsaturating", "hinge", "wasserstein", "lsgan"):
        extra = ["loss.gp=10"] if loss == "wasserstein" else []
        trainer = Trainer(load_config("pertask", [*tiny, f"loss.adversarial={loss}", *extra]))
        record = [trainer.train_step(record=True) for _ in range(3)][-1]
        assert all(map(lambda v: torch.isfinite(torch.tensor(v)), record.values())), loss


def test_dcgan_trains_with_spectral_norm(tiny):
    overrides = [*tiny, "model.arch=dcgan", "model.g_hidden=[8,4]", "model.d_hidden=[4,8]"]
    overrides += ["model.d_norm=spectral"]
    trainer = _train(load_config("pertask", overrides), 2)
    samples = trainer.generate(trainer.fixed_z)
    assert samples.shape == (3, 4, 1, 28, 28)
    assert samples.min() >= 0 and samples.max() <= 1


def test_a_gradient_laid_out_unlike_its_parameter_is_stepped_correctly(tiny):
    # GP's double backward returns the first layer's weight gradient transposed in memory;
    # torch's fused CPU Adam reads it as if laid out like the parameter
    trainer = Trainer(load_config("pertask", [*tiny, "loss.gp=1"]))
    d = trainer.phases[0]
    p = d.params[0]
    g = torch.randn_like(p).transpose(-1, -2).contiguous().transpose(-1, -2)
    assert g.stride() != p.stride()
    grads = [g if q is p else torch.zeros_like(q) for q in d.params]
    d.apply(grads)
    state = d.optimizer.state[p]["exp_avg"]
    torch.testing.assert_close(state, (1 - trainer.config.train.betas[0]) * g)
