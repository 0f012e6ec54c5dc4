"""What mtgan needs from a generator and a discriminator: the protocol your own networks follow.

`model.arch: "package.module:factory"` names a callable that receives a `NetSpec` and returns
`(generators, discriminators)`: two `nn.Module`s, each a *family* of K networks stacked along a
leading task axis, so that K tasks run as one batched call (mtgan.nets has stacked layers that
make this one line a layer). The trainer, its phases, the gradient balancers, EMA, checkpoints,
sampling, evaluation and `describe` use only what is written here.

Generators (K = spec.num_generators):
    forward(z)      z (K, B, spec.in_dim) → samples (K, B, *spec.data_shape); images in [-1, 1]
                    (tanh), 2D points raw. A conditional model (model.conditional) gets the
                    class as a one-hot appended to z: in_dim = z_dim + num_classes.
Discriminators (K = spec.num_discriminators):
    features(x)     x (K, B, *spec.data_shape) → trunk features (K, B, feature_dim): where
                    auxiliary heads (AC-GAN's classes, SS-GAN's rotations, MGAN's generator
                    head) attach, one linear layer each, built by mtgan.
    logits(f)       features (K, B, feature_dim) → real/fake logits (K, B, 1): network k's
                    score of x[k] is logits(features(x))[k] (one trunk pass serves the logits
                    and the auxiliary heads).
    feature_dim     int: the width of `features`.
Both families:
    copies          int: K.
    shared_parameters()
                    the parameters every network of the family computes with (hard sharing);
                    every other parameter is task-own: it stacks K copies along dim 0 (shape
                    (K, ...) or (K·m, ...), network k's copy being slice k of K). Gradient
                    balancers meet the tasks' objectives at the shared parameters, `describe`
                    counts shared and task-own parameters, and --init-from copies a task's
                    own slices, all from this.
Optional:
    head_copies     int (discriminators): how many copies the auxiliary heads get; default K
                    (task-own), 1 to share them.

Batch norm: statistics must be per task (a shared layer's norm pooling all tasks would let one
task's batch move another's output); `mtgan.nets.TaskBatchNorm` does this, and EMA recomputes
the statistics of any module with `running_mean` for the averaged weights.
Buffers and parameters are saved by name in checkpoints, so a factory must build the same
names from the same spec: `--resume`, `mtgan sample`, `eval`, `report` and `bench` rebuild the
networks from the config recorded in the run directory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class NetSpec:
    """What a factory builds for: the data, the networks' counts and tasks, and its options."""

    data_shape: tuple[int, ...]  # one sample: (C, H, W) images or (2,) points
    num_generators: int
    num_discriminators: int
    num_tasks: int
    generator_tasks: list[int]  # the task of each generator (MGAN: several share one)
    discriminator_tasks: list[int]
    z_dim: int
    num_classes: int = 0  # > 0 for a conditional model: a one-hot of this width follows z
    options: dict[str, Any] = field(default_factory=dict)  # model.options, as given
    model: Any = None  # the whole ModelConfig, for factories that read its common fields

    @property
    def in_dim(self) -> int:
        """The generators' input width: z, and the one-hot class of a conditional model."""
        return self.z_dim + self.num_classes


@runtime_checkable
class Family(Protocol):
    """K networks of one kind, stacked: what both generators and discriminators have."""

    copies: int

    def shared_parameters(self) -> Iterable[nn.Parameter]: ...

    def __call__(self, x: Tensor) -> Tensor: ...


@runtime_checkable
class Discriminators(Family, Protocol):
    feature_dim: int

    def features(self, x: Tensor) -> Tensor: ...

    def logits(self, features: Tensor) -> Tensor: ...


Factory = Callable[[NetSpec], tuple[nn.Module, nn.Module]]


def own_slice(param: Tensor, copies: int, k: int) -> Tensor:
    """Network k's copy of a task-own parameter stacked along dim 0 (a view)."""
    return param.unflatten(0, (copies, -1))[k]


def check_family(net: nn.Module, kind: str, copies: int, where: str) -> list[str]:
    """What `net` lacks of the protocol, as readable lines (empty: nothing)."""
    missing = []
    protocol = Discriminators if kind == "discriminators" else Family
    if not isinstance(net, nn.Module):
        return [f"{where} returned {type(net).__name__} as the {kind}, not an nn.Module"]
    if not isinstance(net, protocol):
        needs = ["copies", "shared_parameters()"]
        needs += ["features(x)", "logits(f)", "feature_dim"] if kind == "discriminators" else []
        lacking = [n for n in needs if not hasattr(net, n.partition("(")[0])]
        missing.append(f"the {kind} ({type(net).__name__}) lack {', '.join(lacking)}")
    elif net.copies != copies:
        missing.append(f"the {kind} have copies={net.copies}, but the run needs {copies}")
    else:
        names = {id(p) for p in net.parameters()}
        strays = [p for p in net.shared_parameters() if id(p) not in names]
        if strays:
            missing.append(f"the {kind}' shared_parameters() are not all their parameters")
        for name, p in net.named_parameters():
            if id(p) not in {id(q) for q in net.shared_parameters()} and (
                p.dim() == 0 or p.shape[0] % copies
            ):
                missing.append(
                    f"the {kind}' task-own parameter {name} {tuple(p.shape)} does not stack "
                    f"{copies} copies along dim 0 (list it in shared_parameters() if shared)"
                )
                break
    return missing


@torch.no_grad()
def check_shapes(
    generators: nn.Module, discriminators: nn.Module, spec: NetSpec, where: str
) -> list[str]:
    """A forward pass of two samples through both families, in eval mode (nothing updates):
    what does not match the protocol's shapes."""
    problems = []
    modes = generators.training, discriminators.training
    generators.eval()
    discriminators.eval()
    try:
        z = torch.zeros(spec.num_generators, 2, spec.in_dim, device=_device(generators))
        fake = generators(z)
        want = (spec.num_generators, 2, *spec.data_shape)
        if tuple(fake.shape) != want:
            problems.append(
                f"the generators map z {tuple(z.shape)} to {tuple(fake.shape)}, not {want}"
            )
        x = torch.zeros(
            spec.num_discriminators, 2, *spec.data_shape, device=_device(discriminators)
        )
        feats = discriminators.features(x)
        want_f = (spec.num_discriminators, 2, discriminators.feature_dim)
        if tuple(feats.shape) != want_f:
            problems.append(
                f"the discriminators' features(x) are {tuple(feats.shape)}, not {want_f}"
            )
        logits = discriminators.logits(feats)
        if logits.numel() != spec.num_discriminators * 2:
            problems.append(
                f"the discriminators map x {tuple(x.shape)} to {tuple(logits.shape)}, not "
                f"({spec.num_discriminators}, 2, 1) logits"
            )
    except Exception as e:  # a user's network: say where it failed, not a raw traceback
        problems.append(f"a forward pass failed: {type(e).__name__}: {e}")
    finally:
        generators.train(modes[0])
        discriminators.train(modes[1])
    return problems


def _device(module: nn.Module) -> torch.device:
    return next((p.device for p in module.parameters()), torch.device("cpu"))
