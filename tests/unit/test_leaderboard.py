"""`tabml exp compare`'s table: the params that differ, ROC AUC with its interval, response
time, size, trees and the Pareto mark (tabml.leaderboard)."""

from __future__ import annotations

import numpy as np

from tabml import leaderboard as lb


def _entry(name: str, auc: float, p99: float, size: int, leaves: int) -> lb.Entry:
    e = lb.Entry(name, name, {"model.num_leaves": leaves, "seed": 42}, size_bytes=size, trees=100)
    e.auc = {"valid": (auc, auc - 0.01, auc + 0.01), "test": (auc, auc - 0.01, auc + 0.01)}
    e.p50_ms, e.p99_ms, e.records_per_s = p99 / 2, p99, 1000 / p99
    return e


def test_three_packages_of_known_size_and_speed() -> None:
    # small and fast, big and most accurate: both on the front; `worse` is slower and less
    # accurate than `small`, so it is not
    small, big = _entry("small", 0.960, 0.10, 20_480, 15), _entry("big", 0.970, 0.40, 204_800, 255)
    worse = _entry("worse", 0.955, 0.30, 102_400, 63)  # slower and less accurate than small
    entries = [small, big, worse]
    lb.mark_pareto(entries)
    assert [e.pareto for e in entries] == [True, True, False]
    header, body = lb.rows(entries, ("valid", "test"))
    assert header[:2] == ["experiment", "model.num_leaves"]  # seed is the same: not shown
    assert header[2:4] == ["valid ROC AUC [95% CI]", "test ROC AUC [95% CI]"]
    assert header[4:] == ["p50 ms (1 record)", "p99 ms (1 record)", "records/s (1,000)",
                          "size KiB", "trees", "Pareto"]  # fmt: skip
    assert body[0][1] == "15" and body[0][3] == "0.9600 [0.9500, 0.9700]"
    assert [r[-3] for r in body] == ["20", "200", "100"]  # KiB
    assert [r[-1] for r in body] == ["★", "★", ""]
    text = lb.markdown(entries, ("valid", "test"), "note")
    assert "tabml promote small" in text and text.count("\n|") == 5  # header, rule, three rows
    page = lb.html(entries, ("valid", "test"), "note")
    assert page.count("<circle") == 3 and "<script" not in page


def test_the_interval_is_delongs_and_covers_the_auc() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2_000).astype(bool)
    scores = y * 0.6 + rng.normal(0, 0.5, 2_000)
    auc, lo, hi = lb.auc_interval(y, scores)
    from sklearn.metrics import roc_auc_score

    assert abs(auc - roc_auc_score(y, scores)) < 1e-12 and lo < auc < hi
    assert 0.01 < hi - lo < 0.06  # about ±2 standard errors on 2,000 rows
