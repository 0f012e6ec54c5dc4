"""mtgan.nets.resnet: the SNGAN-style residual factory, held to the factory protocol, its
sharing (task-own copies are independent, shared layers reach every task) and its spectral
norm."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from mtgan.config import ModelConfig
from mtgan.nets import StackedConv2d, StackedLinear
from mtgan.nets.protocol import NetSpec, check_family, check_shapes, own_slice
from mtgan.nets.resnet import build

K, Z = 3, 8
DIGITS, CIFAR = (1, 28, 28), (3, 32, 32)
TINY = {"width": 4}


def spec(
    data_shape: tuple[int, ...] = DIGITS,
    share: dict | None = None,
    options: dict | None = None,
    num_classes: int = 0,
) -> NetSpec:
    model = ModelConfig(share=share) if share is not None else None
    return NetSpec(
        data_shape,
        K,
        K,
        K,
        list(range(K)),
        list(range(K)),
        Z,
        num_classes=num_classes,
        options=dict(TINY if options is None else options),
        model=model,
    )


def built(s: NetSpec, seed: int = 0) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    return build(s)


@pytest.mark.parametrize("shape", [DIGITS, CIFAR])
@pytest.mark.parametrize("num_classes", [0, 10])
def test_the_families_meet_the_protocol(shape, num_classes):
    s = spec(shape, num_classes=num_classes)
    g, d = built(s)
    assert check_family(g, "generators", K, "resnet") == []
    assert check_family(d, "discriminators", K, "resnet") == []
    assert check_shapes(g, d, s, "resnet") == []
    fake = g(torch.randn(K, 5, s.in_dim))
    assert fake.shape == (K, 5, *shape)
    assert d.features(fake).shape == (K, 5, d.feature_dim) == (K, 5, 4)
    assert d(fake).shape == (K, 5, 1)


def test_generated_images_lie_in_minus_one_to_one_even_for_large_inputs():
    g, _ = built(spec(CIFAR))
    out = g(100 * torch.randn(K, 4, Z))
    assert out.abs().max() <= 1 and out.abs().max() > 0.5  # tanh, and not all near zero


def test_digits_are_the_centre_of_a_32x32_image_and_the_discriminator_pads_with_minus_one():
    g, d = built(spec(DIGITS))
    z = torch.randn(K, 2, Z)
    full = copy.deepcopy(g)
    full.border = 0  # the same weights, uncropped
    g.eval(), full.eval()
    assert full(z).shape[-2:] == (32, 32)
    torch.testing.assert_close(g(z), full(z)[..., 2:30, 2:30])
    x = torch.rand(K, 2, *DIGITS) * 2 - 1
    padded = nn.functional.pad(x, (2, 2, 2, 2), value=-1.0)
    big = copy.deepcopy(d)
    big.border = 0  # the same weights, fed the 32×32 image by hand
    d.eval(), big.eval()
    torch.testing.assert_close(d(x), big(padded))


def _outputs(net: nn.Module, x: Tensor) -> Tensor:
    """Samples or logits in eval mode: running statistics and stored power-iteration vectors,
    so two calls differ only where the parameters do."""
    net.eval()
    with torch.no_grad():
        return net(x)


@pytest.mark.parametrize("kind", ["g", "d"])
@pytest.mark.parametrize("share", ["trunk", "none", "all_but_last"])
def test_a_task_own_copy_moves_only_its_task_and_a_shared_parameter_moves_all(kind, share):
    s = spec(share={"generator": share, "discriminator": share})
    g, d = built(s)
    net = g if kind == "g" else d
    torch.manual_seed(1)
    x = torch.randn(K, 2, Z) if kind == "g" else torch.rand(K, 2, *DIGITS) * 2 - 1
    before = _outputs(net, x)
    shared = {id(p) for p in net.shared_parameters()}
    checked = 0
    for name, p in net.named_parameters():
        with torch.no_grad():
            old = p.detach().clone()
            if id(p) in shared:
                p.add_(0.5 * torch.randn_like(p))
                moved = list(range(K))
            else:
                part = own_slice(p, K, 1)
                part.add_(0.5 * torch.randn_like(part))
                moved = [1]
        after = _outputs(net, x)
        with torch.no_grad():
            p.copy_(old)
        changed = [k for k in range(K) if not torch.equal(after[k], before[k])]
        assert changed == moved, name
        checked += 1
    assert checked == len(list(net.parameters()))


def test_shared_parameters_are_exactly_the_trunk():
    g, d = built(spec(share={"generator": "trunk", "discriminator": "trunk"}))
    g_shared = {id(p) for p in g.shared_parameters()}
    for name, p in g.named_parameters():
        assert (id(p) in g_shared) == name.startswith("blocks."), name
        if name.startswith("blocks.") and name.endswith(("bn1.weight", "bn2.bias")):
            assert p.shape[0] == 1  # a shared layer's batch norm shares γ, β too
    assert g.output.bn.weight.shape == (K, 4)  # a task-own layer's: one per network
    d_shared = {id(p) for p in d.shared_parameters()}
    for name, p in d.named_parameters():
        trunk = name.startswith(("blocks.1.", "blocks.2.", "blocks.3."))
        assert (id(p) in d_shared) == trunk, name
    assert len(d.shared_parameters()) == len(set(map(id, d.shared_parameters())))
    assert d.head_copies == K


def test_sharing_specs_pick_the_layers_and_the_head_copies():
    g, d = built(spec(share={"generator": "all", "discriminator": "all_but_first"}))
    assert len(g.shared_parameters()) == len(list(g.parameters()))
    assert d.head_copies == 1
    assert all(p.shape[0] % K == 0 for p in d.blocks[0].parameters())
    _, d = built(spec(share={"generator": 0, "discriminator": [0, -1]}))
    assert d.head_copies == 1
    ids = {id(p) for p in d.shared_parameters()}
    assert ids == {id(p) for m in (d.blocks[0], d.linear) for p in m.parameters()}
    _, d = built(spec())  # no model config: trunk
    assert d.head_copies == K and len(d.shared_parameters()) > 0


@pytest.mark.parametrize("share", ["trunk", "none", "all"])
def test_every_discriminator_weight_has_spectral_norm_one_per_copy(share):
    _, d = built(spec(CIFAR, share={"generator": "none", "discriminator": share}))
    d.train()
    layers = [
        m
        for m in d.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear, StackedConv2d, StackedLinear))
    ]
    assert len(layers) == 4 * 3 - 1 + 1  # three convs a block (two in the last), the linear
    for m in layers:
        assert parametrize.is_parametrized(m, "weight")
        for _ in range(60):  # each training-mode read runs one power iteration
            w = m.weight
        w = w.detach()
        if isinstance(m, StackedLinear):
            mats = w.transpose(1, 2)  # (K, in, out) → each copy's (out, in)
        elif isinstance(m, StackedConv2d):  # a shared conv is one copy
            mats = w.reshape(m.copies, m.out_ch, -1)
        else:
            mats = w.reshape(1, w.shape[0], -1)
        sigma = torch.linalg.matrix_norm(mats, ord=2)
        torch.testing.assert_close(sigma, torch.ones_like(sigma), atol=2e-2, rtol=0)


def test_generator_has_no_spectral_norm_and_per_task_batch_norm():
    g, _ = built(spec())
    assert not any(parametrize.is_parametrized(m) for m in g.modules())
    # task 0's samples alone set its batch statistics: scaling task 2's z leaves task 0 alone
    g.train()
    z = torch.randn(K, 4, Z)
    a = g(z)
    z2 = z.clone()
    z2[2] *= 5
    b = g(z2)
    torch.testing.assert_close(a[0], b[0])
    assert not torch.allclose(a[2], b[2])


def test_a_hinge_step_moves_every_parameter_and_stays_finite():
    g, d = built(spec(share={"generator": "trunk", "discriminator": "all_but_last"}))
    opt_g = torch.optim.Adam(g.parameters(), 1e-3, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(d.parameters(), 1e-3, betas=(0.0, 0.9))
    real = torch.rand(K, 4, *DIGITS) * 2 - 1
    z = torch.randn(K, 4, Z)
    for net, opt, loss_of in (
        (d, opt_d, lambda: (1 - d(real)).relu().mean() + (1 + d(g(z).detach())).relu().mean()),
        (g, opt_g, lambda: -d(g(z)).mean()),
    ):
        before = [p.detach().clone() for p in net.parameters()]
        opt.zero_grad()
        loss = loss_of()
        loss.backward()
        assert torch.isfinite(loss)
        for name, p in net.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, name
        opt.step()
        for (name, p), old in zip(net.named_parameters(), before):
            assert torch.isfinite(p).all() and not torch.equal(p, old), name
    assert torch.isfinite(d(g(z))).all()


def test_width_changes_the_parameter_count():
    def count(width: int) -> tuple[int, int]:
        g, d = built(spec(options={"width": width}))
        return sum(p.numel() for p in g.parameters()), sum(p.numel() for p in d.parameters())

    small, large = count(4), count(8)
    assert small[0] < large[0] and small[1] < large[1]
    _, d = built(spec(options={"width": 6}))
    assert d.feature_dim == 6


@pytest.mark.parametrize(
    "options, message",
    [({"width": 4, "depth": 3}, "unknown option.*depth.*know: width"), ({"width": 0}, "width")],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        build(spec(options=options))


@pytest.mark.parametrize("shape", [(3, 64, 64), (1, 28, 32), (2,), (3, 16, 16)])
def test_unsupported_data_is_refused_naming_the_sizes(shape):
    with pytest.raises(ValueError, match="32×32 and 28×28") as err:
        build(spec(shape))
    assert str(tuple(shape)) in str(err.value)


def test_state_dict_names_depend_only_on_the_spec():
    s = spec(share={"generator": "trunk", "discriminator": "all_but_last"})
    g1, d1 = built(s, seed=0)
    g2, d2 = built(s, seed=1)
    assert list(g1.state_dict()) == list(g2.state_dict())
    assert list(d1.state_dict()) == list(d2.state_dict())
    g2.load_state_dict(g1.state_dict())
    d2.load_state_dict(d1.state_dict())
    z, x = torch.randn(K, 2, Z), torch.rand(K, 2, *DIGITS)
    torch.testing.assert_close(_outputs(g2, z), _outputs(g1, z))
    torch.testing.assert_close(_outputs(d2, x), _outputs(d1, x))
    # EMA keeps a deep copy: it must compute the same
    torch.testing.assert_close(_outputs(copy.deepcopy(d1), x), _outputs(d1, x))


def test_the_last_discriminator_block_is_relu_first_with_an_identity_shortcut():
    # On inputs below zero the residual branch sees ReLU(x) = 0, a constant, so the block's
    # output moves with its input exactly as the identity shortcut does.
    _, d = built(spec(share={"generator": "none", "discriminator": "none"}))
    block = d.blocks[3].eval()
    a, b = -torch.rand(2, K, 2, 4, 4, 4) - 0.1
    torch.testing.assert_close(block(a) - block(b), a - b)


def test_the_channels_last_layout_switch_reaches_every_conv_and_computes_the_same():
    # train.channels_last sets the flag on each StackedConv2d; shared convs are one-copy ones
    g, d = built(spec(share={"generator": "trunk", "discriminator": "all_but_first"}))
    z, x = torch.randn(K, 3, Z), torch.rand(K, 3, *DIGITS) * 2 - 1
    before = _outputs(g, z), _outputs(d, x)
    convs = [m for net in (g, d) for m in net.modules() if isinstance(m, StackedConv2d)]
    assert len(convs) == 3 * 3 + 1 + 3 * 3 + 2  # every conv of both families
    for m in convs:
        m.channels_last = True
    torch.testing.assert_close(_outputs(g, z), before[0])
    torch.testing.assert_close(_outputs(d, x), before[1])
