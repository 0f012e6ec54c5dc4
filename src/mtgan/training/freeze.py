"""`model.freeze`: parameters no phase updates (FreezeD: a discriminator's lower layers).

Patterns are fnmatch-style over the model's parameter names as `model.named_parameters()` gives
them (`discriminator.blocks.0.affine.bias`); a pattern also matches every parameter under a
module it names (`discriminator.blocks.0`). Frozen parameters get `requires_grad=False` before
the phases collect their parameters, so no optimizer holds them and no gradient is computed for
them; batch-norm running statistics and spectral-norm vectors (buffers) still update.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from torch import nn

from mtgan.errors import ConfigError


def _matches(name: str, pattern: str) -> bool:
    return fnmatchcase(name, pattern) or fnmatchcase(name, pattern + ".*")


def layer_prefixes(model: nn.Module) -> list[str]:
    """The layers a pattern can name, in order: each parameter name up to its first numeric
    part (`discriminator.blocks.0`), or its module (`heads.source.affine`) where there is none."""
    out: dict[str, None] = {}
    for name, _ in model.named_parameters(remove_duplicate=False):
        parts = name.split(".")
        cut = next((i + 1 for i, part in enumerate(parts) if part.isdigit()), len(parts) - 1)
        out.setdefault(".".join(parts[:cut]), None)
    return list(out)


def frozen_names(model: nn.Module, patterns: list[str]) -> list[str]:
    """Every parameter name (aliases included) that one of `patterns` matches; a pattern that
    matches nothing is a ConfigError naming it and the model's layers."""
    names = [n for n, _ in model.named_parameters(remove_duplicate=False)]
    for pattern in patterns:
        if not any(_matches(n, pattern) for n in names):
            raise ConfigError(
                f"model.freeze: {pattern!r} matches no parameter of this model; patterns are "
                f"fnmatch-style over parameter names or layer prefixes, e.g. "
                f"'discriminator.blocks.0' or 'generator.blocks.*.norm.*'. Layers: "
                f"{', '.join(layer_prefixes(model))}"
            )
    return [n for n in names if any(_matches(n, p) for p in patterns)]


def freeze(model: nn.Module, patterns: list[str]) -> list[str]:
    """Set `requires_grad=False` on the parameters `patterns` match; returns their names. A
    parameter held under several names (a G–D shared layer) is frozen under all of them."""
    if not patterns:
        return []
    names = frozen_names(model, patterns)
    params = dict(model.named_parameters(remove_duplicate=False))
    for name in names:
        params[name].requires_grad_(False)
    return names


def describe_frozen(model: nn.Module, patterns: list[str]) -> str:
    """One line: how many parameters `model.freeze` keeps fixed, and in which layers."""
    names = set(frozen_names(model, patterns))
    params = {id(p): p for n, p in model.named_parameters(remove_duplicate=False) if n in names}
    count = sum(p.numel() for p in params.values())
    total = sum(p.numel() for p in model.parameters())
    layers = [
        prefix
        for prefix in layer_prefixes(model)
        if any(n == prefix or n.startswith(prefix + ".") for n in names)
    ]
    return (
        f"frozen (model.freeze): {count:,d} of {total:,d} parameters in {len(params)} tensor(s), "
        f"layers {', '.join(layers)}"
    )
