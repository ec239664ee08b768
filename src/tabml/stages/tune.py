"""tune: the shell of `tabml tune`: read the train and valid splits (never test, never the
production labels), run the study (tabml.learning.tune), write reports/tuning/ and the proposed
model
option conf/model/<dataset>_tuned.yaml."""

from __future__ import annotations

import time
from pathlib import Path

from tabml.core import io
from tabml.core.catalog import Splits
from tabml.core.config import TuneParams
from tabml.core.log import info
from tabml.learning import tune as core
from tabml.reporting import plots

TRIALS = "trials.csv"
SUMMARY = "summary.json"
HISTORY = "history.png"
IMPORTANCE = "importance.png"


def run(
    params_file: Path,
    input_dir: Path,
    output_dir: Path,
    config_dir: Path,
    trials: int | None,
    timeout_minutes: float | None,
) -> core.Result:
    params = TuneParams.load(params_file)
    tune = params.tune
    # the only files read: the study cannot see test or the production labels
    train = io.read_parquet(input_dir / Splits.TRAIN)
    valid = io.read_parquet(input_dir / Splits.VALID)
    budget = trials or tune.trials
    limit = timeout_minutes if timeout_minutes is not None else tune.timeout_minutes
    info(
        f"tune: {budget} trials{f' or {limit:g} min' if limit else ''}, {tune.objective} ROC AUC "
        f"on {len(train):,} train and {len(valid):,} valid rows; settings: "
        f"{', '.join(tune.space)} (seed {params.seed})"
    )
    start = time.monotonic()

    def progress(trial: core.Trial, best: core.Trial | None, total: int) -> None:
        elapsed = time.monotonic() - start
        left = elapsed / (trial.number + 1) * (total - trial.number - 1)
        value = "n/a" if trial.value is None else f"{trial.value:.5f}"
        best_text = f"{best.value:.5f} (trial {best.number})" if best and best.value else "none"
        info(
            f"tune: trial {trial.number + 1}/{total} {trial.state}: ROC AUC {value}; best "
            f"{best_text}; {elapsed:.0f} s, about {left:.0f} s left"
        )

    result = core.search(
        train, valid, params.dataset_schema, params.model, tune, params.seed,
        trials=trials, timeout_minutes=timeout_minutes, on_trial=progress,
    )  # fmt: skip
    output_dir.mkdir(parents=True, exist_ok=True)
    _write_trials(output_dir / TRIALS, result, list(tune.space))
    io.write_json(
        output_dir / SUMMARY,
        {
            "dataset": params.name,
            "objective": tune.objective,
            "seed": params.seed,
            "sampler": "TPE",
            "trials": len(result.trials),
            "pruned": sum(t.state == "pruned" for t in result.trials),
            "best": {
                "trial": result.best.number,
                "roc_auc": result.best.value,
                "best_iteration": result.best.best_iteration,
                "params": result.best.params,
            },
            "importances": result.importances,
            "rows": {"train": len(train), "valid": len(valid)},
        },
    )
    plots.tuning_history(result.trials, output_dir / HISTORY)
    plots.tuning_importance(result.importances, output_dir / IMPORTANCE)
    option = f"{params.name}_tuned"
    conf_file = config_dir / "model" / f"{option}.yaml"
    io.write_text(conf_file, core.proposal(params.name, params.model.name, result, tune))
    info(
        f"tune: best trial {result.best.number}: ROC AUC {result.best.value:.5f}; wrote "
        f"{output_dir}/ and {conf_file}. Next: 'tabml params model={option}', 'dvc repro', "
        "then compare (tabml exp compare) and commit conf/ if it is better"
    )
    return result


def _write_trials(path: Path, result: core.Result, names: list[str]) -> None:
    import csv
    import io as _io

    out = _io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["trial", "state", "roc_auc", "best_iteration", "seconds", *names])
    for t in result.trials:
        writer.writerow(
            [t.number, t.state, "" if t.value is None else f"{t.value:.6f}",
             t.best_iteration or "", t.seconds, *(t.params.get(n, "") for n in names)]
        )  # fmt: skip
    io.write_text(path, out.getvalue())
