"""clean never loses rows silently and never leaks personal data; split never shares an id."""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
import pandas as pd
import pytest

from tabml.clean import REASON_COLUMN, clean_development, clean_production
from tabml.config import parse
from tabml.errors import ConfigError, DataError
from tabml.privacy import key_from_env
from tabml.split import split
from tests.conftest import make_frame, schema_dict

SCHEMA = parse("dataset.schema", schema_dict())
KEY = b"k" * 32


def test_counts_add_up_and_rejects_carry_a_reason() -> None:
    frame = make_frame()
    frame.loc[[5, 6], "y"] = np.nan
    dirty = pd.concat([frame, frame.iloc[[1, 2, 3]]], ignore_index=True)
    result = clean_development(dirty, SCHEMA, KEY)
    q = result.quality
    assert q["rows_read"] == len(dirty) == q["rows_kept"] + q["rows_rejected"]
    assert q["rows_rejected"] == sum(q["rejected_by_reason"].values())
    assert q["rejected_by_reason"] == {"duplicate_id": 3, "missing_target": 2}
    assert len(result.rejected) == 5 and result.rejected[REASON_COLUMN].notna().all()
    assert result.clean["id"].is_unique


def test_pii_is_pseudonymised_everywhere_with_a_keyed_hmac() -> None:
    frame = make_frame()
    frame.loc[3, "y"] = np.nan  # one quarantined row carries pii too
    result = clean_development(frame, SCHEMA, KEY)
    raw_emails = set(frame["email"])
    for out in (result.clean, result.rejected):
        assert not raw_emails & set(out["email"].astype(str))
    expected = hmac.new(KEY, b"user0@example.com", hashlib.sha256).hexdigest()
    assert result.clean.loc[result.clean["id"] == 0, "email"].item() == expected
    # a different key gives unrelated pseudonyms
    other = clean_development(frame, SCHEMA, b"z" * 32)
    assert not set(other.clean["email"]) & set(result.clean["email"])


def test_pii_can_be_dropped() -> None:
    schema = parse("dataset.schema", schema_dict(pii={"email": "drop"}))
    result = clean_development(make_frame(), schema, None)
    assert "email" not in result.clean.columns


def test_missing_key_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="TABML_PII_KEY is not set"):
        key_from_env({}, needed=True)
    with pytest.raises(ConfigError, match="too short"):
        key_from_env({"TABML_PII_KEY": "short"}, needed=True)
    assert key_from_env({}, needed=False) is None


def test_production_keeps_and_counts_unseen_and_out_of_range_values() -> None:
    prod = make_frame(seed=1).drop(columns=["y"]).astype({"income": object, "ratio": object})
    prod.loc[[0, 1], "income"] = "vast"
    prod.loc[[2], "ratio"] = 3.0
    result = clean_production(prod, None, SCHEMA, KEY)
    assert len(result.features) == len(prod)
    assert result.quality["unseen_categories"]["income"]["count"] == 2
    assert result.quality["out_of_range"]["ratio"] == {"below": 0, "above": 1}


@pytest.mark.parametrize("method", ["time", "stratified"])
def test_split_partitions_ids(method: str) -> None:
    frame = clean_development(make_frame(1000), SCHEMA, KEY).clean
    cfg = parse("split", {"method": method, "valid_fraction": 0.15, "test_fraction": 0.2})
    result = split(frame, SCHEMA, cfg, seed=1)
    ids = [set(p["id"]) for p in (result.train, result.valid, result.test)]
    assert sum(len(s) for s in ids) == len(frame)
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert result.summary["test"]["rows"] == pytest.approx(200, abs=2)


def test_time_split_test_is_strictly_later_than_train_even_with_ties() -> None:
    frame = clean_development(make_frame(1000), SCHEMA, KEY).clean
    # many rows share each timestamp, so a naive cut would straddle a tie
    frame = frame.assign(ts=frame["ts"].dt.floor("D"))
    cfg = parse("split", {"method": "time", "valid_fraction": 0.15, "test_fraction": 0.15})
    result = split(frame, SCHEMA, cfg, seed=0)
    assert result.test["ts"].min() > result.train["ts"].max()
    assert result.valid["ts"].min() > result.train["ts"].max()


def test_stratified_split_is_seeded_and_keeps_positive_rate() -> None:
    frame = clean_development(make_frame(2000), SCHEMA, KEY).clean
    cfg = parse("split", {"method": "stratified", "valid_fraction": 0.15, "test_fraction": 0.15})
    a, b, c = (split(frame, SCHEMA, cfg, seed=s) for s in (7, 7, 8))
    assert a.test["id"].tolist() == b.test["id"].tolist()
    assert a.test["id"].tolist() != c.test["id"].tolist()
    rate = frame["y"].mean()
    assert abs(a.test["y"].mean() - rate) < 0.01


def test_split_refuses_a_single_class_part() -> None:
    frame = clean_development(make_frame(200), SCHEMA, KEY).clean
    frame = frame.assign(y=np.where(frame.index < 180, frame["y"], 1))
    cfg = parse("split", {"method": "time", "valid_fraction": 0.05, "test_fraction": 0.05})
    with pytest.raises(DataError, match="both classes"):
        split(frame, SCHEMA, cfg, seed=0)
