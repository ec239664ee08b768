"""Fairness per segment: how differently the model's decisions fall on the groups of a column.

For each column in `dataset.segments`, on the test split, with the decision threshold, with
fairlearn's definitions (its "between groups" differences and ratio), computed from each
group's counts in one pass (`np.bincount`): fairlearn's own MetricFrame took 24 s per segment
on 1.5M test rows, and tests/unit/test_access_fairness.py holds the figures equal to
fairlearn's:

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
    import pandas as pd

    y_true = np.asarray(y).astype(int)
    y_pred = (np.asarray(p) >= threshold).astype(np.float64)
    out: dict[str, dict[str, Any]] = {}
    for col in segments:
        codes, names = pd.factorize(frame[col].astype("string").fillna("<missing>"))
        k = len(names)
        counts = np.bincount(codes, minlength=k)
        positives = np.bincount(codes, weights=y_true, minlength=k)
        kept = counts >= min_rows
        entry: dict[str, Any] = {
            "groups": int(kept.sum()),
            "left_out": sorted(str(n) for n, keep in zip(names, kept, strict=True) if not keep),
        }
        # every measure compares groups: it needs two, each with both classes for the rates
        if kept.sum() < 2 or not ((positives[kept] > 0) & (positives[kept] < counts[kept])).all():
            entry["note"] = "fewer than two groups with enough rows of both classes"
            out[col] = entry
            continue
        selection = _rates(codes, k, y_pred, None)[kept]
        tpr = _rates(codes, k, y_pred, y_true == 1)[kept]
        fpr = _rates(codes, k, y_pred, y_true == 0)[kept]
        entry["demographic_parity_difference"] = float(selection.max() - selection.min())
        top = selection.max()
        entry["demographic_parity_ratio"] = float(selection.min() / top) if top else float("nan")
        entry["equal_opportunity_difference"] = float(tpr.max() - tpr.min())
        entry["equalized_odds_difference"] = float(
            max(tpr.max() - tpr.min(), fpr.max() - fpr.min())
        )
        out[col] = entry
    return out


def _rates(codes: np.ndarray, k: int, y_pred: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    """Each group's mean of `y_pred` over its `rows` (all rows when None)."""
    import numpy as np

    if rows is not None:
        codes, y_pred = codes[rows], y_pred[rows]
    n = np.bincount(codes, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.bincount(codes, weights=y_pred, minlength=k) / n)


def worst(fairness: dict[str, dict[str, Any]], measure: str) -> tuple[str, float] | None:
    """The segment with the largest value of a difference measure, and that value."""
    values = [(seg, float(m[measure])) for seg, m in fairness.items() if measure in m]
    return max(values, key=lambda sv: sv[1]) if values else None
