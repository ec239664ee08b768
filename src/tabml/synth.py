"""Larger data sets shaped like a real one, for scale tests and benchmarks.

`synthesize` draws rows with replacement and adds noise, so the result keeps each column's
dtype, its missing-value rate (in expectation), the features' ranges, the link between
features and target, and the time order. It is for measuring, never for training a model
anyone relies on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tabml.config import SchemaConfig

if TYPE_CHECKING:
    import pandas as pd

# numeric noise, as a share of the column's standard deviation
NOISE = 0.05
# share of categorical values swapped for another drawn value of the same column
SWAP = 0.02


def synthesize(frame: pd.DataFrame, schema: SchemaConfig, rows: int, seed: int) -> pd.DataFrame:
    """`rows` rows resampled from `frame` with noise, in the source's time order, new ids."""
    import numpy as np
    import pandas as pd

    if rows < 1:
        raise ValueError("rows must be at least 1")
    rng = np.random.default_rng(seed)
    # sorted draws keep the time order of the source (files are in time order, or sorted below)
    source = frame
    if schema.timestamp and schema.timestamp in frame:
        stamps = pd.to_datetime(frame[schema.timestamp], errors="coerce")
        source = frame.iloc[np.argsort(stamps.to_numpy(), kind="stable")]
    picks = np.sort(rng.integers(0, len(source), rows))
    out = source.iloc[picks].reset_index(drop=True)

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
    id_col = schema.id
    if pd.api.types.is_numeric_dtype(out[id_col]):
        out[id_col] = np.arange(rows, dtype="int64")
    else:
        out[id_col] = [f"s{i}" for i in range(rows)]
    return out
