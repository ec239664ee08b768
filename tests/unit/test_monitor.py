"""Monitoring's pure core: the reference, chunk checks, the summary, the report and charts."""

from __future__ import annotations

import dataclasses
import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabml.adapters.nannyml_adapter import Results, Spec
from tabml.core.config import (
    ChunkingConfig,
    DriftConfig,
    MonitorConfig,
    PerformanceConfig,
    SchemaConfig,
    parse,
)
from tabml.core.errors import ConfigError, DataError
from tabml.monitoring import monitor as mon
from tabml.reporting import plots
from tests.conftest import ROOT, schema_dict

SCHEMA = parse(SchemaConfig, schema_dict())
CFG = parse(
    MonitorConfig,
    {
        **__import__("yaml").safe_load((ROOT / "conf/monitor/default.yaml").read_text()),
    },
)


def cell(value: float | None, alert: bool = False) -> dict[str, object]:
    return {"value": value, "lower_threshold": 0.0, "upper_threshold": 1.0, "alert": alert}


MODEL = {"name": "t", "kind": "lightgbm", "threshold": 0.5}


def two_chunk_results() -> Results:
    chunks = [
        {"index": 0, "key": "[0:9]", "start": None, "end": None, "rows": 10},
        {"index": 1, "key": "[10:19]", "start": None, "end": None, "rows": 10},
    ]
    res = Results(chunks=chunks)
    res.drift = {
        # both methods alert in chunk 2: one (column, chunk) alert, not two
        "amount": {
            "jensen_shannon": [cell(0.1), cell(0.9, True)],
            "wasserstein": [cell(0.1), cell(0.8, True)],
        },
        "income": {"jensen_shannon": [cell(0.1), cell(0.2)]},
        "score": {"jensen_shannon": [cell(0.1), cell(0.7, True)]},
    }
    res.multivariate = {"data_reconstruction": [cell(1.0), cell(2.0, True)]}
    res.estimated = {"roc_auc": [cell(0.9), cell(0.8, True)]}
    res.realized = {"roc_auc": [cell(0.91), cell(0.79, True)]}
    res.missing = {"amount": [cell(0.1), cell(0.3, True)]}
    res.unseen = {"income": [cell(0.2, True), cell(0.0)]}
    res.out_of_range = {"amount": [cell(0.0), cell(0.0)]}
    res.calibration = {"needed": False, "method": "none"}
    return res


def summary() -> mon.Summary:
    return mon.summarize(two_chunk_results(), CFG, CFG.chunking, MODEL, 100, [10] * 10, 20, 20)


def test_summary_counts_each_column_chunk_once_and_finds_the_first_alert() -> None:
    s = summary()
    totals = s.totals
    assert totals.drift_alerts_by_column == {"amount": 1, "income": 0, "score": 1}
    assert totals.alerts.model_dump() == {
        "total": 7,
        "drift": 2,
        "multivariate": 1,
        "estimated_performance": 1,
        "realized_performance": 1,
        "data_quality": 2,
    }
    # the unseen-value alert in chunk 1 is the first alert of all
    assert totals.first_alert_chunk == 0
    assert totals.first_alert_chunk_by_column["amount"] == 1
    assert totals.first_alert_chunk_by_column["income"] is None
    assert [c.alerts for c in s.chunks] == [1, 6]
    assert s.chunks[1].data_quality["missing"]["amount"].count == 3


def test_summary_json_has_exactly_the_documented_keys_and_reads_back() -> None:
    """summary.json is read by `tabml report` at other revisions and by people's scripts: the
    JSON form adds no key the run did not produce, and reads back to the same summary."""
    s = summary()
    data = s.to_json()
    assert set(data) == {
        "format_version", "model", "reference", "analysis", "chunking", "methods",
        "calibration", "chunks", "totals",
    }  # fmt: skip
    # a drift cell has no count; a data-quality cell has one
    assert set(data["chunks"][0]["drift"]["amount"]["jensen_shannon"]) == {
        "value", "lower_threshold", "upper_threshold", "alert",
    }  # fmt: skip
    assert "count" in data["chunks"][0]["data_quality"]["missing"]["amount"]
    assert mon.Summary.read(json.loads(json.dumps(data))) == s
    # another format, or not a summary at all, is None (the report says it has none)
    assert mon.Summary.read({**data, "format_version": 2}) is None
    assert mon.Summary.read({"format_version": 1, "chunks": []}) is None
    assert mon.Summary.read(None) is None


def test_key_metrics_are_alert_counts_and_mean_performance() -> None:
    metrics = mon.key_metrics(summary())
    assert metrics["alerts"] == 7 and metrics["drift_alerts"] == 3
    assert metrics["estimated_roc_auc_mean"] == pytest.approx(0.85)
    assert metrics["realized_roc_auc_mean"] == pytest.approx(0.85)
    assert metrics["chunks_with_alerts"] == 2


def test_reference_keeps_the_latest_rows_in_time_order() -> None:
    dev = pd.DataFrame(
        {
            "id": [3, 1, 2, 0],
            "ts": pd.to_datetime(["2024-01-04", "2024-01-02", "2024-01-03", "2024-01-01"]),
            "amount": [4.0, 2.0, 3.0, 1.0],
            "income": ["a", "b", "c", "d"],
            "ratio": [0.1] * 4,
            "owner": [True] * 4,
            "y": [1, 0, 1, 0],
            "email": ["x"] * 4,
        }
    )
    rows = mon.latest_rows(dev, SCHEMA, max_rows=3)
    assert rows["id"].tolist() == [1, 2, 3]
    ref = mon.reference_frame(rows, SCHEMA, np.array([0.2, 0.3, 0.4]))
    assert ref["score"].tolist() == [0.2, 0.3, 0.4]
    assert "email" not in ref.columns  # only what monitoring needs, no personal data


def test_too_few_reference_chunks_is_refused_with_the_fix() -> None:
    # the advice is a size that leaves no short chunk: 2,000 rows in 6 chunks of 333, the 2
    # rows left over joining the last
    big = pd.DataFrame({"ts": pd.date_range("2024-01-01", periods=2000, freq="h")})
    with pytest.raises(DataError, match=r"only 4 reference.*`rows: 333`.*exactly 6 chunks.*2 rows"):
        mon.check_reference(big, CFG, ChunkingConfig(method="rows", rows=500), "ts")
    assert mon.check_reference(big, CFG, ChunkingConfig(method="rows", rows=333), "ts") == 6
    ref = pd.DataFrame({"ts": pd.date_range("2024-01-01", periods=1000, freq="h")})
    # too few rows for chunks that say more than chance: more data, not smaller chunks
    with pytest.raises(DataError, match=r"only 2 reference chunks.*too few.*166 rows each"):
        mon.check_reference(ref, CFG, ChunkingConfig(method="rows", rows=500), "ts")
    assert mon.check_reference(ref, CFG, ChunkingConfig(method="rows", rows=100), "ts") == 10
    with pytest.raises(DataError, match="Set `count: 6` under `chunking:`"):
        mon.check_reference(ref, CFG, ChunkingConfig(method="count", count=3), "ts")
    # 1000 hours span 42 days: 6 weeks but only 2 months
    assert mon.check_reference(ref, CFG, ChunkingConfig(method="period", period="W"), "ts") >= 6
    with pytest.raises(DataError, match="shorter period"):
        mon.check_reference(ref, CFG, ChunkingConfig(method="period", period="M"), "ts")
    with pytest.raises(ConfigError, match="no timestamp"):
        mon.check_reference(ref, CFG, ChunkingConfig(method="period", period="M"), None)


def test_what_config_and_row_count_tell_is_checked_before_training() -> None:
    """ingest calls these with the development row count, before any model is fitted."""
    rows = ChunkingConfig(method="rows", rows=5000)
    advice = r"3,000 rows make only 0 .*Set `rows: 500` under.*exactly 6 chunks"
    with pytest.raises(DataError, match=advice):
        mon.check_reference_rows(3000, rows, 6, "ts")
    mon.check_reference_rows(30_000, rows, 6, "ts")
    with pytest.raises(ConfigError, match=r"count is 3, fewer than the 6.*`count: 6`"):
        mon.check_reference_rows(10**6, ChunkingConfig(method="count", count=3), 6, "ts")
    with pytest.raises(ConfigError, match=r"'period' but the dataset has no timestamp"):
        mon.check_reference_rows(10**6, ChunkingConfig(method="period", period="M"), 6, None)
    # a period's chunk count needs the timestamps themselves: left to the monitor stage
    mon.check_reference_rows(10, ChunkingConfig(method="period", period="M"), 6, "ts")


def test_chunking_needs_the_value_of_its_method() -> None:
    with pytest.raises(ConfigError, match="needs 'count'"):
        parse(ChunkingConfig, {"method": "count", "rows": 10})


def test_unseen_categories_are_blanked_for_drift_only() -> None:
    ref = pd.DataFrame({"income": ["low", "mid", None]})
    batch = pd.DataFrame({"income": ["low", "new", None, "mid"]})
    out = mon.blank_unseen(batch, ref, ["income"])
    assert out["income"].isna().tolist() == [False, True, True, False]
    assert batch["income"].tolist()[1] == "new"  # the input is not changed


def test_html_report_is_self_contained_and_deterministic() -> None:
    import plotly.graph_objects as go

    figures = [("One", go.Figure(go.Scatter(y=[1, 2]))), ("Two", go.Figure(go.Bar(y=[3])))]
    figures = [
        (t, f.to_html(full_html=False, include_plotlyjs=i == 0, div_id=f"chart-{i}"))
        for i, (t, f) in enumerate(figures)
    ]
    first = mon.html_report(summary(), figures, "Monitoring report: t")
    assert first == mon.html_report(summary(), figures, "Monitoring report: t")
    assert "<script src=" not in first
    assert first.count('<div id="chart-') == 2
    assert 'class="alert"' in first and "7 alerts" in first
    # settings a reader can read, not Python dicts
    assert "{" not in first.split("<h2>")[0].split("<h1>")[1]
    assert "5,000 rows per chunk, short chunks merged" in first


def test_png_charts_are_deterministic_and_cope_with_no_chunks(tmp_path: Path) -> None:
    s = summary()
    for draw in (plots.drift_heatmap, plots.performance_chart, plots.data_quality_chart):
        a, b = tmp_path / f"{draw.__name__}-a.png", tmp_path / f"{draw.__name__}-b.png"
        draw(s, a)
        draw(s, b)
        assert a.read_bytes()[:4] == b"\x89PNG" and a.read_bytes() == b.read_bytes()
    empty = mon.summarize(Results(chunks=[]), CFG, CFG.chunking, MODEL, 100, [10] * 10, 0, 0)
    plots.drift_heatmap(empty, tmp_path / "empty.png")
    assert (tmp_path / "empty.png").stat().st_size > 0


def test_nannyml_usage_logging_is_off_before_nannyml_loads() -> None:
    code = (
        "import os, sys\n"
        "os.environ.pop('NML_DISABLE_USAGE_LOGGING', None)\n"
        "from tabml.adapters import nannyml_adapter\n"
        "assert 'nannyml' not in sys.modules\n"
        "nannyml_adapter._nannyml()\n"
        "import nannyml.usage_logging as u\n"
        "print(os.environ['NML_DISABLE_USAGE_LOGGING'])\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "NML_DISABLE_USAGE_LOGGING"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "1"


def synthetic(n: int, shift_from: int | None, seed: int) -> pd.DataFrame:
    """Scored rows whose `x1` moves up by two standard deviations from row `shift_from`."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(0, 1, n)
    if shift_from is not None:
        x1[shift_from:] += 2.0
    x2 = rng.normal(0, 1, n)
    cat = rng.choice(["a", "b", "c"], n)
    p = 1 / (1 + np.exp(-(x2 + (cat == "a"))))
    y = (rng.uniform(size=n) < p).astype("int64")
    return pd.DataFrame(
        {
            "ts": pd.date_range("2024-01-01", periods=n, freq="min"),
            "x1": x1,
            "x2": x2,
            "cat": cat,
            "score": p,
            "prediction": (p >= 0.5).astype("int64"),
            "y": y,
        }
    )


def synthetic_spec(
    chunking: ChunkingConfig, drift: DriftConfig, metrics: tuple[str, ...] = ("roc_auc",)
) -> Spec:
    """What to monitor in `synthetic`'s frames."""
    from tabml.adapters.nannyml_adapter import Spec

    return Spec(
        numeric=["x1", "x2"],
        categorical=["cat"],
        score="score",
        prediction="prediction",
        target="y",
        timestamp="ts",
        chunking=chunking,
        drift=drift,
        performance=PerformanceConfig(metrics=metrics),  # type: ignore[arg-type]
        data_quality=CFG.data_quality,
    )


def test_adapter_runs_every_calculator_and_finds_a_known_shift(
    capfd: pytest.CaptureFixture[str],
) -> None:
    from tabml.adapters.nannyml_adapter import render, run

    cfg = DriftConfig(
        continuous_methods=("jensen_shannon", "kolmogorov_smirnov"),
        categorical_methods=("chi2",),
        data_reconstruction=True,
        domain_classifier=True,
    )
    spec = synthetic_spec(ChunkingConfig(method="count", count=6), cfg, ("roc_auc", "accuracy"))
    # small chunks keep NannyML's domain classifier (cross-validated LightGBM per chunk) quick
    reference = synthetic(3_000, None, seed=1)
    analysis = synthetic(3_000, shift_from=1_500, seed=2)
    out = run(reference, analysis, analysis, spec, labelled=True, charts=True)
    # the domain classifier's 60 LightGBM models say nothing (they printed a warning each)
    printed = capfd.readouterr()
    assert "[LightGBM]" not in printed.out + printed.err
    assert len(out.chunks) == 6 and [c["rows"] for c in out.chunks] == [500] * 6
    for method in ("kolmogorov_smirnov", "jensen_shannon"):
        assert all(c["alert"] for c in out.drift["x1"][method][3:]), method
        # six reference chunks make tight bands: allow one false alarm before the shift
        assert sum(c["alert"] for c in out.drift["x1"][method][:3]) <= 1, method
        assert sum(c["alert"] for c in out.drift["x2"][method]) <= 1, method
    assert set(out.multivariate) == {"data_reconstruction", "domain_classifier"}
    assert all(c["alert"] for c in out.multivariate["domain_classifier"][3:])
    assert set(out.estimated) == set(out.realized) == {"roc_auc", "accuracy"}
    assert set(out.calibration) == {"needed", "method", "fitted_on"}
    assert set(out.unseen) == {"cat"} and set(out.out_of_range) == {"x1", "x2"}
    titles = [c.title for c in out.charts]
    assert "Univariate drift" in titles and "Multivariate drift: domain_classifier" in titles
    # charts travel to the drawing process without the batch's rows, and draw from that alone
    import pickle

    rows = len(pickle.dumps(analysis))
    assert all(len(pickle.dumps(c)) < rows / 2 for c in out.charts)
    first = render(out.charts[0], "chart-0", True)
    assert first.startswith("<div>") and 'id="chart-0"' in first and len(first) > 1_000_000
    assert all('id="chart-1"' in render(c, "chart-1", False) for c in out.charts[1:])


def test_frames_reach_nannyml_with_numpy_missing_values() -> None:
    from tabml.adapters.nannyml_adapter import _plain

    frame = pd.DataFrame(
        {
            "full": pd.array([True, False, True], dtype="boolean"),
            "gaps": pd.array([True, None, False], dtype="boolean"),
            "n": pd.array([1, None, 3], dtype="Int64"),
            "s": pd.array(["a", None, "b"], dtype=pd.StringDtype(na_value=pd.NA)),
        }
    )
    out = _plain(frame)
    # no missing value: NumPy bool (NannyML is much slower on object columns)
    assert out["full"].dtype == bool and out["full"].tolist() == [True, False, True]
    assert out["gaps"].dtype == object and out["gaps"].isna().tolist() == [False, True, False]
    assert out["n"].dtype == "float64" and np.isnan(out["n"][1])
    assert out["s"].isna().tolist() == [False, True, False] and out["s"][1] is not pd.NA


def test_open_vocabulary_columns_are_monitored_as_the_model_sees_them() -> None:
    frame = pd.DataFrame({"ticket": pd.array(["a", "T-991", None, "b"], dtype="string")})
    out = mon.collapse_levels(frame, {"ticket": ["a", "b"]}, "(other)")
    assert out["ticket"].tolist()[:2] == ["a", "(other)"] and pd.isna(out["ticket"][2])
    assert frame["ticket"][1] == "T-991"  # the input is not changed
    assert mon.collapse_levels(frame, {}, "(other)") is frame


def test_the_domain_classifier_is_quiet_and_uses_threads_only_where_they_pay() -> None:
    from tabml.adapters.nannyml_adapter import DOMAIN_CLASSIFIER_ONE_THREAD_BELOW as SMALL
    from tabml.adapters.nannyml_adapter import _domain_classifier_params

    small, large = _domain_classifier_params(SMALL - 1), _domain_classifier_params(SMALL)
    assert small["n_jobs"] == 1 and large["n_jobs"] == -1  # NannyML's default: every core
    for params in (small, large):
        assert "silent" not in params and params["verbosity"] == -1


def half_hourly(frame: pd.DataFrame, start: str) -> pd.DataFrame:
    """`frame` with a row every half hour from `start`: weeks of rows, for period chunking."""
    return frame.assign(ts=pd.date_range(start, periods=len(frame), freq="30min"))


def _in_parts(reference, analysis, spec, cuts):  # type: ignore[no-untyped-def]
    """What a cluster does: fit once, plan the whole batch, run each part's chunks on a fresh
    copy of the fitted calculators (as a worker unpickles them), and join the parts."""
    import pickle

    from tabml.adapters.nannyml_adapter import (
        Collector,
        calculate,
        fit,
        join,
        plan_chunks,
        without_rows,
    )

    fitted = fit(reference, spec, labelled=True)
    stamps = analysis[spec.timestamp] if spec.timestamp else None
    plan = plan_chunks(reference, spec, len(analysis), stamps)
    blob = pickle.dumps(fitted)
    parts: list[dict[str, object]] = []
    for a, b in itertools.pairwise(cuts):
        chunks = plan[a:b]
        rows = analysis.iloc[chunks[0].start : chunks[-1].end + 1]
        got: dict[str, object] = {}

        def sent_back(name: str, result: object, got: dict[str, object] = got) -> None:
            got[name] = pickle.loads(pickle.dumps(without_rows(result)))

        calculate(pickle.loads(blob), chunks, rows, rows, spec, sent_back)
        parts.append(got)
    collector = Collector(fitted, spec)
    for name in fitted.calculators:
        collector.add(name, join([part[name] for part in parts]))
    return collector.results


FAMILIES = (
    "chunks", "drift", "multivariate", "estimated", "realized", "missing", "unseen",
    "out_of_range", "calibration", "reference_chunk_rows",
)  # fmt: skip


@pytest.mark.parametrize(
    ("chunking", "every_calculator"),
    [
        (ChunkingConfig(method="count", count=6), True),
        # 470-row chunks: the last (380 rows) is merged into the one before
        (ChunkingConfig(method="rows", rows=470), False),
        (ChunkingConfig(method="period", period="W", min_rows=100), False),
        # no timestamp: chunks of rows in id order
        (ChunkingConfig(method="rows", rows=500), None),
    ],
    ids=["count", "rows-merged", "period", "no-timestamp"],
)
def test_a_batch_monitored_in_parts_gives_what_the_whole_batch_gives(
    chunking: ChunkingConfig, every_calculator: bool | None
) -> None:
    """Monitor's chunks on a cluster: any cut of the batch into consecutive chunks, each part
    run apart and the results joined, gives the summary and the charts of the whole batch
    (and a part with no labels at all). The domain classifier (a LightGBM model per chunk,
    the slow one) runs in one case only."""
    from tabml.adapters.nannyml_adapter import render, run

    cfg = DriftConfig(
        continuous_methods=("jensen_shannon",),
        categorical_methods=("chi2",),
        data_reconstruction=True,
        domain_classifier=bool(every_calculator),
    )
    spec = synthetic_spec(chunking, cfg, ("roc_auc",))
    if every_calculator is None:  # the data set has no timestamp
        spec = dataclasses.replace(spec, timestamp=None)
    reference = half_hourly(synthetic(3_000, None, seed=1), "2023-10-01")
    analysis = half_hourly(synthetic(3_000, shift_from=1_500, seed=2), "2024-01-01")
    analysis.loc[600:1400, "y"] = np.nan  # chunk 2 (of 6) has no label
    analysis["y"] = analysis["y"].astype("float64")
    whole = run(reference, analysis, analysis, spec, labelled=True)
    n = len(whole.chunks)
    assert n >= 5
    # two cuts; one with the domain classifier (the parts' calculators still run twice)
    for cuts in [[0, 2, 3, n], [0, 1, n - 1, n]][: 1 if every_calculator else 2]:
        parts = _in_parts(reference, analysis, spec, cuts)
        for family in FAMILIES:
            assert getattr(parts, family) == getattr(whole, family), (family, cuts)
        assert [c.title for c in parts.charts] == [c.title for c in whole.charts]
        for mine, theirs in zip(parts.charts, whole.charts, strict=True):
            assert render(mine, "c", False) == render(theirs, "c", False), mine.title


def test_chunks_are_planned_as_nannyml_cuts_them() -> None:
    """`plan_chunks` cuts from the time stamps alone where NannyML's chunker cut the whole
    frame: the same keys, rows and times, for every chunking method and short-chunk rule."""
    from tabml.adapters.nannyml_adapter import _chunker, _nannyml, plan_chunks

    reference = half_hourly(synthetic(2_000, None, seed=1), "2023-10-01")
    analysis = half_hourly(synthetic(1_234, None, seed=2), "2024-01-01")
    cfg = DriftConfig(continuous_methods=("jensen_shannon",), categorical_methods=("chi2",))
    for chunking in (
        ChunkingConfig(method="rows", rows=200),
        ChunkingConfig(method="rows", rows=200, short_chunks="keep"),
        ChunkingConfig(method="count", count=5),
        ChunkingConfig(method="period", period="D", min_rows=50),
        ChunkingConfig(method="period", period="W"),
        ChunkingConfig(method="period", period="D", short_chunks="keep"),
    ):
        spec = synthetic_spec(chunking, cfg)
        theirs = _chunker(_nannyml(), spec, reference).split(analysis)
        mine = plan_chunks(reference, spec, len(analysis), analysis["ts"])
        assert [(p.index, p.key, p.start, p.end, p.start_datetime, p.end_datetime)
                for p in mine] == [
            (c.chunk_index, c.key, c.start_index, c.end_index, c.start_datetime,
             c.end_datetime) for c in theirs
        ], chunking  # fmt: skip


def test_rows_that_share_a_time_stamp_keep_the_batch_order_in_chunks() -> None:
    """NannyML sorts a batch by time stamp without a stable sort: rows sharing one were
    scattered over the chunks by chance (298 of 300 moved in this batch). The planned chunks
    keep the batch's own order (time, then id), on any machine and in any part."""
    from tabml.adapters.nannyml_adapter import run

    cfg = DriftConfig(continuous_methods=("jensen_shannon",), categorical_methods=("chi2",))
    spec = synthetic_spec(ChunkingConfig(method="rows", rows=100), cfg)
    reference = synthetic(1_000, None, seed=1)
    analysis = synthetic(300, None, seed=2).assign(
        ts=pd.to_datetime(["2024-01-01"] * 150 + ["2024-01-02"] * 150)
    )
    analysis.loc[:99, "x1"] = np.nan  # the first chunk's rows, as the batch orders them
    out = run(reference, analysis, analysis, spec, labelled=False, charts=False)
    assert [c["value"] for c in out.missing["x1"]] == [1.0, 0.0, 0.0]


@pytest.mark.parametrize("timestamp", [True, False], ids=["timestamp", "no-timestamp"])
def test_the_cluster_orders_rows_as_local_monitoring_does(timestamp: bool) -> None:
    """Monitor on a cluster puts the batch in time order from its keys alone: a stable sort
    by timestamp then id (by id alone without a timestamp), the order `analysis_frame` gives
    the whole batch here; and with no timestamp the chunks are planned from the row count."""
    from tabml.adapters.nannyml_adapter import plan_chunks
    from tabml.compute.monitor_cluster import parts_of, time_positions

    raw = schema_dict()
    if not timestamp:
        raw.pop("timestamp")
    schema = parse(SchemaConfig, raw)
    rng = np.random.default_rng(4)
    n = 1_000
    keys = pd.DataFrame(
        {
            "id": rng.permutation(n) // 2,  # ids shared by two rows: ties keep batch order
            "ts": pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.integers(0, 50, n), "D"),
        }
    )[["id", *(["ts"] if timestamp else [])]]
    positions = time_positions(keys, schema)
    # the batch's features do not matter here: the keys, as `analysis_frame` sorts them
    ordered = keys.assign(row=np.arange(n)).sort_values(mon.time_keys(schema), kind="stable")
    assert np.array_equal(np.argsort(positions), ordered["row"].to_numpy())
    cfg = DriftConfig(continuous_methods=("jensen_shannon",), categorical_methods=("chi2",))
    spec = synthetic_spec(ChunkingConfig(method="rows", rows=150), cfg)
    if not timestamp:
        spec = dataclasses.replace(spec, timestamp=None)
    stamps = ordered["ts"] if timestamp else None
    plan = plan_chunks(synthetic(1_000, None, seed=1), spec, n, stamps)
    # 150-row chunks, the 100 left over merged into the last
    assert [(p.start, p.end) for p in plan][-1] == (750, 999) and len(plan) == 6
    parts = parts_of(plan, 400)
    assert [[p.index for p in part] for part in parts] == [[0, 1], [2, 3], [4, 5]]  # 400 rows each
