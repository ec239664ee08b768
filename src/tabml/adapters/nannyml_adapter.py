"""The one module that talks to NannyML: a NannyML upgrade touches this file only.

It fits NannyML's calculators on the reference, runs them on the analysis batch and turns their
results into plain per-chunk records (`Results`), so the rest of tabml never sees a NannyML type.
The interactive charts for the HTML report come from here too: `run` hands out each `Chart` as
soon as its result exists, and `render` draws one as an HTML fragment (in this process or in
the report process of `tabml.monitoring.report_process`; a `Chart` carries no data rows).

NannyML sends usage events keyed by a hardware id unless `NML_DISABLE_USAGE_LOGGING` is set, so
`_nannyml()` sets it before the first import, on every code path that reaches NannyML.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tabml.core import chunking
from tabml.core.config import ChunkingConfig, DataQualityConfig, DriftConfig, PerformanceConfig
from tabml.core.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

# NannyML's names for the multivariate results
MULTIVARIATE = {
    "data_reconstruction": "reconstruction_error",
    "domain_classifier": "domain_classifier_auroc",
}


def load() -> None:
    """Import NannyML (and with it plotly) now, with usage logging off."""
    _nannyml()


def _nannyml() -> Any:
    """Import NannyML with its usage logging off (it is read on every event, so set it first)."""
    os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"
    import nannyml

    return nannyml


@dataclass(frozen=True)
class Spec:
    """What to monitor: the columns by role, and the monitor config."""

    numeric: list[str]
    categorical: list[str]
    score: str
    prediction: str
    target: str
    timestamp: str | None
    chunking: ChunkingConfig
    drift: DriftConfig
    performance: PerformanceConfig
    data_quality: DataQualityConfig

    @property
    def features(self) -> list[str]:
        return self.numeric + self.categorical


Cell = dict[str, Any]  # value, lower_threshold, upper_threshold, alert (+ extras)


@dataclass
class Results:
    """Per-chunk records of every calculator, for the analysis period only."""

    chunks: list[dict[str, Any]]
    drift: dict[str, dict[str, list[Cell]]] = field(default_factory=dict)  # column -> method
    multivariate: dict[str, list[Cell]] = field(default_factory=dict)
    estimated: dict[str, list[Cell]] = field(default_factory=dict)
    realized: dict[str, list[Cell]] = field(default_factory=dict)
    missing: dict[str, list[Cell]] = field(default_factory=dict)
    unseen: dict[str, list[Cell]] = field(default_factory=dict)
    out_of_range: dict[str, list[Cell]] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)
    charts: list[Chart] = field(default_factory=list)
    # rows of each reference chunk, as the calculators cut it
    reference_chunk_rows: list[int] = field(default_factory=list)
    # drift thresholds no chunk can cross: {column, method, value, probe, lower_threshold,
    # upper_threshold} (see `_blind`); when any, the other calculators are not run
    blind: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Chart:
    """One of NannyML's interactive charts, not drawn yet: `render` draws it."""

    title: str
    result: Any  # a NannyML result (or a comparison of two) without its data rows
    kind: str | None = None  # NannyML's plot kind, for results that have several


# NannyML results keep the frames they were computed on, for distribution plots (which tabml
# does not draw): for a 1,000,000-row batch that is ~100 MB per chart
_ROW_DATA = ("analysis_data", "reference_data")


def _without_rows(result: Any) -> Any:
    light = copy.copy(result)
    for name in _ROW_DATA:
        if getattr(light, name, None) is not None:
            setattr(light, name, None)
    for name in ("result", "other"):  # a comparison holds two results
        inner = getattr(light, name, None)
        if inner is not None:
            setattr(light, name, _without_rows(inner))
    return light


def render(chart: Chart, div_id: str, with_plotly_js: bool) -> str:
    """The chart as an HTML fragment; `with_plotly_js` inlines plotly's JavaScript (once a page)."""
    with _quiet_and_explained():
        figure = chart.result.plot(kind=chart.kind) if chart.kind else chart.result.plot()
    html: str = figure.to_html(full_html=False, include_plotlyjs=with_plotly_js, div_id=div_id)
    return html


def _chunker(nml: Any, spec: Spec, reference: pd.DataFrame) -> Any:
    """NannyML's chunker for the config, with short chunks merged as tabml.core.chunking says (the
    same chunker cuts the reference and the batch)."""
    from nannyml.chunk import ChunkerFactory

    c = spec.chunking
    base = ChunkerFactory.get_chunker(
        chunk_size=c.rows if c.method == "rows" else None,
        chunk_number=c.count if c.method == "count" else None,
        chunk_period=c.period if c.method == "period" else None,
        timestamp_column_name=spec.timestamp,
    )
    if c.short_chunks == "keep":
        return base
    period_floor = None
    if c.method == "period":
        assert spec.timestamp is not None
        period_floor = chunking.floor(c, len(reference), reference[spec.timestamp])
    return _merging_chunker(base, c, period_floor)


def _merging_chunker(base: Any, config: ChunkingConfig, period_floor: int | None) -> Any:
    """A `MergingChunker` (a module-level name, so a chart holding one can be pickled)."""
    return _merging_chunker_class()(base, config, period_floor)


@functools.cache
def _merging_chunker_class() -> type:
    """A NannyML Chunker that cuts as `base` does, then merges short chunks (defined on first
    use: NannyML is imported lazily)."""
    import pandas as pd
    from nannyml.chunk import Chunk, Chunker

    class MergingChunker(Chunker):
        def __init__(self, base: Any, config: ChunkingConfig, period_floor: int | None) -> None:
            super().__init__(base.timestamp_column_name)
            self.base = base
            self.config = config
            self.period_floor = period_floor

        def __reduce__(self) -> tuple[Any, ...]:
            return (_merging_chunker, (self.base, self.config, self.period_floor))

        def _split(self, data: pd.DataFrame) -> list[Any]:
            parts = self.base._split(data)
            floor = self.period_floor or chunking.min_rows(self.config, len(data), None)
            plan = chunking.merge_plan([len(p) for p in parts], floor)
            return [self._join([parts[i] for i in group]) for group in plan]

        def _join(self, parts: list[Any]) -> Any:
            if len(parts) == 1:
                return parts[0]
            first, last = parts[0], parts[-1]
            if self.config.method == "period":
                key = f"{first.key}..{last.key}"
            else:
                key = f"[{first.start_index}:{last.end_index}]"
            return Chunk(
                key=key,
                data=pd.concat([p.data for p in parts]),
                start_datetime=first.start_datetime,
                end_datetime=last.end_datetime,
                start_index=first.start_index,
                end_index=last.end_index,
            )

    return MergingChunker


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """NannyML needs NumPy-style missing values (NaN), not pandas' nullable NA."""
    import numpy as np
    import pandas as pd

    changed: dict[str, Any] = {}
    for col, values in frame.items():
        dtype = values.dtype
        if isinstance(dtype, pd.StringDtype) and dtype.na_value is pd.NA:
            changed[str(col)] = values.astype("str")
        elif isinstance(dtype, pd.BooleanDtype):
            # NumPy bool when nothing is missing: NannyML on an object column is several
            # times slower (about 1 s per 1,000,000 rows for one column)
            changed[str(col)] = (
                values.to_numpy(dtype=object, na_value=np.nan)
                if values.hasnans
                else values.to_numpy(dtype=bool)
            )
        elif isinstance(dtype, (pd.Int8Dtype, pd.Int16Dtype, pd.Int32Dtype, pd.Int64Dtype)):
            changed[str(col)] = values.astype("float64")
    return frame.assign(**changed) if changed else frame


def _number(value: Any) -> float | None:
    if value is None:
        return None
    out = float(value)
    return None if math.isnan(out) else out


def _cells(frame: pd.DataFrame, prefix: tuple[str, ...]) -> list[Cell]:
    """One record per row from the columns under `prefix` of a NannyML result frame."""
    sub = frame.sort_index(axis=1)[prefix]
    columns = {
        key: sub[key].tolist() if key in sub.columns else [None] * len(sub)
        for key in ("value", "lower_threshold", "upper_threshold", "alert")
    }
    return [
        {
            "value": _number(value),
            "lower_threshold": _number(lower),
            "upper_threshold": _number(upper),
            "alert": bool(alert) if alert is not None and alert == alert else False,
        }
        for value, lower, upper, alert in zip(*columns.values(), strict=True)
    ]


def _chunk_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    import pandas as pd

    info = frame["chunk"]
    if isinstance(info.columns, pd.MultiIndex):
        info = info["chunk"]
    records = []
    for _, row in info.iterrows():
        start, end = row.get("start_date"), row.get("end_date")
        records.append(
            {
                "index": int(row["chunk_index"]),
                "key": str(row["key"]),
                "start": None
                if start is None or pd.isna(start)
                else pd.Timestamp(start).isoformat(),
                "end": None if end is None or pd.isna(end) else pd.Timestamp(end).isoformat(),
                "rows": int(row["end_index"]) - int(row["start_index"]) + 1,
            }
        )
    return records


@contextlib.contextmanager
def _quiet_and_explained() -> Iterator[None]:
    """Silence NannyML's Python warnings and log lines (per chunk); turn its errors into one
    that says what failed. (LightGBM's own messages from the domain classifier are turned off
    by its settings: `_domain_classifier_params`.)"""
    import logging
    import warnings

    nml = _nannyml()
    # NannyML and pandas warn per chunk about things tabml handles (short chunks, unlabelled
    # rows, index performance); the summary reports what matters
    logging.getLogger("nannyml").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    except nml.exceptions.NannyMLException as err:
        raise DataError(
            f"monitoring: NannyML failed: {err}\nCheck the batch against the reference "
            "(column types, chunking) or report it with the command you ran."
        ) from err


@dataclass(frozen=True)
class PlannedChunk:
    """One chunk of the batch: its rows `start`..`end` (inclusive) in the batch's time order."""

    index: int
    key: str
    start: int
    end: int
    start_datetime: Any = None
    end_datetime: Any = None


def plan_chunks(
    reference: pd.DataFrame, spec: Spec, rows: int, stamps: pd.Series | None = None
) -> list[PlannedChunk]:
    """The chunks the configured chunker cuts a batch of `rows` rows into, planned from the
    batch's time stamps alone (`stamps`, in the batch's time order; needed with a timestamp
    column). The plan is made once for the whole batch, so a part of it can be monitored
    apart (`calculate`) and its chunks are the ones the whole batch has.

    The batch must already be in time order: the chunks are runs of consecutive rows. (NannyML
    sorts by the timestamp itself, with an unstable sort; rows that share a time stamp then
    fell into chunks by chance. Here they keep the batch's order, which breaks ties by id.)
    """
    import pandas as pd

    with _quiet_and_explained():
        chunker = _chunker(_nannyml(), spec, reference)
        if spec.timestamp is None:
            frame = pd.DataFrame(index=pd.RangeIndex(rows))
        else:
            if stamps is None or len(stamps) != rows:
                raise ValueError("plan_chunks needs one time stamp for each row")
            frame = pd.DataFrame({spec.timestamp: stamps.to_numpy()})
        return [
            PlannedChunk(
                c.chunk_index,
                str(c.key),
                int(c.start_index),
                int(c.end_index),
                c.start_datetime,
                c.end_datetime,
            )
            for c in chunker.split(frame)
        ]


def _planned_chunker(plan: list[PlannedChunk], timestamp: str | None) -> Any:
    """A `PlannedChunker` (a module-level name, so a result holding one can be pickled)."""
    return _planned_chunker_class()(plan, timestamp)


@functools.cache
def _planned_chunker_class() -> type:
    """A NannyML Chunker that cuts a part of the batch into its planned chunks (defined on first
    use: NannyML is imported lazily)."""
    from nannyml.chunk import Chunk, Chunker

    class PlannedChunker(Chunker):
        def __init__(self, plan: list[PlannedChunk], timestamp: str | None) -> None:
            super().__init__(timestamp)
            self.plan = plan

        def __reduce__(self) -> tuple[Any, ...]:
            return (_planned_chunker, (self.plan, self.timestamp_column_name))

        def split(self, data: pd.DataFrame, columns: Any = None) -> list[Any]:
            # `data` holds exactly the plan's rows, in time order (NannyML's own `split` would
            # sort them again, without a stable sort)
            first = self.plan[0].start
            if len(data) != self.plan[-1].end - first + 1:
                raise ValueError(
                    f"{len(data)} rows for planned chunks of {self.plan[-1].end - first + 1} rows"
                )
            chunks = []
            for p in self.plan:
                rows = data.iloc[p.start - first : p.end - first + 1]
                chunk = Chunk(
                    key=p.key,
                    data=rows if columns is None else rows[columns],
                    start_datetime=p.start_datetime,
                    end_datetime=p.end_datetime,
                    start_index=p.start,
                    end_index=p.end,
                )
                chunk.chunk_index = p.index
                chunks.append(chunk)
            return chunks

        def _split(self, data: pd.DataFrame) -> list[Any]:
            raise NotImplementedError("a planned chunker only splits through `split`")

    return PlannedChunker


@dataclass
class Fitted:
    """The calculators fitted on the reference, by name in report order (a calculator's
    `calculate` changes it: give each run its own copy); how the reference was cut; and the
    drift thresholds no chunk can cross (`_blind`; when any, nothing else is fitted)."""

    calculators: dict[str, Any]
    reference_chunk_rows: list[int]
    blind: list[dict[str, Any]] = field(default_factory=list)

    @property
    def labelled(self) -> bool:
        return "realized" in self.calculators


def run(
    reference: pd.DataFrame,
    analysis: pd.DataFrame,
    analysis_for_drift: pd.DataFrame,
    spec: Spec,
    labelled: bool,
    charts: bool = True,
    on_chart: Callable[[Chart], None] | None = None,
) -> Results:
    """Fit every configured calculator on the reference and run it on the analysis batch.

    Args:
        reference: development rows with features, out-of-fold score, prediction and target.
        analysis: the production batch with features, score and prediction (target if
            labelled), in time order.
        analysis_for_drift: `analysis` with values never seen in the reference blanked, so one
            new category shows as a data-quality alert instead of drift in every chunk.
        spec: columns and config.
        labelled: whether `analysis` has targets for realized performance.
        charts: also collect NannyML's interactive charts (for the HTML report), undrawn.
        on_chart: called with each chart as soon as its result exists, so that drawing it
            can overlap the calculators that follow.

    This is `fit`, `plan_chunks`, `calculate` and `Collector` on the whole batch; a cluster
    runs `calculate` on parts of it and joins the parts' results (`join`) for the collector.
    """
    fitted = fit(reference, spec, labelled)
    if fitted.blind:
        return Results(
            chunks=[], blind=fitted.blind, reference_chunk_rows=fitted.reference_chunk_rows
        )
    stamps = analysis[spec.timestamp] if spec.timestamp else None
    plan = plan_chunks(reference, spec, len(analysis), stamps)
    collector = Collector(fitted, spec, charts, on_chart)
    calculate(fitted, plan, analysis, analysis_for_drift, spec, collector.add)
    return collector.results


def fit(reference: pd.DataFrame, spec: Spec, labelled: bool) -> Fitted:
    """Every configured calculator fitted on the reference (`labelled`: the batch has targets,
    so realized performance is measured too); only univariate drift when its thresholds are
    blind."""
    with _quiet_and_explained():
        nml = _nannyml()
        reference = _plain(reference)
        chunker = _chunker(nml, spec, reference)
        kw = {"chunker": chunker, "timestamp_column_name": spec.timestamp}
        reference_chunk_rows = [len(c) for c in chunker.split(reference)]
        univariate = _univariate(nml, spec, kw).fit(reference)
        blind = _blind(univariate, reference, spec, min(reference_chunk_rows))
        fitted = Fitted({"univariate": univariate}, reference_chunk_rows, blind)
        if blind:
            return fitted  # thresholds that cannot alert: the caller refuses the run
        for name, calc in _calculators(nml, spec, kw, len(reference), labelled):
            fitted.calculators[name] = calc.fit(reference)
        return fitted


def calculate(
    fitted: Fitted,
    plan: list[PlannedChunk],
    analysis: pd.DataFrame,
    analysis_for_drift: pd.DataFrame,
    spec: Spec,
    each: Callable[[str, Any], None],
) -> None:
    """Run each fitted calculator on the rows of the planned chunks `plan` (consecutive chunks
    of the batch; `analysis` and `analysis_for_drift` hold exactly their rows, in time order),
    and hand `each` its name and result (the reference's chunks and these) as soon as it
    exists. Each chunk's values depend on its rows and the reference alone, so any cut of the
    batch into parts gives the same chunks."""
    import pandas as pd

    positions = pd.RangeIndex(plan[0].start, plan[-1].end + 1)
    with _quiet_and_explained():
        chunker = _planned_chunker(plan, spec.timestamp)
        analysis = _plain(analysis).set_axis(positions)
        drift_batch = _plain(analysis_for_drift).set_axis(positions)
        for name, calc in fitted.calculators.items():
            calc.chunker = chunker
            if name == "cbpe":
                # without the targets: CBPE would otherwise also compute realized performance,
                # which the performance calculator does once
                result = calc.estimate(analysis.drop(columns=[spec.target], errors="ignore"))
            else:
                result = calc.calculate(drift_batch if name in _ON_DRIFT_BATCH else analysis)
            each(name, result)


# the calculators that see the batch with unseen categories blanked
_ON_DRIFT_BATCH = ("univariate", *MULTIVARIATE)


def join(parts: list[Any]) -> Any:
    """One calculator's results on consecutive parts of the batch, in order, as one result: the
    reference's chunks once, then each part's chunks."""
    import pandas as pd

    whole = copy.copy(parts[0])
    frames = [parts[0].filter(period="reference").data]
    frames += [part.filter(period="analysis").data for part in parts]
    whole.data = pd.concat(frames, ignore_index=True)
    return whole


def without_rows(result: Any) -> Any:
    """A result without the data frames it was computed on (for charts, and to send back
    from a worker): only its per-chunk values."""
    return _without_rows(result)


class Collector:
    """Turns each calculator's result into `Results` records and a chart, in report order."""

    def __init__(
        self,
        fitted: Fitted,
        spec: Spec,
        charts: bool = True,
        on_chart: Callable[[Chart], None] | None = None,
    ) -> None:
        self.fitted = fitted
        self.spec = spec
        self.sink = _ChartSink(on_chart) if charts else None
        self.results = Results(chunks=[], reference_chunk_rows=fitted.reference_chunk_rows)
        self.estimated: Any = None

    def add(self, name: str, result: Any) -> None:
        with _quiet_and_explained():
            self._add(name, result)
        if self.sink is not None:
            self.results.charts = self.sink.made

    def _add(self, name: str, result: Any) -> None:
        out, spec = self.results, self.spec
        analysed = result.filter(period="analysis").to_df()
        if name == "univariate":
            out.chunks = _chunk_records(analysed)
            for col in [*spec.features, spec.score]:
                methods = (
                    spec.drift.categorical_methods
                    if col in spec.categorical
                    else spec.drift.continuous_methods
                )
                out.drift[col] = {m: _cells(analysed, (col, m)) for m in methods}
            self._chart("Univariate drift", result, "drift")
        elif name in MULTIVARIATE:
            out.multivariate[name] = _cells(analysed, (MULTIVARIATE[name],))
            self._chart(f"Multivariate drift: {name}", result)
        elif name == "cbpe":
            metrics = list(spec.performance.metrics)
            out.estimated = {m: _cells(analysed, (m,)) for m in metrics}
            needed = bool(self.fitted.calculators["cbpe"].needs_calibration)
            out.calibration = {
                "needed": needed,
                "method": "isotonic" if needed else "none",
                "fitted_on": "reference (out-of-fold scores of the development set)",
            }
            self.estimated = result
            if not self.fitted.labelled:
                self._chart("Estimated performance (CBPE)", result)
        elif name == "realized":
            metrics = list(spec.performance.metrics)
            out.realized = {m: _cells(analysed, (m,)) for m in metrics}
            for m in metrics:
                both = self.estimated.filter(metrics=[m]).compare(result.filter(metrics=[m]))
                self._chart(f"{m}: estimated (CBPE) against realized", both)
        else:
            title, columns = _DATA_QUALITY[name]
            getattr(out, name).update({c: _cells(analysed, (c,)) for c in columns(spec)})
            self._chart(f"Data quality: {title}", result)

    def _chart(self, title: str, result: Any, kind: str | None = None) -> None:
        if self.sink is not None:
            self.sink.chart(title, result, kind)


class _ChartSink:
    """Collects the charts (without the batch's rows) and passes each on as soon as it exists."""

    def __init__(self, on_chart: Callable[[Chart], None] | None) -> None:
        self.made: list[Chart] = []
        self.on_chart = on_chart

    def chart(self, title: str, result: Any, kind: str | None = None) -> None:
        made = Chart(title, _without_rows(result), kind)
        self.made.append(made)
        if self.on_chart is not None:
            self.on_chart(made)


def _univariate(nml: Any, spec: Spec, kw: dict[str, Any]) -> Any:
    """Univariate drift of every feature and the score."""
    return nml.UnivariateDriftCalculator(
        column_names=[*spec.features, spec.score],
        treat_as_numerical=[*spec.numeric, spec.score],
        treat_as_categorical=spec.categorical or None,
        continuous_methods=list(spec.drift.continuous_methods),
        categorical_methods=list(spec.drift.categorical_methods),
        **kw,
    )


def _calculators(
    nml: Any, spec: Spec, kw: dict[str, Any], reference_rows: int, labelled: bool
) -> Iterator[tuple[str, Any]]:
    """The calculators after univariate drift, unfitted, in report order: multivariate drift
    as configured; performance estimated by CBPE (no labels needed) and realized where there
    are labels; missing values (against the reference's band), unseen categories and numbers
    out of the reference's range (against the configured maximum rates)."""
    from nannyml.thresholds import ConstantThreshold

    if spec.drift.data_reconstruction:
        yield (
            "data_reconstruction",
            nml.DataReconstructionDriftCalculator(column_names=spec.features, **kw),
        )
    if spec.drift.domain_classifier:
        yield (
            "domain_classifier",
            nml.DomainClassifierCalculator(
                feature_column_names=spec.features,
                treat_as_categorical=spec.categorical or None,
                hyperparameters=_domain_classifier_params(reference_rows),
                **kw,
            ),
        )
    # CBPE (estimated) and the performance calculator (realized) score the same columns
    scored = {
        "metrics": list(spec.performance.metrics),
        "y_pred_proba": spec.score,
        "y_pred": spec.prediction,
        "y_true": spec.target,
        "problem_type": "classification_binary",
        **kw,
    }
    yield "cbpe", nml.CBPE(**scored)
    if labelled:
        yield "realized", nml.PerformanceCalculator(**scored)
    dq = spec.data_quality
    if spec.features:
        yield "missing", nml.MissingValuesCalculator(column_names=spec.features, **kw)
    if spec.categorical:
        threshold = ConstantThreshold(lower=None, upper=dq.unseen_max_rate)
        yield (
            "unseen",
            nml.UnseenValuesCalculator(column_names=spec.categorical, threshold=threshold, **kw),
        )
    if spec.numeric:
        threshold = ConstantThreshold(lower=None, upper=dq.out_of_range_max_rate)
        yield (
            "out_of_range",
            nml.NumericalRangeCalculator(column_names=spec.numeric, threshold=threshold, **kw),
        )


# data quality: result name -> (chart title, its columns)
_DATA_QUALITY: dict[str, tuple[str, Callable[[Spec], list[str]]]] = {
    "missing": ("Missing values", lambda s: s.features),
    "unseen": ("Values never seen in the reference", lambda s: s.categorical),
    "out_of_range": ("Values outside the reference range", lambda s: s.numeric),
}


def _typical(values: pd.Series, numeric: bool) -> Any:
    """A common value of the reference, held by at most half of it: the most frequent such
    category, or the median of the fullest such bin of NannyML's histogram (Doane's bins)."""
    import numpy as np

    values = values.dropna()
    if not len(values):
        return None
    if not numeric:
        shares = values.value_counts(normalize=True, sort=True)
        common = shares[shares <= 0.5]
        return (common if len(common) else shares).index[0]
    x = values.to_numpy(dtype="float64")
    edges = np.histogram_bin_edges(x, bins="doane")
    counts = np.histogram(x, bins=edges)[0] / len(x)
    order = [i for i in np.argsort(-counts, kind="stable") if counts[i] <= 0.5] or [0]
    lo, hi = edges[order[0]], edges[order[0] + 1]
    inside = x[(x >= lo) & (x <= hi)]
    return float(np.median(inside)) if len(inside) else float((lo + hi) / 2)


def _blind(calc: Any, reference: pd.DataFrame, spec: Spec, rows: int) -> list[dict[str, Any]]:
    """Drift thresholds that no realistic chunk can cross.

    For each column and method, a probe chunk of `rows` rows (the shortest reference chunk)
    in which every row takes one common value of the reference (`_typical`): the whole column
    collapsed onto a value it had all along. That is a large drift; where the fitted threshold
    does not alert on it, the threshold is wider than any drift the column can show (a short
    reference chunk, or chunks too small to agree, widen it), and the monitoring is blind.
    """
    import pandas as pd

    found = []
    numeric = {*spec.numeric, spec.score}
    for column, methods in calc._column_to_models_mapping.items():
        typical = _typical(reference[column], column in numeric)
        if typical is None:
            continue
        probe = pd.Series([typical] * rows, name=column)
        for method in methods:
            value = float(method.calculate(probe))
            if math.isnan(value) or method.alert(value):
                continue
            found.append(
                {
                    "column": column,
                    "method": method.column_name,
                    "value": value,
                    "probe": typical.item() if hasattr(typical, "item") else typical,
                    "lower_threshold": _number(method.lower_threshold_value),
                    "upper_threshold": _number(method.upper_threshold_value),
                }
            )
    return found


# below this many reference rows the domain classifier trains on one thread (see below)
DOMAIN_CLASSIFIER_ONE_THREAD_BELOW = 10_000


def _domain_classifier_params(reference_rows: int) -> dict[str, Any]:
    """NannyML's LightGBM settings for the domain classifier, without the `silent` key that
    LightGBM 4 no longer knows (it printed a warning for each of the classifier's models:
    hundreds per run) and with LightGBM's own logging off.

    Threads: the classifier trains five models per chunk, each on the reference and the chunk.
    On small data OpenMP's start-up per boosting round costs what the threads save, and on a
    busy machine far more (3,000 rows: 3.1 s on one thread against 3.0-3.9 s on both cores
    idle, but 4 s against 25 s with the machine busy); on 48,000 rows both cores are 1.45x
    faster (7.9 s against 11.6 s; the car-loan reference, 50,000 rows: 20 s against 26 s). So
    one thread below `DOMAIN_CLASSIFIER_ONE_THREAD_BELOW` rows, NannyML's every core above.
    """
    from nannyml.drift.multivariate.domain_classifier.calculator import (
        DEFAULT_LGBM_HYPERPARAMS,
    )

    params = {k: v for k, v in DEFAULT_LGBM_HYPERPARAMS.items() if k != "silent"}
    threads = 1 if reference_rows < DOMAIN_CLASSIFIER_ONE_THREAD_BELOW else params["n_jobs"]
    return {**params, "verbosity": -1, "n_jobs": threads}
