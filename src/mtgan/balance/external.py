"""torchjd's weightings as balancers, when torchjd is installed (the `torchjd` extra).

`balance.g=torchjd balance.g_options={weighting: UPGradWeighting}` takes any of
`torchjd.aggregation`'s Weighting classes (options under `options`). They see the same
per-objective gradients as mtgan's own gradient balancers: the Gram matrix for the weightings
torchjd defines on a Gramian, the Jacobian for those defined on the matrix itself. Their weights
are used as torchjd gives them, α = w, so the update is torchjd's aggregated vector Σ w_i g_i:
`SumWeighting` is fixed weights, `MeanWeighting` their mean (α = 1/m), `PCGradWeighting` PCGrad.
"""

from __future__ import annotations

import typing
from typing import Any

import torch
from torch import Tensor

from mtgan.balance.base import register
from mtgan.balance.gradients import GradientWeighting
from mtgan.errors import ConfigError


def takes_gramian(cls: type) -> bool:
    """Whether a torchjd Weighting class is defined on the Gramian (`Weighting[PSDMatrix]`)
    rather than on the matrix itself, as its public generic base says."""
    for klass in cls.__mro__:
        for base in getattr(klass, "__orig_bases__", ()):
            if any(getattr(arg, "__name__", "") == "PSDMatrix" for arg in typing.get_args(base)):
                return True
    return False


@register
class TorchJD(GradientWeighting):
    """A torchjd weighting (Quinton & Rey 2024) behind mtgan's balancer interface."""

    name = "torchjd"
    summary = "any torchjd.aggregation weighting, e.g. UPGradWeighting (extra: mtgan[torchjd])"

    def __init__(
        self, weighting: str = "UPGradWeighting", options: dict | None = None, at="shared"
    ):
        super().__init__(at)
        try:
            import torchjd.aggregation as aggregation
        except ImportError:
            raise ConfigError(
                "balancer 'torchjd' needs torchjd: pip install 'mtgan[torchjd]' (not a "
                "dependency of mtgan itself)"
            ) from None
        cls = getattr(aggregation, weighting, None)
        known = sorted(n for n in dir(aggregation) if n.endswith("Weighting") and n != "Weighting")
        if not isinstance(cls, type) or not weighting.endswith("Weighting"):
            raise ConfigError(f"weighting {weighting!r} is not in torchjd; choose from {known}")
        try:
            self.weighting = cls(**(options or {}))
        except (TypeError, ImportError, ValueError) as e:
            raise ConfigError(f"torchjd {weighting}: {e}") from None
        self.uses_gram = takes_gramian(cls)
        self.weighting_name = weighting

    def alphas(self, grads: Tensor, values: Tensor) -> Tensor:
        return self.weighting(grads.float()).detach().to(torch.float64)

    def state_dict(self) -> dict[str, Any]:
        return {"weighting": self.weighting_name, "module": self.weighting.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "module" in state:
            self.weighting.load_state_dict(state["module"])
