"""model.g_out_kernel: the generator's output layer as a small stride-1 convolution on a
full-size hidden map, so a task-own output layer can only map each pixel's neighbourhood
(CoGAN's coupling)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mtgan.config import load_config
from mtgan.errors import ConfigError
from mtgan.nets import MultiGAN

MNIST = (1, 28, 28)
MLP = ["model.z_dim=8", "model.g_hidden=[16,1568]", "model.d_hidden=[16]"]
DCGAN = ["model.arch=dcgan", "model.z_dim=8", "model.g_hidden=[16,8,4]", "model.d_hidden=[8,16]"]


def build(overrides: list[str], tasks: int = 2) -> MultiGAN:
    torch.manual_seed(0)
    overrides = ["model.share.generator=all_but_last", *overrides]
    return MultiGAN(load_config("pertask", overrides).model, MNIST, tasks)


@pytest.mark.parametrize(
    ("overrides", "kinds", "map_shape"),
    [
        (MLP, ["linear", "linear", "conv"], (2, 28, 28)),
        (DCGAN, ["linear", "deconv", "deconv", "conv"], (4, 28, 28)),
    ],
)
def test_out_kernel_ends_the_generator_with_a_size_keeping_conv_on_a_full_size_map(
    overrides, kinds, map_shape
):
    model = build([*overrides, "model.g_out_kernel=3"])
    blocks = model.generator.blocks
    assert [b.plan.kind for b in blocks] == kinds
    last = blocks[-1].plan
    assert (last.in_shape, last.out_shape) == (map_shape, MNIST)
    assert (last.kernel, last.stride, last.padding, last.activation) == (3, 1, 1, "tanh")
    assert blocks[-2].plan.activation == "relu" and blocks[-2].plan.norm == "batch"
    # all_but_last: only the small output convolution is task-own
    assert [b.shared for b in blocks] == [True] * (len(blocks) - 1) + [False]
    assert blocks[-1].affine.weight.numel() == 2 * map_shape[0] * 3 * 3
    fake = model.generate(torch.randn(2, 5, 8))
    assert fake.shape == (2, 5, *MNIST) and fake.abs().max() <= 1
    fake.sum().backward()
    assert all(p.grad is not None for p in model.generator.parameters())


def test_out_kernel_output_is_each_task_own_kernel_on_the_shared_map():
    model = build([*MLP, "model.g_out_kernel=3"]).eval()
    z = torch.randn(1, 4, 8).expand(2, -1, -1)
    shared = model.generator.features(z)  # (2, 4, 2, 28, 28), the same map for both tasks
    torch.testing.assert_close(shared[0], shared[1])
    conv = model.generator.blocks[-1].affine
    weight, bias = conv.weight.unflatten(0, (2, -1)), conv.bias.unflatten(0, (2, -1))
    out = model.generate(z)
    for k in range(2):
        expected = torch.tanh(F.conv2d(shared[k], weight[k], bias[k], padding=1))
        torch.testing.assert_close(out[k], expected)


def test_out_kernel_changes_a_pixel_only_through_its_neighbourhood():
    model = build([*MLP, "model.g_out_kernel=1"]).eval()
    block = model.generator.blocks[-1]
    x = torch.randn(2, 1, 2, 28, 28, requires_grad=True)
    block(x)[:, 0, 0, 10, 10].sum().backward()
    assert torch.count_nonzero(x.grad.abs().sum(dim=(0, 1, 2))) == 1


def test_describe_shows_the_output_kernel():
    text = "\n".join(r.plan for r in build([*MLP, "model.g_out_kernel=3"]).ownership())
    assert "conv   2×28×28 → 1×28×28 (kernel 3, stride 1, tanh)" in text


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.g_out_kernel=2"], r"^invalid config:\n  model.g_out_kernel: 2 is even"),
        (["model.g_out_kernel=0"], r"model.g_out_kernel: 0 is not allowed"),
    ],
)
def test_out_kernel_must_be_a_positive_odd_size(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config("pertask", overrides)


def test_mlp_last_width_that_is_no_multiple_of_the_image_area_is_a_config_error():
    with pytest.raises(ConfigError, match=r"^model.g_hidden: .*multiple of H·W = 784, got 512"):
        build(["model.g_hidden=[256,512]", "model.g_out_kernel=3"])


def test_out_kernel_on_points_is_a_config_error():
    cfg = load_config("pertask", [*MLP, "model.g_out_kernel=3"]).model
    with pytest.raises(ConfigError, match=r"^model.g_out_kernel: .*needs images"):
        MultiGAN(cfg, (2,), 2)


def test_without_out_kernel_the_generators_are_unchanged():
    plans = [b.plan for b in build(["model.g_hidden=[16,32]"]).generator.blocks]
    assert [(p.kind, p.out_shape) for p in plans] == [
        ("linear", (16,)),
        ("linear", (32,)),
        ("linear", (784,)),
    ]
