"""Short chunks: merged, or shown without alerts; and thresholds no chunk can cross are an
error (tabml.core.chunking, nannyml_adapter._blind, monitor.blind_error)."""

from __future__ import annotations

import pandas as pd
import pytest

from tabml.adapters.nannyml_adapter import Spec
from tabml.core import chunking
from tabml.core.config import ChunkingConfig, DriftConfig, parse
from tabml.core.errors import ConfigError
from tabml.monitoring import monitor as mon
from tests.unit.test_monitor import CFG, synthetic, synthetic_spec


def test_a_short_chunk_joins_the_one_before_it_and_a_short_first_the_next() -> None:
    assert chunking.merge_plan([5, 5, 5, 2], 5) == [range(0, 1), range(1, 2), range(2, 4)]
    assert chunking.merge_plan([2, 5, 1, 5], 5) == [range(0, 3), range(3, 4)]
    assert chunking.merge_plan([1, 1, 1], 5) == [range(0, 3)]  # all short: one chunk
    assert chunking.merge_plan([], 5) == []


def test_the_advised_size_leaves_no_short_chunk() -> None:
    # the numbers: 4,366 development rows, six reference chunks
    rows = chunking.advised_rows(4_366, 6)
    assert rows == 727
    merged = ChunkingConfig(method="rows", rows=rows)
    assert chunking.chunk_count(merged, 4_366) == (6, 727)  # the 4 left over join the last
    kept = ChunkingConfig(method="rows", rows=rows, short_chunks="keep")
    assert chunking.chunk_count(kept, 4_366) == (7, 4)  # NannyML's way: a 4-row seventh chunk


def test_short_periods_merge_into_the_one_before() -> None:
    # three busy months and a quiet fourth (46 rows): the quiet one joins the third
    stamps = pd.Series(
        pd.to_datetime(
            ["2024-01-15"] * 300 + ["2024-02-15"] * 280 + ["2024-03-15"] * 320 + ["2024-04-02"] * 46
        )
    )
    monthly = ChunkingConfig(method="period", period="M")
    assert chunking.floor(monthly, len(stamps), stamps) == 150  # half the median month
    assert chunking.chunk_count(monthly, len(stamps), stamps) == (3, 280)
    with pytest.raises(ConfigError, match="min_rows applies to period chunking only"):
        parse(ChunkingConfig, {"method": "rows", "rows": 10, "min_rows": 5})


JS = DriftConfig(continuous_methods=("jensen_shannon",), categorical_methods=("jensen_shannon",))


def _spec(chunks: ChunkingConfig) -> Spec:
    return synthetic_spec(chunks, JS)


def test_a_tiny_reference_chunk_makes_monitoring_blind_and_that_is_an_error() -> None:
    from tabml.adapters.nannyml_adapter import run

    # six chunks of 500 and a 4-row seventh: its distance from the reference, large by chance,
    # widens the drift thresholds past anything a batch can show
    reference = synthetic(3_004, None, seed=1)
    batch = synthetic(3_000, shift_from=1_500, seed=2)
    kept = ChunkingConfig(method="rows", rows=500, short_chunks="keep")
    out = run(reference, batch, batch, _spec(kept), labelled=True, charts=False)
    assert out.reference_chunk_rows == [500] * 6 + [4]
    blind = {b["column"] for b in out.blind}
    assert blind & {"x1", "x2", "score"}, out.blind  # the continuous columns (chance decides which)
    assert out.chunks == []  # nothing else was run on thresholds that cannot alert
    err = mon.blind_error(out.blind, kept, out.reference_chunk_rows)
    text = str(err)
    first = out.blind[0]["column"]
    assert "monitoring is blind" in text and f"{first} (jensen_shannon): alerts above" in text
    assert "short_chunks: merge" in text and "raise `rows`" in text
    assert err.exit_code != 0

    # the same data with the tail merged: thresholds that see, and the shift is found
    merged = ChunkingConfig(method="rows", rows=500)
    out = run(reference, batch, batch, _spec(merged), labelled=True, charts=False)
    assert out.blind == [] and out.reference_chunk_rows == [500] * 5 + [504]
    assert all(c["alert"] for c in out.drift["x1"]["jensen_shannon"][3:])


def test_a_short_batch_tail_is_merged_and_a_batch_shorter_than_a_chunk_does_not_alert() -> None:
    from tabml.adapters.nannyml_adapter import run

    reference = synthetic(3_000, None, seed=1)
    rows = ChunkingConfig(method="rows", rows=500)
    # 2,300 rows from the same distribution: four chunks, the last holding the 300-row tail
    batch = synthetic(2_300, None, seed=3)
    out = run(reference, batch, batch, _spec(rows), labelled=True, charts=False)
    assert [c["rows"] for c in out.chunks] == [500, 500, 500, 800]
    summary = mon.summarize(out, CFG, rows, {"name": "t", "kind": "k", "threshold": 0.5},
                            3_000, out.reference_chunk_rows, 2_300, 2_300, 500)  # fmt: skip
    assert summary.chunks[-1].note and "300 rows left over" in summary.chunks[-1].note
    assert summary.totals.alerts.drift <= 1

    # 300 rows in all, shifted: one short chunk, shown with its values but no alert
    short = synthetic(300, shift_from=0, seed=4)
    out = run(reference, short, short, _spec(rows), labelled=True, charts=False)
    assert [c["rows"] for c in out.chunks] == [300]
    assert any(c["alert"] for c in out.drift["x1"]["jensen_shannon"])  # NannyML would alert
    summary = mon.summarize(out, CFG, rows, {"name": "t", "kind": "k", "threshold": 0.5},
                            3_000, out.reference_chunk_rows, 300, 300, 500)  # fmt: skip
    assert summary.totals.alerts.total == 0
    assert summary.chunks[0].note and "fewer than the 500 of a chunk" in summary.chunks[0].note
    assert summary.chunks[0].drift["x1"]["jensen_shannon"].value is not None
