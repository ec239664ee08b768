"""train: fit the model on train (early-stopped on valid), log its curves, build the reference.

The monitoring reference is the whole development set (train, valid and test) scored
out-of-fold, with the final model's settings and number of rounds; see tabml.monitor.
"""

from __future__ import annotations

from pathlib import Path

from tabml import io
from tabml.config import Params
from tabml.log import info
from tabml.model import History, fit, out_of_fold, save
from tabml.monitor import reference_frame

PARAMS = ("seed", "dataset.schema", "model", "monitor.reference")


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


def run(
    params_file: Path, input_dir: Path, model_dir: Path, live_dir: Path, reference: Path
) -> None:
    import pandas as pd

    params = Params.load(params_file, PARAMS)
    cfg = params.section("model")
    schema = params.section("dataset.schema")
    seed = params.section("seed")
    train = io.read_parquet(input_dir / "train.parquet")
    valid = io.read_parquet(input_dir / "valid.parquet")
    test = io.read_parquet(input_dir / "test.parquet")
    info(f"train: fitting {cfg.name} on {len(train):,} rows, early stopping on {len(valid):,}")
    model, history = fit(train, valid, schema, cfg, seed)
    info(f"train: best iteration {history.best_iteration}")

    ref_cfg = params.section("monitor.reference")
    development = pd.concat([train, valid, test], ignore_index=True)
    info(
        f"train: monitoring reference: {len(development):,} development rows scored "
        f"out-of-fold by {ref_cfg.folds} fold models"
    )
    scores = out_of_fold(development, schema, cfg, seed, ref_cfg.folds, history.best_iteration)
    ref = reference_frame(development, schema, scores, ref_cfg.max_rows)

    with io.atomic_dir(model_dir) as tmp:
        save(model, tmp)
    io.write_parquet(reference, ref)
    _log_curves(history, live_dir)
    info(f"train: wrote {model_dir}/, {reference} ({len(ref):,} rows) and {live_dir}/")
