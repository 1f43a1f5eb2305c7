"""The seam of the optional extras (`architect-llm[semantic]`): a module that is not installed is
reported as None, while any other import error inside an installed module still surfaces."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["optional_module"]


def optional_module(name: str) -> ModuleType | None:
    """The module, or None if it (or the package it is in) is not installed."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (name == exc.name or name.startswith(exc.name + ".")):
            raise
        return None
