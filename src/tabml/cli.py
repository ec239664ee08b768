"""The `tabml` command line: one thin command per pipeline stage and per user task.

Every path is an argument: `dvc.yaml` is the one place the pipeline's paths are written.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from tabml.errors import DataError, TabmlError

app = typer.Typer(
    name="tabml",
    help=(
        "A reproducible MLOps pipeline for tabular binary classification.\n\n"
        "The stage commands (ingest, clean, split, train, evaluate, package build, monitor) "
        "are run by 'dvc repro' as dvc.yaml declares them. For people: predict and serve "
        "score with a package, monitor watches a new batch, report writes the pull-request "
        "comment, gate and release cut model releases, package verify checks one, append "
        "collects labelled production data for retraining, synth makes data for scale tests, "
        "params and datasets help with configuration."
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
def ingest(
    sources_dir: Annotated[
        Path, typer.Option(help="Folder that relative dataset sources live in.")
    ],
    output_dir: Annotated[Path, typer.Option(help="Where the raw Parquet files go.")],
    params: Params = Path("params.yaml"),
) -> None:
    """Read the dataset's sources, validate them (every failure at once), write Parquet."""
    from tabml.io import guard_outputs
    from tabml.stages import ingest as stage

    guard_outputs([sources_dir, params], dirs=[output_dir])
    stage.run(params, sources_dir, output_dir)


@app.command()
def clean(
    input_dir: Annotated[Path, typer.Option(help="Folder written by ingest.")],
    output_dir: Annotated[Path, typer.Option(help="Where clean, rejected and production go.")],
    report: Annotated[Path, typer.Option(help="The data-quality JSON report.")],
    params: Params = Path("params.yaml"),
) -> None:
    """Type, dedupe and pseudonymise; quarantine unusable rows with a reason."""
    from tabml.io import guard_outputs
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
    """Split development data into train, valid and test (by time or stratified)."""
    from tabml.io import guard_outputs
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
    """
    from tabml.config import LightGBMDaskConfig
    from tabml.config import Params as ParamsFile
    from tabml.model import import_lightgbm_without_sklearn
    from tabml.stages import train as stage

    # LightGBM's sklearn classes are only needed by its Dask interface
    if not isinstance(ParamsFile.load(params, ("model",)).section("model"), LightGBMDaskConfig):
        import_lightgbm_without_sklearn()
    from tabml.io import guard_outputs

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
    """
    from tabml.io import guard_outputs
    from tabml.model import import_lightgbm_without_sklearn
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
    from tabml.io import guard_outputs
    from tabml.stages import package as stage

    inputs = [params, model_dir, metrics, slices, quality, split_report, *data, reference]
    guard_outputs(list(inputs), dirs=[output])
    stage.run(params, model_dir, metrics, slices, quality, split_report, data, reference, output)


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
    from tabml import io
    from tabml import package as pkg

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
    from tabml import io
    from tabml import package as pkg
    from tabml.log import info
    from tabml.predict import score

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
) -> None:
    """Drift, data quality and estimated performance of a batch, with NannyML.

    Scores the batch with the verified package, then compares it chunk by chunk with the
    package's reference (the development set, scored out-of-fold): univariate drift of every
    feature and of the score, multivariate drift, CBPE-estimated performance (and realized
    performance where --labels gives targets), missing, unseen and out-of-range values.

    Exit codes: 0 no alert; 10 alerts fired (see summary.json); 12 the batch has no rows
    (nothing was monitored: not the same as no alert); 2 bad config; 3 bad input (missing or
    unrelated columns, unreadable files); 4 a package that fails verification.
    """
    from tabml import monitor as mon
    from tabml.config import parse
    from tabml.stages import monitor as stage

    chosen = {"rows": chunk_rows, "count": chunk_count, "period": chunk_period}
    given = {k: v for k, v in chosen.items() if v is not None}
    if len(given) > 1:
        raise TabmlError("give at most one of --chunk-rows, --chunk-count and --chunk-period")
    chunking = None
    if given:
        (method, value), *_ = given.items()
        chunking = parse("monitor.chunking", {"method": method, method: value})
    from tabml.io import guard_outputs

    guard_outputs([input, labels, package], dirs=[output_dir])
    summary = stage.run(package, input, labels, output_dir, chunking, allow_empty)
    alerts = summary["totals"]["alerts"]["total"]
    if alerts and fail_on_alerts:
        print(
            f"monitor: {alerts} alerts; see {output_dir}/summary.json and report.html",
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
    package: Annotated[Path, typer.Option(help="This change's package.")] = Path("models/package"),
    test: Annotated[Path, typer.Option(help="This change's test split.")] = Path(
        "data/processed/test.parquet"
    ),
    production: Annotated[Path, typer.Option(help="The clean production batch.")] = Path(
        "data/interim/production.parquet"
    ),
    production_labels: Annotated[Path, typer.Option(help="Its labels.")] = Path(
        "data/interim/production_labels.parquet"
    ),
    additions: Annotated[
        Path, typer.Option(help="Rows 'tabml append' added (to say which test rows they are).")
    ] = Path("data/external/additions.parquet"),
) -> None:
    """Markdown for a pull-request comment: this workspace against --base.

    Run it in the project root after 'dvc repro'. It reads the metrics, params and plots that
    dvc.yaml declares, at --base and in the workspace, through DVC (so the base needs its
    committed reports, not its data), and writes: a verdict on test ROC AUC, every metric with
    its delta, the params that changed, base-against-this-change charts (ROC,
    precision-recall, calibration, confusion), data quality, monitoring alerts and CBPE
    estimates, and a collapsed table of everything.

    The verdict comes from the base's model (the champion) and this change's (the challenger)
    scored on the same rows, this change's test split and the labelled production batch: the
    ROC AUC difference with a 95% confidence interval (DeLong's test), so that a change of the
    data (retraining on appended rows) is judged fairly.

    Images are linked relative to the Markdown file, so 'cml comment update --publish
    report.md' uploads them. 'make report' previews it against HEAD (or BASE=REV).
    """
    from tabml.stages import report as stage

    splits = (test.with_name("train.parquet"), test.with_name("valid.parquet"))
    inputs = stage.SameRowsInputs(package, test, production, production_labels, additions, splits)
    stage.run(
        Path.cwd(),
        base,
        output,
        images_dir or output.parent / "images",
        inputs if same_rows else None,
    )


Metrics = Annotated[Path, typer.Option(help="The run's metrics (evaluate): test ROC AUC and rows.")]
MonitoringMetrics = Annotated[
    Path, typer.Option(help="The monitor stage's key figures: its alert count.")
]


@app.command()
def gate(
    params: Params = Path("params.yaml"),
    metrics: Metrics = Path("reports/metrics.json"),
    monitoring: MonitoringMetrics = Path("reports/monitoring/metrics.json"),
) -> None:
    """Check the run against the release quality gates (params.yaml 'release', from conf/release/).

    Prints gate, value, limit and pass/fail: minimum test ROC AUC, maximum drop against the
    latest release's test ROC AUC (read through DVC at its GTO tag), maximum monitoring alerts,
    minimum test rows. Exits 0 when all pass and 11 when any fails.
    """
    from tabml import release as rel
    from tabml.stages import release as stage

    results = stage.check(Path.cwd(), params, metrics, monitoring)
    print(rel.gate_table(results))
    if not all(g.passed for g in results):
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
    metrics: Metrics = Path("reports/metrics.json"),
    monitoring: MonitoringMetrics = Path("reports/monitoring/metrics.json"),
) -> None:
    """Tag HEAD as a release of the model artefact (`gto register`): `<artifact>@<version>`.

    Refuses when the version is not semver or not above the latest release (exit 2), when git
    has uncommitted changes or 'dvc status' is not clean (exit 2), and when a quality gate
    fails (exit 11). The tag is local: 'git push origin <tag>' publishes it, and the release
    workflow builds it. 'make release VERSION=v1.2.3' runs this.
    """
    from tabml.stages import release as stage

    stage.register(Path.cwd(), version, params, metrics, monitoring)


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
    metrics: Metrics = Path("reports/metrics.json"),
    monitoring: MonitoringMetrics = Path("reports/monitoring/metrics.json"),
) -> None:
    """Build a release at its tag, as the release workflow does: the local equivalent.

    Checks the tag (GTO registration of dvc.yaml's artefact, semver) and that the workspace is
    clean and at the tag; runs 'dvc repro'; checks the gates; writes
    `<artifact>-<version>.tar.gz` (byte-reproducible), its `.sha256`, `MODEL_CARD.md` and
    `RELEASE_NOTES.md` into --output-dir.
    """
    from tabml.io import guard_outputs
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
    checked before anything else.

    /metrics answers in Prometheus's text format: latency per endpoint, records scored, the
    score distribution, errors by reason and prediction-log rows written and dropped, labelled
    with the model version. --workers N runs N processes, each on its own socket of the port
    (the kernel spreads connections), and /metrics sums them all (prometheus-client's
    multiprocess mode, in a temporary folder unless PROMETHEUS_MULTIPROC_DIR is set); with
    N > 1, OpenMP threads wait passively (OMP_WAIT_POLICY=PASSIVE).

    SIGTERM (as Kubernetes and 'podman stop' send) stops taking connections, finishes the
    requests in flight and flushes the prediction log before exiting.

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

    from tabml import secrets
    from tabml.io import guard_outputs
    from tabml.server import SETTINGS_ENV, TOKEN_ENV, Settings, create_app, run_workers

    secrets.from_env(os.environ, TOKEN_ENV)  # an unreadable token file: say so once, first

    if log_dir is not None:
        guard_outputs([package], dirs=[log_dir])
    settings = Settings(
        package=str(package.resolve()),
        log_dir=str(log_dir.resolve()) if log_dir else None,
        max_records=max_records,
        max_body_bytes=max_body_bytes,
    )
    if workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
        return
    from tabml import package as pkg

    with pkg.unpacked(package) as folder:  # fail here, once, rather than in every worker
        pkg.load(folder)
    os.environ[SETTINGS_ENV] = json.dumps(dataclasses.asdict(settings))
    run_workers(host, port, workers)


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


@app.command()
def synth(
    rows: Annotated[int, typer.Option(help="Rows to make.", min=1)],
    output: Annotated[Path, typer.Option(help="Folder for development.parquet.")],
    sources_dir: Annotated[
        Path, typer.Option(help="Folder that relative dataset sources live in.")
    ] = Path("data/external"),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    params: Params = Path("params.yaml"),
) -> None:
    """Make a larger development set shaped like the configured dataset, for scale tests.

    Resamples the dataset's development rows with replacement and adds noise (5% of each
    numeric column's spread; 2% of categories swapped), keeping dtypes, missing-value rates,
    ranges and the time order, with new ids. Point dataset.sources.development at the result.
    """
    from tabml import datasets, io
    from tabml.config import Params as ParamsFile
    from tabml.log import info
    from tabml.synth import synthesize

    loaded = ParamsFile.load(params, ("dataset.sources", "dataset.schema"))
    source = datasets.resolve(loaded.section("dataset.sources").development, sources_dir)
    io.guard_outputs([source, params], files=[output / "development.parquet"])
    frame = io.read_table(source)
    info(f"synth: {rows:,} rows shaped like {source} ({len(frame):,} rows)")
    result = synthesize(frame, loaded.section("dataset.schema"), rows, seed)
    io.write_parquet(output / "development.parquet", result)
    info(f"synth: wrote {output / 'development.parquet'}")


@app.command()
def params(
    output: Annotated[Path, typer.Option(help="File to write.")] = Path("params.yaml"),
    config_dir: Annotated[Path, typer.Option(help="Hydra config folder.")] = Path("conf"),
    overrides: Annotated[
        list[str] | None, typer.Argument(help="Hydra overrides, e.g. dataset=employment.")
    ] = None,
) -> None:
    """Compose conf/ into params.yaml, exactly as 'dvc exp run' does, and check it.

    Every section is validated as the stages will read it, and what the config alone can
    tell is checked now (monitoring chunking against the dataset's timestamp); a dataset that
    pseudonymises personal data gets a reminder when TABML_PII_KEY is not set.
    """
    from tabml.config import SECTIONS, Params
    from tabml.dvc_adapter import compose_params
    from tabml.monitor import check_chunking
    from tabml.privacy import KEY_ENV

    compose_params(config_dir, output, overrides or [])
    loaded = Params.load(output, SECTIONS)
    for key in SECTIONS:
        loaded.section(key)
    schema = loaded.section("dataset.schema")
    check_chunking(
        loaded.section("monitor.chunking"),
        loaded.section("monitor.min_reference_chunks"),
        schema.timestamp,
    )
    print(f"wrote {output} (dataset {loaded.section('dataset.name')})", file=sys.stderr)
    hashed = sorted(c for c, action in schema.pii.items() if action == "pseudonymise")
    if hashed and not os.environ.get(KEY_ENV):
        print(
            f"note: this dataset pseudonymises {hashed}; set {KEY_ENV} before 'dvc repro' "
            "(ingest refuses to run without it)",
            file=sys.stderr,
        )


@app.command()
def datasets() -> None:
    """List the data sets bundled in the nannyml package (usable as nannyml://FILE)."""
    from tabml.datasets import bundled_dir, list_bundled

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
