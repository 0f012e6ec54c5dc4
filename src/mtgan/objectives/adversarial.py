"""Adversarial losses on discriminator logits, in numerically stable forms.

Every loss takes raw logits ``l`` (any shape, e.g. (K, B) for K tasks) and returns an
ELEMENTWISE loss of the same shape; the caller averages (per task or overall). With
D(x) = sigmoid(l), the log terms are written with softplus, which never overflows and keeps
finite gradients for any finite logit:

    -log D(x)       = -log sigmoid(l)     = softplus(-l)
    -log(1 - D(x))  = -log sigmoid(-l)    = softplus(l)

Note: the source text we started from writes the generator loss with the data expectation
E_x log D(x) inside G's objective, and multiplies D by log D in its example; both are wrong:
G's objective has no term in real data (its gradient w.r.t. G is zero), and the loss is
-log D, not D·log D.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

import torch.nn.functional as F
from torch import Tensor


class AdversarialLoss(Protocol):
    """What every adversarial loss provides: elementwise losses on logits, shape in = shape out."""

    name: ClassVar[str]

    def d_real(self, real_logits: Tensor) -> Tensor:
        """Discriminator loss on real samples' logits."""
        ...

    def d_fake(self, fake_logits: Tensor) -> Tensor:
        """Discriminator loss on generated samples' logits."""
        ...

    def g(self, fake_logits: Tensor) -> Tensor:
        """Generator loss on generated samples' logits."""
        ...


@dataclass(frozen=True)
class Minimax:
    """Original GAN value function (Goodfellow et al. 2014); G's loss saturates early on.

    D minimises  -log D(x) - log(1 - D(G(z)))  ->  d_real = softplus(-r), d_fake = softplus(f)
    G minimises  log(1 - D(G(z)))              ->  g = -softplus(f)
    """

    name: ClassVar[str] = "minimax"

    def d_real(self, real_logits: Tensor) -> Tensor:
        return F.softplus(-real_logits)

    def d_fake(self, fake_logits: Tensor) -> Tensor:
        return F.softplus(fake_logits)

    def g(self, fake_logits: Tensor) -> Tensor:
        # log(1 - sigmoid(f)) = -softplus(f); its gradient -sigmoid(f) vanishes as f -> -inf.
        return -F.softplus(fake_logits)


@dataclass(frozen=True)
class NonSaturating:
    """Non-saturating GAN (Goodfellow et al. 2014): same D, G maximises log D(G(z)) instead.

    D minimises  -log D(x) - log(1 - D(G(z)))  ->  d_real = softplus(-r), d_fake = softplus(f)
    G minimises  -log D(G(z))                  ->  g = softplus(-f)
    """

    name: ClassVar[str] = "nonsaturating"

    def d_real(self, real_logits: Tensor) -> Tensor:
        return F.softplus(-real_logits)

    def d_fake(self, fake_logits: Tensor) -> Tensor:
        return F.softplus(fake_logits)

    def g(self, fake_logits: Tensor) -> Tensor:
        # Gradient -sigmoid(-f) -> -1 when D confidently rejects fakes: G keeps learning.
        return F.softplus(-fake_logits)


@dataclass(frozen=True)
class Hinge:
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018), on raw logits.

    D minimises  relu(1 - r) + relu(1 + f)  ->  d_real = relu(1 - r), d_fake = relu(1 + f)
    G minimises  -f                         ->  g = -f
    """

    name: ClassVar[str] = "hinge"

    def d_real(self, real_logits: Tensor) -> Tensor:
        return F.relu(1.0 - real_logits)

    def d_fake(self, fake_logits: Tensor) -> Tensor:
        return F.relu(1.0 + fake_logits)

    def g(self, fake_logits: Tensor) -> Tensor:
        return -fake_logits


@dataclass(frozen=True)
class Wasserstein:
    """WGAN critic loss (Arjovsky et al. 2017); use with a gradient penalty (WGAN-GP).

    D minimises  -r + f  ->  d_real = -r, d_fake = f
    G minimises  -f      ->  g = -f
    """

    name: ClassVar[str] = "wasserstein"

    def d_real(self, real_logits: Tensor) -> Tensor:
        return -real_logits

    def d_fake(self, fake_logits: Tensor) -> Tensor:
        return fake_logits

    def g(self, fake_logits: Tensor) -> Tensor:
        return -fake_logits


@dataclass(frozen=True)
class LeastSquares:
    """Least-squares GAN (Mao et al. 2017) with 0-1 coding, on raw outputs.

    D minimises  ½(r - 1)² + ½ f²  ->  d_real = ½(r - 1)², d_fake = ½ f²
    G minimises  ½(f - 1)²         ->  g = ½(f - 1)²
    """

    name: ClassVar[str] = "lsgan"

    def d_real(self, real_logits: Tensor) -> Tensor:
        return 0.5 * (real_logits - 1.0).square()

    def d_fake(self, fake_logits: Tensor) -> Tensor:
        return 0.5 * fake_logits.square()

    def g(self, fake_logits: Tensor) -> Tensor:
        return 0.5 * (fake_logits - 1.0).square()


# The losses are stateless, so the registry holds ready-to-use instances.
ADVERSARIAL: dict[str, AdversarialLoss] = {
    cls.name: cls() for cls in (Minimax, NonSaturating, Hinge, Wasserstein, LeastSquares)
}


def get_adversarial(name: str) -> AdversarialLoss:
    """Look up an adversarial loss by name; KeyError lists the known names."""
    try:
        return ADVERSARIAL[name]
    except KeyError:
        known = ", ".join(sorted(ADVERSARIAL))
        raise KeyError(f"unknown adversarial loss {name!r}; choose one of: {known}") from None
