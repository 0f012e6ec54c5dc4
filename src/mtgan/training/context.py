"""What one training step has drawn and computed, shared by every term of every phase.

Fake samples are generated once per step and reused; discriminator outputs are cached until a
parameter update makes them stale (`invalidate`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from mtgan.nets import MultiGAN


class StepContext:
    """real: (K, B, *shape) task batches; z: (NG, B, z_dim) one noise batch per generator."""

    def __init__(self, model: MultiGAN, real: Tensor, z: Tensor, step: int, noise: torch.Generator):
        self.model, self.real, self.z, self.step, self.noise = model, real, z, step, noise
        self._fake: Tensor | None = None
        self._cache: dict[str, Tensor] = {}

    @property
    def fake(self) -> Tensor:
        """G(z): (NG, B, *shape), computed on first use and kept for the whole step."""
        if self._fake is None:
            self._fake = self.model.generate(self.z)
        return self._fake

    def invalidate(self) -> None:
        """Forget discriminator outputs: called after the discriminator's weights changed."""
        self._cache.clear()

    def _real_and_fake_detached(self) -> None:
        # One discriminator pass over real and (detached) fake samples together.
        b = self.real.shape[1]
        logits = self.model.discriminate(torch.cat([self.real, self.fake.detach()], dim=1))
        self._cache["real"], self._cache["fake_detached"] = logits[:, :b], logits[:, b:]

    def disc_real(self) -> Tensor:
        """D(real): (ND, B) logits."""
        if "real" not in self._cache:
            self._real_and_fake_detached()
        return self._cache["real"]

    def disc_fake_detached(self) -> Tensor:
        """D(G(z)) with the fakes treated as constants (the D phase): (ND, B) logits."""
        if "fake_detached" not in self._cache:
            self._real_and_fake_detached()
        return self._cache["fake_detached"]

    def disc_fake(self) -> Tensor:
        """D(G(z)) differentiable w.r.t. the generators (the G phase): (ND, B) logits."""
        if "fake" not in self._cache:
            self._cache["fake"] = self.model.discriminate(self.fake)
        return self._cache["fake"]
