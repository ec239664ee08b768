"""Monitoring on the bundled car-loan data: the stage in the pipeline and `tabml monitor`.

The correctness targets come from what the data is known to contain: four features shift from
the 6th of 10 production chunks, a `size_of_downpayment` value never seen in development, and
more missing `salary_range` and `driver_tenure`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.conftest import BIN, run_cli, run_dvc, tool_env

SHIFTED = ["car_value", "salary_range", "loan_length", "repaid_loan_on_prev_car"]
FEATURES = [
    "car_value",
    "salary_range",
    "debt_to_income_ratio",
    "loan_length",
    "repaid_loan_on_prev_car",
    "size_of_downpayment",
    "driver_tenure",
]


def monitor(
    project: Path, batch: Path, out: Path, *extra: str, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """`tabml monitor` with the project's package, as a user runs it."""
    args = ["--package", str(project / "models/package"), "--input", str(batch)]
    return run_cli("monitor", *args, "--output-dir", str(out), *extra, check=check)


def summary_of(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "summary.json").read_text())


def drifted(chunk: dict[str, Any], column: str) -> bool:
    return any(cell["alert"] for cell in chunk["drift"][column].values())


@pytest.fixture(scope="module")
def summary(project: Path) -> dict[str, Any]:
    return summary_of(project / "reports/monitoring")


def test_covariate_shift_is_caught_from_the_sixth_chunk(summary: dict[str, Any]) -> None:
    chunks = summary["chunks"]
    assert [c["rows"] for c in chunks] == [5_000] * 10
    late = sum(drifted(c, col) for c in chunks[5:] for col in SHIFTED)
    assert late >= 18, f"only {late} of 20 shifted cells alert"
    early = [drifted(c, col) for c in chunks[:5] for col in FEATURES]
    assert sum(early) <= 0.10 * len(early), f"{sum(early)} of {len(early)} early cells alert"


def test_data_quality_flags_the_new_category_and_the_missing_values(
    summary: dict[str, Any],
) -> None:
    chunks = summary["chunks"]
    unseen = [c["data_quality"]["unseen"]["size_of_downpayment"] for c in chunks]
    # '50%' is in every chunk, and doubles from the 6th: the default minimum rate (1%)
    # alerts on the change, not on its steady share before
    assert all(cell["count"] > 0 for cell in unseen)
    assert [cell["alert"] for cell in unseen] == [False] * 5 + [True] * 5
    for col in ("salary_range", "driver_tenure"):
        missing = [c["data_quality"]["missing"][col] for c in chunks]
        assert all(cell["alert"] for cell in missing[5:]), col
        # 10% missing in development, 16% over the batch (all of the rise in chunks 6-10)
        assert 0.15 < sum(cell["value"] for cell in missing) / 10 < 0.17
        assert missing[0]["upper_threshold"] < 0.15


def test_no_data_quality_alert_in_the_stable_first_half(summary: dict[str, Any]) -> None:
    """With the default limits, a handful of rows out of range (0.1% or fewer) is not an alert:
    the first five chunks, before the known changes, raise no data-quality alert at all."""
    first = summary["chunks"][:5]
    tiny = [
        cell
        for c in first
        for cell in c["data_quality"]["out_of_range"].values()
        if cell["value"] and cell["value"] <= 0.001
    ]
    assert tiny, "the batch has single out-of-range rows in its stable half"
    assert not [cell for cell in tiny if cell["alert"]]
    alerts = [
        (c["index"], check, col)
        for c in first
        for check, cols in c["data_quality"].items()
        for col, cell in cols.items()
        if cell["alert"]
    ]
    assert alerts == []


def test_cbpe_estimate_tracks_realized_roc_auc(summary: dict[str, Any]) -> None:
    chunks = summary["chunks"]
    est = [c["estimated"]["roc_auc"]["value"] for c in chunks]
    real = [c["realized"]["roc_auc"]["value"] for c in chunks]
    assert sum(abs(e - r) for e, r in zip(est, real, strict=True)) / 10 <= 0.01
    # realized AUC falls by about 0.01 from the 6th chunk; the estimate shows the fall
    assert sum(real[:5]) / 5 - sum(real[5:]) / 5 > 0.005
    assert sum(est[:5]) / 5 - sum(est[5:]) / 5 > 0.005
    # CBPE calibrates where the reference's scores need it, and says so; the car-loan
    # model's out-of-fold scores do
    assert summary["calibration"] == {
        "needed": True,
        "method": "isotonic",
        "fitted_on": "reference (out-of-fold scores of the development set)",
    }


def test_summary_holds_every_documented_field(summary: dict[str, Any]) -> None:
    assert summary["reference"]["rows"] == 50_000 and summary["reference"]["chunks"] == 10
    assert summary["analysis"] == {"rows": 50_000, "labelled_rows": 50_000}
    cell_keys = {"value", "lower_threshold", "upper_threshold", "alert"}
    for chunk in summary["chunks"]:
        assert {"index", "key", "start", "end", "rows", "alerts"} <= set(chunk)
        assert chunk["start"] <= chunk["end"]
        assert set(chunk["drift"]) == {*FEATURES, "score"}
        for methods in chunk["drift"].values():
            assert all(set(cell) == cell_keys for cell in methods.values())
        assert set(chunk["multivariate"]) == {"data_reconstruction"}
        assert set(chunk["estimated"]) == set(chunk["realized"]) == {"roc_auc", "f1"}
        assert set(chunk["data_quality"]) == {"missing", "unseen", "out_of_range"}
    totals = summary["totals"]
    for col in [*FEATURES, "score"]:
        assert totals["drift_alerts_by_column"][col] == sum(
            drifted(c, col) for c in summary["chunks"]
        )
    assert totals["first_alert_chunk"] == next(c["index"] for c in summary["chunks"] if c["alerts"])
    assert totals["alerts"]["total"] == sum(c["alerts"] for c in summary["chunks"])


def test_html_report_opens_offline_and_charts_are_pngs(project: Path) -> None:
    folder = project / "reports/monitoring"
    html = (folder / "report.html").read_text()
    assert "<script src=" not in html  # plotly's JavaScript is inlined, nothing fetched
    assert html.count("Plotly.newPlot") >= 5 and "Univariate drift" in html
    for png in ("drift_alerts.png", "performance.png", "data_quality.png"):
        assert (folder / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_key_figures_are_dvc_metrics(project: Path) -> None:
    shown = json.loads(run_dvc("metrics", "show", "--json", cwd=project).stdout)
    data = json.dumps(shown)
    for key in ("estimated_roc_auc_mean", "realized_roc_auc_mean", "drift_alerts"):
        assert key in data


def test_monitor_exits_10_on_alerts_and_0_when_calm(project: Path, tmp_path: Path) -> None:
    batch = project / "data/raw/production.parquet"
    alerts = monitor(project, batch, tmp_path / "a")
    assert alerts.returncode == 10, alerts.stderr
    assert "alerts; see" in alerts.stderr
    assert summary_of(tmp_path / "a")["totals"]["alerts"]["total"] > 0
    # (--no-fail-on-alerts on this batch exits 0: test_monitor_opens_no_network_connection)

    # a batch drawn from the development data itself: nothing to alert on
    calm = tmp_path / "calm.csv"
    pd.read_parquet(project / "data/raw/development.parquet").sample(10_000, random_state=1).to_csv(
        calm, index=False
    )
    quiet = monitor(project, calm, tmp_path / "c")
    assert quiet.returncode == 0, quiet.stderr
    result = summary_of(tmp_path / "c")
    assert result["totals"]["alerts"]["total"] == 0
    assert result["analysis"]["labelled_rows"] == 0 and not result["chunks"][0]["realized"]


def test_monitor_reads_a_folder_of_logs_like_one_file(project: Path, tmp_path: Path) -> None:
    batch = pd.read_parquet(project / "data/raw/production.parquet")
    logs = tmp_path / "logs"
    for i, part in enumerate((batch.iloc[:20_000], batch.iloc[20_000:35_000], batch.iloc[35_000:])):
        day = logs / f"day=2019-0{i + 1}-01"
        day.mkdir(parents=True)
        part.to_parquet(day / "part-0.parquet")
    # a file still being written is hidden, and skipped
    (logs / "day=2019-03-01" / ".part-1.parquet.tmp").write_bytes(b"PAR1 half")
    monitor(project, logs, tmp_path / "logs-out", "--no-fail-on-alerts", check=True)
    single = summary_of(project / "reports/monitoring")
    folder = summary_of(tmp_path / "logs-out")
    assert folder["analysis"]["rows"] == 50_000
    assert folder["totals"]["drift_alerts_by_column"] == single["totals"]["drift_alerts_by_column"]


def test_monitor_rejects_bad_input_like_predict(project: Path, tmp_path: Path) -> None:
    batch = pd.read_parquet(project / "data/raw/production.parquet").drop(columns=["car_value"])
    bad = tmp_path / "batch.csv"
    batch.to_csv(bad, index=False)
    proc = monitor(project, bad, tmp_path / "out")
    assert proc.returncode == 3
    assert "car_value" in proc.stderr and str(bad) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "summary.json").exists()


def test_reference_too_small_for_the_chunking_is_a_clear_error(
    project: Path, tmp_path: Path
) -> None:
    batch = project / "data/raw/production.parquet"
    proc = monitor(project, batch, tmp_path, "--chunk-rows", "20000")
    assert proc.returncode == 3
    assert "only 2 reference chunks" in proc.stderr and "at least 6" in proc.stderr
    assert "Set `rows: 8333` under `chunking:`" in proc.stderr
    assert "exactly 6 chunks of 8,333 rows (the 2 rows left over join the last one)" in proc.stderr


def test_chunking_by_period(project: Path, tmp_path: Path) -> None:
    batch = project / "data/raw/production.parquet"
    monitor(project, batch, tmp_path, "--chunk-period", "M", "--no-fail-on-alerts", check=True)
    chunks = summary_of(tmp_path)["chunks"]
    keys = [c["key"] for c in chunks]
    assert keys[0].startswith("2018-10") and keys[-1].endswith("2019-08"), keys
    # a month with fewer than half the median month's rows joins its neighbour, and says so
    median = sorted(c["rows"] for c in chunks)[len(chunks) // 2]
    for chunk in chunks:
        assert (".." in chunk["key"]) == ("note" in chunk), chunk["key"]
        assert chunk["rows"] >= median // 4, (chunk["key"], chunk["rows"])


GUARD = """
import os, socket
_LOG = os.environ["TABML_NET_LOG"]
def _record(what, where):
    with open(_LOG, "a") as fh:
        fh.write(f"{os.getpid()} {what} {where!r}\\n")
_connect = socket.socket.connect
def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _record("connect", address)
        raise OSError("network disabled by the test")
    return _connect(self, address)
socket.socket.connect = connect
socket.socket.connect_ex = lambda self, address: connect(self, address)
_getaddrinfo = socket.getaddrinfo
def getaddrinfo(host, *args, **kwargs):
    _record("resolve", host)
    raise socket.gaierror("network disabled by the test")
socket.getaddrinfo = getaddrinfo
"""


def guarded_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment whose Python processes log (and refuse) every network attempt."""
    site = tmp_path / "guard"
    site.mkdir()
    (site / "sitecustomize.py").write_text(GUARD)
    log = tmp_path / "net.log"
    log.touch()
    env = {k: v for k, v in tool_env().items() if k != "NML_DISABLE_USAGE_LOGGING"}
    return {**env, "PYTHONPATH": str(site), "TABML_NET_LOG": str(log)}, log


def test_network_guard_sees_a_connection_attempt(tmp_path: Path) -> None:

    env, log = guarded_env(tmp_path)
    code = (
        "import urllib.request\n"
        "try: urllib.request.urlopen('http://example.com', timeout=2)\n"
        "except Exception: pass"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    assert "resolve 'example.com'" in log.read_text()


def test_monitor_opens_no_network_connection(project: Path, tmp_path: Path) -> None:

    env, log = guarded_env(tmp_path)
    # the batch raises alerts (test_monitor_exits_10_on_alerts...): kept, the exit is 0
    subprocess.run(
        [
            str(BIN / "tabml"),
            "monitor",
            "--package",
            str(project / "models/package"),
            "--input",
            str(project / "data/raw/production.parquet"),
            "--labels",
            str(project / "data/raw/production_labels.parquet"),
            "--output-dir",
            str(tmp_path / "out"),
            "--no-fail-on-alerts",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    assert (tmp_path / "out" / "summary.json").exists()
    assert log.read_text() == ""
    # and the stage, run by DVC
    proc = subprocess.run(
        [str(BIN / "dvc"), "repro", "-f", "-s", "monitor"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Running stage 'monitor'" in proc.stdout
    assert log.read_text() == "", log.read_text()


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGTERM", "SIGINT"])
def test_no_process_of_a_killed_monitor_run_is_left(
    project: Path, tmp_path: Path, sig: str
) -> None:
    """Killed mid-run, `tabml monitor` leaves no process behind, and a pipe reading its output
    (as `dvc repro | cat` or a CI runner does) ends."""
    import signal
    import time

    import psutil

    args = ["--package", str(project / "models/package")]
    args += ["--input", str(project / "data/raw/production.parquet")]
    proc = subprocess.Popen(
        [str(BIN / "tabml"), "monitor", *args, "--output-dir", str(tmp_path / "out")],
        env=tool_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    parent = psutil.Process(proc.pid)
    deadline = time.monotonic() + 60
    children: list[psutil.Process] = []
    while time.monotonic() < deadline and not children and proc.poll() is None:
        children = parent.children(recursive=True)
        time.sleep(0.05)
    assert children, "the drawing process never started"
    proc.send_signal(getattr(signal, sig))
    # the pipes close once every process holding them is gone: read them to the end
    proc.communicate(timeout=30)
    assert proc.returncode != 0
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, f"left behind after {sig}: {alive}"
    assert not (tmp_path / "out/summary.json").exists()


def test_an_empty_or_unrelated_batch_is_never_all_clear(project: Path, tmp_path: Path) -> None:
    header_only = tmp_path / "header_only.csv"
    pd.read_parquet(project / "data/raw/production.parquet").iloc[:0].to_csv(
        header_only, index=False
    )
    empty = monitor(project, header_only, tmp_path / "a")
    assert empty.returncode == 12, empty.stderr
    assert "no rows" in empty.stderr and "not 'no alerts'" in empty.stderr
    unrelated = tmp_path / "unrelated.csv"
    unrelated.write_text("foo,bar\n")
    for batch in (unrelated, tmp_path / "with_rows.csv"):
        if batch.name == "with_rows.csv":
            batch.write_text("foo,bar\n1,2\n")
        proc = monitor(project, batch, tmp_path / batch.stem)
        assert proc.returncode == 3, proc.stderr
        assert "missing column" in proc.stderr and "Traceback" not in proc.stderr
    # the pipeline's stage keeps its empty report for a dataset with no production batch
    allowed = monitor(project, header_only, tmp_path / "b", "--allow-empty")
    assert allowed.returncode == 0, allowed.stderr
    assert summary_of(tmp_path / "b")["chunks"] == []


# --- compute=dask: the batch scored and monitored on the workers --------------------------------


@pytest.fixture(scope="module")
def scattered(project: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """20,000 production rows out of time order, many sharing a time stamp (to the hour), in
    a folder of two Parquet files (several row groups) and a CSV; labels for 15,000 of them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path_factory.mktemp("scattered")
    rows = pd.read_parquet(project / "data/raw/production.parquet").iloc[:20_000]
    rows["timestamp"] = pd.to_datetime(rows["timestamp"]).dt.floor("h")
    rows = rows.sample(frac=1.0, random_state=3).reset_index(drop=True)
    batch = folder / "batch"
    batch.mkdir()
    pq.write_table(
        pa.Table.from_pandas(rows.iloc[:8_000]), batch / "a.parquet", row_group_size=1_000
    )
    rows.iloc[8_000:13_000].to_csv(batch / "b.csv", index=False)
    pq.write_table(
        pa.Table.from_pandas(rows.iloc[13_000:]), batch / "c.parquet", row_group_size=2_500
    )
    labels = pd.read_parquet(project / "data/raw/production_labels.parquet")
    labels = labels[labels["id"].isin(rows["id"].iloc[:15_000])]
    labels.to_parquet(folder / "labels.parquet")
    return batch, folder / "labels.parquet"


def _monitored(project: Path, batch: Path, labels: Path | None, out: Path, workers: int) -> Path:
    """The monitor stage in this process: here (`workers` 0), or on a local cluster."""
    from tabml.core.config import DaskCompute
    from tabml.stages import monitor as stage

    compute = DaskCompute(backend="dask", workers=workers) if workers else None
    stage.run(project / "models/package", batch, labels, out, allow_empty=True, compute=compute)
    return out


def _same_files(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.iterdir())
    assert names and names == sorted(p.name for p in b.iterdir())
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.fixture(scope="module")
def monitored_here(
    project: Path, scattered: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The scattered batch monitored on this machine: what every cluster run must write."""
    batch, labels = scattered
    return _monitored(project, batch, labels, tmp_path_factory.mktemp("here") / "out", 0)


@pytest.fixture
def small_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pieces of 3,000 rows, so that they straddle the chunks; no scheduler: a local cluster."""
    from tabml.compute import monitor_cluster

    monkeypatch.setattr(monitor_cluster, "PIECE_ROWS", 3_000)
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)


@pytest.mark.usefixtures("small_pieces")
def test_monitor_on_the_workers_writes_what_local_monitor_writes_for_any_worker_count(
    project: Path, scattered: tuple[Path, Path], monitored_here: Path, tmp_path: Path
) -> None:
    """Every output (summary, metrics, the HTML report and the PNGs), byte for byte, with the
    batch in pieces that straddle chunks and rows that share time stamps: three workers here,
    and a cluster of three that loses two in the test below."""
    batch, labels = scattered
    summary = summary_of(monitored_here)
    assert summary["analysis"] == {"rows": 20_000, "labelled_rows": 15_000}
    _same_files(monitored_here, _monitored(project, batch, labels, tmp_path / "dask", 3))


@pytest.mark.usefixtures("small_pieces")
def test_a_bad_or_empty_batch_is_refused_on_the_workers_as_it_is_here(
    project: Path, scattered: tuple[Path, Path], tmp_path: Path
) -> None:
    from tabml.core.errors import DataError, EmptyBatchError

    batch, _ = scattered
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in batch.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    csv = pd.read_csv(bad / "b.csv")
    csv["car_value"] = csv["car_value"].astype(object)
    csv.loc[[7, 4_000], "car_value"] = "lots"
    csv.to_csv(bad / "b.csv", index=False)
    refusals = []
    for n in (0, 2):
        with pytest.raises(DataError) as err:
            _monitored(project, bad, None, tmp_path / f"bad-{n}", n)
        refusals.append(str(err.value))
    assert refusals[0] == refusals[1] and "car_value" in refusals[0]
    # the batch's row numbers (from 1), as when it is read whole
    assert "(rows 8008, 12001)" in refusals[0], refusals[0]
    # a batch with the right columns and no rows: the same empty report
    empty = tmp_path / "empty"
    empty.mkdir()
    pd.read_parquet(batch / "a.parquet").iloc[:0].to_parquet(empty / "a.parquet")
    _same_files(
        _monitored(project, empty, None, tmp_path / "empty-0", 0),
        _monitored(project, empty, None, tmp_path / "empty-2", 2),
    )
    from tabml.core.config import DaskCompute
    from tabml.stages import monitor as stage

    with pytest.raises(EmptyBatchError, match="no rows"):
        stage.run(
            project / "models/package", empty, None, tmp_path / "x",
            compute=DaskCompute(backend="dask", workers=1),
        )  # fmt: skip


def test_workers_lost_while_monitoring_cost_time_not_the_run(
    project: Path, scattered: tuple[Path, Path], monitored_here: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """One worker dies as it starts reading a piece, another as it starts monitoring a part
    (it holds pieces then): Dask computes what they held again on the third, and the outputs
    are one machine's."""
    from tabml.compute import monitor_cluster
    from tabml.compute.distributed import workers
    from tests.integration.test_dask import DieWhenScoring, own_cluster

    monkeypatch.setattr(monitor_cluster, "PIECE_ROWS", 3_000)
    batch, labels = scattered
    with own_cluster(monkeypatch, n=3) as client:
        victims = sorted(workers(client))[:2]
        for victim, task in zip(victims, ("prepare_piece", "monitor_part"), strict=True):
            client.register_plugin(DieWhenScoring(victim, task=task))
        dask = _monitored(project, batch, labels, tmp_path / "dask", 1)
        assert not set(victims) & set(workers(client))
    _same_files(monitored_here, dask)
