"""The train stage fits LightGBM from the split files (a column, then a row group, at a time,
one matrix let go before training): the same bytes as `tabml.learning.model.fit` on the frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tabml.core.config import LightGBMConfig, SchemaConfig, parse
from tabml.learning.model import fit
from tabml.stages.train import _fit_lightgbm
from tests.conftest import make_frame, schema_dict, write_splits

BASE: dict[str, Any] = {
    "name": "lightgbm", "learning_rate": 0.1, "num_boost_round": 60, "early_stopping_rounds": 10,
    "refit": True, "num_leaves": 15, "min_child_samples": 10, "feature_fraction": 0.9,
    "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0, "num_threads": 1,
    "impute": "none", "clip_quantiles": None,
}  # fmt: skip


@pytest.mark.parametrize(
    "changes",
    [{}, {"refit": False}, {"impute": "median", "clip_quantiles": [0.01, 0.99]}],
    ids=["refit", "no-refit", "median-and-clip"],
)
def test_fitting_from_the_files_is_fitting_the_frames_byte_for_byte(
    tmp_path: Path, changes: dict[str, Any]
) -> None:
    frame = make_frame(3_000, seed=4).drop(columns=["email"])
    frame.loc[frame.index[::7], "ratio"] = np.nan  # missing values for the medians
    folder = write_splits(tmp_path, frame, 2_000, 600, 250)  # several row groups each
    schema = parse(SchemaConfig, schema_dict(pii={}), "dataset.schema")
    cfg = parse(LightGBMConfig, {**BASE, **changes}, "model")
    train = pd.read_parquet(folder / "train.parquet")
    valid = pd.read_parquet(folder / "valid.parquet")
    expected, expected_history = fit(train, valid, schema, cfg, seed=3)
    got, history = _fit_lightgbm(folder, schema, cfg, seed=3)
    assert got.booster.model_to_string() == expected.booster.model_to_string()
    assert got.preprocessor.to_dict() == expected.preprocessor.to_dict()
    assert history.curves == expected_history.curves
    assert history.refit_rows == expected_history.refit_rows
    held_out = expected_history.valid_scores
    if held_out is None:  # without a refit, the final model's own scores are held out
        held_out = expected.predict(valid)
    assert history.valid_scores is not None
    assert history.valid_scores.tobytes() == np.asarray(held_out).tobytes()
