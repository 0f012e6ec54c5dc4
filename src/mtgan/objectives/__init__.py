"""Training objectives: adversarial losses on logits and gradient penalties on the critic."""

from mtgan.objectives.adversarial import (
    ADVERSARIAL,
    AdversarialLoss,
    Hinge,
    LeastSquares,
    Minimax,
    NonSaturating,
    Wasserstein,
    get_adversarial,
)
from mtgan.objectives.penalties import gradient_penalty, r1_penalty

__all__ = [
    "ADVERSARIAL",
    "AdversarialLoss",
    "Hinge",
    "LeastSquares",
    "Minimax",
    "NonSaturating",
    "Wasserstein",
    "get_adversarial",
    "gradient_penalty",
    "r1_penalty",
]
