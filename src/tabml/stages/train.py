"""train: fit the model on train (early-stopped on valid), log its curves, build the reference.

The logic is `tabml.model.train`; this shell reads the splits (with compute=dask it hands
the Dask workers the train file's path instead: each rank reads its own rows), and writes the
model, the valid split's held-out scores, the monitoring reference and the dvclive curves.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tabml import io
from tabml.catalog import Splits
from tabml.config import DaskCompute, LightGBMConfig, SchemaConfig, TrainParams
from tabml.log import info
from tabml.model import History, save, train
from tabml.monitor import latest_rows

if TYPE_CHECKING:
    import pandas as pd

PARAMS = TrainParams.param_keys()


def run(
    params_file: Path,
    input_dir: Path,
    model_dir: Path,
    live_dir: Path,
    reference: Path,
    valid_scores: Path,
) -> None:
    params = TrainParams.load(params_file)
    frames: dict[str, pd.DataFrame] = {}
    fitted = None
    frames["valid"] = io.read_parquet(input_dir / Splits.VALID)
    if isinstance(params.compute, DaskCompute) and isinstance(params.model, LightGBMConfig):
        from tabml.distributed import fit_dask

        # train is read by the ranks, each only its own rows, never all in this process
        fitted = fit_dask(
            # absolute: the workers run elsewhere (a shared volume mounts it at the same path)
            str((input_dir / Splits.TRAIN).resolve()),
            str((input_dir / Splits.VALID).resolve()),
            frames["valid"],
            params.dataset_schema,
            params.model,
            params.compute,
            params.seed,
        )
    else:
        frames["train"] = io.read_parquet(input_dir / Splits.TRAIN)
    latest = _latest_rows(input_dir, frames, params.dataset_schema, params.reference.max_rows)
    trained = train(frames.get("train"), frames["valid"], latest, params, fitted)

    with io.atomic_dir(model_dir) as tmp:
        save(trained.model, tmp)
    io.write_parquet(reference, trained.reference)
    io.write_parquet(valid_scores, trained.valid_scores)
    _log_curves(trained.history, live_dir)
    info(
        f"train: wrote {model_dir}/, {reference} ({len(trained.reference):,} rows), "
        f"{valid_scores} and {live_dir}/"
    )


def _latest_rows(
    input_dir: Path, frames: dict[str, pd.DataFrame], schema: SchemaConfig, max_rows: int
) -> pd.DataFrame:
    """The latest development rows, reading as few splits as needed (latest split first)."""
    import pandas as pd

    parts = []
    for name in reversed(Splits.NAMES):
        frame = frames.get(name)
        parts.append(io.read_parquet(input_dir / Splits.file(name)) if frame is None else frame)
        if sum(len(p) for p in parts) >= max_rows:
            break
    return latest_rows(pd.concat(parts, ignore_index=True), schema, max_rows)


def _log_curves(history: History, live_dir: Path) -> None:
    """Write the training curves with dvclive (no timestamps, so reruns are byte-identical)."""
    from dvclive import Live

    with (
        io.atomic_dir(live_dir) as tmp,
        Live(str(tmp), save_dvc_exp=False, dvcyaml=None, report=None) as live,
    ):
        splits = list(history.curves)
        steps = max(len(m) for s in splits for m in history.curves[s].values())
        for step in range(steps):
            for split_name in splits:
                for metric, values in history.curves[split_name].items():
                    if step < len(values):
                        live.log_metric(f"{split_name}/{metric}", values[step])
            live.next_step()
        live.summary["best_iteration"] = history.best_iteration
        live.summary["refit_rows"] = history.refit_rows
        if history.workers is not None:
            live.summary["dask_workers"] = history.workers
