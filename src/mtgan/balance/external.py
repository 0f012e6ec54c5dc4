"""torchjd's weightings as balancers, when torchjd is installed (an optional extra).

`balance.g=torchjd balance.g_options={weighting: UPGradWeighting}` takes any of
`torchjd.aggregation`'s Weighting classes (options under `options`). They see the same
per-objective gradients as mtgan's own gradient balancers (the Gram matrix, or the Jacobian for
matrix weightings); their weights w are used as α = m·w, so torchjd's Mean is fixed weights.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mtgan.balance.base import register
from mtgan.balance.gradients import GradientWeighting
from mtgan.errors import ConfigError


@register
class TorchJD(GradientWeighting):
    """A torchjd weighting (Quinton & Rey 2024) behind mtgan's balancer interface."""

    name = "torchjd"
    summary = "any torchjd.aggregation weighting, e.g. UPGradWeighting (optional: pip torchjd)"

    def __init__(
        self, weighting: str = "UPGradWeighting", options: dict | None = None, at="shared"
    ):
        super().__init__(at)
        try:
            import torchjd.aggregation as aggregation
            from torchjd.aggregation._weighting_bases import _MatrixWeighting
        except ImportError:
            raise ConfigError(
                "balancer 'torchjd' needs torchjd: pip install torchjd (not a dependency of mtgan)"
            ) from None
        cls = getattr(aggregation, weighting, None)
        known = sorted(n for n in dir(aggregation) if n.endswith("Weighting") and n != "Weighting")
        if not isinstance(cls, type) or not weighting.endswith("Weighting"):
            raise ConfigError(f"weighting {weighting!r} is not in torchjd; choose from {known}")
        try:
            self.weighting = cls(**(options or {}))
        except (TypeError, ImportError) as e:
            raise ConfigError(f"torchjd {weighting}: {e}") from None
        self.uses_gram = not isinstance(self.weighting, _MatrixWeighting)
        self.weighting_name = weighting

    def alphas(self, grads: Tensor, values: Tensor) -> Tensor:
        w = self.weighting(grads.float()).detach().to(torch.float64)
        return grads.shape[0] * w

    def state_dict(self) -> dict[str, Any]:
        return {"weighting": self.weighting_name}
