"""The monitoring loop, offline, in a temporary clone: serve the package, send it the car-loan
production batch, monitor the prediction logs, append the labelled batch, retrain."""

from __future__ import annotations

import json
import re
import shutil
import signal
from pathlib import Path

import httpx
import pandas as pd

from tests.conftest import git, run_cli, run_dvc
from tests.integration.conftest import STAGES, ran
from tests.integration.test_monitoring import SHIFTED, drifted
from tests.integration.test_serve import free_port, records, start


def test_serve_log_monitor_append_and_retrain(project: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    git(tmp_path, "clone", "-q", str(project), str(repo))
    shutil.copy2(project / "dvc.lock", repo / "dvc.lock")
    run_dvc("cache", "dir", "--local", str(project / ".dvc/cache"), cwd=repo)
    run_dvc("checkout", "-q", cwd=repo)
    package = repo / "models/package"

    # 1-2. serve, and send the production batch as clients would, in time order
    logs = repo / "data/serving/predictions"
    port = free_port()
    server = start(package, port, logs)
    batch = pd.read_parquet(repo / "data/raw/production.parquet")
    batch = batch.drop(columns=["y_pred_proba", "y_pred"], errors="ignore")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            for start_row in range(0, len(batch), 1_000):
                part = batch.iloc[start_row : start_row + 1_000]
                response = client.post("/predict", json={"records": records(part)})
                assert response.status_code == 200, response.text[:500]
    finally:
        server.send_signal(signal.SIGINT)  # a graceful stop writes what the log holds
        server.wait(timeout=60)
    assert len(pd.read_parquet(logs)) == len(batch)

    # 3. monitor the logs: the known drift, from the sixth chunk
    labels = repo / "data/serving/labels"
    labels.mkdir(parents=True)
    shutil.copy2(repo / "data/raw/production_labels.parquet", labels / "labels.parquet")
    out = tmp_path / "monitoring"
    proc = run_cli(
        "monitor",
        "--package",
        str(package),
        "--input",
        str(logs),
        "--labels",
        str(labels),
        "--output-dir",
        str(out),
    )
    assert proc.returncode == 10, proc.stderr
    chunks = json.loads((out / "summary.json").read_text())["chunks"]
    assert len(chunks) == 10
    assert sum(drifted(c, col) for c in chunks[5:] for col in SHIFTED) >= 18

    # 4. append the labelled batch to the development set, tracked by DVC
    proc = run_cli("append", "--logs", str(logs), "--labels", str(labels), cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert "50,000 with a label" in proc.stderr
    # the new '50%' downpayment is scored and monitored, but not in the development schema
    assert "700 rows left out: 'size_of_downpayment'" in proc.stderr
    assert (repo / "data/external/additions.parquet.dvc").is_file()

    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "the run in production, and the rows to retrain on")

    # 5. retrain: every stage runs again, on the larger development set, and records metrics
    before = json.loads((repo / "reports/metrics.json").read_text())
    proc = run_dvc("repro", cwd=repo)
    assert ran(proc.stdout) == STAGES
    quality = json.loads((repo / "reports/data_quality.json").read_text())
    assert quality["development"]["rows_read"] == 100_000 - 700
    after = json.loads((repo / "reports/metrics.json").read_text())
    assert after != before and after["test"]["rows"] > before["test"]["rows"]
    assert "up to date" in run_dvc("status", cwd=repo).stdout

    # 6. the retraining's report: the model in production and the retrained one on the same
    # rows (the appended rows move the test split; the production rows trained on are left out)
    report = repo / "reports/pull-request/report.md"
    proc = run_cli("report", "--base", "HEAD", "--output", str(report), cwd=repo)
    assert proc.returncode == 0, proc.stderr
    text = report.read_text()
    assert re.match(r"## (🟢 Better|🔴 Worse|⚪ Not distinguishable) on the same rows", text)
    test = pd.read_parquet(repo / "data/processed/test.parquet")
    appended = pd.read_parquet(repo / "data/external/additions.parquet")["id"]
    in_test = int(test["id"].isin(appended).sum())
    assert in_test > 0  # the appended rows are the latest: the time split puts them in test
    lines = text.splitlines()
    test_line = next(line for line in lines if "this change's test split" in line)
    assert f"({len(test):,} rows; {in_test:,} of them are labelled production rows" in test_line
    trained = pd.concat(
        pd.read_parquet(repo / f"data/processed/{s}.parquet")["id"] for s in ("train", "valid")
    )
    left_out = int(batch["id"].isin(trained).sum())
    assert left_out > 0
    prod_line = next(line for line in lines if "the labelled production batch" in line)
    assert f"{len(batch) - left_out:,} rows; {left_out:,} rows left out" in prod_line, prod_line
