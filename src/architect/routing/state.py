"""The prompt features of an `auto` decision as the store keeps them (`route_features.features`): the
hashed feature row's column indices as little-endian `int32`, then its values as little-endian
`float32`, in one byte string (8 bytes per column; about 0.5 KiB for a prompt of 60 distinct n-grams)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["Features", "pack", "unpack"]

Features = tuple[NDArray[np.integer], NDArray[np.floating]]


def pack(x: Features) -> bytes:
    """A feature row (indices, values) as bytes."""
    idx, val = x
    if len(idx) != len(val):
        raise ValueError(f"features: {len(idx)} indices but {len(val)} values")
    return np.asarray(idx, dtype="<i4").tobytes() + np.asarray(val, dtype="<f4").tobytes()


def unpack(data: bytes) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """The (indices, values) of `pack`'s bytes; ValueError when they are not such bytes."""
    raw = bytes(data)
    if len(raw) % 8:
        raise ValueError(f"features: {len(raw)} bytes is not a whole number of columns")
    n = len(raw) // 8
    idx = np.frombuffer(raw, dtype="<i4", count=n).astype(np.int64)
    val = np.frombuffer(raw, dtype="<f4", count=n, offset=4 * n).astype(np.float64)
    return idx, val
