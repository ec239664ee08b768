"""Ingest and clean stream their input in batches: the results equal reading it whole."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tabml.core.errors import DataError
from tabml.stages import clean, ingest
from tests.conftest import make_frame, write_params


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABML_PII_KEY", "k" * 32)  # the small dataset pseudonymises email


def _setup(tmp_path: Path, frame: pd.DataFrame) -> Path:
    (tmp_path / "ext").mkdir(exist_ok=True)
    frame.to_csv(tmp_path / "ext/dev.csv", index=False)
    return write_params(tmp_path / "params.yaml")


def _ingest(tmp_path: Path, params: Path, batch_rows: int, out: str) -> Path:
    ingest.run(params, tmp_path / "ext", tmp_path / out, batch_rows=batch_rows)
    return tmp_path / out


def test_batches_give_the_same_outputs_as_one_read(tmp_path: Path) -> None:
    frame = make_frame(500)
    frame.loc[frame.index[:60], "ratio"] = None  # a column empty in the first batches only
    params = _setup(tmp_path, frame)
    whole = _ingest(tmp_path, params, 1_000_000, "whole")
    small = _ingest(tmp_path, params, 37, "small")
    for name in ("development.parquet", "production.parquet", "production_labels.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(small / name), pd.read_parquet(whole / name))
    report = tmp_path / "q.json"
    clean.run(params, whole, tmp_path / "cw", report, batch_rows=1_000_000)
    expected = report.read_text()
    clean.run(params, small, tmp_path / "cs", report, batch_rows=37)
    assert report.read_text() == expected
    for name in ("clean.parquet", "rejected.parquet"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "cs" / name), pd.read_parquet(tmp_path / "cw" / name)
        )


def test_failures_across_batches_are_one_error_with_file_rows(tmp_path: Path) -> None:
    frame = make_frame(100)
    frame["amount"] = frame["amount"].astype(object)
    frame.loc[[3, 55, 98], "amount"] = "lots"
    frame.loc[[10, 80], "id"] = frame.loc[[11, 81], "id"].to_numpy()  # ids reused, other rows
    params = _setup(tmp_path, frame)
    with pytest.raises(DataError) as err:
        _ingest(tmp_path, params, 20, "raw")
    text = str(err.value)
    assert "column 'amount': wrong type: not a number: 3 rows" in text
    assert "(rows 4, 56, 99)" in text
    assert "duplicate id with different values: 4 rows" in text
    assert not (tmp_path / "raw").exists()


def test_identical_redeliveries_across_batches_are_left_to_clean(tmp_path: Path) -> None:
    frame = make_frame(60)
    frame = pd.concat([frame, frame.iloc[[5]]], ignore_index=True)  # row 6 delivered again
    params = _setup(tmp_path, frame)
    raw = _ingest(tmp_path, params, 25, "raw")
    report = tmp_path / "q.json"
    clean.run(params, raw, tmp_path / "interim", report, batch_rows=25)
    import json

    quality = json.loads(report.read_text())["development"]
    assert quality["rows_read"] == 61 and quality["rows_kept"] == 60
    assert quality["rejected_by_reason"] == {"duplicate_id": 1}


def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.parquet"))}


def test_pieces_of_a_batch_write_the_same_bytes_as_whole_batches(tmp_path: Path) -> None:
    """Ingest and clean hold a piece (a quarter batch by default), not a batch, and still
    write a row group per batch: byte for byte the files of reading whole batches, with
    duplicates, missing ids and missing targets spread over pieces and batches."""
    frame = make_frame(230)
    frame = pd.concat([frame, frame.iloc[[3, 70, 150]]], ignore_index=True)  # re-deliveries
    frame.loc[[20, 120], "y"] = None  # missing targets
    params = _setup(tmp_path, frame)
    raw = {}
    for name, piece in (("whole", 40), ("pieces", 10)):
        ingest.run(params, tmp_path / "ext", tmp_path / f"raw-{name}", batch_rows=40,
                   piece_rows=piece)  # fmt: skip
        raw[name] = _bytes(tmp_path / f"raw-{name}")
    assert raw["pieces"] == raw["whole"]
    import pyarrow.parquet as pq

    groups = pq.ParquetFile(tmp_path / "raw-pieces/development.parquet").metadata.num_row_groups
    assert groups == 6  # 233 rows in batches of 40
    out = {}
    for name, piece in (("whole", 40), ("pieces", 10), ("uneven", 15)):  # 15: no tiling
        report = tmp_path / f"q-{name}.json"
        clean.run(params, tmp_path / "raw-whole", tmp_path / f"c-{name}", report,
                  batch_rows=40, piece_rows=piece)  # fmt: skip
        out[name] = (_bytes(tmp_path / f"c-{name}"), report.read_text())
    assert out["pieces"] == out["whole"] == out["uneven"]
    assert '"duplicate_id": 3' in out["pieces"][1]
