"""Batch scoring with a verified package."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tabml.core.schema import validate
from tabml.learning.package import Package

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def predictions_frame(ids: Any, scores: np.ndarray, threshold: float, id_col: str) -> pd.DataFrame:
    """The id column, `score` (positive-class probability) and `label` (1 if score >= threshold)."""
    import pandas as pd

    return pd.DataFrame(
        {id_col: ids, "score": scores, "label": (scores >= threshold).astype("int8")}
    )


def score(pkg: Package, frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Validate a raw frame against the package schema and score it.

    Columns the schema does not know are ignored; values never seen in development are scored
    (as missing categories, or extrapolated numbers) rather than refused.
    """
    typed = validate(frame, pkg.schema, "production", source).frame
    scores = pkg.model.predict(typed)
    return predictions_frame(typed[pkg.schema.id].to_numpy(), scores, pkg.threshold, pkg.schema.id)
