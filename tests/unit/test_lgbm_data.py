"""LightGBM datasets a block of rows at a time (tabml.learning.lgbm_data): the same bins, the same
model, byte for byte, as one whole matrix, with only the sampled rows encoded for the sample."""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pytest

from tabml.learning.lgbm_data import Blocks, _types, dataset, in_blocks

ROWS = 3_000
# a sample of 500 of the 3,000 rows: LightGBM picks it with the seed `seed` derives, and
# keeps a bin only if it can hold `min_data_in_leaf` rows; the dataset's own parameters alone
# (what LightGBM's Sequence input reads) would pick another sample and other bins
PARAMS: dict[str, Any] = {
    "objective": "binary", "metric": ["binary_logloss", "auc"], "learning_rate": 0.2,
    "num_leaves": 15, "min_child_samples": 40, "bagging_fraction": 0.8, "bagging_freq": 1,
    "num_threads": 1, "seed": 11, "deterministic": True, "force_row_wise": True,
    "verbosity": -1, "bin_construct_sample_cnt": 500,
}  # fmt: skip
NAMES = ["a", "b", "c", "d", "e"]
CATS = ["b", "e"]


def _data(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.column_stack(
        [
            rng.normal(size=rows),
            rng.integers(0, 6, rows).astype(float),
            np.where(rng.random(rows) < 0.15, np.nan, rng.exponential(size=rows)),
            rng.random(rows).round(2),
            rng.integers(0, 30, rows).astype(float),
        ]
    )
    y = (x[:, 0] + np.nan_to_num(x[:, 2]) * 0.5 + rng.normal(size=rows) > 0.8).astype(float)
    return x, y


def _blocks(x: np.ndarray, y: np.ndarray, block_rows: int, calls: list[Any]) -> Blocks:
    def encode(start: int, stop: int, rows: np.ndarray | None) -> np.ndarray:
        calls.append((start, stop, None if rows is None else rows.copy()))
        return x[start:stop] if rows is None else x[start:stop][rows]

    return in_blocks(len(x), block_rows, encode, lambda: y)


def _fit(train: Any, valid: Any) -> tuple[str, dict[str, Any]]:
    curves: dict[str, Any] = {}
    booster = lgb.train(
        PARAMS, train, num_boost_round=25, valid_sets=[valid], valid_names=["valid"],
        callbacks=[lgb.record_evaluation(curves)],
    )  # fmt: skip
    return booster.model_to_string(), curves


def _by_matrix(x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray) -> Any:
    train = lgb.Dataset(x, y, feature_name=NAMES, categorical_feature=CATS, params=PARAMS)
    return _fit(train, lgb.Dataset(xv, yv, reference=train))


@pytest.mark.parametrize(
    "cuts", [[ROWS], [700], [1_000, 333]], ids=["one-block", "blocks", "two-parts"]
)
def test_blocks_give_the_model_one_matrix_gives(cuts: list[int]) -> None:
    x, y = _data(ROWS, 0)
    xv, yv = _data(800, 1)
    calls: list[Any] = []
    if len(cuts) == 1:
        parts = [_blocks(x, y, cuts[0], calls)]
    else:  # train then valid, as the refit stacks them
        parts = [_blocks(x[: cuts[0]], y[: cuts[0]], cuts[1], calls)]
        parts.append(_blocks(x[cuts[0] :], y[cuts[0] :], cuts[1], calls))
    train = dataset(parts, PARAMS, NAMES, CATS)
    valid = dataset([_blocks(xv, yv, 300, calls)], reference=train)
    assert _fit(train, valid) == _by_matrix(x, y, xv, yv)


def test_the_sample_encodes_only_the_sampled_rows_then_each_block_once() -> None:
    x, y = _data(ROWS, 0)
    calls: list[Any] = []
    dataset([_blocks(x, y, 700, calls)], PARAMS, NAMES, CATS).construct()
    sampled = [c for c in calls if c[2] is not None]
    whole = [(start, stop) for start, stop, rows in calls if rows is None]
    assert whole == [(s, min(s + 700, ROWS)) for s in range(0, ROWS, 700)]
    assert sum(len(rows) for *_, rows in sampled) == PARAMS["bin_construct_sample_cnt"]
    assert all(len(rows) < stop - start for start, stop, rows in sampled)


def test_without_the_sample_plan_the_model_is_the_same_and_one_block_is_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A LightGBM that chose its sample rows elsewhere would ask for rows unannounced: each
    block is then encoded whole for the sample, one block held at a time."""
    block_dataset, _ = _types()
    monkeypatch.setattr(block_dataset, "_create_sample_indices", lgb.Dataset._create_sample_indices)
    x, y = _data(ROWS, 0)
    xv, yv = _data(800, 1)
    held: list[int] = []
    calls: list[Any] = []
    blocks = _blocks(x, y, 700, calls)

    def encode(i: int, rows: np.ndarray | None) -> np.ndarray:
        held.append(sum(b.sample is not None for b in train.blocks))
        return blocks.encode(i, rows)

    train = dataset([Blocks(blocks.sizes, encode, lambda: y)], PARAMS, NAMES, CATS)
    valid = dataset([_blocks(xv, yv, 300, [])], reference=train)
    assert _fit(train, valid) == _by_matrix(x, y, xv, yv)
    assert all(c[2] is None for c in calls)
    assert max(held) <= 1


def test_a_constructed_dataset_lets_go_of_its_labels_and_reads_them_back() -> None:
    from tabml.learning.lgbm_data import constructed

    x, y = _data(ROWS, 0)
    data = constructed(dataset([_blocks(x, y, 700, [])], PARAMS, NAMES, CATS))
    assert data.label is None
    assert data.get_label().tolist() == y.astype("float32").tolist()
