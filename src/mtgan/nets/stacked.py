"""Task-stacked layers: K task-specific copies of a layer as one module with a leading copy
dimension, so K tasks cost one batched kernel instead of K Python calls.

Every module here takes and returns tensors in the stacked layout (K, B, ...).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize


class StackedLinear(nn.Module):
    """K independent linear maps: (K, B, in) → (K, B, out) with one `baddbmm`.

    The weight is stored as (K, in, out) so the batched product needs no transpose; each copy is
    initialised like `nn.Linear` (Kaiming-uniform with a=√5, bias uniform in ±1/√in).
    """

    def __init__(self, copies: int, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.copies, self.in_features, self.out_features = copies, in_features, out_features
        self.weight = nn.Parameter(torch.empty(copies, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(copies, 1, out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_features)  # nn.Linear's kaiming_uniform(a=√5) bound
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        if self.bias is None:
            return torch.bmm(x, self.weight)
        return torch.baddbmm(self.bias, x, self.weight)

    def copy_weight(self, k: int) -> tuple[Tensor, Tensor | None]:
        """Copy k as `nn.Linear` parameters: weight (out, in), bias (out,)."""
        bias = None if self.bias is None else self.bias[k, 0]
        return self.weight[k].t(), bias

    def extra_repr(self) -> str:
        return f"copies={self.copies}, in={self.in_features}, out={self.out_features}"


class _StackedConvBase(nn.Module):
    """K convolutions as one grouped convolution over the channels of all copies."""

    transposed = False

    def __init__(
        self,
        copies: int,
        in_ch: int,
        out_ch: int,
        kernel: int,
        stride: int,
        padding: int,
        bias: bool = True,
    ):
        super().__init__()
        self.copies, self.in_ch, self.out_ch = copies, in_ch, out_ch
        self.stride, self.padding = stride, padding
        # One nn.Conv per copy gives the default initialisation; their weights are then stacked
        # along the channel axis, which is exactly the layout a grouped convolution expects.
        cls = nn.ConvTranspose2d if self.transposed else nn.Conv2d
        convs = [cls(in_ch, out_ch, kernel, stride, padding) for _ in range(copies)]
        self.weight = nn.Parameter(torch.cat([c.weight.data for c in convs]))
        # no bias before a batch norm, which subtracts it (its gradient is rounding alone)
        self.bias = nn.Parameter(torch.cat([c.bias.data for c in convs])) if bias else None

    # train.channels_last (training/layout.py): the grouped convolution in NHWC memory. Each
    # layer's speed in either layout differs by up to 3× either way on one CPU, so a run
    # measures its own networks to choose.
    channels_last = False

    def _conv(self, x: Tensor, weight: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        k, b, c, h, w = x.shape
        if not self.channels_last:
            # (K, B, C, H, W) → (B, K·C, H, W): copy k's channels form group k.
            y = self._conv(x.transpose(0, 1).reshape(b, k * c, h, w), self.weight)
            return y.reshape(b, k, self.out_ch, *y.shape[2:]).transpose(0, 1)
        # The same in NHWC: (B, H, W, K·C) in memory, and back to (K, B, C', H', W') as a view,
        # so a chain of these layers makes one copy per layer instead of three.
        nhwc = x.permute(1, 3, 4, 0, 2).reshape(b, h, w, k * c).permute(0, 3, 1, 2)
        y = self._conv(nhwc, self.weight.contiguous(memory_format=torch.channels_last))
        y = y.contiguous(memory_format=torch.channels_last)  # what the kernel gave, or a copy
        out = y.permute(0, 2, 3, 1).reshape(b, *y.shape[2:], k, self.out_ch)
        return out.permute(3, 0, 4, 1, 2)

    def extra_repr(self) -> str:
        return f"copies={self.copies}, in={self.in_ch}, out={self.out_ch}, stride={self.stride}"


class StackedConv2d(_StackedConvBase):
    """K `nn.Conv2d` copies; weight (K·out, in, k, k)."""

    def _conv(self, x: Tensor, weight: Tensor) -> Tensor:
        return F.conv2d(x, weight, self.bias, self.stride, self.padding, groups=self.copies)


class StackedConvTranspose2d(_StackedConvBase):
    """K `nn.ConvTranspose2d` copies; weight (K·in, out, k, k)."""

    transposed = True

    def _conv(self, x: Tensor, weight: Tensor) -> Tensor:
        return F.conv_transpose2d(
            x, weight, self.bias, self.stride, self.padding, groups=self.copies
        )


class TaskBatchNorm(nn.Module):
    """Batch norm for a family of K networks: statistics per task, γ and β per network or
    shared by all (`shared_affine`, the norm of a shared layer).

    The K networks serve `groups` tasks in contiguous runs (one network per task, or all on one
    task). Each task's samples are normalised by their own mean and variance, in training and,
    through per-task running statistics, in eval mode, as separate networks would be: pooling
    over all tasks would make task k's output (and the gradient into the others' own layers)
    depend on every other task's samples. Networks of one task (MGAN's generators) pool their
    samples: together they are one mixture model, and normalising each generator's share of the
    batch alone would be noise (10 samples each at batch 100).
    forward: (K, B, C, ...) → same shape.
    """

    def __init__(
        self,
        copies: int,
        channels: int,
        groups: int | None = None,
        shared_affine: bool = False,
        momentum: float | None = 0.1,
        eps: float = 1e-5,
    ):
        super().__init__()
        groups = groups or copies
        if copies % groups:
            raise ValueError(f"{copies} networks cannot form {groups} equal task groups")
        self.copies, self.channels, self.groups = copies, channels, groups
        self.momentum, self.eps = momentum, eps
        affine = 1 if shared_affine else copies
        self.weight = nn.Parameter(torch.ones(affine, channels))
        self.bias = nn.Parameter(torch.zeros(affine, channels))
        self.register_buffer("running_mean", torch.zeros(groups, channels))
        self.register_buffer("running_var", torch.ones(groups, channels))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        # train.sync_bn under data parallelism: a differentiable sum over ranks, set by the
        # trainer on its model's norms only (not the EMA copy's: rank 0 alone computes their
        # standing statistics), and used in training mode only
        self.sync: Callable[[Tensor], Tensor] | None = None

    def forward(self, x: Tensor) -> Tensor:
        k, g, c = x.shape[0], self.groups, self.channels
        if k != self.copies:
            raise ValueError(f"a batch norm made for {self.copies} networks got {k}")
        if self.training:
            self.num_batches_tracked.add_(1)
        # γ, β fold into the normalisation when they are per task group (or shared by all).
        fused = self.weight.shape[0] in (1, g)
        weight = self.weight.expand(g, c).reshape(-1) if fused else None
        bias = self.bias.expand(g, c).reshape(-1) if fused else None
        # (K, B, C, ...) → (n, G·C, L): channel group g holds task g's samples (all of its
        # networks'); the running statistics are views, so F.batch_norm updates them in place.
        grouped = x.reshape(g, -1, c, *x.shape[3:])
        n = grouped.shape[1]
        flat = grouped.transpose(0, 1).reshape(n, g * c, -1)
        # None: a cumulative average (standing statistics, see training.ema)
        momentum = (
            self.momentum if self.momentum is not None else 1.0 / int(self.num_batches_tracked)
        )
        if self.training and self.sync is not None:
            out = self._across_ranks(flat, weight, bias, momentum)
        else:
            out = F.batch_norm(
                flat,
                self.running_mean.view(-1),
                self.running_var.view(-1),
                weight,
                bias,
                self.training,
                momentum,
                self.eps,
            )
        out = out.reshape(n, g, *grouped.shape[2:]).transpose(0, 1).reshape(x.shape)
        if fused:
            return out
        view = (k, 1, c) + (1,) * (x.dim() - 3)  # per-network γ, β over pooled statistics
        return torch.addcmul(self.bias.view(view), out, self.weight.view(view))

    def _across_ranks(
        self, flat: Tensor, weight: Tensor | None, bias: Tensor | None, momentum: float
    ) -> Tensor:
        """Batch norm with the statistics of the global batch (SyncBatchNorm's: one summed
        vector of per-channel sums, sums of squares and the count). torch's SyncBatchNorm is
        for CUDA tensors and torch's own layers; this one keeps the per-task grouping and runs
        on gloo too."""
        assert self.sync is not None
        x = flat.to(torch.promote_types(flat.dtype, torch.float32))  # bf16/fp16: sums in fp32
        channels = x.shape[1]
        count = x.new_full((1,), x.shape[0] * x.shape[2])
        stats = self.sync(torch.cat([x.sum((0, 2)), x.square().sum((0, 2)), count]))
        total = stats[-1]
        mean = stats[:channels] / total
        var = (stats[channels:-1] / total - mean.square()).clamp_min(0)
        with torch.no_grad():  # running statistics as F.batch_norm keeps them (unbiased var)
            unbiased = var * total / (total - 1).clamp_min(1)
            self.running_mean.view(-1).lerp_(mean.to(self.running_mean), momentum)
            self.running_var.view(-1).lerp_(unbiased.to(self.running_var), momentum)
        out = (x - mean[:, None]) * torch.rsqrt(var + self.eps)[:, None]
        if weight is not None and bias is not None:
            out = torch.addcmul(bias[:, None], out, weight[:, None])
        return out.to(flat.dtype)


class StackedSpectralNorm(nn.Module):
    """Per-copy spectral normalisation of a stacked weight, as a parametrization.

    torch's `spectral_norm` would normalise the whole stacked tensor by one σ; here each copy's
    matrix is divided by its own σ, estimated by one power iteration per training forward pass,
    as in Miyato et al. (2018).
    """

    def __init__(self, weight: Tensor, copies: int, eps: float = 1e-12):
        super().__init__()
        self.copies, self.eps = copies, eps
        rows = self._as_matrices(weight).shape[1]
        u = torch.randn(copies, rows, generator=torch.Generator().manual_seed(0))
        self.register_buffer("u", F.normalize(u, dim=1).to(weight))

    def _as_matrices(self, weight: Tensor) -> Tensor:
        # Linear: (K, in, out) already. Grouped conv: (K·a, b, kh, kw) → (K, a, b·kh·kw).
        if weight.dim() == 3:
            return weight
        return weight.reshape(self.copies, weight.shape[0] // self.copies, -1)

    def forward(self, weight: Tensor) -> Tensor:
        mat = self._as_matrices(weight)
        with torch.no_grad():
            u = self.u
            v = F.normalize(torch.einsum("kr,krc->kc", u, mat), dim=1, eps=self.eps)
            if self.training:
                u = F.normalize(torch.einsum("krc,kc->kr", mat, v), dim=1, eps=self.eps)
                v = F.normalize(torch.einsum("kr,krc->kc", u, mat), dim=1, eps=self.eps)
                self.u.copy_(u)
        sigma = torch.einsum("kr,krc,kc->k", u, mat, v)
        return (mat / sigma.reshape(-1, 1, 1)).reshape(weight.shape)


def add_spectral_norm(module: nn.Module, copies: int | None) -> nn.Module:
    """Spectrally normalise `module.weight`: per copy for stacked modules, torch's otherwise."""
    if copies is None:
        return nn.utils.parametrizations.spectral_norm(module)
    parametrize.register_parametrization(
        module, "weight", StackedSpectralNorm(module.weight, copies)
    )
    return module
