"""Training: the phase loop, EMA, checkpoints and the run directory."""

from mtgan.rundir import RunDir, default_run_dir  # re-exported: the run directory's layout
from mtgan.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from mtgan.training.device import pick_device
from mtgan.training.trainer import Trainer

__all__ = [
    "RunDir",
    "Trainer",
    "default_run_dir",
    "latest_checkpoint",
    "load_checkpoint",
    "pick_device",
    "save_checkpoint",
]
