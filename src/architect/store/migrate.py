"""Schema migrations (Alembic, numbered revisions in `migrations/versions`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from architect.errors import MigrationRequired

__all__ = ["check_current", "current_revision", "head_revision", "heads", "upgrade"]

_SCRIPTS = str(Path(__file__).with_name("migrations"))


def _alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", _SCRIPTS)
    return cfg


def heads() -> list[str]:
    return list(ScriptDirectory.from_config(_alembic_config()).get_heads())


def head_revision() -> str:
    (head,) = heads()
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to `revision` (default: the newest)."""
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def check_current(engine: Engine) -> None:
    """Raise MigrationRequired unless the database is at the newest revision."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise MigrationRequired(
            f"the database is at revision {current or 'none (empty)'} but this version of Architect needs "
            f"{head}; run `architect db upgrade` first"
        )
