"""Features of a prompt's text for routers, as a sparse matrix (pure numpy).

`HashedFeatures` (needs no fitting, so the same in the gateway and in an evaluation):
- the text is cut first: a prompt longer than `MAX_CHARS` (1,500) characters keeps only its last 1,500
  (moved forward to the next whitespace), because the end carries what is asked: the question after a
  few-shot preamble, the latest turn of a conversation; length is measured on the whole text;
- lower-cased word unigrams and bigrams (a word: a run of letters/digits, or one other non-space
  character), hashed with CRC-32 into 2^18 columns, weighted log(1 + count), the row L2-normalised;
- shape features in their own columns: log length, log lines and conversation depth (blank-line
  separated turns) of the whole text; code present (a fence, or two of `def`/`return`/`{`/`;`-ended
  lines/`#include`...), share of digits, of maths symbols, of upper case (ASCII), question marks, of the
  cut text;
- with the `semantic` extra installed (`tokenlearn-static-model`, checked through `architect._optional`),
  optionally the 64-dim static embedding of the cut text.

`TfidfFeatures` is the classic comparison: a vocabulary of word unigrams (2+ characters, as
scikit-learn's default token pattern) fitted on the training prompts, smoothed IDF, L2-normalised rows,
on the whole text.
"""

from __future__ import annotations

import itertools
import math
import re
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from architect._optional import optional_module

__all__ = [
    "MAX_CHARS",
    "HashedFeatures",
    "Sparse",
    "TfidfFeatures",
    "cut",
    "embeddings_available",
    "has_code",
]

MAX_CHARS = 1500
_BITS = 18
_WORD = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")
_TFIDF_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_CODE = re.compile(
    r"^\s*(def |class |return\b|import |#include|public |private |function\b|for \(|if \(|\}|.*;\s*$)", re.M
)
_MATH = re.compile(r"[=+\-*/^<>∑∫√π±≤≥∞]")
_DIGIT = re.compile(r"\d")
_UPPER = re.compile(r"[A-Z]")
_SHAPE = 9  # shape columns after the hashed ones
REQUEST_COLS = (
    4  # then the request's shape beyond its text (the auto route): tools, JSON schema, images, turns
)
_EMBED_DIM = 64

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class Sparse:
    """A row-compressed sparse matrix: row i's columns are indices[indptr[i]:indptr[i+1]]."""

    indptr: NDArray[np.int64]
    indices: NDArray[np.int64]
    data: F64
    dim: int
    _rows: NDArray[np.int64] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rows = np.repeat(np.arange(len(self.indptr) - 1, dtype=np.int64), np.diff(self.indptr))
        object.__setattr__(self, "_rows", rows)

    @property
    def n(self) -> int:
        return len(self.indptr) - 1

    def dot(self, w: F64) -> F64:
        """X @ w."""
        return np.bincount(self._rows, weights=self.data * w[self.indices], minlength=self.n).astype(
            np.float64, copy=False
        )

    def tdot(self, r: F64) -> F64:
        """X.T @ r."""
        return np.bincount(self.indices, weights=self.data * r[self._rows], minlength=self.dim).astype(
            np.float64, copy=False
        )

    def take(self, rows: NDArray[np.intp]) -> Sparse:
        """The given rows, in that order."""
        starts, ends = self.indptr[rows], self.indptr[rows + 1]
        lengths = ends - starts
        indptr = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
        pos = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
        return Sparse(indptr, self.indices[pos], self.data[pos], self.dim)

    def row(self, i: int) -> tuple[NDArray[np.int64], F64]:
        a, b = self.indptr[i], self.indptr[i + 1]
        return self.indices[a:b], self.data[a:b]

    @staticmethod
    def from_rows(rows: Sequence[tuple[Sequence[int], Sequence[float]]], dim: int) -> Sparse:
        lengths = [len(ix) for ix, _ in rows]
        indptr = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
        indices = np.fromiter((i for ix, _ in rows for i in ix), dtype=np.int64, count=int(indptr[-1]))
        data = np.fromiter((v for _, vs in rows for v in vs), dtype=np.float64, count=int(indptr[-1]))
        return Sparse(indptr, indices, data, dim)


def cut(text: str, max_chars: int = MAX_CHARS) -> str:
    """The text, or its last `max_chars` characters starting at a word (see the module docstring)."""
    if len(text) <= max_chars:
        return text
    tail = text[-max_chars:]
    space = re.search(r"\s", tail[:40])
    return tail[space.end() :] if space else tail


def has_code(text: str) -> bool:
    """Code present: a fenced block, or at least two lines that look like code."""
    return "```" in text or len(_CODE.findall(text)) >= 2


def _shape(text: str, tail: str) -> list[float]:
    """Length, lines and depth from the whole text (C-level counts); the rest from the cut `tail`."""
    n = max(len(tail), 1)
    return [
        math.log1p(len(text)) / 10.0,
        math.log1p(text.count("\n")) / 5.0,
        1.0 if has_code(tail) else 0.0,
        len(_DIGIT.findall(tail)) / n * 5.0,
        len(_MATH.findall(tail)) / n * 10.0,
        len(_UPPER.findall(tail)) / n * 5.0,
        min(tail.count("?"), 5) / 5.0,
        min(text.count("\n\n"), 20) / 20.0,
        1.0,  # a constant column: lets a regularised bias live in the features too
    ]


def embeddings_available() -> bool:
    """Whether the static embedding model of the `semantic` extra is installed."""
    return optional_module("static_model") is not None


class HashedFeatures:
    """Hashed word 1-2-grams of the cut text plus shape features (and the static embedding if asked)."""

    def __init__(self, bits: int = _BITS, max_chars: int = MAX_CHARS, embed: bool = False) -> None:
        self.bits = bits
        self.max_chars = max_chars
        self.hashed = 1 << bits
        self._embed = None
        if embed:
            mod = optional_module("static_model")
            if mod is None:
                raise RuntimeError("embeddings need the semantic extra (tokenlearn-static-model)")
            self._embed = mod.get_embeddings
        self.dim = self.hashed + _SHAPE + REQUEST_COLS + (_EMBED_DIM if embed else 0)

    def hashed_row(self, text: str) -> tuple[list[int], list[float]]:
        """One prompt's hashed n-gram and shape columns (no embedding)."""
        tail = cut(text, self.max_chars)
        words = _WORD.findall(tail.lower())
        grams = words + [a + " " + b for a, b in itertools.pairwise(words)]
        mask = self.hashed - 1
        counts = Counter(zlib.crc32(g.encode()) & mask for g in grams)
        idx = list(counts)
        vals = [math.log1p(c) for c in counts.values()]
        norm = math.sqrt(sum(v * v for v in vals)) or 1.0
        shape = _shape(text, tail)
        return idx + list(range(self.hashed, self.hashed + _SHAPE)), [v / norm for v in vals] + shape

    def request_columns(
        self, *, tools: bool, json_schema: bool, images: bool, turns: int
    ) -> tuple[list[int], list[float]]:
        """The request's shape beyond its text, as columns after the shape ones: tools offered, a
        JSON-schema answer asked for, images in the input, log(1 + turns) / 3 (the conversation's depth
        in messages). Outcome files have no such fields: the evaluation leaves these columns empty."""
        base = self.hashed + _SHAPE
        return list(range(base, base + REQUEST_COLS)), [
            float(tools),
            float(json_schema),
            float(images),
            math.log1p(max(turns, 0)) / 3.0,
        ]

    def embed_columns(self, text: str) -> tuple[list[int], list[float]]:
        """The static embedding of the cut text (L2-normalised) as the columns after the request ones;
        none when this instance was made without `embed`."""
        if self._embed is None:
            return [], []
        vec = np.asarray(self._embed([cut(text, self.max_chars)])[0], dtype=np.float64)
        vec /= max(float(np.linalg.norm(vec)), 1e-12)
        base = self.hashed + _SHAPE + REQUEST_COLS
        return list(range(base, base + _EMBED_DIM)), vec.tolist()

    def transform(self, texts: Sequence[str]) -> Sparse:
        """The feature rows of `texts`."""
        rows = [self.hashed_row(t) for t in texts]
        if self._embed is not None:
            vecs = np.asarray(self._embed([cut(t, self.max_chars) for t in texts]), dtype=np.float64)
            vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
            base = self.hashed + _SHAPE + REQUEST_COLS
            rows = [
                (ix + list(range(base, base + _EMBED_DIM)), vs + vecs[i].tolist())
                for i, (ix, vs) in enumerate(rows)
            ]
        return Sparse.from_rows(rows, self.dim)


class TfidfFeatures:
    """Word-unigram TF-IDF with a vocabulary fitted on training prompts (scikit-learn's defaults)."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self.idf: F64 = np.zeros(0)

    def fit(self, texts: Sequence[str]) -> TfidfFeatures:
        df: Counter[str] = Counter()
        for t in texts:
            df.update(set(_TFIDF_TOKEN.findall(t.lower())))
        self.vocab = {w: i for i, w in enumerate(sorted(df))}
        n = len(texts)
        self.idf = np.array([math.log((1 + n) / (1 + df[w])) + 1.0 for w in sorted(df)])
        return self

    def transform(self, texts: Sequence[str]) -> Sparse:
        rows = []
        for t in texts:
            counts = Counter(
                i for w in _TFIDF_TOKEN.findall(t.lower()) if (i := self.vocab.get(w)) is not None
            )
            idx = list(counts)
            vals = [c * float(self.idf[i]) for i, c in counts.items()]
            norm = math.sqrt(sum(v * v for v in vals)) or 1.0
            rows.append((idx, [v / norm for v in vals]))
        return Sparse.from_rows(rows, len(self.vocab))
