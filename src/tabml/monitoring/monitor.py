"""Monitoring: the reference, the monitored batch, and the summary of what NannyML found.

Pure functions only; `tabml.stages.monitor` reads and writes, `tabml.adapters.nannyml_adapter` runs
NannyML. The reference is the development set scored out-of-fold (see `reference_frame`), so it
is large enough to give NannyML's thresholds meaning; docs/monitoring.md explains the choice.

`summarize` produces a `Summary`, written as `summary.json` (format below, documented in
docs/monitoring.md; `Summary` and its parts are the typed form every reader uses):

    format_version, model, reference {rows, chunks, folds}, analysis {rows, labelled_rows},
    chunking, methods, calibration,
    chunks: [{index, key, start, end, rows, alerts,
              drift {column: {method: cell}}, multivariate {name: cell},
              estimated {metric: cell}, realized {metric: cell},
              data_quality {missing|unseen|out_of_range: {column: cell}}}],
    totals {alerts {...}, drift_alerts_by_column, data_quality_alerts_by_column,
            performance_alerts_by_metric, first_alert_chunk, first_alert_chunk_by_column}

where a cell is {value, lower_threshold, upper_threshold, alert}, and a data-quality cell
also has `count`, the chunk's rows with such a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from tabml.core.chunking import advised_rows, chunk_count
from tabml.core.config import ChunkingConfig, MonitorConfig, SchemaConfig
from tabml.core.errors import ConfigError, DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from tabml.adapters.nannyml_adapter import Results

FORMAT_VERSION = 1
SCORE = "score"
PREDICTION = "prediction"
# `tabml monitor` exits with this when any alert fires, so a scheduled job can act on it
ALERTS_EXIT_CODE = 10


def _time_order(frame: pd.DataFrame, schema: SchemaConfig) -> pd.DataFrame:
    # chunks follow time: by timestamp when there is one, by id otherwise (as split does)
    return frame.sort_values(time_keys(schema), kind="stable").reset_index(drop=True)


def latest_rows(development: pd.DataFrame, schema: SchemaConfig, max_rows: int) -> pd.DataFrame:
    """The development rows the reference is built from: the latest `max_rows`, in time order."""
    return _time_order(development, schema).tail(max_rows).reset_index(drop=True)


def reference_frame(rows: pd.DataFrame, schema: SchemaConfig, scores: np.ndarray) -> pd.DataFrame:
    """The monitoring reference: id, timestamp, features, target and out-of-fold score."""
    cols = [schema.id, *([schema.timestamp] if schema.timestamp else [])]
    cols += [*schema.features, schema.target.column]
    return rows[cols].assign(**{SCORE: scores})


def analysis_frame(
    typed: pd.DataFrame,
    scores: np.ndarray,
    schema: SchemaConfig,
    labels: pd.DataFrame | None,
) -> pd.DataFrame:
    """The monitored batch: its features and score, with targets joined on id where known,
    in time order (`time_keys`).

    Without labels the frame has no target column at all, so nothing is mistaken for a label.
    """
    return _time_order(analysis_rows(typed, scores, schema, labels), schema)


def analysis_rows(
    typed: pd.DataFrame,
    scores: np.ndarray,
    schema: SchemaConfig,
    labels: pd.DataFrame | None,
) -> pd.DataFrame:
    """`analysis_frame` in the batch's own row order: a part of the batch, prepared where it
    was read (a Dask worker), before the whole batch is put in time order."""
    cols = [schema.id, *([schema.timestamp] if schema.timestamp else []), *schema.features]
    frame = typed[cols].assign(**{SCORE: scores})
    target = schema.target.column
    if labels is not None and len(labels):
        known = labels[[schema.id, target]].drop_duplicates(subset=schema.id, keep="last")
        frame = frame.merge(known, on=schema.id, how="left", validate="many_to_one")
    return frame


def time_keys(schema: SchemaConfig) -> list[str]:
    """The columns that put rows in time order: the timestamp and then the id, or the id alone
    (as split does); ties keep the rows' order."""
    return [schema.timestamp, schema.id] if schema.timestamp else [schema.id]


def with_predictions(frame: pd.DataFrame, threshold: float) -> pd.DataFrame:
    return frame.assign(**{PREDICTION: (frame[SCORE] >= threshold).astype("int64")})


def collapse_levels(frame: pd.DataFrame, vocab: dict[str, list[str]], other: str) -> pd.DataFrame:
    """Open-vocabulary columns as the model sees them: values outside the learnt levels become
    `other`. A new ticket number then counts towards the share of `other` (drift when that
    share moves), not as an unseen value in every chunk. Never changes `frame`."""
    if not vocab:
        return frame
    collapsed = {}
    for col, levels in vocab.items():
        values = frame[col].astype("string")
        collapsed[col] = values.where(values.isin(levels) | values.isna(), other)
    return frame.assign(**collapsed)


def blank_unseen(
    frame: pd.DataFrame, reference: Mapping[str, pd.Series] | pd.DataFrame, columns: list[str]
) -> pd.DataFrame:
    """Blank categories the reference never had, for drift only (data quality counts them).

    `reference` is the reference, or its columns' values (`known_values`). Returns `frame`
    itself when there is nothing to blank; never changes it.
    """
    blanked = {}
    for col in columns:
        values = frame[col]
        known = values.isin(reference[col].dropna().unique()) | values.isna()
        if not known.all():
            blanked[col] = values.where(known)
    return frame.assign(**blanked) if blanked else frame


def known_values(reference: pd.DataFrame, columns: list[str]) -> dict[str, pd.Series]:
    """Each column's distinct values in the reference: what `blank_unseen` needs of it."""
    import pandas as pd

    return {c: pd.Series(reference[c].dropna().unique()) for c in columns}


HOW_TO_SET = (
    "in the data set's monitoring options, conf/monitor/<dataset>.yaml: a file that starts "
    "with `defaults: [default, _self_]`, and that conf/dataset/<dataset>.yaml selects with "
    "`- override /monitor@_global_.monitor: <dataset>` under its `defaults:` ('tabml "
    "init-dataset' writes both); then run 'tabml params' and 'dvc repro'"
)
# the fewest rows per chunk that the advice proposes: below it a chunk's distances are mostly
# chance, and the thresholds drawn from them see little
MIN_ADVISED_CHUNK_ROWS = 200


def prepare(
    typed: pd.DataFrame,
    scores: np.ndarray,
    labels: pd.DataFrame | None,
    reference: pd.DataFrame,
    threshold: float,
    open_vocabularies: dict[str, list[str]],
    schema: SchemaConfig,
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """The analysis and reference frames as NannyML reads them, and the labelled rows.

    Both get the predictions at the package's threshold; a many-level categorical (an open
    vocabulary) is monitored as the model encodes it: its learnt levels, and OTHER for the rest.
    """
    analysis = as_monitored(
        analysis_frame(typed, scores, schema, labels), threshold, open_vocabularies
    )
    reference = as_monitored(reference, threshold, open_vocabularies)
    return analysis, reference, labelled_rows(analysis, schema)


def as_monitored(
    frame: pd.DataFrame, threshold: float, open_vocabularies: dict[str, list[str]]
) -> pd.DataFrame:
    """A scored frame (the reference, or the batch or a part of it) as monitoring reads it:
    the predictions at the package's threshold, and open vocabularies collapsed."""
    from tabml.core.schema import OTHER

    return collapse_levels(with_predictions(frame, threshold), open_vocabularies, OTHER)


def labelled_rows(analysis: pd.DataFrame, schema: SchemaConfig) -> int:
    """The rows of the batch (or a part of it) that have a target."""
    target = schema.target.column
    return int(analysis[target].notna().sum()) if target in analysis else 0


def check_chunking(chunking: ChunkingConfig, min_chunks: int, timestamp: str | None) -> None:
    """What the config alone can tell: period chunking needs a timestamp; count chunking must
    make at least `min_chunks` reference chunks."""
    if chunking.method == "period" and timestamp is None:
        raise ConfigError(
            "monitor.chunking.method is 'period' but the dataset has no timestamp column "
            "(dataset.schema.timestamp). Set `method: rows` under `chunking:` "
            f"{HOW_TO_SET}, or name the timestamp column in conf/dataset/."
        )
    if chunking.method == "count" and (chunking.count or 0) < min_chunks:
        raise ConfigError(
            f"monitor.chunking.count is {chunking.count}, fewer than the {min_chunks} reference "
            f"chunks monitoring needs (monitor.min_reference_chunks). Set `count: {min_chunks}` "
            f"under `chunking:` {HOW_TO_SET}."
        )


def reference_chunks(
    reference: pd.DataFrame, chunking: ChunkingConfig, timestamp: str | None
) -> int:
    """How many chunks the reference splits into under `chunking` (short chunks merged)."""
    check_chunking(chunking, 0, timestamp)
    stamps = reference[timestamp].dropna() if chunking.method == "period" and timestamp else None
    return chunk_count(chunking, len(reference), stamps)[0]


def too_few_chunks(rows: int, chunks: int, min_chunks: int, chunking: ChunkingConfig) -> DataError:
    """The error for a reference of `rows` rows that makes only `chunks` chunks."""
    how = {
        "rows": f"chunks of {chunking.rows:,} rows" if chunking.rows else "",
        "count": f"{chunking.count} chunks",
        "period": f"one chunk per period '{chunking.period}'",
    }[chunking.method]
    advised = advised_rows(rows, min_chunks)
    if chunking.method == "rows" and advised >= MIN_ADVISED_CHUNK_ROWS:
        left = rows - advised * min_chunks
        fix = (
            f"Set `rows: {advised}` under `chunking:` {HOW_TO_SET}. That makes exactly "
            f"{min_chunks} chunks of {advised:,} rows"
            + (f" (the {left} rows left over join the last one)" if left else "")
        )
    elif chunking.method == "rows":
        fix = (
            f"{rows:,} rows are too few: {min_chunks} chunks would hold {advised:,} rows each, "
            f"fewer than the {MIN_ADVISED_CHUNK_ROWS} below which a chunk's drift is mostly "
            "chance. Add development rows (or raise monitor.reference.max_rows if it cuts them)"
        )
    elif chunking.method == "count":
        fix = f"Set `count: {min_chunks}` under `chunking:` {HOW_TO_SET}"
    elif chunking.method == "period":
        fix = f"Use a shorter period, or `method: rows`, under `chunking:` {HOW_TO_SET}"
    else:
        fix = "Use more development data"
    return DataError(
        f"monitoring reference: {rows:,} rows make only {chunks} reference chunks "
        f"({how}); NannyML derives its alert thresholds from how each metric varies across "
        f"reference chunks, and needs at least {min_chunks} (monitor.min_reference_chunks). "
        f"{fix}."
    )


def check_reference_rows(
    rows: int, chunking: ChunkingConfig, min_chunks: int, timestamp: str | None
) -> None:
    """Refuse, before any training, a reference of `rows` rows that cannot make enough chunks
    (rows and count chunking: the number of rows decides it; period chunking needs the data)."""
    check_chunking(chunking, min_chunks, timestamp)
    if chunking.method == "rows":
        n = rows // (chunking.rows or 1)
        if n < min_chunks:
            raise too_few_chunks(rows, n, min_chunks, chunking)


def check_reference(
    reference: pd.DataFrame, cfg: MonitorConfig, chunking: ChunkingConfig, timestamp: str | None
) -> int:
    """Refuse a reference too small for meaningful thresholds; return its chunk count."""
    n = reference_chunks(reference, chunking, timestamp)
    if n < cfg.min_reference_chunks:
        raise too_few_chunks(len(reference), n, cfg.min_reference_chunks, chunking)
    return n


class _Part(BaseModel):
    # reading a summary written by another version of tabml (a base revision in `tabml
    # report`) ignores what this one does not know; a missing field is an error
    model_config = ConfigDict(frozen=True)


class Cell(_Part):
    """One measure of one chunk: its value, NannyML's band and whether it alerts."""

    value: float | None
    lower_threshold: float | None = None
    upper_threshold: float | None = None
    alert: bool
    # data-quality cells: the rows of the chunk with that value (where the rate is known)
    count: int | None = None


class Chunk(_Part):
    index: int
    key: str
    start: str | None = None
    end: str | None = None
    rows: int
    alerts: int
    drift: dict[str, dict[str, Cell]]  # column -> method -> cell
    multivariate: dict[str, Cell] = Field(default_factory=dict)
    estimated: dict[str, Cell] = Field(default_factory=dict)  # metric -> cell
    realized: dict[str, Cell] = Field(default_factory=dict)
    data_quality: dict[str, dict[str, Cell]] = Field(default_factory=dict)  # check -> column
    # what is unusual about the chunk: short rows merged in, or too short to alert
    note: str | None = None


class AlertCounts(_Part):
    total: int
    drift: int
    multivariate: int
    estimated_performance: int
    realized_performance: int
    data_quality: int


class Totals(_Part):
    alerts: AlertCounts
    chunks_with_alerts: int
    drift_alerts_by_column: dict[str, int]
    data_quality_alerts_by_column: dict[str, dict[str, int]] = Field(default_factory=dict)
    performance_alerts_by_metric: dict[str, int] = Field(default_factory=dict)
    first_alert_chunk: int | None
    first_alert_chunk_by_column: dict[str, int | None]


class ModelInfo(_Part):
    name: str
    kind: str
    threshold: float


class ReferenceInfo(_Part):
    rows: int
    chunks: int
    folds: int
    scores: str
    # rows of each reference chunk (short chunks merged as configured)
    chunk_rows: list[int] = Field(default_factory=list)


class AnalysisInfo(_Part):
    rows: int
    labelled_rows: int


class Methods(_Part):
    drift: dict[str, Any]
    performance: list[str]
    data_quality: dict[str, Any] = Field(default_factory=dict)


class Summary(_Part):
    """`summary.json`: what one monitoring run found (see the module docstring)."""

    format_version: int
    model: ModelInfo
    reference: ReferenceInfo
    analysis: AnalysisInfo
    chunking: dict[str, Any]
    methods: Methods
    calibration: dict[str, Any]
    chunks: list[Chunk]
    totals: Totals

    def to_json(self) -> dict[str, Any]:
        """The JSON form, with exactly the keys it was made from (no defaults added)."""
        return self.model_dump(mode="json", exclude_unset=True)

    @classmethod
    def read(cls, data: Any) -> Summary | None:
        """A summary read from JSON; None when it is absent or not one tabml can read."""
        from pydantic import ValidationError

        if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
            return None
        try:
            return cls.model_validate(data)
        except ValidationError:
            return None


def _any_alert(cells: dict[str, dict[str, Any]]) -> bool:
    return any(c["alert"] for c in cells.values())


def summarize(
    results: Results,
    cfg: MonitorConfig,
    chunking: ChunkingConfig,
    model: dict[str, Any],
    reference_rows: int,
    reference_chunk_rows: list[int],
    analysis_rows: int,
    labelled_rows: int,
    min_chunk_rows: int = 0,
) -> Summary:
    """The stable, documented summary of one monitoring run (see the module docstring).

    `min_chunk_rows` is the fewest rows a chunk of this batch may hold (tabml.core.chunking): under
    `short_chunks: merge`, a batch shorter than that is one chunk, shown without alerts.
    """
    chunks = []
    for i, info in enumerate(results.chunks):
        drift = {col: {m: cells[i] for m, cells in ms.items()} for col, ms in results.drift.items()}
        multivariate = {name: cells[i] for name, cells in results.multivariate.items()}
        estimated = {m: cells[i] for m, cells in results.estimated.items()}
        realized = {m: cells[i] for m, cells in results.realized.items()}
        quality: dict[str, dict[str, Any]] = {}
        for check in ("missing", "unseen", "out_of_range"):
            quality[check] = {}
            for col, cells in getattr(results, check).items():
                cell = dict(cells[i])
                if cell["value"] is not None:
                    cell["count"] = round(cell["value"] * info["rows"])
                quality[check][col] = cell
        note = chunk_note(info, chunking, min_chunk_rows)
        if note and info["rows"] < min_chunk_rows:
            drift, multivariate, estimated, realized, quality = _silenced(
                drift, multivariate, estimated, realized, quality
            )
        alerts = (
            sum(_any_alert(methods) for methods in drift.values())
            + sum(c["alert"] for c in multivariate.values())
            + sum(c["alert"] for c in estimated.values())
            + sum(c["alert"] for c in realized.values())
            + sum(c["alert"] for check in quality.values() for c in check.values())
        )
        chunks.append(
            {
                **info,
                "alerts": int(alerts),
                "drift": drift,
                "multivariate": multivariate,
                "estimated": estimated,
                "realized": realized,
                "data_quality": quality,
                **({"note": note} if note else {}),
            }
        )
    raw = {
        "format_version": FORMAT_VERSION,
        "model": model,
        "reference": {
            "rows": reference_rows,
            "chunks": len(reference_chunk_rows),
            "folds": cfg.reference.folds,
            "scores": "out-of-fold",
            "chunk_rows": reference_chunk_rows,
        },
        "analysis": {"rows": analysis_rows, "labelled_rows": labelled_rows},
        "chunking": chunking.model_dump(mode="json", exclude_none=True),
        "methods": {
            "drift": cfg.drift.model_dump(mode="json"),
            "performance": list(results.estimated) or list(cfg.performance.metrics),
            "data_quality": cfg.data_quality.model_dump(mode="json"),
        },
        "calibration": results.calibration,
        "chunks": chunks,
        "totals": _totals(chunks),
    }
    return Summary.model_validate(raw)


def chunk_note(info: dict[str, Any], chunking: ChunkingConfig, min_rows: int) -> str | None:
    """What a reader of the report needs to know about one batch chunk's size, if anything."""
    rows = info["rows"]
    if chunking.short_chunks != "merge" or not min_rows:
        return None
    if rows < min_rows:
        return (
            f"{rows:,} rows, fewer than the {min_rows:,} of a chunk: shown without alerts "
            "(chance alone moves a short chunk's measures)"
        )
    if chunking.method == "rows" and chunking.rows and rows > chunking.rows:
        return (
            f"holds the {rows - chunking.rows:,} rows left over after the last full chunk "
            "(merged in: a short chunk raises false alerts)"
        )
    if chunking.method == "period" and ".." in info["key"]:
        return f"periods {info['key']} together: each alone held fewer than {min_rows:,} rows"
    return None


def _silenced(*families: dict[str, Any]) -> tuple[Any, ...]:
    """The cells of every family with their alerts off (a too-short chunk: shown, not alerted)."""

    def off(node: Any) -> Any:
        if isinstance(node, dict) and "alert" in node:
            return {**node, "alert": False}
        if isinstance(node, dict):
            return {k: off(v) for k, v in node.items()}
        return node

    return tuple(off(f) for f in families)


def blind_error(
    blind: list[dict[str, Any]], chunking: ChunkingConfig, reference_chunk_rows: list[int]
) -> DataError:
    """The error for drift thresholds that no chunk can cross (nannyml_adapter._blind)."""
    lines = []
    shortest = min(reference_chunk_rows)
    for b in blind:
        band = (
            f"alerts above {b['upper_threshold']:.3f}"
            if b["upper_threshold"] is not None
            else "has no upper threshold"
        )
        lines.append(
            f"  {b['column']} ({b['method']}): {band}, but a chunk of {shortest:,} "
            f"rows all at {b['column']} = {b['probe']!r} (a common value of the reference) "
            f"scores only {b['value']:.3f}"
        )
    sizes = ", ".join(f"{n:,}" for n in reference_chunk_rows)
    fix = [
        "Use fewer, larger reference chunks: raise `rows` (or lower `count`, or use a longer "
        f"period) under `chunking:` {HOW_TO_SET}"
    ]
    if chunking.short_chunks == "keep":
        fix.insert(0, "Set `short_chunks: merge` under `chunking:`, so no reference chunk is short")
    return DataError(
        "monitoring is blind: no chunk can cross these drift thresholds, so drift would never "
        "alert:\n" + "\n".join(lines) + "\n"
        f"NannyML sets each threshold from how the metric varies across the reference chunks "
        f"(here {len(reference_chunk_rows)} chunks of {sizes} rows); a short chunk, or chunks too "
        "small to agree, widen it past anything a batch can show. "
        + " ".join(f"{n + 1}) {f}." for n, f in enumerate(fix))
        + " Nothing was written."
    )


def performance_blind(results: Results) -> list[str]:
    """Performance metrics (all within 0..1) whose band spans the whole range: no value of them
    can alert."""
    found = []
    for kind in ("estimated", "realized"):
        for metric, cells in getattr(results, kind).items():
            if not cells:
                continue
            lower, upper = cells[0]["lower_threshold"], cells[0]["upper_threshold"]
            if (lower is None or lower <= 0) and (upper is None or upper >= 1):
                found.append(f"{kind} {metric}")
    return found


def _totals(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    drift_by_col: dict[str, int] = {}
    first_by_col: dict[str, int | None] = {}
    quality_by_col: dict[str, dict[str, int]] = {}
    perf: dict[str, int] = {}
    counts = {
        "drift": 0,
        "multivariate": 0,
        "estimated_performance": 0,
        "realized_performance": 0,
        "data_quality": 0,
    }

    def seen(col: str, alert: bool, index: int) -> None:
        first_by_col.setdefault(col, None)
        if alert and first_by_col[col] is None:
            first_by_col[col] = index

    for chunk in chunks:
        i = chunk["index"]
        for col, methods in chunk["drift"].items():
            alert = _any_alert(methods)
            drift_by_col[col] = drift_by_col.get(col, 0) + int(alert)
            counts["drift"] += int(alert)
            seen(col, alert, i)
        for name, cell in chunk["multivariate"].items():
            counts["multivariate"] += int(cell["alert"])
            seen(f"multivariate:{name}", cell["alert"], i)
        for kind in ("estimated", "realized"):
            for metric, cell in chunk[kind].items():
                counts[f"{kind}_performance"] += int(cell["alert"])
                perf[f"{kind}:{metric}"] = perf.get(f"{kind}:{metric}", 0) + int(cell["alert"])
        for check, cols in chunk["data_quality"].items():
            by_col = quality_by_col.setdefault(check, {})
            for col, cell in cols.items():
                by_col[col] = by_col.get(col, 0) + int(cell["alert"])
                counts["data_quality"] += int(cell["alert"])
    first = next((c["index"] for c in chunks if c["alerts"]), None)
    return {
        "alerts": {"total": sum(counts.values()), **counts},
        "chunks_with_alerts": sum(1 for c in chunks if c["alerts"]),
        "drift_alerts_by_column": drift_by_col,
        "data_quality_alerts_by_column": quality_by_col,
        "performance_alerts_by_metric": perf,
        "first_alert_chunk": first,
        "first_alert_chunk_by_column": first_by_col,
    }


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def key_metrics(summary: Summary) -> dict[str, Any]:
    """The figures `dvc metrics diff` and `dvc exp show` show: alert counts, mean performance."""
    alerts = summary.totals.alerts
    out: dict[str, Any] = {
        "alerts": alerts.total,
        "drift_alerts": alerts.drift + alerts.multivariate,
        "data_quality_alerts": alerts.data_quality,
        "performance_alerts": alerts.estimated_performance + alerts.realized_performance,
        "chunks": len(summary.chunks),
        "chunks_with_alerts": summary.totals.chunks_with_alerts,
    }
    for kind in ("estimated", "realized"):
        for metric in summary.methods.performance:
            cells = [getattr(c, kind).get(metric) for c in summary.chunks]
            mean = _mean([cell.value for cell in cells if cell is not None])
            if mean is not None:
                out[f"{kind}_{metric}_mean"] = mean
    return out


def _cell_text(cell: Cell | None) -> str:
    if not cell or cell.value is None:
        return "n/a"
    mark = " &#9888;" if cell.alert else ""
    return f"{cell.value:.4f}{mark}"


def html_report(summary: Summary, charts: list[tuple[str, str]], title: str) -> str:
    """One self-contained page: the summary as tables, then NannyML's interactive charts.

    `charts` are (title, HTML fragment) from `nannyml_adapter.render`; the first fragment
    inlines plotly's JavaScript, so the page opens offline. Chart ids are fixed, so the same
    run gives the same page.
    """
    from html import escape

    totals = summary.totals
    alerts = totals.alerts
    first = totals.first_alert_chunk
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:3px 8px;text-align:right}th:first-child,td:first-child{text-align:left}"
        ".alert{background:#fbe3e3}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>Reference: {summary.reference.rows:,} development rows scored out-of-fold "
        f"({summary.reference.chunks} chunks). Analysis: {summary.analysis.rows:,} "
        f"rows in {len(summary.chunks)} chunks, {summary.analysis.labelled_rows:,} "
        f"with labels. Chunking: {escape(chunking_text(summary.chunking))}.</p>",
        f"<p><b>{alerts.total} alerts</b>: drift {alerts.drift}, multivariate "
        f"{alerts.multivariate}, estimated performance {alerts.estimated_performance}, "
        f"realized performance {alerts.realized_performance}, data quality "
        f"{alerts.data_quality}. First chunk with an alert: "
        f"{'none' if first is None else first + 1}.</p>",
        f"<p>CBPE calibration: {escape(calibration_text(summary.calibration))}.</p>",
    ]
    notes = [f"chunk {c.index + 1}: {c.note}" for c in summary.chunks if c.note]
    if notes:
        parts.append("<ul>" + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>")
    if summary.chunks:
        parts += _chunk_table(summary)
    for chart_title, fragment in charts:
        parts.append(f"<h2>{escape(chart_title)}</h2>")
        parts.append(fragment)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def chunking_text(chunking: dict[str, Any]) -> str:
    """The chunking settings as a reader says them: "5,000 rows per chunk, short chunks merged"."""
    method = chunking.get("method")
    if method == "rows":
        how = f"{chunking.get('rows', 0):,} rows per chunk"
    elif method == "count":
        how = f"{chunking.get('count')} chunks"
    elif method == "period":
        how = f"one chunk per period '{chunking.get('period')}'"
        if chunking.get("min_rows"):
            how += f" of at least {chunking['min_rows']:,} rows"
    else:
        how = str(method)
    short = chunking.get("short_chunks", "keep")
    return how + (", short chunks merged" if short == "merge" else ", short chunks kept")


def calibration_text(calibration: dict[str, Any]) -> str:
    if not calibration:
        return "not run"
    needed = "needed" if calibration.get("needed") else "not needed"
    return (
        f"{calibration.get('method', 'none')} ({needed}), fitted on "
        f"{calibration.get('fitted_on', 'the reference')}"
    )


def _chunk_table(summary: Summary) -> list[str]:
    """The page's table: one column per chunk, one row per measure."""
    from html import escape

    chunks = summary.chunks
    head = "".join(f"<th>{c.index + 1}</th>" for c in chunks)
    parts = [f"<h2>Per chunk</h2><table><tr><th></th>{head}</tr>"]
    parts.append("<tr><td>rows</td>" + "".join(f"<td>{c.rows:,}</td>" for c in chunks) + "</tr>")
    rows: list[tuple[str, list[Cell | None]]] = []
    for metric in summary.methods.performance:
        rows.append((f"estimated {metric}", [c.estimated.get(metric) for c in chunks]))
        rows.append((f"realized {metric}", [c.realized.get(metric) for c in chunks]))
    for col, methods in chunks[0].drift.items():
        for m in methods:
            rows.append((f"drift {col} ({m})", [c.drift[col][m] for c in chunks]))
    for name in chunks[0].multivariate:
        rows.append((f"multivariate {name}", [c.multivariate[name] for c in chunks]))
    for check, cols in chunks[0].data_quality.items():
        for col in cols:
            rows.append((f"{check} {col} (rate)", [c.data_quality[check][col] for c in chunks]))
    for label, cells in rows:
        tds = "".join(
            f'<td class="alert">{_cell_text(x)}</td>'
            if x and x.alert
            else f"<td>{_cell_text(x)}</td>"
            for x in cells
        )
        parts.append(f"<tr><td>{escape(label)}</td>{tds}</tr>")
    parts.append("</table>")
    return parts
