"""Larger data sets shaped like a real one, for scale tests and benchmarks.

`synthesize` draws rows with replacement and adds noise, so the result keeps each column's
dtype, its missing-value rate (in expectation), the features' ranges, the link between
features and target, and the time order. It is for measuring, never for training a model
anyone relies on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from tabml.core.config import SchemaConfig

if TYPE_CHECKING:
    import pandas as pd

# numeric noise, as a share of the column's standard deviation
NOISE = 0.05
# share of categorical values swapped for another drawn value of the same column
SWAP = 0.02


# rows made at a time: memory stays flat whatever --rows asks for
BATCH_ROWS = 1_000_000


def synthesize(frame: pd.DataFrame, schema: SchemaConfig, rows: int, seed: int) -> pd.DataFrame:
    """`rows` rows resampled from `frame` with noise, in the source's time order, new ids (all
    of `batches` at once: for sizes that fit in memory)."""
    import pandas as pd

    return pd.concat(list(batches(frame, schema, rows, seed)), ignore_index=True)


def batches(
    frame: pd.DataFrame,
    schema: SchemaConfig,
    rows: int,
    seed: int,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[pd.DataFrame]:
    """The rows of `synthesize`, `batch_rows` at a time, in order: each source row is drawn a
    multinomial number of times, so the output keeps the source's time order across batches,
    and each batch has its own seeded noise."""
    import numpy as np
    import pandas as pd

    if rows < 1:
        raise ValueError("rows must be at least 1")
    if seed < 0:
        raise ValueError("seed must be 0 or more")
    rng = np.random.default_rng(seed)
    # sorted draws keep the time order of the source (files are in time order, or sorted below)
    source = frame
    if schema.timestamp and schema.timestamp in frame:
        stamps = pd.to_datetime(frame[schema.timestamp], errors="coerce")
        source = frame.iloc[np.argsort(stamps.to_numpy(), kind="stable")]
    counts = rng.multinomial(rows, np.full(len(source), 1 / len(source)))
    ends = np.cumsum(counts)
    string_ids = not pd.api.types.is_numeric_dtype(source[schema.id])
    for number, start in enumerate(range(0, rows, batch_rows)):
        stop = min(rows, start + batch_rows)
        picks = np.searchsorted(ends, np.arange(start, stop), side="right")
        brng = np.random.default_rng([seed, number])
        out = _noisy(source.iloc[picks].reset_index(drop=True), schema, brng)
        ids = np.arange(start, stop, dtype="int64")
        out[schema.id] = [f"s{i}" for i in ids] if string_ids else ids
        yield out


def _noisy(out: pd.DataFrame, schema: SchemaConfig, rng: Any) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    rows = len(out)
    for name, spec in schema.features.items():
        if name not in out:
            continue
        col = out[name]
        if spec.kind == "numeric":
            values = pd.to_numeric(col, errors="coerce").to_numpy(dtype="float64")
            std = np.nanstd(values) or 1.0
            integer = bool(np.all(np.mod(values[~np.isnan(values)], 1) == 0))
            noisy = values + rng.normal(0, NOISE * std, rows)
            if spec.min is not None or spec.max is not None:
                noisy = np.clip(noisy, spec.min, spec.max)
            if integer:
                noisy = np.round(noisy)
            out[name] = np.where(np.isnan(values), np.nan, noisy).astype(values.dtype)
        else:
            donors = col.iloc[rng.integers(0, rows, rows)].reset_index(drop=True)
            # swap present values for present donors only: the missing rate stays as it was
            swap = (rng.uniform(size=rows) < SWAP) & col.notna() & donors.notna()
            out[name] = col.where(~swap, donors)
    return out
