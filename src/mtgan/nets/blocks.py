"""Layers as blocks (affine → norm → activation) that are either shared by every copy of a
network family or stacked (one task-specific copy per network), and the network they form.

A block's input and output are always in the stacked layout (K, B, *shape). A shared block runs
once on the concatenated batch (K·B, *shape); a stacked block runs its K copies in one kernel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from mtgan.nets.stacked import (
    StackedConv2d,
    StackedConvTranspose2d,
    StackedLinear,
    TaskBatchNorm,
    add_spectral_norm,
)

Kind = Literal["linear", "conv", "deconv"]
Activation = Literal["relu", "leaky_relu", "tanh", "identity"]
# batch: γ, β shared by the networks that share the layer; conditional: γ, β per network even
# in a shared layer (conditional batch norm, de Vries et al. 2017, with the task as the class)
Norm = Literal["none", "batch", "conditional"]
NORM_NAMES = {"batch": "batchnorm", "conditional": "cond. batchnorm"}


@dataclass(frozen=True)
class LayerPlan:
    """What one layer computes, independent of who owns it. Shapes are per sample."""

    kind: Kind
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    activation: Activation = "identity"
    norm: Norm = "none"
    spectral: bool = False
    kernel: int = 4
    stride: int = 2
    padding: int = 1
    pieces: int = 1  # maxout (Goodfellow et al. 2013): each output is the max of `pieces` units

    @property
    def affine_signature(self) -> tuple:
        """What must match for two layers to share their weights."""
        return (
            self.kind,
            self.in_shape,
            self.out_shape,
            self.kernel,
            self.stride,
            self.padding,
            self.pieces,
        )

    def describe(self) -> str:
        shape = f"{'×'.join(map(str, self.in_shape))} → {'×'.join(map(str, self.out_shape))}"
        custom = self.kind != "linear" and (self.kernel, self.stride) != (4, 2)
        extras = [f"kernel {self.kernel}, stride {self.stride}"] if custom else []
        extras += [NORM_NAMES[self.norm]] if self.norm != "none" else []
        extras += ["spectral"] if self.spectral else []
        extras += [self.activation] if self.activation != "identity" else []
        extras += [f"maxout×{self.pieces}"] if self.pieces > 1 else []
        return f"{self.kind:6s} {shape}" + (f" ({', '.join(extras)})" if extras else "")


def _activate(x: Tensor, activation: Activation) -> Tensor:
    if activation == "relu":
        return F.relu(x)
    if activation == "leaky_relu":
        return F.leaky_relu(x, 0.2)
    if activation == "tanh":
        return x.tanh()
    return x


def make_affine(plan: LayerPlan, copies: int | None) -> nn.Module:
    """The weight-carrying part of a layer: a plain module if shared, a stacked one if not."""
    if plan.kind == "linear":
        n_in, n_out = math.prod(plan.in_shape), math.prod(plan.out_shape) * plan.pieces
        module = nn.Linear(n_in, n_out) if copies is None else StackedLinear(copies, n_in, n_out)
    else:
        c_in, c_out = plan.in_shape[0], plan.out_shape[0]
        args = (c_in, c_out, plan.kernel, plan.stride, plan.padding)
        if plan.kind == "conv":
            module = nn.Conv2d(*args) if copies is None else StackedConv2d(copies, *args)
        else:
            module = (
                nn.ConvTranspose2d(*args)
                if copies is None
                else StackedConvTranspose2d(copies, *args)
            )
    return add_spectral_norm(module, copies) if plan.spectral else module


def make_norm(plan: LayerPlan, copies: int | None, family: int, groups: int) -> nn.Module | None:
    """Per-copy batch norm for stacked layers; for a layer shared by the `family` networks,
    statistics per task (`groups` tasks) and γ, β shared, or per network with `conditional`:
    then the shared layer's output still differs by task (conditional batch norm)."""
    if plan.norm == "none":
        return None
    shared_affine = copies is None and plan.norm != "conditional"
    return TaskBatchNorm(family, plan.out_shape[0], groups, shared_affine=shared_affine)


class Block(nn.Module):
    """One layer of a network family: shared by all copies (`copies=None`) or stacked."""

    def __init__(
        self,
        plan: LayerPlan,
        copies: int | None,
        family: int | None = None,
        groups: int | None = None,
    ):
        super().__init__()
        self.plan, self.copies = plan, copies
        self.affine = make_affine(plan, copies)
        family = family or copies or 1
        self.norm = make_norm(plan, copies, family, groups or family)

    @property
    def shared(self) -> bool:
        """Whether the weights (the affine part) are one set for every network."""
        return self.copies is None

    def own_parameters(self) -> list[nn.Parameter]:
        """The parameters held per network, (K, ...) or (K·C, ...): all of a stacked block's;
        of a shared block, its norm's γ and β when they are per network (`conditional`)."""
        if not self.shared:
            return list(self.parameters())
        norm = self.norm
        if isinstance(norm, TaskBatchNorm) and norm.weight.shape[0] == norm.copies > 1:
            return [norm.weight, norm.bias]
        return []

    def shared_parameters(self) -> list[nn.Parameter]:
        """The parameters every network of the family computes with, one tensor for all."""
        own = {id(p) for p in self.own_parameters()}
        return [p for p in self.parameters() if id(p) not in own]

    def forward(self, x: Tensor) -> Tensor:
        k, b = x.shape[:2]
        # Shared layers see one batch of K·B samples; stacked ones keep the copy axis.
        lead = (k * b,) if self.shared else (k, b)
        y = self.affine(x.reshape(*lead, *self.plan.in_shape))
        if self.plan.pieces > 1:  # maxout: the largest of each output's pieces
            # Piece-major (piece p of unit u is row p·units + u): reducing over a strided axis
            # vectorises along units, where the innermost 3–5 values would not.
            y = y.reshape(*lead, self.plan.pieces, -1).amax(-2)
        y = y.reshape(k, b, *self.plan.out_shape)
        if self.norm is not None:
            y = self.norm(y)
        return _activate(y, self.plan.activation)

    def extra_repr(self) -> str:
        return ("shared: " if self.shared else f"{self.copies} copies: ") + self.plan.describe()


class StackedNet(nn.Module):
    """A family of `copies` networks with identical layer plans, some layers shared.

    forward: (copies, B, *in_shape) → (copies, B, *out_shape). The copies serve `groups` tasks
    (one each, or all one task); shared batch norms keep statistics per task.
    """

    def __init__(
        self, plans: list[LayerPlan], copies: int, shared: set[int], groups: int | None = None
    ):
        super().__init__()
        self.copies = copies
        self.blocks = nn.ModuleList(
            Block(plan, None if i in shared else copies, copies, groups or copies)
            for i, plan in enumerate(plans)
        )

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)
        return x

    # ------------------------------------------------------------------ mtgan.nets.protocol

    def shared_parameters(self) -> list[nn.Parameter]:
        """The parameters every network of the family computes with (protocol.py)."""
        return [p for block in self.blocks for p in block.shared_parameters()]

    def features(self, x: Tensor, upto: int = -1) -> Tensor:
        """Activations entering block `upto` (default: the last one: the trunk features the
        protocol's heads attach to)."""
        for block in self.blocks[: upto % len(self.blocks)]:
            x = block(x)
        return x

    def logits(self, features: Tensor) -> Tensor:
        """The last block on the trunk features."""
        return self.blocks[-1](features)

    @property
    def feature_dim(self) -> int:
        return math.prod(self.blocks[-1].plan.in_shape)

    @property
    def head_copies(self) -> int | None:
        """Auxiliary heads are shared or task-own like the last layer (None: shared)."""
        return self.blocks[-1].copies


def with_spectral(plans: list[LayerPlan], spectral: bool) -> list[LayerPlan]:
    return [replace(p, spectral=spectral) for p in plans]
