"""Importing the optional parts: domains plug in by module name, and a missing module is skipped
while any other import error inside an existing module still surfaces."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["optional_module"]


def optional_module(name: str) -> ModuleType | None:
    """The module, or None if it does not exist."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return None
