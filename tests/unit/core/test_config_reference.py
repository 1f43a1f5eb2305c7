from __future__ import annotations

from pathlib import Path

from architect.cli.config_reference import missing_descriptions, reference_markdown

DOC = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"


def test_every_config_field_is_documented() -> None:
    assert missing_descriptions() == []


def test_docs_configuration_md_is_current() -> None:
    assert DOC.read_text() == reference_markdown(), (
        "docs/configuration.md is stale: run `architect config reference > docs/configuration.md`"
    )
