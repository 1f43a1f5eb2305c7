"""The shared parameter types of /api/v1, the spec's documented errors, and the CSV cell rule."""

from __future__ import annotations

import re
import types

import pytest
from pydantic import ValidationError

from architect.access.auth import Authenticator
from architect.api import create_api
from architect.api.metrics import csv_safe
from architect.api.params import IDENTIFIER_PATTERN, NAME_PATTERN, Body, Name, Timestamp
from architect.identifiers import first_forbidden


def test_the_identifier_pattern_in_the_spec_is_exactly_check_identifier() -> None:
    pattern = re.compile(IDENTIFIER_PATTERN)
    for code in [*range(0x3000), *range(0xE000, 0x10000, 7), 0x1F600, 0x10FFFF]:
        ch = chr(code)
        assert (pattern.fullmatch(f"a{ch}b") is None) == (first_forbidden(f"a{ch}b") is not None), hex(code)


class _Sample(Body):
    name: Name
    count: int | None = None
    flag: bool = False
    at: Timestamp | None = None


def test_bodies_are_strict_but_take_integral_floats() -> None:
    assert _Sample.model_validate({"name": "x", "count": 3.0}).count == 3
    for bad in (
        {"name": "x", "count": True},
        {"name": "x", "count": "3"},
        {"name": "x", "count": 3.5},
        {"name": "x", "flag": 0},
        {"name": "x", "flag": "true"},
        {"name": "x", "at": float("nan")},
        {"name": "x", "at": -1.0},
        {"name": "x", "unknown": 1},
        {"name": "   "},
        {"name": "a\u202eb"},
    ):
        with pytest.raises(ValidationError):
            _Sample.model_validate(bad)
    assert re.fullmatch(NAME_PATTERN, "  x ") and not re.fullmatch(NAME_PATTERN, " \u3000 ")


def test_every_operation_documents_its_errors_with_the_error_body() -> None:
    spec = create_api(types.SimpleNamespace(store=None, auth=Authenticator("x"))).openapi()
    assert spec["components"]["schemas"]["ErrorResponse"]["required"] == ["error"]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            codes = set(op["responses"])
            expected = {"400", "401", "403", "503"}
            expected |= {"404"} if "{" in path else set()
            expected |= {"413"} if "requestBody" in op else set()
            assert expected <= codes, (method, path, sorted(codes))
            for code in codes - {"200", "201", "204"}:
                schema = op["responses"][code]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (method, path, code)
    assert spec["paths"]["/keys"]["post"]["x-admin-only"] is True
    assert "x-admin-only" not in spec["paths"]["/keys"]["get"]


def test_csv_cells_that_would_run_as_formulas_are_quoted_and_numbers_stay() -> None:
    row = {
        "a": "=1+1",
        "b": "+1",
        "c": "-1",
        "d": "@x",
        "e": "\tx",
        "f": "\rx",
        "g": "ok=1",
        "h": -1.5,
        "i": -3,
        "j": None,
        "k": True,
        "l": "",
    }
    assert csv_safe(row) == {
        **row,
        "a": "'=1+1",
        "b": "'+1",
        "c": "'-1",
        "d": "'@x",
        "e": "'\tx",
        "f": "'\rx",
    }
