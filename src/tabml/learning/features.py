"""Feature preprocessing fitted on train only, stored as plain JSON.

Two encodings share one fitted state:
- `codes` for LightGBM: numbers clipped to train's quantiles where `clip_quantiles` is set,
  and otherwise as they are; booleans as 0/1; a missing number or boolean stays missing (NaN)
  unless `impute: median` fills it (train's median; for a boolean, its majority value);
  categories as integer codes of the train vocabulary (missing, or unseen in a closed
  vocabulary, becomes NaN);
- `linear` for the logistic-regression baseline: numbers clipped the same way, always imputed
  with train's median, then standardised with train's (clipped) mean and standard deviation;
  booleans 0/1, a missing one imputed with train's majority; categories one-hot (a missing
  category, or an unseen one in a closed vocabulary, is all zeros).

A categorical feature with `max_levels` or `min_frequency` has an open vocabulary: its
vocabulary is the frequent levels of train, and every other non-missing value (rare in train,
or never seen) is one more level, "other", with its own code (and one-hot column).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from tabml.core.config import FeatureSpec, SchemaConfig
from tabml.core.schema import OTHER

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np
    import pandas as pd

    from tabml.learning.stats import ColumnStats, OrderSelect

Encoding = Literal["codes", "linear"]


@dataclass(frozen=True)
class Preprocessor:
    numeric: list[str]
    boolean: list[str]
    categorical: list[str]
    vocab: dict[str, list[str]]
    medians: dict[str, float]
    clip: dict[str, list[float]]
    mean: dict[str, float]
    std: dict[str, float]
    impute: bool
    # categorical columns whose values outside `vocab` map to the OTHER level
    other: list[str] = field(default_factory=list)

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.boolean, *self.categorical]

    def levels(self, column: str) -> list[str]:
        """The encoded levels of a categorical column: its vocabulary, then OTHER if open."""
        return [*self.vocab[column], OTHER] if column in self.other else self.vocab[column]

    def level_codes(self, column: str, values: pd.Series) -> np.ndarray:
        """Integer codes of `levels(column)`; -1 for missing (and unseen, unless open)."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        # Arrow's hash lookup: pandas' Index.get_indexer on strings converts them to Python
        # objects first, about ten times slower
        text = pa.array(values.astype("string"), type=pa.large_string(), from_pandas=True)
        vocab = pa.array(self.vocab[column], type=pa.large_string())
        found = pc.index_in(text, value_set=vocab)
        codes = found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        if column in self.other:
            unseen = pc.and_(pc.is_null(found), pc.is_valid(text)).to_numpy(zero_copy_only=False)
            codes = np.where(unseen, len(self.vocab[column]), codes)
        return codes

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if not self.other:  # models without open vocabularies keep their earlier file
            del data["other"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessor:
        return cls(**data)

    def names(self, encoding: Encoding) -> list[str]:
        """Column names of the matrix `transform` returns."""
        if encoding == "codes":
            return self.features
        onehot = [f"{c}={v}" for c in self.categorical for v in self.levels(c)]
        return [*self.numeric, *self.boolean, *onehot]

    def transform(self, frame: pd.DataFrame, encoding: Encoding) -> np.ndarray:
        """A float64 matrix, one row per frame row."""
        import numpy as np

        blocks: list[np.ndarray] = []
        for c in self.numeric:
            col = frame[c].to_numpy(dtype="float64", na_value=np.nan)
            if c in self.clip:
                lo, hi = self.clip[c]
                col = np.clip(col, lo, hi)
            if encoding == "linear" or self.impute:
                col = np.where(np.isnan(col), self.medians[c], col)
            if encoding == "linear":
                col = (col - self.mean[c]) / self.std[c]
            blocks.append(col[:, None])
        for c in self.boolean:
            col = frame[c].astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
            if encoding == "linear" or self.impute:
                col = np.where(np.isnan(col), self.medians[c], col)
            blocks.append(col[:, None])
        for c in self.categorical:
            # missing values (and unseen ones, unless the vocabulary is open) get code -1
            codes = self.level_codes(c, frame[c])
            if encoding == "codes":
                blocks.append(np.where(codes < 0, np.nan, codes).astype("float64")[:, None])
            else:
                onehot = np.zeros((len(codes), len(self.levels(c))))
                known = codes >= 0
                onehot[np.nonzero(known)[0], codes[known]] = 1.0
                blocks.append(onehot)
        if not blocks:
            return np.empty((len(frame), 0))
        return np.hstack(blocks)


def fit(
    train: pd.DataFrame,
    schema: SchemaConfig,
    impute: bool,
    clip_quantiles: tuple[float, float] | None,
) -> Preprocessor:
    """Learn medians, clip bounds, scaling and category vocabularies from train alone."""
    return fit_columns(train.__getitem__, schema, impute, clip_quantiles)


def fit_columns(
    column: Callable[[str], pd.Series],
    schema: SchemaConfig,
    impute: bool,
    clip_quantiles: tuple[float, float] | None,
) -> Preprocessor:
    """`fit`, given train one column at a time (`column(name)`): each statistic depends on its
    column alone, so reading a file a column at a time gives the same preprocessor, byte for
    byte, while holding one column."""
    import numpy as np

    kinds = _kinds(schema)
    medians: dict[str, float] = {}
    clip: dict[str, list[float]] = {}
    mean: dict[str, float] = {}
    std: dict[str, float] = {}
    for c in kinds["numeric"]:
        col = column(c).to_numpy(dtype="float64", na_value=np.nan)
        present = col[~np.isnan(col)]
        medians[c] = float(np.median(present)) if len(present) else 0.0
        if clip_quantiles is not None and len(present):
            lo, hi = np.quantile(present, clip_quantiles)
            clip[c] = [float(lo), float(hi)]
            present = np.clip(present, lo, hi)
        mean[c] = float(present.mean()) if len(present) else 0.0
        sd = float(present.std()) if len(present) else 0.0
        std[c] = sd if sd > 0 else 1.0
    for c in kinds["boolean"]:
        col = column(c).astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
        present = col[~np.isnan(col)]
        medians[c] = float(round(present.mean())) if len(present) else 0.0
    vocab = {
        c: vocabulary(column(c).astype("string").value_counts(), schema.features[c])
        for c in kinds["categorical"]
    }
    return _assemble(schema, vocab, medians, clip, mean, std, impute)


def fit_from_stats(
    stats: ColumnStats, select: OrderSelect, schema: SchemaConfig, impute: bool
) -> Preprocessor:
    """`fit`, from train's statistics merged over its parts (tabml.learning.stats) instead of the
    frame: exact vocabularies and medians; means and standard deviations merged part by part.
    Clip bounds are not supported here (the caller refuses clip_quantiles)."""
    import math

    from tabml.learning.stats import to_series

    kinds = _kinds(schema)
    exact = select.medians()
    medians: dict[str, float] = {}
    mean: dict[str, float] = {}
    std: dict[str, float] = {}
    for c in kinds["numeric"]:
        n, m, m2 = stats.moments[c]
        medians[c] = exact.get(c, 0.0)
        mean[c] = m if n else 0.0
        sd = math.sqrt(m2 / n) if n else 0.0
        std[c] = sd if sd > 0 else 1.0
    for c in kinds["boolean"]:
        true, known = stats.booleans[c]
        medians[c] = float(round(true / known)) if known else 0.0
    vocab = {
        c: vocabulary(to_series(stats.levels.get(c, {})), schema.features[c])
        for c in kinds["categorical"]
    }
    return _assemble(schema, vocab, medians, {}, mean, std, impute)


def _kinds(schema: SchemaConfig) -> dict[str, list[str]]:
    return {
        k: [n for n, s in schema.features.items() if s.kind == k]
        for k in ("numeric", "boolean", "categorical")
    }


def _assemble(
    schema: SchemaConfig,
    vocab: dict[str, list[str]],
    medians: dict[str, float],
    clip: dict[str, list[float]],
    mean: dict[str, float],
    std: dict[str, float],
    impute: bool,
) -> Preprocessor:
    kinds = _kinds(schema)
    return Preprocessor(
        numeric=kinds["numeric"],
        boolean=kinds["boolean"],
        categorical=kinds["categorical"],
        vocab=vocab,
        medians=medians,
        clip=clip,
        mean=mean,
        std=std,
        impute=impute,
        other=[c for c in kinds["categorical"] if schema.features[c].open_vocabulary],
    )


def vocabulary(counts: pd.Series, spec: FeatureSpec) -> list[str]:
    """The sorted levels a column's train counts (value -> rows) give it: all of them, or for
    an open vocabulary the `max_levels` most frequent seen at least `min_frequency` times
    (ties go to the smaller value, so the choice does not depend on row order)."""
    levels = [(str(v), int(n)) for v, n in counts.items() if int(n) > 0]
    if spec.open_vocabulary:
        levels = [(v, n) for v, n in levels if n >= (spec.min_frequency or 1)]
        levels = sorted(levels, key=lambda vn: (-vn[1], vn[0]))[: spec.max_levels]
    return sorted(v for v, _ in levels)
