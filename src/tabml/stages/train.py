"""train: fit the model on train (early-stopped on valid), log its curves, build the reference.

The logic is `tabml.learning.model.train`; this shell reads the splits (with compute=dask it hands
the Dask workers the train file's path instead: each rank reads its own rows), and writes the
model, the valid split's held-out scores, the monitoring reference and the dvclive curves.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tabml.core import io
from tabml.core.catalog import Splits
from tabml.core.config import DaskCompute, LightGBMConfig, SchemaConfig, TrainParams
from tabml.core.log import info
from tabml.learning.model import History, Model, save, train
from tabml.monitoring.monitor import latest_rows

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from tabml.learning.features import Preprocessor
    from tabml.learning.lgbm_data import Blocks

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
    schema = params.dataset_schema
    # the splits this process holds whole, which the reference may also take its rows from
    whole: dict[str, pd.DataFrame] = {}
    fitted = None
    if isinstance(params.compute, DaskCompute) and isinstance(params.model, LightGBMConfig):
        from tabml.compute.distributed import fit_dask

        valid = whole["valid"] = io.read_parquet(input_dir / Splits.VALID)
        # train is read by the ranks, each only its own rows, never all in this process
        fitted = fit_dask(
            # the ranks read them (a shared volume, or copies in the object store: for_workers)
            str(input_dir / Splits.TRAIN),
            str(input_dir / Splits.VALID),
            valid,
            schema,
            params.model,
            params.compute,
            params.seed,
        )
    elif isinstance(params.model, LightGBMConfig):
        # from the files, never as frames: valid gives only its ids (for its held-out scores)
        valid = io.read_parquet(input_dir / Splits.VALID, [schema.id])
        fitted = _fit_lightgbm(input_dir, schema, params.model, params.seed)
    else:
        valid = whole["valid"] = io.read_parquet(input_dir / Splits.VALID)
        whole["train"] = io.read_parquet(input_dir / Splits.TRAIN)
    latest = _latest_rows(input_dir, whole, schema, params.reference.max_rows)
    trained = train(whole.get("train"), valid, latest, params, fitted)

    with io.atomic_dir(model_dir) as tmp:
        save(trained.model, tmp)
    io.write_parquet(reference, trained.reference)
    io.write_parquet(valid_scores, trained.valid_scores)
    _log_curves(trained.history, live_dir)
    info(
        f"train: wrote {model_dir}/, {reference} ({len(trained.reference):,} rows), "
        f"{valid_scores} and {live_dir}/"
    )


def _fit_lightgbm(
    input_dir: Path, schema: SchemaConfig, cfg: LightGBMConfig, seed: int
) -> tuple[Model, History]:
    """LightGBM on the train and valid files, as `tabml.learning.model.fit` would fit it on their
    frames
    (the same bytes): the preprocessor fitted a column of train at a time, then LightGBM reads
    the rows a row group at a time (`fit_lightgbm_blocks`)."""
    from tabml.learning.features import fit_columns
    from tabml.learning.model import fit_lightgbm_blocks

    paths = [input_dir / Splits.TRAIN, input_dir / Splits.VALID]
    prep = fit_columns(
        lambda c: io.read_parquet(paths[0], [c])[c],
        schema, cfg.impute == "median", cfg.clip_quantiles,
    )  # fmt: skip
    train, valid = (_file_blocks(p, prep, schema.target.column) for p in paths)
    info(f"train: fitting lightgbm on {len(train):,} rows, early stopping on {len(valid):,}")
    return fit_lightgbm_blocks(prep, train, valid, cfg, seed)


def _file_blocks(path: Path, prep: Preprocessor, target: str) -> Blocks:
    """A Parquet file's rows as LightGBM's blocks: its row groups, read and encoded when
    LightGBM asks for them."""
    from tabml.learning.lgbm_data import Blocks

    def encode(group: int, rows: np.ndarray | None) -> np.ndarray:
        return prep.transform(io.read_row_group(path, group, prep.features, rows), "codes")

    def labels() -> np.ndarray:
        # float32, LightGBM's own type for labels (0 and 1 exactly): no conversion copy
        return io.read_parquet(path, [target])[target].to_numpy(dtype="float32")

    return Blocks(io.row_group_sizes(path), encode, labels)


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
