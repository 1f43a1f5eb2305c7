"""Schema migrations (Alembic, numbered revisions in `migrations/versions`).

Checking whether a database is current needs no Alembic: its revision is one row of
`alembic_version`, and the newest revision is read from the revision files' `revision` /
`down_revision` lines. Alembic (~10 MiB once imported) is imported only to upgrade, so a server
started on a current database never loads it."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

from architect.errors import MigrationRequired, StoreError

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

__all__ = ["check_current", "current_revision", "head_revision", "heads", "upgrade", "upgrade_if_behind"]

_SCRIPTS = Path(__file__).with_name("migrations")
_REVISION = re.compile(r"^revision\s*=\s*['\"]([^'\"]+)['\"]", re.M)
_DOWN_REVISION = re.compile(r"^down_revision\s*=\s*(.+)$", re.M)
_QUOTED = re.compile(r"['\"]([^'\"]+)['\"]")


def _alembic_config() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    return cfg


@functools.cache
def heads() -> tuple[str, ...]:
    """The revisions no other revision builds on, from the revision files (no Alembic import)."""
    revisions: set[str] = set()
    below: set[str] = set()
    for path in (_SCRIPTS / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        rev, down = _REVISION.search(source), _DOWN_REVISION.search(source)
        if rev is None or down is None:
            raise StoreError(f"migration {path.name} has no `revision` / `down_revision` line")
        revisions.add(rev.group(1))
        below.update(_QUOTED.findall(down.group(1)))  # None, "0007" or ("0006", "0007")
    return tuple(sorted(revisions - below))


def head_revision() -> str:
    (head,) = heads()
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's revision (None: not migrated yet)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        rows = list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    if len(rows) > 1:
        raise StoreError(f"the database is at several revisions at once ({', '.join(rows)})")
    return rows[0] if rows else None


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to `revision` (default: the newest)."""
    from alembic import command

    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def upgrade_if_behind(engine: Engine) -> bool:
    """Upgrade the database unless it is at the newest revision already; whether it upgraded."""
    if current_revision(engine) == head_revision():
        return False
    upgrade(engine)
    return True


def check_current(engine: Engine) -> None:
    """Raise MigrationRequired unless the database is at the newest revision."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise MigrationRequired(
            f"the database is at revision {current or 'none (empty)'} but this version of Architect needs "
            f"{head}; run `architect db upgrade` first"
        )
