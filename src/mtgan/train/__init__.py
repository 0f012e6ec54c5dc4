"""Training: the phase loop, EMA, checkpoints and the run directory."""

from mtgan.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from mtgan.train.rundir import RunDir, default_run_dir
from mtgan.train.trainer import Trainer, pick_device

__all__ = [
    "RunDir",
    "Trainer",
    "default_run_dir",
    "latest_checkpoint",
    "load_checkpoint",
    "pick_device",
    "save_checkpoint",
]
