"""SEARCH/REPLACE edits applied strictly, and paths confined to a worktree.

An edit names a file, a SEARCH text and a REPLACE text. It applies only when the SEARCH text occurs
exactly once in the file, byte for byte (whitespace and line breaks included); then that one
occurrence is replaced. An empty SEARCH creates a new file, and only when the file does not exist.
Several edits of one call apply all or none: they are checked one after the other on the text as it
becomes, and the file is written once, at the end, only when every one applied. Anything else is an
`EditError` whose message says what was wrong and how to fix it; the file is left as it was.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["EditError", "PathError", "SearchReplace", "apply_blocks", "apply_edits", "confine"]

SNIPPET = 200


class EditError(ValueError):
    """An edit that does not apply; the message is what the agent is told."""


class PathError(EditError):
    """A path outside the worktree (absolute elsewhere, `..`, a symlink out) or inside `.git`."""


@dataclass(frozen=True, slots=True)
class SearchReplace:
    search: str
    replace: str


def confine(root: Path, path: str) -> Path:
    """`path` (relative to `root`, or absolute inside it) resolved, refused when it leads outside
    `root` (through `..` or a symlink) or into the repository's `.git`."""
    if not path or "\x00" in path:
        raise PathError(f"invalid path {path!r}")
    base = root.resolve()
    target = (base / path).resolve()
    if target != base and not target.is_relative_to(base):
        raise PathError(f"{path}: outside the worktree (paths are relative to the worktree's root)")
    rel = target.relative_to(base)
    if rel.parts and rel.parts[0] == ".git":
        raise PathError(f"{path}: the .git directory is off limits")
    return target


def _snippet(text: str) -> str:
    return text if len(text) <= SNIPPET else text[:SNIPPET] + "…"


def apply_blocks(name: str, original: str | None, blocks: Sequence[SearchReplace]) -> str:
    """The new text of file `name` (None: it does not exist) after every block, or `EditError`
    naming the first block that does not apply (nothing is applied then)."""
    if not blocks:
        raise EditError(f"{name}: no edit given")
    text = original
    for i, block in enumerate(blocks, 1):
        which = f"{name}: edit {i} of {len(blocks)}" if len(blocks) > 1 else name
        if block.search == "":
            if text is not None:
                raise EditError(
                    f"{which}: the file exists; an empty SEARCH only creates a new file. "
                    "Give the exact text to replace."
                )
            text = block.replace
            continue
        if text is None:
            raise EditError(f"{which}: the file does not exist (an empty SEARCH creates it)")
        if block.search == block.replace:
            raise EditError(f"{which}: SEARCH and REPLACE are the same; nothing would change")
        count = text.count(block.search)
        if count == 0:
            hint = ""
            if _squash(block.search) and _squash(block.search) in _squash(text):
                hint = (
                    " It matches only if whitespace is ignored: copy the lines exactly, indentation included."
                )
            raise EditError(
                f"{which}: the SEARCH text was not found. SEARCH must be an exact copy of the "
                f"file's current text.{hint} SEARCH was: {_snippet(block.search)!r}"
            )
        if count > 1:
            raise EditError(
                f"{which}: the SEARCH text occurs {count} times; include more surrounding lines so that "
                f"it matches exactly once. SEARCH was: {_snippet(block.search)!r}"
            )
        text = text.replace(block.search, block.replace, 1)
    assert text is not None
    return text


def _squash(text: str) -> str:
    return " ".join(text.split())


def apply_edits(root: Path, path: str, blocks: Sequence[SearchReplace]) -> Path:
    """Apply `blocks` to the file at `path` in the worktree `root`, all or nothing; the file written
    (through a temporary file renamed over it, keeping its mode)."""
    target = confine(root, path)
    if target.is_dir():
        raise EditError(f"{path}: is a directory")
    try:
        original = target.read_bytes().decode("utf-8") if target.exists() else None
    except UnicodeDecodeError:
        raise EditError(f"{path}: not a UTF-8 text file") from None
    new = apply_blocks(path, original, blocks)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.architect-edit")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(new)
    if original is not None:
        os.chmod(tmp, target.stat().st_mode & 0o7777)
    os.replace(tmp, target)
    return target
