"""SEARCH/REPLACE edits apply strictly (exactly one match, all or nothing) and paths stay inside."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from architect.orchestrator.agents.edits import EditError, PathError, SearchReplace, apply_edits, confine

SOURCE = "def f():\n    return 1\n\n\ndef g():\n    return 1\n"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "wt"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "m.py").write_text(SOURCE)
    return root


def test_a_unique_search_is_replaced_once(tree: Path) -> None:
    apply_edits(tree, "pkg/m.py", [SearchReplace("def g():\n    return 1", "def g():\n    return 2")])
    assert (tree / "pkg" / "m.py").read_text() == SOURCE.replace(
        "def g():\n    return 1", "def g():\n    return 2"
    )


def test_an_ambiguous_search_is_refused_and_says_how_often_it_occurs(tree: Path) -> None:
    with pytest.raises(EditError, match="occurs 2 times; include more surrounding lines"):
        apply_edits(tree, "pkg/m.py", [SearchReplace("    return 1\n", "    return 3\n")])
    assert (tree / "pkg" / "m.py").read_text() == SOURCE


def test_a_missing_search_is_refused_with_a_whitespace_hint(tree: Path) -> None:
    with pytest.raises(EditError, match="not found") as err:
        apply_edits(tree, "pkg/m.py", [SearchReplace("def f():\n  return 1", "def f():\n  return 5")])
    assert "whitespace is ignored" in str(err.value)
    with pytest.raises(EditError, match="not found") as err:
        apply_edits(tree, "pkg/m.py", [SearchReplace("def h():", "def k():")])
    assert "whitespace" not in str(err.value) and "'def h():'" in str(err.value)
    assert (tree / "pkg" / "m.py").read_text() == SOURCE


def test_edits_of_one_call_apply_all_or_nothing(tree: Path) -> None:
    good = SearchReplace("def f():", "def f2():")
    with pytest.raises(EditError, match="edit 2 of 2"):
        apply_edits(tree, "pkg/m.py", [good, SearchReplace("nowhere", "x")])
    assert (tree / "pkg" / "m.py").read_text() == SOURCE
    # a later edit sees the text as the earlier one left it
    apply_edits(tree, "pkg/m.py", [good, SearchReplace("def f2():\n    return 1", "def f2():\n    return 7")])
    assert (tree / "pkg" / "m.py").read_text().startswith("def f2():\n    return 7\n")


def test_an_empty_search_creates_a_new_file_only(tree: Path) -> None:
    apply_edits(tree, "pkg/sub/new.py", [SearchReplace("", "X = 1\n")])
    assert (tree / "pkg" / "sub" / "new.py").read_text() == "X = 1\n"
    with pytest.raises(EditError, match="the file exists; an empty SEARCH only creates a new file"):
        apply_edits(tree, "pkg/m.py", [SearchReplace("", "overwritten")])
    assert (tree / "pkg" / "m.py").read_text() == SOURCE
    with pytest.raises(EditError, match="does not exist"):
        apply_edits(tree, "pkg/absent.py", [SearchReplace("x", "y")])


def test_line_endings_and_mode_are_kept(tree: Path) -> None:
    script = tree / "run.sh"
    script.write_bytes(b"echo a\r\necho b\r\n")
    script.chmod(0o755)
    apply_edits(tree, "run.sh", [SearchReplace("echo b\r\n", "echo c\r\n")])
    assert script.read_bytes() == b"echo a\r\necho c\r\n"
    assert os.stat(script).st_mode & 0o777 == 0o755
    assert sorted(p.name for p in tree.iterdir()) == ["pkg", "run.sh"]  # no temporary file left


def test_identical_search_and_replace_is_an_error(tree: Path) -> None:
    with pytest.raises(EditError, match="the same"):
        apply_edits(tree, "pkg/m.py", [SearchReplace("def f():", "def f():")])


def test_paths_outside_the_worktree_or_into_git_are_refused(tree: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep\n")
    (tree / "link").symlink_to(tmp_path)
    (tree / ".git").mkdir()
    for bad in (
        "../outside.txt",
        str(outside),
        "link/outside.txt",
        ".git/config",
        "pkg/../../outside.txt",
        "",
    ):
        with pytest.raises(PathError):
            confine(tree, bad)
        with pytest.raises(EditError):
            apply_edits(tree, bad, [SearchReplace("keep", "gone")])
    assert outside.read_text() == "keep\n"
    assert confine(tree, str(tree / "pkg" / "m.py")) == (tree / "pkg" / "m.py").resolve()
    assert confine(tree, "pkg/./../pkg/m.py") == (tree / "pkg" / "m.py").resolve()
