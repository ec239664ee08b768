"""Retention: day partitions of prediction logs and labels past the configured days are
deleted, newer ones and undated files are kept."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
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
    assert (
        prune(monkeypatch, "--params", str(params), "--today", "30/11/2026") == 2
    )  # a usage error, as typer gives for its own checks
    assert "YYYY-MM-DD" in capsys.readouterr().err


def test_a_symlinked_partition_is_reported_and_the_rest_pruned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "logs"
    outside = _day(tmp_path / "elsewhere", "2020-01-01")
    old = _day(logs, "2020-01-02")
    (logs / "date=2020-01-01").symlink_to(outside, target_is_directory=True)
    params = write_params(tmp_path / "params.yaml", privacy={"retention_days": 180})
    args = ["--logs", str(logs), "--labels", str(tmp_path / "labels"), "--params", str(params),
            "--today", "2026-11-30", "--no-dvc-add"]  # fmt: skip
    assert prune(monkeypatch, *args) == 0
    err = capsys.readouterr().err
    assert not old.exists() and outside.is_dir() and (logs / "date=2020-01-01").is_symlink()
    assert f"{logs / 'date=2020-01-01'}: a symbolic link" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--days", "1000000"], "--days"),
        (["--today", "0001-01-05"], "before the year 1"),
        (["--today", "yesterday"], "give a day as YYYY-MM-DD"),
    ],
)
def test_out_of_range_days_are_refused_with_a_message(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    logs = tmp_path / "logs"
    _day(logs, "2026-01-01")
    params = write_params(tmp_path / "params.yaml", privacy={"retention_days": 180})
    args = ["--logs", str(logs), "--params", str(params), "--no-dvc-add", *extra]
    assert prune(monkeypatch, *args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and (logs / "date=2026-01-01").is_dir()


def test_a_missing_logs_folder_is_an_error_not_zero_deletions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    params = write_params(tmp_path / "params.yaml")
    code = prune(monkeypatch, "--logs", str(tmp_path / "nope"), "--params", str(params))
    assert code == 3 and "no such folder of prediction logs" in capsys.readouterr().err


def test_since_is_a_day_compared_as_a_day_whatever_its_iso_form(tmp_path: Path) -> None:
    from tabml.core import io
    from tabml.governance import retention

    logs = tmp_path / "logs"
    for day in ("2026-11-30", "2026-12-01", "2026-12-02"):
        part = logs / f"date={day}"
        part.mkdir(parents=True)
        pd.DataFrame({"id": [day]}).to_parquet(part / "p.parquet")
    for given in ("2026-12-01", "20261201", "2026-W49-2"):
        since = retention.parse_day(given, "--since")
        assert sorted(io.read_batch(logs, since=since)["id"]) == ["2026-12-01", "2026-12-02"]


def test_monitor_refuses_a_window_it_cannot_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for extra in (["--last-days", "1000000"], ["--since", "2026-13-01"]):
        monkeypatch.setattr(sys, "argv", ["tabml", "monitor", "--package", str(tmp_path / "p"),
                                          "--input", str(tmp_path), *extra])  # fmt: skip
        with pytest.raises(SystemExit) as exc:
            main()
        assert exc.value.code == 2
        assert "Traceback" not in capsys.readouterr().err


def test_the_documented_copy_of_the_logs_lands_where_prune_and_monitor_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/serving.md's copy of the server's log folder, done as rsync does it (`SRC/` copies
    the folder's contents), then its prune: every day partition is seen, none undated, and
    neither the audit log nor the spool comes along."""
    import re
    import shutil

    from tests.conftest import ROOT

    doc = (ROOT / "docs/serving.md").read_text()
    line = next(ln for ln in doc.splitlines() if ln.startswith("rsync "))
    match = re.fullmatch(r"rsync -a --exclude='\.\*' server:(\S+)/ (\S+)/", line.strip())
    assert match, line
    source, dest = match.groups()
    server = tmp_path / "server"
    log = server / source.lstrip("/")
    for day in ("2020-01-01", "2026-11-30"):
        _day(log, day)
    (log / ".spool").mkdir()
    (log / ".spool/x.jsonl").write_text("{}\n")
    audit = server / "var/log/tabml/audit"
    audit.mkdir(parents=True)
    (audit / "audit.jsonl").write_text("{}\n")
    target = tmp_path / "repo" / dest
    shutil.copytree(log, target, ignore=shutil.ignore_patterns(".*"))  # rsync -a --exclude='.*'
    params = write_params(tmp_path / "params.yaml", privacy={"retention_days": 180})
    args = ["--logs", str(target), "--labels", str(tmp_path / "none"), "--params", str(params),
            "--today", "2026-12-01", "--no-dvc-add"]  # fmt: skip
    assert prune(monkeypatch, *args) == 0
    out = capsys.readouterr()
    assert "deleted 1 day partition(s)" in out.out and "undated" not in out.err
    assert sorted(p.name for p in target.iterdir()) == ["date=2026-11-30"]
