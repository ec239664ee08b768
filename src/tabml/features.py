"""Feature preprocessing fitted on train only, stored as plain JSON.

Two encodings share one fitted state:
- `codes` for LightGBM: numbers as they are (NaN stays missing), categories as integer codes
  of the train vocabulary (an unseen category becomes missing), booleans as 0/1;
- `linear` for the logistic-regression baseline: numbers imputed, clipped and standardised,
  categories one-hot (an unseen or missing category is all zeros), booleans 0/1 imputed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from tabml.config import SchemaConfig

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

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

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.boolean, *self.categorical]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessor:
        return cls(**data)

    def names(self, encoding: Encoding) -> list[str]:
        """Column names of the matrix `transform` returns."""
        if encoding == "codes":
            return self.features
        onehot = [f"{c}={v}" for c in self.categorical for v in self.vocab[c]]
        return [*self.numeric, *self.boolean, *onehot]

    def transform(self, frame: pd.DataFrame, encoding: Encoding) -> np.ndarray:
        """A float64 matrix, one row per frame row."""
        import numpy as np
        import pandas as pd

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
            # unseen and missing values both get code -1
            codes = pd.Index(self.vocab[c], dtype="string").get_indexer(
                pd.Index(frame[c].astype("string"))
            )
            if encoding == "codes":
                blocks.append(np.where(codes < 0, np.nan, codes).astype("float64")[:, None])
            else:
                onehot = np.zeros((len(codes), len(self.vocab[c])))
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
    import numpy as np

    kinds = {
        k: [n for n, s in schema.features.items() if s.kind == k]
        for k in ("numeric", "boolean", "categorical")
    }
    medians: dict[str, float] = {}
    clip: dict[str, list[float]] = {}
    mean: dict[str, float] = {}
    std: dict[str, float] = {}
    for c in kinds["numeric"]:
        col = train[c].to_numpy(dtype="float64", na_value=np.nan)
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
        col = train[c].astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
        present = col[~np.isnan(col)]
        medians[c] = float(round(present.mean())) if len(present) else 0.0
    vocab = {c: sorted(str(v) for v in train[c].dropna().unique()) for c in kinds["categorical"]}
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
    )
