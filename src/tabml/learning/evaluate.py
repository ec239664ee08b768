"""Evaluation: metrics, the decision threshold, slices and the data behind the plots.

`evaluate()` is the evaluate stage's logic, from frames to an `Evaluation`.

The metrics are plain NumPy (the unit tests hold them equal to scikit-learn's), so the evaluate
stage does not pay for importing scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabml.core.catalog import Plots, Predictions
from tabml.core.config import EvaluateConfig, EvaluateParams, ThresholdRule
from tabml.core.errors import DataError
from tabml.core.log import info

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from tabml.learning.model import Model

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


@dataclass(frozen=True)
class Evaluation:
    """What evaluate produces: metrics.json, slices.json, the scored sets and the plot data
    (these two by their file names in data/predictions and reports/plots)."""

    metrics: dict[str, Any]
    slices: dict[str, Any]
    predictions: dict[str, pd.DataFrame]
    plots: dict[str, Any]


def held_out_valid(valid: pd.DataFrame, scores: pd.DataFrame, id_col: str, source: str) -> Any:
    """The valid split's held-out scores, in valid's row order (train wrote them by id)."""
    from tabml.monitoring.monitor import SCORE

    joined = valid[[id_col]].merge(scores, on=id_col, how="left", validate="one_to_one")
    if len(scores) != len(valid) or joined[SCORE].isna().any():
        raise DataError(
            f"{source}: {len(scores):,} held-out scores do not match the {len(valid):,} rows of "
            "the valid split; they come from another run of train. Run 'dvc repro' to rebuild "
            "both."
        )
    return joined[SCORE].to_numpy("float64")


def evaluate(
    model: Model,
    valid: pd.DataFrame,
    valid_scores: np.ndarray,
    test: pd.DataFrame,
    production: pd.DataFrame,
    production_labels: pd.DataFrame,
    params: EvaluateParams,
    scores: dict[str, np.ndarray] | None = None,
) -> Evaluation:
    """Choose the threshold on valid's held-out scores; score test and the production batch;
    metrics (and production's where it has labels), slices, fairness and plot data.

    `scores`: test's and production's scores computed elsewhere (compute=dask scores them on
    the cluster), in their rows' order; the frames then need no feature but the segments."""
    from tabml.governance.fairness import fairness_metrics
    from tabml.learning.predict import predictions_frame

    schema, cfg, segments = params.dataset_schema, params.evaluate, params.segments
    target = schema.target.column
    chosen = choose_threshold(valid[target].to_numpy("float64"), valid_scores, cfg.threshold)
    # rounded as metrics.json stores it, so the package labels exactly as evaluate does
    threshold = float(f"{chosen:.10g}")
    y_test = test[target].to_numpy("float64")
    p_test = scores["test"] if scores is not None else model.predict(test)
    metrics: dict[str, Any] = {
        "threshold": threshold,
        "test": score_metrics(y_test, p_test, threshold, cfg),
    }
    info(
        f"evaluate: threshold {threshold:.4f} ({cfg.threshold.rule} on valid); "
        f"test ROC AUC {metrics['test']['roc_auc']:.4f}"
    )
    predictions = {
        Predictions.TEST: predictions_frame(
            test[schema.id].to_numpy(), p_test, threshold, schema.id
        )
    }
    if len(production):
        p_prod = scores["production"] if scores is not None else model.predict(production)
        predictions[Predictions.PRODUCTION] = predictions_frame(
            production[schema.id].to_numpy(), p_prod, threshold, schema.id
        )
        if len(production_labels):
            joined = (
                production[[schema.id]].assign(score=p_prod).merge(production_labels, on=schema.id)
            )
            metrics["production"] = score_metrics(
                joined[target].to_numpy("float64"), joined["score"].to_numpy(), threshold, cfg
            )
            info(
                f"evaluate: production ROC AUC {metrics['production']['roc_auc']:.4f} on "
                f"{len(joined):,} labelled rows"
            )
    measured = tuple(dict.fromkeys([*segments, *schema.protected]))
    if measured:
        metrics["fairness"] = fairness_metrics(
            test, y_test, p_test, measured, threshold, cfg.min_slice_rows
        )
    slices = {"test": slice_metrics(test, y_test, p_test, segments, threshold, cfg.min_slice_rows)}
    return Evaluation(metrics, slices, predictions, _plots(model, y_test, p_test, threshold, cfg))


def _plots(
    model: Model, y: np.ndarray, p: np.ndarray, threshold: float, cfg: EvaluateConfig
) -> dict[str, Any]:
    """The plot data evaluate's `plots` in dvc.yaml draw, by file name."""
    importance = sorted(model.importance().items(), key=lambda kv: (-kv[1], kv[0]))
    return {
        Plots.ROC: {"roc": roc_points(y, p)},
        Plots.PRECISION_RECALL: {"pr": pr_points(y, p)},
        Plots.CALIBRATION: {"calibration": calibration_bins(y, p, cfg.calibration_bins)},
        Plots.CONFUSION: {"confusion": confusion_rows(y, p, threshold)},
        Plots.IMPORTANCE: {"importance": [{"feature": f, "importance": v} for f, v in importance]},
    }
