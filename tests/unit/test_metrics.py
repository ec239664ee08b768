"""tabml's NumPy metrics agree with scikit-learn's; threshold rules do what they say."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from tabml.core.config import EvaluateConfig, parse
from tabml.learning import metrics as ev


@pytest.fixture(params=[0, 1, 2])
def scored(request: pytest.FixtureRequest) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(request.param)
    y = rng.integers(0, 2, 3000).astype(float)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 3000), 0, 1)
    if request.param == 2:
        p = np.round(p, 1)  # many ties
    return y, p


def test_metrics_match_sklearn(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = scored
    assert ev.roc_auc(y, p) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert ev.average_precision(y, p) == pytest.approx(skm.average_precision_score(y, p), abs=1e-12)
    assert ev.log_loss(y, p) == pytest.approx(skm.log_loss(y, np.clip(p, 1e-15, 1 - 1e-15)))
    assert ev.brier(y, p) == pytest.approx(skm.brier_score_loss(y, p))
    t = 0.5
    got = ev.threshold_metrics(y, p, t)
    pred = (p >= t).astype(int)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred))


def test_max_f1_threshold_is_the_best_f1(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = scored
    t = ev.choose_threshold(y, p, parse(EvaluateConfig, _cfg("max_f1")).threshold)
    best = ev.threshold_metrics(y, p, t)["f1"]
    for other in np.unique(p)[::7]:
        assert ev.threshold_metrics(y, p, float(other))["f1"] <= best + 1e-12


def test_min_precision_threshold_meets_precision(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = scored
    t = ev.choose_threshold(y, p, parse(EvaluateConfig, _cfg("min_precision", 0.8)).threshold)
    assert ev.threshold_metrics(y, p, t)["precision"] >= 0.8


def test_calibration_error_of_a_calibrated_model_is_small() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(size=200_000)
    y = (rng.uniform(size=p.size) < p).astype(float)
    assert ev.expected_calibration_error(y, p, 10) < 0.01
    assert ev.expected_calibration_error(y, np.clip(p + 0.2, 0, 1), 10) > 0.1


def test_plot_data_is_small_and_spans_the_curve(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = scored
    roc = ev.roc_points(y, p)
    assert len(roc) <= ev.PLOT_POINTS
    assert roc[0]["fpr"] == 0 and roc[-1]["fpr"] == 1 and roc[-1]["tpr"] == 1
    rows = ev.confusion_rows(y, p, 0.5)
    assert len(rows) == 4 and sum(r["count"] for r in rows) == len(y)
    tp = sum(r["count"] for r in rows if r["actual"] == r["predicted"] == "1")
    assert tp == int(((p >= 0.5) & (y == 1)).sum())


def _cfg(rule: str, value: float = 0.5) -> dict:
    return {
        "threshold": {"rule": rule, "value": value},
        "calibration_bins": 10,
        "min_slice_rows": 10,
    }


def test_threshold_scores_are_matched_to_valid_by_id_and_refused_when_stale() -> None:
    import pandas as pd

    from tabml.core.errors import DataError
    from tabml.learning.evaluate import held_out_valid

    valid = pd.DataFrame({"id": [3, 1, 2], "y": [1, 0, 1]})
    scores = pd.DataFrame({"id": [1, 2, 3], "score": [0.1, 0.2, 0.3]})
    # in valid's row order, whatever order train wrote them in
    assert held_out_valid(valid, scores, "id", "s.parquet").tolist() == [0.3, 0.1, 0.2]
    stale = pd.DataFrame({"id": [1, 2, 4], "score": [0.1, 0.2, 0.4]})
    with pytest.raises(DataError, match=r"s\.parquet: 3 held-out scores .* 3 rows .* 'dvc repro'"):
        held_out_valid(valid, stale, "id", "s.parquet")
    with pytest.raises(DataError, match="2 held-out scores"):
        held_out_valid(valid, scores.head(2), "id", "s.parquet")


def test_the_confusion_chart_reads_counted_cells_and_a_base_with_a_row_per_sample() -> None:
    from tabml.reporting.plots import confusion_grid

    y = np.array([0, 0, 1, 1, 1])
    p = np.array([0.1, 0.9, 0.8, 0.7, 0.2])
    counted = confusion_grid(ev.confusion_rows(y, p, 0.5), ["0", "1"])
    per_sample = [
        {"actual": str(a), "predicted": str(int(s >= 0.5))} for a, s in zip(y, p, strict=True)
    ]
    assert counted.tolist() == confusion_grid(per_sample, ["0", "1"]).tolist() == [[1, 1], [1, 2]]
