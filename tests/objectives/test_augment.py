"""loss.augment (DiffAugment): each transform keeps shapes, is differentiable, does what the
reference does, vectorised over (ND, n); the config names and refuses; every image any
discriminator sees in a step is augmented, and G's gradient flows through the transforms."""

from __future__ import annotations

import pytest
import torch

from mtgan.config import load_config
from mtgan.data import build_tasks
from mtgan.errors import ConfigError
from mtgan.objectives.augment import TRANSFORMS, Augment, build_augment
from mtgan.training import Trainer
from mtgan.training.context import StepContext

ALL = "loss.augment=[translation,cutout,color]"
FAST = [
    "data.limit=16",
    "train.batch_size=4",
    "train.progress=false",
    "train.precision=fp32",
    "train.device=cpu",
    "model.z_dim=8",
    "model.g_hidden=[16,16]",
    "model.d_hidden=[16,16]",
]


def _draws(names: list[str], nd: int, n: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand((nd, n, Augment(names).draws), generator=gen)


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_each_transform_keeps_the_shape_and_passes_gradients(name):
    x = torch.randn(2, 3, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    u = _draws([name], 2, 3).double()
    augment = Augment([name])
    assert augment(x, u).shape == x.shape
    # piecewise linear in x for fixed draws: the analytic gradient is the numerical one
    assert torch.autograd.gradcheck(lambda t: augment(t, u), (x,))
    (grad,) = torch.autograd.grad(augment(x, u).square().sum(), x)
    assert grad.abs().sum() > 0


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_each_transform_is_vectorised_over_discriminators_and_samples(name):
    # one call on (ND, n, ...) equals the transform applied image by image
    x = torch.randn(3, 5, 2, 12, 12)
    u = _draws([name], 3, 5, seed=1)
    whole = Augment([name])(x, u)
    for d in range(3):
        for i in range(5):
            alone = TRANSFORMS[name].apply(x[d, i : i + 1], u[d, i : i + 1])
            torch.testing.assert_close(whole[d, i : i + 1], alone, rtol=0, atol=1e-6)


def _shifted(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """out[h, w] = image[h + dy, w + dx], zero outside: the reference's translation."""
    out = torch.zeros_like(image)
    h, w = image.shape[-2:]
    rows = slice(max(0, -dy), min(h, h - dy))
    cols = slice(max(0, -dx), min(w, w - dx))
    out[..., rows, cols] = image[
        ..., rows.start + dy : rows.stop + dy, cols.start + dx : cols.stop + dx
    ]
    return out


def test_translation_moves_content_by_up_to_an_eighth_with_zero_padding():
    x = torch.randn(1, 600, 1, 16, 16)
    u = _draws(["translation"], 1, 600, seed=2)
    out = Augment(["translation"])(x, u)
    reach = 2  # 16 / 8
    seen = set()
    for i in range(600):
        matches = [
            (dy, dx)
            for dy in range(-reach, reach + 1)
            for dx in range(-reach, reach + 1)
            if torch.equal(out[0, i], _shifted(x[0, i], dy, dx))
        ]
        assert len(matches) == 1, i
        seen.add(matches[0])
    assert len(seen) == (2 * reach + 1) ** 2  # every shift in range occurs, rows and columns apart


def test_cutout_zeroes_a_square_of_half_the_size_clipped_at_the_border():
    n = 4000
    x = torch.ones(1, n, 2, 16, 16)
    out = Augment(["cutout"])(x, _draws(["cutout"], 1, n, seed=3))
    zero = out[0, :, 0] == 0  # (n, 16, 16)
    assert torch.equal(zero, out[0, :, 1] == 0)  # every channel alike
    rows, cols = zero.any(2), zero.any(1)
    # a rectangle: exactly the rows × columns it touches, at most 8 × 8
    assert torch.equal(zero, rows[:, :, None] & cols[:, None, :])
    assert rows.sum(1).max() == 8 and cols.sum(1).max() == 8 and rows.sum(1).min() >= 4
    share = zero.float().mean((1, 2))
    assert share.max() == 0.25  # a square wholly inside: exactly a quarter
    # centre uniform over the image: 116/17 rows of 16 covered on average per axis
    assert share.mean().item() == pytest.approx((116 / 17 / 16) ** 2, abs=0.01)


def test_color_shifts_brightness_and_scales_contrast_within_the_reference_ranges():
    # grey images in [-1, 1]: saturation is a no-op
    x = torch.rand(1, 2000, 1, 8, 8, generator=torch.Generator().manual_seed(4)) * 2 - 1
    u = _draws(["color"], 1, 2000, seed=4)
    out = Augment(["color"])(x, u)
    shift = out.mean((2, 3, 4)) - x.mean((2, 3, 4))  # saturation and contrast keep the mean
    torch.testing.assert_close(shift, u[..., 0] - 0.5, rtol=0, atol=1e-5)
    assert shift.min() >= -0.5 and shift.max() < 0.5 and shift.std() > 0.25
    scale = out.std((2, 3, 4)) / x.std((2, 3, 4))
    torch.testing.assert_close(scale, u[..., 2] + 0.5, rtol=1e-4, atol=1e-5)
    assert scale.min() >= 0.5 and scale.max() < 1.5


def test_color_scales_saturation_between_zero_and_two():
    x = torch.rand(1, 500, 3, 4, 4, generator=torch.Generator().manual_seed(5)) * 2 - 1
    u = _draws(["color"], 1, 500, seed=5)
    u[..., 0], u[..., 2] = 0.5, 0.5  # no brightness shift, contrast × 1
    out = Augment(["color"])(x, u)
    # each pixel's distance from its channel mean, scaled by 2·u
    factor = (u[..., 1] * 2)[..., None, None, None]
    spread = x - x.mean(2, keepdim=True)
    torch.testing.assert_close(out - out.mean(2, keepdim=True), spread * factor)
    assert u[..., 1].min() * 2 >= 0 and u[..., 1].max() * 2 < 2


def test_transforms_run_in_the_reference_order_so_cut_and_padding_stay_zero():
    x = torch.rand(1, 200, 3, 16, 16) + 1  # nowhere zero
    out = Augment(["cutout", "color"])(x, _draws(["color", "cutout"], 1, 200, seed=6))
    assert ((out == 0).float().mean((2, 3, 4)) >= 16 * 3 / (3 * 256)).all()


def test_config_names_and_orders_the_transforms():
    assert load_config("pertask").loss.augment == []
    config = load_config("pertask", ["loss.augment=[cutout,color,translation]"])
    assert config.loss.augment == ["color", "translation", "cutout"]  # the order applied in
    with pytest.raises(ConfigError) as wrong:
        load_config("pertask", ["loss.augment=[colour]"])
    message = str(wrong.value)
    assert "loss.augment" in message and "did you mean 'color'" in message
    assert "color, translation, cutout" in message


@pytest.mark.parametrize("preset", ["gan-2d", "mgan-ring"])
def test_bundled_points_refuse_augmentation_at_config_time(preset):
    with pytest.raises(ConfigError, match=r"loss\.augment=\['cutout'\] transforms images"):
        load_config(preset, ["loss.augment=[cutout]"])


def test_a_users_points_refuse_augmentation_when_the_data_are_built():
    points = build_tasks(load_config("gan-2d").data.model_copy(update={"n_points": 200}), 0)
    config = load_config("baseline", [*FAST, "loss.augment=[translation]"])
    with pytest.raises(ConfigError, match=r"loss\.augment=\['translation'\] .* shape \(2,\)"):
        Trainer(config, data=points)
    with pytest.raises(ConfigError, match="transforms images"):
        build_augment(["color"], (2,))
    assert build_augment([], (2,)) is None


def test_every_image_any_discriminator_sees_is_augmented():
    # cutout alone: whatever D is given carries a zeroed square of at least 7 × 7 (28 × 28
    # digits), which neither real digits nor tanh fakes have; R1, GP and the rotation head too
    extra = [
        "loss.augment=[cutout]",
        "loss.r1=1",
        "loss.r1_every=1",
        "loss.gp=1",
        "loss.rotation_g=0.2",
    ]
    trainer = Trainer(load_config("ssgan", [*FAST, *extra]))
    seen: list[torch.Tensor] = []
    model = trainer.model
    for name in ("discriminate", "discriminate_all"):
        call = getattr(model, name)
        setattr(model, name, lambda x, call=call: seen.append(x.detach()) or call(x))
    trainer.train_step()
    terms = {(t.phase, t.name) for p in trainer.phases for t in p.terms}
    assert {("d", "r1"), ("d", "gp"), ("d", "rotation"), ("g", "rotation")} <= terms
    assert len(seen) >= 6  # D: real+fake, rotation; R1, GP; G: fake, rotation
    for x in seen:
        zeros = (x == 0).flatten(2).sum(2)
        assert (zeros >= 49).all()


def _g_gradients(augment: bool) -> list[torch.Tensor]:
    extra = [ALL] if augment else []
    trainer = Trainer(load_config("baseline", [*FAST, *extra]))
    real = trainer.data.sample(4, torch.Generator().manual_seed(0))
    z = torch.randn((1, 4, trainer.model.z_dim), generator=torch.Generator().manual_seed(1))
    ctx = StepContext(trainer.model, real, z, 0, trainer.noise_rng, augment=trainer.micro.augment)
    (g_phase,) = [p for p in trainer.phases if p.family == "g"]
    return g_phase.gradients(g_phase.loss(g_phase.objectives(ctx)))


def test_the_generators_gradient_flows_through_the_transforms():
    plain, augmented = _g_gradients(False), _g_gradients(True)
    assert all(g.abs().sum() > 0 for g in augmented)
    assert any(not torch.allclose(a, b) for a, b in zip(plain, augmented))


def test_each_discriminator_call_draws_its_own_transforms():
    trainer = Trainer(load_config("baseline", [*FAST, ALL]))
    real = trainer.data.sample(4, torch.Generator().manual_seed(0))
    z = torch.randn((1, 4, trainer.model.z_dim))
    ctx = StepContext(trainer.model, real, z, 0, trainer.noise_rng, augment=trainer.micro.augment)
    first, again = ctx.augmented(ctx.real_d), ctx.augmented(ctx.real_d)
    assert not torch.equal(first, again)
    assert not torch.equal(first, ctx.real_d)
    plain = StepContext(trainer.model, real, z, 0, trainer.noise_rng)
    assert plain.augmented(plain.real_d) is plain.real_d  # off: the very images
