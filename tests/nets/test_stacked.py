"""Task-stacked layers behave exactly like K separate torch layers, forward and backward."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from mtgan.nets import StackedConv2d, StackedConvTranspose2d, StackedLinear, TaskBatchNorm
from mtgan.nets.stacked import StackedSpectralNorm, add_spectral_norm

K, B = 4, 5
TOL = {"atol": 1e-5, "rtol": 1e-5}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _forward_backward(stacked: nn.Module, refs: list[nn.Module], x: torch.Tensor):
    """Run the stacked module and the K references on the same input and upstream gradient."""
    x_stacked = x.clone().requires_grad_(True)
    x_refs = x.clone().requires_grad_(True)
    y = stacked(x_stacked)
    y_ref = torch.stack([ref(x_refs[k]) for k, ref in enumerate(refs)])
    upstream = torch.randn_like(y_ref)
    y.backward(upstream)
    y_ref.backward(upstream)
    return y, y_ref, x_stacked.grad, x_refs.grad


@pytest.mark.parametrize("bias", [True, False])
def test_stacked_linear_equals_k_separate_linear_layers_forward_and_backward(bias):
    stacked = StackedLinear(K, 7, 3, bias=bias)
    refs = []
    for k in range(K):
        ref = nn.Linear(7, 3, bias=bias)
        with torch.no_grad():
            ref.weight.copy_(stacked.weight[k].T)
            if bias:
                ref.bias.copy_(stacked.bias[k, 0])
        refs.append(ref)

    y, y_ref, gx, gx_ref = _forward_backward(stacked, refs, torch.randn(K, B, 7))

    assert y.shape == (K, B, 3)
    assert_close(y, y_ref, **TOL)
    assert_close(gx, gx_ref, **TOL)
    for k, ref in enumerate(refs):
        assert_close(stacked.weight.grad[k].T, ref.weight.grad, **TOL)
        if bias:
            assert_close(stacked.bias.grad[k, 0], ref.bias.grad, **TOL)


def test_stacked_linear_copy_weight_is_copy_k_in_nn_linear_layout():
    stacked = StackedLinear(K, 7, 3)
    weight, bias = stacked.copy_weight(2)
    assert weight.shape == (3, 7)
    assert torch.equal(weight, stacked.weight[2].T)
    assert torch.equal(bias, stacked.bias[2, 0])
    assert StackedLinear(K, 7, 3, bias=False).copy_weight(0)[1] is None


def test_stacked_linear_copies_are_initialised_independently_within_nn_linear_bound():
    stacked = StackedLinear(K, 16, 8)
    bound = 1 / 16**0.5
    assert stacked.weight.abs().max() <= bound
    assert stacked.bias.abs().max() <= bound
    assert not torch.equal(stacked.weight[0], stacked.weight[1])


def test_stacked_conv2d_equals_k_separate_conv2d_layers_forward_and_backward():
    c_in, c_out = 3, 4
    stacked = StackedConv2d(K, c_in, c_out, 3, 2, 1)
    assert stacked.weight.shape == (K * c_out, c_in, 3, 3)
    refs = []
    for k in range(K):
        ref = nn.Conv2d(c_in, c_out, 3, 2, 1)
        with torch.no_grad():
            ref.weight.copy_(stacked.weight[k * c_out : (k + 1) * c_out])
            ref.bias.copy_(stacked.bias[k * c_out : (k + 1) * c_out])
        refs.append(ref)

    y, y_ref, gx, gx_ref = _forward_backward(stacked, refs, torch.randn(K, B, c_in, 8, 8))

    assert y.shape == (K, B, c_out, 4, 4)
    assert_close(y, y_ref, **TOL)
    assert_close(gx, gx_ref, **TOL)
    for k, ref in enumerate(refs):
        assert_close(stacked.weight.grad[k * c_out : (k + 1) * c_out], ref.weight.grad, **TOL)
        assert_close(stacked.bias.grad[k * c_out : (k + 1) * c_out], ref.bias.grad, **TOL)


def test_stacked_conv_transpose2d_equals_k_separate_layers_forward_and_backward():
    c_in, c_out = 3, 2
    stacked = StackedConvTranspose2d(K, c_in, c_out, 4, 2, 1)
    assert stacked.weight.shape == (K * c_in, c_out, 4, 4)
    refs = []
    for k in range(K):
        ref = nn.ConvTranspose2d(c_in, c_out, 4, 2, 1)
        with torch.no_grad():
            ref.weight.copy_(stacked.weight[k * c_in : (k + 1) * c_in])
            ref.bias.copy_(stacked.bias[k * c_out : (k + 1) * c_out])
        refs.append(ref)

    y, y_ref, gx, gx_ref = _forward_backward(stacked, refs, torch.randn(K, B, c_in, 5, 5))

    assert y.shape == (K, B, c_out, 10, 10)
    assert_close(y, y_ref, **TOL)
    assert_close(gx, gx_ref, **TOL)
    for k, ref in enumerate(refs):
        assert_close(stacked.weight.grad[k * c_in : (k + 1) * c_in], ref.weight.grad, **TOL)
        assert_close(stacked.bias.grad[k * c_out : (k + 1) * c_out], ref.bias.grad, **TOL)


@pytest.mark.parametrize(
    ("spatial", "ref_cls"), [((), nn.BatchNorm1d), ((4, 3), nn.BatchNorm2d)], ids=["1d", "2d"]
)
def test_stacked_batch_norm_uses_per_copy_statistics_like_k_separate_batch_norms(spatial, ref_cls):
    channels = 3
    stacked = TaskBatchNorm(K, channels)
    with torch.no_grad():  # non-trivial affine parameters, different per copy
        stacked.weight.uniform_(0.5, 2.0)
        stacked.bias.normal_()
    refs = []
    for k in range(K):
        ref = ref_cls(channels)
        with torch.no_grad():
            ref.weight.copy_(stacked.weight.view(K, channels)[k])
            ref.bias.copy_(stacked.bias.view(K, channels)[k])
        refs.append(ref)
    # Copies with very different means and scales: pooled statistics would give other outputs.
    shift = torch.tensor([-5.0, 0.0, 3.0, 10.0]).view(K, 1, 1, *[1] * len(spatial))
    scale = torch.tensor([0.1, 1.0, 4.0, 20.0]).view(K, 1, 1, *[1] * len(spatial))
    x = torch.randn(K, B, channels, *spatial) * scale + shift

    y, y_ref, gx, gx_ref = _forward_backward(stacked, refs, x)

    assert y.shape == x.shape
    assert_close(y, y_ref, **TOL)
    assert_close(gx, gx_ref, atol=1e-4, rtol=1e-4)
    running_mean = stacked.running_mean.view(K, channels)
    running_var = stacked.running_var.view(K, channels)
    for k, ref in enumerate(refs):
        assert_close(running_mean[k], ref.running_mean, **TOL)
        assert_close(running_var[k], ref.running_var, **TOL)
    assert running_var[3].min() > 10 * running_var[0].max()  # really per copy, not pooled

    stacked.eval()
    for ref in refs:
        ref.eval()
    with torch.no_grad():
        assert_close(stacked(x), torch.stack([ref(x[k]) for k, ref in enumerate(refs)]), **TOL)


SCALES = [1e-2, 1.0, 30.0, 1e3]


def _power_iterate(module: nn.Module, x: torch.Tensor, steps: int = 50) -> None:
    module.train()
    with torch.no_grad():
        for _ in range(steps):
            module(x)


def test_spectral_norm_normalises_each_linear_copy_to_unit_largest_singular_value():
    module = StackedLinear(K, 12, 6)
    with torch.no_grad():
        for k, s in enumerate(SCALES):
            module.weight[k] *= s
    raw = module.weight.detach().clone()
    add_spectral_norm(module, K)
    assert isinstance(module.parametrizations.weight[0], StackedSpectralNorm)

    _power_iterate(module, torch.randn(K, B, 12))

    weight = module.weight.detach()
    sigma = torch.linalg.matrix_norm(weight, ord=2)
    assert_close(sigma, torch.ones(K), atol=1e-3, rtol=0)
    # Each copy is divided by its own σ, so the copies' directions are untouched.
    raw_sigma = torch.linalg.matrix_norm(raw, ord=2)
    assert_close(weight, raw / raw_sigma.view(K, 1, 1), atol=1e-4, rtol=1e-3)
    assert raw_sigma[-1] / raw_sigma[0] > 1e4


def test_spectral_norm_normalises_each_conv_copy_to_unit_largest_singular_value():
    c_in, c_out = 3, 5
    module = StackedConv2d(K, c_in, c_out, 3, 1, 1)
    with torch.no_grad():
        for k, s in enumerate(SCALES):
            module.weight[k * c_out : (k + 1) * c_out] *= s
    add_spectral_norm(module, K)

    _power_iterate(module, torch.randn(K, B, c_in, 6, 6))

    per_copy = module.weight.detach().reshape(K, c_out, c_in * 9)
    assert_close(torch.linalg.matrix_norm(per_copy, ord=2), torch.ones(K), atol=1e-3, rtol=0)


def test_spectral_norm_gradients_reach_the_raw_weight_and_eval_does_not_update_u():
    module = add_spectral_norm(StackedLinear(K, 6, 4), K)
    x = torch.randn(K, B, 6)
    module(x).square().sum().backward()
    grad = module.parametrizations.weight.original.grad
    assert grad is not None and grad.abs().sum() > 0

    norm = module.parametrizations.weight[0]
    module.eval()
    u = norm.u.clone()
    with torch.no_grad():
        first, second = module(x), module(x)
    assert torch.equal(norm.u, u)
    assert torch.equal(first, second)
    module.train()
    with torch.no_grad():
        module(x)
    assert not torch.equal(norm.u, u)


def test_add_spectral_norm_without_copies_uses_torch_spectral_norm():
    module = add_spectral_norm(nn.Linear(6, 4), None)
    assert not any(isinstance(p, StackedSpectralNorm) for p in module.parametrizations.weight)
    _power_iterate(module, torch.randn(B, 6))
    assert_close(torch.linalg.matrix_norm(module.weight.detach(), ord=2), torch.tensor(1.0))


def test_networks_of_one_task_pool_their_statistics_and_keep_their_own_gamma_beta():
    # MGAN: 4 generators on one task; an own layer's norm normalises their samples together
    # (one mixture), then applies each generator's own γ, β; running statistics are the task's.
    channels = 3
    norm = TaskBatchNorm(K, channels, groups=1)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.normal_()
    x = torch.randn(K, B, channels) * torch.tensor([0.1, 1.0, 4.0, 20.0]).view(K, 1, 1)
    ref = torch.nn.BatchNorm1d(channels, affine=False)
    pooled = ref(x.reshape(K * B, channels)).reshape(K, B, channels)
    expected = pooled * norm.weight[:, None] + norm.bias[:, None]
    assert_close(norm(x), expected, **TOL)
    assert norm.running_mean.shape == (1, channels)
    assert_close(norm.running_mean[0], ref.running_mean, **TOL)
    norm.eval()
    ref.eval()
    with torch.no_grad():
        pooled = ref(x.reshape(K * B, channels)).reshape(K, B, channels)
        assert_close(norm(x), pooled * norm.weight[:, None] + norm.bias[:, None], **TOL)


@pytest.mark.parametrize("groups, shared", [(None, False), (1, False), (None, True)])
def test_batch_norm_from_summed_statistics_equals_batch_norm(groups, shared):
    # train.sync_bn's path (statistics from one summed vector) on one process: the sum over
    # ranks is the identity, and output, gradients and running statistics are F.batch_norm's.
    torch.manual_seed(0)
    plain = TaskBatchNorm(4, 3, groups=groups, shared_affine=shared).double()
    with torch.no_grad():
        plain.weight.uniform_(0.5, 1.5)
        plain.bias.uniform_(-1, 1)
    synced = TaskBatchNorm(4, 3, groups=groups, shared_affine=shared).double()
    synced.load_state_dict(plain.state_dict())
    synced.sync = lambda stats: stats
    x = torch.randn(4, 8, 3, 5, 5, dtype=torch.float64, requires_grad=True)
    outs = [norm(x) for norm in (plain, synced)]
    grads = [
        torch.autograd.grad(out.pow(3).sum(), [x, norm.weight, norm.bias])
        for out, norm in zip(outs, (plain, synced))
    ]
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-12, atol=1e-12)
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(synced.running_mean, plain.running_mean)
    torch.testing.assert_close(synced.running_var, plain.running_var)


@pytest.mark.parametrize("copies", [1, 3])
def test_channels_last_convolutions_compute_the_same(copies):
    # train.channels_last: the same chain of stacked (transposed) convolutions in NHWC memory.
    torch.manual_seed(0)
    chain = nn.Sequential(
        StackedConvTranspose2d(copies, 8, 4, kernel=4, stride=2, padding=1),
        StackedConv2d(copies, 4, 6, kernel=3, stride=1, padding=1),
        StackedConv2d(copies, 6, 2, kernel=4, stride=2, padding=1),
    ).double()
    x = torch.randn(copies, 5, 8, 7, 7, dtype=torch.float64, requires_grad=True)
    results = []
    for on in (False, True):
        for conv in chain:
            conv.channels_last = on
        out = chain(x)
        grads = torch.autograd.grad(out.pow(2).sum(), [x, *chain.parameters()])
        results.append((out, grads))
    (plain, plain_grads), (nhwc, nhwc_grads) = results
    assert nhwc.shape == plain.shape == (copies, 5, 2, 7, 7)
    torch.testing.assert_close(nhwc, plain, rtol=1e-12, atol=1e-12)
    for a, b in zip(plain_grads, nhwc_grads):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)
