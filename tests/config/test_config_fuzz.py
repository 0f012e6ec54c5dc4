"""Property-based tests of the config schema: every invalid config is a readable ConfigError.

Invalid configs are built by mutating the presets, one (path, bad value) pair at a time, with bad
values derived from each field's type and bounds so that they are invalid by construction; a
second, broader property only asks for "valid or ConfigError", never another exception.
"""

from __future__ import annotations

import math
import string
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from mtgan.config import (
    ExperimentConfig,
    load_config,
    preset_names,
    save_config,
    validate,
)
from mtgan.config.loading import _read_preset
from mtgan.errors import ConfigError
from mtgan.metrics.extractors import FEATURE_CHOICES
from mtgan.metrics.registry import metric_names
from mtgan.objectives.augment import TRANSFORMS
from mtgan.training.loggers import SINKS

Path_ = tuple[str, ...]
FUZZ = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
QUICK = settings(FUZZ, max_examples=100)

# ---------------------------------------------------------------- the schema, walked


def _walk(model: type[BaseModel], prefix: Path_ = ()) -> tuple[list[Path_], dict[Path_, Any]]:
    """(section paths, {leaf path: FieldInfo}) of a pydantic model, depth first."""
    sections, leaves = [prefix], {}
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            sub_sections, sub_leaves = _walk(ann, (*prefix, name))
            sections += sub_sections
            leaves.update(sub_leaves)
        else:
            leaves[(*prefix, name)] = field
    return sections, leaves


SECTIONS, LEAVES = _walk(ExperimentConfig)


def _model_at(section: Path_) -> type[BaseModel]:
    model: type[BaseModel] = ExperimentConfig
    for part in section:
        model = model.model_fields[part].annotation  # type: ignore[assignment]
    return model


SECTION_FIELDS = {s: set(_model_at(s).model_fields) for s in SECTIONS}


def _bases() -> list[dict[str, Any]]:
    """Each preset as written (only what differs) and fully resolved (every field)."""
    out = []
    for name in preset_names():
        out.append(_read_preset(name))
        out.append(load_config(name).model_dump(mode="json"))
    return out


BASES = _bases()

# ---------------------------------------------------------------- values, invalid by construction

LETTERS = st.text(alphabet=string.ascii_letters, min_size=1, max_size=8)
_BOOL_WORDS = {"0", "off", "f", "false", "n", "no", "1", "on", "t", "true", "y", "yes"}


def _parses_as_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


NON_NUMERIC_TEXT = LETTERS.filter(lambda s: not _parses_as_float(s))  # "nan"/"inf" parse
NON_INTEGRAL = st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer())
ANY_LIST = st.lists(st.integers(-5, 5), max_size=3)
ANY_DICT = st.dictionaries(LETTERS, st.integers(), min_size=1, max_size=2)
NOT_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])


def _bounds(field: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in field.metadata:
        for key in ("ge", "gt", "le", "lt"):
            if getattr(m, key, None) is not None:
                out[key] = getattr(m, key)
    return out


def _min_length(field: Any) -> int:
    return max((getattr(m, "min_length", 0) or 0 for m in field.metadata), default=0)


def _split_optional(ann: Any) -> tuple[Any, bool]:
    if typing.get_origin(ann) in (Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        if len(args) == 1:
            return args[0], len(args) < len(typing.get_args(ann))
    return ann, False


def _out_of_bounds(bounds: dict[str, float], integer: bool) -> list[st.SearchStrategy]:
    """Numbers outside the field's ge/gt/le/lt bounds: small and huge, negative and positive."""
    num = st.integers if integer else st.floats
    kw: dict[str, Any] = {} if integer else {"allow_nan": False}
    out = []
    if "ge" in bounds:
        lo = bounds["ge"]
        out.append(
            num(max_value=math.ceil(lo) - 1, **kw)
            if integer
            else num(max_value=lo, exclude_max=True, **kw)
        )
    if "gt" in bounds:
        out.append(
            num(max_value=math.floor(bounds["gt"]), **kw)
            if integer
            else num(max_value=bounds["gt"], **kw)
        )
    if "le" in bounds:
        hi = bounds["le"]
        out.append(
            num(min_value=math.floor(hi) + 1, **kw)
            if integer
            else num(min_value=hi, exclude_min=True, **kw)
        )
    if "lt" in bounds:
        out.append(
            num(min_value=math.ceil(bounds["lt"]), **kw)
            if integer
            else num(min_value=bounds["lt"], **kw)
        )
    return out


def _literal_choices(ann: Any) -> set[str] | None:
    return set(typing.get_args(ann)) if typing.get_origin(ann) is Literal else None


def _not_choice(choices: set[str]) -> st.SearchStrategy:
    return st.text(max_size=10).filter(lambda s: s not in choices)


def _share_spec_bad() -> st.SearchStrategy:
    words = {"none", "all", "trunk", "all_but_first", "all_but_last"}
    return st.one_of(
        st.integers(max_value=-1),
        NON_INTEGRAL,
        NOT_FINITE,
        NON_NUMERIC_TEXT.filter(lambda s: s not in words),
        ANY_DICT,
        st.none(),
        st.lists(NON_NUMERIC_TEXT, min_size=1, max_size=2),
    )


_REF = st.builds(lambda net, i: f"{net}.{i}", st.sampled_from("gd"), st.integers(-3, 3))
# Values the field types cannot express, for the fields a generic rule does not cover.
SPECIAL: dict[Path_, st.SearchStrategy] = {
    # An optional section: not a mapping, or one without a tracked metric.
    ("train", "until"): st.one_of(
        st.integers(),
        LETTERS,
        ANY_LIST,
        st.just({"patience": 3}),
        st.fixed_dictionaries({"metric": _not_choice({"fid", "kid", "modes", "accuracy"})}),
    ),
    ("eval", "features"): st.one_of(
        _not_choice(set(FEATURE_CHOICES)), st.integers(), ANY_LIST, ANY_DICT, st.none()
    ),
    # Names checked against the metric registry, not a Literal in the annotation.
    ("eval", "metrics"): st.one_of(
        st.sampled_from(metric_names()),  # one name, not a list of names
        st.integers(),
        ANY_DICT,
        st.none(),
        st.lists(_not_choice(set(metric_names())), min_size=1, max_size=2),
    ),
    # Names checked against the logger registry (null is the default: no None here).
    ("train", "loggers"): st.one_of(
        st.sampled_from(sorted(SINKS)),  # one name, not a list of names
        st.integers(),
        ANY_DICT,
        st.lists(_not_choice(set(SINKS)), min_size=1, max_size=2),
    ),
    # Names checked against the augmentation registry ([] is the default: no None here).
    ("loss", "augment"): st.one_of(
        st.sampled_from(sorted(TRANSFORMS)),  # one name, not a list of names
        st.integers(),
        ANY_DICT,
        st.lists(_not_choice(set(TRANSFORMS)), min_size=1, max_size=2),
    ),
    ("data", "tasks"): st.one_of(
        _not_choice({"single", "classes"}),
        st.integers(),
        ANY_DICT,
        st.none(),
        st.lists(st.integers(), min_size=1, max_size=3),  # label lists must be lists
        st.lists(st.lists(NON_NUMERIC_TEXT, min_size=1, max_size=2), min_size=1, max_size=2),
    ),
    ("model", "share", "generator"): _share_spec_bad(),
    ("model", "share", "discriminator"): _share_spec_bad(),
    ("model", "share", "cross"): st.one_of(
        LETTERS,
        st.integers(),
        ANY_DICT,
        st.none(),
        st.lists(_REF, min_size=1, max_size=3),  # a flat list of references, not groups
        st.lists(st.lists(_REF, min_size=1, max_size=1), min_size=1, max_size=2),  # lone layer
        st.lists(st.tuples(LETTERS, _REF).map(list), min_size=1, max_size=2),  # bad reference
    ),
    ("train", "init_task"): st.one_of(  # a task number ≥ 0 or the word "nearest"
        st.integers(max_value=-1),
        NON_INTEGRAL,
        LETTERS.filter(lambda s: s != "nearest"),
        ANY_LIST,
        ANY_DICT,
    ),
    ("train", "betas"): st.one_of(
        NON_NUMERIC_TEXT,
        st.integers(),
        ANY_DICT,
        st.none(),
        st.lists(st.floats(0, 1), max_size=5).filter(lambda v: len(v) != 2),
        st.tuples(NON_NUMERIC_TEXT, st.floats(0, 1)).map(list),
    ),
}


def _bad_values(path: Path_, field: Any) -> st.SearchStrategy:
    """Values the field at path must reject, derived from its annotation and bounds."""
    if path in SPECIAL:
        return SPECIAL[path]
    base, optional = _split_optional(field.annotation)
    missing = [] if optional else [st.none()]
    bounds = _bounds(field)
    choices = _literal_choices(base)
    origin, args = typing.get_origin(base), typing.get_args(base)
    if base is bool:
        return st.one_of(
            st.integers().filter(lambda i: i not in (0, 1)),
            st.floats().filter(lambda f: f not in (0.0, 1.0)),
            LETTERS.filter(lambda s: s.lower() not in _BOOL_WORDS),
            ANY_LIST,
            ANY_DICT,
            *missing,
        )
    if origin is Union and bool in args:  # a switch or a word (channels_last: true | "auto")
        words = set().union(*(_literal_choices(a) or set() for a in args))
        return st.one_of(
            st.integers().filter(lambda i: i not in (0, 1)),
            LETTERS.filter(lambda s: s.lower() not in _BOOL_WORDS | words),
            ANY_LIST,
            ANY_DICT,
            *missing,
        )
    if base is int:
        return st.one_of(
            LETTERS, NON_INTEGRAL, NOT_FINITE, ANY_LIST, ANY_DICT, *missing,
            *_out_of_bounds(bounds, integer=True),
        )  # fmt: skip
    if base is float:
        nan = [st.just(math.nan)] if bounds else []
        return st.one_of(
            NON_NUMERIC_TEXT, ANY_LIST, ANY_DICT, *missing, *nan,
            *_out_of_bounds(bounds, integer=False),
        )  # fmt: skip
    if base is str:
        return st.one_of(st.integers(), st.floats(), ANY_LIST, ANY_DICT, *missing)
    if base is Path:
        return st.one_of(st.integers(), st.floats(), ANY_LIST, ANY_DICT, *missing)
    if choices is not None:
        return st.one_of(_not_choice(choices), st.integers(), ANY_LIST, ANY_DICT, *missing)
    if origin is dict:
        return st.one_of(st.integers(), LETTERS, ANY_LIST, *missing)
    if origin is list and args[0] is int:
        return st.one_of(
            LETTERS, st.integers(), ANY_DICT, *missing,
            st.lists(LETTERS, min_size=1, max_size=3),
            st.lists(NON_INTEGRAL, min_size=1, max_size=3),
        )  # fmt: skip
    if origin is list and args[0] is str:  # free names (model.freeze's patterns)
        return st.one_of(
            LETTERS, st.integers(), ANY_DICT, *missing,
            st.lists(st.integers(), min_size=1, max_size=3),
        )  # fmt: skip
    item_choices = _literal_choices(args[0]) if origin is list else None
    if item_choices is not None:
        empty = [st.just([])] if _min_length(field) >= 1 else []
        return st.one_of(
            st.sampled_from(sorted(item_choices)),  # one name, not a list of names
            st.integers(), ANY_DICT, *missing, *empty,
            st.lists(_not_choice(item_choices), min_size=1, max_size=2),
        )  # fmt: skip
    raise NotImplementedError(f"no invalid values known for {'.'.join(path)}: {base}")


UNKNOWN_KEY = st.one_of(
    st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=12),
    st.integers(),
)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)

# ---------------------------------------------------------------- mutations


def _set(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node = data
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value


def _copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_copy(v) for v in data]
    return data


LEAF_MUTATION = st.sampled_from(sorted(LEAVES)).flatmap(
    lambda p: st.tuples(st.just(p), _bad_values(p, LEAVES[p]))
)


@st.composite
def unknown_key_mutation(draw: st.DrawFn) -> tuple[tuple[Any, ...], Any]:
    section = draw(st.sampled_from(SECTIONS))
    key = draw(UNKNOWN_KEY.filter(lambda k: k not in SECTION_FIELDS[section]))
    return (*section, key), draw(JSONISH)


@st.composite
def invalid_config(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    """(a preset with 1 to 3 invalid fields or keys, the dotted names the error must show)."""
    data = _copy(draw(st.sampled_from(BASES)))
    shape = draw(st.sampled_from(["fields", "fields", "fields", "section", "cross"]))
    if shape == "section":  # a scalar or list where a section is expected
        section = draw(st.sampled_from([s for s in SECTIONS if s]))
        value = draw(st.one_of(st.none(), st.booleans(), st.integers(), LETTERS, ANY_LIST))
        _set(data, section, value)
        return data, [".".join(section)]
    if shape == "cross":  # valid fields that do not fit together
        _set(data, ("model", "arch"), "dcgan")
        _set(data, ("data", "name"), draw(st.sampled_from(["ring8", "grid25"])))
        _set(data, ("data", "path"), None)
        return data, ["model.arch"]
    mutations = draw(
        st.lists(st.one_of(LEAF_MUTATION, unknown_key_mutation()), min_size=1, max_size=3,
                 unique_by=lambda m: m[0])
    )  # fmt: skip
    for path, value in mutations:
        _set(data, path, value)
    return data, [".".join(map(str, p)) for p, _ in mutations]


def _assert_readable(message: str) -> None:
    assert message.startswith("invalid config") or message.startswith("override "), message
    for leak in ("Traceback", 'File "', "errors.pydantic.dev", "For further information"):
        assert leak not in message, message


# ---------------------------------------------------------------- properties

_counts = {"invalid": 0}


@FUZZ
@given(invalid_config())
def _every_invalid_config_is_a_config_error(case: tuple[dict[str, Any], list[str]]) -> None:
    data, names = case
    with pytest.raises(ConfigError) as info:
        load_config(data)
    message = str(info.value)
    _assert_readable(message)
    for name in names:
        assert name in message, (name, message)
    _counts["invalid"] += 1


def test_a_thousand_invalid_configs_all_give_a_config_error_naming_the_field():
    _counts["invalid"] = 0
    _every_invalid_config_is_a_config_error()
    assert _counts["invalid"] >= 1000


@st.composite
def hostile_config(draw: st.DrawFn) -> dict[str, Any]:
    """A preset with any JSON-like value at a field, a section or an unknown key."""
    data = _copy(draw(st.sampled_from(BASES)))
    target = draw(
        st.one_of(
            st.sampled_from(sorted(LEAVES)),
            st.sampled_from([s for s in SECTIONS if s]),
            unknown_key_mutation().map(lambda m: m[0]),
        )
    )
    _set(data, target, draw(JSONISH))
    return data


@settings(QUICK, max_examples=400)
@given(hostile_config())
def test_any_value_anywhere_is_accepted_or_a_config_error(data: dict[str, Any]) -> None:
    try:
        config = load_config(data)
    except ConfigError as e:
        event("invalid")
        _assert_readable(str(e))
    else:
        event("valid")
        assert validate(config.model_dump(mode="json")) == config


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_is_valid_as_written_and_as_resolved(name, tmp_path):
    config = load_config(name)
    assert validate(_read_preset(name)) == config
    assert validate(config.model_dump(mode="json")) == config
    path = tmp_path / f"{name}.yaml"
    save_config(config, path)
    assert load_config(path) == config


def test_every_leaf_field_has_an_invalid_value_strategy():
    for path, field in LEAVES.items():
        assert _bad_values(path, field) is not None


# ---------------------------------------------------------------- overrides

SEGMENT = st.text(alphabet=string.ascii_lowercase + string.digits + "_", min_size=1, max_size=10)
# Free-form mappings: any key below them is valid.
OPEN_LEAVES = [p for p, f in LEAVES.items() if typing.get_origin(f.annotation) is dict]


@st.composite
def missing_override_path(draw: st.DrawFn) -> tuple[list[str], str]:
    """(dotted path that does not exist, the prefix of it the error must name)."""
    if draw(st.booleans()):  # below a section: an unknown key, maybe with more parts after it
        section = draw(st.sampled_from(SECTIONS))
        key = draw(SEGMENT.filter(lambda k: k not in SECTION_FIELDS[section]))
        named = [*section, key]
    else:  # below a leaf: a value is not a section
        leaf = draw(st.sampled_from([p for p in sorted(LEAVES) if p not in OPEN_LEAVES]))
        named, tail = list(leaf), [draw(SEGMENT)]
        return [*named, *tail], ".".join(named)
    tail = draw(st.lists(SEGMENT, max_size=2))
    return [*named, *tail], ".".join(named)


@settings(QUICK, max_examples=300)
@given(st.sampled_from(preset_names()), missing_override_path())
def test_override_of_a_missing_path_names_the_path(preset, case):
    parts, named = case
    with pytest.raises(ConfigError) as info:
        load_config(preset, [".".join(parts) + "=1"])
    _assert_readable(str(info.value))
    assert named in str(info.value)


# ---------------------------------------------------------------- known message bugs


@pytest.mark.parametrize("section", [(), ("model", "share")])
@pytest.mark.parametrize("key", ["int", "literal"])
def test_unknown_key_named_like_a_union_branch_is_a_config_error_naming_it(section, key):
    data: dict[str, Any] = {}
    _set(data, (*section, key), 1)
    with pytest.raises(ConfigError, match=rf"{'.'.join((*section, key))}: unknown key"):
        validate(data)


def test_data_tasks_error_shows_no_union_branch_name():
    with pytest.raises(ConfigError) as info:
        validate({"data": {"tasks": [["a"]]}})
    assert "list[list[int]]" not in str(info.value)


def test_path_field_error_shows_no_python_class_repr():
    with pytest.raises(ConfigError) as info:
        validate({"data": {"path": 5}})
    assert "data.path" in str(info.value)
    assert "<class" not in str(info.value)


# ---------------------------------------------------------------- YAML safety

PAYLOADS = [
    '!!python/object/apply:os.system ["touch {marker}"]',
    '!!python/object/apply:subprocess.call [["touch", "{marker}"]]',
    '!!python/object/new:os.system ["touch {marker}"]',
]


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("where", ["top", "section", "leaf"])
def test_yaml_with_python_tags_is_refused_without_running_it(tmp_path, payload, where):
    marker = tmp_path / "pwned"
    value = payload.format(marker=marker)
    text = {
        "top": value,
        "section": f"data: {value}\n",
        "leaf": f"seed: 1\ntrain:\n  steps: {value}\n",
    }[where]
    path = tmp_path / "evil.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="evil.yaml"):
        load_config(path)
    with pytest.raises(ConfigError):
        load_config(str(path))
    assert not marker.exists()


def test_override_with_a_python_tag_is_a_plain_string_not_code(tmp_path):
    marker = tmp_path / "pwned"
    override = f'data.name=!!python/object/apply:os.system ["touch {marker}"]'
    with pytest.raises(ConfigError, match="data.name"):
        load_config("pertask", [override])
    assert not marker.exists()
