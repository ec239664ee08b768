"""The catalog: every file name inside the folders that dvc.yaml hands to the stages.

`dvc.yaml` writes each folder once (`--output-dir data/raw`); the names of the files inside it
are written here once, and nowhere else: the stage that writes a folder and the stages and
commands that read it all take the name from this module, so renaming an output is one edit
(and `tests/contracts/test_catalog.py` holds every name here to dvc.yaml's `outs`, `deps`,
`metrics` and `plots`).

`Repo` is the other half: the repository paths that commands which are not stages default to
(`tabml report`, `tabml gate`, `tabml release`), and that `tabml report` reads at a git
revision. They are dvc.yaml's paths, composed from its folders and the names below; the same
contract test checks each against dvc.yaml.
"""

from __future__ import annotations

from typing import ClassVar


class Raw:
    """data/raw: what ingest writes (validated, pseudonymised); clean reads it."""

    DEVELOPMENT = "development.parquet"
    PRODUCTION = "production.parquet"
    LABELS = "production_labels.parquet"


class Interim:
    """data/interim: what clean writes; split, evaluate and `tabml report` read it."""

    CLEAN = "clean.parquet"
    REJECTED = "rejected.parquet"
    PRODUCTION = "production.parquet"
    LABELS = "production_labels.parquet"


class Splits:
    """data/processed: split's train, valid and test sets."""

    TRAIN = "train.parquet"
    VALID = "valid.parquet"
    TEST = "test.parquet"
    # the split names, in time order
    NAMES = ("train", "valid", "test")

    @staticmethod
    def file(name: str) -> str:
        """The file of split `name`."""
        return f"{name}.parquet"


class Model:
    """models/model: the fitted model (train writes it, evaluate and package read it)."""

    SPEC = "model.json"
    BOOSTER = "model.txt"


class TrainLive:
    """reports/train: dvclive's folder for the training curves."""

    METRICS = "metrics.json"
    PLOTS = "plots"


class Predictions:
    """data/predictions: evaluate's scores of the test split and the production batch."""

    TEST = "test.parquet"
    PRODUCTION = "production.parquet"


class Plots:
    """reports/plots: evaluate's plot data (evaluate's `plots` in dvc.yaml give their axes)."""

    ROC = "roc.json"
    PRECISION_RECALL = "precision_recall.json"
    CALIBRATION = "calibration.json"
    CONFUSION = "confusion.json"
    IMPORTANCE = "importance.json"


class Monitoring:
    """reports/monitoring: what `tabml monitor` writes (the monitor stage, and any batch)."""

    SUMMARY = "summary.json"
    METRICS = "metrics.json"
    REPORT = "report.html"
    DRIFT_CHART = "drift_alerts.png"
    PERFORMANCE_CHART = "performance.png"
    QUALITY_CHART = "data_quality.png"


class Package:
    """models/package (and a release tarball's folder): what `tabml package build` writes."""

    MODEL_DIR = "model"
    REFERENCE = "reference.parquet"
    SCHEMA = "schema.json"
    METADATA = "metadata.json"
    CARD = "MODEL_CARD.md"
    MANIFEST = "MANIFEST.sha256"


class Repo:
    """dvc.yaml's paths that commands outside the pipeline default to, and `tabml report` reads
    at a git revision (relative to the project root)."""

    PACKAGE = "models/package"
    # train's held-out scores of the valid split (the early-stopped model's, before any refit)
    VALID_SCORES = "models/valid_scores.parquet"
    SPLITS = "data/processed"
    TEST = f"{SPLITS}/{Splits.TEST}"
    PRODUCTION = f"data/interim/{Interim.PRODUCTION}"
    PRODUCTION_LABELS = f"data/interim/{Interim.LABELS}"
    METRICS = "reports/metrics.json"
    DATA_QUALITY = "reports/data_quality.json"
    # the check stage's stamp: every stage that reads params.yaml runs after it
    PARAMS_CHECKED = "reports/params_checked.txt"
    MONITORING = "reports/monitoring"
    MONITORING_METRICS = f"{MONITORING}/{Monitoring.METRICS}"
    SUMMARY = f"{MONITORING}/{Monitoring.SUMMARY}"
    PLOTS = "reports/plots"
    # the plot files the report overlays, by kind
    PLOT_FILES: ClassVar[dict[str, str]] = {
        "roc": f"{PLOTS}/{Plots.ROC}",
        "precision_recall": f"{PLOTS}/{Plots.PRECISION_RECALL}",
        "calibration": f"{PLOTS}/{Plots.CALIBRATION}",
        "confusion": f"{PLOTS}/{Plots.CONFUSION}",
    }


def names(folder: type) -> dict[str, str]:
    """The file names a catalog class holds (its upper-case string attributes)."""
    return {k: v for k, v in vars(folder).items() if k.isupper() and isinstance(v, str)}
