"""Repeated ids found through 64-bit keys: the same answer as pandas' own, collisions or not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabml.core import repeats
from tabml.core.config import SchemaConfig, parse
from tabml.data.clean import DevelopmentCleaner, find_repeats, sort_development, type_development
from tests.conftest import make_frame, schema_dict


@pytest.mark.parametrize(
    "ids",
    [
        pd.Series([5, 3, 5, 9, 3, 3, 1], dtype="int64"),
        pd.Series(["a", "b", None, "a", "c", None, "b"], dtype="string"),
        pd.Series([1, None, 2, 1, None], dtype="Int64"),
    ],
)
def test_candidates_hold_every_repeated_id(ids: pd.Series) -> None:
    at = repeats.repeat_candidates(ids)
    expected = np.flatnonzero((ids.duplicated(keep=False) & ids.notna()).to_numpy())
    assert set(expected) <= set(at)
    assert repeats.take([np.arange(3), np.arange(3, 7)], np.array([1, 4, 6])).tolist() == [1, 4, 6]


def test_integer_ids_are_their_own_keys_and_others_hash_in_steps() -> None:
    ints = pd.Series(np.arange(10, dtype=np.int64))
    assert np.shares_memory(repeats.id_keys(ints), ints.to_numpy())
    text = pd.Series([f"id{i}" for i in range(10)], dtype="string")
    assert (repeats.id_keys(text, step=3) == repeats.id_keys(text, step=100)).all()


def test_clean_tells_colliding_keys_apart_by_the_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every key equal (the worst collision): the ids still decide what is a duplicate, in
    batches as in one, whichever order the batches are sorted in."""
    frame = make_frame(60)
    frame = pd.concat([frame, frame.iloc[[2, 40]]], ignore_index=True)
    schema = parse(SchemaConfig, schema_dict())
    whole = DevelopmentCleaner(schema)
    one_read = whole.add(frame)
    plain = DevelopmentCleaner(schema, find_repeats(lambda: [frame["id"]]))
    expected = [plain.add(part) for part in (frame.iloc[:30], frame.iloc[30:])]
    assert plain.quality() == whole.quality()
    pd.testing.assert_frame_equal(
        pd.concat([kept for kept, _ in expected], ignore_index=True), one_read[0]
    )
    monkeypatch.setattr(repeats, "id_keys", lambda ids, step=0: np.zeros(len(ids), np.uint64))
    import tabml.data.clean

    monkeypatch.setattr(tabml.data.clean, "id_keys", repeats.id_keys)
    found = find_repeats(lambda: [frame.iloc[:30]["id"], frame.iloc[30:]["id"]])
    assert len(found.first) == 60  # every id is a candidate
    colliding = DevelopmentCleaner(schema, found)
    got = [colliding.add(part) for part in (frame.iloc[:30], frame.iloc[30:])]
    typed = type_development(frame, schema)
    later, earlier = (sort_development(part, schema, start, found)
                      for part, start in ((typed.iloc[30:], 30), (typed.iloc[:30], 0)))  # fmt: skip
    for (kept, rejected), (want_kept, want_rejected) in (
        (earlier, expected[0]),
        (later, expected[1]),
    ):
        pd.testing.assert_frame_equal(kept, want_kept)
        pd.testing.assert_frame_equal(rejected, want_rejected)
    for (kept, rejected), (want_kept, want_rejected) in zip(got, expected, strict=True):
        pd.testing.assert_frame_equal(kept, want_kept)
        pd.testing.assert_frame_equal(rejected, want_rejected)
    assert colliding.quality() == plain.quality()
    assert colliding.quality()["rejected_by_reason"] == {"duplicate_id": 2}


def test_repeated_keys_by_bucket_are_those_one_sort_finds() -> None:
    """Past a million keys they are sorted a bucket at a time: the same keys come out."""
    rng = np.random.default_rng(5)
    keys = rng.integers(0, 2**64 - 1, 1_200_000, dtype=np.uint64, endpoint=True)
    keys[[0, 1, 2]] = [0, 2**64 - 1, 7]
    keys[rng.integers(0, len(keys), 5_000)] = keys[rng.integers(0, len(keys), 5_000)]
    keys[-3:] = [0, 2**64 - 1, 7]  # the extremes repeat too
    ordered = np.sort(keys)
    expected = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    before = keys.copy()
    got = repeats.repeated_keys(keys)
    assert got.dtype == np.uint64 and got.tolist() == expected.tolist()
    assert {0, 2**64 - 1, 7} <= set(got.tolist()) and len(got) > 4_000
    assert np.array_equal(keys, before)  # the caller's keys are left as they were
