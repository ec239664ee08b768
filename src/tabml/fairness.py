"""Fairness per segment: how differently the model's decisions fall on the groups of a column.

For each column in `dataset.segments`, on the test split, with the decision threshold, through
fairlearn's metrics (not by hand):

- demographic parity difference and ratio: the gap (and the ratio, smallest over largest)
  between the groups' selection rates, the share of rows labelled positive;
- equal opportunity difference: the gap between the groups' true-positive rates (of the rows
  that are positive, the share the model finds);
- equalised odds difference: the larger of the gaps in true-positive and false-positive rates.

Groups with fewer than `min_rows` test rows are left out of the measures (a handful of rows
makes any gap), and named. A difference of 0 means the groups are treated alike by that
measure; it says nothing about whether the segment should be used at all, nor about groups the
data does not record. docs/privacy.md says what the figures mean and what they do not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

MEASURES = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equal_opportunity_difference",
    "equalized_odds_difference",
)


def fairness_metrics(
    frame: pd.DataFrame,
    y: np.ndarray,
    p: np.ndarray,
    segments: tuple[str, ...],
    threshold: float,
    min_rows: int,
) -> dict[str, dict[str, Any]]:
    """`{segment: {measure: value, "groups": n, "left_out": [...]}}` on the given rows."""
    import numpy as np
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
        true_positive_rate,
    )

    y_true = np.asarray(y).astype(int)
    y_pred = (np.asarray(p) >= threshold).astype(int)
    out: dict[str, dict[str, Any]] = {}
    for col in segments:
        groups = frame[col].astype("string").fillna("<missing>").to_numpy(dtype=object)
        names, counts = np.unique(groups, return_counts=True)
        kept = {str(n) for n, c in zip(names, counts, strict=True) if c >= min_rows}
        mask = np.isin(groups, list(kept))
        entry: dict[str, Any] = {
            "groups": len(kept),
            "left_out": sorted(str(n) for n in names if str(n) not in kept),
        }
        # every measure compares groups: it needs two, each with both classes for the rates
        ok = len(kept) >= 2 and all(
            0 < y_true[groups == g].sum() < (groups == g).sum() for g in kept
        )
        if not ok:
            entry["note"] = "fewer than two groups with enough rows of both classes"
            out[col] = entry
            continue
        yt, yp, g = y_true[mask], y_pred[mask], groups[mask]
        entry["demographic_parity_difference"] = float(
            demographic_parity_difference(yt, yp, sensitive_features=g)
        )
        entry["demographic_parity_ratio"] = float(
            demographic_parity_ratio(yt, yp, sensitive_features=g)
        )
        tpr = MetricFrame(metrics=true_positive_rate, y_true=yt, y_pred=yp, sensitive_features=g)
        entry["equal_opportunity_difference"] = float(tpr.difference())
        entry["equalized_odds_difference"] = float(
            equalized_odds_difference(yt, yp, sensitive_features=g)
        )
        out[col] = entry
    return out


def worst(fairness: dict[str, dict[str, Any]], measure: str) -> tuple[str, float] | None:
    """The segment with the largest value of a difference measure, and that value."""
    values = [(seg, float(m[measure])) for seg, m in fairness.items() if measure in m]
    return max(values, key=lambda sv: sv[1]) if values else None
