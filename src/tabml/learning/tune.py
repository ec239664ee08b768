"""Hyperparameter search for LightGBM (`tabml tune`): an Optuna study on development data only.

- **What is scored**: ROC AUC on the valid split, early-stopped as training does; or, with
  `tune.objective: cv`, the mean over time-ordered folds of train + valid, each validated on
  rows later than those it was fitted on. Test and the production labels are never read: the
  shell hands this module the train and valid splits and nothing else.
- **Reproducible**: Optuna's TPE sampler seeded by `seed`, one trial at a time, LightGBM in its
  deterministic mode with fixed threads, so the same study gives the same trials and the same
  best trial on a rerun (with a trial budget; a time budget cuts the study where the clock
  says).
- **Pruning**: every `REPORT_EVERY` rounds a trial reports its valid ROC AUC; Optuna's median
  pruner stops one that is below the median of earlier trials at that round (after
  `prune_after_trials` trials), as optuna-integration's LightGBM callback does.
- The preprocessing does not depend on the searched settings: it is fitted once per fold and
  the LightGBM datasets are built once, then reused by every trial.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabml.core.config import LightGBMConfig, ModelConfig, SchemaConfig, TuneConfig
from tabml.core.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

# the valid ROC AUC is reported to the pruner every this many rounds
REPORT_EVERY = 25
# LightGBM settings that are whole numbers
_INTEGER = {"num_leaves", "min_child_samples", "bagging_freq"}


@dataclass
class Trial:
    """One finished (or pruned) trial, as the trials table lists it."""

    number: int
    state: str  # complete | pruned
    value: float | None  # ROC AUC
    best_iteration: int | None
    seconds: float
    params: dict[str, Any]


@dataclass
class Result:
    trials: list[Trial]
    best: Trial
    importances: dict[str, float]


def folds(
    train: pd.DataFrame, valid: pd.DataFrame, tune: TuneConfig, schema: SchemaConfig
) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """The (fit, validate) pairs the objective averages over: train and valid as split, or
    `cv_folds` expanding windows of train + valid in time order (split's order: the time stamp,
    then the id)."""
    import pandas as pd

    if tune.objective == "valid":
        return [(train, valid)]
    keys = [schema.timestamp, schema.id] if schema.timestamp else [schema.id]
    rows = pd.concat([train, valid], ignore_index=True).sort_values(keys, kind="stable")
    rows = rows.reset_index(drop=True)
    edges = [round(len(rows) * i / (tune.cv_folds + 1)) for i in range(tune.cv_folds + 2)]
    return [
        (rows.iloc[: edges[k + 1]], rows.iloc[edges[k + 1] : edges[k + 2]])
        for k in range(tune.cv_folds)
    ]


def _suggest(trial: Any, tune: TuneConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, r in tune.space.items():
        if name in _INTEGER:
            out[name] = trial.suggest_int(name, math.ceil(r.low), math.floor(r.high), log=r.log)
        else:
            out[name] = trial.suggest_float(name, r.low, r.high, log=r.log)
    return out


def search(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    schema: SchemaConfig,
    model: ModelConfig,
    tune: TuneConfig,
    seed: int,
    trials: int | None = None,
    timeout_minutes: float | None = None,
    on_trial: Callable[[Trial, Trial | None, int], None] | None = None,
) -> Result:
    """Run the study; `trials` and `timeout_minutes` override the config's budget. `on_trial`
    is called after each trial with it, the best so far and the trial budget."""
    import lightgbm as lgb
    import numpy as np
    import optuna

    from tabml.learning.features import fit as fit_preprocessor
    from tabml.learning.model import _lgb_columns, _lgb_params

    if not isinstance(model, LightGBMConfig):
        raise ConfigError(
            f"tabml tune searches LightGBM's settings; the model is '{model.name}'. "
            "Run it with model=lightgbm (tabml params model=lightgbm, or --model lightgbm)"
        )
    budget = trials or tune.trials
    timeout = timeout_minutes if timeout_minutes is not None else tune.timeout_minutes
    target = schema.target.column
    datasets = []
    for fit_rows, eval_rows in folds(train, valid, tune, schema):
        prep = fit_preprocessor(fit_rows, schema, model.impute == "median", model.clip_quantiles)
        names, cats = _lgb_columns(prep)
        dfit = lgb.Dataset(
            prep.transform(fit_rows, "codes"),
            fit_rows[target].to_numpy(dtype="float64"),
            feature_name=names,
            categorical_feature=cats,
            free_raw_data=False,
            # built once for every trial: LightGBM must not drop features that one trial's
            # min_child_samples cannot split but another's can (it refuses the reuse otherwise)
            params={"verbosity": -1, "feature_pre_filter": False},
        )
        deval = lgb.Dataset(
            prep.transform(eval_rows, "codes"),
            eval_rows[target].to_numpy(dtype="float64"),
            reference=dfit,
            free_raw_data=False,
            params={"verbosity": -1, "feature_pre_filter": False},
        )
        datasets.append((dfit, deval))

    done: list[Trial] = []

    def objective(trial: optuna.Trial) -> float:
        chosen = _suggest(trial, tune)
        params = {**_lgb_params(model.model_copy(update=chosen), seed), "metric": "auc"}
        scores, rounds = [], []
        start = time.monotonic()
        for k, (dfit, deval) in enumerate(datasets):
            callbacks: list[Callable[..., Any]] = [
                lgb.early_stopping(model.early_stopping_rounds, verbose=False)
            ]
            if len(datasets) == 1:
                callbacks.append(_pruning(trial))
            booster = lgb.train(
                params, dfit, num_boost_round=model.num_boost_round,
                valid_sets=[deval], valid_names=["valid"], callbacks=callbacks,
            )  # fmt: skip
            scores.append(float(booster.best_score["valid"]["auc"]))
            rounds.append(int(booster.best_iteration or booster.current_iteration()))
            if len(datasets) > 1:  # cross-validation: prune between folds
                trial.report(float(np.mean(scores)), step=k)
                if trial.should_prune():
                    raise optuna.TrialPruned()
        trial.set_user_attr("best_iteration", int(np.median(rounds)))
        trial.set_user_attr("seconds", time.monotonic() - start)
        return float(np.mean(scores))

    def report(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        row = _row(frozen)
        done.append(row)
        best = _best(done)
        if on_trial is not None:
            on_trial(row, best, budget)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=tune.prune_after_trials, n_warmup_steps=4 * REPORT_EVERY
        ),
    )
    study.optimize(
        objective,
        n_trials=budget,
        timeout=None if timeout is None else timeout * 60,
        callbacks=[report],
        catch=(),
    )
    best = _best(done)
    if best is None:
        raise ConfigError("tabml tune: no trial finished within the budget; give it more time")
    return Result(done, best, importances(study, seed))


def _pruning(trial: Any) -> Callable[[Any], None]:
    """A LightGBM callback: report the valid ROC AUC every REPORT_EVERY rounds, and stop the
    trial when the pruner says so."""
    import optuna

    def callback(env: Any) -> None:
        step = env.iteration + 1
        if step % REPORT_EVERY:
            return
        for data, metric, value, *_ in env.evaluation_result_list:
            if data == "valid" and metric == "auc":
                trial.report(float(value), step=step)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at round {step}")

    return callback


def _row(frozen: Any) -> Trial:
    import optuna

    complete = frozen.state == optuna.trial.TrialState.COMPLETE
    if complete:
        value = frozen.value
    else:  # pruned: its last reported ROC AUC
        steps = sorted(frozen.intermediate_values)
        value = frozen.intermediate_values[steps[-1]] if steps else None
    seconds = (
        (frozen.datetime_complete - frozen.datetime_start).total_seconds()
        if frozen.datetime_complete and frozen.datetime_start
        else 0.0
    )
    return Trial(
        number=frozen.number,
        state="complete" if complete else "pruned",
        value=float(value) if value is not None else None,
        best_iteration=frozen.user_attrs.get("best_iteration"),
        seconds=round(seconds, 2),
        params=dict(frozen.params),
    )


def _best(done: list[Trial]) -> Trial | None:
    complete = [t for t in done if t.state == "complete" and t.value is not None]
    # the earliest of equal values: the same on every rerun
    return max(complete, key=lambda t: (t.value, -t.number)) if complete else None


def importances(study: Any, seed: int) -> dict[str, float]:
    """Each setting's share of the variation in ROC AUC across trials (fANOVA, seeded)."""
    import optuna

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) < 2:
        return {}
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    found = optuna.importance.get_param_importances(study, evaluator=evaluator)
    return {k: float(v) for k, v in found.items()}


def proposal(dataset: str, base_option: str, result: Result, tune: TuneConfig) -> str:
    """conf/model/<dataset>_tuned.yaml: the base option with the best trial's settings."""
    import yaml

    best = result.best
    values = yaml.safe_dump(
        {k: best.params[k] for k in tune.space}, sort_keys=False, default_flow_style=False
    )
    return (
        f"# Proposed by `tabml tune` for {dataset}: trial {best.number} of {len(result.trials)}, "
        f"{tune.objective} ROC AUC {best.value:.5f}\n"
        f"# (best iteration {best.best_iteration}). Use it with\n"
        f"# `tabml params model={dataset}_tuned`, or select it in the data set's file;\n"
        "# reports/tuning/ has the study.\n"
        f"defaults:\n  - {base_option}\n  - _self_\n" + values
    )
