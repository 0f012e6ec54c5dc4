"""Networks: task-stacked layers, blocks that are shared or task-own, the model builder, and
the protocol your own networks follow (`model.arch: "package.module:factory"`, protocol.py).

For your own training loop: `StackedLinear`, `StackedConv2d`, `StackedConvTranspose2d` run K
task copies of a layer as one batched kernel on (K, B, ...) tensors, `TaskBatchNorm` keeps batch
statistics per task, and `MultiGAN(config.model, data_shape, num_tasks)` builds every generator
and discriminator of a config, shared layers included.
"""

from mtgan.nets.blocks import Block, LayerPlan, StackedNet
from mtgan.nets.builder import MultiGAN, ParamRow, resolve_share
from mtgan.nets.protocol import NetSpec
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
    "NetSpec",
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
