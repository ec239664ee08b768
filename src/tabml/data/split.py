"""Train / valid / test splits that never share an id.

A time split orders rows by the dataset's timestamp (or by id when it has none) and takes the
latest rows for test and the ones before them for valid: the production batch always comes
after the development data, so the test split should too. A stratified split is random, keeps
the positive rate in every split, and is seeded from config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabml.core.catalog import Splits
from tabml.core.config import SchemaConfig, SplitConfig
from tabml.core.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

SPLITS = Splits.NAMES


@dataclass(frozen=True)
class SplitResult:
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    summary: dict[str, Any]


def _boundary(keys: np.ndarray, cut: int) -> int:
    """Move a cut forward past rows that share its key, so no key straddles two splits."""
    while 0 < cut < len(keys) and keys[cut] == keys[cut - 1]:
        cut += 1
    return cut


def _order(keys: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Row positions sorted by `columns` (stable; missing values last), as pandas' mergesort
    `sort_values` orders them, without copying the frame: numpy's lexsort where the columns
    are plain numbers or datetimes, pandas otherwise."""
    import numpy as np

    arrays = [keys[c].to_numpy() for c in columns]
    if all(a.dtype.kind in "biufmM" for a in arrays):
        return np.lexsort(arrays[::-1])
    return keys[columns].sort_values(columns, kind="mergesort").index.to_numpy()


def _time_split(keys: pd.DataFrame, schema: SchemaConfig, cfg: SplitConfig) -> list[np.ndarray]:
    import numpy as np

    order_cols = [schema.timestamp, schema.id] if schema.timestamp else [schema.id]
    pos = _order(keys, order_cols)
    ordered = keys[order_cols[0]].to_numpy()[pos]
    n = len(pos)
    test_cut = _boundary(ordered, round(n * (1 - cfg.test_fraction)))
    valid_cut = _boundary(ordered, round(n * (1 - cfg.test_fraction - cfg.valid_fraction)))
    del ordered
    return [np.sort(pos[:valid_cut]), np.sort(pos[valid_cut:test_cut]), np.sort(pos[test_cut:])]


def _stratified_split(
    frame: pd.DataFrame, schema: SchemaConfig, cfg: SplitConfig, seed: int
) -> list[np.ndarray]:
    import numpy as np

    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    y = frame[schema.target.column].to_numpy()
    for cls in (0, 1):
        idx = frame.index.to_numpy()[y == cls]
        idx = idx[rng.permutation(len(idx))]
        n_test = round(len(idx) * cfg.test_fraction)
        n_valid = round(len(idx) * cfg.valid_fraction)
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test : n_test + n_valid])
        parts[0].append(idx[n_test + n_valid :])
    return [np.sort(np.concatenate(p)) for p in parts]


def _describe(part: pd.DataFrame, schema: SchemaConfig) -> dict[str, Any]:
    info: dict[str, Any] = {
        "rows": len(part),
        "positive_rate": float(part[schema.target.column].mean()) if len(part) else None,
    }
    if schema.timestamp:
        ts = part[schema.timestamp]
        info["start"] = ts.min().isoformat() if len(part) else None
        info["end"] = ts.max().isoformat() if len(part) else None
    return info


@dataclass(frozen=True)
class SplitPlan:
    """Which rows go where: each split's row positions (ascending), and the split report."""

    parts: list[np.ndarray]
    summary: dict[str, Any]

    def assignment(self, rows: int) -> np.ndarray:
        """The split of every row as one int8 each (0 train, 1 valid, 2 test)."""
        import numpy as np

        which = np.full(rows, -1, dtype="int8")
        for i, part in enumerate(self.parts):
            which[part] = i
        return which


def key_columns(schema: SchemaConfig) -> list[str]:
    """The columns a split is decided from: the rest of a row only follows it."""
    return list(dict.fromkeys(c for c in (schema.id, schema.timestamp, schema.target.column) if c))


def plan(keys: pd.DataFrame, schema: SchemaConfig, cfg: SplitConfig, seed: int) -> SplitPlan:
    """Decide the split from the key columns alone (`key_columns`), in the frame's row order.

    Each split keeps the rows' original order. The split stage reads only these columns to
    decide, then streams the whole rows into the split files (so it never holds the frame)."""
    keys = keys.reset_index(drop=True)
    if cfg.method == "time":
        parts = _time_split(keys, schema, cfg)
    else:
        parts = _stratified_split(keys, schema, cfg, seed)
    # each split's rows of the columns its report reads, one split at a time
    described = [c for c in (schema.target.column, schema.timestamp) if c]
    summary: dict[str, Any] = {
        "method": cfg.method,
        "ordered_by": (schema.timestamp or schema.id) if cfg.method == "time" else None,
        "fractions": {"valid": cfg.valid_fraction, "test": cfg.test_fraction},
    }
    for name, p in zip(SPLITS, parts, strict=True):
        part = keys[described].iloc[p]
        classes = part[schema.target.column].nunique()
        if len(part) == 0 or classes < 2:
            raise DataError(
                f"split '{name}' has {len(part)} rows and {classes} target class(es); it needs "
                "both classes. Use more data, larger fractions, or split=stratified."
            )
        summary[name] = _describe(part, schema)
    return SplitPlan(parts, summary)


def split(frame: pd.DataFrame, schema: SchemaConfig, cfg: SplitConfig, seed: int) -> SplitResult:
    """Split the clean development set into train, valid and test (in memory: the stage
    streams instead, with the same `plan`)."""
    frame = frame.reset_index(drop=True)
    decided = plan(frame[key_columns(schema)], schema, cfg, seed)
    train, valid, test = (frame.loc[p].reset_index(drop=True) for p in decided.parts)
    return SplitResult(train=train, valid=valid, test=test, summary=decided.summary)
