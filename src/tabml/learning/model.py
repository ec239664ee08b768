"""Models: LightGBM (the main one) and a logistic-regression baseline, saved without pickle.

A saved model is a folder: `model.json` (kind, preprocessing state and, for the baseline, its
coefficients) plus `model.txt`, LightGBM's own text format, for LightGBM. Loading either
never executes code from the files.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabml.core import io
from tabml.core.catalog import Model as Files
from tabml.core.config import (
    LightGBMConfig,
    LightGBMParams,
    LogRegConfig,
    ModelConfig,
    SchemaConfig,
    TrainParams,
)
from tabml.core.errors import PackageError
from tabml.core.log import info
from tabml.learning.features import Encoding, Preprocessor
from tabml.learning.features import fit as fit_preprocessor
from tabml.monitoring.monitor import SCORE, reference_frame

# a progress line every this many boosting rounds (stderr only: outputs do not change)
PROGRESS_EVERY = 100

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from tabml.learning.lgbm_data import Blocks

MODEL_JSON = Files.SPEC
BOOSTER_TXT = Files.BOOSTER
FORMAT_VERSION = 1


@dataclass
class Model:
    """A fitted model: preprocessing plus either a LightGBM booster or linear coefficients."""

    kind: str
    preprocessor: Preprocessor
    booster: Any = None
    coef: list[float] = field(default_factory=list)
    intercept: float = 0.0
    best_iteration: int = 0

    @property
    def encoding(self) -> Encoding:
        return "codes" if self.kind == "lightgbm" else "linear"

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Positive-class probabilities for an already encoded matrix."""
        import numpy as np

        if self.kind == "lightgbm":
            return np.asarray(self.booster.predict(matrix, num_iteration=self.best_iteration))
        z = matrix @ np.asarray(self.coef) + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-z)))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Positive-class probability for every row of a typed frame."""
        return self.predict_matrix(self.preprocessor.transform(frame, self.encoding))

    def importance(self) -> dict[str, float]:
        """Gain importance (LightGBM) or |coefficient| (baseline), per encoded column."""
        names = self.preprocessor.names(self.encoding)
        if self.kind == "lightgbm":
            gains = self.booster.feature_importance(
                importance_type="gain", iteration=self.best_iteration
            )
            return {n: float(g) for n, g in zip(names, gains, strict=True)}
        return {n: abs(float(c)) for n, c in zip(names, self.coef, strict=True)}


@dataclass(frozen=True)
class History:
    """What fitting leaves besides the model: curves by split and metric, and the refit.

    `valid_scores`: valid's held-out scores, the early-stopped booster's (the threshold is
    chosen on them). With `model.refit` the final booster is trained again on train + valid
    for `best_iteration` rounds, so its own scores on valid are no longer held out. None
    where the fit does not give them (the baseline: its model's own scores are held out).
    """

    curves: dict[str, dict[str, list[float]]]
    best_iteration: int
    refit_rows: int = 0
    valid_scores: np.ndarray | None = None
    # compute=dask: the LightGBM ranks that trained it (the model depends on their number)
    workers: int | None = None


def import_lightgbm_without_sklearn() -> None:
    """Import LightGBM now, skipping its scikit-learn wrapper (about 1.5 s of imports).

    LightGBM imports scikit-learn and SciPy eagerly for `LGBMClassifier`, which tabml never
    uses: it trains and scores `Booster`s. The train and evaluate commands call this first, so
    each of their processes starts faster. Anything in the same process that needs LightGBM's
    scikit-learn classes afterwards (NannyML's domain classifier does) would find them
    missing, so only processes that never import NannyML call it. scikit-learn itself stays
    importable (the logistic-regression baseline uses it).
    """
    import importlib.abc
    import sys

    if "lightgbm" in sys.modules or "sklearn" in sys.modules:
        return

    class _NoSklearn(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
            if name == "sklearn" or name.startswith("sklearn."):
                raise ImportError(f"{name}: not needed by LightGBM's Booster")

    finder = _NoSklearn()
    sys.meta_path.insert(0, finder)
    try:
        import lightgbm  # noqa: F401
    finally:
        sys.meta_path.remove(finder)
        # lightgbm's failed attempt may have left partial entries behind
        for name in [m for m in sys.modules if m == "sklearn" or m.startswith("sklearn.")]:
            del sys.modules[name]


def _lgb_name(name: str) -> str:
    # LightGBM refuses JSON punctuation in feature names
    return re.sub(r'[\[\]{}":,\s]', "_", name)


def _lgb_columns(prep: Preprocessor) -> tuple[list[str], list[str]]:
    names = [_lgb_name(n) for n in prep.names("codes")]
    return names, [names[prep.features.index(c)] for c in prep.categorical]


def _lgb_params(cfg: LightGBMParams, seed: int) -> dict[str, Any]:
    return {
        "objective": "binary",
        "metric": ["binary_logloss", "auc"],
        "learning_rate": cfg.learning_rate,
        "num_leaves": cfg.num_leaves,
        "min_child_samples": cfg.min_child_samples,
        "feature_fraction": cfg.feature_fraction,
        "bagging_fraction": cfg.bagging_fraction,
        "bagging_freq": cfg.bagging_freq,
        "lambda_l2": cfg.lambda_l2,
        "num_threads": cfg.num_threads,
        "seed": seed,
        # byte-identical models from identical inputs
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
    }


def out_of_fold(
    frame: pd.DataFrame,
    schema: SchemaConfig,
    cfg: ModelConfig,
    seed: int,
    folds: int,
    rounds: int,
) -> np.ndarray:
    """Score every row of `frame` with a model that did not see it (k-fold cross-fitting).

    Each fold model is fitted exactly as the final model was (preprocessing on its own training
    rows, the same settings) but for a fixed `rounds` (the final model's best iteration), so no
    early-stopping set is needed. Folds are assigned by a seeded permutation.
    """
    import numpy as np

    fold_of = np.random.default_rng(seed).permutation(np.arange(len(frame)) % folds)
    scores = np.full(len(frame), np.nan)
    y = frame[schema.target.column].to_numpy(dtype="float64")
    start = time.monotonic()
    for k in range(folds):
        inside = fold_of != k
        fold_train = frame.loc[inside]
        prep = fit_preprocessor(fold_train, schema, cfg.impute == "median", cfg.clip_quantiles)
        if isinstance(cfg, LightGBMParams):
            import lightgbm as lgb

            names, cats = _lgb_columns(prep)
            booster = lgb.train(
                {**_lgb_params(cfg, seed), "metric": "none"},
                lgb.Dataset(
                    prep.transform(fold_train, "codes"),
                    y[inside],
                    feature_name=names,
                    categorical_feature=cats,
                ),
                num_boost_round=rounds,
            )
            fold_model = Model("lightgbm", prep, booster=booster, best_iteration=rounds)
        else:
            fold_model, _ = _fit_logreg(
                prep, fold_train, fold_train, y[inside], y[inside], cfg, seed
            )
        scores[~inside] = fold_model.predict(frame.loc[~inside])
        info(
            f"train: reference fold {k + 1}/{folds}: fitted on {int(inside.sum()):,} rows, "
            f"scored {int((~inside).sum()):,} ({time.monotonic() - start:.0f} s)"
        )
    return scores


def _progress(every: int) -> Any:
    """A LightGBM callback: every `every` rounds, one line with the valid metrics and the time."""
    start = time.monotonic()

    def callback(env: Any) -> None:
        done = env.iteration + 1
        if done % every:
            return
        metrics = ", ".join(
            f"{metric} {value:.5f}"
            for data, metric, value, *_ in env.evaluation_result_list
            if data == "valid"
        )
        info(
            f"train: round {done:,} of at most {env.end_iteration:,}: valid {metrics} "
            f"({time.monotonic() - start:.0f} s)"
        )

    return callback


def fit(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    schema: SchemaConfig,
    cfg: ModelConfig,
    seed: int,
) -> tuple[Model, History]:
    """Fit preprocessing on train, then the configured model (early-stopped on valid)."""
    prep = fit_preprocessor(train, schema, cfg.impute == "median", cfg.clip_quantiles)
    y_train = train[schema.target.column].to_numpy(dtype="float64")
    y_valid = valid[schema.target.column].to_numpy(dtype="float64")
    if isinstance(cfg, LightGBMConfig):
        return _fit_lightgbm(prep, train, valid, y_train, y_valid, cfg, seed)
    return _fit_logreg(prep, train, valid, y_train, y_valid, cfg, seed)


def _fit_lightgbm(
    prep: Preprocessor,
    train: pd.DataFrame,
    valid: pd.DataFrame,
    y_train: np.ndarray,
    y_valid: np.ndarray,
    cfg: LightGBMConfig,
    seed: int,
) -> tuple[Model, History]:
    from tabml.learning.lgbm_data import in_blocks

    def blocks(frame: pd.DataFrame, y: np.ndarray) -> Blocks:
        def encode(start: int, stop: int, rows: np.ndarray | None) -> np.ndarray:
            part = frame.iloc[start:stop]
            return prep.transform(part if rows is None else part.iloc[rows], "codes")

        return in_blocks(len(frame), io.BATCH_ROWS, encode, lambda: y.astype("float32"))

    return fit_lightgbm_blocks(prep, blocks(train, y_train), blocks(valid, y_valid), cfg, seed)


def _train_early_stopped(
    dtrain: Any, dvalid: Any, cfg: LightGBMConfig, params: dict[str, Any], progress: bool = True
) -> tuple[Any, int, dict[str, dict[str, list[float]]]]:
    """LightGBM on train, early-stopped on valid (datasets constructed already, or not): the
    booster, its best round, its curves (`progress`: a line every PROGRESS_EVERY rounds)."""
    import lightgbm as lgb

    curves: dict[str, Any] = {}
    booster = lgb.train(
        params,
        dtrain,
        num_boost_round=cfg.num_boost_round,
        valid_sets=[dtrain, dvalid],
        valid_names=["train", "valid"],
        callbacks=[
            lgb.early_stopping(cfg.early_stopping_rounds, verbose=False),
            lgb.record_evaluation(curves),
            *([_progress(PROGRESS_EVERY)] if progress else []),
        ],
    )
    best = int(booster.best_iteration or booster.current_iteration())
    history = {
        s: {m: [float(v) for v in vals] for m, vals in ms.items()} for s, ms in curves.items()
    }
    return booster, best, history


def fit_lightgbm_blocks(
    prep: Preprocessor, train: Blocks, valid: Blocks, cfg: LightGBMConfig, seed: int
) -> tuple[Model, History]:
    """`fit` for LightGBM from rows in blocks (`tabml.learning.lgbm_data`): the same model, byte for
    byte, as from whole matrices, but memory holds a block's matrix beside LightGBM's binned
    data, never every row encoded at once. The refit bins train + valid again the same way.
    Valid's held-out scores are the early-stopped booster's, with or without a refit, scored
    a block at a time."""
    import lightgbm as lgb
    import numpy as np

    from tabml.learning.lgbm_data import constructed, dataset

    params = _lgb_params(cfg, seed)
    names, cats = _lgb_columns(prep)
    dtrain = constructed(dataset([train], params, names, cats))
    io.release_unused()  # what reading and encoding the blocks left on the heaps
    # binned with train's bins, before training holds its state (gradients, scores, bags)
    dvalid = constructed(dataset([valid], params, names, cats, reference=dtrain))
    io.release_unused()
    booster, best, history = _train_early_stopped(dtrain, dvalid, cfg, params)
    del dtrain, dvalid
    valid_scores = np.concatenate(
        [np.asarray(booster.predict(m, num_iteration=best)) for m in valid.matrices()]
    )
    if not cfg.refit:
        model = Model("lightgbm", prep, booster=booster, best_iteration=best)
        return model, History(history, best, valid_scores=valid_scores)
    del booster
    refit = {**params, "metric": "none"}
    data = constructed(dataset([train, valid], refit, names, cats))
    io.release_unused()
    booster = lgb.train(refit, data, num_boost_round=best)
    model = Model("lightgbm", prep, booster=booster, best_iteration=best)
    return model, History(history, best, len(train) + len(valid), valid_scores)


def fit_lightgbm_rank(
    prep: Preprocessor,
    train: Blocks,
    valid_sample: Blocks,
    valid_share: Blocks,
    cfg: LightGBMConfig,
    seed: int,
    networks: list[dict[str, Any]],
    progress: bool = True,
) -> tuple[Model, History, str | None]:
    """One rank of data-parallel LightGBM (tabml.compute.distributed): early-stopped on the valid
    sample every rank holds, then, with `refit`, trained again on this rank's shares of train
    and valid. The rows come in blocks (`tabml.learning.lgbm_data`), read when LightGBM bins them.
    `networks`: LightGBM's network settings for the fit and for the refit. Returns the model,
    its history and, with a refit, the early-stopped booster's text. `progress`: this rank
    prints the rounds (one rank does: they train in step).

    The datasets are constructed inside `lgb.train`, after the booster has joined LightGBM's
    network: the ranks then find each feature's bins together (constructed before, each rank
    would bin alone, and the ranks' bins would disagree)."""
    import lightgbm as lgb

    from tabml.learning.lgbm_data import dataset

    params = _lgb_params(cfg, seed)
    names, cats = _lgb_columns(prep)
    fit_params = {**params, **networks[0]}
    dtrain = dataset([train], fit_params, names, cats)
    dvalid = dataset([valid_sample], fit_params, names, cats, reference=dtrain)
    booster, best, history = _train_early_stopped(dtrain, dvalid, cfg, fit_params, progress)
    booster.free_network()
    del dtrain, dvalid
    if not cfg.refit:
        return (
            Model("lightgbm", prep, booster=booster, best_iteration=best),
            History(history, best),
            None,
        )
    early = booster.model_to_string()
    del booster
    io.release_unused()
    refit = {**params, **networks[1], "metric": "none"}
    data = dataset([train, valid_share], refit, names, cats)
    booster = lgb.train(refit, data, num_boost_round=best)
    booster.free_network()
    model = Model("lightgbm", prep, booster=booster, best_iteration=best)
    return model, History(history, best, len(train) + len(valid_share)), early


def booster_from_text(text: str, drop: tuple[str, ...] = ()) -> Any:
    """A Booster from its model text, without the `drop` parameters (e.g. the hosts and ports
    of the run that trained it) in the text it saves."""
    import lightgbm as lgb

    if drop:
        lines = text.split("\n")
        text = "\n".join(
            line for line in lines if not any(line.startswith(f"[{p}: ") for p in drop)
        )
    return lgb.Booster(model_str=text)


def _fit_logreg(
    prep: Preprocessor,
    train: pd.DataFrame,
    valid: pd.DataFrame,
    y_train: np.ndarray,
    y_valid: np.ndarray,
    cfg: LogRegConfig,
    seed: int,
) -> tuple[Model, History]:
    from sklearn.linear_model import LogisticRegression

    from tabml.learning.metrics import log_loss, roc_auc

    clf = LogisticRegression(C=cfg.C, max_iter=cfg.max_iter, random_state=seed)
    clf.fit(prep.transform(train, "linear"), y_train)
    model = Model(
        "logreg", prep, coef=[float(c) for c in clf.coef_[0]], intercept=float(clf.intercept_[0])
    )
    curves = {}
    for name, frame, y in (("train", train, y_train), ("valid", valid, y_valid)):
        p = model.predict(frame)
        curves[name] = {"binary_logloss": [log_loss(y, p)], "auc": [roc_auc(y, p)]}
    return model, History(curves, 1)


@dataclass(frozen=True)
class Trained:
    """What train produces: the model, its fitting history, the valid split's held-out scores
    (id and score, from the model before any refit: evaluate's threshold) and the monitoring
    reference (the latest development rows, scored out-of-fold)."""

    model: Model
    history: History
    valid_scores: pd.DataFrame
    reference: pd.DataFrame


def train(
    train: pd.DataFrame | None,
    valid: pd.DataFrame,
    latest: pd.DataFrame,
    params: TrainParams,
    fitted: tuple[Model, History] | None = None,
) -> Trained:
    """Fit the model on `train` (early-stopped on `valid`), then score `valid` held out and
    build the reference from `latest` (the development rows `monitor.latest_rows` picks).

    `fitted`: a model fitted elsewhere (`compute=dask` trains on the cluster from the files),
    for which `train` is not needed.
    """
    schema, cfg, seed = params.dataset_schema, params.model, params.seed
    if fitted is None:
        if train is None:
            raise ValueError("train(): give the train split or a fitted model")
        how = "early stopping on" if cfg.name == "lightgbm" else "validating on"
        info(f"train: fitting {cfg.name} on {len(train):,} rows, {how} {len(valid):,}")
        fitted = fit(train, valid, schema, cfg, seed)
    model, history = fitted
    if cfg.name == "lightgbm":
        info(f"train: best iteration {history.best_iteration} (early stopping on valid)")
    else:
        info(f"train: fitted {cfg.name}; valid ROC AUC {history.curves['valid']['auc'][-1]:.4f}")
    if history.refit_rows:
        info(
            f"train: refitted on train + valid ({history.refit_rows:,} rows) for "
            f"{history.best_iteration} rounds (model.refit)"
        )
    held_out = history.valid_scores if history.valid_scores is not None else model.predict(valid)
    folds = params.reference.folds
    info(
        f"train: monitoring reference: {len(latest):,} development rows scored "
        f"out-of-fold by {folds} fold models"
    )
    scores = out_of_fold(latest, schema, cfg, seed, folds, history.best_iteration)
    return Trained(
        model=model,
        history=history,
        valid_scores=valid[[schema.id]].assign(**{SCORE: held_out}),
        reference=reference_frame(latest, schema, scores),
    )


def save(model: Model, folder: Path) -> None:
    """Write the model files into `folder` (which the caller swaps in atomically)."""
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "kind": model.kind,
        "preprocessor": model.preprocessor.to_dict(),
    }
    if model.kind == "lightgbm":
        meta["best_iteration"] = model.best_iteration
        text = model.booster.model_to_string(num_iteration=model.best_iteration)
        io.write_text(folder / BOOSTER_TXT, text)
    else:
        meta["coef"] = model.coef
        meta["intercept"] = model.intercept
    io.write_json(folder / MODEL_JSON, meta, digits=None)


def load(folder: Path) -> Model:
    """Load a model folder written by `save`."""
    path = folder / MODEL_JSON
    if not path.is_file():
        raise PackageError(f"{folder}: no {MODEL_JSON}; this is not a tabml model folder")
    meta = io.read_json(path)
    if meta.get("format_version") != FORMAT_VERSION:
        raise PackageError(
            f"{path}: model format {meta.get('format_version')} is not supported by this "
            f"tabml (expects {FORMAT_VERSION})"
        )
    prep = Preprocessor.from_dict(meta["preprocessor"])
    if meta["kind"] == "lightgbm":
        import lightgbm as lgb

        booster = lgb.Booster(model_str=(folder / BOOSTER_TXT).read_text(encoding="utf-8"))
        return Model("lightgbm", prep, booster=booster, best_iteration=meta["best_iteration"])
    return Model("logreg", prep, coef=meta["coef"], intercept=meta["intercept"])
