"""Faults and hostile inputs: nothing overwritten, every error a message, one rule per check.

Each test drives the real command (`tabml.cli.main`) or the function every path shares.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tabml.core import io
from tabml.core.config import SchemaConfig, parse
from tabml.core.schema import BatchChecks, ValidationError, validate
from tests.conftest import BIN, make_frame, schema_dict, tool_env, write_params
from tests.unit.test_ingest_bad_input import run_main

SCHEMA = parse(SchemaConfig, schema_dict(pii={}))


# --- a command never writes over its input -------------------------------------------------


def test_an_output_that_resolves_to_an_input_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a\n1\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.csv").symlink_to(data)
    for out in [data, tmp_path / "sub/../data.csv", tmp_path / "link.csv"]:
        with pytest.raises(io.DataError, match="write the output elsewhere"):
            io.guard_outputs([data], files=[out])
    os.link(data, tmp_path / "hard.csv")
    with pytest.raises(io.DataError, match="write the output elsewhere"):
        io.guard_outputs([data], files=[tmp_path / "hard.csv"])
    # an output folder that is, holds or lies inside an input folder
    logs = tmp_path / "logs"
    logs.mkdir()
    for out_dir in [logs, tmp_path, logs / "report"]:
        with pytest.raises(io.DataError, match="folder of their own"):
            io.guard_outputs([logs], dirs=[out_dir])
    io.guard_outputs([logs, data], files=[tmp_path / "scores.csv"], dirs=[tmp_path / "report"])


def test_predict_refuses_to_write_over_its_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = tmp_path / "batch.csv"
    make_frame(20).to_csv(batch, index=False)
    before = batch.read_bytes()
    code, err = run_main(
        monkeypatch,
        capsys,
        "predict",
        "--package",
        str(tmp_path / "no-package"),
        "--input",
        str(batch),
        "--output",
        str(tmp_path / "x/../batch.csv"),
    )
    assert code == 3 and "write the output elsewhere" in err, err
    assert batch.read_bytes() == before


def test_outputs_are_checked_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = tmp_path / "batch.csv"
    make_frame(20).to_csv(batch, index=False)
    folder = tmp_path / "a-folder"
    folder.mkdir()
    # the package does not even exist: the output is refused first, with no traceback
    code, err = run_main(
        monkeypatch, capsys, "predict", "--package", str(tmp_path / "none"),
        "--input", str(batch), "--output", str(folder),
    )  # fmt: skip
    assert code == 3 and "is a folder" in err and "Traceback" not in err, err
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    code, err = run_main(
        monkeypatch, capsys, "monitor", "--package", str(tmp_path / "none"),
        "--input", str(batch), "--output-dir", str(a_file),
    )  # fmt: skip
    assert code == 3 and "is a file" in err, err


# --- every error is a message ---------------------------------------------------------------


def _as_nobody() -> list[str]:
    """Run as an unprivileged user when root (root reads any file whatever its mode)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot drop the privilege to read")
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A temporary folder the unprivileged user can enter (pytest's own is root-only)."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="tabml-perm-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_an_unreadable_file_is_a_message_not_a_traceback(open_tmp: Path) -> None:
    tmp_path = open_tmp
    ext = tmp_path / "ext"
    ext.mkdir(mode=0o755)
    ext.chmod(0o755)
    make_frame(100).to_csv(ext / "dev.csv", index=False)
    (ext / "dev.csv").chmod(0o000)
    params = write_params(tmp_path / "params.yaml", schema_dict(pii={}))
    params.chmod(0o644)
    out = tmp_path / "out"
    out.mkdir(mode=0o777)
    out.chmod(0o777)
    proc = subprocess.run(
        [*_as_nobody(), str(BIN / "tabml"), "ingest", "--params", str(params),
         "--sources-dir", str(ext), "--output-dir", str(out / "raw")],
        capture_output=True, text=True, env=tool_env(), cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert "no permission to read" in proc.stderr and "Traceback" not in proc.stderr
    # a folder of logs with an unreadable file: monitor says so too
    logs = out / "logs"
    logs.mkdir()
    shutil.copy(ext / "dev.csv", logs / "day.csv")
    (logs / "day.csv").chmod(0o000)
    with pytest.raises(io.DataError, match="no permission"):
        if _as_nobody():
            raise io.DataError("no permission (checked as nobody below)")
        io.read_batch(logs)
    proc = subprocess.run(
        [*_as_nobody(), sys.executable, "-c",
         f"from tabml.core import io; io.read_batch(__import__('pathlib').Path({str(logs)!r}))"],
        capture_output=True, text=True, env=tool_env(),
    )  # fmt: skip
    assert "no permission to read" in proc.stderr and "PermissionError" not in proc.stderr


# --- garbage is refused ---------------------------------------------------------------------


def test_a_header_naming_a_column_twice_is_refused_with_its_real_name(tmp_path: Path) -> None:
    frame = make_frame(10)
    path = tmp_path / "dup.csv"
    path.write_text(frame.to_csv(index=False).replace("ratio", "amount", 1))
    for read in (io.read_table, lambda p: next(io.iter_table(p, 5)), io.read_batch):
        with pytest.raises(io.DataError, match=r"more than once: \['amount'\]"):
            read(path)
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table([[1, 2], [3, 4]], names=["car_value", "car_value"])
    pq.write_table(table, tmp_path / "dup.parquet")
    with pytest.raises(io.DataError, match=r"more than once: \['car_value'\]"):
        io.read_table(tmp_path / "dup.parquet")


@pytest.mark.parametrize(
    "case",
    ["ids differing only in an ignored column", "labels with two empty ids", "all-empty column"],
)
def test_one_rule_gives_the_same_verdict_on_every_path(case: str) -> None:
    """ingest's checks (a file in batches) and `validate` (predict, monitor) are one code."""
    schema = parse(SchemaConfig, schema_dict(pii={}, ignore=["note"]))
    frame = make_frame(30).drop(columns=["email"])
    role = "production"
    if case == "ids differing only in an ignored column":
        frame = frame.assign(note="a")
        frame = pd.concat([frame, frame.iloc[[0]].assign(note="b")], ignore_index=True)
        frame = frame.drop(columns=["y"])
    elif case == "labels with two empty ids":
        frame = frame[["id", "y"]].astype({"id": "Float64"})
        frame.loc[[3, 4], "id"] = pd.NA
        role = "labels"
    else:
        frame = frame.drop(columns=["y"]).assign(ratio=float("nan"))

    def verdict_in_batches() -> list[tuple[str, str, int]]:
        checks = BatchChecks(schema, role)  # type: ignore[arg-type]
        for start in range(0, len(frame), 7):
            checks.add(frame.iloc[start : start + 7])
        return sorted((f.column, f.check, f.count) for f in checks.finish())

    try:
        validate(frame, schema, role, "x")  # type: ignore[arg-type]
        whole: list[tuple[str, str, int]] = []
    except ValidationError as err:
        whole = sorted((f.column, f.check, f.count) for f in err.failures)
    assert whole == verdict_in_batches()
    expected = {
        "ids differing only in an ignored column": [],
        "labels with two empty ids": [("id", "empty id", 2)],
        "all-empty column": [("ratio", "all values are empty", 31 - 1)],
    }[case]
    assert whole == expected


def test_a_huge_value_is_never_echoed_whole() -> None:
    frame = make_frame(20).drop(columns=["email"]).astype({"amount": object})
    frame.loc[2, "amount"] = "x" * 10_000_000
    with pytest.raises(ValidationError) as err:
        validate(frame, SCHEMA, "development", "big.csv")
    message = str(err.value)
    assert len(message) < 1_000, len(message)
    assert "xxxx… (10,000,000 characters)" in message


# --- a killed write leaves nothing that lasts --------------------------------------------------


def test_the_next_write_removes_what_a_killed_write_left(tmp_path: Path) -> None:
    out = tmp_path / "metrics.json"
    stale = tmp_path / ".metrics.json.abc123.tmp"
    stale.write_text("half")
    other = tmp_path / ".other.json.abc123.tmp"
    other.write_text("not ours")
    stale_dir = tmp_path / ".model.xyz.tmp"
    stale_dir.mkdir()
    io.write_json(out, {"a": 1})
    assert not stale.exists() and other.exists()
    with io.atomic_dir(tmp_path / "model") as tmp:
        (tmp / "m.txt").write_text("m")
    assert not stale_dir.exists() and (tmp_path / "model/m.txt").is_file()
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "--no-index", "reports/.metrics.json.abc123.tmp"],
        cwd=Path(__file__).resolve().parents[2],
    )
    assert ignored.returncode == 0
