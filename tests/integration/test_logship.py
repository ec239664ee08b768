"""The prediction log leaves the pod: closed days are shipped to the object store (moto S3),
pulled where monitoring runs within the window and the retention period, and monitored: the
summary covers exactly the shipped rows of the window (issue 25)."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tabml.service import logship, serving
from tabml.service.predlog import PredictionLog
from tabml.stages import monitor
from tests.conftest import run_cli, write_params

TODAY = date(2026, 12, 3)
DAYS = ["2026-11-30", "2026-12-01", "2026-12-02", "2026-12-03"]  # the last one still open


@pytest.fixture
def s3(server: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in server.env().items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    return "s3://tabml-test/shipped/prod"


def _serve_logs(project: Path, folder: Path) -> dict[str, int]:
    """What the service writes for 400 production records a day (the real PredictionLog)."""
    from tabml.learning import package as pkg

    stamp = pkg.load(project / "models/package").schema.timestamp
    batch = pd.read_parquet(project / "data/raw/production.parquet").head(1_600)
    rows = batch.drop(columns=["y_pred_proba", "y_pred"], errors="ignore")
    log = PredictionLog(folder, flush_rows=10**6, flush_seconds=60)
    per_day = {}
    for i, day in enumerate(DAYS):
        part = rows.iloc[i * 400 : (i + 1) * 400]
        records = [
            {**r, serving.REQUEST_ID: f"r{i}", serving.LOGGED_AT: f"{day}T10:00:00+00:00",
             serving.SCORE: 0.5, serving.LABEL: 0, serving.MODEL_VERSION: "m"}
            for r in part.astype(object).where(part.notna(), None).to_dict("records")
        ]  # fmt: skip
        for r in records:
            if stamp:
                r[stamp] = str(r[stamp])  # the timestamp, as JSON carries it
        log.append(records)
        per_day[day] = len(records)
    log.close()
    return per_day


def test_closed_days_are_shipped_once_pulled_in_the_window_and_monitored(
    project: Path, s3: str, tmp_path: Path
) -> None:
    logs = tmp_path / "volume/predictions"
    per_day = _serve_logs(project, logs)
    (logs / "date=2026-12-02" / ".predictions-in-flight.tmp").write_text("half")
    shipped = logship.ship(logs, s3, TODAY)
    assert {k.split("/")[0] for k in shipped.copied} == {f"date={d}" for d in DAYS[:3]}
    assert shipped.open_days == ["date=2026-12-03"] and shipped.present == 0
    assert not [k for k in shipped.copied if "/." in k]  # nothing hidden leaves
    again = logship.ship(logs, s3, TODAY)  # a rerun ships nothing twice
    assert again.copied == [] and again.present == len(shipped.copied)

    # where monitoring runs: the window from 2026-12-01, within the retention period
    local = tmp_path / "repo/data/serving/predictions"
    params = write_params(tmp_path / "params.yaml", privacy={"retention_days": 3650})
    proc = run_cli("logs", "pull", "--from", s3, "--to", str(local), "--since", "2026-12-01",
                   "--params", str(params))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in local.iterdir()) == ["date=2026-12-01", "date=2026-12-02"]
    summary = monitor.run(project / "models/package", local, None, tmp_path / "report")
    assert summary.analysis.rows == per_day["2026-12-01"] + per_day["2026-12-02"]
    # and the retention period bounds the pull, whatever the window says
    short = write_params(tmp_path / "short.yaml", privacy={"retention_days": 1})
    old = run_cli("logs", "pull", "--from", s3, "--to", str(tmp_path / "old"), "--since",
                  "2026-11-01", "--params", str(short))  # fmt: skip
    assert old.returncode == 0 and not (tmp_path / "old/date=2026-11-30").exists()


def test_a_store_that_cannot_be_reached_is_an_error_and_a_rerun_finishes(
    s3: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = tmp_path / "logs/date=2026-12-01"
    logs.mkdir(parents=True)
    (logs / "p.parquet").write_bytes(b"PAR1 rows")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    proc = run_cli("logs", "ship", "--logs", str(tmp_path / "logs"), "--to", s3,
                   "--today", "2026-12-03")  # fmt: skip
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == "wrong"
