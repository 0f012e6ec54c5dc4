"""Loading an experiment: presets, YAML files, dicts and dotted command-line overrides."""

from __future__ import annotations

import copy
import difflib
import importlib.resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    ValidationError,
)

from mtgan.config.experiment import ExperimentConfig
from mtgan.config.messages import format_validation_error
from mtgan.errors import ConfigError


def preset_names() -> list[str]:
    """Names of the presets shipped inside the package."""
    files = importlib.resources.files("mtgan.presets").iterdir()
    return sorted(f.name[:-5] for f in files if f.name.endswith(".yaml"))


def preset_descriptions() -> dict[str, str]:
    """Preset name → its one-line description."""
    return {name: _read_preset(name).get("description", "") for name in preset_names()}


def _read_preset(name: str) -> dict[str, Any]:
    text = importlib.resources.files("mtgan.presets").joinpath(f"{name}.yaml").read_text()
    return yaml.safe_load(text) or {}


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping, not {type(data).__name__}")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b.c=value` → (["a", "b", "c"], value parsed as YAML: numbers, lists, null, ...)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} must look like key.subkey=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of the nested dict `data` with dotted overrides applied."""
    out = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {} if child is None else child
                node[part] = child
            if not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {part} is not a section")
            node = child
        node[path[-1]] = value
    return out


def load_config(
    source: str | Path | dict[str, Any] | ExperimentConfig | None = None,
    overrides: list[str] | None = None,
) -> ExperimentConfig:
    """Build a validated config from a preset name, a YAML path, a dict or a config.

    `None` gives the default preset (`pertask`). Overrides are dotted `key=value` strings.
    Raises ConfigError with a readable message on any problem.
    """
    if source is None:
        source = "pertask"
    if isinstance(source, ExperimentConfig):
        data = source.model_dump(mode="json")
    elif isinstance(source, dict):
        data = copy.deepcopy(source)
    elif isinstance(source, Path) or str(source).endswith((".yaml", ".yml")):
        data = _read_yaml(Path(source))
    elif str(source) in preset_names():
        data = _read_preset(str(source))
    else:
        close = difflib.get_close_matches(str(source), preset_names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"unknown preset or config file {str(source)!r}{hint}; "
            f"presets: {', '.join(preset_names())}"
        )
    given = apply_overrides(data, overrides or [])
    return validate(_describe_data_change(data, given, source))


def _describe_data_change(
    before: dict[str, Any], after: dict[str, Any], source: Any
) -> dict[str, Any]:
    """A description written for a config's own data, marked as such when overrides train it
    on other data (config.yaml otherwise says "The 10 digit classes…" of a run on shapes)."""
    old, new, text = before.get("data"), after.get("data"), after.get("description")
    if not (isinstance(old, dict) and isinstance(new, dict) and text):
        return after  # nothing to mark, or a shape the schema will name
    where = [f"data.{k}={new.get(k)}" for k in ("path", "name") if old.get(k) != new.get(k)]
    if not where:
        return after
    preset = isinstance(source, str) and source in preset_names()
    what = f"the {source} preset" if preset else "this config"
    return {**after, "description": f"{what} on {where[0]}; written for its own data: {text}"}


def validate(data: dict[str, Any]) -> ExperimentConfig:
    """Validate a nested dict, turning pydantic's errors into one readable ConfigError."""
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e)) from None


def save_config(config: ExperimentConfig, path: Path) -> None:
    """Write the resolved config as YAML (every field, defaults included)."""
    path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
