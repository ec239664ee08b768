"""train: fit preprocessing and the model on train, early-stopped on valid; log curves."""

from __future__ import annotations

from pathlib import Path

from tabml import io
from tabml.config import Params
from tabml.log import info
from tabml.model import History, fit, save

PARAMS = ("seed", "dataset.schema", "model")


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


def run(params_file: Path, input_dir: Path, model_dir: Path, live_dir: Path) -> None:
    params = Params.load(params_file, PARAMS)
    cfg = params.section("model")
    train = io.read_parquet(input_dir / "train.parquet")
    valid = io.read_parquet(input_dir / "valid.parquet")
    info(f"train: fitting {cfg.name} on {len(train):,} rows, early stopping on {len(valid):,}")
    model, history = fit(
        train, valid, params.section("dataset.schema"), cfg, params.section("seed")
    )
    info(f"train: best iteration {history.best_iteration}")
    with io.atomic_dir(model_dir) as tmp:
        save(model, tmp)
    _log_curves(history, live_dir)
    info(f"train: wrote {model_dir}/ and {live_dir}/")
