"""train: fit the model on train (early-stopped on valid), log its curves, build the reference.

With `model.refit` the early-stopped LightGBM model is trained again on train + valid for its
best number of rounds. Either way the valid split's held-out scores (from the model before any
refit) are written for evaluate, which chooses the decision threshold on them.

The monitoring reference is the development set (train, valid and test; its latest
`monitor.reference.max_rows` rows) scored out-of-fold, with the final model's settings and
number of rounds; see tabml.monitor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tabml import io
from tabml.config import LightGBMDaskConfig, Params
from tabml.log import info
from tabml.model import History, fit, out_of_fold, save
from tabml.monitor import SCORE, latest_rows, reference_frame

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
        live.summary["refit_rows"] = history.refit_rows


def _reference_rows(input_dir: Path, frames: dict[str, Any], schema: Any, max_rows: int) -> Any:
    """The latest development rows, reading as few splits as needed (latest split first)."""
    import pandas as pd

    parts = []
    for name in ("test", "valid", "train"):
        frame = frames.get(name)
        parts.append(io.read_parquet(input_dir / f"{name}.parquet") if frame is None else frame)
        if sum(len(p) for p in parts) >= max_rows:
            break
    return latest_rows(pd.concat(parts, ignore_index=True), schema, max_rows)


def run(
    params_file: Path,
    input_dir: Path,
    model_dir: Path,
    live_dir: Path,
    reference: Path,
    valid_scores: Path,
) -> None:
    params = Params.load(params_file, PARAMS)
    cfg = params.section("model")
    schema = params.section("dataset.schema")
    seed = params.section("seed")
    frames: dict[str, Any] = {}
    if isinstance(cfg, LightGBMDaskConfig):
        from tabml.distributed import fit_dask

        # read by the Dask workers, never all in this process
        model, history = fit_dask(
            str(input_dir / "train.parquet"), str(input_dir / "valid.parquet"), schema, cfg, seed
        )
    else:
        frames = {
            "train": io.read_parquet(input_dir / "train.parquet"),
            "valid": io.read_parquet(input_dir / "valid.parquet"),
        }
        how = "early stopping on" if cfg.name == "lightgbm" else "validating on"
        info(
            f"train: fitting {cfg.name} on {len(frames['train']):,} rows, {how} "
            f"{len(frames['valid']):,}"
        )
        model, history = fit(frames["train"], frames["valid"], schema, cfg, seed)
    if cfg.name == "lightgbm":
        info(f"train: best iteration {history.best_iteration} (early stopping on valid)")
    elif cfg.name == "lightgbm_dask":
        info(f"train: {history.best_iteration} rounds (no early stopping on Dask)")
    else:
        valid_auc = history.curves["valid"]["auc"][-1]
        info(f"train: fitted {cfg.name}; valid ROC AUC {valid_auc:.4f}")
    valid = frames["valid"] if "valid" in frames else io.read_parquet(input_dir / "valid.parquet")
    if history.refit_rows:
        info(
            f"train: refitted on train + valid ({history.refit_rows:,} rows) for "
            f"{history.best_iteration} rounds (model.refit)"
        )
    held_out = valid[[schema.id]].assign(
        **{SCORE: model.predict(valid) if history.valid_scores is None else history.valid_scores}
    )

    ref_cfg = params.section("monitor.reference")
    rows = _reference_rows(input_dir, frames, schema, ref_cfg.max_rows)
    info(
        f"train: monitoring reference: {len(rows):,} development rows scored "
        f"out-of-fold by {ref_cfg.folds} fold models"
    )
    scores = out_of_fold(rows, schema, cfg, seed, ref_cfg.folds, history.best_iteration)
    ref = reference_frame(rows, schema, scores)

    with io.atomic_dir(model_dir) as tmp:
        save(model, tmp)
    io.write_parquet(reference, ref)
    io.write_parquet(valid_scores, held_out)
    _log_curves(history, live_dir)
    info(
        f"train: wrote {model_dir}/, {reference} ({len(ref):,} rows), {valid_scores} and "
        f"{live_dir}/"
    )
