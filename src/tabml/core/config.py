"""Typed configuration: every section of params.yaml, and one model per stage of what it reads.

`params.yaml` is Hydra's composition of `conf/` (DVC writes it on `dvc exp run`, `make params`
writes it otherwise). Each stage's keys are one `StageParams` model here (`TrainParams`,
`EvaluateParams`, ...), every field a typed section; the model's `param_keys()` are the
stage's `params:` list in `dvc.yaml` (a contract test keeps the two equal). A stage reads only
what it declared, so it cannot silently depend on more than DVC tracks for it, and mypy
catches a misspelt attribute.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tabml.core.errors import ConfigError


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- dataset -------------------------------------------------------------------------------


class FeatureSpec(_Frozen):
    """One feature column: its kind and, where known, the values it may take."""

    kind: Literal["numeric", "categorical", "boolean"]
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None
    # categorical only, for columns with many levels (a ticket number, a cabin): the model
    # keeps the `max_levels` most frequent levels of train that occur at least `min_frequency`
    # times there; every other value, rare or never seen, is one "other" level
    max_levels: Annotated[int, Field(ge=1)] | None = None
    min_frequency: Annotated[int, Field(ge=1)] | None = None

    @property
    def open_vocabulary(self) -> bool:
        """Whether values outside the learnt levels share one "other" level."""
        return self.max_levels is not None or self.min_frequency is not None

    @model_validator(mode="after")
    def _check(self) -> FeatureSpec:
        if self.kind != "categorical" and self.open_vocabulary:
            raise ValueError(
                f"max_levels/min_frequency only apply to categorical features, not {self.kind}"
            )
        if self.kind != "numeric" and (self.min is not None or self.max is not None):
            raise ValueError(f"min/max only apply to numeric features, not {self.kind}")
        if self.kind != "categorical" and self.categories is not None:
            raise ValueError(f"categories only apply to categorical features, not {self.kind}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        return self


class TargetSpec(_Frozen):
    column: str
    positive: int | str | bool = 1


class SchemaConfig(_Frozen):
    """`dataset.schema`: what a valid record of this dataset looks like."""

    id: str
    timestamp: str | None = None
    target: TargetSpec
    features: dict[str, FeatureSpec]
    ignore: tuple[str, ...] = ()
    extra_columns: Literal["allow", "reject"] = "reject"
    # personal data: column -> what `ingest` does with it. HMAC-SHA256 pseudonyms are keyed by
    # the environment variable TABML_PII_KEY, never by anything in the repository.
    pii: dict[str, Literal["pseudonymise", "drop"]] = Field(default_factory=dict)
    # protected attributes (sex, race, age band...): columns whose groups the fairness measures
    # always compare and the release's fairness gates hold (docs/privacy.md)
    protected: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> SchemaConfig:
        if not self.features:
            raise ValueError("at least one feature is needed")
        special = {self.id, self.target.column, *(x for x in [self.timestamp] if x)}
        clash = sorted(special & (set(self.features) | set(self.ignore)))
        if clash:
            raise ValueError(f"id/target/timestamp columns cannot be features or ignored: {clash}")
        pii_features = sorted(set(self.pii) & set(self.features))
        if pii_features:
            raise ValueError(
                f"personal-data columns cannot be model features: {pii_features}; "
                "drop them from features or from pii"
            )
        if self.pii.get(self.id) == "drop":
            raise ValueError(f"the id column '{self.id}' can be pseudonymised, not dropped")
        if self.target.column in self.pii:
            raise ValueError("the target column cannot be personal data")
        unknown = sorted(set(self.protected) - set(self.features) - set(self.ignore))
        if unknown:
            raise ValueError(
                f"protected columns must be features or ignored columns (kept in the splits): "
                f"{unknown}"
            )
        return self

    @property
    def known_columns(self) -> set[str]:
        """Every column a development file may carry without being 'extra'."""
        cols = {self.id, self.target.column, *self.features, *self.ignore, *self.pii}
        if self.timestamp:
            cols.add(self.timestamp)
        return cols

    @property
    def feature_names(self) -> list[str]:
        return list(self.features)


class SourcesConfig(_Frozen):
    """`dataset.sources`: where the raw files come from.

    Each value is either `nannyml://FILE` (a data set bundled in the nannyml package) or a file
    name relative to the sources folder that dvc.yaml gives ingest (`data/external/`), where the
    user tracks it with `dvc add`.
    """

    development: str
    production: str | None = None
    production_labels: str | None = None
    # labelled production rows that `tabml append` adds to the development set (retraining);
    # a file relative to the sources folder, used when it exists
    additions: str | None = None


# --- split ---------------------------------------------------------------------------------


class SplitConfig(_Frozen):
    method: Literal["time", "stratified"]
    valid_fraction: Annotated[float, Field(gt=0, lt=0.5)]
    test_fraction: Annotated[float, Field(gt=0, lt=0.5)]


# --- model ---------------------------------------------------------------------------------


class _Preprocess(_Frozen):
    impute: Literal["none", "median"]
    clip_quantiles: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _check_clip(self) -> _Preprocess:
        if self.clip_quantiles is not None:
            lo, hi = self.clip_quantiles
            if not 0.0 <= lo < hi <= 1.0:
                raise ValueError("clip_quantiles must be [low, high] with 0 <= low < high <= 1")
        return self


# LightGBM's documented limit on num_leaves (docs/Parameters.rst: 1 < num_leaves <= 131072)
MAX_LEAVES = 131_072
# tabml's bound on trees: a typing error (1e9) must not train without end; raise it here if a
# model truly needs more
MAX_ROUNDS = 100_000


class LightGBMParams(_Preprocess):
    """What LightGBM is trained with, on one machine or on a Dask cluster, within LightGBM's
    documented limits (a value beyond them is a config error here, not LightGBM's raw one)."""

    learning_rate: Annotated[float, Field(gt=0, le=1)]
    num_boost_round: Annotated[int, Field(gt=0, le=MAX_ROUNDS)]
    num_leaves: Annotated[int, Field(gt=1, le=MAX_LEAVES)]
    min_child_samples: Annotated[int, Field(ge=1)]
    feature_fraction: Annotated[float, Field(gt=0, le=1)]
    bagging_fraction: Annotated[float, Field(gt=0, le=1)]
    bagging_freq: Annotated[int, Field(ge=0)]
    lambda_l2: Annotated[float, Field(ge=0)]
    num_threads: Annotated[int, Field(ge=1, le=1024)]


class LightGBMConfig(LightGBMParams):
    name: Literal["lightgbm"]
    # at most the round bound too: a patience of 1e9 rounds is a typing error (one at or above
    # num_boost_round only means training never stops early, which a short test run may want)
    early_stopping_rounds: Annotated[int, Field(gt=0, le=MAX_ROUNDS)]
    # after early stopping, train again on train + valid for the best number of rounds
    refit: bool


class LocalCompute(_Frozen):
    """`compute=local`: every stage runs in its own process on this machine (the default)."""

    backend: Literal["local"] = "local"


class DaskCompute(_Frozen):
    """`compute=dask`: train's LightGBM fit runs on a Dask cluster, one LightGBM rank a worker.

    Only what changes the outputs is here: the rank count and the validation sample. Where
    the cluster is (the scheduler's address) comes from the environment, DASK_SCHEDULER_ADDRESS;
    without it a LocalCluster of `workers` processes starts on 127.0.0.1.
    """

    backend: Literal["dask"]
    # LightGBM ranks (N): rows go to rank (row's position within its class) mod N. The model
    # depends on N (LightGBM builds each feature's bins on one rank), never on which workers
    workers: Annotated[int, Field(ge=1, le=1024)]
    # every rank early-stops on the same evenly spaced sample of valid, at most this many rows
    valid_sample_rows: Annotated[int, Field(ge=1000)] = 1_000_000
    # a scheduler that does not answer, or has fewer than `workers` workers, within this many
    # seconds is an error that names it
    connect_timeout_seconds: Annotated[int, Field(ge=1, le=600)] = 10
    # LightGBM's network time-out between ranks (its `time_out`, default 120 minutes): a rank
    # lost in training fails the run after this many minutes
    network_timeout_minutes: Annotated[int, Field(ge=1, le=120)] = 10


ComputeConfig = Annotated[LocalCompute | DaskCompute, Field(discriminator="backend")]


class LogRegConfig(_Preprocess):
    name: Literal["logreg"]
    C: Annotated[float, Field(gt=0)]
    max_iter: Annotated[int, Field(gt=0, le=1_000_000)]


def _no_lightgbm_dask(raw: Any) -> Any:
    if isinstance(raw, Mapping) and raw.get("name") == "lightgbm_dask":
        raise ValueError(
            "model 'lightgbm_dask' is gone: train LightGBM on a Dask cluster with "
            "model=lightgbm compute=dask (compute.workers sets the LightGBM ranks; "
            "docs/scale.md)"
        )
    return raw


ModelConfig = Annotated[
    Annotated[LightGBMConfig | LogRegConfig, Field(discriminator="name")],
    BeforeValidator(_no_lightgbm_dask),
]


# --- evaluate ------------------------------------------------------------------------------


class ThresholdRule(_Frozen):
    """How the decision threshold is chosen on the validation split."""

    rule: Literal["max_f1", "fixed", "min_precision"]
    value: Annotated[float, Field(ge=0, le=1)] = 0.5


class EvaluateConfig(_Frozen):
    threshold: ThresholdRule
    calibration_bins: Annotated[int, Field(ge=2, le=100)] = 10
    min_slice_rows: Annotated[int, Field(ge=1)] = 50


# --- monitor -------------------------------------------------------------------------------

ContinuousMethod = Literal["jensen_shannon", "kolmogorov_smirnov", "wasserstein", "hellinger"]
CategoricalMethod = Literal["jensen_shannon", "chi2", "l_infinity", "hellinger"]
PerformanceMetric = Literal[
    "roc_auc", "average_precision", "f1", "precision", "recall", "specificity", "accuracy"
]


ReferenceRows = Annotated[int, Field(ge=100)]


class ReferenceConfig(_Frozen):
    """`monitor.reference`: how train builds the monitoring reference.

    The reference is the development set scored out-of-fold: `folds` models with the final
    model's settings and number of rounds, each scoring the rows it did not see. Only the latest
    `max_rows` rows (in time order) are used, which bounds the package size and the cost of the
    fold models on large data.
    """

    folds: Annotated[int, Field(ge=2, le=20)] = 5
    max_rows: ReferenceRows = 100_000


class ChunkingConfig(_Frozen):
    """How a batch is cut into chunks: `rows` per chunk, into `count` chunks, or by `period`.

    (Not `size`: DVC leaves any params key named `size` or `nfiles` out of its run-cache key,
    so a changed chunk size would bring back the old package from the run-cache.)
    """

    method: Literal["rows", "count", "period"]
    rows: Annotated[int, Field(ge=2)] | None = None
    count: Annotated[int, Field(ge=1)] | None = None
    # a pandas period alias: D, W, M, Q or Y
    period: Literal["D", "W", "M", "Q", "Y"] | None = None
    # a chunk shorter than the minimum (the left-over rows, a quiet month) joins the chunk before
    # it (`merge`), or stays as NannyML cuts it (`keep`); see tabml.core.chunking
    short_chunks: Literal["merge", "keep"] = "merge"
    # period chunking: the fewest rows a period needs to stand alone (null: half the
    # reference's median period)
    min_rows: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        # packages built before the rename carry {method: size, size: N}
        if isinstance(data, Mapping) and data.get("method") == "size" and "rows" not in data:
            return {
                **{k: v for k, v in data.items() if k != "size"},
                "method": "rows",
                "rows": data.get("size"),
            }
        return data

    @model_validator(mode="after")
    def _check(self) -> ChunkingConfig:
        if getattr(self, self.method) is None:
            raise ValueError(f"chunking method '{self.method}' needs '{self.method}' to be set")
        if self.min_rows is not None and self.method != "period":
            raise ValueError(
                "min_rows applies to period chunking only (with rows or count chunking the "
                "minimum is the chunk size); remove it"
            )
        return self


class DriftConfig(_Frozen):
    continuous_methods: Annotated[tuple[ContinuousMethod, ...], Field(min_length=1)]
    categorical_methods: Annotated[tuple[CategoricalMethod, ...], Field(min_length=1)]
    # multivariate drift: PCA data reconstruction (cheap) and a domain classifier (~20 s more)
    data_reconstruction: bool = True
    domain_classifier: bool = False


class PerformanceConfig(_Frozen):
    # estimated by CBPE without labels; realized too where labels exist
    metrics: Annotated[tuple[PerformanceMetric, ...], Field(min_length=1)]


class DataQualityConfig(_Frozen):
    """A chunk alerts when the share of its rows with such values is above these; missing
    values alert when their share leaves the reference's band.

    The reference has no unseen or out-of-range value by construction (it defines both), so
    no band can be derived from it: these are minimum rates. A continuous column sets a new
    minimum or maximum in a few rows of almost any chunk, which at 0 alerts everywhere; 0.1%
    of rows lets that pass and still catches a real change (docs/monitoring.md).
    """

    unseen_max_rate: Annotated[float, Field(ge=0, le=1)] = 0.01
    out_of_range_max_rate: Annotated[float, Field(ge=0, le=1)] = 0.001


# NannyML's thresholds come from how a metric varies across reference chunks
MinReferenceChunks = Annotated[int, Field(ge=2)]


class MonitorConfig(_Frozen):
    """`monitor`: drift, data quality and performance estimation with NannyML."""

    reference: ReferenceConfig
    chunking: ChunkingConfig
    min_reference_chunks: MinReferenceChunks = 6
    drift: DriftConfig
    performance: PerformanceConfig
    data_quality: DataQualityConfig = DataQualityConfig()


# --- tune ----------------------------------------------------------------------------------


class SearchRange(_Frozen):
    """One parameter's range: uniform, or log-uniform with `log: true`."""

    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _check(self) -> SearchRange:
        if not self.low < self.high:
            raise ValueError(f"low {self.low} must be below high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self


# the LightGBM settings `tabml tune` may search (the others are fixed by the model option)
TUNABLE = (
    "learning_rate",
    "num_leaves",
    "min_child_samples",
    "feature_fraction",
    "bagging_fraction",
    "bagging_freq",
    "lambda_l2",
)


class TuneConfig(_Frozen):
    """`tune`: the search `tabml tune` runs (a command, not a stage; docs/tuning.md)."""

    # `valid`: ROC AUC on the valid split; `cv`: mean ROC AUC over time-ordered folds inside
    # train + valid (each fold validates on rows later than those it trains on)
    objective: Literal["valid", "cv"] = "valid"
    cv_folds: Annotated[int, Field(ge=2, le=20)] = 4
    # the budget: this many trials (reproducible), and/or minutes (not reproducible)
    trials: Annotated[int, Field(ge=1, le=10_000)] = 50
    timeout_minutes: Annotated[float, Field(gt=0)] | None = None
    # a trial whose valid AUC is below the median of earlier trials at the same round stops
    # (Optuna's median pruner), once this many trials have finished
    prune_after_trials: Annotated[int, Field(ge=0)] = 5
    space: dict[str, SearchRange]

    @model_validator(mode="after")
    def _check(self) -> TuneConfig:
        unknown = sorted(set(self.space) - set(TUNABLE))
        if unknown:
            raise ValueError(f"cannot tune {unknown}; tunable: {', '.join(TUNABLE)}")
        if not self.space:
            raise ValueError("the search space is empty")
        return self


# --- release -------------------------------------------------------------------------------


class ReleaseConfig(_Frozen):
    """`release`: the quality gates a run must pass to become a release (tabml gate)."""

    # the conf/release/ option the gates come from (a failing gate names its file)
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")] = "default"
    min_test_roc_auc: Annotated[float, Field(ge=0, le=1)]
    # against the latest earlier release's test ROC AUC
    max_roc_auc_drop: Annotated[float, Field(ge=0, le=1)]
    max_monitoring_alerts: Annotated[int, Field(ge=0)]
    min_test_rows: Annotated[int, Field(ge=0)]
    # against the release promoted to `prod` (GTO), both scored on this run's test split: the
    # ROC AUC may be at most this much lower (null: no such gate)
    max_roc_auc_drop_vs_prod: Annotated[float, Field(ge=0, le=1)] | None = 0.01
    # fairness on the test split, the largest over the segments of dataset.segments (null: off)
    max_demographic_parity_difference: Annotated[float, Field(ge=0, le=1)] | None
    max_equalized_odds_difference: Annotated[float, Field(ge=0, le=1)] | None
    # the pull-request report flags a change whose one-record response time is more than this
    # many times the base's (timed side by side in the same run; null: no flag)
    max_slowdown: Annotated[float, Field(gt=1)] | None = 1.5
    # a release's one-record p99 at most this many times the prod release's, both timed side
    # by side on this run's test rows (null: no such gate)
    max_p99_ratio_vs_prod: Annotated[float, Field(gt=1)] | None = None


class PrivacyConfig(_Frozen):
    """`privacy`: how long personal data is kept (docs/privacy.md)."""

    # days that prediction logs and production labels are kept (tabml logs prune)
    retention_days: Annotated[int, Field(ge=1, le=36_500)]


# --- loading -------------------------------------------------------------------------------


def key(dotted: str) -> Any:
    """Declare the params.yaml key a `StageParams` field reads, where it is not the field's
    name: `reference: ReferenceConfig = key("monitor.reference")`."""
    return Field(alias=dotted)


# DVC leaves keys with these names out of its run-cache key, parameters included (DVC issue
# #10296): a changed value would bring back the outputs of the old one from the run-cache
RUN_CACHE_BLIND_KEYS = frozenset({"size", "nfiles"})


def run_cache_blind_keys(tree: Any, prefix: str = "") -> list[str]:
    """Dotted paths of every key, at any depth, that DVC's run-cache would ignore."""
    found: list[str] = []
    if isinstance(tree, Mapping):
        for k, v in tree.items():
            path = f"{prefix}.{k}" if prefix else str(k)
            if str(k) in RUN_CACHE_BLIND_KEYS:
                found.append(path)
            found += run_cache_blind_keys(v, path)
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            found += run_cache_blind_keys(v, f"{prefix}[{i}]")
    return found


def _lookup(tree: Mapping[str, Any], dotted: str, source: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise ConfigError(
                f"{source}: key '{dotted}' is missing. Regenerate it from conf/ with 'make params' "
                "or check the dataset config in conf/dataset/."
            )
        node = node[part]
    return node


def _describe(err: ValidationError, source: str, prefix: str = "") -> ConfigError:
    # one line per key: the items of a list that fail alike are one problem (`categories`)
    found: dict[tuple[str, str], int] = {}
    for e in err.errors():
        parts = [str(p) for p in (prefix, *e["loc"]) if p not in ("", None)]
        while len(parts) > 1 and parts[-1].isdigit():
            parts.pop()
        key = (".".join(parts), e["msg"])
        found[key] = found.get(key, 0) + 1
    problems = tuple(
        (loc, hint(loc, msg) + (f" ({n} values)" if n > 1 else ""))
        for (loc, msg), n in found.items()
    )
    lines = [f"  {loc}: {msg}" for loc, msg in problems]
    return ConfigError(f"{source}: invalid config:\n" + "\n".join(lines), problems)


def hint(key: str, message: str) -> str:
    """`message` with the fix for the mistakes people make most."""
    if key.endswith(".categories") and "valid string" in message:
        return (
            f"{message}: categories are text, and YAML reads 1 or 2.5 as numbers; quote them "
            '(["1", "2"], not [1, 2])'
        )
    if message.startswith("Extra inputs are not permitted"):
        return f"{message}: a misspelt or unknown key; remove it or check its spelling"
    return message


def read_params(path: Path) -> Mapping[str, Any]:
    """params.yaml as a tree, refusing keys DVC's run-cache would not see."""
    import yaml

    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found. Create it from conf/ with 'make params'.") from None
    if not isinstance(tree, Mapping):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    blind = run_cache_blind_keys(tree)
    if blind:
        raise ConfigError(
            f"{path}: {', '.join(blind)}: DVC's run-cache ignores parameters named "
            f"{' or '.join(sorted(RUN_CACHE_BLIND_KEYS))}, so changing them would bring back "
            "old outputs. Rename the key in conf/ (monitor.chunking takes `rows`, not `size`) "
            "and run 'tabml params'."
        )
    return tree


S = TypeVar("S", bound="StageParams")


class StageParams(_Frozen):
    """The keys of params.yaml one stage (or command) reads, each a typed field.

    A field reads the key of its own name, or the dotted key given with `key(...)`.
    `param_keys()` is the stage's `params:` list in dvc.yaml (a contract test holds the two
    equal), so a stage cannot read more than DVC tracks for it, and a misspelt attribute is a
    type error.
    """

    @classmethod
    def param_keys(cls) -> tuple[str, ...]:
        """The dotted params.yaml keys, in field order."""
        return tuple(f.alias or name for name, f in cls.model_fields.items())

    @classmethod
    def load(cls: type[S], path: Path) -> S:
        """Read and validate the declared keys of a params.yaml."""
        return cls.from_tree(read_params(path), str(path))

    @classmethod
    def from_tree(cls: type[S], tree: Mapping[str, Any], source: str) -> S:
        raw = {dotted: _lookup(tree, dotted, source) for dotted in cls.param_keys()}
        try:
            return cls.model_validate(raw)
        except ValidationError as err:
            raise _describe(err, source) from None


# --- what each stage reads (its dvc.yaml `params:` list is `param_keys()`) ------------------


class IngestParams(StageParams):
    sources: SourcesConfig = key("dataset.sources")
    dataset_schema: SchemaConfig = key("dataset.schema")
    # checked by ingest, before training: enough development rows for the monitoring reference
    chunking: ChunkingConfig = key("monitor.chunking")
    min_reference_chunks: MinReferenceChunks = key("monitor.min_reference_chunks")
    reference_rows: ReferenceRows = key("monitor.reference.max_rows")
    # compute=dask types and checks Parquet sources on the cluster (the same files)
    compute: ComputeConfig


class CleanParams(StageParams):
    dataset_schema: SchemaConfig = key("dataset.schema")
    # compute=dask types the development rows on the cluster (the same files)
    compute: ComputeConfig


class SplitParams(StageParams):
    seed: int
    dataset_schema: SchemaConfig = key("dataset.schema")
    split: SplitConfig
    # compute=dask deals the rows to the split files on the cluster (the same files)
    compute: ComputeConfig


class TrainParams(StageParams):
    seed: int
    dataset_schema: SchemaConfig = key("dataset.schema")
    model: ModelConfig
    reference: ReferenceConfig = key("monitor.reference")
    compute: ComputeConfig

    @field_validator("compute")
    @classmethod
    def _check_compute(cls, compute: Any, info: ValidationInfo) -> Any:
        model = info.data.get("model")
        if not isinstance(compute, DaskCompute) or model is None:
            return compute
        if not isinstance(model, LightGBMConfig):
            raise ValueError(
                f"compute=dask trains LightGBM only (model=lightgbm); model={model.name} "
                "trains on one machine: use compute=local"
            )
        if compute.workers > 1 and model.clip_quantiles is not None:
            raise ValueError(
                "compute=dask with more than one worker needs model.clip_quantiles: null: "
                "exact quantiles across workers are not implemented (medians are; LightGBM "
                "bins outliers itself)"
            )
        return compute


class EvaluateParams(StageParams):
    dataset_schema: SchemaConfig = key("dataset.schema")
    segments: tuple[str, ...] = key("dataset.segments")
    evaluate: EvaluateConfig
    # compute=dask scores test and production on the cluster (the same scores)
    compute: ComputeConfig


class MonitorParams(StageParams):
    """The monitor stage's own keys: its config and reference come from the package."""

    # compute=dask scores and monitors the batch on the cluster (the same outputs)
    compute: ComputeConfig


class PackageParams(StageParams):
    """Everything a package records of how it was made (metadata.json's `params`)."""

    seed: int
    name: str = key("dataset.name")
    dataset_schema: SchemaConfig = key("dataset.schema")
    split: SplitConfig
    model: ModelConfig
    evaluate: EvaluateConfig
    monitor: MonitorConfig
    # the model card names every segment whose fairness gap is above the release gates' limits
    max_demographic_parity_difference: float | None = key(
        "release.max_demographic_parity_difference"
    )
    max_equalized_odds_difference: float | None = key("release.max_equalized_odds_difference")


class DatasetParams(StageParams):
    """Where a dataset's files come from and what a record looks like (`tabml append`,
    `tabml forget`, `tabml synth`)."""

    sources: SourcesConfig = key("dataset.sources")
    dataset_schema: SchemaConfig = key("dataset.schema")


class ReleaseParams(StageParams):
    """What `tabml gate` and `tabml release` read."""

    release: ReleaseConfig
    dataset_schema: SchemaConfig = key("dataset.schema")


class TuneParams(StageParams):
    """What `tabml tune` reads: the model it starts from, and the search."""

    seed: int
    name: str = key("dataset.name")
    dataset_schema: SchemaConfig = key("dataset.schema")
    model: ModelConfig
    tune: TuneConfig


class PrivacyParams(StageParams):
    """What `tabml logs prune` reads."""

    privacy: PrivacyConfig


# every model above: `tabml params` validates a new params.yaml as each of them will read it
ALL_PARAMS: tuple[type[StageParams], ...] = (
    IngestParams,
    CleanParams,
    SplitParams,
    TrainParams,
    EvaluateParams,
    MonitorParams,
    PackageParams,
    DatasetParams,
    ReleaseParams,
    PrivacyParams,
    TuneParams,
)


def parse(kind: Any, raw: Any, key: str = "") -> Any:
    """Validate a raw value as one typed config, e.g. `parse(SchemaConfig, raw,
    "dataset.schema")` (packages' copies of their config, and tests); errors name `key`."""
    from pydantic import TypeAdapter

    if isinstance(kind, str):
        raise TypeError(f"parse() takes the config's type, not a key ({kind!r})")
    try:
        return TypeAdapter(kind).validate_python(raw)
    except ValidationError as err:
        raise _describe(err, "config", key) from None


def dump(value: Any) -> Any:
    """A JSON-ready form of a typed section."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, tuple):
        return list(value)
    return value


__all__ = [
    "ComputeConfig",
    "DaskCompute",
    "EvaluateConfig",
    "FeatureSpec",
    "LightGBMConfig",
    "LightGBMParams",
    "LogRegConfig",
    "ModelConfig",
    "SchemaConfig",
    "SourcesConfig",
    "SplitConfig",
    "StageParams",
    "TargetSpec",
    "ThresholdRule",
]
