"""Who owns which parameter: one row per layer of every network family (shared by all the
family's networks, or task-own with K copies), read through mtgan.nets.protocol, and the table
`mtgan describe` prints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import Tensor, nn

from mtgan.nets.blocks import StackedNet

if TYPE_CHECKING:
    from mtgan.nets.builder import MultiGAN


@dataclass(frozen=True)
class ParamRow:
    """One layer's parameters and who owns them, for `describe` and tests."""

    family: str  # "g" or "d"
    layer: int | str  # index, or "head:NAME" for an extra discriminator head
    plan: str
    owners: str  # e.g. "shared by G0–G9", "own (10 copies)", "shared by G0–G9 and D0–D9"
    shared: bool
    numel: int


def ownership(model: MultiGAN) -> list[ParamRow]:
    """One row per layer: its plan, who owns it and how many parameters it holds."""
    crossed = {}
    for group in model.cross_groups:
        for member in group:
            crossed[member] = [m for m in group if m != member]
    rows = []
    seen: set[int] = set()
    for family, net, count in (
        ("g", model.generator, model.num_generators),
        ("d", model.discriminator, model.num_discriminators),
    ):
        letter = family.upper()
        shared_ids = {id(p) for p in net.shared_parameters()}
        every = f"{letter}0–{letter}{count - 1}" if count > 1 else f"{letter}0"
        for i, text, layer in _layers(net):
            params = [p for p in layer.parameters() if id(p) not in seen]
            seen.update(id(p) for p in params)
            crossing = crossed.get((family, i), [])
            if not params and not crossing:
                continue
            common = [p for p in params if id(p) in shared_ids]
            own = [p for p in params if id(p) not in shared_ids]
            if common and own and not crossing:  # a shared layer's per-task γ, β (cond. BN)
                for part, owners, is_shared in (
                    (common, f"shared by {every}", True),
                    (own, f"own ({count} copies)", False),
                ):
                    label = text if is_shared else "  γ, β"
                    rows.append(ParamRow(family, i, label, owners, is_shared, _numel(part)))
                continue
            owners = f"own ({count} copies)" if own else f"shared by {every}"
            for other_family, j in crossing:
                owners += f"; weights shared with {other_family}.{j}"
            shared = not own or bool(crossing)
            rows.append(ParamRow(family, i, text, owners, shared, _numel(params)))
    for name, head in model.heads.items():
        count = model.num_discriminators
        every = f"D0–D{count - 1}" if count > 1 else "D0"
        owners = f"shared by {every}" if head.shared or count == 1 else f"own ({count} copies)"
        rows.append(
            ParamRow(
                "d",
                f"head:{name}",
                head.plan.describe(),
                owners,
                head.shared,
                sum(p.numel() for p in head.parameters()),
            )
        )
    return rows


def describe(model: MultiGAN) -> str:
    """A table of every layer of every network family: plan, owners, parameter count."""
    lines = []
    rows = ownership(model)
    for family, title, count in (
        ("g", "generators", model.num_generators),
        ("d", "discriminators", model.num_discriminators),
    ):
        lines.append(f"{title} ({count}):")
        width = max((len(str(r.layer)) for r in rows), default=1)
        for r in (r for r in rows if r.family == family):
            layer = f"{family}.{r.layer}".ljust(width + 2)
            lines.append(f"  {layer}  {r.plan:44s} {r.owners:36s} {r.numel:>10,d}")
    shared = sum(r.numel for r in rows if r.shared)
    own = sum(r.numel for r in rows if not r.shared)
    lines.append(f"parameters: {shared + own:,d} in all; {shared:,d} shared, {own:,d} task-own")
    return "\n".join(lines)


def _layers(net: nn.Module) -> list[tuple[int | str, str, nn.Module]]:
    """(index or name, description, module) per layer of a family: the layer plans of built-in
    networks, else its children (a ModuleList's or Sequential's items one by one)."""
    if isinstance(net, StackedNet):
        return [(i, b.plan.describe(), b) for i, b in enumerate(net.blocks)]
    out: list[tuple[int | str, str, nn.Module]] = []
    for name, child in net.named_children():
        if isinstance(child, (nn.ModuleList, nn.Sequential)):
            out += [(f"{name}.{i}", type(c).__name__, c) for i, c in enumerate(child)]
        else:
            out.append((name, type(child).__name__, child))
    loose = nn.ParameterList(net.parameters(recurse=False))
    if len(loose):  # parameters the family module holds itself
        out.append(("params", type(net).__name__, loose))
    return out


def _numel(params: list[Tensor]) -> int:
    return sum(p.numel() for p in params)
