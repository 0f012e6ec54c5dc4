"""The experiment schema: one strict pydantic model, loaded from presets, YAML files, dicts and
dotted command-line overrides.

Every field has a default, so a preset or YAML file only says what differs. Unknown keys are
rejected with the nearest valid name; wrong types and ranges name the field and what is allowed.

sections.py   data, model, loss, balance        train.py     train, train.until, eval
experiment.py the whole config and its cross-section rules
loading.py    presets, YAML, overrides, load_config / save_config
messages.py   validation errors as a user reads them
"""

from mtgan.config.experiment import ExperimentConfig
from mtgan.config.loading import (
    apply_overrides,
    load_config,
    parse_override,
    preset_descriptions,
    preset_names,
    save_config,
    validate,
)
from mtgan.config.messages import format_validation_error
from mtgan.config.sections import (
    BalanceConfig,
    DataConfig,
    DomainName,
    LossConfig,
    ModelConfig,
    ShareConfig,
    ShareSpec,
    Strict,
)
from mtgan.config.train import EvalConfig, TrainConfig, UntilConfig

__all__ = [
    "BalanceConfig",
    "DataConfig",
    "DomainName",
    "EvalConfig",
    "ExperimentConfig",
    "LossConfig",
    "ModelConfig",
    "ShareConfig",
    "ShareSpec",
    "Strict",
    "TrainConfig",
    "UntilConfig",
    "apply_overrides",
    "format_validation_error",
    "load_config",
    "parse_override",
    "preset_descriptions",
    "preset_names",
    "save_config",
    "validate",
]
