"""Champion against challenger on the same rows: the paired ROC AUC comparison.

Pure functions. Two models scored on the same labelled rows give correlated ROC curves; their
AUC difference is judged with DeLong's test for correlated ROC curves (DeLong, DeLong and
Clarke-Pearson, Biometrics 1988), computed with the midrank algorithm of Sun and Xu (IEEE
Signal Processing Letters, 2014) in O(n log n). The verdict is "better" or "worse" when the
two-sided confidence interval of the difference excludes 0, "not distinguishable" otherwise.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np

Verdict = Literal["better", "worse", "not distinguishable"]
# two-sided 95%: the normal quantile
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Paired:
    """The challenger's ROC AUC minus the champion's, on the same `rows`."""

    rows: int
    positives: int
    champion_auc: float
    challenger_auc: float
    delta: float
    std_error: float
    low: float
    high: float
    p_value: float
    verdict: Verdict

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties sharing their mean rank."""
    from scipy.stats import rankdata

    return rankdata(x, method="average")


def delong(
    y: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """AUCs of each row of `scores` (models x rows) and their DeLong covariance.

    Returns (aucs, covariance, v10, v01): the structural components are the placement values
    of each positive (v10: the share of negatives it outscores, ties counting half) and of each
    negative (v01: the share of positives that outscore it).
    """
    import numpy as np

    y = np.asarray(y).astype(bool)
    scores = np.atleast_2d(np.asarray(scores, dtype="float64"))
    pos, neg = scores[:, y], scores[:, ~y]
    m, n = pos.shape[1], neg.shape[1]
    if m == 0 or n == 0:
        raise ValueError("the rows need both classes for a ROC AUC")
    k = scores.shape[0]
    tx = np.array([_midranks(pos[r]) for r in range(k)])
    ty = np.array([_midranks(neg[r]) for r in range(k)])
    tz = np.array([_midranks(np.concatenate([pos[r], neg[r]])) for r in range(k)])
    aucs = (tz[:, :m].sum(axis=1) / m - (m + 1) / 2) / n
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    s10 = np.atleast_2d(np.cov(v10))
    s01 = np.atleast_2d(np.cov(v01))
    return aucs, s10 / m + s01 / n, v10, v01


def paired_auc(y: np.ndarray, champion: np.ndarray, challenger: np.ndarray) -> Paired:
    """The challenger's AUC against the champion's on the same labelled rows (DeLong)."""
    import numpy as np

    y = np.asarray(y)
    aucs, cov, _, _ = delong(y, np.vstack([champion, challenger]))
    delta = float(aucs[1] - aucs[0])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    se = math.sqrt(max(var, 0.0))
    # identical scores leave no variance: no difference at all
    p = math.erfc(abs(delta) / se / math.sqrt(2)) if se > 0 else float(delta == 0)
    low, high = delta - Z95 * se, delta + Z95 * se
    verdict: Verdict = "better" if low > 0 else "worse" if high < 0 else "not distinguishable"
    return Paired(
        rows=len(y),
        positives=int(np.asarray(y).astype(bool).sum()),
        champion_auc=float(aucs[0]),
        challenger_auc=float(aucs[1]),
        delta=delta,
        std_error=se,
        low=low,
        high=high,
        p_value=p,
        verdict=verdict,
    )


@dataclass(frozen=True)
class SameRows:
    """Both models on the same rows: per set of rows, its description and the paired result."""

    champion: str  # where the champion came from, e.g. "origin/main (`1a2b3c4d`)"
    results: dict[str, Paired] = field(default_factory=dict)
    rows: dict[str, str] = field(default_factory=dict)
    # one-record response time, challenger over champion, timed in interleaved rounds on the
    # same records in this run (tabml.reporting.latency.Ratio); None when not timed
    latency: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "champion": self.champion,
            "results": {k: v.to_dict() for k, v in self.results.items()},
            "rows": self.rows,
            **({"latency": self.latency.to_dict()} if self.latency is not None else {}),
        }
