"""The report's Mermaid charts: curves sampled on the fixed grid, blocks GitHub can draw."""

from __future__ import annotations

from tabml import mermaid


def test_curves_are_sampled_on_the_grid_and_each_run_gets_a_line() -> None:
    roc = [{"fpr": 0.0, "tpr": 0.0}, {"fpr": 0.5, "tpr": 0.9}, {"fpr": 1.0, "tpr": 1.0}]
    tpr = mermaid.roc_tpr(roc)
    assert len(tpr) == len(mermaid.GRID) == 21
    assert tpr[0] == 0.0 and tpr[10] == 0.9 and tpr[-1] == 1.0
    assert tpr[5] == 0.45  # linear between the points either side
    pr = [{"recall": 0.2, "precision": 0.9}, {"recall": 0.8, "precision": 0.6}]
    precision = mermaid.pr_precision(pr)
    assert precision[4] == 0.9 and precision[5] == 0.6 and precision[-1] == 0.0
    head = {"reports/plots/roc.json": {"roc": roc}}
    alone, both = mermaid.curves({}, head), mermaid.curves(head, head)
    assert alone[0].count("  line [") == 1 and both[0].count("  line [") == 2
    assert alone[0].startswith("```mermaid") and "xychart-beta" in alone[0]
    assert '"false-positive rate" 0 --> 1' in alone[0]


def test_monitoring_charts_count_drift_per_chunk_numbered_as_the_table() -> None:
    drift = {"a": {"js": {"alert": True}}, "b": {"js": {"alert": False}}}
    chunks = [
        {"index": i, "drift": drift if i else {},
         "estimated": {"roc_auc": {"value": 0.9, "lower_threshold": 0.85}}}
        for i in range(3)
    ]  # fmt: skip
    bars, roc = mermaid.monitoring({"chunks": chunks})
    assert '"chunk" ["1", "2", "3"]' in bars and "bar [0, 1, 1]" in bars
    assert "line [0.85, 0.85, 0.85]" in roc and "realized" not in roc
    assert mermaid.monitoring({"chunks": []}) == []
