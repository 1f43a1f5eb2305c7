"""Parameter types shared by every router of /api/v1. Each value is checked at the edge and the check is
part of the OpenAPI spec (bounds, patterns, enums), so clients, the docs and fuzzers see the same rules
the server applies, and nothing a client sends can make a query fail in the store.

- Integers fit the column that stores them: `RowId` and `Int32` for `Integer` columns (32-bit on
  PostgreSQL), `Offset` for 64-bit values; tighter domain bounds are added where they are natural.
- Numbers are finite: `Timestamp` (UNIX seconds between 1970 and 9999), `Seconds`, `Usd`.
- Strings that name things hold no control characters (`architect.identifiers`) and fit their column:
  `Identifier`, `Name`, `Title`, `FeatureRef`, `TaskKey`, `RequestId`, `KeyId`, `Tags`, `Names`.
- `Body` is the base of request bodies: unknown fields are refused and no value is coerced from another
  JSON type (`"all": 0` is not a boolean, `"rpm": true` or `"rpm": "5"` is not a number).

Validation failures are 400 with the parameter's path as the error's `param` (`models[1]`, `tags.project`).
"""

from __future__ import annotations

import re
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from architect.identifiers import first_forbidden
from architect.store.schema import INT32_MAX, INT64_MAX

__all__ = [
    "IDENTIFIER_PATTERN",
    "INT32_MAX",
    "INT64_MAX",
    "MAX_TIMESTAMP",
    "NAME_PATTERN",
    "Body",
    "FeatureRef",
    "Filter",
    "Filters",
    "Identifier",
    "Int32",
    "KeyId",
    "LedgerFilters",
    "Name",
    "Names",
    "Offset",
    "RequestId",
    "RowId",
    "Seconds",
    "Tags",
    "TaskKey",
    "Timestamp",
    "Title",
    "Usd",
    "omitted",
]

# What `architect.identifiers.check_identifier` refuses, as a JSON-schema pattern (ECMA-262 and Python
# read it alike); a unit test checks that the two agree on every character.
_FORBIDDEN_CLASS = r"\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
IDENTIFIER_PATTERN = rf"^[^{_FORBIDDEN_CLASS}]*$"
# An identifier with at least one character that is not white space.
NAME_PATTERN = rf"^[^{_FORBIDDEN_CLASS}]*[^{_FORBIDDEN_CLASS}\s][^{_FORBIDDEN_CLASS}]*$"
_NAME = re.compile(NAME_PATTERN)

MAX_TIMESTAMP = 253_402_300_799.0  # 9999-12-31T23:59:59Z
_CENTURY_S = 100 * 366 * 86400.0


def _no_control(value: str) -> str:
    at = first_forbidden(value)
    if at is not None:
        raise PydanticCustomError(
            "identifier",
            "must not contain control characters (found U+{code} at position {at})",
            {"code": f"{ord(value[at]):04X}", "at": at},
        )
    return value


def _not_blank(value: str) -> str:
    if _NAME.fullmatch(value) is None:
        raise PydanticCustomError("blank", "must contain a character other than white space")
    return value


_ID_SCHEMA: dict[str, Any] = {"pattern": IDENTIFIER_PATTERN}

# A string that names something: 1..200 characters (the usual column), no control characters. Narrow it
# with a further `Field`, e.g. `Annotated[Identifier, Field(max_length=64)]`.
Identifier = Annotated[
    str, Field(min_length=1, max_length=200, json_schema_extra=_ID_SCHEMA), AfterValidator(_no_control)
]
# A display name: an identifier that is not only white space.
Name = Annotated[
    str,
    Field(min_length=1, max_length=200, json_schema_extra={"pattern": NAME_PATTERN}),
    AfterValidator(_no_control),
    AfterValidator(_not_blank),
]
# A one-line title (features, tasks, items): no control characters, at most a title column's 500.
Title = Annotated[
    str, Field(min_length=1, max_length=500, json_schema_extra=_ID_SCHEMA), AfterValidator(_no_control)
]
# A feature's slug or its numeric id (how plans name features: lowercase letters, digits, hyphens).
FeatureRef = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[a-z0-9][a-z0-9-]*$")]
# A task's key as plans write it (T001, API-12, ...).
TaskKey = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9]*-?[0-9]+[A-Za-z0-9]*$")
]
# Request ids as the gateway issues or accepts them (x-request-id), and virtual key ids.
RequestId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
KeyId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]

_ID_STRING: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 200,
    "pattern": IDENTIFIER_PATTERN,
}
# Tag names and values are identifiers (the spec says so of the names with `propertyNames`).
Tags = Annotated[
    dict[Identifier, Identifier],
    Field(max_length=50),
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": 50,
            "propertyNames": _ID_STRING,
            "additionalProperties": _ID_STRING,
        }
    ),
]
Names = Annotated[list[Identifier], Field(max_length=200)]


# Integers: a row id of an `Integer` primary key, any value of an `Integer` column, a row offset.
RowId = Annotated[int, Field(ge=1, le=INT32_MAX)]
Int32 = Annotated[int, Field(ge=-INT32_MAX - 1, le=INT32_MAX)]
Offset = Annotated[int, Field(ge=0, le=INT64_MAX)]

# Finite numbers.
Timestamp = Annotated[float, Field(ge=0, le=MAX_TIMESTAMP, allow_inf_nan=False, description="UNIX seconds")]
Seconds = Annotated[float, Field(ge=0, le=_CENTURY_S, allow_inf_nan=False)]
Usd = Annotated[float, Field(gt=0, le=1e12, allow_inf_nan=False)]


# A filter value: like an identifier, but empty means "no filter" (forms send empty fields).
Filter = Annotated[str, Field(max_length=200, json_schema_extra=_ID_SCHEMA), AfterValidator(_no_control)]


class Filters(BaseModel):
    """Base of a set of column-equality filters given as query parameters; empty values are no filter."""

    def where(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if v}


class LedgerFilters(Filters):
    """Filters on the ledger's calls, shared by the calls list, metrics and exports."""

    model_group: Filter | None = None
    deployment: Filter | None = None
    provider: Filter | None = None
    status: Filter | None = None
    key_id: Filter | None = None
    project: Filter | None = None
    feature: Filter | None = None
    task: Filter | None = None
    cache: Filter | None = None
    endpoint: Filter | None = None


def _takes_int(annotation: object) -> bool:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, UnionType):
        return any(_takes_int(a) for a in get_args(annotation))
    return annotation is int


def omitted() -> Any:
    """The default of a PATCH field that may be left out but never set to null (its column has no
    null): absent from the request, it is absent from `model_dump(exclude_unset=True)`, and the spec
    shows no default."""
    return Field(default=None)


def _no_null_defaults(schema: dict[str, Any]) -> None:
    """Drop `"default": null` where null is not a valid value (the fields made with `omitted()`)."""
    for prop in schema.get("properties", {}).values():
        nullable = any(alt.get("type") == "null" for alt in prop.get("anyOf", ()))
        if "default" in prop and prop["default"] is None and not nullable:
            del prop["default"]


class Body(BaseModel):
    """Base of every JSON request body: unknown fields are refused and values are never coerced from
    another JSON type (strict mode: a boolean is not an integer, a number or a string is not a
    boolean). An integer field takes 2.0 as 2 (JSON Schema calls it an integer)."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_no_null_defaults)

    @model_validator(mode="before")
    @classmethod
    def _integral_floats(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        ints = [n for n, f in cls.model_fields.items() if _takes_int(f.annotation)]
        fix = [n for n in ints if isinstance(data.get(n), float) and data[n].is_integer()]
        return {**data, **{n: int(data[n]) for n in fix}} if fix else data
