"""Evaluation: the evaluate stage's logic, from frames to an `Evaluation`: metrics overall and
per slice, the decision threshold, fairness and the data behind the plots. The metric
functions themselves are `learning.metrics`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabml.core.catalog import Plots, Predictions
from tabml.core.config import EvaluateConfig, EvaluateParams
from tabml.core.errors import DataError
from tabml.core.log import info
from tabml.learning.metrics import (
    calibration_bins,
    choose_threshold,
    confusion_rows,
    pr_points,
    roc_points,
    score_metrics,
    slice_metrics,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from tabml.learning.model import Model


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
