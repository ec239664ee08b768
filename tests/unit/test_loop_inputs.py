"""The loop's commands take what real clients and files give them (issue 27, items 22-25):
logs without the optional timestamp, labels that contradict themselves, and timestamps with
zones, mixed or beyond datetime64's range."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tabml.core.config import SchemaConfig, parse
from tabml.core.errors import DataError
from tabml.core.schema import ValidationError, validate
from tabml.data.retrain import labelled_rows
from tabml.service.predlog import with_received_time
from tabml.stages import append
from tests.conftest import make_frame, schema_dict, write_params
from tests.unit.test_retrain import logs_of

SCHEMA = parse(SchemaConfig, schema_dict())


def test_logged_rows_without_a_timestamp_take_the_time_they_were_received() -> None:
    logs = logs_of(make_frame(6)).assign(ts=[None, "", "2024-01-01 03:00", None, " ", None])
    filled, n = with_received_time(logs, "ts")
    assert n == 5 and filled["ts"].tolist()[2] == "2024-01-01 03:00"
    assert set(filled["ts"].drop(index=2)) == {"2026-11-26T10:00:00+00:00"}
    typed = validate(filled, SCHEMA, "production", "logs").frame  # no "empty timestamp"
    assert typed["ts"].notna().all()
    without = logs_of(make_frame(3)).drop(columns=["ts"])
    assert with_received_time(without, "ts")[1] == 3
    plain = make_frame(3)  # not a prediction log: left as it is
    assert with_received_time(plain.assign(ts=None), "ts")[1] == 0


def test_append_uses_the_received_time_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = make_frame(20)
    logs, labels, ext = tmp_path / "logs", tmp_path / "labels.csv", tmp_path / "ext"
    logs.mkdir()
    ext.mkdir()
    logs_of(frame).assign(ts=None).to_parquet(logs / "p.parquet")
    frame[["id", "y"]].to_csv(labels, index=False)
    sources = {"development": "dev.csv", "production": None, "production_labels": None,
               "additions": "additions.parquet"}  # fmt: skip
    params = write_params(tmp_path / "params.yaml")
    import yaml

    tree = yaml.safe_load(params.read_text())
    tree["dataset"]["sources"] = sources
    params.write_text(yaml.safe_dump(tree))
    out = append.run(params, logs, labels, ext, dvc_add=False)
    added = pd.read_parquet(out)
    assert len(added) == 20 and added["ts"].notna().all()
    assert "20 logged rows came without 'ts'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("labels", "why"),
    [
        ({"id": [1, 1, 2], "y": [0, 1, 1]}, "labelled with both classes"),
        ({"id": [1, 2], "y": [2, 1]}, "not a label of this target"),
        ({"id": [1, 2, 3], "y": [1.5, 1, 0]}, "not a label of this target"),
    ],
)
def test_labels_that_contradict_themselves_or_the_target_are_refused(
    labels: dict[str, list[object]], why: str
) -> None:
    logs = logs_of(make_frame(5))
    with pytest.raises((DataError, ValidationError), match=why):
        labelled_rows(logs, pd.DataFrame(labels), SCHEMA)
    same_twice = pd.DataFrame({"id": [1, 1, 2], "y": [1, 1, 0]})  # agreeing duplicates: fine
    assert labelled_rows(logs, same_twice, SCHEMA)[1]["labelled"] == 2


def test_timestamps_are_normalised_to_utc_or_refused_with_the_row() -> None:
    frame = make_frame(4).drop(columns=["y"])
    aware = frame.assign(ts=["2026-01-01T10:00:00+02:00", "2026-01-01T08:00:00Z",
                             "2026-01-01 08:00", "2026-01-01T03:00:00-05:00"])  # fmt: skip
    typed = validate(aware, SCHEMA, "production", "batch.csv").frame
    assert typed["ts"].tolist() == [pd.Timestamp("2026-01-01 08:00")] * 4
    zoned = frame.assign(
        ts=pd.to_datetime(aware["ts"], utc=True, format="mixed").dt.tz_convert("Asia/Tokyo")
    )
    assert (
        validate(zoned, SCHEMA, "production", "batch.parquet").frame["ts"].tolist()
        == [pd.Timestamp("2026-01-01 08:00")] * 4
    )
    far = frame.assign(ts=["2300-01-01", "2026-01-01", "2026-01-02", "2026-01-03"])
    with pytest.raises(ValidationError, match=r"'ts'.*outside 1677-09-22 .. 2262-04-11.*row") as e:
        validate(far, SCHEMA, "production", "batch.csv")
    assert "2300-01-01" in str(e.value)


def test_predict_scores_a_batch_with_zoned_timestamps(tmp_path: Path) -> None:
    """The whole path a user takes: `tabml predict` on a file whose times carry offsets."""
    from tabml.learning import package as pkg
    from tabml.learning.predict import score
    from tests.unit.test_model_package import _build_package

    folder = _build_package(tmp_path)
    test = pd.read_parquet(tmp_path / "test.parquet")
    test["ts"] = pd.to_datetime(test["ts"]).dt.tz_localize("Europe/Paris")
    out = score(pkg.load(folder), test, "test.parquet")
    assert len(out) == len(test)
