"""The metrics: pure functions of labels and scores (ROC AUC, average precision, log loss,
Brier score, calibration, the confusion matrix, the decision threshold, per-slice metrics and
the points behind the curves).

Plain NumPy (the unit tests hold them equal to scikit-learn's), so no stage pays for importing
scikit-learn. Used by `learning.evaluate` and by `learning.model` (the out-of-fold reference's
scores), which is why they live apart from evaluation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tabml.core.config import EvaluateConfig, ThresholdRule

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

EPS = 1e-15
PLOT_POINTS = 201


def _binary_curve(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative false and true positives at each distinct threshold, highest first."""
    import numpy as np

    order = np.argsort(-p, kind="mergesort")
    p_sorted, y_sorted = p[order], y[order]
    distinct = np.where(np.diff(p_sorted))[0]
    last = np.r_[distinct, len(y_sorted) - 1]
    tps = np.cumsum(y_sorted)[last]
    fps = (last + 1) - tps
    return fps, tps, p_sorted[last]


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    import numpy as np

    fps, tps, _ = _binary_curve(y, p)
    if tps[-1] == 0 or fps[-1] == 0:
        return float("nan")
    fpr = np.r_[0, fps] / fps[-1]
    tpr = np.r_[0, tps] / tps[-1]
    return float(np.trapezoid(tpr, fpr))


def average_precision(y: np.ndarray, p: np.ndarray) -> float:
    import numpy as np

    fps, tps, _ = _binary_curve(y, p)
    if tps[-1] == 0:
        return float("nan")
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0, recall]) * precision))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    import numpy as np

    q = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    import numpy as np

    return float(np.mean((p - y) ** 2))


def calibration_bins(y: np.ndarray, p: np.ndarray, bins: int) -> list[dict[str, float]]:
    """Equal-width probability bins: mean predicted, fraction positive, count."""
    import numpy as np

    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1], right=True), 0, bins - 1)
    out = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            out.append(
                {
                    "bin": b,
                    "mean_predicted": float(p[mask].mean()),
                    "fraction_positive": float(y[mask].mean()),
                    "count": int(mask.sum()),
                }
            )
    return out


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int) -> float:
    n = len(y)
    return float(
        sum(
            b["count"] / n * abs(b["mean_predicted"] - b["fraction_positive"])
            for b in calibration_bins(y, p, bins)
        )
    )


def confusion(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, int]:
    import numpy as np

    pred = p >= threshold
    pos = y == 1
    return {
        "tp": int(np.sum(pred & pos)),
        "fp": int(np.sum(pred & ~pos)),
        "fn": int(np.sum(~pred & pos)),
        "tn": int(np.sum(~pred & ~pos)),
    }


def threshold_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    c = confusion(y, p, threshold)
    precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
    recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": (c["tp"] + c["tn"]) / max(len(y), 1),
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def choose_threshold(y: np.ndarray, p: np.ndarray, rule: ThresholdRule) -> float:
    """The decision threshold, chosen on the validation split by the configured rule.

    - fixed: `value` itself;
    - max_f1: the score that maximises F1;
    - min_precision: the lowest score whose precision is at least `value` (most recall).
    """
    import numpy as np

    if rule.rule == "fixed":
        return rule.value
    fps, tps, thresholds = _binary_curve(y, p)
    precision = tps / np.maximum(tps + fps, 1)
    recall = tps / max(tps[-1], 1)
    if rule.rule == "max_f1":
        f1 = 2 * precision * recall / np.maximum(precision + recall, EPS)
        return float(thresholds[int(np.argmax(f1))])
    ok = np.nonzero(precision >= rule.value)[0]
    if len(ok) == 0:
        return float(thresholds[0])
    return float(thresholds[ok[-1]])


def score_metrics(
    y: np.ndarray, p: np.ndarray, threshold: float, cfg: EvaluateConfig
) -> dict[str, Any]:
    """Every metric for one scored, labelled set."""
    return {
        "rows": len(y),
        "positive_rate": float(y.mean()) if len(y) else float("nan"),
        "roc_auc": roc_auc(y, p),
        "average_precision": average_precision(y, p),
        "log_loss": log_loss(y, p),
        "brier": brier(y, p),
        "ece": expected_calibration_error(y, p, cfg.calibration_bins),
        **threshold_metrics(y, p, threshold),
    }


def slice_metrics(
    frame: pd.DataFrame,
    y: np.ndarray,
    p: np.ndarray,
    segments: tuple[str, ...],
    threshold: float,
    min_rows: int,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per segment column and value: rows, positive rate, ROC AUC and F1 (small slices flagged)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for col in segments:
        values = frame[col].astype("string").fillna("<missing>").to_numpy(dtype=object)
        out[col] = {}
        for v in sorted(set(values)):
            mask = values == v
            ys, ps = y[mask], p[mask]
            entry: dict[str, Any] = {"rows": int(mask.sum()), "positive_rate": float(ys.mean())}
            if mask.sum() >= min_rows and 0 < ys.sum() < len(ys):
                entry["roc_auc"] = roc_auc(ys, ps)
                entry["f1"] = threshold_metrics(ys, ps, threshold)["f1"]
            else:
                entry["note"] = "too few rows or a single class"
            out[col][str(v)] = entry
    return out


def roc_points(y: np.ndarray, p: np.ndarray) -> list[dict[str, float]]:
    import numpy as np

    fps, tps, thr = _binary_curve(y, p)
    fpr = np.r_[0, fps / max(fps[-1], 1)]
    tpr = np.r_[0, tps / max(tps[-1], 1)]
    thr = np.r_[1.0, thr]
    keep = _thin(len(fpr))
    return [{"fpr": float(fpr[i]), "tpr": float(tpr[i]), "threshold": float(thr[i])} for i in keep]


def pr_points(y: np.ndarray, p: np.ndarray) -> list[dict[str, float]]:
    import numpy as np

    fps, tps, thr = _binary_curve(y, p)
    precision = tps / np.maximum(tps + fps, 1)
    recall = tps / max(tps[-1], 1)
    keep = _thin(len(recall))
    return [
        {"recall": float(recall[i]), "precision": float(precision[i]), "threshold": float(thr[i])}
        for i in keep
    ]


def _thin(n: int) -> list[int]:
    """At most PLOT_POINTS indices spread over 0..n-1, ends included (small plot files)."""
    if n <= PLOT_POINTS:
        return list(range(n))
    step = (n - 1) / (PLOT_POINTS - 1)
    return sorted({round(i * step) for i in range(PLOT_POINTS)})


def confusion_rows(y: np.ndarray, p: np.ndarray, threshold: float) -> list[dict[str, Any]]:
    """The four cells, each with its count: what .dvc/plots/confusion_counts.json draws (DVC's
    own confusion template counts one row per sample, which made 85 MB of JSON in git for
    1.5M test rows)."""
    c = confusion(y, p, threshold)
    return [
        {"actual": actual, "predicted": predicted, "count": c[key]}
        for key, actual, predicted in (
            ("tn", "0", "0"),
            ("fp", "0", "1"),
            ("fn", "1", "0"),
            ("tp", "1", "1"),
        )
    ]
