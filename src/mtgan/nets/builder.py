"""Build the generator and discriminator families from the model config and a sharing spec,
and report who owns which parameter.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from mtgan.config import ModelConfig, ShareSpec
from mtgan.errors import ConfigError
from mtgan.nets.blocks import Block, LayerPlan, StackedNet
from mtgan.nets.factory import build_networks, is_factory
from mtgan.nets.ownership import ParamRow, describe, ownership
from mtgan.nets.protocol import NetSpec, own_slice
from mtgan.nets.routing import route


def generator_plans(
    cfg: ModelConfig, data_shape: tuple[int, ...], num_classes: int = 0
) -> list[LayerPlan]:
    """Layers of one generator: z (z_dim,), with a one-hot class appended when conditional,
    → a sample of `data_shape`."""
    in_dim = cfg.z_dim + num_classes
    out_act = "identity" if len(data_shape) == 1 else "tanh"  # points are raw, images in [-1, 1]
    out_conv = cfg.g_out_kernel is not None
    if cfg.arch == "mlp":
        # With g_out_kernel the last hidden layer is a C×H×W map that a convolution reads.
        final = _feature_map(cfg, data_shape) if out_conv else (math.prod(data_shape),)
        widths = [in_dim, *(cfg.g_hidden[:-1] if out_conv else cfg.g_hidden)]
        plans = [
            LayerPlan("linear", (n_in,), (n_out,), activation="relu", norm=cfg.g_norm)
            for n_in, n_out in zip(widths[:-1], widths[1:])
        ]
        if not out_conv:
            return [*plans, LayerPlan("linear", (widths[-1],), final, activation=out_act)]
        plans.append(LayerPlan("linear", (widths[-1],), final, activation="relu", norm=cfg.g_norm))
        return [*plans, _output_conv(cfg, final, data_shape, out_act)]
    channels, size = _image_shape(data_shape, "generator")
    if not cfg.g_hidden:
        raise ConfigError("model.g_hidden: a dcgan generator needs at least one width")
    # With g_out_kernel the output layer keeps the size, so one fewer layer upsamples.
    chans = [*cfg.g_hidden] if out_conv else [*cfg.g_hidden, channels]
    base = _base_size(size, len(chans) - 1, "model.g_hidden")
    plans = [
        LayerPlan(
            "linear",
            (in_dim,),
            (chans[0], base, base),
            activation="relu",
            norm=cfg.g_norm,
        )
    ]
    for i, (c_in, c_out) in enumerate(zip(chans[:-1], chans[1:])):
        last = i == len(chans) - 2 and not out_conv
        s = base * 2**i
        plans.append(
            LayerPlan(
                "deconv",
                (c_in, s, s),
                (c_out, 2 * s, 2 * s),
                activation=out_act if last else "relu",
                norm="none" if last else cfg.g_norm,
            )
        )
    if out_conv:
        plans.append(_output_conv(cfg, (chans[-1], size, size), data_shape, out_act))
    return plans


def _feature_map(cfg: ModelConfig, data_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """The MLP generator's last hidden width as the C×H×W map its output convolution reads."""
    if len(data_shape) != 3:
        raise ConfigError(
            f"model.g_out_kernel: an output convolution needs images (C, H, W), but the data "
            f"has samples of shape {tuple(data_shape)}"
        )
    area = data_shape[1] * data_shape[2]
    if not cfg.g_hidden or cfg.g_hidden[-1] % area:
        last = cfg.g_hidden[-1] if cfg.g_hidden else "none"
        raise ConfigError(
            f"model.g_hidden: with model.g_out_kernel the last width is read as a C×H×W map, "
            f"so it must be a multiple of H·W = {area}, got {last}"
        )
    return (cfg.g_hidden[-1] // area, data_shape[1], data_shape[2])


def _output_conv(
    cfg: ModelConfig, in_shape: tuple[int, ...], data_shape: tuple[int, ...], activation: str
) -> LayerPlan:
    """The stride-1 output convolution of `model.g_out_kernel`: a C×H×W map → the image."""
    k = cfg.g_out_kernel
    assert k is not None
    return LayerPlan(
        "conv",
        in_shape,
        tuple(data_shape),
        activation=activation,
        kernel=k,
        stride=1,
        padding=k // 2,
    )


def discriminator_plans(cfg: ModelConfig, data_shape: tuple[int, ...]) -> list[LayerPlan]:
    """Layers of one discriminator: a sample of `data_shape` → one logit."""
    spectral = cfg.d_norm == "spectral"
    maxout = cfg.d_activation == "maxout"
    activation = "identity" if maxout else cfg.d_activation
    pieces = cfg.maxout_pieces if maxout else 1
    if (cfg.d_arch or cfg.arch) == "mlp":
        widths = [math.prod(data_shape), *cfg.d_hidden, 1]
        hidden = len(widths) - 2
        return [
            LayerPlan(
                "linear",
                (n_in,),
                (n_out,),
                activation=activation if i < hidden else "identity",
                spectral=spectral,
                pieces=pieces if i < hidden else 1,
            )
            for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:]))
        ]
    if maxout:
        raise ConfigError("model.d_activation=maxout is for an mlp discriminator (model.d_arch)")
    channels, size = _image_shape(data_shape, "discriminator", "model.d_arch")
    if not cfg.d_hidden:
        raise ConfigError("model.d_hidden: a dcgan discriminator needs at least one width")
    _base_size(size, len(cfg.d_hidden), "model.d_hidden")
    chans = [channels, *cfg.d_hidden]
    plans = []
    for i, (c_in, c_out) in enumerate(zip(chans[:-1], chans[1:])):
        s = size // 2**i
        plans.append(
            LayerPlan(
                "conv",
                (c_in, s, s),
                (c_out, s // 2, s // 2),
                activation=cfg.d_activation,
                spectral=spectral,
            )
        )
    s = size // 2 ** len(cfg.d_hidden)
    plans.append(LayerPlan("linear", (chans[-1] * s * s,), (1,), spectral=spectral))
    return plans


def _image_shape(
    data_shape: tuple[int, ...], what: str, field: str = "model.arch"
) -> tuple[int, int]:
    if len(data_shape) != 3 or data_shape[1] != data_shape[2]:
        raise ConfigError(
            f"{field}=dcgan: the {what} needs square images (C, S, S), "
            f"but the data has samples of shape {data_shape}; use {field}=mlp"
        )
    return data_shape[0], data_shape[1]


def _base_size(size: int, n: int, field: str) -> int:
    if size % 2**n:
        raise ConfigError(
            f"{field}: {n} stride-2 layers need an image size divisible by {2**n}, got {size}"
        )
    return size // 2**n


def resolve_share(spec: ShareSpec, n_layers: int, field: str) -> set[int]:
    """Turn a sharing spec into the set of shared layer indices (0 = the input layer)."""
    named = {
        "none": set(),
        "all": set(range(n_layers)),
        "trunk": set(range(1, n_layers - 1)),
        "all_but_first": set(range(1, n_layers)),
        "all_but_last": set(range(n_layers - 1)),
    }
    if isinstance(spec, str):
        return named[spec]
    if isinstance(spec, int):
        if not 0 <= spec <= n_layers:
            raise ConfigError(
                f"{field}: {spec} is out of range; this network has {n_layers} layers"
            )
        return set(range(spec))
    out = set()
    for i in spec:
        if not -n_layers <= i < n_layers:
            raise ConfigError(
                f"{field}: layer {i} does not exist; this network has layers 0..{n_layers - 1}"
            )
        out.add(i % n_layers)
    return out


class MultiGAN(nn.Module):
    """All generators and discriminators of a run, with their shared layers.

    generate: z (NG, B, z_dim) [, class labels (NG, B)] → samples (NG, B, *data_shape)
    discriminate: x (ND, B, *data_shape) → logits (ND, B)

    With `model.conditional`, the generators take a class label as well (one-hot, appended to
    z; AC-GAN); `num_classes` is then the data's number of classes.
    """

    def __init__(
        self,
        cfg: ModelConfig,
        data_shape: tuple[int, ...],
        num_tasks: int,
        num_classes: int = 0,
        heads: Mapping[str, Callable[[int, int], int]] | None = None,
    ):
        """`heads`: the discriminator heads the run's terms read, name → outputs from
        (number of generators, number of classes) (objectives.terms.declared_heads); with
        `cfg.heads`, any further heads by hand."""
        super().__init__()
        self.data_shape = tuple(data_shape)
        self.z_dim = cfg.z_dim
        self.num_generators = cfg.generators or num_tasks
        self.num_discriminators = cfg.discriminators or num_tasks
        if cfg.conditional and num_classes < 2:
            raise ConfigError(
                "model.conditional needs labelled data with at least two classes (the bundled "
                "digits or 2D mixtures, or an idx/npz/folder data set with labels)"
            )
        self.num_classes = num_classes if cfg.conditional else 0
        sizes = dict(cfg.heads)
        for name, size in (heads or {}).items():
            needed = size(self.num_generators, self.num_classes)
            if sizes.setdefault(name, needed) != needed:
                raise ConfigError(
                    f"model.heads.{name}={sizes[name]}, but the loss that reads it needs "
                    f"{needed} outputs; leave model.heads.{name} out (it is built for the loss)"
                )
        self.generator_tasks = route(self.num_generators, num_tasks, "model.generators")
        self.discriminator_tasks = route(self.num_discriminators, num_tasks, "model.discriminators")
        self.spec = NetSpec(
            self.data_shape,
            self.num_generators,
            self.num_discriminators,
            num_tasks,
            self.generator_tasks,
            self.discriminator_tasks,
            cfg.z_dim,
            self.num_classes,
            dict(cfg.options),
            cfg,
        )
        self.cross_groups: list[list[tuple[str, int]]] = []
        if is_factory(cfg.arch):  # the protocol's networks (protocol.py)
            self.generator, self.discriminator = build_networks(cfg.arch, self.spec)
        else:
            self.generator, self.discriminator = _planned(cfg, self.spec)
            self.cross_groups = [self._tie(group) for group in cfg.share.cross]
        # Extra heads read the discriminator's trunk features; shared or task-own as it says.
        width = self.discriminator.feature_dim
        copies = getattr(self.discriminator, "head_copies", self.num_discriminators)
        self.heads = nn.ModuleDict(
            {
                name: Block(LayerPlan("linear", (width,), (size,)), copies)
                for name, size in sizes.items()
            }
        )

    def _block(self, ref: str):
        family, _, index = ref.partition(".")
        net = self.generator if family == "g" else self.discriminator
        n = len(net.blocks)
        i = int(index)
        if not -n <= i < n:
            raise ConfigError(
                f"model.share.cross: {ref} does not exist; the "
                f"{'generator' if family == 'g' else 'discriminator'} has layers 0..{n - 1}"
            )
        return family, i % n, net.blocks[i]

    def _tie(self, group: list[str]) -> list[tuple[str, int]]:
        """Make every layer of a cross group use the first one's weights (affine part only)."""
        members = [self._block(ref) for ref in group]
        first = members[0][2]
        for (_, _, block), ref in zip(members[1:], group[1:]):
            if block.plan.affine_signature != first.plan.affine_signature:
                raise ConfigError(
                    f"model.share.cross: {group[0]} ({first.plan.describe()}) and {ref} "
                    f"({block.plan.describe()}) cannot share weights: their shapes differ"
                )
            if block.copies != first.copies:
                raise ConfigError(
                    f"model.share.cross: {group[0]} and {ref} must both be shared across tasks "
                    f"or both task-own with the same number of copies ({first.copies} vs "
                    f"{block.copies})"
                )
            if block.plan.spectral != first.plan.spectral:
                raise ConfigError(
                    f"model.share.cross: {group[0]} and {ref} differ in spectral norm"
                )
            block.affine = first.affine
        return [(family, i) for family, i, _ in members]

    def default_labels(self, n: int, device: torch.device | str = "cpu") -> Tensor:
        """The labels sampling uses when none are given: 0, 1, …, C−1, 0, 1, … (n,), so any
        n ≥ C samples cover every class evenly and a grid shows the classes in order."""
        return torch.arange(n, device=device) % max(self.num_classes, 1)

    def condition(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """The generators' input: z itself, or z with the one-hot class appended."""
        if not self.num_classes:
            return z
        if labels is None:
            labels = self.default_labels(z.shape[1], z.device).expand(z.shape[:2])
        one_hot = _one_hot(labels.expand(z.shape[:2]), self.num_classes, z.dtype)
        return torch.cat([z, one_hot], dim=-1)

    @torch.no_grad()
    def sample_with(self, net: nn.Module, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """`net` (the generators or their EMA copy) on z (NG, n, z_dim) in eval mode, without
        gradients, leaving its mode as it was: samples (NG, n, *data_shape). A conditional
        model samples the `labels` given, else `default_labels`."""
        was_training = net.training
        net.eval()
        try:
            out = net(self.condition(z, labels))
        finally:
            net.train(was_training)
        return out.reshape(*z.shape[:2], *self.data_shape)

    def generate(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        out = self.generator(self.condition(z, labels))
        return out.reshape(*out.shape[:2], *self.data_shape)

    def discriminate(self, x: Tensor) -> Tensor:
        # Logits in float32 even under bf16 autocast: the losses need the precision.
        d = self.discriminator
        return d.logits(d.features(x)).reshape(x.shape[0], x.shape[1]).float()

    @property
    def discriminator_and_heads(self) -> nn.ModuleList:
        """Everything the D phase updates: the discriminators and their extra heads."""
        return nn.ModuleList([self.discriminator, self.heads])

    def discriminate_all(self, x: Tensor) -> dict[str, Tensor]:
        """Every discriminator output from one trunk pass: "adv" (ND, B) and each extra head
        (ND, B, outputs), all float32."""
        trunk = self.discriminator.features(x)
        out = {"adv": self.discriminator.logits(trunk).reshape(x.shape[:2]).float()}
        for name, head in self.heads.items():
            out[name] = head(trunk).float()
        return out

    # ------------------------------------------------------------------ ownership

    def network_parameters(self, family: str, k: int) -> dict[str, Tensor]:
        """The parameters network k of a family ("g"/"d") computes with.

        Shared parameters give the very tensor every sharer holds; task-own ones give copy k's
        slice (a view of the stacked tensor).
        """
        net = self.generator if family == "g" else self.discriminator
        shared = {id(p) for p in net.shared_parameters()}
        return {
            name: p if id(p) in shared else own_slice(p, net.copies, k)
            for name, p in net.named_parameters()
        }

    def ownership(self) -> list[ParamRow]:
        """One row per layer: its plan, who owns it and how many parameters it holds."""
        return ownership(self)

    def describe(self) -> str:
        """A table of every layer of every network family: plan, owners, parameter count."""
        return describe(self)


def _planned(cfg: ModelConfig, spec: NetSpec) -> tuple[StackedNet, StackedNet]:
    """The built-in families (mlp, dcgan) from their layer plans and `model.share`."""
    g_plans = generator_plans(cfg, spec.data_shape, spec.num_classes)
    d_plans = discriminator_plans(cfg, spec.data_shape)
    g_shared = resolve_share(cfg.share.generator, len(g_plans), "model.share.generator")
    d_shared = resolve_share(cfg.share.discriminator, len(d_plans), "model.share.discriminator")
    g_groups, d_groups = len(set(spec.generator_tasks)), len(set(spec.discriminator_tasks))
    return (
        StackedNet(g_plans, spec.num_generators, g_shared, g_groups),
        StackedNet(d_plans, spec.num_discriminators, d_shared, d_groups),
    )


def _one_hot(labels: Tensor, classes: int, dtype: torch.dtype) -> Tensor:
    """F.one_hot without its range check, which reads the labels on the host (a sync per step):
    the labels are drawn in range or checked where they come from."""
    out = torch.zeros(*labels.shape, classes, dtype=dtype, device=labels.device)
    return out.scatter_(-1, labels.unsqueeze(-1), 1)
