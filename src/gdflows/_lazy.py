"""Packages whose public names load on first use, so that importing them (and reading their registries) costs
no JAX: the command line's ``--help`` and its choice lists read them without loading the numerics."""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Mapping

from gdflows.errors import GDFlowsError


def lazy_package(name: str, api: Mapping[str, str], subpackages: tuple[str, ...] = ()) -> None:
    """Make the package ``name`` load each public name ``api[attr]`` ("module" or "module:object") on first use,
    and each of its ``subpackages`` (``gdflows.flows``) when first named.

    A function that shares its name with its module (``gdflows.flows.principal``) stays the function when the
    module is imported later (Python would otherwise bind the module over it).
    """
    package = sys.modules[name]

    def __getattr__(attr: str):
        if attr in subpackages:
            return importlib.import_module(f"{name}.{attr}")
        if attr not in api:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")
        module, _, obj = api[attr].partition(":")
        value = getattr(importlib.import_module(module), obj or attr)
        setattr(package, attr, value)
        return value

    def __dir__():
        return sorted(set(vars(package)) | set(api) | set(subpackages))

    class _Lazy(types.ModuleType):
        def __setattr__(self, attr, value):
            if attr in api and isinstance(value, types.ModuleType):
                return  # a submodule of the same name must not hide the function
            super().__setattr__(attr, value)

    package.__getattr__ = __getattr__
    package.__dir__ = __dir__
    package.__class__ = _Lazy


def load(spec: str):
    """The object named by ``"package.module:name"``, importing its module now."""
    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


def entry(registry, name: str, kind: str):
    """``registry[name]``, or a :class:`~gdflows.errors.GDFlowsError` listing the registered ``kind`` names."""
    if name not in registry:
        raise GDFlowsError(f"unknown {kind} {name!r}; choose one of {', '.join(registry)}")
    return registry[name]
