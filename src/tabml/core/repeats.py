"""Finding the few ids that repeat among many, in little memory.

A 64-bit key per id (`id_keys`) sorts in 8 bytes a row, where a hash table of the ids takes
several times that: `repeated_keys` gives the keys seen more than once, and `member` marks the
rows holding one. Those rows are the only candidates for a repeated id; equal keys of
different ids (a hash collision) are told apart afterwards by comparing the ids themselves,
among the candidates only. Pure functions of numpy and pandas values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def id_keys(ids: pd.Series, step: int = 1 << 20) -> np.ndarray:
    """A 64-bit key of each id: equal ids (of one dtype) have equal keys. Integer ids are their
    own keys (no copy); others are hashed, `step` at a time (hashing takes 3 times the keys'
    size while it runs)."""
    import numpy as np
    import pandas as pd

    if isinstance(ids.dtype, np.dtype) and ids.dtype.kind in "iu" and ids.dtype.itemsize == 8:
        return ids.to_numpy().view(np.uint64)
    keys = np.empty(len(ids), dtype=np.uint64)
    for start in range(0, len(ids), step):
        part = ids.iloc[start : start + step]
        keys[start : start + step] = pd.util.hash_pandas_object(part, index=False).to_numpy()
    return keys


def repeated_keys(keys: np.ndarray, buckets: int = 16) -> np.ndarray:
    """The distinct values that occur more than once in `keys` (uint64), sorted.

    Equal keys fall in the same bucket (the key modulo `buckets`), so each bucket is sorted
    on its own: a sixteenth of the keys copied at a time, not all of them (80 MB at 10M rows),
    plus a byte a key for the bucket numbers."""
    import numpy as np

    def repeated(part: np.ndarray) -> np.ndarray:
        part.sort()
        return np.unique(part[1:][part[1:] == part[:-1]])

    if len(keys) <= 1 << 20 or buckets <= 1:
        return repeated(keys.copy())
    bucket = (keys % np.uint64(buckets)).astype(np.uint8)
    found = [repeated(keys[bucket == b]) for b in range(buckets)]
    return np.sort(np.concatenate(found))


def member(keys: np.ndarray, sorted_set: np.ndarray, step: int = 1 << 20) -> np.ndarray:
    """Whether each key is in `sorted_set` (sorted and distinct, as `repeated_keys` gives),
    `step` keys at a time (searchsorted's positions take 8 bytes a key)."""
    import numpy as np

    found = np.zeros(len(keys), dtype=bool)
    if not len(sorted_set):
        return found
    for start in range(0, len(keys), step):
        part = keys[start : start + step]
        at = np.minimum(np.searchsorted(sorted_set, part), len(sorted_set) - 1)
        found[start : start + step] = sorted_set[at] == part
    return found


def repeat_candidates(ids: pd.Series) -> np.ndarray:
    """Positions of the non-missing ids whose key repeats: every repeated id is among them."""
    import numpy as np

    keys = id_keys(ids)
    repeated = repeated_keys(keys)
    return np.flatnonzero(member(keys, repeated) & ids.notna().to_numpy())


def take(parts: list[np.ndarray], at: np.ndarray) -> np.ndarray:
    """`np.concatenate(parts)[at]` (`at` ascending) without joining the parts."""
    import numpy as np

    out, start = [], 0
    for part in parts:
        lo, hi = np.searchsorted(at, [start, start + len(part)])
        out.append(part[at[lo:hi] - start])
        start += len(part)
    return np.concatenate(out) if out else np.array([])
