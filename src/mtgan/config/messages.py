"""Validation errors as a user reads them: the field, what is allowed, the nearest valid name."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import (
    BaseModel,
    ValidationError,
)


def format_validation_error(error: ValidationError) -> str:
    """One line per wrong field: the dotted field, what is wrong, what is allowed."""
    by_field: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for err in error.errors():
        parts = [str(p) for p in err["loc"]]
        # An unknown key's location is the user's own path: never strip any part of it.
        if err["type"] != "extra_forbidden":
            parts = [p for p in parts if not _is_union_branch(p)]
        by_field.setdefault(tuple(parts), []).append(err)
    lines = []
    for loc, errs in by_field.items():
        field = ".".join(loc) or "config"
        if errs[0]["type"] == "extra_forbidden":
            lines.append(_unknown_key_message(list(loc)))
        elif len(errs) > 1:  # a union (e.g. a sharing spec): say every form it accepts
            forms = "; or ".join(dict.fromkeys(_expected(e) for e in errs))
            lines.append(f"{field}: {_short(errs[0]['input'])} is not allowed; expected {forms}")
        elif errs[0]["type"] == "value_error":
            text = errs[0]["msg"].removeprefix("Value error, ")
            lines.append(f"{field}: {text}" if loc else text)
        elif errs[0]["type"] == "missing":
            lines.append(f"{field}: required, and not given")
        else:
            got = _short(errs[0]["input"])
            lines.append(f"{field}: {got} is not allowed; expected {_expected(errs[0])}")
    return "invalid config:\n  " + "\n  ".join(lines)


_EXPECTED = {
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "string_type": "a string",
    "model_type": "a mapping",
    "path_type": "a file or folder path",
}


def _expected(err: dict[str, Any]) -> str:
    """What a failed check wanted, in words: 'one of ...', 'an integer', 'a number >= 1'."""
    kind, ctx = err["type"], err.get("ctx", {})
    if kind == "literal_error":
        return f"one of {ctx.get('expected', '')}"
    bounds = {
        "greater_than_equal": ">= {ge}",
        "greater_than": "> {gt}",
        "less_than_equal": "<= {le}",
        "less_than": "< {lt}",
    }
    if kind == "too_short":
        return f"a list with at least {ctx.get('min_length')} item(s)"
    if kind == "too_long":
        return f"a list with at most {ctx.get('max_length')} item(s)"
    if kind in bounds:
        return "a value " + bounds[kind].format(**ctx)
    return _EXPECTED.get(kind, err["msg"][0].lower() + err["msg"][1:])


def _is_union_branch(part: str) -> bool:
    # pydantic names the union member it tried ("int", "list[list[int]]", "literal[...]",
    # "constrained-int") in the error location; config keys never look like that.
    return part in ("int", "str", "float", "bool", "constrained-int") or "[" in part


def _unknown_key_message(loc: list[str]) -> str:
    from mtgan.config.experiment import ExperimentConfig  # whose errors this module words

    model: type[BaseModel] = ExperimentConfig
    for part in loc[:-1]:
        annotation = model.model_fields[part].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
    valid = list(model.model_fields)
    key = loc[-1]
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    where = ".".join(loc)
    hint = f"did you mean {'.'.join([*loc[:-1], close[0]])!r}? " if close else ""
    return f"{where}: unknown key; {hint}valid keys here: {', '.join(valid)}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."
