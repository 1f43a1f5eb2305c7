"""The real CLI on a database it cannot use (unreachable, unsupported, missing): one `error:` line that
names the URL without its password, a nonzero exit, no traceback, and nothing created by a status command."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.acceptance.conftest import architect

# Port 1 on the loopback interface: nothing listens there, so the connection is refused at once.
UNREACHABLE = "postgresql://nouser:s3cret@127.0.0.1:1/db"


def _one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "s3cret" not in stderr
    return lines[0]


@pytest.mark.parametrize(
    "command",
    [("db", "upgrade"), ("db", "current"), ("stats",), ("plan", "list"), ("keys", "list")],
    ids=lambda c: " ".join(c),
)
def test_an_unreachable_postgres_is_one_error_line(command: tuple[str, ...], home: dict[str, str]) -> None:
    res = architect(*command, "--database-url", UNREACHABLE, env=home)
    assert res.returncode != 0
    line = _one_error_line(res.stderr)
    assert (
        line
        == "error: cannot connect to the database postgresql://nouser:***@127.0.0.1:1/db: connection refused"
    )


def test_serve_on_an_unreachable_postgres_is_one_error_line(home: dict[str, str]) -> None:
    res = architect("serve", "--example", "--port", "0", "--database-url", UNREACHABLE, env=home)
    assert res.returncode != 0
    assert "cannot connect to the database postgresql://nouser:***@127.0.0.1:1/db" in _one_error_line(
        res.stderr
    )


@pytest.mark.parametrize(
    "command", [("db", "current"), ("db", "upgrade"), ("stats",)], ids=lambda c: " ".join(c)
)
def test_an_unsupported_scheme_is_named(command: tuple[str, ...], home: dict[str, str]) -> None:
    res = architect(*command, "--database-url", "mysql://x:s3cret@host/y", env=home)
    assert res.returncode != 0
    assert (
        _one_error_line(res.stderr)
        == "error: unsupported database URL scheme 'mysql' (use sqlite or postgresql)"
    )


def test_a_sqlite_file_that_cannot_be_made_is_one_error_line(tmp_path: Path, home: dict[str, str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    res = architect("stats", "--database-url", f"sqlite:///{blocker}/x.db", env=home)
    assert res.returncode != 0
    line = _one_error_line(res.stderr)
    assert f"sqlite:///{blocker}/x.db" in line


def test_db_current_on_a_missing_sqlite_file_creates_nothing(tmp_path: Path, home: dict[str, str]) -> None:
    missing = tmp_path / "no" / "such" / "x.db"
    res = architect("db", "current", "--database-url", f"sqlite:///{missing}", env=home)
    assert res.returncode != 0
    line = _one_error_line(res.stderr)
    assert "does not exist" in line and "architect db upgrade" in line
    assert not (tmp_path / "no").exists()


def test_db_current_in_a_fresh_home_creates_nothing(home: dict[str, str]) -> None:
    res = architect("db", "current", env=home)
    assert res.returncode != 0
    assert "does not exist" in _one_error_line(res.stderr)
    assert not Path(home["ARCHITECT_HOME"]).exists()
    architect("db", "upgrade", env=home, check=True)
    assert "at " in architect("db", "current", env=home, check=True).stdout
