"""Per-objective gradients at a family's shared parameters from one backward pass per term.

The objectives of one term (one loss per task, or per discriminator) read disjoint rows of the
family's output and of every layer whose batch norm keeps their statistics apart: task k's
samples pass through the family as rows of one K·B batch and the discriminators, which have no
batch norm, read each network's rows alone. So one backward pass of the term's summed loss gives
every objective's gradient at such a layer's output y at once, each in its own rows, and the
weight gradient of objective d is the outer product x[rows_d]ᵀ δ[rows_d] of that layer's input
and output gradient (the per-example gradient trick, Goodfellow 2015).

A batch norm that pools the rows of several objectives (GMAN's one generator, split over five
discriminators) ends that: below it every objective's gradient reaches every row. The layers
from the last such block on are covered as above; the blocks up to it (the *prefix*) get their
per-objective gradients exactly by one batched backward (m vector–Jacobian products) from the
prefix's output s, whose per-objective gradients are again disjoint rows of one ∂L/∂s. That
costs m backward passes through the prefix alone, where the batched Jacobian of the losses
(`jacobian_at`) costs m through the prefix, the rest of the family and the discriminators. A
prefix is only taken where every path from its parameters to the losses runs through s: the
generator's, whose output is all the G phase reads (unless a layer is tied into the
discriminator). Convolutions and spectral norm are handled the same way, as part of a prefix.

Covered: the weights and biases of shared `nn.Linear` layers (MLP trunks) after the prefix,
summed over every call of the layer in the step (D runs on real and fake, and again for
penalties), and every parameter of the prefix's shared blocks. The norms' γ and β after the
prefix, a fraction of a percent of a trunk, are left out. Where nothing is covered
(`ActivationTape.covers` is False) the phase takes the exact, batched Jacobian instead.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from mtgan.balance.sources import BlockGradients, batched_grad
from mtgan.nets.routing import to_discriminators
from mtgan.nets.stacked import StackedLinear


class ActivationTape(BlockGradients):
    """Records (layer, input, output) of a family's shared linear layers, and the prefix's
    output, while grad is on; gives the Gram matrix or the Jacobian of the objectives there."""

    def __init__(
        self,
        family: nn.Module,
        owners: Callable[[Tensor], Tensor],
        objectives: int,
        prefix_ok: bool = False,
    ):
        """owners: row ids (copies, b) of one call → row ids (ND, n) per objective. A single
        network's layers are all shared by its objectives (GMAN's generator).

        The outer products are exact for a linear layer without spectral norm (with it the
        parameter is not the weight used) whose block, and every block after it, keeps the
        objectives' rows apart (batch norm with at least `objectives` statistics groups). The
        blocks before form the prefix; with `prefix_ok` False (the family's output is not the
        only way its parameters reach the losses) a prefix makes `covers` False."""
        blocks = list(family.blocks)

        def own(block: nn.Module) -> bool:
            return block.shared or family.copies == 1

        def taped(block: nn.Module) -> bool:
            linear = not own(block) or (_linear(block.affine) and not block.plan.spectral)
            return linear and (block.norm is None or objectives <= block.norm.groups)

        cut = max((i for i, b in enumerate(blocks) if not taped(b)), default=-1)
        self.layers = [b.affine for b in blocks[cut + 1 :] if own(b)]
        self.prefix = [
            p for b in blocks[: cut + 1] if own(b) for p in b.parameters() if p.requires_grad
        ]
        self.covers = bool(self.layers or self.prefix) and (prefix_ok or not self.prefix)
        # the covered parameters, in the Jacobian's column order
        self.params = [q for layer in self.layers for q in (layer.weight, layer.bias)] + self.prefix
        self.copies = family.copies
        self.owners = owners
        self.records: list[tuple[nn.Module, Tensor, Tensor]] = []
        self.splits: list[Tensor] = []  # the prefix's outputs (copies, B, ...), one per call
        self.recording = False
        if self.covers:  # an unused tape leaves no hooks
            for layer in self.layers:
                layer.register_forward_hook(self._hook)
            if self.prefix:
                blocks[cut].register_forward_hook(self._split)

    def _hook(self, module: nn.Module, args: tuple[Tensor, ...], out: Tensor) -> None:
        if self.recording and torch.is_grad_enabled() and out.requires_grad:
            self.records.append((module, args[0], out))

    def _split(self, module: nn.Module, args: tuple[Tensor, ...], out: Tensor) -> None:
        if self.recording and torch.is_grad_enabled() and out.requires_grad:
            self.splits.append(out)

    def start(self) -> None:
        self.records, self.splits, self.recording = [], [], True

    def stop(self) -> None:
        self.records, self.splits, self.recording = [], [], False

    def _blocks(self, per_term: list[Tensor]) -> list[Tensor]:
        """The Jacobian's columns in blocks [(m, p.numel()), ...] in `params` order."""
        records = [r for r in self.records if r[2].grad_fn is not None]
        splits = [s for s in self.splits if s.grad_fn is not None]
        if not records and not splits:
            raise RuntimeError("no shared-layer activations were recorded this step")
        recorded = {r[0] for r in records}
        columns: dict[Tensor, list[Tensor]] = {p: [] for p in self.params}  # per term
        cotangents: list[list[Tensor]] = [[] for _ in splits]
        for term in per_term:
            outs = [y for _, _, y in records] + splits
            deltas = torch.autograd.grad(term.sum(), outs, retain_graph=True, allow_unused=True)
            n = term.numel()
            for layer in self.layers:
                if layer not in recorded:  # not run with grad this step
                    columns[layer.weight].append(term.new_zeros(n, layer.weight.numel()))
                    columns[layer.bias].append(term.new_zeros(n, layer.bias.numel()))
            calls: dict[nn.Module, list[tuple[Tensor, Tensor]]] = {}
            for (layer, x, _), delta in zip(records, deltas):
                x = x.detach().float().reshape(-1, layer.in_features)  # network-major rows
                if delta is None:
                    delta = x.new_zeros(x.shape[0], layer.out_features)
                delta = delta.float().reshape(-1, layer.out_features)
                groups = self._rows(x.shape[0], n, x.device)  # (n, rows of each objective)
                xs, ds = x[groups], delta[groups]  # (n, r, F_in), (n, r, F_out)
                # in the parameter's own layout: nn.Linear (out, in), StackedLinear (1, in, out)
                outer = torch.bmm(xs.transpose(1, 2), ds)
                if isinstance(layer, nn.Linear):
                    outer = outer.transpose(1, 2)
                calls.setdefault(layer, []).append((outer.flatten(1), ds.sum(1)))
            for layer, parts in calls.items():  # summed over the layer's calls
                columns[layer.weight].append(sum(w for w, _ in parts[1:]) + parts[0][0])
                columns[layer.bias].append(sum(b for _, b in parts[1:]) + parts[0][1])
            for i, (s, delta) in enumerate(zip(splits, deltas[len(records) :])):
                flat = torch.zeros_like(s) if delta is None else delta.detach()
                flat = flat.reshape(s.shape[0] * s.shape[1], -1)
                groups = self._rows(flat.shape[0], n, s.device)
                # objective d's gradient at s: its own rows of ∂(Σ_d L_d)/∂s, zeros elsewhere
                cot = flat.new_zeros(n, *flat.shape)
                cot[torch.arange(n, device=s.device)[:, None], groups] = flat[groups]
                cotangents[i].append(cot.reshape(n, *s.shape))
        blocks = [torch.cat(c) if len(c) > 1 else c[0] for c in columns.values() if c]
        if splits:
            grads = batched_grad(splits, self.prefix, [torch.cat(c) for c in cotangents])
            blocks += [g.reshape(g.shape[0], -1).detach().float() for g in grads]
        return [b.detach() for b in blocks]

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


def generator_owners(model) -> Callable[[Tensor], Tensor]:
    """Rows of the generators' shared layers → the discriminator whose loss reads them."""
    return lambda ids: to_discriminators(ids, model.generator_tasks, model.discriminator_tasks)


def discriminator_owners(model) -> Callable[[Tensor], Tensor]:
    """Rows of the discriminators' shared layers → the discriminator itself."""
    return lambda ids: ids
