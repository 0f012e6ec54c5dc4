"""Training objectives: adversarial losses on logits, gradient penalties on the critic, and the
differentiable augmentation every discriminator input passes through (loss.augment)."""

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
from mtgan.objectives.augment import TRANSFORMS, Augment, build_augment
from mtgan.objectives.penalties import gradient_penalty, r1_penalty

__all__ = [
    "ADVERSARIAL",
    "TRANSFORMS",
    "AdversarialLoss",
    "Augment",
    "Hinge",
    "LeastSquares",
    "Minimax",
    "NonSaturating",
    "Wasserstein",
    "build_augment",
    "get_adversarial",
    "gradient_penalty",
    "r1_penalty",
]
