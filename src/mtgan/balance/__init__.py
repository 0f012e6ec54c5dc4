"""Multi-task balancers: turn the terms of a phase into one loss to differentiate."""

from mtgan.balance.base import BALANCERS, Balancer, FixedWeights, build_balancer, register
from mtgan.balance.external import TorchJD
from mtgan.balance.gman import GMANSoftmax
from mtgan.balance.gradients import (
    IMTLG,
    MGDA,
    CAGrad,
    GradNorm,
    NashMTL,
    PCGrad,
)
from mtgan.balance.solvers import conflict_averse_weights, min_norm_weights
from mtgan.balance.sources import jacobian_at
from mtgan.balance.weighting import (
    FAMO,
    DynamicWeightAverage,
    GeometricMean,
    Hypervolume,
    RandomLossWeighting,
    UncertaintyWeighting,
    describe_balancers,
)

__all__ = [
    "FAMO",
    "IMTLG",
    "MGDA",
    "BALANCERS",
    "CAGrad",
    "GradNorm",
    "NashMTL",
    "PCGrad",
    "jacobian_at",
    "min_norm_weights",
    "conflict_averse_weights",
    "Balancer",
    "DynamicWeightAverage",
    "FixedWeights",
    "GMANSoftmax",
    "GeometricMean",
    "Hypervolume",
    "RandomLossWeighting",
    "TorchJD",
    "UncertaintyWeighting",
    "build_balancer",
    "describe_balancers",
    "register",
]
