"""monitor: drift, data quality and estimated performance of a batch, against the reference.

The same code runs as the `monitor` stage of dvc.yaml (on the production batch) and as
`tabml monitor` for any later batch or folder of prediction logs. Everything it needs comes
from the verified package: the model, the schema, the monitoring config and the reference.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from tabml.core import io
from tabml.core.catalog import Monitoring
from tabml.core.chunking import floor as chunk_floor
from tabml.core.config import (
    ChunkingConfig,
    ComputeConfig,
    DaskCompute,
    MonitorConfig,
    MonitorParams,
    SchemaConfig,
    parse,
)
from tabml.core.errors import DataError, EmptyBatchError, PackageError
from tabml.core.log import info
from tabml.core.schema import validate
from tabml.learning import package as pkg
from tabml.monitoring import monitor as mon
from tabml.monitoring.report_process import HtmlPage
from tabml.reporting import plots
from tabml.service.predlog import with_received_time

# the monitoring config comes from the package; params.yaml says only where to run
PARAMS = MonitorParams.param_keys()


def _config(loaded: pkg.Package) -> MonitorConfig:
    raw = loaded.metadata["params"].get("monitor")
    if raw is None:
        raise PackageError(
            f"{loaded.folder}: this package has no monitoring config or reference; "
            "rebuild it with 'dvc repro' using this version of tabml"
        )
    cfg: MonitorConfig = parse(MonitorConfig, raw, "monitor")
    return cfg


def _labels(path: Path | None, schema: SchemaConfig) -> Any:
    if path is None:
        return None
    raw = io.read_batch(path, allow_empty=True)  # a file, or a folder of label batches
    if not len(raw):
        return None
    return validate(raw, schema, "labels", str(path)).frame


def _spec(schema: SchemaConfig, cfg: MonitorConfig, chunking: ChunkingConfig) -> Any:
    from tabml.adapters.nannyml_adapter import Spec

    numeric = [c for c, f in schema.features.items() if f.kind == "numeric"]
    categorical = [c for c, f in schema.features.items() if f.kind != "numeric"]
    return Spec(
        numeric=numeric,
        categorical=categorical,
        score=mon.SCORE,
        prediction=mon.PREDICTION,
        target=schema.target.column,
        timestamp=schema.timestamp,
        chunking=chunking,
        drift=cfg.drift,
        performance=cfg.performance,
        data_quality=cfg.data_quality,
    )


def run(
    package_dir: Path,
    input_path: Path,
    labels_path: Path | None,
    output_dir: Path,
    chunking: ChunkingConfig | None = None,
    allow_empty: bool = False,
    since: date | None = None,
    compute: ComputeConfig | None = None,
) -> mon.Summary:
    """Monitor one batch; write summary, metrics, HTML report and PNG charts; return summary.

    `package_dir` may also be a release tarball. The batch's columns are checked first; a
    batch with no rows is an `EmptyBatchError` (exit 12), or with `allow_empty` an empty
    report (the pipeline's stage, for a dataset with no production batch yet). `since`
    (YYYY-MM-DD) keeps only the `date=` partitions of a folder of logs from that day on.
    With `compute` a `DaskCompute`, the batch is scored and monitored on the Dask cluster
    (`tabml.compute.monitor_cluster`): the same outputs.
    """
    with pkg.unpacked(package_dir) as folder:
        loaded = pkg.load(folder)
        if isinstance(compute, DaskCompute):
            return _on_cluster(
                loaded, input_path, labels_path, output_dir, chunking, allow_empty, since, compute
            )
        return _monitor(loaded, input_path, labels_path, output_dir, chunking, allow_empty, since)


def _monitor(
    loaded: pkg.Package,
    input_path: Path,
    labels_path: Path | None,
    output_dir: Path,
    chunking: ChunkingConfig | None,
    allow_empty: bool,
    since: date | None = None,
) -> mon.Summary:
    schema = loaded.schema
    cfg = _config(loaded)
    chunking = chunking or cfg.chunking

    reference = io.read_parquet(loaded.reference)
    batch = io.read_batch(input_path, allow_empty=True, since=since)
    if since is not None and not len(batch.columns):
        raise _nothing_in_window(input_path, since)
    batch, received = with_received_time(batch, schema.timestamp)
    _said_received(received, schema)
    # the columns first: an unrelated file is an error even when it has no rows
    typed = validate(batch, schema, "production", str(input_path)).frame
    if not len(batch):
        return _empty(loaded, cfg, chunking, reference, input_path, output_dir, allow_empty)

    n_chunks = mon.check_reference(reference, cfg, chunking, schema.timestamp)
    info(f"monitor: scoring {len(typed):,} rows from {input_path}")
    pre = loaded.model.preprocessor
    analysis, reference, labelled = mon.prepare(
        typed,
        loaded.model.predict(typed),
        _labels(labels_path, schema),
        reference,
        loaded.threshold,
        {c: pre.vocab[c] for c in pre.other},
        schema,
    )
    spec = _spec(schema, cfg, chunking)

    from tabml.adapters import nannyml_adapter

    # NannyML (and plotly) imported before the page's drawing process forks, so both have them
    nannyml_adapter.load()
    output_dir.mkdir(parents=True, exist_ok=True)
    _said_nannyml(len(analysis), labelled, reference, n_chunks, chunking)
    with HtmlPage(output_dir / Monitoring.REPORT, _title(loaded)) as page:
        # each chart is drawn (in the page's process) while the next calculator runs
        results = nannyml_adapter.run(
            reference,
            analysis,
            mon.blank_unseen(analysis, reference, spec.categorical),
            spec,
            labelled=labelled > 0,
            on_chart=page.add,
        )
        if results.blind:
            raise mon.blind_error(results.blind, chunking, results.reference_chunk_rows)
        stamps = reference.get(schema.timestamp or "")
        return _finish(
            loaded, cfg, chunking, results, len(reference), stamps, len(analysis), labelled,
            page, output_dir,
        )  # fmt: skip


def _on_cluster(
    loaded: pkg.Package,
    input_path: Path,
    labels_path: Path | None,
    output_dir: Path,
    chunking: ChunkingConfig | None,
    allow_empty: bool,
    since: date | None,
    compute: DaskCompute,
) -> mon.Summary:
    """`_monitor`, with the batch scored and monitored on the Dask cluster's workers: this
    process holds the reference, the batch's ids and time stamps, and the results."""
    from tabml.adapters import nannyml_adapter
    from tabml.compute.monitor_cluster import Scoring, monitor_on_cluster

    schema = loaded.schema
    cfg = _config(loaded)
    chunking = chunking or cfg.chunking
    reference = io.read_parquet(loaded.reference)
    files = io.batch_files(input_path, since)
    if since is not None and not files:
        raise _nothing_in_window(input_path, since)
    pre = loaded.model.preprocessor
    vocab = {c: pre.vocab[c] for c in pre.other}
    scoring = Scoring(schema, loaded.model, _labels(labels_path, schema), loaded.threshold, vocab)
    prepared = mon.as_monitored(reference, loaded.threshold, vocab)
    spec = _spec(schema, cfg, chunking)
    n_chunks = 0

    def fit(labelled: bool) -> nannyml_adapter.Fitted:
        nonlocal n_chunks
        n_chunks = mon.check_reference(reference, cfg, chunking, schema.timestamp)
        fitted = nannyml_adapter.fit(prepared, spec, labelled)
        if fitted.blind:
            raise mon.blind_error(fitted.blind, chunking, fitted.reference_chunk_rows)
        return fitted

    done = monitor_on_cluster(
        files,
        str(input_path),
        scoring,
        prepared,
        spec,
        fit,
        compute,
    )
    if done is None:
        return _empty(loaded, cfg, chunking, reference, input_path, output_dir, allow_empty)
    _said_received(done.received, schema)
    nannyml_adapter.load()
    output_dir.mkdir(parents=True, exist_ok=True)
    _said_nannyml(done.rows, done.labelled, prepared, n_chunks, chunking)
    with HtmlPage(output_dir / Monitoring.REPORT, _title(loaded)) as page:
        collector = nannyml_adapter.Collector(done.fitted, spec, on_chart=page.add)
        for name, result in done.results.items():
            collector.add(name, result)
        stamps = prepared.get(schema.timestamp or "")
        return _finish(
            loaded, cfg, chunking, collector.results, len(prepared), stamps, done.rows,
            done.labelled, page, output_dir,
        )  # fmt: skip


def _nothing_in_window(input_path: Path, since: date) -> EmptyBatchError:
    return EmptyBatchError(
        f"{input_path}: no prediction logs from {since} on (no date= partition in the "
        "window): nothing was monitored, which is not the same as no drift"
    )


def _said_received(received: int, schema: SchemaConfig) -> None:
    if received:
        info(
            f"monitor: {received:,} logged rows came without '{schema.timestamp}': the time the "
            "service received them (logged_at, UTC) stands in for it"
        )


def _said_nannyml(
    rows: int, labelled: int, reference: Any, n_chunks: int, chunking: ChunkingConfig
) -> None:
    info(
        f"monitor: NannyML on {rows:,} rows ({labelled:,} labelled) against a "
        f"reference of {len(reference):,} rows in {n_chunks} chunks; chunking {chunking.method}"
    )


def _empty(
    loaded: pkg.Package,
    cfg: MonitorConfig,
    chunking: ChunkingConfig,
    reference: Any,
    input_path: Path,
    output_dir: Path,
    allow_empty: bool,
) -> mon.Summary:
    """A batch with the right columns and no rows: an error, or with `allow_empty` (the
    pipeline's stage, for a dataset with no production batch yet) an empty report."""
    if not allow_empty:
        raise EmptyBatchError(
            f"{input_path}: the batch has the right columns but no rows, so nothing was "
            "monitored (this is not 'no alerts'). Check the export that wrote it."
        )
    info(f"monitor: {input_path} has no rows; nothing to monitor (--allow-empty)")
    model_info = _model_info(loaded)
    summary = mon.summarize(_empty_results(), cfg, chunking, model_info, len(reference), [], 0, 0)
    output_dir.mkdir(parents=True, exist_ok=True)
    with HtmlPage(output_dir / Monitoring.REPORT, _title(loaded), in_process=True) as page:
        _write(summary, page, output_dir)
    return summary


def _model_info(loaded: pkg.Package) -> dict[str, Any]:
    return {"name": loaded.name, "kind": loaded.model.kind, "threshold": loaded.threshold}


def _finish(
    loaded: pkg.Package,
    cfg: MonitorConfig,
    chunking: ChunkingConfig,
    results: Any,
    reference_rows: int,
    reference_stamps: Any,
    rows: int,
    labelled: int,
    page: HtmlPage,
    output_dir: Path,
) -> mon.Summary:
    """Refuse blind performance bands; summarize the results and write every output."""
    flat = mon.performance_blind(results)
    if flat:
        raise DataError(
            f"monitoring is blind: the alert band of {', '.join(flat)} spans the whole "
            "range 0..1, so no value can alert. The reference chunks disagree too much: "
            f"use fewer, larger chunks under `chunking:` {mon.HOW_TO_SET}. Nothing was "
            "written."
        )
    summary = mon.summarize(
        results,
        cfg,
        chunking,
        _model_info(loaded),
        reference_rows,
        results.reference_chunk_rows,
        rows,
        labelled,
        min_chunk_rows=chunk_floor(chunking, rows, reference_stamps),
    )
    _write(summary, page, output_dir)
    alerts = summary.totals.alerts
    for chunk in summary.chunks:
        if chunk.note:
            info(f"monitor: chunk {chunk.index + 1}: {chunk.note}")
    info(
        f"monitor: {len(summary.chunks)} chunks, {alerts.total} alerts (drift "
        f"{alerts.drift}, multivariate {alerts.multivariate}, performance "
        f"{alerts.estimated_performance + alerts.realized_performance}, data quality "
        f"{alerts.data_quality}); wrote {output_dir}/"
    )
    return summary


def _empty_results() -> Any:
    from tabml.adapters.nannyml_adapter import Results

    return Results(chunks=[])


def _title(loaded: pkg.Package) -> str:
    return f"Monitoring report: {loaded.name}"


def _write(summary: mon.Summary, page: HtmlPage, output_dir: Path) -> None:
    """Each file is written atomically; the summary last, so it is never older than the rest.

    The HTML page is written by its own process while the PNGs are drawn here.
    """
    page.finish(summary)
    plots.drift_heatmap(summary, output_dir / Monitoring.DRIFT_CHART)
    plots.performance_chart(summary, output_dir / Monitoring.PERFORMANCE_CHART)
    plots.data_quality_chart(summary, output_dir / Monitoring.QUALITY_CHART)
    io.write_json(output_dir / Monitoring.METRICS, mon.key_metrics(summary))
    page.wait()
    io.write_json(output_dir / Monitoring.SUMMARY, summary.to_json())
