"""Retraining data: logs joined with late labels, appended once per id, read back by ingest."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tabml.core.config import SchemaConfig, parse
from tabml.core.errors import DataError
from tabml.data.retrain import labelled_rows, merge, within_schema
from tabml.service import serving
from tabml.stages import ingest
from tests.conftest import make_frame, schema_dict, write_params

SCHEMA = parse(SchemaConfig, schema_dict())


def logs_of(frame: pd.DataFrame) -> pd.DataFrame:
    """What `tabml serve --log-dir` writes for these records (pii pseudonymised)."""
    return frame.drop(columns=["y"]).assign(
        email="0" * 64,
        **{
            serving.REQUEST_ID: "r1",
            serving.SCORE: 0.5,
            serving.LABEL: 1,
            serving.LOGGED_AT: "2026-11-26T10:00:00+00:00",
            serving.MODEL_VERSION: "m",
        },
    )


def test_labelled_rows_join_logs_and_late_labels() -> None:
    frame = make_frame(50)
    logs = pd.concat([logs_of(frame), logs_of(frame.iloc[:5])])  # five records scored twice
    labels = frame[["id", "y"]].iloc[:30]
    rows, seen = labelled_rows(logs, labels, SCHEMA)
    assert seen == {"logged": 55, "records": 50, "labelled": 30, "unlabelled": 20}
    assert list(rows.columns) == ["id", "ts", "amount", "income", "ratio", "owner", "y"]
    assert "email" not in rows  # personal data stays out of the development set
    pd.testing.assert_series_equal(
        rows.set_index("id")["y"].sort_index(), labels.set_index("id")["y"], check_names=False
    )


def test_merge_is_one_row_per_id_newest_wins_and_idempotent() -> None:
    frame = make_frame(40)
    first, counts = merge(None, frame.iloc[:30], SCHEMA)
    assert counts == {"before": 0, "added": 30, "replaced": 0, "after": 30}
    relabelled = frame.iloc[20:40].assign(y=1)
    second, counts = merge(first, relabelled, SCHEMA)
    assert counts == {"before": 30, "added": 10, "replaced": 10, "after": 40}
    assert (second.set_index("id").loc[20:39, "y"] == 1).all()
    again, counts = merge(second, relabelled, SCHEMA)
    assert counts["added"] == 0
    pd.testing.assert_frame_equal(again, second)
    assert again["ts"].is_monotonic_increasing


def test_logs_that_are_not_tabml_logs_are_a_clear_error() -> None:
    with pytest.raises(DataError, match=r"missing columns \['amount'"):
        labelled_rows(pd.DataFrame({"id": [1]}), pd.DataFrame({"id": [1], "y": [0]}), SCHEMA)


def test_ingest_adds_the_additions_file_when_it_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TABML_PII_KEY", "k" * 32)  # the small dataset pseudonymises email
    ext, raw = tmp_path / "ext", tmp_path / "raw"
    ext.mkdir()
    frame = make_frame(300)
    frame.iloc[:200].to_csv(ext / "dev.csv", index=False)
    sources = {
        "development": "dev.csv",
        "production": None,
        "production_labels": None,
        "additions": "additions.parquet",
    }
    params = write_params(tmp_path / "params.yaml")
    import yaml

    p = yaml.safe_load(params.read_text())
    p["dataset"]["sources"] = sources
    params.write_text(yaml.safe_dump(p))
    ingest.run(params, ext, raw)
    assert len(pd.read_parquet(raw / "development.parquet")) == 200  # none yet
    rows, _ = labelled_rows(logs_of(frame.iloc[200:]), frame[["id", "y"]], SCHEMA)
    merge(None, rows, SCHEMA)[0].to_parquet(ext / "additions.parquet")
    ingest.run(params, ext, raw)
    dev = pd.read_parquet(raw / "development.parquet")
    assert len(dev) == 300 and dev["id"].is_unique


def test_rows_the_development_schema_refuses_are_left_out_and_named() -> None:
    rows = make_frame(20)
    rows.loc[:2, "income"] = "new band"
    rows.loc[5, "ratio"] = 1.5
    kept, outside = within_schema(rows, SCHEMA)
    assert len(kept) == 16
    assert outside == {
        "income": {"rows": 3, "examples": ["new band"]},
        "ratio": {"rows": 1, "examples": ["1.5"]},
    }


def test_left_out_rows_are_exactly_those_development_coerce_refuses() -> None:
    from tabml.core.schema import coerce

    coded = parse(
        SchemaConfig,
        schema_dict(
            features={
                "amount": {"kind": "numeric", "min": 0},
                "band": {"kind": "categorical", "categories": ["1", "2"]},
            },
            pii={},
        ),
    )
    rows = make_frame(6)[["id", "ts", "amount", "y"]]
    # category codes logged as floats: coerce reads 1.0 as '1', so they are not refused
    rows["band"] = [1.0, 2.0, 3.0, 1.0, None, 2.0]
    rows.loc[1, "amount"] = -5.0
    kept, outside = within_schema(rows, coded)
    assert outside == {
        "amount": {"rows": 1, "examples": ["-5.0"]},
        "band": {"rows": 1, "examples": ["3.0"]},
    }
    assert not coerce(kept, coded, "development").failures
    assert coerce(rows, coded, "development").failures
