"""Retention: day partitions of prediction logs and labels past the configured days are
deleted, newer ones and undated files are kept."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tabml.cli import main
from tests.conftest import write_params


def _day(folder: Path, day: str) -> Path:
    part = folder / f"date={day}"
    part.mkdir(parents=True)
    (part / "predictions-1.parquet").write_bytes(b"PAR1 rows")
    return part


def prune(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["tabml", "logs", "prune", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    return int(exc.value.code or 0)


def test_partitions_older_than_the_retention_go_newer_ones_stay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    logs, labels = tmp_path / "logs", tmp_path / "labels"
    old = [_day(logs, "2026-05-01"), _day(logs, "2026-06-02"), _day(labels, "2026-01-15")]
    new = [_day(logs, "2026-06-03"), _day(logs, "2026-11-30"), _day(labels, "2026-11-01")]
    (logs / "notes.parquet").write_bytes(b"undated")
    params = write_params(tmp_path / "params.yaml", privacy={"retention_days": 180})
    args = ["--logs", str(logs), "--labels", str(labels), "--params", str(params),
            "--today", "2026-11-30", "--no-dvc-add"]  # fmt: skip
    assert prune(monkeypatch, *args, "--dry-run") == 0
    assert all(p.exists() for p in old + new)
    assert "would delete 2 day partition(s) before 2026-06-03" in capsys.readouterr().out
    assert prune(monkeypatch, *args) == 0
    out = capsys.readouterr()
    assert not any(p.exists() for p in old)
    assert all((p / "predictions-1.parquet").is_file() for p in new)
    assert (logs / "notes.parquet").is_file() and "undated" in out.err
    # --days overrides the configured retention
    assert prune(monkeypatch, *args, "--days", "1") == 0
    assert [p.name for p in logs.iterdir() if p.is_dir()] == ["date=2026-11-30"]


def test_a_bad_day_is_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    params = write_params(tmp_path / "params.yaml")
    assert prune(monkeypatch, "--params", str(params), "--today", "30/11/2026") == 1
    assert "YYYY-MM-DD" in capsys.readouterr().err
