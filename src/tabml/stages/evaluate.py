"""evaluate: score test and the labelled production batch; metrics, slices and plot data.

The logic is `tabml.evaluate.evaluate`; this shell reads the model and the frames and writes
what it returns.
"""

from __future__ import annotations

from pathlib import Path

from tabml import io
from tabml.catalog import Interim, Splits
from tabml.config import EvaluateParams
from tabml.evaluate import evaluate, held_out_valid
from tabml.log import info
from tabml.model import load

PARAMS = EvaluateParams.param_keys()


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
    params = EvaluateParams.load(params_file)
    valid = io.read_parquet(splits_dir / Splits.VALID)
    scores = io.read_parquet(valid_scores)
    result = evaluate(
        load(model_dir),
        valid,
        held_out_valid(valid, scores, params.dataset_schema.id, str(valid_scores)),
        io.read_parquet(splits_dir / Splits.TEST),
        io.read_parquet(production_dir / Interim.PRODUCTION),
        io.read_parquet(production_dir / Interim.LABELS),
        params,
    )
    with io.atomic_dir(predictions_dir) as tmp:
        for name, frame in result.predictions.items():
            io.write_parquet(tmp / name, frame)
    with io.atomic_dir(plots_dir) as tmp:
        for name, data in result.plots.items():
            io.write_json(tmp / name, data)
    io.write_json(slices_file, result.slices)
    io.write_json(metrics_file, result.metrics)
    info(f"evaluate: wrote {metrics_file}, {slices_file}, {plots_dir}/, {predictions_dir}/")
