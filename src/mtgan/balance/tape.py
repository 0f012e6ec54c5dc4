"""Per-objective gradients at a family's shared linear layers from one backward pass per term.

The objectives of one term (one loss per task, or per discriminator) read disjoint rows of every
shared layer: task k's samples pass through the shared trunk as rows of one K·B batch and
nothing else of theirs mixes with other tasks' (batch norm keeps per-task statistics). So one
backward pass of the term's summed loss to the shared layers' outputs y gives every objective's
∂L/∂y at once, each in its own rows, and the weight gradient of objective d is the outer
product x[rows_d]ᵀ δ[rows_d] of that layer's input and output gradient (the per-example
gradient trick, Goodfellow 2015). A term costs one partial backward (to the shared layers,
not down to every parameter) instead of one full backward per objective.

Covered: the weights and biases of shared `nn.Linear` layers (MLP trunks), summed over every
call of the layer in the step (D runs on real and fake, and again for penalties). The shared
norms' γ and β, a fraction of a percent of a trunk, are left out. Shared convolutions are not
covered; `ActivationTape.covers` is False then and the phase takes the exact, batched
Jacobian instead.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from mtgan.nets.routing import to_discriminators
from mtgan.nets.stacked import StackedLinear


class ActivationTape:
    """Records (layer, input, output) of a family's shared linear layers while grad is on."""

    def __init__(self, family: nn.Module, owners: Callable[[Tensor], Tensor], objectives: int):
        """owners: row ids (copies, b) of one call → row ids (ND, n) per objective. A single
        network's layers are all shared by its objectives (GMAN's generator).

        `covers` is False where the outer products would not be the exact gradients: a layer
        that is not linear or carries spectral norm (the parameter is not the weight used), or
        batch norm whose statistics mix rows of different objectives (fewer statistics groups
        than `objectives`, e.g. GMAN's one generator split over five discriminators)."""
        shared = [b for b in family.blocks if b.shared or family.copies == 1]
        self.layers = [b.affine for b in shared if _linear(b.affine) and not b.plan.spectral]
        groups = [b.norm.groups for b in family.blocks if b.norm is not None]
        separable = all(objectives <= g for g in groups)
        self.covers = bool(self.layers) and len(self.layers) == len(shared) and separable
        self.copies = family.copies
        self.owners = owners
        self.records: list[tuple[nn.Linear, Tensor, Tensor]] = []
        self.recording = False
        for layer in self.layers if self.covers else []:  # an unused tape leaves no hooks
            layer.register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, args: tuple[Tensor, ...], out: Tensor) -> None:
        if self.recording and torch.is_grad_enabled() and out.requires_grad:
            self.records.append((module, args[0], out))

    def start(self) -> None:
        self.records, self.recording = [], True

    def stop(self) -> None:
        self.records, self.recording = [], False

    def jacobian(self, per_term: list[Tensor]) -> Tensor:
        """Gradients (m, P) of the objectives (each term's (n_t,) losses, concatenated) w.r.t.
        the shared linear layers' weights and biases."""
        records = [r for r in self.records if r[2].grad_fn is not None]
        if not records:
            raise RuntimeError("no shared-layer activations were recorded this step")
        layers = list(dict.fromkeys(r[0] for r in records))
        rows = []
        for term in per_term:
            outs = [y for _, _, y in records]
            deltas = torch.autograd.grad(term.sum(), outs, retain_graph=True, allow_unused=True)
            n = term.numel()
            weight = {layer: torch.zeros(n, layer.weight.numel()) for layer in layers}
            bias = {layer: torch.zeros(n, layer.out_features) for layer in layers}
            for (layer, x, _), delta in zip(records, deltas):
                if delta is None:
                    continue
                x = x.detach().float().reshape(-1, layer.in_features)  # network-major rows
                delta = delta.float().reshape(-1, layer.out_features)
                groups = self._rows(x.shape[0], n, x.device)  # (n, rows of each objective)
                xs, ds = x[groups], delta[groups]  # (n, r, F_in), (n, r, F_out)
                # in the parameter's own layout: nn.Linear (out, in), StackedLinear (1, in, out)
                outer = torch.bmm(xs.transpose(1, 2), ds)
                if isinstance(layer, nn.Linear):
                    outer = outer.transpose(1, 2)
                weight[layer] += outer.flatten(1).cpu()
                bias[layer] += ds.sum(1).cpu()
            parts = [torch.cat([weight[k], bias[k]], dim=1) for k in layers]
            rows.append(torch.cat(parts, dim=1))
        return torch.cat(rows).detach()

    def _rows(self, total: int, n: int, device: torch.device) -> Tensor:
        ids = torch.arange(total, device=device).reshape(self.copies, -1)
        if n == 1:
            return ids.reshape(1, -1)
        routed = self.owners(ids)
        if routed.shape[0] != n:
            raise RuntimeError(f"{n} objectives but {routed.shape[0]} row groups")
        return routed


def _linear(module: nn.Module) -> bool:
    if isinstance(module, nn.Linear):
        return module.bias is not None
    return isinstance(module, StackedLinear) and module.copies == 1 and module.bias is not None


def disjoint_jacobian(params: list[nn.Parameter], copies: int) -> Callable[[list[Tensor]], Tensor]:
    """Per-objective gradients when objective d (one per network) reads only network d's
    parameters, which nothing is shared with (GMAN's discriminators, `independent`): the gradient
    of the summed term, split by network along each parameter's leading axis, is every
    objective's gradient at once; one backward per term."""

    def jacobian(per_term: list[Tensor]) -> Tensor:
        rows = []
        for term in per_term:
            if term.numel() != copies:
                raise RuntimeError(f"{term.numel()} objectives for {copies} disjoint networks")
            grads = torch.autograd.grad(term.sum(), params, retain_graph=True, allow_unused=True)
            blocks = []
            for g, p in zip(grads, params):
                g = torch.zeros_like(p) if g is None else g
                blocks.append(g.detach().float().reshape(copies, -1).cpu())
            # row d: network d's slice in place, zeros elsewhere
            width = [b.shape[1] for b in blocks]
            out = torch.zeros(copies, copies * sum(width))
            offset = 0
            for b, w in zip(blocks, width):
                for d in range(copies):
                    out[d, offset + d * w : offset + (d + 1) * w] = b[d]
                offset += copies * w
            rows.append(out)
        return torch.cat(rows)

    return jacobian


def generator_owners(model) -> Callable[[Tensor], Tensor]:
    """Rows of the generators' shared layers → the discriminator whose loss reads them."""
    return lambda ids: to_discriminators(ids, model.generator_tasks, model.discriminator_tasks)


def discriminator_owners(model) -> Callable[[Tensor], Tensor]:
    """Rows of the discriminators' shared layers → the discriminator itself."""
    return lambda ids: ids
