"""The store's one text escape: what PostgreSQL or the drivers cannot hold becomes U+FFFD, the rest is
left alone (the same object, so the common case costs a scan)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from architect.store.schema import all_metadata
from architect.store.text import REPLACEMENT, String, Text, TextPositions, storable


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("a\x00b", "a\ufffdb"),
        ("\x00\x00", "\ufffd\ufffd"),
        ("ünï\x00cöde", "ünï\ufffdcöde"),
        ("lone \ud800 high", "lone \ufffd high"),
        ("lone \udfff low", "lone \ufffd low"),
        ("模型\x00\udc80", "模型\ufffd\ufffd"),
    ],
)
def test_nul_and_lone_surrogates_become_the_replacement_character(raw: str, stored: str) -> None:
    assert storable(raw) == stored
    assert stored.encode("utf-8")  # what the drivers need: encodable, and no NUL
    assert "\x00" not in stored


@pytest.mark.parametrize(
    "ok", ["", "plain ascii", "tab\tnewline\n", "Überprüfung", "模型", "emoji 🎉", REPLACEMENT]
)
def test_storable_text_is_returned_as_is(ok: str) -> None:
    assert storable(ok) is ok


def test_text_positions_escape_only_the_given_positions_of_a_row() -> None:
    row = ["id\x00", 1.5, None, "x\x00y", "", 7, "fine"]
    TextPositions([0, 2, 3, 4, 6]).apply(row)
    assert row == ["id\ufffd", 1.5, None, "x\ufffdy", "", 7, "fine"]
    one = ["a\x00"]
    TextPositions([0]).apply(one)
    assert one == ["a\ufffd"]
    odd = [5, "z\ud800"]  # a value that is not text at a text position is left as it is
    TextPositions([0, 1]).apply(odd)
    assert odd == [5, "z\ufffd"]


def test_every_text_column_of_the_schema_escapes_its_values() -> None:
    plain = [
        f"{t.name}.{c.name}"
        for t in all_metadata().tables.values()
        for c in t.columns
        if isinstance(c.type, sa.String) and not isinstance(c.type, String | Text)
    ]
    assert plain == [], f"declare these with architect.store.text's String/Text: {plain}"
    assert isinstance(all_metadata().tables["calls"].c.error_message.type, Text)


def test_the_decorated_types_escape_bound_and_literal_values() -> None:
    from sqlalchemy.dialects import sqlite

    assert Text().process_bind_param("a\x00b", sqlite.dialect()) == "a\ufffdb"
    col = sa.column("name", String(200))
    literal = str(
        sa.select(col)
        .where(col == "a\x00b")
        .compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})
    )
    assert "a\ufffdb" in literal and "\x00" not in literal
