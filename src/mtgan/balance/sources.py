"""Where a gradient balancer's per-objective gradients come from, and what they cost.

A source gives, for the objectives of one phase step (each term's weighted per-task losses,
concatenated: m of them), their Gram matrix G = J Jᵀ (m, m), which is all that MGDA, PCGrad,
CAGrad, IMTL-G, GradNorm, Nash-MTL and torchjd's Gramian weightings read, or the Jacobian J
(m, P) itself for the few weightings that need it. Three exact sources, cheapest first:

- `DisjointJacobian`: networks that share nothing, one objective each (GMAN's
  discriminators): one backward pass per term.
- `ActivationTape` (tape.py): shared linear layers whose rows each objective reads alone, and
  the blocks before them: one backward per term, plus m batched backward passes through those
  blocks where a batch norm pools the objectives' rows.
- `ParameterJacobian`: anything (penalties' second-order terms, `at: all`): m backward passes,
  batched, through everything the objectives read.

When a source covers every parameter the phase updates (`complete`), the combined gradient
Σ α_k ∇L_k is already in hand once the balancer has chosen α: `linearised` hands it to the
phase, whose backward pass then costs one multiply instead of a second pass through the
networks. Otherwise the phase differentiates Σ α_k L_k as usual.
"""

from __future__ import annotations

import itertools
from typing import Protocol

import torch
from torch import Tensor, nn

from mtgan.balance.base import Reduce


class GradientSource(Protocol):
    """Per-objective gradients at `params` for one phase step; results are detached, float32.

    Under data parallelism the phase sets `reduce` (the mean over ranks): the Gram matrix and
    the Jacobian are then those of the global batch, the same on every rank."""

    params: list[nn.Parameter]
    complete: bool  # `params` are all the phase updates: `combined` is the phase's gradient
    reduce: Reduce | None

    def gram(self, per_term: list[Tensor]) -> Tensor:
        """per_term: each term's objectives [(n_t,), ...] → G = J Jᵀ (m, m)."""
        ...

    def jacobian(self, per_term: list[Tensor]) -> Tensor:
        """per_term → J (m, P), columns in `params` order (DisjointJacobian: network-major)."""
        ...

    def combined(self, alpha: Tensor) -> list[Tensor]:
        """Σ_k α_k ∇L_k at each of `params`, from the last `gram` or `jacobian` call."""
        ...


class _GivenGradient(torch.autograd.Function):
    """value → value, whose gradient w.r.t. `params` is `grads` (times the upstream one)."""

    @staticmethod
    def forward(ctx, value: Tensor, grads: list[Tensor], *params: Tensor) -> Tensor:
        ctx.grads = grads
        return value.clone()

    @staticmethod
    def backward(ctx, upstream: Tensor):
        # the gradients are this function's own (made by `combined`): scaled in place
        return (None, None, *(g.mul_(upstream.to(g.dtype)) for g in ctx.grads))


def linearised(value: Tensor, params: list[nn.Parameter], grads: list[Tensor]) -> Tensor:
    """A scalar equal to `value` whose gradient w.r.t. `params` is `grads`, and nothing else's:
    the phase's backward pass then returns them without another pass through the networks."""
    return _GivenGradient.apply(value.detach(), grads, *params)


def fp32(like: Tensor) -> torch.autocast:
    """No autocast for a reduction over many gradient entries: under bf16 autocast a matrix
    product would round its inputs and result to 8 bits of mantissa."""
    return torch.autocast(like.device.type, enabled=False)


def batched_grad(
    outputs: list[Tensor], inputs: list[Tensor], cotangents: list[Tensor]
) -> list[Tensor]:
    """m vector–Jacobian products at once: cotangents [(m, *output.shape), ...] → gradients
    [(m, *input.shape), ...] (zeros where unused). One vmapped backward pass; a loop over the
    m rows where vmap cannot batch an operation."""
    m = cotangents[0].shape[0]
    try:
        grads = torch.autograd.grad(
            outputs, inputs, cotangents, retain_graph=True, allow_unused=True, is_grads_batched=True
        )
    except RuntimeError:
        rows = [
            torch.autograd.grad(
                outputs, inputs, [c[i] for c in cotangents], retain_graph=True, allow_unused=True
            )
            for i in range(m)
        ]
        grads = tuple(
            torch.stack([r[j] if r[j] is not None else torch.zeros_like(x) for r in rows])
            if any(r[j] is not None for r in rows)
            else None
            for j, x in enumerate(inputs)
        )
    return [
        g if g is not None else torch.zeros(m, *x.shape, device=x.device, dtype=x.dtype)
        for g, x in zip(grads, inputs)
    ]


class BlockGradients:
    """A source whose Jacobian comes in column blocks, one per parameter [(m, p.numel())]:
    the Gram matrix sums the blocks' own, so J is never concatenated."""

    params: list[nn.Parameter]
    complete = False
    reduce: Reduce | None = None

    def _blocks(self, per_term: list[Tensor]) -> list[Tensor]:
        raise NotImplementedError

    def _global_blocks(self, per_term: list[Tensor]) -> list[Tensor]:
        blocks = self._blocks(per_term)
        return blocks if self.reduce is None else self.reduce(blocks)

    def gram(self, per_term: list[Tensor]) -> Tensor:
        blocks = self._keep(self._global_blocks(per_term))
        with fp32(blocks[0]):
            gram = blocks[0] @ blocks[0].T
            for b in blocks[1:]:
                gram += b @ b.T
        return gram

    def jacobian(self, per_term: list[Tensor]) -> Tensor:
        return torch.cat(self._keep(self._global_blocks(per_term)), dim=1)

    def _keep(self, blocks: list[Tensor]) -> list[Tensor]:
        self.last = blocks if self.complete else []  # held only for `combined`
        return blocks

    def combined(self, alpha: Tensor) -> list[Tensor]:
        blocks, self.last = self.last, []
        alpha = alpha.to(blocks[0].dtype)
        with fp32(alpha):
            return [(alpha @ b).reshape(p.shape) for b, p in zip(blocks, self.params)]


class ParameterJacobian(BlockGradients):
    """Per-objective gradients w.r.t. `params` by one batched backward pass of the objectives:
    exact for any objectives, at the price of m backward passes through all they read."""

    def __init__(self, params: list[nn.Parameter]):
        self.params = params

    def __call__(self, per_term: list[Tensor]) -> Tensor:
        return self.jacobian(per_term)

    def _blocks(self, per_term: list[Tensor]) -> list[Tensor]:
        values = torch.cat([t.reshape(-1) for t in per_term])
        eye = torch.eye(values.numel(), device=values.device, dtype=values.dtype)
        grads = batched_grad([values], self.params, [eye])
        return [g.reshape(g.shape[0], -1).detach().float() for g in grads]


def jacobian_at(params: list[nn.Parameter]) -> ParameterJacobian:
    """The exact per-objective gradients w.r.t. `params` (the fallback every phase can take)."""
    return ParameterJacobian(params)


class DisjointJacobian:
    """Per-objective gradients when objective d (one per network) reads only network d's
    parameters, which nothing is shared with (GMAN's discriminators, `independent`): the gradient
    of the summed term, split by network along each parameter's leading axis, is every
    objective's gradient at once; one backward per term. Objectives of different networks are
    orthogonal, so the Gram matrix needs only each network's own inner products."""

    complete = False
    reduce: Reduce | None = None

    def __init__(self, params: list[nn.Parameter], copies: int):
        self.params, self.copies = params, copies
        self.last: list[list[Tensor]] = []

    def _per_network(self, per_term: list[Tensor]) -> list[list[Tensor]]:
        """Each term's gradients, parameter by parameter, network by network:
        [[(copies, p.numel() / copies), ...], ...]."""
        out = []
        for term in per_term:
            if term.numel() != self.copies:
                raise RuntimeError(f"{term.numel()} objectives for {self.copies} disjoint networks")
            grads = torch.autograd.grad(
                term.sum(), self.params, retain_graph=True, allow_unused=True
            )
            zeros = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, self.params)]
            out.append([g.detach().float().reshape(self.copies, -1) for g in zeros])
        if self.reduce is not None:
            flat = self.reduce([g for term in out for g in term])
            out = [flat[i : i + len(self.params)] for i in range(0, len(flat), len(self.params))]
        self.last = out if self.complete else []  # held only for `combined`
        return out

    def gram(self, per_term: list[Tensor]) -> Tensor:
        blocks = self._per_network(per_term)
        c, t = self.copies, len(blocks)
        gram = blocks[0][0].new_zeros(t * c, t * c)
        diagonal = torch.arange(c, device=gram.device)
        for a, b in itertools.combinations_with_replacement(range(t), 2):
            with fp32(gram):  # (copies,): network d's gradients' inner products
                if a == b:  # squared norms: one read of each block instead of two
                    dots = sum(torch.linalg.vector_norm(x, dim=1).square() for x in blocks[a])
                else:
                    dots = sum(torch.linalg.vecdot(x, y) for x, y in zip(blocks[a], blocks[b]))
            gram[a * c + diagonal, b * c + diagonal] = dots
            gram[b * c + diagonal, a * c + diagonal] = dots
        return gram

    def jacobian(self, per_term: list[Tensor]) -> Tensor:
        """(m, copies · P/copies): row d holds network d's gradient in its slot, zeros elsewhere
        (a layout of its own: network-major, not the parameters')."""
        terms = [torch.cat(b, dim=1) for b in self._per_network(per_term)]
        return torch.cat([torch.block_diag(*b.unbind(0)) for b in terms])

    def combined(self, alpha: Tensor) -> list[Tensor]:
        terms, self.last = self.last, []
        alpha = alpha.reshape(len(terms), self.copies, 1).float()
        out = []
        for i, p in enumerate(self.params):
            # network d's slice scaled by its objective's α; the gradients are ours to scale
            total = terms[0][i].mul_(alpha[0])
            for a, b in zip(alpha[1:], terms[1:]):
                total.add_(b[i].mul_(a))
            out.append(total.reshape(p.shape))
        return out
