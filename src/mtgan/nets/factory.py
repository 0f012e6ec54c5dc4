"""`model.arch`: the built-in layer plans (`mlp`, `dcgan`), a backbone shipped as a factory
(`resnet`), or a user's factory named `package.module:callable` (protocol.py says what it
returns). A factory is recorded in config.yaml by its import path, so every command that rebuilds
a run's networks (--resume, sample, eval, report, bench) imports it again."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from torch import nn

from mtgan.errors import ConfigError
from mtgan.nets.protocol import Factory, NetSpec, check_family, check_shapes

PLANS = ("mlp", "dcgan")  # built by builder.py from layer plans
BACKBONES = {"resnet": "mtgan.nets.resnet:build"}  # factories written on the protocol


def is_factory(arch: str) -> bool:
    return arch not in PLANS


def check_arch(arch: Any) -> str:
    """A valid `model.arch` value: a built-in name or `module:callable`; a callable (the Python
    API) becomes its import path, checked to import back to the same object."""
    if callable(arch):
        path = f"{getattr(arch, '__module__', '?')}:{getattr(arch, '__qualname__', '?')}"
        try:
            found = _imported(path)
        except Exception:  # a module that does not import back: the same answer
            found = None
        if "<" in path or path.startswith("__main__:") or found is not arch:
            raise ValueError(
                f"the factory {path} cannot be imported by that path, so a run could not "
                "rebuild its networks (resume, sample, eval); define it at the top level of an "
                "importable module and pass it, or its 'package.module:name'"
            )
        return path
    if not isinstance(arch, str):
        raise ValueError(f"expected a name or 'package.module:factory', got {arch!r}")
    if arch in PLANS or arch in BACKBONES:
        return arch
    module, sep, name = arch.partition(":")
    if not sep or not module or not name:
        known = ", ".join([*PLANS, *BACKBONES])
        raise ValueError(f"{arch!r} is not one of {known}, nor a 'package.module:factory' path")
    return arch


def resolve(arch: str) -> Factory:
    """The factory `model.arch` names; a ConfigError naming the path when it does not import."""
    path = BACKBONES.get(arch, arch)
    try:
        factory = _imported(path)
    except Exception as e:  # any import-time failure of a user's module
        msg = f"model.arch={arch}: cannot import {path}: {type(e).__name__}: {e}"
        raise ConfigError(msg) from e
    if not callable(factory):
        raise ConfigError(f"model.arch={arch}: {path} is a {type(factory).__name__}, not callable")
    return factory


def _imported(path: str) -> Callable[..., Any]:
    module, _, name = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def build_networks(arch: str, spec: NetSpec) -> tuple[nn.Module, nn.Module]:
    """Call the factory and check what it returns against the protocol: a ConfigError that says
    what is missing, never a traceback from deep inside a training step."""
    factory = resolve(arch)
    try:
        built = factory(spec)
    except (ValueError, TypeError, KeyError) as e:  # a factory refusing its spec or options
        raise ConfigError(f"model.arch={arch}: {type(e).__name__}: {e}") from e
    if not (isinstance(built, tuple) and len(built) == 2):
        raise ConfigError(
            f"model.arch={arch}: the factory returned {type(built).__name__}; it must return "
            "(generators, discriminators) (see mtgan.nets.protocol)"
        )
    generators, discriminators = built
    problems = check_family(generators, "generators", spec.num_generators, arch)
    problems += check_family(discriminators, "discriminators", spec.num_discriminators, arch)
    if not problems:
        problems = check_shapes(generators, discriminators, spec, arch)
    if problems:
        raise ConfigError(
            f"model.arch={arch}: the networks do not follow mtgan.nets.protocol: "
            + "; ".join(problems)
        )
    return generators, discriminators
