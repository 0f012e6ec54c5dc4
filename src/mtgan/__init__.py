"""mtgan: multi-task GANs with shared layers, trained together and measured honestly."""

from mtgan.api import Run, describe, open_run, train
from mtgan.config import ExperimentConfig, load_config, preset_names
from mtgan.errors import ConfigError, DataError, MtganError, RunError

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataError",
    "ExperimentConfig",
    "MtganError",
    "Run",
    "RunError",
    "describe",
    "load_config",
    "open_run",
    "preset_names",
    "train",
]
