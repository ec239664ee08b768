"""Every bad input at ingest: non-zero exit, a message naming file, column, check, count and
examples, and earlier outputs left as they were."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from tabml.cli import main
from tests.conftest import make_frame, schema_dict, write_params


def run_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["tabml", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    code = exc.value.code
    return (code if isinstance(code, int) else 1), capsys.readouterr().err


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "ext").mkdir()
    out = tmp_path / "raw"
    out.mkdir()
    (out / "development.parquet").write_bytes(b"earlier output")
    return tmp_path


def ingest(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    workdir: Path,
    schema: dict | None = None,
    source: str = "dev.csv",
) -> tuple[int, str]:
    params = write_params(workdir / "params.yaml", schema, source=source)
    monkeypatch.setenv("TABML_PII_KEY", "k" * 32)  # the small dataset pseudonymises email
    return run_main(
        monkeypatch,
        capsys,
        "ingest",
        "--params",
        str(params),
        "--sources-dir",
        str(workdir / "ext"),
        "--output-dir",
        str(workdir / "raw"),
    )


def write_csv(workdir: Path, frame: pd.DataFrame) -> Path:
    path = workdir / "ext" / "dev.csv"
    frame.to_csv(path, index=False)
    return path


def _set(col: str, rows: list[int], value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(f: pd.DataFrame) -> pd.DataFrame:
        f = f.astype({col: object})
        f.loc[rows, col] = value
        return f

    return change


CASES = {
    "missing column": (lambda f: f.drop(columns=["ratio"]), ["'ratio'", "missing column"]),
    "extra column": (lambda f: f.assign(surprise=1), ["'surprise'", "extra column"]),
    "wrong dtype": (
        _set("amount", [3, 7], "lots"),
        ["'amount'", "not a number", "2 rows", "'lots'", "rows 4, 8"],
    ),
    "all-null column": (
        lambda f: f.assign(ratio=float("nan")),
        ["'ratio'", "all values are empty", "400 rows"],
    ),
    "value out of range": (
        _set("ratio", [5], 1.7),
        ["'ratio'", "out of range [0.0, 1.0]", "1 row", "1.7"],
    ),
    "unknown category": (
        _set("income", [1, 2, 9], "vast"),
        ["'income'", "unknown category", "3 rows", "'vast'"],
    ),
    "duplicate id": (
        lambda f: f.assign(id=f["id"].where(f.index != 10, 11)),
        ["'id'", "duplicate id with different values", "2 rows", "11"],
    ),
    "single-class target": (lambda f: f.assign(y=1), ["'y'", "single class"]),
    "missing target": (lambda f: f.drop(columns=["y"]), ["'y'", "missing column"]),
    "all-null target": (lambda f: f.assign(y=float("nan")), ["'y'", "missing target"]),
    "boolean garbage": (_set("owner", [0], "maybe"), ["'owner'", "not a boolean", "'maybe'"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_clearly_and_keeps_outputs(
    case: str, workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    change, expected = CASES[case]
    path = write_csv(workdir, change(make_frame()))
    code, err = ingest(monkeypatch, capsys, workdir)
    assert code != 0
    assert str(path) in err
    for fragment in expected:
        assert fragment in err, f"{fragment!r} not in:\n{err}"
    assert (workdir / "raw" / "development.parquet").read_bytes() == b"earlier output"


def test_all_failures_are_reported_at_once(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = _set("amount", [1], "x")(make_frame()).drop(columns=["owner"]).assign(extra=0)
    write_csv(workdir, frame)
    code, err = ingest(monkeypatch, capsys, workdir)
    assert code != 0
    assert "3 schema checks failed" in err
    for col in ("'amount'", "'owner'", "'extra'"):
        assert col in err


def test_extra_columns_allowed_when_config_says_so(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_csv(workdir, make_frame().assign(surprise=1))
    code, err = ingest(monkeypatch, capsys, workdir, schema_dict(extra_columns="allow"))
    assert code == 0, err
    assert len(pd.read_parquet(workdir / "raw" / "development.parquet")) == 400


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "file not found"),
        (b"", "file is empty"),
        (b"id,ts,amount,income,ratio,owner,email,y\n", "no rows"),
        (
            b"id,ts,amount,income,ratio,owner,email,y\n1,2024-01-01,5,caf\xe9,0.1,true,a,1\n",
            "not valid UTF-8: byte 0xe9",
        ),
    ],
    ids=["missing file", "empty file", "header only", "non-UTF-8"],
)
def test_unreadable_files(
    content: bytes | None,
    expected: str,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if content is not None:
        (workdir / "ext" / "dev.csv").write_bytes(content)
    code, err = ingest(monkeypatch, capsys, workdir)
    assert code != 0
    assert "dev.csv" in err and expected in err
    assert (workdir / "raw" / "development.parquet").read_bytes() == b"earlier output"


def test_identical_duplicate_rows_pass_ingest(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = make_frame()
    write_csv(workdir, pd.concat([frame, frame.iloc[[3, 4]]], ignore_index=True))
    code, err = ingest(monkeypatch, capsys, workdir)
    assert code == 0, err


def test_source_outside_sources_dir_is_refused(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = ingest(monkeypatch, capsys, workdir, source="../secret.csv")
    assert code != 0 and "../secret.csv" in err and "dvc add" in err


def test_unknown_bundled_dataset_lists_the_real_ones(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = ingest(monkeypatch, capsys, workdir, source="nannyml://nope.csv")
    assert code != 0 and "synthetic_car_loan_dq_reference.csv" in err
