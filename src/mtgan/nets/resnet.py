"""A residual GAN for 32×32 images (SNGAN, Miyato et al. 2018, laid out as Mimicry writes it),
built against the factory protocol (mtgan.nets.protocol) with mtgan's public layers only, the
way a user's own factory would be: `build(spec)` → (generators, discriminators).

Generator layers: [linear z → ch×4×4, up-block ×3 (4 → 32), BN-ReLU-conv3×3 → C, tanh].
Discriminator layers: [optimized block (32 → 16), down-block (→ 8), down-block (→ 4), block
(4 → 4), linear ch → 1 on the ReLU'd features summed over space]; every weight spectrally
normalised. Which of the five layers are shared across the K networks follows
model.share.generator / model.share.discriminator (default `trunk`). A shared layer runs once
on the K·B batch; a task-own one holds K copies that run as one grouped kernel.
28×28 data (the bundled digits): the networks work at 32×32, the generator crops the centre
28×28 and the discriminator pads its input back with -1 (the images' background).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtgan.nets import StackedConv2d, StackedLinear, TaskBatchNorm, resolve_share
from mtgan.nets.protocol import NetSpec
from mtgan.nets.stacked import add_spectral_norm

OPTIONS = {"width": 32}  # model.options this factory reads, with their defaults
BORDERS = {32: 0, 28: 2}  # image side → rows cropped (G) / padded (D) around the 32×32 networks
LAYERS = 5  # per family: what model.share indexes
RELU_GAIN = math.sqrt(2.0)  # Mimicry's xavier gain for convolutions followed by a ReLU


def build(spec: NetSpec) -> tuple[nn.Module, nn.Module]:
    """The factory: K residual generators and discriminators for `spec`'s 32×32 or 28×28
    images. Raises ValueError for other data or unknown `model.options`."""
    width = _width(spec.options)
    channels, border = _image(spec.data_shape)
    share = getattr(spec.model, "share", None)
    g_share = resolve_share(
        share.generator if share is not None else "trunk", LAYERS, "model.share.generator"
    )
    d_share = resolve_share(
        share.discriminator if share is not None else "trunk", LAYERS, "model.share.discriminator"
    )
    generators = ResNetGenerators(
        spec.in_dim,
        channels,
        border,
        width,
        spec.num_generators,
        len(set(spec.generator_tasks)),
        g_share,
    )
    discriminators = ResNetDiscriminators(channels, border, width, spec.num_discriminators, d_share)
    return generators, discriminators


def _width(options: Mapping[str, Any]) -> int:
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(
            f"model.options: unknown option(s) {', '.join(map(str, unknown))}; the resnet "
            f"networks know: {', '.join(OPTIONS)}"
        )
    width = options.get("width", OPTIONS["width"])
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"model.options.width: expected a positive int (channels), got {width!r}")
    return width


def _image(shape: tuple[int, ...]) -> tuple[int, int]:
    """(channels, border) of the data, or a ValueError naming the sizes supported."""
    if len(shape) != 3 or shape[1] != shape[2] or shape[1] not in BORDERS or shape[0] < 1:
        raise ValueError(
            f"the resnet networks are for 32×32 and 28×28 images (C, H, W); the data has "
            f"samples of shape {tuple(shape)}"
        )
    return shape[0], BORDERS[shape[1]]


def _xavier(parts: Tensor, gain: float) -> None:
    """Mimicry's initialisation, per copy: a stacked tensor's fans are those of one copy, so
    xavier on the whole (K·out, …) tensor would shrink the bound by up to √K."""
    with torch.no_grad():
        for part in parts:
            nn.init.xavier_uniform_(part, gain)


def _conv(
    c_in: int,
    c_out: int,
    kernel: int,
    copies: int | None,
    gain: float,
    sn: bool,
    bias: bool = True,
):
    """A stride-1, size-keeping convolution of K stacked copies, or of one copy if shared.

    A shared conv is a one-copy StackedConv2d rather than an nn.Conv2d so that the trainer's
    layout choice (train.channels_last, set on every StackedConv2d) reaches it too. `bias`
    off where a batch norm follows: it subtracts any bias, whose gradient is then rounding
    that Adam scales up to ±lr a step."""
    conv = StackedConv2d(copies or 1, c_in, c_out, kernel, 1, kernel // 2, bias)
    _xavier(conv.weight.unflatten(0, (copies or 1, -1)), gain)  # (K·out, in, k, k)
    return add_spectral_norm(conv, copies) if sn else conv


def _linear(n_in: int, n_out: int, copies: int | None, sn: bool) -> nn.Module:
    if copies is None:
        linear: nn.Module = nn.Linear(n_in, n_out)
        _xavier(linear.weight[None], 1.0)
    else:
        linear = StackedLinear(copies, n_in, n_out)
        _xavier(linear.weight, 1.0)  # (K, in, out); xavier is symmetric in the fans
    return add_spectral_norm(linear, copies) if sn else linear


def _per_image(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """A per-image op (pooling, resizing, padding) on (K, B, C, H, W) as one batch of B·K.

    B·K, not K·B: the grouped convolutions and TaskBatchNorm leave their outputs in (B, K, ...)
    memory, and flattening in that order makes this a view instead of a copy."""
    k, b = x.shape[:2]
    return fn(x.transpose(0, 1).flatten(0, 1)).unflatten(0, (b, k)).transpose(0, 1)


def _up(x: Tensor) -> Tensor:
    return _per_image(lambda t: F.interpolate(t, scale_factor=2, mode="nearest"), x)


def _down(x: Tensor) -> Tensor:
    return _per_image(lambda t: F.avg_pool2d(t, 2), x)


class _Layer(nn.Module):
    """One of a family's five layers: shared by its K networks (`copies=None`) or task-own.
    Tensors in and out are stacked (K, B, ...)."""

    def __init__(self, copies: int | None):
        super().__init__()
        self.copies = copies

    @property
    def shared(self) -> bool:
        return self.copies is None

    def conv(self, layer: nn.Module, x: Tensor) -> Tensor:
        # A shared conv is one copy run on all K·B images (in B·K order, see _per_image).
        if self.shared:
            return _per_image(lambda t: layer(t[None])[0], x)
        return layer(x)

    def extra_repr(self) -> str:
        return "shared" if self.shared else f"{self.copies} copies"


class _UpBlock(_Layer):
    """BN-ReLU-up×2-conv3-BN-ReLU-conv3, plus up×2-conv1 of the input: ch×s×s → ch×2s×2s."""

    def __init__(self, ch: int, copies: int | None, family: int, groups: int):
        super().__init__(copies)
        self.bn1 = TaskBatchNorm(family, ch, groups, shared_affine=copies is None)
        # every conv here feeds a batch norm (bn2, or the next layer's first): no biases
        self.conv1 = _conv(ch, ch, 3, copies, RELU_GAIN, sn=False, bias=False)
        self.bn2 = TaskBatchNorm(family, ch, groups, shared_affine=copies is None)
        self.conv2 = _conv(ch, ch, 3, copies, RELU_GAIN, sn=False, bias=False)
        self.shortcut = _conv(ch, ch, 1, copies, 1.0, sn=False, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv(self.conv1, _up(F.relu(self.bn1(x))))
        h = self.conv(self.conv2, F.relu(self.bn2(h)))
        # A 1×1 conv and nearest upsampling commute: convolving first costs a quarter.
        return h + _up(self.conv(self.shortcut, x))


class _ToImage(_Layer):
    """BN-ReLU-conv3 → C channels, tanh: ch×32×32 → C×32×32 in [-1, 1]."""

    def __init__(self, ch: int, channels: int, copies: int | None, family: int, groups: int):
        super().__init__(copies)
        self.bn = TaskBatchNorm(family, ch, groups, shared_affine=copies is None)
        self.conv_out = _conv(ch, channels, 3, copies, 1.0, sn=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.conv_out, F.relu(self.bn(x))).tanh()


class _OptimizedBlock(_Layer):
    """conv3-ReLU-conv3-pool2, plus pool2-conv1 of the input: C×32×32 → ch×16×16. No ReLU
    before the first conv: it would clip the image itself (Miyato et al.'s first block)."""

    def __init__(self, channels: int, ch: int, copies: int | None):
        super().__init__(copies)
        self.conv1 = _conv(channels, ch, 3, copies, RELU_GAIN, sn=True)
        self.conv2 = _conv(ch, ch, 3, copies, RELU_GAIN, sn=True)
        self.shortcut = _conv(channels, ch, 1, copies, 1.0, sn=True)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv(self.conv2, F.relu(self.conv(self.conv1, x)))
        return _down(h) + self.conv(self.shortcut, _down(x))


class _DownBlock(_Layer):
    """ReLU-conv3-ReLU-conv3[-pool2], plus conv1[-pool2] of the input when it downsamples,
    the input itself when not (Mimicry's rule: a shortcut conv only where the shape changes)."""

    def __init__(self, ch: int, copies: int | None, downsample: bool):
        super().__init__(copies)
        self.conv1 = _conv(ch, ch, 3, copies, RELU_GAIN, sn=True)
        self.conv2 = _conv(ch, ch, 3, copies, RELU_GAIN, sn=True)
        self.shortcut = _conv(ch, ch, 1, copies, 1.0, sn=True) if downsample else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv(self.conv2, F.relu(self.conv(self.conv1, F.relu(x))))
        if self.shortcut is None:
            return h + x
        # Average pooling and a 1×1 conv commute: pooling first costs a quarter.
        return _down(h) + self.conv(self.shortcut, _down(x))


class _Family(nn.Module):
    """What both families share: `copies`, the shared layer indices, shared_parameters()."""

    def __init__(self, copies: int, shared: set[int]):
        super().__init__()
        self.copies = copies
        self.shared_layers = frozenset(shared)

    def layers(self) -> list[nn.Module]:
        raise NotImplementedError

    def shared_parameters(self) -> list[nn.Parameter]:
        """Every parameter of the shared layers (their batch norms' γ, β included): one tensor
        that all K networks compute with."""
        return [
            p
            for i, layer in enumerate(self.layers())
            if i in self.shared_layers
            for p in layer.parameters()
        ]


class ResNetGenerators(_Family):
    """K residual generators: z (K, B, in_dim) → images (K, B, C, H, W) in [-1, 1]."""

    def __init__(
        self,
        in_dim: int,
        channels: int,
        border: int,
        width: int,
        copies: int,
        groups: int,
        shared: set[int],
    ):
        super().__init__(copies, shared)
        own = [None if i in shared else copies for i in range(LAYERS)]
        self.width, self.border = width, border
        self.linear = _linear(in_dim, width * 4 * 4, own[0], sn=False)
        self.blocks = nn.ModuleList(_UpBlock(width, own[i], copies, groups) for i in (1, 2, 3))
        self.output = _ToImage(width, channels, own[4], copies, groups)

    def layers(self) -> list[nn.Module]:
        return [self.linear, *self.blocks, self.output]

    def forward(self, z: Tensor) -> Tensor:
        h = self.linear(z).unflatten(-1, (self.width, 4, 4))  # nn.Linear broadcasts over K, B
        for block in self.blocks:
            h = block(h)
        out = self.output(h)
        if self.border:
            b = self.border
            out = out[..., b:-b, b:-b]
        return out.contiguous()  # (B, K, ...) in memory; callers may expect a plain tensor


class ResNetDiscriminators(_Family):
    """K residual discriminators: x (K, B, C, H, W) → features (K, B, width) → logits
    (K, B, 1)."""

    def __init__(self, channels: int, border: int, width: int, copies: int, shared: set[int]):
        super().__init__(copies, shared)
        own = [None if i in shared else copies for i in range(LAYERS)]
        self.border = border
        self.feature_dim = width
        # auxiliary heads follow the logit layer: shared with it, or a copy per network
        self.head_copies = 1 if LAYERS - 1 in shared else copies
        self.blocks = nn.ModuleList(
            [
                _OptimizedBlock(channels, width, own[0]),
                _DownBlock(width, own[1], downsample=True),
                _DownBlock(width, own[2], downsample=True),
                _DownBlock(width, own[3], downsample=False),
            ]
        )
        self.linear = _linear(width, 1, own[4], sn=True)

    def layers(self) -> list[nn.Module]:
        return [*self.blocks, self.linear]

    def features(self, x: Tensor) -> Tensor:
        """x (K, B, C, H, W) → (K, B, width): ReLU, then a sum over space (SNGAN's pooling)."""
        if self.border:
            x = _per_image(lambda t: F.pad(t, (self.border,) * 4, value=-1.0), x)
        for block in self.blocks:
            x = block(x)
        return F.relu(x).sum((-2, -1))

    def logits(self, features: Tensor) -> Tensor:
        """features (K, B, width) → (K, B, 1)."""
        return self.linear(features)

    def forward(self, x: Tensor) -> Tensor:
        return self.logits(self.features(x))
