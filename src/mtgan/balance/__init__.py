"""Multi-task balancers: turn the terms of a phase into one loss to differentiate."""

from mtgan.balance.base import BALANCERS, Balancer, FixedWeights, build_balancer, register
from mtgan.balance.gman import GMANSoftmax
from mtgan.balance.weighting import (
    DynamicWeightAverage,
    GeometricMean,
    Hypervolume,
    RandomLossWeighting,
    UncertaintyWeighting,
    describe_balancers,
)

__all__ = [
    "BALANCERS",
    "Balancer",
    "DynamicWeightAverage",
    "FixedWeights",
    "GMANSoftmax",
    "GeometricMean",
    "Hypervolume",
    "RandomLossWeighting",
    "UncertaintyWeighting",
    "build_balancer",
    "describe_balancers",
    "register",
]
