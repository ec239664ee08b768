"""Exact column statistics from parts of a table, merged in a fixed order.

What the preprocessor learns from train (category counts, counts and moments of numbers,
medians), computed part by part (a Parquet row group each, on whichever worker) and merged in
part order, so the result depends on the data's parts, never on how many workers computed them.

Medians are exact, selected from histograms: a number's float64 bits, made order-preserving,
are a 64-bit key; each pass counts the keys of one 16-bit digit under the prefix fixed so far,
and four passes fix the whole key of the k-th smallest value (`OrderSelect`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tabml.core.config import SchemaConfig

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

DIGIT_BITS = 16
LEVELS = 64 // DIGIT_BITS
SIGN = 1 << 63


@dataclass
class ColumnStats:
    """One part's (or, merged, the whole table's) statistics, by column."""

    rows: int = 0
    # numbers: (non-missing count, mean, sum of squared deviations), merged as Chan et al.
    moments: dict[str, tuple[int, float, float]] = field(default_factory=dict)
    # booleans: (true, non-missing)
    booleans: dict[str, tuple[int, int]] = field(default_factory=dict)
    # categories: value -> rows
    levels: dict[str, dict[str, int]] = field(default_factory=dict)
    # (column, prefix) -> counts of the next 16-bit digit of the keys under that prefix
    hists: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)


def keys(values: np.ndarray) -> np.ndarray:
    """Order-preserving uint64 keys of float64 values (no NaN): a < b exactly when keys do."""
    import numpy as np

    bits = np.ascontiguousarray(values, dtype="float64").view(np.uint64)
    return np.where(bits >> np.uint64(63), ~bits, bits | np.uint64(SIGN))


def value(key: int) -> float:
    """The float64 a key stands for (the inverse of `keys`)."""
    import numpy as np

    bits = key & ~SIGN if key & SIGN else ~key & (2**64 - 1)
    return float(np.array([bits], dtype=np.uint64).view(np.float64)[0])


def column_stats(
    frame: pd.DataFrame, schema: SchemaConfig, prefixes: dict[str, tuple[int, list[int]]] | None
) -> ColumnStats:
    """One part's statistics. `prefixes`: column -> (level, prefixes) whose next digit to
    count; None counts the first digit of every number column."""
    import numpy as np

    stats = ColumnStats(rows=len(frame))
    for c, spec in schema.features.items():
        if spec.kind == "numeric":
            col = frame[c].to_numpy(dtype="float64", na_value=np.nan)
            present = col[~np.isnan(col)]
            n = len(present)
            mean = float(present.mean()) if n else 0.0
            stats.moments[c] = (n, mean, float(((present - mean) ** 2).sum()) if n else 0.0)
            k = keys(present)
            level, wanted = (0, [0]) if prefixes is None else prefixes.get(c, (0, []))
            for prefix in wanted:
                stats.hists[(c, prefix)] = _digits(k, level, prefix)
        elif spec.kind == "boolean":
            col = frame[c].astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
            present = col[~np.isnan(col)]
            stats.booleans[c] = (int((present > 0.5).sum()), len(present))
        elif spec.kind == "categorical":
            counts = frame[c].astype("string").value_counts()
            stats.levels[c] = {str(v): int(n) for v, n in counts.items()}
    return stats


def _digits(k: np.ndarray, level: int, prefix: int) -> np.ndarray:
    import numpy as np

    if level:
        k = k[(k >> np.uint64(64 - DIGIT_BITS * level)) == np.uint64(prefix)]
    shift = np.uint64(64 - DIGIT_BITS * (level + 1))
    digit = (k >> shift) & np.uint64((1 << DIGIT_BITS) - 1)
    return np.bincount(digit.astype("int64"), minlength=1 << DIGIT_BITS)


def merge_stats(parts: Iterable[ColumnStats]) -> ColumnStats:
    """The parts' statistics as one table's, merged in the order given."""
    total = ColumnStats()
    for part in parts:
        total.rows += part.rows
        for c, (n_b, mean_b, m2_b) in part.moments.items():
            n_a, mean_a, m2_a = total.moments.get(c, (0, 0.0, 0.0))
            n = n_a + n_b
            if n == 0:
                total.moments[c] = (0, 0.0, 0.0)
                continue
            delta = mean_b - mean_a
            total.moments[c] = (
                n,
                mean_a + delta * n_b / n,
                m2_a + m2_b + delta * delta * n_a * n_b / n,
            )
        for c, (t, k) in part.booleans.items():
            t0, k0 = total.booleans.get(c, (0, 0))
            total.booleans[c] = (t0 + t, k0 + k)
        for c, counts in part.levels.items():
            merged = total.levels.setdefault(c, {})
            for v, n in counts.items():
                merged[v] = merged.get(v, 0) + n
        for key, hist in part.hists.items():
            total.hists[key] = total.hists[key] + hist if key in total.hists else hist.copy()
    return total


def median_ranks(n: int) -> list[int]:
    """The 0-based ranks np.median averages: the middle one, or the middle two."""
    return [(n - 1) // 2] if n % 2 else [n // 2 - 1, n // 2]


@dataclass
class OrderSelect:
    """The search for given order statistics (k-th smallest values) of number columns, one
    16-bit digit of their keys per pass over the data."""

    level: int
    # column -> per wanted rank: [rank left within the prefix, prefix]
    targets: dict[str, list[list[int]]]
    ranks: dict[str, list[int]]

    @classmethod
    def start(cls, stats: ColumnStats) -> OrderSelect:
        """From the first pass (which counted every number column's first digit): medians."""
        ranks = {c: median_ranks(n) for c, (n, _, _) in stats.moments.items() if n}
        select = cls(0, {c: [[k, 0] for k in ks] for c, ks in ranks.items()}, ranks)
        return select.narrow(stats)

    @property
    def done(self) -> bool:
        return self.level >= LEVELS or not self.targets

    def prefixes(self) -> dict[str, tuple[int, list[int]]]:
        return {c: (self.level, sorted({p for _, p in ts})) for c, ts in self.targets.items()}

    def narrow(self, stats: ColumnStats) -> OrderSelect:
        """Fix one more digit of each wanted value from this pass's histograms."""
        import numpy as np

        targets = {}
        for c, ts in self.targets.items():
            moved = []
            for k, prefix in ts:
                counts = np.cumsum(stats.hists[(c, prefix)])
                digit = int(np.searchsorted(counts, k, side="right"))
                below = int(counts[digit - 1]) if digit else 0
                moved.append([k - below, (prefix << DIGIT_BITS) | digit])
            targets[c] = moved
        return OrderSelect(self.level + 1, targets, self.ranks)

    def medians(self) -> dict[str, float]:
        """Each column's exact median, as np.median gives it (once `done`)."""
        import numpy as np

        if not self.done:
            raise ValueError("OrderSelect.medians: the search has passes left")
        return {
            c: float(np.mean(np.array([value(p) for _, p in ts]))) for c, ts in self.targets.items()
        }


def to_series(counts: dict[str, int]) -> Any:
    import pandas as pd

    return pd.Series(counts, dtype="int64")
