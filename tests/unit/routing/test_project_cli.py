"""`architect project settings show|set|clear` on a local store: values checked, changes audited."""

from __future__ import annotations

import orjson
from typer.testing import CliRunner

from architect.cli.main import app
from architect.store import open_store


def test_set_show_clear(tmp_path: object) -> None:
    db = f"sqlite:///{tmp_path}/a.db"
    run = CliRunner()
    res = run.invoke(app, ["project", "settings", "show", "shop", "--database-url", db, "--json"])
    assert res.exit_code == 0, res.output
    assert orjson.loads(res.output)["settings"] == {}
    res = run.invoke(app, ["project", "settings", "set", "shop", "--quality-target", "0.9", "--privacy",
                           "local-only", "--database-url", db, "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert orjson.loads(res.output)["settings"] == {"quality_target": 0.9, "privacy": "local-only"}
    res = run.invoke(app, ["project", "settings", "show", "shop", "--database-url", db])
    assert "quality_target=0.9" in res.output and "privacy=local-only" in res.output
    for bad in (["--quality-target", "1.2"], ["--cost-weight", "-1"], ["--privacy", "cloud"], []):
        res = run.invoke(app, ["project", "settings", "set", "shop", *bad, "--database-url", db])
        assert res.exit_code != 0
    res = run.invoke(app, ["project", "settings", "clear", "shop", "--database-url", db])
    assert res.exit_code == 0 and "cleared" in res.output
    store = open_store(db)
    assert store.routing.get_settings("shop") is None
    actions = [a["action"] for a in store.audit.list_audit(since=0, limit=10)]
    assert "project.settings" in actions and "project.settings.delete" in actions
    store.close()
