"""`architect db upgrade|current`."""

from __future__ import annotations

import typer

from architect.cli.common import DatabaseOpt, console
from architect.config import default_database_url
from architect.errors import StoreError
from architect.store import migrate
from architect.store.engine import check_connection, make_engine, redact_url, sqlite_file

__all__ = ["app"]

app = typer.Typer(help="Database schema management.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(database_url: DatabaseOpt = None) -> None:
    """Migrate the database to the newest schema (a SQLite file and its folder are created)."""
    url = database_url or default_database_url()
    engine = make_engine(url)
    try:
        check_connection(engine, url)
        before = migrate.current_revision(engine)
        migrate.upgrade(engine)
        after = migrate.current_revision(engine)
    finally:
        engine.dispose()
    console.print(f"[green]ok[/green] {redact_url(url)}: {before or 'empty'} → {after}", highlight=False)


@app.command("current")
def current(database_url: DatabaseOpt = None) -> None:
    """Show the database's schema revision and the newest one. Creates nothing: a SQLite file that does
    not exist is an error."""
    url = database_url or default_database_url()
    file = sqlite_file(url)
    if file is not None and not file.exists():
        again = f" --database-url {redact_url(url)}" if database_url else ""
        raise StoreError(
            f"the database {redact_url(url)} does not exist; create it with `architect db upgrade{again}`"
        )
    engine = make_engine(url)
    try:
        check_connection(engine, url)
        rev = migrate.current_revision(engine)
    finally:
        engine.dispose()
    console.print(
        f"{redact_url(url)}: at {rev or 'none'}; newest is {migrate.head_revision()}", highlight=False
    )
