"""compute=dask's pure parts: exact statistics from parts, and which rows a rank holds.

The preprocessor a cluster fits must not depend on how the table was cut into parts, and its
medians must be exactly np.median's; the rows a rank holds must not depend on how the file was
cut into row groups, and every rank must see both classes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from tabml.compute.distributed import deal, evenly_spaced
from tabml.core.config import SchemaConfig, parse
from tabml.learning.features import fit, fit_from_stats
from tabml.learning.stats import OrderSelect, column_stats, keys, merge_stats, value
from tests.conftest import make_frame, schema_dict


def _fitted_from_parts(frame: pd.DataFrame, schema: SchemaConfig, cuts: list[int]) -> Any:
    parts = [frame.iloc[a:b] for a, b in zip([0, *cuts], [*cuts, len(frame)], strict=True)]
    select = None
    while True:
        prefixes = None if select is None else select.prefixes()
        stats = merge_stats(column_stats(p, schema, prefixes) for p in parts)
        select = OrderSelect.start(stats) if select is None else select.narrow(stats)
        if select.done:
            return fit_from_stats(stats, select, schema, impute=True)


def test_keys_order_floats_exactly_as_their_values() -> None:
    values = np.array([-np.inf, -3.5, -1e-300, -0.0, 0.0, 5e-324, 1.0, 2.5, 1e300, np.inf])
    k = keys(values)
    assert (np.diff(k.astype(object)) > 0).all()
    assert [value(int(x)) for x in k] == values.tolist()


@pytest.mark.parametrize("cuts", [[], [1], [37, 38, 200], [100, 200, 300]])
def test_a_preprocessor_from_parts_is_the_one_fit_gives_whatever_the_parts(cuts: list[int]) -> None:
    frame = make_frame(400, seed=3)
    # duplicates, negatives and a column with an even number of present values
    frame["amount"] = np.where(frame.index % 7 == 0, -12.25, frame["amount"])
    frame.loc[frame.index[:1], "ratio"] = np.nan
    schema = parse(SchemaConfig, schema_dict(), "dataset.schema")
    local = fit(frame, schema, impute=True, clip_quantiles=None)
    merged = _fitted_from_parts(frame, schema, cuts)
    assert merged.medians == local.medians  # exact, not approximately
    assert merged.vocab == local.vocab
    assert merged.impute and merged.features == local.features
    for c in local.mean:
        assert merged.mean[c] == pytest.approx(local.mean[c], rel=1e-12)
        assert merged.std[c] == pytest.approx(local.std[c], rel=1e-12)


def test_an_open_vocabulary_keeps_the_same_levels_from_exact_global_counts() -> None:
    frame = make_frame(400, seed=1)
    frame["income"] = np.where(frame.index % 50 == 0, "rare", frame["income"])
    spec = {"kind": "categorical", "max_levels": 2}
    schema = parse(SchemaConfig, schema_dict(features={"income": spec}), "dataset.schema")
    merged = _fitted_from_parts(frame, schema, [10, 390])
    assert merged.vocab == fit(frame, schema, False, None).vocab


def test_rows_are_dealt_by_position_within_their_class_whatever_the_batches() -> None:
    rng = np.random.default_rng(0)
    y = rng.uniform(size=1000) < 0.03  # 30-odd positives among 1,000 rows
    whole = deal(y, 4, [0, 0])
    seen = [0, 0]
    batched = np.concatenate([deal(y[a:b], 4, seen) for a, b in ((0, 10), (10, 500), (500, 1000))])
    assert (whole == batched).all()
    assert seen == [int((~y).sum()), int(y.sum())]
    for r in range(4):
        mine = y[whole == r]
        # each rank holds its fair share of both classes, within one row
        assert abs(mine.sum() - y.sum() / 4) <= 1
        assert abs(len(mine) - 250) <= 2
    # even when the positives all come last (data sorted by label, LightGBM #5025)
    assert set(deal(np.sort(y), 4, [0, 0])[-int(y.sum()) :]) == {0, 1, 2, 3}


def test_the_valid_sample_is_evenly_spaced_and_all_of_a_small_split() -> None:
    assert evenly_spaced(5, 10).tolist() == [0, 1, 2, 3, 4]
    sample = evenly_spaced(1000, 100)
    assert len(sample) == 100 and sample[0] == 0 and (np.diff(sample) == 10).all()
