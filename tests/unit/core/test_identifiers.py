from __future__ import annotations

import pytest

from architect.errors import InvalidRequest
from architect.identifiers import check_identifier, first_forbidden


@pytest.mark.parametrize(
    "bad", ["a\x00b", "\x1b[31m", "tab\there", "del\x7f", "c1\x85", "x\u2028y", "\u202egnp.exe"]
)
def test_control_characters_are_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        check_identifier(bad, "metadata.feature")
    assert exc.value.param == "metadata.feature"
    assert exc.value.status == 400
    assert "metadata.feature" in exc.value.message
    assert first_forbidden(bad) is not None


@pytest.mark.parametrize("ok", ["gpt-4o-mini", "checkout flow", "Überprüfung", "模型", "a/b:c@d", ""])
def test_ordinary_names_pass_unchanged(ok: str) -> None:
    assert check_identifier(ok, "model") == ok
    assert first_forbidden(ok) is None
