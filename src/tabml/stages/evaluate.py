"""evaluate: score test and the labelled production batch; metrics, slices and plot data.

The logic is `tabml.learning.evaluate.evaluate`; this shell reads the model and the frames and
writes
what it returns. Test and production are scored a row group at a time, here or, with
compute=dask, on the cluster's workers (`tabml.compute.distributed.score_files`, the same scores),
and this process reads only their id, target and segment columns: memory holds the scores
and those columns, not the features.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tabml.core import io
from tabml.core.catalog import Interim, Splits
from tabml.core.config import DaskCompute, EvaluateParams
from tabml.core.log import info
from tabml.learning.evaluate import evaluate, held_out_valid
from tabml.learning.model import load

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
    schema = params.dataset_schema
    model = load(model_dir)
    # valid gives only its labels, for the threshold on train's held-out scores
    valid = io.read_parquet(splits_dir / Splits.VALID, [schema.id, schema.target.column])
    scores = io.read_parquet(valid_scores)
    test_file, production_file = splits_dir / Splits.TEST, production_dir / Interim.PRODUCTION
    measured = [*params.segments, *schema.protected]
    # scored apart, so this process needs no feature but the segments
    test = io.read_parquet(
        test_file, list(dict.fromkeys([schema.id, schema.target.column, *measured]))
    )
    production = io.read_parquet(production_file, [schema.id])
    if isinstance(params.compute, DaskCompute):
        from tabml.compute.distributed import score_files

        # the workers read them (a shared volume, or copies in the object store: for_workers)
        paths = {"test": str(test_file), "production": str(production_file)}
        scored = score_files(model, paths, params.compute)
    else:
        scored = {
            name: _scores(io.map_row_groups(path, model.predict, model.preprocessor.features))
            for name, path in (("test", test_file), ("production", production_file))
        }
    result = evaluate(
        model,
        valid,
        held_out_valid(valid, scores, schema.id, str(valid_scores)),
        test,
        production,
        io.read_parquet(production_dir / Interim.LABELS),
        params,
        scored,
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


def _scores(parts: list[Any]) -> Any:
    import numpy as np

    return np.concatenate(parts) if parts else np.empty(0)
