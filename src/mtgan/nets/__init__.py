"""Networks: task-stacked layers, blocks that are shared or task-own, and the model builder."""

from mtgan.nets.blocks import Block, LayerPlan, StackedNet
from mtgan.nets.builder import MultiGAN, ParamRow, resolve_share
from mtgan.nets.routing import route, task_samples, to_discriminators
from mtgan.nets.stacked import (
    StackedConv2d,
    StackedConvTranspose2d,
    StackedLinear,
    TaskBatchNorm,
)

__all__ = [
    "Block",
    "LayerPlan",
    "MultiGAN",
    "ParamRow",
    "TaskBatchNorm",
    "StackedConv2d",
    "StackedConvTranspose2d",
    "StackedLinear",
    "StackedNet",
    "resolve_share",
    "route",
    "task_samples",
    "to_discriminators",
]
