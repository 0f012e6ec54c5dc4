"""Multi-task balancers: turn the terms of one phase into one loss to differentiate."""

from mtgan.balance.base import BALANCERS, Balancer, FixedWeights, build_balancer, register
from mtgan.balance.gman import GMANSoftmax

__all__ = ["BALANCERS", "Balancer", "FixedWeights", "GMANSoftmax", "build_balancer", "register"]
