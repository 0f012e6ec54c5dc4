"""Hard parameter sharing in MultiGAN: shared layers are one tensor, gradients add up, task-own
layers stay task-own, cross G–D sharing ties weights, and the bookkeeping counts it right."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from mtgan.config import load_config
from mtgan.errors import ConfigError
from mtgan.nets import MultiGAN, resolve_share

MNIST = (1, 28, 28)
TASKS = 10
CROSS = ["model.g_hidden=[256,256]", "model.d_hidden=[256,256]", "model.share.cross=[[g.1,d.1]]"]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def build(source: str = "pertask", overrides: list[str] | None = None, tasks: int = TASKS):
    return MultiGAN(load_config(source, overrides).model, MNIST, tasks)


@pytest.fixture
def pertask() -> MultiGAN:
    return build()


def _net(model: MultiGAN, family: str):
    return model.generator if family == "g" else model.discriminator


# ------------------------------------------------------------------ sharing really shares


@pytest.mark.parametrize("family", ["g", "d"])
def test_shared_layer_parameters_are_the_same_tensor_object_for_every_network(pertask, family):
    per_net = [pertask.network_parameters(family, k) for k in range(TASKS)]
    shared_keys = [key for key in per_net[0] if key.startswith("blocks.1.")]
    assert "blocks.1.affine.weight" in shared_keys and "blocks.1.affine.bias" in shared_keys
    model_params = list(pertask.parameters())
    for key in shared_keys:
        for params in per_net[1:]:
            assert params[key] is per_net[0][key]
        assert any(per_net[0][key] is p for p in model_params)


@pytest.mark.parametrize("family", ["g", "d"])
def test_task_own_layers_give_each_network_its_own_view_of_the_stacked_tensor(pertask, family):
    per_net = [pertask.network_parameters(family, k) for k in range(TASKS)]
    own_keys = [key for key in per_net[0] if not key.startswith("blocks.1.")]
    assert "blocks.0.affine.weight" in own_keys and "blocks.2.affine.weight" in own_keys
    for key in own_keys:
        pointers = {params[key].data_ptr() for params in per_net}
        assert len(pointers) == TASKS  # ten different slices of memory
        assert all(params[key] is not per_net[0][key] for params in per_net[1:])
    weights = [params["blocks.0.affine.weight"] for params in per_net]
    assert not torch.equal(weights[0], weights[1])

    # A view: writing network 3's slice changes the stacked parameter's copy 3 and nothing else.
    stacked = _net(pertask, family).blocks[0].affine.weight
    before = stacked.detach().clone()
    with torch.no_grad():
        weights[3].zero_()
    assert torch.all(stacked[3] == 0)
    assert torch.equal(stacked[:3], before[:3]) and torch.equal(stacked[4:], before[4:])


def test_pertask_shares_exactly_the_trunk_of_both_families(pertask):
    rows = pertask.ownership()
    assert [(r.family, r.layer, r.shared) for r in rows] == [
        ("g", 0, False),
        ("g", 1, True),
        ("g", 2, False),
        ("d", 0, False),
        ("d", 1, True),
        ("d", 2, False),
    ]


# ------------------------------------------------------------------ gradients


def _grads(model: MultiGAN) -> dict[str, torch.Tensor]:
    return {
        name: p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
        for name, p in model.named_parameters()
    }


def _backward(model: MultiGAN, loss_fn) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    loss_fn().backward()
    return _grads(model)


def test_backward_through_two_tasks_accumulates_both_gradients_in_shared_layers(pertask):
    z = torch.randn(TASKS, 4, 100)
    x = torch.randn(TASKS, 4, *MNIST)
    up_g, up_d = torch.randn(4, *MNIST), torch.randn(4)

    def loss_task0():
        return pertask.generate(z)[0].square().mean() + pertask.discriminate(x)[0].square().sum()

    def loss_task1():
        return (pertask.generate(z)[1] * up_g).sum() + (pertask.discriminate(x)[1] * up_d).sum()

    both = _backward(pertask, lambda: loss_task0() + loss_task1())
    only0 = _backward(pertask, loss_task0)
    only1 = _backward(pertask, loss_task1)

    shared = [n for n, _ in pertask.named_parameters() if n.split(".")[2] == "1"]
    assert shared  # generator.blocks.1.* and discriminator.blocks.1.*
    for name in shared:
        assert only0[name].abs().sum() > 0 and only1[name].abs().sum() > 0
        assert not torch.allclose(only0[name], only1[name])
        assert_close(both[name], only0[name] + only1[name], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("family", ["g", "d"])
def test_loss_on_task_0_gives_task_own_slices_of_other_tasks_exactly_zero_gradient(pertask, family):
    if family == "g":
        out = pertask.generate(torch.randn(TASKS, 4, 100))
    else:
        out = pertask.discriminate(torch.randn(TASKS, 4, *MNIST))
    out[0].square().sum().backward()

    net = _net(pertask, family)
    own = [
        (i, name, p)
        for i, block in enumerate(net.blocks)
        if not block.shared
        for name, p in block.named_parameters()
    ]
    assert {i for i, _, _ in own} == {0, 2}
    for i, name, p in own:
        per_task = p.grad.unflatten(0, (TASKS, -1))
        assert per_task[0].abs().sum() > 0, f"{family}.{i} {name}"
        assert torch.count_nonzero(per_task[1:]) == 0, f"{family}.{i} {name}"


def test_task_output_in_training_mode_does_not_depend_on_other_tasks_inputs(pertask):
    # The shared generator layer has batch norm: its statistics must be each task's own.
    pertask.train()
    z = torch.randn(TASKS, 4, 100)
    other = z.clone()
    other[1:] = 5 * torch.randn(TASKS - 1, 4, 100) + 3
    assert_close(pertask.generate(z)[0], pertask.generate(other)[0])
    x = torch.randn(TASKS, 4, *MNIST)
    x_other = x.clone()
    x_other[1:] = torch.randn(TASKS - 1, 4, *MNIST)
    assert_close(pertask.discriminate(x)[0], pertask.discriminate(x_other)[0])


def test_shared_batch_norm_normalises_each_task_and_keeps_each_tasks_statistics():
    model = build("pertask", ["model.share.generator=all"], tasks=3)
    block = model.generator.blocks[0]
    assert block.shared and block.norm is not None
    z = torch.randn(3, 8, 100)
    z[1] = 4 * z[1] + 2
    with torch.no_grad():
        pre = block.affine(z)  # (3, 8, 256): the shared layer's input to its batch norm
        out = block(z)
    ref = torch.relu(
        (pre - pre.mean(1, keepdim=True)) / (pre.var(1, unbiased=False, keepdim=True) + 1e-5).sqrt()
    )
    assert_close(out, ref, atol=1e-4, rtol=1e-4)
    momentum = block.norm.momentum
    assert block.norm.running_mean.shape == (3, 256)
    assert_close(block.norm.running_mean, momentum * pre.mean(1))
    assert_close(block.norm.running_var, (1 - momentum) + momentum * pre.var(1))
    assert int(block.norm.num_batches_tracked) == 1
    # γ and β are one pair for all tasks: the sharing is in the parameters
    assert block.norm.weight.shape == (1, 256)


def test_eval_mode_normalises_each_task_by_its_own_running_statistics():
    # Tasks whose activations differ (task 1 shifted and scaled) must each be normalised by
    # their own statistics in eval mode too, as training normalised them.
    model = build("pertask", ["model.share.generator=all"], tasks=3)
    block = model.generator.blocks[0]
    z = torch.randn(3, 256, 100)
    z[1] = 4 * z[1] + 2
    block.norm.momentum = 1.0  # running statistics = this batch's
    with torch.no_grad():
        train_out = block(z)
        block.eval()
        eval_out = block(z)
    assert_close(eval_out, train_out, atol=2e-2, rtol=2e-2)


# ------------------------------------------------------------------ parameter counting


@pytest.mark.parametrize(
    ("source", "overrides"),
    [("pertask", []), ("independent", []), ("seed", []), ("baseline", []), ("pertask", CROSS)],
    ids=["pertask", "independent", "seed", "baseline", "cross"],
)
def test_ownership_shared_plus_own_equals_deduplicated_parameter_count(source, overrides):
    model = build(source, overrides)
    rows = model.ownership()
    total = sum(p.numel() for p in model.parameters())
    shared = sum(r.numel for r in rows if r.shared)
    own = sum(r.numel for r in rows if not r.shared)
    assert shared + own == total
    assert f"parameters: {total:,d} in all; {shared:,d} shared, {own:,d} task-own" in (
        model.describe()
    )


def test_pertask_shared_parameter_count_is_the_two_trunk_layers(pertask):
    g1 = 256 * 512 + 512 + 2 * 512  # linear 256→512 and its batch norm γ, β
    d1 = 512 * 256 + 256  # linear 512→256
    assert sum(r.numel for r in pertask.ownership() if r.shared) == g1 + d1


def test_independent_preset_shares_nothing():
    model = build("independent")
    assert not any(r.shared for r in model.ownership())
    assert all(not b.shared for b in [*model.generator.blocks, *model.discriminator.blocks])


# ------------------------------------------------------------------ cross G–D sharing


def test_cross_sharing_ties_generator_and_discriminator_layer_to_one_weight():
    model = build("pertask", CROSS)
    g1, d1 = model.generator.blocks[1], model.discriminator.blocks[1]
    assert g1.plan.affine_signature == d1.plan.affine_signature  # linear 256 → 256
    assert g1.affine is d1.affine
    assert g1.affine.weight is d1.affine.weight
    assert model.cross_groups == [[("g", 1), ("d", 1)]]

    ids = [id(p) for p in model.parameters()]
    assert ids.count(id(g1.affine.weight)) == 1
    untied = build("pertask", CROSS[:2])
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == sum(p.numel() for p in untied.parameters()) - (256 * 256 + 256)

    text = model.describe()
    assert "weights shared with d.1" in text
    assert "weights shared with g.1" in text


def test_cross_shared_weight_receives_gradients_from_generator_and_discriminator():
    model = build("pertask", CROSS, tasks=2)
    weight = model.generator.blocks[1].affine.weight
    model.generate(torch.randn(2, 4, 100)).sum().backward()
    from_g = weight.grad.clone()
    model.zero_grad(set_to_none=True)
    model.discriminate(torch.randn(2, 4, *MNIST)).sum().backward()
    assert from_g.abs().sum() > 0 and weight.grad.abs().sum() > 0
    assert not torch.allclose(from_g, weight.grad)


def test_cross_sharing_accepts_negative_layer_references():
    model = build("pertask", [*CROSS[:2], "model.share.cross=[[g.-2,d.1]]"])
    assert model.cross_groups == [[("g", 1), ("d", 1)]]
    assert model.generator.blocks[1].affine is model.discriminator.blocks[1].affine


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        (["model.share.cross=[[g.0,d.0]]"], ["g.0", "d.0", "shapes differ"]),
        ([*CROSS[:2], "model.share.cross=[[g.5,d.1]]"], ["g.5", "layers 0..2"]),
        (
            [*CROSS, "model.share.discriminator=none"],
            ["g.1", "d.1", "both be shared", "task-own"],
        ),
        ([*CROSS, "model.d_norm=spectral"], ["g.1", "d.1", "spectral"]),
    ],
    ids=["shapes", "out-of-range", "copies", "spectral"],
)
def test_incompatible_cross_sharing_is_one_config_error_naming_the_layers(overrides, needles):
    with pytest.raises(ConfigError) as exc:
        build("pertask", overrides)
    message = str(exc.value)
    assert message.startswith("model.share.cross")
    assert "\n" not in message
    for needle in needles:
        assert needle in message


# ------------------------------------------------------------------ sharing specs


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("none", set()),
        ("all", {0, 1, 2, 3}),
        ("trunk", {1, 2}),
        ("all_but_first", {1, 2, 3}),
        ("all_but_last", {0, 1, 2}),
        (0, set()),
        (2, {0, 1}),
        (4, {0, 1, 2, 3}),
        ([], set()),
        ([0, -1], {0, 3}),
        ([-4, 2, 2], {0, 2}),
    ],
)
def test_resolve_share_turns_each_spec_into_layer_indices(spec, expected):
    assert resolve_share(spec, 4, "model.share.generator") == expected


@pytest.mark.parametrize("spec", [5, -1, [4], [-5], [0, 7]])
def test_resolve_share_out_of_range_is_a_config_error_naming_the_field(spec):
    with pytest.raises(ConfigError, match=r"^model\.share\.discriminator: .*(4 layers|0\.\.3)"):
        resolve_share(spec, 4, "model.share.discriminator")


def test_out_of_range_share_spec_fails_when_building_the_model():
    with pytest.raises(ConfigError, match=r"model\.share\.generator: 4 is out of range"):
        build("pertask", ["model.share.generator=4"])


# ------------------------------------------------------------------ dcgan


DCGAN = ["model.arch=dcgan", "model.z_dim=8", "model.g_hidden=[16,8]", "model.d_hidden=[8,16]"]


@pytest.mark.parametrize("share", ["none", "trunk", "all"])
def test_dcgan_builds_for_28x28_and_gives_images_and_logits(share):
    overrides = [*DCGAN, f"model.share.generator={share}", f"model.share.discriminator={share}"]
    model = build("pertask", overrides, tasks=3)
    kinds = [b.plan.kind for b in model.generator.blocks]
    assert kinds == ["linear", "deconv", "deconv"]
    assert [b.plan.kind for b in model.discriminator.blocks] == ["conv", "conv", "linear"]
    fake = model.generate(torch.randn(3, 2, 8))
    assert fake.shape == (3, 2, 1, 28, 28)
    assert fake.abs().max() <= 1
    logits = model.discriminate(fake)
    assert logits.shape == (3, 2)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (["model.g_hidden=[16,8,4]"], "model.g_hidden"),
        (["model.d_hidden=[8,16,32]"], "model.d_hidden"),
    ],
)
def test_dcgan_image_size_not_divisible_by_two_to_the_depth_is_a_config_error(overrides, field):
    with pytest.raises(ConfigError, match=rf"^{field}: .*divisible by 8, got 28"):
        build("pertask", [*DCGAN, *overrides])


def test_dcgan_on_non_image_data_is_a_config_error():
    cfg = load_config("pertask", DCGAN).model
    with pytest.raises(ConfigError, match="square images"):
        MultiGAN(cfg, (2,), 3)


# ------------------------------------------------------------------ describe


def test_describe_names_owners_and_totals_for_pertask(pertask):
    text = pertask.describe()
    assert text.startswith("generators (10):")
    assert "discriminators (10):" in text
    assert "shared by G0–G9" in text
    assert "shared by D0–D9" in text
    assert "own (10 copies)" in text
    total = sum(p.numel() for p in pertask.parameters())
    assert text.splitlines()[-1].startswith(f"parameters: {total:,d} in all;")
    assert len(text.splitlines()) == 2 + 3 + 3 + 1  # two titles, six layers, totals
