"""evaluate: score test and the labelled production batch; metrics, slices and plot data."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabml import evaluate as ev
from tabml import io
from tabml.config import EvaluateConfig, Params, SchemaConfig
from tabml.errors import DataError
from tabml.fairness import fairness_metrics
from tabml.log import info
from tabml.model import load
from tabml.monitor import SCORE
from tabml.predict import predictions_frame
from tabml.stages.clean import LABELS, PRODUCTION

if TYPE_CHECKING:
    import pandas as pd

PARAMS = ("dataset.schema", "dataset.segments", "evaluate")


def held_out_valid(valid: pd.DataFrame, scores: pd.DataFrame, id_col: str, source: str) -> Any:
    """The valid split's held-out scores, in valid's row order (train wrote them by id)."""
    joined = valid[[id_col]].merge(scores, on=id_col, how="left", validate="one_to_one")
    if len(scores) != len(valid) or joined[SCORE].isna().any():
        raise DataError(
            f"{source}: {len(scores):,} held-out scores do not match the {len(valid):,} rows of "
            "the valid split; they come from another run of train. Run 'dvc repro' to rebuild "
            "both."
        )
    return joined[SCORE].to_numpy("float64")


def run(
    params_file: Path,
    model_dir: Path,
    valid_scores: Path,
    splits_dir: Path,
    production_dir: Path,
    predictions_dir: Path,
    metrics_file: Path,
    slices_file: Path,
    plots_dir: Path,
) -> None:
    params = Params.load(params_file, PARAMS)
    schema: SchemaConfig = params.section("dataset.schema")
    cfg: EvaluateConfig = params.section("evaluate")
    segments: tuple[str, ...] = params.section("dataset.segments")
    target = schema.target.column
    model = load(model_dir)

    valid = io.read_parquet(splits_dir / "valid.parquet")
    test = io.read_parquet(splits_dir / "test.parquet")
    # rounded as metrics.json stores it, so the package labels exactly as evaluate does
    p_valid = held_out_valid(valid, io.read_parquet(valid_scores), schema.id, str(valid_scores))
    chosen = ev.choose_threshold(valid[target].to_numpy("float64"), p_valid, cfg.threshold)
    threshold = float(f"{chosen:.10g}")
    y_test = test[target].to_numpy("float64")
    p_test = model.predict(test)
    metrics: dict[str, Any] = {
        "threshold": threshold,
        "test": ev.score_metrics(y_test, p_test, threshold, cfg),
    }
    info(
        f"evaluate: threshold {threshold:.4f} ({cfg.threshold.rule} on valid); "
        f"test ROC AUC {metrics['test']['roc_auc']:.4f}"
    )

    predictions = {
        "test": predictions_frame(test[schema.id].to_numpy(), p_test, threshold, schema.id)
    }
    prod = io.read_parquet(production_dir / PRODUCTION)
    if len(prod):
        p_prod = model.predict(prod)
        predictions["production"] = predictions_frame(
            prod[schema.id].to_numpy(), p_prod, threshold, schema.id
        )
        labels = io.read_parquet(production_dir / LABELS)
        if len(labels):
            joined = prod[[schema.id]].assign(score=p_prod).merge(labels, on=schema.id)
            metrics["production"] = ev.score_metrics(
                joined[target].to_numpy("float64"), joined["score"].to_numpy(), threshold, cfg
            )
            info(
                f"evaluate: production ROC AUC {metrics['production']['roc_auc']:.4f} on "
                f"{len(joined):,} labelled rows"
            )

    slices = {
        "test": ev.slice_metrics(test, y_test, p_test, segments, threshold, cfg.min_slice_rows)
    }
    measured = tuple(dict.fromkeys([*segments, *schema.protected]))
    if measured:
        metrics["fairness"] = fairness_metrics(
            test, y_test, p_test, measured, threshold, cfg.min_slice_rows
        )
    importance = sorted(model.importance().items(), key=lambda kv: (-kv[1], kv[0]))

    with io.atomic_dir(predictions_dir) as tmp:
        for name, frame in predictions.items():
            io.write_parquet(tmp / f"{name}.parquet", frame)
    with io.atomic_dir(plots_dir) as tmp:
        io.write_json(tmp / "roc.json", {"roc": ev.roc_points(y_test, p_test)})
        io.write_json(tmp / "precision_recall.json", {"pr": ev.pr_points(y_test, p_test)})
        io.write_json(
            tmp / "calibration.json",
            {"calibration": ev.calibration_bins(y_test, p_test, cfg.calibration_bins)},
        )
        io.write_json(
            tmp / "confusion.json", {"confusion": ev.confusion_rows(y_test, p_test, threshold)}
        )
        io.write_json(
            tmp / "importance.json",
            {"importance": [{"feature": f, "importance": v} for f, v in importance]},
        )
    io.write_json(slices_file, slices)
    io.write_json(metrics_file, metrics)
    info(f"evaluate: wrote {metrics_file}, {slices_file}, {plots_dir}/, {predictions_dir}/")
