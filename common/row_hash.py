"""Row content hashes: the 128-bit key that makes a re-loaded export row a duplicate, across files and runs.

Two independent 64-bit hashes per row, equal to pandas' `hash_pandas_object(index=False)` under two keys, written
as 32 hex digits (the bronze unique keys depend on it staying so), computed column by column on numpy arrays.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_HASH_KEYS = ("wfm-forecast-k01", "wfm-forecast-k02")
_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _combine_hashes(hashes: list[np.ndarray], n: int) -> np.ndarray:
    """pandas' combine_hash_arrays (CPython's tuple hash), so rows hash exactly as hash_pandas_object hashes them."""
    out = np.full(n, 0x345678, dtype=np.uint64)
    mult = np.uint64(1000003)
    for i, h in enumerate(hashes):
        inverse_i = len(hashes) - i
        out ^= h
        out *= mult
        mult += np.uint64(82520 + inverse_i + inverse_i)
    return out + np.uint64(97531)


def _column_hashes(values: np.ndarray, keys: tuple[str, ...]) -> list[np.ndarray]:
    """hash_array of one text column under each key; the distinct values are found once and hashed once per key."""
    sample = values[:2000].tolist()
    if len(set(sample)) > len(sample) // 2:  # mostly distinct (ids, times): factorizing would not pay
        return [pd.util.hash_array(values, hash_key=k, categorize=False) for k in keys]
    codes, uniques = pd.factorize(values)
    return [pd.util.hash_array(np.asarray(uniques, dtype=object), hash_key=k, categorize=False)[codes] for k in keys]


def hash_strings(columns: list[np.ndarray], n: int) -> np.ndarray:
    """The 32-hex-digit row hash of `row_hashes`, as an object array of str."""
    if n == 0:
        return np.array([], dtype=object)
    per_column = [_column_hashes(c, _HASH_KEYS) for c in columns]
    a, b = (_combine_hashes([h[k] for h in per_column], n) for k in range(len(_HASH_KEYS)))
    nibbles = np.stack([a, b], axis=1).astype(">u8").view(np.uint8).reshape(n, 16)
    chars = np.empty((n, 32), dtype=np.uint8)
    chars[:, 0::2] = _HEX_DIGITS[nibbles >> 4]
    chars[:, 1::2] = _HEX_DIGITS[nibbles & 15]
    return chars.view("S32").ravel().astype("U32").astype(object)


def row_hashes(text: pd.DataFrame) -> pd.Series:
    """A 128-bit content hash per row (two independent 64-bit hashes): same values -> same hash, across files and runs.

    Equal to `hash_pandas_object(text, index=False, hash_key=k)` for the two keys, as hex (the bronze
    unique key depends on it staying so).
    """
    columns = [text[c].to_numpy(dtype=object) for c in text.columns]
    return pd.Series(hash_strings(columns, len(text)), index=text.index, dtype="str")
