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

from mtgan.balance.base import Reduce
from mtgan.balance.sources import batched_grad, fp32
from mtgan.nets.routing import to_discriminators
from mtgan.nets.stacked import StackedLinear


class ActivationTape:
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
        self.complete = False  # set by the phase: `params` are all it updates
        self.reduce: Reduce | None = None  # set by the phase under data parallelism
        self.last: tuple | None = None
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

    def gram(self, per_term: list[Tensor]) -> Tensor:
        if self.reduce is not None:  # the global batch's: from the reduced Jacobian blocks
            blocks = self._blocks(per_term)
            with fp32(per_term[0]):
                return sum(b @ b.T for b in blocks)
        rows, prefix = self._collect(per_term)
        m = sum(t.numel() for t in per_term)
        self.last = (rows, prefix) if self.complete else None  # held only for `combined`
        with fp32(per_term[0]):
            gram = per_term[0].new_zeros(m, m, dtype=torch.float32)
            for layer in self.layers:
                x, d, owner = rows[layer]
                if _ghost(x, d):  # Σ over row pairs: never forms the weight gradients
                    hot = nn.functional.one_hot(owner, m).to(x.dtype)  # (R, m)
                    dd = d @ d.T
                    gram += hot.T @ ((x @ x.T + 1) * dd) @ hot  # weight and bias
                else:
                    for block in _outer(x, d, owner, m):
                        gram += block @ block.T
            for block in prefix:
                gram += block @ block.T
        return gram

    def jacobian(self, per_term: list[Tensor]) -> Tensor:
        return torch.cat(self._blocks(per_term), dim=1)

    def _blocks(self, per_term: list[Tensor]) -> list[Tensor]:
        """The Jacobian in column blocks (m, p.numel()), in `params` order, reduced over
        ranks where the phase says so; `combined` reads this process's own rows, which the
        phase's gradient all-reduce then averages like any other gradient."""
        rows, prefix = self._collect(per_term)
        m = sum(t.numel() for t in per_term)
        self.last = (rows, prefix) if self.complete else None
        blocks = []
        with fp32(per_term[0]):
            for layer in self.layers:
                weight, bias = _outer(*rows[layer], m)
                if isinstance(layer, nn.Linear):  # the parameter's own layout: (out, in)
                    weight = weight.reshape(m, layer.in_features, -1).transpose(1, 2).flatten(1)
                blocks += [weight, bias]
        blocks += prefix
        return blocks if self.reduce is None else self.reduce(blocks)

    def combined(self, alpha: Tensor) -> list[Tensor]:
        assert self.last is not None
        (rows, prefix), self.last = self.last, None
        alpha = alpha.float()
        out = []
        for layer in self.layers:
            x, d, owner = rows[layer]
            d = d * alpha[owner][:, None]
            # in the phase's precision, as its own backward pass would compute it
            weight = x.T @ d  # (in, out): StackedLinear's layout
            out += [weight.T if isinstance(layer, nn.Linear) else weight, d.sum(0)]
        with fp32(alpha):
            out += [alpha @ block for block in prefix]
        return [g.reshape(p.shape).to(p.dtype) for g, p in zip(out, self.params)]

    def _collect(
        self, per_term: list[Tensor]
    ) -> tuple[dict[nn.Module, tuple[Tensor, Tensor, Tensor]], list[Tensor]]:
        """One backward per term to the recorded layers' outputs and the prefix's output.
        Returns, per layer, its input and output-gradient rows over every call and term with
        the objective each belongs to: x (R, F_in), δ (R, F_out), owner (R,) in [0, m); and
        the prefix's Jacobian in blocks [(m, p.numel()), ...]."""
        records = [r for r in self.records if r[2].grad_fn is not None]
        splits = [s for s in self.splits if s.grad_fn is not None]
        if not records and not splits:
            raise RuntimeError("no shared-layer activations were recorded this step")
        parts: dict[nn.Module, list[tuple[Tensor, Tensor, Tensor]]] = {}
        cotangents: list[list[Tensor]] = [[] for _ in splits]
        offset = 0  # the term's first objective
        for term in per_term:
            outs = [y for _, _, y in records] + splits
            deltas = torch.autograd.grad(term.sum(), outs, retain_graph=True, allow_unused=True)
            n = term.numel()
            for (layer, x, _), delta in zip(records, deltas):
                x = x.detach().float().reshape(-1, layer.in_features)  # network-major rows
                if delta is None:
                    delta = x.new_zeros(x.shape[0], layer.out_features)
                delta = delta.detach().float().reshape(-1, layer.out_features)
                groups = self._rows(x.shape[0], n, x.device).flatten()  # (n · r,)
                owner = torch.arange(offset, offset + n, device=x.device)
                owner = owner.repeat_interleave(groups.numel() // n)
                parts.setdefault(layer, []).append((x[groups], delta[groups], owner))
            for i, (s, delta) in enumerate(zip(splits, deltas[len(records) :])):
                flat = torch.zeros_like(s) if delta is None else delta.detach()
                flat = flat.reshape(s.shape[0] * s.shape[1], -1)
                groups = self._rows(flat.shape[0], n, s.device)
                # objective d's gradient at s: its own rows of ∂(Σ_d L_d)/∂s, zeros elsewhere
                cot = flat.new_zeros(n, *flat.shape)
                cot[torch.arange(n, device=s.device)[:, None], groups] = flat[groups]
                cotangents[i].append(cot.reshape(n, *s.shape))
            offset += n
        rows = {}
        for layer in self.layers:
            got = parts.get(layer)
            if got is None:  # not run with grad this step: no rows, zero gradients
                new = per_term[0].new_zeros
                empty = new(0, layer.in_features), new(0, layer.out_features)
                got = [(*empty, new(0, dtype=torch.long))]
            rows[layer] = tuple(torch.cat(column) for column in zip(*got))
        prefix = []
        if splits:
            grads = batched_grad(splits, self.prefix, [torch.cat(c) for c in cotangents])
            prefix = [g.reshape(g.shape[0], -1).detach().float() for g in grads]
        return rows, prefix

    def _rows(self, total: int, n: int, device: torch.device) -> Tensor:
        ids = torch.arange(total, device=device).reshape(self.copies, -1)
        if n == 1:
            return ids.reshape(1, -1)
        routed = self.owners(ids)
        if routed.shape[0] != n:
            raise RuntimeError(f"{n} objectives but {routed.shape[0]} row groups")
        return routed


def _ghost(x: Tensor, d: Tensor) -> bool:
    """Whether the Gram matrix is cheaper from the rows' inner products (x xᵀ ⊙ δ δᵀ, summed
    over each pair of objectives' rows: R² (F_in + F_out)) than from the weight gradients
    themselves (R · F_in · F_out, and m² · F_in · F_out for their products): few rows, wide
    layers (GMAN's generator output, 100 rows × 512 × 784)."""
    r, f_in, f_out = x.shape[0], x.shape[1], d.shape[1]
    return r * (f_in + f_out) < f_in * f_out


def _outer(x: Tensor, d: Tensor, owner: Tensor, m: int) -> tuple[Tensor, Tensor]:
    """Each objective's weight gradient Σ_{its rows} x_r δ_rᵀ, flattened as (in, out), and bias
    gradient Σ δ_r: (m, F_in · F_out), (m, F_out); one matrix product per objective."""
    counts = torch.bincount(owner, minlength=m).tolist()
    order = torch.argsort(owner, stable=True)
    xs, ds = x[order].split(counts), d[order].split(counts)
    weight = torch.stack([(a.T @ b).flatten() for a, b in zip(xs, ds)])
    return weight, torch.stack([b.sum(0) for b in ds])


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
