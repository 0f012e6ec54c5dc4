"""Gradient-based balancers: known solutions on small problems, finite on degenerate input,
and wired into training (weights logged, resume-exact)."""

from __future__ import annotations

import itertools

import pytest
import torch

from mtgan.balance import build_balancer, jacobian_at, min_norm_weights
from mtgan.balance.base import Objectives
from mtgan.config import load_config
from mtgan.training import Trainer

GRADIENT_BASED = ["mgda", "pcgrad", "cagrad", "imtl-g", "gradnorm", "nash-mtl"]


def _linear_problem(rows: list[list[float]]):
    """Objectives L_i = g_i · θ: their gradients at θ are exactly the rows."""
    theta = torch.nn.Parameter(torch.zeros(len(rows[0])))
    g = torch.tensor(rows)
    losses = {"adversarial": g @ theta + 1.0}
    return theta, losses, g


def _alphas(name: str, rows: list[list[float]], options: dict | None = None) -> torch.Tensor:
    theta, losses, _ = _linear_problem(rows)
    balancer = build_balancer(name, options or {}, "balance.g")
    total = balancer.combine(Objectives(losses, {"adversarial": 1.0}), jacobian_at([theta]))
    assert torch.isfinite(total)
    return torch.tensor(list(balancer.last_weights.values()))


def test_pcgrad_projects_two_conflicting_gradients():
    # g1 = (1, 0), g2 = (−1, 1), g1·g2 = −1: g1' = g1 + g2/2 = (½, ½), g2' = g2 + g1 = (0, 1).
    alpha = _alphas("pcgrad", [[1.0, 0.0], [-1.0, 1.0]])
    assert alpha.tolist() == pytest.approx([2.0, 1.5])
    g = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
    assert (alpha @ g).tolist() == pytest.approx([0.5, 1.5])


def test_pcgrad_leaves_agreeing_gradients_alone():
    assert _alphas("pcgrad", [[1.0, 0.0], [1.0, 1.0]]).tolist() == pytest.approx([1.0, 1.0])


def test_mgda_two_gradients_match_the_closed_form():
    # min over w of ‖w g1 + (1−w) g2‖², g1 = (1, 0), g2 = (0, 2): w = 4 / 5
    alpha = _alphas("mgda", [[1.0, 0.0], [0.0, 2.0]])
    assert alpha.tolist() == pytest.approx([1.6, 0.4], abs=1e-6)


@pytest.mark.parametrize(
    "rows",
    [[[1.0, 0.2], [-0.4, 1.0], [0.3, -0.9]], [[1.0, 0.2], [0.4, 1.0], [0.8, 0.9]]],
    ids=["origin-inside", "on-an-edge"],
)
def test_min_norm_point_of_three_gradients(rows):
    g = torch.tensor(rows, dtype=torch.float64)
    w = min_norm_weights(g @ g.T)
    assert w.sum().item() == pytest.approx(1.0) and (w >= 0).all()
    grid = torch.linspace(0, 1, 401).tolist()
    best = min(
        (torch.tensor([a, b, 1 - a - b], dtype=torch.float64) @ g).norm().item() ** 2
        for a, b in itertools.product(grid, repeat=2)
        if a + b <= 1
    )
    assert (w @ g).norm().item() ** 2 == pytest.approx(best, abs=1e-4)


def test_cagrad_is_the_mean_at_c_zero():
    alpha = _alphas("cagrad", [[1.0, 0.0], [-1.0, 1.0], [0.2, 0.3]], {"c": 0.0})
    assert alpha.tolist() == pytest.approx([1.0, 1.0, 1.0])


def test_cagrad_bends_towards_the_objective_the_mean_neglects():
    # the mean of (1, 0) and (−0.9, 0.1) nearly cancels in x: CAGrad lifts the weaker one
    rows = [[1.0, 0.0], [-0.9, 0.1]]
    alpha = _alphas("cagrad", rows, {"c": 0.5})
    d = alpha @ torch.tensor(rows)
    g = torch.tensor(rows)
    assert min(g @ d) > min(g @ g.mean(0) * 2)  # the worst objective's decrease improves


def test_imtl_g_gives_equal_projections_onto_every_unit_gradient():
    rows = [[2.0, 0.0, 0.0], [0.5, 1.0, 0.0], [0.0, -1.0, 3.0]]
    alpha = _alphas("imtl-g", rows)
    g = torch.tensor(rows)
    d = alpha @ g
    projections = (g / g.norm(dim=1, keepdim=True)) @ d
    assert projections.tolist() == pytest.approx([projections[0].item()] * 3, rel=1e-4)


def test_nash_mtl_solves_the_bargaining_equations():
    rows = [[2.0, 0.0], [0.5, 1.0], [0.0, 0.5]]
    alpha = _alphas("nash-mtl", rows).double()
    g = torch.tensor(rows, dtype=torch.float64)
    product = alpha * ((g @ g.T) @ alpha)  # (Gα)_i · α_i is the same for every i
    assert product.tolist() == pytest.approx([product[0].item()] * 3, rel=1e-3)


def test_gradnorm_raises_the_weight_of_the_smaller_gradient():
    alpha = _alphas("gradnorm", [[4.0, 0.0], [0.0, 0.5]], {"lr": 0.1})
    assert alpha[1] > alpha[0] and alpha.sum().item() == pytest.approx(2.0)


@pytest.mark.parametrize("name", GRADIENT_BASED)
@pytest.mark.parametrize(
    "rows",
    [[[0.0, 0.0], [0.0, 0.0]], [[1.0, 2.0], [1.0, 2.0]], [[0.5, -1.0]], [[1.0, 0.0], [0.0, 0.0]]],
    ids=["zero", "identical", "one", "one-zero"],
)
def test_finite_on_degenerate_gradients(name, rows):
    alpha = _alphas(name, rows)
    assert torch.isfinite(alpha).all()


@pytest.mark.parametrize("name", GRADIENT_BASED)
def test_trains_pertask_and_logs_its_weights(tiny, name):
    trainer = Trainer(load_config("pertask", [*tiny, f"balance.g={name}", f"balance.d={name}"]))
    for _ in range(2):
        record = trainer.train_step(record=True)
    assert {f"g/weight/adversarial/task{k}" for k in range(3)} <= set(record)
    assert all(torch.isfinite(torch.tensor(v)) for v in record.values())


@pytest.mark.parametrize("name", ["pcgrad", "cagrad", "gradnorm", "nash-mtl"])
def test_resume_gives_the_weights_of_an_uninterrupted_run(tiny, name, interrupted):
    overrides = [*tiny, f"balance.g={name}", "balance.g_options={update_every: 2}"]
    if name != "nash-mtl":
        overrides.pop()
    last, again = interrupted(overrides, 2, 3)
    keys = [k for k in last if "/weight/" in k]
    assert keys and all(last[k] == pytest.approx(again[k], rel=1e-5) for k in keys)


def test_shared_parameters_are_the_trunk_for_pertask(tiny):
    trainer = Trainer(load_config("pertask", tiny))
    g_phase = next(p for p in trainer.phases if p.name == "g")
    trunk = {id(p) for b in trainer.model.generator.blocks if b.shared for p in b.parameters()}
    assert trunk and {id(p) for p in g_phase.shared} == trunk


@pytest.mark.parametrize(
    ("preset", "extra"),
    [
        ("pertask", []),
        ("pertask", ["model.heads={rotation: 4}", "loss.rotation_d=1"]),  # D runs twice
        ("mgan", ["data.tasks=single", "model.generators=3", "model.heads={generator: 3}"]),
        ("gman", ["data.tasks=single", "model.discriminators=4", "balance.g_options={}"]),
        ("independent", []),
    ],
    ids=["pertask", "pertask-rotation", "mgan", "gman", "independent"],
)
def test_tape_jacobian_equals_the_exact_one_at_the_shared_linear_layers(tiny, preset, extra):
    overrides = [*tiny, "balance.g=mgda", "balance.d=mgda", "model.g_norm=batch", *extra]
    trainer = Trainer(load_config(preset, overrides))
    checked = 0
    for phase in trainer.phases:
        if phase.source is None or phase.source.__class__.__name__ == "ParameterJacobian":
            continue
        checked += 1
        for p in trainer.phases:
            p.begin_step()
        real, labels = trainer.data.sample_labelled(8, trainer.data_rng)
        m = trainer.model
        z = torch.randn(m.num_generators, trainer.per_generator, m.z_dim)
        from mtgan.training.context import StepContext

        ctx = StepContext(m, real, z, 0, trainer.noise_rng, labels)
        losses = phase.objectives(ctx).losses
        per_term = [t.reshape(-1).float() for t in losses.values()]
        source = phase.source
        exact = jacobian_at(source.params)(per_term)
        fast = source.jacobian(per_term)
        if phase.tape is not None:
            torch.testing.assert_close(fast, exact, atol=1e-5, rtol=1e-4)
        # the Gram matrix, which most balancers read, is the same whatever the layout
        torch.testing.assert_close(source.gram(per_term), exact @ exact.T, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(fast @ fast.T, exact @ exact.T, atol=1e-5, rtol=1e-4)
        assert fast.abs().sum() > 0
        for p in trainer.phases:
            p.end_step()
    assert checked == 2


def test_gman_generator_splits_its_gradients_below_the_pooled_batch_norm(tiny):
    # Its batch norm pools the rows of all four discriminators' slices: the blocks up to the
    # last one take a batched backward from their output, the last linear layer the tape.
    overrides = [*tiny, "balance.g=mgda", "balance.g_options={}", "model.discriminators=4"]
    trainer = Trainer(load_config("gman", [*overrides, "data.tasks=single"]))
    g_phase = next(p for p in trainer.phases if p.name == "g")
    assert g_phase.tape is not None
    blocks = trainer.model.generator.blocks
    assert g_phase.tape.layers == [blocks[-1].affine]
    assert {id(p) for p in g_phase.tape.params} == {id(p) for p in g_phase.params}


@pytest.mark.parametrize("name", ["mgda", "pcgrad", "imtl-g"])
def test_a_complete_source_hands_the_phase_the_gradient_of_the_weighted_sum(tiny, name):
    # GMAN: the generator's tape and the discriminators' disjoint source cover every parameter
    # their phase updates, so the phase's backward pass reuses their gradients
    overrides = [*tiny, f"balance.g={name}", f"balance.d={name}", "balance.g_options={}"]
    overrides += ["data.tasks=single", "model.share.discriminator=none", "model.discriminators=4"]
    trainer = Trainer(load_config("gman", overrides))
    from mtgan.training.context import StepContext

    for phase in trainer.phases:
        assert phase.source is not None and phase.source.complete
        for p in trainer.phases:
            p.begin_step()
        real, labels = trainer.data.sample_labelled(8, trainer.data_rng)
        m = trainer.model
        z = torch.randn(m.num_generators, trainer.per_generator, m.z_dim)
        objectives = phase.objectives(StepContext(m, real, z, 0, trainer.noise_rng, labels))
        losses = objectives.losses
        fast = phase.gradients(phase.loss(objectives))
        alpha = torch.tensor(list(phase.balancer.last_weights.values()))
        weighted = torch.cat([t.weight * losses[t.name].reshape(-1) for t in phase.terms])
        exact = torch.autograd.grad((alpha * weighted).sum(), phase.params, allow_unused=True)
        for f, e, p in zip(fast, exact, phase.params):
            torch.testing.assert_close(f, torch.zeros_like(p) if e is None else e)
        for p in trainer.phases:
            p.end_step()


def test_gram_based_methods_match_their_gradient_forms():
    # PCGrad and IMTL-G as written on the gradients themselves, against the Gram-only versions
    torch.manual_seed(0)
    for m in (2, 3, 5):
        g = torch.randn(m, 6, dtype=torch.float64)
        u = g / g.norm(dim=1, keepdim=True)
        d, uu = g[:1] - g[1:], u[:1] - u[1:]
        rest = g[:1] @ uu.T @ torch.linalg.pinv(d @ uu.T)
        imtl = m * torch.cat([1 - rest.sum(1), rest[0]])
        assert _alphas("imtl-g", g.tolist()).double() == pytest.approx(imtl.tolist(), abs=1e-4)
        projected = g.clone()  # PCGrad with the order its seeded generator draws
        order = torch.Generator().manual_seed(0)
        for i in range(m):
            for j in torch.randperm(m, generator=order).tolist():
                if j != i and projected[i] @ g[j] < 0:
                    projected[i] -= (projected[i] @ g[j]) / (g[j] @ g[j]) * g[j]
        pcgrad = _alphas("pcgrad", g.tolist()).double() @ g
        torch.testing.assert_close(pcgrad, projected.sum(0), atol=1e-4, rtol=1e-4)


def test_penalties_take_the_exact_jacobian(tiny):
    # R1 differentiates through D's input gradient: the tape would miss that path
    trainer = Trainer(load_config("pertask", [*tiny, "balance.d=mgda", "loss.r1=1"]))
    phases = {p.name: p for p in trainer.phases}
    assert phases["d_reg"].tape is None and phases["d_reg"].source is not None
    assert phases["d"].tape is not None  # lazy R1 has left the D phase: the tape serves it
    trainer = Trainer(load_config("pertask", [*tiny, "balance.d=mgda", "loss.gp=1"]))
    assert trainer.phases[0].tape is None


@pytest.mark.parametrize(
    "aggregator", ["UPGrad", "MGDA", "PCGrad", "Mean", "Sum", "IMTLG", "DualProj", "AlignedMTL"]
)
def test_torchjd_weightings_give_torchjds_own_aggregated_vector(aggregator):
    # α = w as torchjd gives it: Σ α_i g_i is what torchjd's aggregator returns for the same
    # Jacobian (its Gramian for Gramian weightings, the matrix itself for the others)
    import torchjd.aggregation as jd

    rows = [[1.0, 0.0, 0.5], [-1.0, 1.0, 0.0], [0.2, -0.4, 1.0]]
    torch.manual_seed(0)  # PCGrad draws its order from torch's generator
    alpha = _alphas("torchjd", rows, {"weighting": f"{aggregator}Weighting"})
    g = torch.tensor(rows)
    torch.manual_seed(0)
    expected = getattr(jd, aggregator)()(g)
    torch.testing.assert_close(alpha @ g, expected, atol=1e-5, rtol=1e-4)


def test_torchjd_weightings_see_the_gramian_or_the_matrix_as_torchjd_defines_them():
    import torchjd.aggregation as jd

    from mtgan.balance.external import takes_gramian

    assert takes_gramian(jd.UPGradWeighting) and takes_gramian(jd.MGDAWeighting)
    assert not takes_gramian(jd.MeanWeighting) and not takes_gramian(jd.ExcessMTLWeighting)


def test_torchjd_errors_name_the_choices():
    from mtgan.errors import ConfigError

    with pytest.raises(ConfigError, match="MGDAWeighting"):
        build_balancer("torchjd", {"weighting": "Nope"}, "balance.g")


def test_a_non_finite_weight_skips_the_step_and_is_logged(tiny, monkeypatch):
    # nothing masks a solver's NaN: the phase's loss is NaN, the step is skipped and logged
    from mtgan.balance import MGDA

    def nan(self, grads, values):
        return torch.full((grads.shape[0],), float("nan"), dtype=grads.dtype)

    monkeypatch.setattr(MGDA, "alphas", nan)
    with pytest.raises(AssertionError):  # the degenerate-gradient test above would fail
        _alphas("mgda", [[1.0, 0.0], [0.0, 1.0]])
    trainer = Trainer(load_config("pertask", [*tiny, "balance.g=mgda"]))
    generator = {k: v.clone() for k, v in trainer.model.generator.named_parameters()}
    assert trainer.train_step() is None  # an unlogged step: the skip is counted on the device
    record = trainer.train_step(record=True)  # and read at the next log step
    assert record["g/nonfinite"] == 2 and record["skipped"] == 2 and record["d/nonfinite"] == 0
    for k, v in trainer.model.generator.named_parameters():
        assert torch.equal(v, generator[k]), k
