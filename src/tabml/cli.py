"""The `tabml` command line: one thin command per pipeline stage and per user task.

Every path is an argument: `dvc.yaml` writes the pipeline's folders; the commands that are
not stages default to the same paths, from `tabml.core.catalog.Repo` (checked against dvc.yaml).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from tabml.core.catalog import Monitoring, Repo, Splits
from tabml.core.errors import ConfigError, DataError, TabmlError

app = typer.Typer(
    name="tabml",
    help=(
        "A reproducible MLOps pipeline for tabular binary classification.\n\n"
        "The stage commands (ingest, clean, split, train, evaluate, package build, monitor) "
        "are run by 'dvc repro' as dvc.yaml declares them. For people: predict and serve "
        "score with a package, monitor watches a new batch, report writes the pull-request "
        "comment, gate and release cut model releases, package verify checks one, append "
        "collects labelled production data for retraining, forget erases data subjects, logs "
        "prune applies the retention period, audit reviews who called the service, synth makes "
        "data for scale tests, params and datasets help with configuration."
    ),
    no_args_is_help=True,
    add_completion=False,
    # docstrings are wrapped at 100 columns; markdown mode reflows their paragraphs
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)

Params = Annotated[
    Path, typer.Option("--params", help="params.yaml composed from conf/ (see 'tabml params').")
]


@app.command()
def check(
    params: Params = Path("params.yaml"),
    stamp: Annotated[
        Path, typer.Option(help="File written once every section is valid (a dvc.yaml out).")
    ] = Path(Repo.PARAMS_CHECKED),
) -> None:
    """Validate every section of params.yaml that the pipeline's stages read, as they will
    read it: the first stage of dvc.yaml, so that a bad value (from 'dvc exp run -S', say)
    stops the run before DVC deletes any stage's outputs. ('tabml params' checks the
    commands' sections too: release, privacy.)"""
    from tabml.stages import check as stage

    stage.run(params, stamp)


@app.command()
def ingest(
    sources_dir: Annotated[
        Path, typer.Option(help="Folder that relative dataset sources live in.")
    ],
    output_dir: Annotated[Path, typer.Option(help="Where the raw Parquet files go.")],
    params: Params = Path("params.yaml"),
    erasure_ledger: Annotated[
        Path | None,
        typer.Option(help="The erasure ledger ('tabml forget'): these subjects' rows are dropped."),
    ] = None,
) -> None:
    """Read the dataset's sources, validate them (every failure at once), drop erased subjects,
    pseudonymise personal data, write Parquet.

    Streams each source a quarter batch at a time. With compute=dask in params.yaml
    (conf/compute/dask.yaml), the workers of $DASK_SCHEDULER_ADDRESS (or a local cluster)
    type and check a Parquet source, a row range a task, and this process takes the ranges in
    file order, pseudonymises and writes: the same files and the same failures as
    compute=local. A CSV source is read here. With schema.pii the scheduler must be tls:// or
    on this machine (the workers send the rows back before pseudonymisation). The workers must
    see the sources at the same path (docs/scale.md)."""
    from tabml.core.io import guard_outputs
    from tabml.stages import ingest as stage

    guard_outputs([sources_dir, params, erasure_ledger], dirs=[output_dir])
    stage.run(params, sources_dir, output_dir, ledger_file=erasure_ledger)


@app.command()
def clean(
    input_dir: Annotated[Path, typer.Option(help="Folder written by ingest.")],
    output_dir: Annotated[Path, typer.Option(help="Where clean, rejected and production go.")],
    report: Annotated[Path, typer.Option(help="The data-quality JSON report.")],
    params: Params = Path("params.yaml"),
) -> None:
    """Type and dedupe; quarantine unusable rows with a reason.

    Streams the development rows a quarter batch at a time. With compute=dask in params.yaml
    (conf/compute/dask.yaml), the workers of $DASK_SCHEDULER_ADDRESS (or a local cluster of
    compute.workers processes) read and type them, a row range a task, and this process keeps
    the file order: the files are byte for byte those of compute=local, for any worker count.
    The workers must see data/raw at the same path (docs/scale.md)."""
    from tabml.core.io import guard_outputs
    from tabml.stages import clean as stage

    guard_outputs([input_dir, params], files=[report], dirs=[output_dir])
    stage.run(params, input_dir, output_dir, report)


@app.command()
def split(
    input: Annotated[Path, typer.Option(help="The clean development Parquet file.")],
    output_dir: Annotated[Path, typer.Option(help="Where train/valid/test.parquet go.")],
    report: Annotated[Path, typer.Option(help="The split summary JSON.")],
    params: Params = Path("params.yaml"),
) -> None:
    """Split development data into train, valid and test (by time or stratified).

    Decided from the id, timestamp and target columns; the rows follow a batch at a time.
    With compute=dask in params.yaml, the Dask workers read the input a row group a task and
    deal its rows, and this process writes them in file order: the same files."""
    from tabml.core.io import guard_outputs
    from tabml.stages import split as stage

    guard_outputs([input, params], files=[report], dirs=[output_dir])
    stage.run(params, input, output_dir, report)


@app.command()
def train(
    input_dir: Annotated[Path, typer.Option(help="Folder with train.parquet and valid.parquet.")],
    model_dir: Annotated[Path, typer.Option(help="Where the model files go.")],
    live_dir: Annotated[Path, typer.Option(help="dvclive folder for the training curves.")],
    reference: Annotated[
        Path, typer.Option(help="The monitoring reference Parquet file (out-of-fold scores).")
    ],
    valid_scores: Annotated[
        Path,
        typer.Option(
            help="Parquet file of the valid split's held-out scores (id, score), from the "
            "model before any refit; evaluate chooses the threshold on them."
        ),
    ],
    params: Params = Path("params.yaml"),
) -> None:
    """Fit preprocessing and the model on train, early-stopped on valid.

    With model.refit (LightGBM), the model is then trained again on train + valid for the
    best number of rounds. Also scores the whole development set out-of-fold
    (monitor.reference.folds fold models), the reference that monitoring compares production
    against.

    With compute=dask, the LightGBM fit runs as compute.workers ranks on the Dask cluster at
    $DASK_SCHEDULER_ADDRESS (without it, on a local cluster of that many processes). The
    workers read the split files themselves: at the same path (a shared volume, or one
    machine), or from the object store at $TABML_CLUSTER_STORAGE, where this command copies
    them first. docs/scale.md.
    """
    from tabml.learning.model import import_lightgbm_without_sklearn
    from tabml.stages import train as stage

    import_lightgbm_without_sklearn()
    from tabml.core.io import guard_outputs

    guard_outputs([input_dir, params], files=[reference, valid_scores], dirs=[model_dir, live_dir])
    stage.run(params, input_dir, model_dir, live_dir, reference, valid_scores)


@app.command()
def evaluate(
    model_dir: Annotated[Path, typer.Option(help="Folder written by train.")],
    valid_scores: Annotated[
        Path, typer.Option(help="The valid split's held-out scores, written by train.")
    ],
    splits_dir: Annotated[Path, typer.Option(help="Folder with valid.parquet and test.parquet.")],
    production_dir: Annotated[Path, typer.Option(help="Folder with the clean production batch.")],
    predictions_dir: Annotated[Path, typer.Option(help="Where scored test/production go.")],
    metrics: Annotated[Path, typer.Option(help="Metrics JSON (DVC metrics).")],
    slices: Annotated[Path, typer.Option(help="Per-segment metrics JSON.")],
    plots_dir: Annotated[Path, typer.Option(help="Where the DVC plot data go.")],
    params: Params = Path("params.yaml"),
) -> None:
    """Metrics on test (and on the production batch when it has labels), slices and plots.

    The decision threshold is chosen (evaluate.threshold) on the valid split's held-out scores.
    With compute=dask, test and production are scored on the Dask cluster's workers (at
    $DASK_SCHEDULER_ADDRESS, or a local one), which read the files at the same path; the
    outputs are the same. docs/scale.md.
    """
    from tabml.core.io import guard_outputs
    from tabml.learning.model import import_lightgbm_without_sklearn
    from tabml.stages import evaluate as stage

    import_lightgbm_without_sklearn()  # this process never needs LightGBM's sklearn classes
    guard_outputs(
        [model_dir, valid_scores, splits_dir, production_dir, params],
        files=[metrics, slices],
        dirs=[predictions_dir, plots_dir],
    )
    stage.run(
        params,
        model_dir,
        valid_scores,
        splits_dir,
        production_dir,
        predictions_dir,
        metrics,
        slices,
        plots_dir,
    )


package_app = typer.Typer(
    help="Build a model package (the pipeline's package stage) or verify one.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(package_app, name="package")

PackagePath = Annotated[
    Path,
    typer.Option(
        "--package",
        help="A package folder (models/package) or a release tarball (.tar.gz); a tarball is "
        "checked against the .sha256 beside it when there is one.",
    ),
]


@package_app.command("build")
def package_build(
    model_dir: Annotated[Path, typer.Option(help="Folder written by train.")],
    metrics: Annotated[Path, typer.Option(help="Metrics JSON from evaluate.")],
    slices: Annotated[Path, typer.Option(help="Slice metrics JSON from evaluate.")],
    quality: Annotated[Path, typer.Option(help="Data-quality JSON from clean.")],
    split_report: Annotated[Path, typer.Option(help="Split summary JSON from split.")],
    data: Annotated[list[Path], typer.Option(help="Data files whose hashes metadata records.")],
    reference: Annotated[Path, typer.Option(help="The monitoring reference from train.")],
    output: Annotated[Path, typer.Option(help="The package folder to write.")],
    params: Params = Path("params.yaml"),
) -> None:
    """Write the versioned model package with its schema, metadata, card and manifest.

    The package also carries the monitoring reference and config, so 'tabml monitor' needs
    nothing else.
    """
    from tabml.core.io import guard_outputs
    from tabml.stages import package as stage

    inputs = [params, model_dir, metrics, slices, quality, split_report, *data, reference]
    guard_outputs(list(inputs), dirs=[output])
    stage.run(params, model_dir, metrics, slices, quality, split_report, data, reference, output)


@package_app.command("example")
def package_example(
    path: Annotated[Path, typer.Argument(help="A package folder or a release tarball.")],
    records: Annotated[int, typer.Option(help="How many records.", min=1, max=1_000)] = 1,
) -> None:
    """Print a /predict request body of the package's own schema (its first reference rows):
    what to send with curl, whatever the dataset.

        curl localhost:8000/predict -H "Authorization: Bearer $TOKEN" \\
          -H 'content-type: application/json' -d "$(tabml package example models/package)"
    """
    import json

    from tabml.learning import package as pkg
    from tabml.service.serving import example_request

    with pkg.unpacked(path) as folder:
        print(json.dumps(example_request(pkg.load(folder), records)))


@package_app.command("verify")
def package_verify(
    path: Annotated[Path, typer.Argument(help="A package folder or a release tarball.")],
    checksum: Annotated[
        bool,
        typer.Option(help="For a tarball, require the .sha256 file beside it and check it."),
    ] = True,
    extract_to: Annotated[
        Path | None,
        typer.Option(
            help="Once verified, write the package folder here (a new or empty folder): "
            "how the container image unpacks its release."
        ),
    ] = None,
) -> None:
    """Check a package: the release tarball's checksum, then every file against the manifest.

    Exits 0 when everything matches and 4 otherwise, naming each missing, extra or changed file.
    """
    from tabml.core import io
    from tabml.learning import package as pkg

    if extract_to is not None:
        io.guard_outputs([path], dirs=[extract_to])
        if extract_to.exists() and any(extract_to.iterdir()):
            raise TabmlError(f"{extract_to}: not empty; --extract-to writes a new folder")
    with pkg.unpacked(path, checksum_required=checksum) as folder:
        pkg.verify(folder)
        files = len((folder / pkg.MANIFEST).read_text(encoding="utf-8").splitlines())
        if extract_to is not None:
            with io.atomic_dir(extract_to) as tmp:
                shutil.copytree(folder, tmp, dirs_exist_ok=True)
            pkg.verify(extract_to)
    what = "checksum and manifest" if pkg.is_tarball(path) and checksum else "manifest"
    where = f"; unpacked to {extract_to}" if extract_to is not None else ""
    print(f"{path}: OK ({what} match; {files} files{where})")


@app.command()
def predict(
    package: PackagePath,
    input: Annotated[Path, typer.Option(help="CSV or Parquet file of records to score.")],
    output: Annotated[Path, typer.Option(help="Output file; .csv or .parquet.")],
) -> None:
    """Score a CSV or Parquet file with a verified package.

    Writes the id column, `score` (probability of the positive class) and `label`. The package's
    manifest is verified before anything is loaded; columns the schema does not know are ignored.
    """
    from tabml.core import io
    from tabml.core.log import info
    from tabml.learning import package as pkg
    from tabml.learning.predict import score

    io.guard_outputs([input, package], files=[output])
    if output.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise TabmlError(f"{output}: output must end in .csv or .parquet")
    with pkg.unpacked(package) as folder:
        loaded = pkg.load(folder)
    frame = io.read_table(input)
    info(f"predict: scoring {len(frame):,} rows from {input}")
    result = score(loaded, frame, str(input))
    if output.suffix.lower() == ".csv":
        with io.atomic_path(output) as tmp:
            result.to_csv(tmp, index=False)
    else:
        io.write_parquet(output, result)
    info(f"predict: wrote {output} (threshold {loaded.threshold:.4f})")


@app.command()
def monitor(
    package: PackagePath,
    input: Annotated[
        Path,
        typer.Option(
            help="The batch to monitor: a CSV or Parquet file, or a folder of them "
            "(e.g. daily prediction logs)."
        ),
    ],
    output_dir: Annotated[
        Path, typer.Option(help="Where summary.json, metrics.json, report.html and PNGs go.")
    ],
    labels: Annotated[
        Path | None,
        typer.Option(
            help="Optional labels (id and target) for realized performance: a file or a folder."
        ),
    ] = None,
    chunk_rows: Annotated[
        int | None, typer.Option(help="Override the package's chunking: rows per chunk.")
    ] = None,
    chunk_count: Annotated[
        int | None, typer.Option(help="Override the package's chunking: number of chunks.")
    ] = None,
    chunk_period: Annotated[
        str | None,
        typer.Option(help="Override the package's chunking: one chunk per D, W, M, Q or Y."),
    ] = None,
    fail_on_alerts: Annotated[
        bool,
        typer.Option(
            help="Exit with code 10 when any alert fires (the pipeline stage turns this off)."
        ),
    ] = True,
    allow_empty: Annotated[
        bool,
        typer.Option(
            help="A batch with no rows writes an empty report and exits 0, instead of exit 12 "
            "(the pipeline stage, for datasets with no production batch yet)."
        ),
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(help="A folder of logs: only its date= partitions from YYYY-MM-DD on."),
    ] = None,
    last_days: Annotated[
        int | None,
        typer.Option(
            help="A folder of logs: only the last N days' partitions (today included).",
            min=1,
            max=36_500,
        ),
    ] = None,
    params: Annotated[
        Path | None,
        typer.Option(
            help="A params.yaml whose `compute:` says where to run (the pipeline's stage "
            "passes its own). With compute=dask the workers of $DASK_SCHEDULER_ADDRESS (or a "
            "local cluster of compute.workers processes) score the batch and monitor its "
            "chunks; the outputs are the same. Without it, everything runs here."
        ),
    ] = None,
) -> None:
    """Drift, data quality and estimated performance of a batch, with NannyML.

    Scores the batch with the verified package, then compares it chunk by chunk with the
    package's reference (the development set, scored out-of-fold): univariate drift of every
    feature and of the score, multivariate drift, CBPE-estimated performance (and realized
    performance where --labels gives targets), missing, unseen and out-of-range values.

    --since / --last-days window a folder of prediction logs by its date= partitions, so that
    a daily run looks at the new days only and old drift does not alert again.

    A batch past this machine's memory: --params with compute=dask (docs/scale.md). Each
    worker reads, checks and scores a piece of the batch, and monitors a run of its chunks
    against the package's reference; this process holds the reference and, of the batch,
    only its ids, time stamps and row hashes (for the whole-batch checks) and the results.
    The workers read the batch at the same path (a shared volume), or from the object store
    at $TABML_CLUSTER_STORAGE, where this command copies it first.

    Exit codes: 0 no alert; 10 alerts fired (see summary.json); 12 the batch has no rows, or
    the window holds no partition (nothing was monitored: not the same as no alert); 2 bad
    config; 3 bad input (missing or unrelated columns, unreadable files); 4 a package that
    fails verification.
    """
    from tabml.core.config import ChunkingConfig, MonitorParams, parse
    from tabml.monitoring import monitor as mon
    from tabml.stages import monitor as stage

    chosen = {"rows": chunk_rows, "count": chunk_count, "period": chunk_period}
    given = {k: v for k, v in chosen.items() if v is not None}
    if len(given) > 1:
        raise TabmlError("give at most one of --chunk-rows, --chunk-count and --chunk-period")
    chunking = None
    if given:
        (method, value), *_ = given.items()
        chunking = parse(ChunkingConfig, {"method": method, method: value}, "monitor.chunking")
    from tabml.core.io import guard_outputs

    if since is not None and last_days is not None:
        raise TabmlError("give --since or --last-days, not both")
    from datetime import UTC, date, datetime, timedelta

    from tabml.governance import retention

    first_day: date | None = None
    if last_days is not None:  # today included
        today = datetime.now(UTC).date()
        first_day = retention.window_start(today, last_days, "--last-days") + timedelta(days=1)
    if since is not None:
        first_day = retention.parse_day(since, "--since")
    guard_outputs([input, labels, package, params], dirs=[output_dir])
    compute = MonitorParams.load(params).compute if params is not None else None
    summary = stage.run(
        package, input, labels, output_dir, chunking, allow_empty, first_day, compute
    )
    alerts = summary.totals.alerts.total
    if alerts and fail_on_alerts:
        print(
            f"monitor: {alerts} alerts; see {output_dir / Monitoring.SUMMARY} and "
            f"{Monitoring.REPORT}",
            file=sys.stderr,
        )
        raise typer.Exit(mon.ALERTS_EXIT_CODE)


@app.command()
def report(
    base: Annotated[
        str,
        typer.Option(
            help="Git revision to compare with: a branch (origin/main), a tag or a commit."
        ),
    ],
    output: Annotated[Path, typer.Option(help="Markdown file to write (e.g. report.md).")],
    images_dir: Annotated[
        Path | None,
        typer.Option(help="Folder for the PNG charts. Default: 'images' beside --output."),
    ] = None,
    same_rows: Annotated[
        bool,
        typer.Option(
            help="Score the base's package and this change's on the same rows for the verdict "
            "(needs the base's package in the DVC cache or the remote; without it the report "
            "says so and compares each run's own metrics)."
        ),
    ] = True,
    package: Annotated[Path, typer.Option(help="This change's package.")] = Path(Repo.PACKAGE),
    test: Annotated[Path, typer.Option(help="This change's test split.")] = Path(Repo.TEST),
    production: Annotated[Path, typer.Option(help="The clean production batch.")] = Path(
        Repo.PRODUCTION
    ),
    production_labels: Annotated[Path, typer.Option(help="Its labels.")] = Path(
        Repo.PRODUCTION_LABELS
    ),
    additions: Annotated[
        Path, typer.Option(help="Rows 'tabml append' added (to say which test rows they are).")
    ] = Path("data/external/additions.parquet"),
    charts: Annotated[
        str,
        typer.Option(
            help="'mermaid': charts as Mermaid blocks GitHub draws in the comment (nothing to "
            "upload); 'images': links to the PNGs, for 'cml comment update --publish'."
        ),
    ] = "mermaid",
    html: Annotated[
        Path | None,
        typer.Option(
            help="Also write an HTML preview of the comment, drawn offline (the Mermaid charts "
            "as SVG, no script, no network): what GitHub will show."
        ),
    ] = None,
    time_rounds: Annotated[
        int,
        typer.Option(
            help="Rounds of one-record requests that time the base's package against this "
            "change's, interleaved, on the same rows (0: no response-time line).",
            min=0,
        ),
    ] = 30,
) -> None:
    """Markdown for a pull-request comment: this workspace against --base.

    Run it in the project root after 'dvc repro'. It reads the metrics, params and plots that
    dvc.yaml declares, at --base and in the workspace, through DVC (so the base needs its
    committed metrics and plots, not its data), and writes: a verdict on test ROC AUC, every
    metric with its delta, the params that changed, base-against-this-change charts (ROC,
    precision-recall, calibration, confusion), data quality, monitoring alerts and CBPE
    estimates, and a collapsed table of everything.

    The verdict comes from the base's model (the champion) and this change's (the challenger)
    scored on the same rows, this change's test split and the labelled production batch: the
    ROC AUC difference with a 95% confidence interval (DeLong's test), so that a change of the
    data (retraining on appended rows) is judged fairly.

    The charts are Mermaid blocks by default: GitHub draws them in the comment and nothing
    leaves for another host; the PNGs are still written to --images-dir (the workflow keeps
    them as an artifact). With --charts images the Markdown links the PNGs relative to itself,
    which 'cml comment update --publish' uploads (an opt-in: docs/pull-request-report.md).
    'make report' previews it against HEAD (or BASE=REV).
    """
    from tabml.stages import report as stage

    if charts not in ("mermaid", "images"):
        raise TabmlError(f"--charts {charts!r}: 'mermaid' or 'images'")

    splits = (test.with_name(Splits.TRAIN), test.with_name(Splits.VALID))
    inputs = stage.SameRowsInputs(package, test, production, production_labels, additions, splits)
    stage.run(
        Path.cwd(),
        base,
        output,
        images_dir or output.parent / "images",
        inputs if same_rows else None,
        mermaid=charts == "mermaid",
        html=html,
        time_rounds=time_rounds,
    )


Metrics = Annotated[Path, typer.Option(help="The run's metrics (evaluate): test ROC AUC and rows.")]
MonitoringMetrics = Annotated[
    Path, typer.Option(help="The monitor stage's key figures: its alert count.")
]


@app.command()
def gate(
    params: Params = Path("params.yaml"),
    metrics: Metrics = Path(Repo.METRICS),
    monitoring: MonitoringMetrics = Path(Repo.MONITORING_METRICS),
) -> None:
    """Check the run against the release quality gates (params.yaml 'release', from conf/release/).

    Prints gate, value, limit and pass/fail: minimum test ROC AUC, maximum drop against the
    latest release's test ROC AUC (read through DVC at its GTO tag), maximum monitoring alerts,
    minimum test rows. Exits 0 when all pass and 11 when any fails.
    """
    from tabml.governance import release as rel
    from tabml.stages import release as stage

    results = stage.check(Path.cwd(), params, metrics, monitoring)
    print(rel.gate_table(results))
    if not all(g.passed for g in results):
        print(f"error: quality gates failed:\n{rel.failures(results)}", file=sys.stderr)
        raise typer.Exit(rel.GATES_FAILED_EXIT_CODE)


release_app = typer.Typer(
    help="Release the model artefact of dvc.yaml with GTO tags: register a version, build it.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(release_app, name="release")


@release_app.command("register")
def release_register(
    version: Annotated[str, typer.Option(help="Semantic version with a v: v1.2.3.")],
    params: Params = Path("params.yaml"),
    metrics: Metrics = Path(Repo.METRICS),
    monitoring: MonitoringMetrics = Path(Repo.MONITORING_METRICS),
) -> None:
    """Tag HEAD as a release of the model artefact (`gto register`): `<artifact>@<version>`.

    Refuses when the version is not semver or not above the latest release (exit 2), when git
    has uncommitted changes or 'dvc status' is not clean (exit 2), and when a quality gate
    fails (exit 11). The tag is local: 'git push origin <tag>' publishes it, and the release
    workflow builds it. 'make release VERSION=v1.2.3' runs this.
    """
    from tabml.stages import release as stage

    stage.register(Path.cwd(), version, params, metrics, monitoring)


@release_app.command("check-tag")
def release_check_tag(
    tag: Annotated[str, typer.Argument(help="A git tag, e.g. tabml-model@v1.2.3.")],
) -> None:
    """Check that a tag registers a version of dvc.yaml's artefact (GTO's parsing, semver);
    print the version. Exits 2 for anything else: another artefact, a GTO deregistration or
    deprecation (`name@v1.2.3!`), a stage assignment (`name#prod#1`), a malformed tag."""
    from tabml.governance import release as rel
    from tabml.stages.release import artifact

    name, _ = artifact(Path.cwd())
    print(rel.parse_tag(tag, name))


@release_app.command("build")
def release_build(
    tag: Annotated[str, typer.Option(help="The release tag, e.g. tabml-model@v1.2.3.")],
    output_dir: Annotated[Path, typer.Option(help="Where the release files go.")] = Path("dist"),
    pull: Annotated[
        bool, typer.Option(help="dvc repro --pull --allow-missing: reuse the DVC remote.")
    ] = False,
    package: Annotated[Path, typer.Option(help="The package folder to release.")] = Path(
        "models/package"
    ),
    params: Params = Path("params.yaml"),
    metrics: Metrics = Path(Repo.METRICS),
    monitoring: MonitoringMetrics = Path(Repo.MONITORING_METRICS),
) -> None:
    """Build a release at its tag, as the release workflow does: the local equivalent.

    Checks the tag (GTO registration of dvc.yaml's artefact, semver) and that the workspace is
    clean and at the tag; runs 'dvc repro'; checks the gates; writes
    `<artifact>-<version>.tar.gz` (byte-reproducible), its `.sha256`, `MODEL_CARD.md` and
    `RELEASE_NOTES.md` into --output-dir.
    """
    from tabml.core.io import guard_outputs
    from tabml.stages import release as stage

    guard_outputs([package, params, metrics, monitoring, Path("src")], dirs=[output_dir])
    stage.build(Path.cwd(), tag, output_dir, params, metrics, monitoring, package, pull)


@app.command()
def serve(
    package: PackagePath,
    host: Annotated[
        str, typer.Option(help="Interface to bind; 0.0.0.0 exposes it beyond this machine.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.", min=1)] = 1,
    log_dir: Annotated[
        Path | None,
        typer.Option(help="Write every prediction here, as Parquet partitioned by day."),
    ] = None,
    max_records: Annotated[int, typer.Option(help="Most records per request.", min=1)] = 1_000,
    max_body_bytes: Annotated[
        int, typer.Option(help="Largest request body; larger ones get 413.", min=1_000)
    ] = 5_000_000,
    ssl_certfile: Annotated[
        Path | None,
        typer.Option(help="Serve HTTPS with this certificate (PEM; the chain after it)."),
    ] = None,
    ssl_keyfile: Annotated[
        Path | None, typer.Option(help="The certificate's private key (PEM).")
    ] = None,
    audit_log: Annotated[
        # text, not a Path: a Path would drop the trailing "/" that asks for a folder
        str | None,
        typer.Option(
            help="Append one JSON line per request here: caller, endpoint, outcome. A folder "
            "(ending in /) gets one file per process and day: date=YYYY-MM-DD/audit-HOST-PID."
        ),
    ] = None,
    no_auth: Annotated[
        bool,
        typer.Option(
            "--no-auth",
            help="Serve without any token: anyone who reaches the port may call it. Without "
            "this, a token must be set (it fails closed).",
        ),
    ] = False,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            help="Proxies (addresses or CIDR networks, comma-separated) whose X-Forwarded-For "
            "names the client in the audit log; from any other peer it is ignored.",
        ),
    ] = "",
    header_timeout: Annotated[
        float,
        typer.Option(help="Seconds a connection may take to send a request's headers.", min=1),
    ] = 10.0,
    body_timeout: Annotated[
        float,
        typer.Option(help="Seconds a request body may take to arrive (then 408).", min=1),
    ] = 30.0,
) -> None:
    """Serve the package over HTTP: POST /predict, POST /predict/columnar, GET /health,
    GET /ready, GET /metadata, GET /metrics, /docs.

    /predict takes `{"records": [...]}`, each record with the id and every feature of the
    package's schema.json (null for a missing value), and returns a score and label per record
    with the model version; /predict/columnar takes the same records as `{"columns": [...],
    "data": [[...], ...]}`. Bad records get a 422 listing each problem with its record; bodies
    over --max-body-bytes a 413. Set TABML_API_TOKEN (or TABML_API_TOKEN_FILE, a file holding
    it, as a mounted secret) to require `Authorization: Bearer <token>` on everything but the
    probes /health (alive) and /ready (package loaded and verified; 503 once stopping),
    checked before anything else. TABML_API_TOKENS_FILE names a file of `name: token` lines,
    one per client, read again when it changes: access is given and taken back per client,
    without a restart. With no token set it refuses to start (an empty variable is an error
    too), unless --no-auth says to serve without authentication. --audit-log records every
    request with its caller's name (never the token), the peer's address and the client's
    (forwarded by a proxy named in --forwarded-allow-ips); 'tabml audit' summarises it.

    Nothing is acknowledged that is not recorded: a prediction whose log row cannot be
    written (a full disk) gets 503, and /ready says 503 until the logs can be written again.

    /metrics answers in Prometheus's text format: latency per endpoint, records scored, the
    score distribution, errors by reason and prediction-log rows written and dropped, labelled
    with the model version. --workers N runs N processes, each on its own socket of the port
    (the kernel spreads connections), and /metrics sums them all (prometheus-client's
    multiprocess mode, in a temporary folder unless PROMETHEUS_MULTIPROC_DIR is set); with
    N > 1, OpenMP threads wait passively (OMP_WAIT_POLICY=PASSIVE).

    SIGTERM (as Kubernetes and 'podman stop' send), SIGINT and SIGHUP stop taking
    connections, finish the requests in flight and flush the prediction log before exiting.
    With --workers N, a worker that dies stops the others and the command exits 1, for a
    supervisor to restart it whole.

    --ssl-certfile and --ssl-keyfile serve HTTPS (uvicorn's TLS). Plain HTTP on an address
    beyond this machine prints a warning at start: use TLS, or a proxy or ingress that
    terminates it.

    With --log-dir, a background writer logs each prediction (id, request id, time, features,
    score, label, model version; personal-data columns pseudonymised as ingest does) without
    holding up requests; 'tabml monitor --input LOG_DIR' reads them.
    """
    import dataclasses
    import json

    # LightGBM's OpenMP threads otherwise spin for a while after each prediction; with several
    # workers on few cores the spinning threads starve the workers (8 clients on 2 workers:
    # 290 requests/s spinning, 3,400 passive). One worker keeps the default: its threads spin
    # only against each other, and a 1,000-record prediction is faster for it. Set before
    # LightGBM, and so OpenMP, is loaded; the workers inherit it.
    if workers > 1:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    import uvicorn

    from tabml.core.io import guard_outputs
    from tabml.service.access import Proxies, Tokens
    from tabml.service.server import (
        SETTINGS_ENV,
        Settings,
        check_tls,
        create_app,
        hangup_stops,
        run_workers,
    )

    tokens = Tokens(os.environ)  # an unreadable or malformed token file: say so once, first
    if not tokens.enabled and not no_auth:
        raise ConfigError(
            "no token is set, and the service fails closed: set TABML_API_TOKEN (or "
            "TABML_API_TOKEN_FILE, or TABML_API_TOKENS_FILE for named clients), or give "
            "--no-auth to serve without authentication"
        )
    Proxies(forwarded_allow_ips)  # a malformed address: said now

    if log_dir is not None:
        guard_outputs([package], dirs=[log_dir])
    audit_path = Path(audit_log) if audit_log else None
    audit_folder = bool(audit_log) and (
        str(audit_log).endswith("/") or (audit_path is not None and audit_path.is_dir())
    )
    if audit_path is not None:
        if audit_folder:
            guard_outputs([package], dirs=[audit_path])
        else:
            guard_outputs([package], files=[audit_path])
    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise TabmlError("--ssl-certfile and --ssl-keyfile go together: give both, or neither")
    tls = {"ssl_certfile": str(ssl_certfile), "ssl_keyfile": str(ssl_keyfile)}
    if ssl_certfile is not None and ssl_keyfile is not None:
        check_tls(ssl_certfile, ssl_keyfile)  # before the package loads: the files, named
    if ssl_certfile is None:
        tls = {}
        if host not in ("127.0.0.1", "localhost", "::1"):
            print(
                f"warning: serving plain HTTP on {host}: requests, scores and the bearer token "
                "travel unencrypted. Give --ssl-certfile/--ssl-keyfile, or keep it behind a "
                "proxy or ingress that terminates TLS.",
                file=sys.stderr,
            )
    settings = Settings(
        package=str(package.resolve()),
        log_dir=str(log_dir.resolve()) if log_dir else None,
        max_records=max_records,
        max_body_bytes=max_body_bytes,
        # a folder keeps its trailing slash: one file per process and day inside it
        audit_log=(str(audit_path.resolve()) + ("/" if audit_folder else ""))
        if audit_path
        else None,
        no_auth=no_auth,
        forwarded_allow_ips=forwarded_allow_ips,
        body_timeout=body_timeout,
        header_timeout=header_timeout,
    )
    hangup_stops()
    if workers == 1:
        from tabml.service.server import uvicorn_options

        uvicorn.run(create_app(settings), host=host, port=port, **uvicorn_options(settings, tls))
        return
    from tabml.learning import package as pkg

    with pkg.unpacked(package) as folder:  # fail here, once, rather than in every worker
        pkg.load(folder)
    os.environ[SETTINGS_ENV] = json.dumps(dataclasses.asdict(settings))
    run_workers(host, port, workers, tls)


@app.command()
def append(
    logs: Annotated[
        Path, typer.Option(help="Prediction logs: a folder ('tabml serve --log-dir') or a file.")
    ],
    labels: Annotated[
        Path, typer.Option(help="Labels that arrived later: id and target; a file or folder.")
    ],
    sources_dir: Annotated[
        Path, typer.Option(help="Folder that relative dataset sources live in.")
    ] = Path("data/external"),
    dvc_add: Annotated[bool, typer.Option(help="Track the result with 'dvc add'.")] = True,
    params: Params = Path("params.yaml"),
) -> None:
    """Add labelled production rows to the development set, for retraining.

    Joins the logged records with their labels on the id and appends them to the file that
    `dataset.sources.additions` names under --sources-dir (e.g. data/external/additions.parquet),
    one row per id: a newer row replaces an older one, so running it twice on the same logs
    changes nothing. Then 'dvc repro' retrains with them: ingest adds them to the development
    data.
    """
    from tabml.stages import append as stage

    stage.run(params, logs, labels, sources_dir, dvc_add)


logs_app = typer.Typer(
    help="The prediction logs and labels: personal data, kept for the configured days only.",
    no_args_is_help=True,
)
app.add_typer(logs_app, name="logs")


@logs_app.command("prune")
def logs_prune(
    logs: Annotated[Path, typer.Option(help="The prediction logs.")] = Path(
        "data/serving/predictions"
    ),
    labels: Annotated[Path, typer.Option(help="The production labels.")] = Path(
        "data/serving/labels"
    ),
    audit: Annotated[
        Path | None,
        typer.Option(
            help="The audit log's folder ('tabml serve --audit-log DIR/'), pruned the same way: "
            "client addresses are kept no longer than predictions."
        ),
    ] = None,
    days: Annotated[
        int | None,
        typer.Option(
            help="Keep this many days (default: privacy.retention_days).", min=1, max=36_500
        ),
    ] = None,
    today: Annotated[
        str | None,
        typer.Option(help="The day to count back from, YYYY-MM-DD (default: today, UTC)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Say what would go; delete nothing.")] = False,
    dvc_add: Annotated[
        bool, typer.Option(help="'dvc add' the folders again where DVC tracks them.")
    ] = True,
    params: Params = Path("params.yaml"),
) -> None:
    """Delete the day partitions (date=YYYY-MM-DD/) of the prediction logs and the labels that
    are older than the retention period (conf/privacy: retention_days).

    Files outside a date= partition cannot be dated and are kept, with a warning. The monitoring
    workflow runs this before it monitors. To remove the deleted data from the DVC cache and
    remote as well: 'dvc gc' (docs/privacy.md).
    """
    import shutil
    from datetime import UTC, datetime

    from tabml.core.config import PrivacyParams
    from tabml.core.log import info
    from tabml.governance import retention

    if days is None:
        days = PrivacyParams.load(params).privacy.retention_days
    day = retention.parse_day(today, "--today") if today else datetime.now(UTC).date()
    retention.window_start(day, days, "--days")  # a bad count fails before anything goes
    if not logs.is_dir():  # nothing pruned because nothing was found is not a success
        raise DataError(
            f"{logs}: no such folder of prediction logs (--logs): nothing can be pruned there; "
            "pull the logs first ('dvc pull data/serving/predictions.dvc') or give their folder"
        )
    changed = []
    for folder in (logs, labels, *([audit] if audit is not None else [])):
        if not folder.is_dir():
            info(f"logs prune: {folder}: no such folder; nothing to prune there")
            continue
        plan = retention.plan(folder, days, day)
        for path in plan.undated:
            info(f"logs prune: {path}: not in a date=YYYY-MM-DD/ partition; kept (undated)")
        for path in plan.links:
            info(
                f"logs prune: {path}: a symbolic link, not followed nor deleted; replace it by "
                "the folder itself, or prune where it points"
            )
        for path in plan.expired:
            if not dry_run:
                shutil.rmtree(path)
        verb = "would delete" if dry_run else "deleted"
        print(
            f"{folder}: {verb} {len(plan.expired)} day partition(s) before {plan.oldest_kept} "
            f"({days} days kept); {len(plan.kept)} kept"
        )
        if plan.expired and not dry_run:
            changed.append(folder)
    if dvc_add and changed:
        from tabml.adapters import dvc_adapter

        for path in dvc_adapter.tracked_roots(Path.cwd(), changed):
            dvc_adapter.add(path)


@logs_app.command("ship")
def logs_ship(
    to: Annotated[
        str, typer.Option(help="Where: s3://bucket/prefix/<deployment> (or file:///path).")
    ],
    logs: Annotated[Path, typer.Option(help="The prediction logs on the serving volume.")] = Path(
        "/var/log/tabml/predictions"
    ),
    today: Annotated[
        str | None,
        typer.Option(help="The day that is still open, YYYY-MM-DD (default: today, UTC)."),
    ] = None,
) -> None:
    """Copy the closed day partitions of the prediction log (every day before today, UTC) to an
    object store, under URL/date=YYYY-MM-DD/. What the store holds already (same name and size)
    is not copied again, so a rerun finishes a run that was cut short; hidden files (rows still
    in the spool) never leave. Run it from a CronJob beside the service (deploy/k8s); 'tabml
    logs pull' brings the partitions to where monitoring runs."""
    from datetime import UTC, datetime

    from tabml.governance import retention
    from tabml.service import logship

    day = retention.parse_day(today, "--today") if today else datetime.now(UTC).date()
    moved = logship.ship(logs, to, day)
    print(
        f"logs ship: {len(moved.copied):,} file(s) copied to {to}, {moved.present:,} there "
        f"already; open (not shipped): {', '.join(moved.open_days) or 'none'}"
    )


@logs_app.command("pull")
def logs_pull(
    source: Annotated[
        str, typer.Option("--from", help="Where the logs were shipped: s3://bucket/prefix/...")
    ],
    to: Annotated[Path, typer.Option(help="The local folder of prediction logs.")] = Path(
        "data/serving/predictions"
    ),
    since: Annotated[
        str | None, typer.Option(help="Only the partitions from this day on (YYYY-MM-DD).")
    ] = None,
    params: Params = Path("params.yaml"),
) -> None:
    """Copy the shipped day partitions that the local folder lacks, from --since on and never
    older than the retention period (privacy.retention_days): what 'tabml monitor --input' and
    'tabml append' then read. Then 'dvc add' the folder where it is tracked."""
    from datetime import UTC, datetime

    from tabml.core.config import PrivacyParams
    from tabml.governance import retention
    from tabml.service import logship

    days = PrivacyParams.load(params).privacy.retention_days
    oldest = retention.window_start(datetime.now(UTC).date(), days, "privacy.retention_days")
    first = retention.parse_day(since, "--since") if since else None
    moved = logship.pull(source, to, first, oldest)
    print(
        f"logs pull: {len(moved.copied):,} file(s) copied to {to}, {moved.present:,} there "
        f"already, {len(moved.skipped):,} outside the window or the retention period"
    )


@app.command()
def audit(
    log: Annotated[
        Path,
        typer.Option(help="The audit log ('tabml serve --audit-log'): a file, or its folder."),
    ],
    factor: Annotated[
        float, typer.Option(help="Unusual: an hour with this many times a caller's median.")
    ] = 3.0,
    floor: Annotated[int, typer.Option(help="...and at least this many calls.")] = 100,
) -> None:
    """Who used the model: calls and records per caller, denied requests per client address,
    and hours of unusual volume (more than --factor times the caller's median calls per hour,
    and at least --floor). Exits 10 when there were denials or unusual hours, 0 otherwise."""
    from tabml.service.access import log_files, read_lines, summarise
    from tabml.service.access import printable as p

    files = log_files(log)
    if not files:
        raise DataError(f"{log}: no such audit log (a file, or a folder of *.jsonl files)")
    records = []
    for file in files:
        found, bad = read_lines(file.read_bytes())
        records += found
        if bad:
            shown = "; ".join(f"line {n}: {why}" for n, why in bad[:10])
            more = f"; and {len(bad) - 10} more" if len(bad) > 10 else ""
            print(
                f"warning: {file}: skipped {len(bad)} bad line(s): {shown}{more}", file=sys.stderr
            )
    summary = summarise(records, factor, floor)
    print(f"# Audit of {p(log)}: {summary.requests:,} requests\n")
    print("| caller | calls | records | errors | first | last |")
    print("|---|---:|---:|---:|---|---|")
    for c in summary.callers:
        print(
            f"| {p(c.caller)} | {c.calls:,} | {c.records:,} | {c.errors:,} | {p(c.first)} "
            f"| {p(c.last)} |"
        )
    print(f"\n## Denied (no or wrong token): {sum(summary.denials.values()):,}\n")
    for client, n in summary.denials.items():
        print(f"- {p(client)}: {n:,}")
    print(f"\n## Unusual volume: {len(summary.unusual)} hour(s)\n")
    for caller, hour, calls, median in summary.unusual:
        print(f"- {p(caller)}, {p(hour)}:00 UTC: {calls:,} calls (median {median:g} an hour)")
    if summary.denials or summary.unusual:
        raise typer.Exit(10)  # the alerts exit code, as 'tabml monitor' uses it


@app.command()
def forget(
    id: Annotated[
        list[str] | None, typer.Option("--id", help="A data subject's id (repeatable).")
    ] = None,
    ids: Annotated[
        Path | None, typer.Option(help="A file of ids, one per line ('#' starts a comment).")
    ] = None,
    purge: Annotated[
        bool,
        typer.Option(
            help="Also push the new state, then delete every object in the DVC cache and on "
            "the remote that still holds a subject, and name the commits this breaks."
        ),
    ] = False,
    rebuild: Annotated[bool, typer.Option(help="Run 'dvc repro' afterwards.")] = True,
    remote: Annotated[
        str | None, typer.Option(help="The DVC remote to purge (default: the default remote).")
    ] = None,
    ledger: Annotated[Path, typer.Option(help="The erasure ledger (in git).")] = Path(
        "data/erasure/ledger.txt"
    ),
    sources_dir: Annotated[
        Path, typer.Option(help="Folder that relative dataset sources live in.")
    ] = Path("data/external"),
    logs: Annotated[Path, typer.Option(help="The prediction logs.")] = Path(
        "data/serving/predictions"
    ),
    labels: Annotated[Path, typer.Option(help="The production labels.")] = Path(
        "data/serving/labels"
    ),
    params: Params = Path("params.yaml"),
) -> None:
    """Erase data subjects (the right to erasure): every row of theirs, everywhere tabml keeps
    it.

    Finds the subjects by id, then by their personal values (their other rows), in the
    dataset's own sources under --sources-dir, the `additions` that 'tabml append' collected,
    the prediction logs and the labels; rewrites those files without the rows ('dvc add' again
    where DVC tracks them); appends the subjects' keyed hashes (never the ids) to the erasure
    ledger, which ingest applies to every source, bundled ones included; then 'dvc repro'.
    Needs TABML_PII_KEY. Commit the ledger and the .dvc files afterwards.

    DVC keeps every version of the data, so older commits still point at objects holding the
    rows: --purge deletes those objects from the local cache and the remote, and lists the
    commits that can then no longer be checked out whole (docs/privacy.md). With
    $TABML_CLUSTER_STORAGE set, it also removes the copies a killed cluster run left there.
    """
    from tabml.stages import forget as stage

    given = list(id or [])
    if ids is not None:
        given += stage.read_ids(ids)
    out = stage.run(
        Path.cwd(), params, given, ledger, sources_dir, logs, labels, rebuild, purge, remote
    )
    rows = sum(out.removed.values())
    if out.resumed:
        print("forget: finished the erasure an interrupted run had started")
    if out.unmatched:
        shown = ", ".join(repr(i) for i in out.unmatched[:10])
        more = f" and {len(out.unmatched) - 10} more" if len(out.unmatched) > 10 else ""
        print(
            f"forget: {len(out.unmatched)} id(s) matched no row in the files tabml controls: "
            f"{shown}{more} (recorded in the ledger all the same: ingest drops them from any "
            "source; check the ids if you expected rows)"
        )
    print(
        f"forget: {len(given)} subject id(s): {rows:,} row(s) removed from "
        f"{len(out.removed)} file(s); {out.ledger_added} new ledger entr"
        f"{'y' if out.ledger_added == 1 else 'ies'} in {ledger}"
    )
    if purge:
        print(
            f"forget: purged {out.purged_local} object(s) from the local cache and "
            f"{out.purged_remote} from the remote"
        )
        if out.purged_cluster_copies:
            print(
                f"forget: removed {out.purged_cluster_copies} folder(s) of copies a killed "
                "cluster run had left in $TABML_CLUSTER_STORAGE"
            )
        if out.broken_commits:
            print(
                f"forget: {len(out.broken_commits)} commit(s) can no longer be checked out "
                "whole (their data held an erased subject):"
            )
            for sha in out.broken_commits:
                print(f"  {sha}")
    print(f"next: git add {ledger} and the changed .dvc files, dvc.lock; git commit")


@app.command()
def synth(
    rows: Annotated[
        int, typer.Option(help="Rows to make (written a million at a time).", min=1, max=10**10)
    ],
    output: Annotated[Path, typer.Option(help="Folder for development.parquet.")],
    sources_dir: Annotated[
        Path, typer.Option(help="Folder that relative dataset sources live in.")
    ] = Path("data/external"),
    seed: Annotated[int, typer.Option(help="Random seed (0 or more).", min=0)] = 0,
    params: Params = Path("params.yaml"),
) -> None:
    """Make a larger development set shaped like the configured dataset, for scale tests.

    Resamples the dataset's development rows with replacement and adds noise (5% of each
    numeric column's spread; 2% of categories swapped), keeping dtypes, missing-value rates,
    ranges and the time order, with new ids. Point dataset.sources.development at the result.
    """
    from tabml.core import io
    from tabml.core.config import DatasetParams
    from tabml.core.log import info
    from tabml.data import datasets
    from tabml.data.synth import batches

    loaded = DatasetParams.load(params)
    source = datasets.resolve(loaded.sources.development, sources_dir)
    target = output / "development.parquet"
    io.guard_outputs([source, params], files=[target])
    frame = io.read_table(source)
    info(f"synth: {rows:,} rows shaped like {source} ({len(frame):,} rows)")
    with io.atomic_path(target) as tmp:  # written a batch at a time; in place once complete
        sink = io.ParquetSink(tmp)
        for part in batches(frame, loaded.dataset_schema, rows, seed):
            sink.write(part)
            if rows > part.shape[0]:
                info(f"synth: {sink.rows:,} of {rows:,} rows")
        sink.close()
    info(f"synth: wrote {target}")


@app.command("init-dataset")
def init_dataset(
    file: Annotated[
        str,
        typer.Argument(
            help="The development file (CSV or Parquet) under --sources-dir, or nannyml://FILE."
        ),
    ],
    target: Annotated[
        str | None, typer.Option(help="The target column (guessed from its name if not given).")
    ] = None,
    id: Annotated[
        str | None, typer.Option("--id", help="The id column (a column unique in every row).")
    ] = None,
    timestamp: Annotated[
        str | None, typer.Option(help="The time-stamp column (guessed from dates if not given).")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="The config name (default: from the file name).")
    ] = None,
    production: Annotated[
        str | None, typer.Option(help="A later, unlabelled batch to monitor (sources.production).")
    ] = None,
    production_labels: Annotated[
        str | None, typer.Option(help="Its labels, joined on the id (sources.production_labels).")
    ] = None,
    sources_dir: Annotated[
        Path, typer.Option(help="Where ingest reads data files (dvc.yaml's --sources-dir).")
    ] = Path("data/external"),
    config_dir: Annotated[Path, typer.Option(help="Hydra config folder.")] = Path("conf"),
    make_default: Annotated[
        bool,
        typer.Option(
            "--default/--no-default",
            help="Make it the default dataset of conf/config.yaml (so 'dvc exp run' uses it).",
        ),
    ] = True,
    force: Annotated[bool, typer.Option(help="Overwrite this name's existing conf files.")] = False,
) -> None:
    """Propose a dataset config from its development file: conf/dataset/NAME.yaml, with
    conf/monitor/NAME.yaml and conf/release/NAME.yaml that it selects.

    Each column gets its kind: numbers with their range and a margin; codes and short text as
    categories, written as strings ("5", not 5.0); true/false as boolean; text unique in
    almost every row is left out. The target, id and time stamp are guessed where not given,
    and every guess is stated. Columns that look like personal data (names, e-mails, phone
    numbers) are dropped at ingest, and columns that alone predict the target (a leak) are
    left out, each with a FLAG comment for you to decide. Protected attributes are asked for,
    not assumed. The monitoring chunk size and the release gates are proposed from the data's
    size. Prints the commands that come next.
    """
    from tabml.stages import init_dataset as stage

    stage.run(
        file, sources_dir, config_dir, name, target, id, timestamp, production,
        production_labels, make_default, force,
    )  # fmt: skip


@app.command()
def tune(
    params: Params = Path("params.yaml"),
    input_dir: Annotated[
        Path, typer.Option(help="The splits: only train and valid are read.")
    ] = Path("data/processed"),
    output_dir: Annotated[
        Path, typer.Option(help="Where the study's table, summary and charts go.")
    ] = Path("reports/tuning"),
    config_dir: Annotated[
        Path, typer.Option(help="Hydra config folder (the proposal goes to its model/).")
    ] = Path("conf"),
    trials: Annotated[
        int | None, typer.Option(help="The trial budget (default: tune.trials).", min=1)
    ] = None,
    timeout_minutes: Annotated[
        float | None,
        typer.Option(
            help="Stop after this long (default: tune.timeout_minutes); not reproducible."
        ),
    ] = None,
) -> None:
    """Search LightGBM's settings with Optuna, on development data only, and propose the best
    as conf/model/<dataset>_tuned.yaml.

    The objective is ROC AUC on the valid split, early-stopped as training does (or, with
    tune.objective=cv, the mean over time-ordered folds of train + valid). Test and the
    production labels are never read. The TPE sampler is seeded and trials run one at a time,
    so the same study gives the same best trial on a rerun; a trial below the median of
    earlier ones at the same round is pruned. One line per trial: its ROC AUC, the best so far
    and the time left. Writes reports/tuning/: trials.csv, summary.json, history.png and
    importance.png. Run 'dvc repro' first (it needs the splits); the ranges are in
    conf/tune/default.yaml, and docs/tuning.md says why this is a command, not a stage.
    """
    from tabml.stages import tune as stage

    stage.run(params, input_dir, output_dir, config_dir, trials, timeout_minutes)


exp_app = typer.Typer(
    help="Experiments side by side: accuracy, response time and size (see 'dvc exp show').",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(exp_app, name="exp")


@exp_app.command("compare")
def exp_compare(
    experiments: Annotated[
        list[str] | None,
        typer.Argument(help="Experiments (as 'dvc exp show' names them) or commits."),
    ] = None,
    package: Annotated[Path, typer.Option(help="The package, in each revision.")] = Path(
        Repo.PACKAGE
    ),
    splits_dir: Annotated[
        Path, typer.Option(help="The workspace's splits: valid and test are scored.")
    ] = Path("data/processed"),
    output_dir: Annotated[Path, typer.Option(help="Where the table and chart go.")] = Path(
        "reports/compare"
    ),
    rounds: Annotated[int, typer.Option(help="Interleaved timing rounds.", min=5)] = 100,
) -> None:
    """The workspace and the chosen experiments side by side: the params that differ, valid
    and test ROC AUC with a 95% interval (DeLong), response time through the serving path
    (p50 and p99 for one record, records per second at 1,000), model size and trees, and a
    Pareto mark on accuracy against response time.

    Every package is scored on the workspace's own valid and test rows, and timed in this run
    in interleaved rounds (each round times every package, in a rotating order), so the times
    compare with each other and never with a stored figure. Writes leaderboard.md, .html (with
    the accuracy-against-latency chart) and .json; each experiment row says how to promote it
    ('tabml promote NAME').
    """
    from tabml.stages import leaderboard as stage

    stage.run(Path.cwd(), experiments or [], package, splits_dir, output_dir, rounds)


@app.command()
def promote(
    experiment: Annotated[
        str, typer.Argument(help="The experiment's name (as 'dvc exp show' lists it) or commit.")
    ],
    output: Annotated[Path, typer.Option(help="The params.yaml to write.")] = Path("params.yaml"),
    config_dir: Annotated[Path, typer.Option(help="Hydra config folder.")] = Path("conf"),
) -> None:
    """Carry an experiment's params into conf/, so that 'tabml params' and a fresh clone's
    'dvc repro' reproduce it.

    Another option of a group (-S model=logreg) becomes the default in conf/config.yaml; a
    changed value (-S model.learning_rate=0.05) is set in the file of the option that sets it
    (conf/model/lightgbm.yaml), comments kept. Then conf/ is composed again, and must give
    exactly the experiment's params.yaml, which is written. Each change is printed; review it
    with 'git diff conf/' and commit conf/ and params.yaml.
    """
    from tabml.stages import promote as stage

    stage.run(Path.cwd(), experiment, config_dir, output)


@app.command()
def params(
    output: Annotated[Path, typer.Option(help="File to write.")] = Path("params.yaml"),
    config_dir: Annotated[Path, typer.Option(help="Hydra config folder.")] = Path("conf"),
    overrides: Annotated[
        list[str] | None, typer.Argument(help="Hydra overrides, e.g. dataset=employment.")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(help="Overwrite a params.yaml that holds values conf/ does not give."),
    ] = False,
) -> None:
    """Compose conf/ into params.yaml, exactly as 'dvc exp run' does, and check it.

    Every section is validated as the stages will read it, and what the config alone can
    tell is checked now (monitoring chunking against the dataset's timestamp); a dataset that
    pseudonymises personal data gets a reminder when TABML_PII_KEY is not set.

    A params.yaml that neither this command wrote last nor git holds (an applied experiment,
    'dvc exp apply', or an edit) is not overwritten: the keys that would change are listed,
    to carry into conf/ first; --force discards them.
    """
    import tempfile

    from tabml.adapters.dvc_adapter import compose_params, conf_choices
    from tabml.core import params_guard
    from tabml.core.errors import ConfigError
    from tabml.governance.privacy import KEY_ENV
    from tabml.stages.check import in_conf_terms, validate

    with tempfile.TemporaryDirectory() as tmp:
        composed = Path(tmp) / "params.yaml"
        compose_params(config_dir, composed, overrides or [])
        try:
            validate(composed)  # a params.yaml that fails validation is never written
        except ConfigError as err:
            choices = conf_choices(config_dir, overrides or [])
            raise in_conf_terms(err, composed, config_dir, choices) from None
        if not force:
            params_guard.refuse_to_lose(output, composed.read_text(encoding="utf-8"))
        from tabml.core import io

        io.write_text(output, composed.read_text(encoding="utf-8"))
    params_guard.remember(output)
    loaded = validate(output)  # as each stage and command will read it
    schema = loaded.dataset_schema
    print(f"wrote {output} (dataset {loaded.name})", file=sys.stderr)
    hashed = sorted(c for c, action in schema.pii.items() if action == "pseudonymise")
    if hashed and not os.environ.get(KEY_ENV):
        print(
            f"note: this dataset pseudonymises {hashed}; set {KEY_ENV} before 'dvc repro' "
            "(ingest refuses to run without it)",
            file=sys.stderr,
        )


@app.command("needs-key")
def needs_key(
    base: Annotated[str, typer.Option(help="The git revision the change is compared with.")],
    params: Params = Path("params.yaml"),
    ledger: Annotated[Path, typer.Option(help="The erasure ledger (in git).")] = Path(
        "data/erasure/ledger.txt"
    ),
) -> None:
    """Say whether reproducing this change needs TABML_PII_KEY: 'yes' when ingest must run again
    (its code, data, definition or params differ from --base) on a dataset that pseudonymises
    personal data or has an erasure ledger; 'no' otherwise (ingest's outputs are then --base's,
    and 'dvc repro --pull' fetches them without the key). The pull-request workflow asks this
    before it gives the key to a run, and then only after a maintainer approves it."""
    from tabml.adapters.dvc_adapter import stage_changes
    from tabml.core.config import IngestParams
    from tabml.governance import erasure

    schema = IngestParams.load(params).dataset_schema
    personal = "pseudonymise" in schema.pii.values() or bool(erasure.read(ledger))
    changes = stage_changes(Path.cwd(), base, "ingest")
    if not personal:
        print("needs-key: the dataset pseudonymises nothing and erases no one", file=sys.stderr)
    elif not changes:
        print(f"needs-key: ingest is as at {base}: its outputs are reused", file=sys.stderr)
    else:
        print(f"needs-key: ingest runs again: {', '.join(changes[:10])}", file=sys.stderr)
    print("yes" if personal and changes else "no")


@app.command()
def datasets() -> None:
    """List the data sets bundled in the nannyml package (usable as nannyml://FILE)."""
    from tabml.data.datasets import bundled_dir, list_bundled

    print(f"# {bundled_dir()}", file=sys.stderr)
    for name in list_bundled():
        print(f"nannyml://{name}")


# the top-level modules of pyproject's `pipeline` group: absent from the serving image
PIPELINE_MODULES = frozenset(
    {"dask", "distributed", "dvc", "dvclive", "gto", "hydra", "matplotlib", "nannyml", "omegaconf",
     "plotly", "scmrepo", "sklearn", "statsmodels"}
)  # fmt: skip


def main() -> None:
    # telemetry off on every code path, before anything that could send it is imported
    os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
    os.environ.setdefault("ITERATIVE_DO_NOT_TRACK", "1")
    try:
        app()
    except TabmlError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except OSError as err:
        # a file the command could not read or write that no check above foresaw: still a
        # message (which file, what the system said), never a traceback
        where = f"{err.filename}: " if err.filename else ""
        print(f"error: {where}{err.strerror or err}", file=sys.stderr)
        sys.exit(DataError.exit_code)
    except ModuleNotFoundError as err:
        top = (err.name or "").split(".")[0]
        if top not in PIPELINE_MODULES:
            raise
        # the serving image (and `uv sync --no-group pipeline`) has only serve's dependencies
        print(
            f"error: this command needs {top}, one of tabml's pipeline dependencies, and this "
            "environment has only the serving set ('tabml serve', 'tabml predict' and "
            "'tabml package verify' work here). Run it where 'uv sync' installed the pipeline "
            "group, as 'make repro' does.",
            file=sys.stderr,
        )
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted; outputs are only replaced once complete", file=sys.stderr)
        sys.exit(130)
