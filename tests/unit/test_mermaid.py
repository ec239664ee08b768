"""The report's Mermaid charts: curves sampled on the fixed grid, blocks GitHub can draw."""

from __future__ import annotations

from tabml.reporting import mermaid


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


def _cell(value: float, alert: bool = False, lower: float | None = None) -> dict[str, object]:
    return {"value": value, "lower_threshold": lower, "upper_threshold": None, "alert": alert}


def test_monitoring_charts_count_drift_per_chunk_numbered_as_the_table() -> None:
    from tabml.adapters.nannyml_adapter import Results
    from tabml.core.config import ChunkingConfig, parse
    from tabml.monitoring.monitor import summarize
    from tests.unit.test_monitor import CFG

    results = Results(
        chunks=[{"index": i, "key": f"[{i}]", "rows": 10} for i in range(3)],
        drift={"a": {"js": [_cell(0.1), _cell(0.9, True), _cell(0.9, True)]},
               "b": {"js": [_cell(0.1)] * 3}},
        estimated={"roc_auc": [_cell(0.9, lower=0.85)] * 3},
    )  # fmt: skip
    chunking = parse(ChunkingConfig, {"method": "count", "count": 3})
    summary = summarize(
        results, CFG, chunking, {"name": "t", "kind": "k", "threshold": 0.5}, 30, [10] * 3, 30, 0
    )
    bars, roc = mermaid.monitoring(summary)
    assert '"chunk" ["1", "2", "3"]' in bars and "bar [0, 1, 1]" in bars
    assert "line [0.85, 0.85, 0.85]" in roc and "realized" not in roc
    empty = summarize(
        Results(chunks=[]),
        CFG,
        chunking,
        {"name": "t", "kind": "k", "threshold": 0.5},
        30,
        [10] * 3,
        0,
        0,
    )
    assert mermaid.monitoring(empty) == []
