"""clean never loses rows silently; split never shares an id. (Personal data: test_privacy.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabml.core.config import SchemaConfig, SplitConfig, parse
from tabml.core.errors import ConfigError, DataError
from tabml.data.clean import REASON_COLUMN, clean_development, clean_production
from tabml.data.split import split
from tabml.governance.privacy import key_from_env
from tests.conftest import make_frame, schema_dict

SCHEMA = parse(SchemaConfig, schema_dict())


def test_counts_add_up_and_rejects_carry_a_reason() -> None:
    frame = make_frame()
    frame.loc[[5, 6], "y"] = np.nan
    dirty = pd.concat([frame, frame.iloc[[1, 2, 3]]], ignore_index=True)
    result = clean_development(dirty, SCHEMA)
    q = result.quality
    assert q["rows_read"] == len(dirty) == q["rows_kept"] + q["rows_rejected"]
    assert q["rows_rejected"] == sum(q["rejected_by_reason"].values())
    assert q["rejected_by_reason"] == {"duplicate_id": 3, "missing_target": 2}
    assert len(result.rejected) == 5 and result.rejected[REASON_COLUMN].notna().all()
    assert result.clean["id"].is_unique


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
    result = clean_production(prod, None, SCHEMA)
    assert len(result.features) == len(prod)
    assert result.quality["unseen_categories"]["income"]["count"] == 2
    assert result.quality["out_of_range"]["ratio"] == {"below": 0, "above": 1}


@pytest.mark.parametrize("method", ["time", "stratified"])
def test_split_partitions_ids(method: str) -> None:
    frame = clean_development(make_frame(1000), SCHEMA).clean
    cfg = parse(SplitConfig, {"method": method, "valid_fraction": 0.15, "test_fraction": 0.2})
    result = split(frame, SCHEMA, cfg, seed=1)
    ids = [set(p["id"]) for p in (result.train, result.valid, result.test)]
    assert sum(len(s) for s in ids) == len(frame)
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert result.summary["test"]["rows"] == pytest.approx(200, abs=2)


def test_time_split_test_is_strictly_later_than_train_even_with_ties() -> None:
    frame = clean_development(make_frame(1000), SCHEMA).clean
    # many rows share each timestamp, so a naive cut would straddle a tie
    frame = frame.assign(ts=frame["ts"].dt.floor("D"))
    cfg = parse(SplitConfig, {"method": "time", "valid_fraction": 0.15, "test_fraction": 0.15})
    result = split(frame, SCHEMA, cfg, seed=0)
    assert result.test["ts"].min() > result.train["ts"].max()
    assert result.valid["ts"].min() > result.train["ts"].max()


def test_stratified_split_is_seeded_and_keeps_positive_rate() -> None:
    frame = clean_development(make_frame(2000), SCHEMA).clean
    cfg = parse(
        SplitConfig, {"method": "stratified", "valid_fraction": 0.15, "test_fraction": 0.15}
    )
    a, b, c = (split(frame, SCHEMA, cfg, seed=s) for s in (7, 7, 8))
    assert a.test["id"].tolist() == b.test["id"].tolist()
    assert a.test["id"].tolist() != c.test["id"].tolist()
    rate = frame["y"].mean()
    assert abs(a.test["y"].mean() - rate) < 0.01


def test_split_refuses_a_single_class_part() -> None:
    frame = clean_development(make_frame(200), SCHEMA).clean
    frame = frame.assign(y=np.where(frame.index < 180, frame["y"], 1))
    cfg = parse(SplitConfig, {"method": "time", "valid_fraction": 0.05, "test_fraction": 0.05})
    with pytest.raises(DataError, match="both classes"):
        split(frame, SCHEMA, cfg, seed=0)


def test_many_level_categories_keep_the_frequent_levels_and_share_one_other() -> None:
    from tabml.core.schema import OTHER
    from tabml.learning.features import fit as fit_preprocessor

    feature = {"kind": "categorical", "max_levels": 3, "min_frequency": 2}
    schema = parse(
        SchemaConfig,
        schema_dict(features={"ticket": feature, "amount": {"kind": "numeric"}}, pii={}),
    )
    train = pd.DataFrame(
        {
            "ticket": pd.array(
                ["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d"] * 3 + ["e"] + [None], dtype="string"
            ),
            "amount": 1.0,
        }
    )
    # reordering the rows changes nothing: ties (c, d) go to the smaller value
    for frame in (train, train.iloc[::-1]):
        pre = fit_preprocessor(frame, schema, impute=False, clip_quantiles=None)
        assert pre.vocab["ticket"] == ["a", "b", "c"] and pre.other == ["ticket"]
    assert pre.levels("ticket") == ["a", "b", "c", OTHER]
    new = pd.DataFrame({"ticket": pd.array(["a", "d", "e", "zzz", None], dtype="string")})
    new["amount"] = 1.0
    codes = pre.transform(new, "codes")[:, 1]
    # rare (d, e) and never seen (zzz) share the "other" code; missing stays missing
    assert codes[:4].tolist() == [0.0, 3.0, 3.0, 3.0] and np.isnan(codes[4])
    onehot = pre.transform(new, "linear")[:, 1:]
    assert onehot.shape[1] == 4 and onehot[1:4, 3].tolist() == [1.0, 1.0, 1.0]
    assert onehot[4].sum() == 0
    # the file of a model without open vocabularies is unchanged ("other" only when used)
    closed = fit_preprocessor(
        train,
        parse(SchemaConfig, schema_dict(features={"ticket": {"kind": "categorical"}}, pii={})),
        impute=False,
        clip_quantiles=None,
    )
    assert closed.vocab["ticket"] == ["a", "b", "c", "d", "e"]
    assert "other" not in closed.to_dict()


@pytest.mark.parametrize("open_vocabulary", [False, True], ids=["closed", "open"])
def test_category_codes_are_the_exact_string_matches_pandas_finds(open_vocabulary: bool) -> None:
    """Codes come from Arrow's hash lookup (pandas' get_indexer is the oracle): exact text,
    whatever the column's dtype; missing is -1; unseen is -1, or OTHER's code when open."""
    from tabml.learning.features import Preprocessor

    vocab = ["a", "b", "", "1", "é", "1.5"]
    pre = Preprocessor(
        [], [], ["x"], {"x": vocab}, {}, {}, {}, {}, False, ["x"] if open_vocabulary else []
    )
    rng = np.random.default_rng(3)
    values = np.array(["a", "b", "", " a", "A", "1", "1.0", "é", None, np.nan, "zz"], object)
    picked = pd.Series(rng.choice(values, 2_000))
    for series in [
        picked, picked.astype("string"), picked.astype("category"),
        picked.astype(pd.StringDtype("pyarrow")), pd.Series(rng.integers(0, 3, 50)),
        pd.Series([1.0, np.nan, 1.5]), pd.Series([True, False, None]), pd.Series([], dtype=object),
    ]:  # fmt: skip
        text = series.astype("string")
        expected = pd.Index(vocab, dtype="string").get_indexer(pd.Index(text))
        if open_vocabulary:
            expected = np.where((expected < 0) & text.notna().to_numpy(), len(vocab), expected)
        got = pre.level_codes("x", series)
        assert got.dtype == expected.dtype and got.tolist() == expected.tolist(), series.dtype


def test_max_levels_is_for_categorical_features_only() -> None:
    with pytest.raises(ConfigError, match="max_levels/min_frequency only apply to categorical"):
        parse(
            SchemaConfig,
            schema_dict(features={"amount": {"kind": "numeric", "max_levels": 3}}),
        )


@pytest.mark.parametrize("method", ["time", "stratified"])
def test_the_split_stage_streams_the_rows_a_row_group_at_a_time(
    method: str, tmp_path: Path
) -> None:
    """The stage streams the clean file a row group at a time: its files hold the in-memory
    split's rows, in order, and each input row group's rows of a file are one row group of it
    (none where it has none), a layout that comes from the data, not from how it was read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tabml.stages import split as stage
    from tests.conftest import write_params

    frame = clean_development(make_frame(3_333, seed=9).drop(columns=["email"]), SCHEMA).clean
    # the rows out of time order, so the time split's files are not contiguous ranges
    frame = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    source = tmp_path / "clean.parquet"
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None),
        source,
        row_group_size=500,
    )
    schema = schema_dict(pii={})
    cfg = {"method": method, "valid_fraction": 0.15, "test_fraction": 0.2}
    params = write_params(tmp_path / "params.yaml", schema=schema, split=cfg)
    stage.run(params, source, tmp_path / "out", tmp_path / "split.json")

    expected = split(
        pd.read_parquet(source), parse(SchemaConfig, schema), parse(SplitConfig, cfg), 42
    )
    groups = [(start, min(start + 500, len(frame))) for start in range(0, len(frame), 500)]
    for name in ("train", "valid", "test"):
        written = tmp_path / "out" / f"{name}.parquet"
        want = getattr(expected, name).reset_index(drop=True)
        pd.testing.assert_frame_equal(pd.read_parquet(written), want, check_dtype=False)
        ids = set(want["id"])
        sizes = [int(frame["id"].iloc[a:b].isin(ids).sum()) for a, b in groups]
        meta = pq.ParquetFile(written).metadata
        got = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
        assert got == [n for n in sizes if n], name
    assert pq.ParquetFile(tmp_path / "out/train.parquet").metadata.num_row_groups > 1
