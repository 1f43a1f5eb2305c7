"""The configuration reference (docs/configuration.md) generated from the config models, so the
documentation cannot drift from the code: `architect config reference > docs/configuration.md`."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from architect.config import Config

__all__ = ["reference_markdown"]

_INTRO = """# Configuration reference

Architect reads one YAML file (`architect serve --config FILE`, or `ARCHITECT_CONFIG`). Any string may
reference the environment as `${NAME}` or `${NAME:-default}`; put secrets there, never in the file.
`ARCHITECT_ADMIN_KEY` and `ARCHITECT_DATABASE_URL` override `auth.admin_key` and `database_url`.
Validate a file with `architect config check FILE`: a wrong field is reported with its path
(`models[2].deployments[0].price`) and what was expected, and the server does not start.
Unknown fields are errors (a typo is never silently ignored).

This page is generated from the code (`architect config reference`); a test keeps it current.
"""


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return " \\| ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args if a is not type(None)) + (
            " (optional)" if type(None) in args else "")
    if origin in (list, tuple, set):
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"map of {_type_name(args[0])} to {_type_name(args[1])}" if args else "map"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return f"`{tp.__name__}`"
    return getattr(tp, "__name__", str(tp))


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
        if isinstance(value, BaseModel):
            return "(see below)"
        return f"`{value!r}`" if value not in ([], {}) else "empty"
    if field.default is PydanticUndefined:
        return "**required**"
    return f"`{field.default!r}`"


def _models(root: type[BaseModel]) -> list[type[BaseModel]]:
    seen: list[type[BaseModel]] = []

    def walk(m: type[BaseModel]) -> None:
        if m in seen:
            return
        seen.append(m)
        for f in m.model_fields.values():
            for tp in (f.annotation, *typing.get_args(f.annotation)):
                for t in (tp, *typing.get_args(tp)):
                    if isinstance(t, type) and issubclass(t, BaseModel):
                        walk(t)

    walk(root)
    return seen


def reference_markdown() -> str:
    out = [_INTRO]
    for model in _models(Config):
        out.append(f"\n## `{model.__name__}`\n")
        doc = (model.__doc__ or "").strip()
        if doc and not doc.startswith("!!!"):
            out.append(doc + "\n")
        out.append("| field | type | default | meaning |\n|---|---|---|---|")
        for name, field in model.model_fields.items():
            desc = (field.description or "").replace("|", "\\|")
            out.append(f"| `{name}` | {_type_name(field.annotation)} | {_default(field)} | {desc} |")
    return "\n".join(out) + "\n"
