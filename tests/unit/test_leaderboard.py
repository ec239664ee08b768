"""`tabml exp compare`'s table: the params that differ, ROC AUC with its interval, response
time, size, trees and the Pareto mark (tabml.reporting.leaderboard)."""

from __future__ import annotations

import numpy as np

from tabml.reporting import leaderboard as lb


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
    assert header[4:] == ["p50 ms (1 record)", "p99 ms (1 record)", "speed rank",
                          "records/s (1,000)", "size KiB", "trees", "Pareto"]  # fmt: skip
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


def test_a_paired_ratio_of_response_times_with_its_interval() -> None:
    from tabml.reporting import latency

    rng = np.random.default_rng(1)
    # each round's machine speed moves both alike; the challenger takes twice as long
    speed = rng.uniform(0.5, 2.0, 40)
    champion = [[s * 1e-4 * (1 + 0.05 * rng.random()) for _ in range(20)] for s in speed]
    challenger = [[s * 2e-4 * (1 + 0.05 * rng.random()) for _ in range(20)] for s in speed]
    r = latency.ratio(champion, challenger)
    assert r.rounds == 40 and r.low < r.ratio < r.high
    assert r.low > 1.95 and r.high < 2.05  # paired: the machine's drift cancels out
    assert abs(r.challenger_p50_ms / r.champion_p50_ms - 2) < 0.5
    # ranks: the fast one first; a twin of it (same times, other noise) shares its rank
    twin = [[t * (1 + 0.02 * (rng.random() - 0.5)) for t in rnd] for rnd in champion]
    assert latency.speed_ranks([champion, challenger, twin]) == [1, 3, 1]


def test_the_report_and_the_gate_flag_a_slower_change() -> None:
    from tabml.core.config import ReleaseConfig, parse
    from tabml.governance import release
    from tabml.reporting import latency
    from tabml.reporting.report import latency_line

    timed = latency.Ratio(0.1, 0.2, 0.2, 0.5, 2.0, 1.9, 2.1, 30)
    assert "🔴" in latency_line(timed, 1.5) and "slower than the limit ×1.5" in latency_line(
        timed, 1.5
    )
    quick = latency.Ratio(0.1, 0.11, 0.2, 0.21, 1.1, 1.0, 1.2, 30)
    assert "🔴" not in latency_line(quick, 1.5) and "×1.10" in latency_line(quick, 1.5)
    import yaml

    from tests.conftest import ROOT

    raw = yaml.safe_load((ROOT / "conf/release/default.yaml").read_text())
    cfg = parse(
        ReleaseConfig, {**raw, "max_p99_ratio_vs_prod": 2.0, "max_roc_auc_drop_vs_prod": None}
    )
    good = {"test": {"roc_auc": 0.97, "rows": 5_000}}
    paired = None
    gate = {g.name: g for g in release.gates(cfg, good, {"alerts": 0}, None, None,
                                            ("tabml-model@v1.0.0", paired, timed))}  # fmt: skip
    p99 = gate["p99 response time against prod (ratio)"]
    assert p99.value == 2.5 and not p99.passed and p99.key == "release.max_p99_ratio_vs_prod"
    gate = {g.name: g for g in release.gates(cfg, good, {"alerts": 0}, None, None, None)}
    assert gate["p99 response time against prod (ratio)"].passed  # no release in prod
