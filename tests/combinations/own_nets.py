"""A user's own networks, as the README shows them: a small residual MLP GAN whose generators
keep their own input and output layers around a shared residual trunk, and whose discriminators
share their middle layer. It imports only torch and what mtgan.nets documents (NetSpec and the
stacked layers), and is named as `model.arch=own_nets:build` (this folder is on the path)."""

from __future__ import annotations

import math

import torch
from torch import nn

from mtgan.nets import NetSpec, StackedLinear, TaskBatchNorm


class Residual(nn.Module):
    """h + relu(norm(W h)): one layer shared by every task, batch statistics per task."""

    def __init__(self, copies: int, width: int, norm: bool):
        super().__init__()
        self.linear = nn.Linear(width, width, bias=not norm)  # a norm subtracts any bias
        self.norm = TaskBatchNorm(copies, width, shared_affine=True) if norm else nn.Identity()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        k, b, w = h.shape
        y = self.linear(h.reshape(k * b, w)).reshape(k, b, w)  # one batch of K·B rows
        return h + torch.relu(self.norm(y))


class Generators(nn.Module):
    def __init__(self, spec: NetSpec, width: int, depth: int, norm: bool):
        super().__init__()
        k, self.shape = spec.num_generators, spec.data_shape
        self.copies = k
        self.inp = StackedLinear(k, spec.in_dim, width)  # task-own
        self.trunk = nn.Sequential(*(Residual(k, width, norm) for _ in range(depth)))  # shared
        self.out = StackedLinear(k, width, math.prod(spec.data_shape))  # task-own

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.trunk.parameters())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.trunk(torch.relu(self.inp(z)))
        return torch.tanh(self.out(h)).reshape(*z.shape[:2], *self.shape)


class Discriminators(nn.Module):
    def __init__(self, spec: NetSpec, width: int):
        super().__init__()
        k = spec.num_discriminators
        self.copies, self.feature_dim = k, width
        self.inp = StackedLinear(k, math.prod(spec.data_shape), width)  # task-own
        self.mid = nn.Linear(width, width)  # shared
        self.head = StackedLinear(k, width, 1)  # task-own

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.mid.parameters())

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = nn.functional.leaky_relu(self.inp(x.flatten(2)), 0.2)
        k, b, w = h.shape
        return nn.functional.leaky_relu(self.mid(h.reshape(k * b, w)).reshape(k, b, w), 0.2)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)


def build(spec: NetSpec) -> tuple[nn.Module, nn.Module]:
    """model.options: width (default 32), depth of the shared trunk (default 2), norm (batch
    norm in the trunk, default true)."""
    options = {"width": 32, "depth": 2, "norm": True, **spec.options}
    unknown = set(options) - {"width", "depth", "norm"}
    if unknown:
        raise ValueError(f"unknown model.options {sorted(unknown)}; known: width, depth, norm")
    return (
        Generators(spec, options["width"], options["depth"], options["norm"]),
        Discriminators(spec, options["width"]),
    )


def not_a_pair(spec: NetSpec) -> nn.Module:
    """A broken factory for the error tests: returns one network."""
    return nn.Linear(2, 2)


def no_protocol(spec: NetSpec) -> tuple[nn.Module, nn.Module]:
    """A broken factory for the error tests: plain modules without the protocol's members."""
    return nn.Linear(spec.in_dim, 2), nn.Linear(2, 1)
