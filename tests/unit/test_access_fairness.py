"""Named tokens, the audit summary, and the fairness measures and their gate."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tabml.core.config import ReleaseConfig, parse
from tabml.core.errors import ConfigError
from tabml.governance.fairness import fairness_metrics
from tabml.governance.release import gates
from tabml.learning.package import model_card
from tabml.reporting.report import direction
from tabml.service.access import parse_tokens, summarise


def test_a_tokens_file_names_each_client_and_refuses_weak_or_shared_tokens() -> None:
    good = parse_tokens("alice: " + "a" * 32 + "\nbob: " + "b" * 32 + "\n", "tokens.yaml")
    assert good == {"alice": "a" * 32, "bob": "b" * 32}
    for text, why in [
        ("alice: short", "shorter than 16"),
        (f"alice: {'a' * 20}\nbob: {'a' * 20}", "share a token"),
        (f"'a b': {'a' * 20}", "not a client name"),
        ("- just a list", "one 'name: token' line"),
    ]:
        with pytest.raises(ConfigError, match=why):
            parse_tokens(text, "tokens.yaml")


def _line(caller: str | None, hour: int, status: int = 200, client: str = "10.0.0.1") -> str:
    record = {"time": f"2026-11-30T{hour:02d}:05:00.000+00:00", "caller": caller,
              "method": "POST", "endpoint": "/predict", "status": status, "records": 2,
              "client": client}  # fmt: skip
    return json.dumps(record)


def test_the_audit_summary_counts_callers_denials_and_unusual_hours() -> None:
    lines = [_line("alice", h) for h in range(8) for _ in range(10)]  # 10 an hour
    lines += [_line("alice", 9) for _ in range(150)]  # a burst
    lines += [_line("bob", 3, status=422)]
    lines += [_line("-", 4, status=401, client="203.0.113.9") for _ in range(3)]
    summary = summarise(lines)
    by = {c.caller: c for c in summary.callers}
    assert by["alice"].calls == 230 and by["alice"].records == 460
    assert by["bob"].errors == 1
    assert summary.denials == {"203.0.113.9": 3}
    assert summary.unusual == [("alice", "2026-11-30T09", 150, 10.0)]


def _groups(n: int = 4000, gap: float = 0.0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    group = np.where(rng.uniform(size=n) < 0.5, "a", "b")
    y = (rng.uniform(size=n) < 0.4).astype(float)
    p = np.clip(0.5 * y + rng.uniform(size=n) * 0.5 + np.where(group == "b", gap, 0.0), 0, 1)
    frame = pd.DataFrame({"group": group, "tiny": np.where(np.arange(n) < 5, "x", "y")})
    return frame, y, p


def test_fairness_measures_are_fairlearns_and_see_a_gap_between_groups() -> None:
    frame, y, p = _groups(gap=0.2)
    out = fairness_metrics(frame, y, p, ("group", "tiny"), 0.5, 50)["group"]
    yhat = p >= 0.5
    rates = {g: yhat[frame["group"] == g].mean() for g in ("a", "b")}
    assert out["demographic_parity_difference"] == pytest.approx(abs(rates["a"] - rates["b"]))
    assert out["demographic_parity_ratio"] == pytest.approx(
        min(rates.values()) / max(rates.values())
    )
    tpr = {g: yhat[(frame["group"] == g) & (y == 1)].mean() for g in ("a", "b")}
    assert out["equal_opportunity_difference"] == pytest.approx(abs(tpr["a"] - tpr["b"]))
    assert out["equalized_odds_difference"] >= out["equal_opportunity_difference"]
    assert out["demographic_parity_difference"] > 0.1
    fair = fairness_metrics(*_groups(gap=0.0), ("group",), 0.5, 50)["group"]
    assert fair["demographic_parity_difference"] < 0.05
    # a group of 5 rows is left out, and named; one group left means no measure
    tiny = fairness_metrics(frame, y, p, ("tiny",), 0.5, 50)["tiny"]
    assert tiny["left_out"] == ["x"] and "note" in tiny


def test_the_fairness_gates_fail_a_gap_over_the_limit_and_the_card_states_it() -> None:
    frame, y, p = _groups(gap=0.2)
    fair = fairness_metrics(frame, y, p, ("group",), 0.5, 50)
    test = {"roc_auc": 0.95, "rows": 4000, "average_precision": 0.9, "log_loss": 0.2,
            "brier": 0.1, "ece": 0.01, "f1": 0.8}  # fmt: skip
    metrics = {"test": test, "fairness": fair}
    cfg = parse(ReleaseConfig, {
        "min_test_roc_auc": 0.9, "max_roc_auc_drop": 0.01, "max_monitoring_alerts": 10,
        "min_test_rows": 100, "max_roc_auc_drop_vs_prod": None,
        "max_demographic_parity_difference": 0.1, "max_equalized_odds_difference": None,
    })  # fmt: skip
    # gated on the protected attributes only: the same gap on an unprotected segment passes
    ungated = {g.name: g for g in gates(cfg, metrics, {"alerts": 0}, None)}
    assert ungated["demographic parity difference"].passed
    assert "no protected attribute" in ungated["demographic parity difference"].note
    by = {g.name: g for g in gates(cfg, metrics, {"alerts": 0}, None, protected=("group",))}
    gate = by["demographic parity difference"]
    assert not gate.passed and gate.value == pytest.approx(
        fair["group"]["demographic_parity_difference"]
    )
    assert "equalised odds difference" not in by  # null: off
    schema = {"target": {"column": "y", "positive": 1}, "features": {}, "pii": {}}
    meta = {
        "name": "m", "metrics": metrics, "tabml_version": "0", "git_commit": "abc",
        "threshold": 0.5,
        "params": {"model": {"name": "lightgbm"}, "dataset": {"name": "d", "schema": schema}},
    }  # fmt: skip
    dev = {"rows_read": 1, "rows_kept": 1, "rows_rejected": 0, "rejected_by_reason": {}}
    card = model_card(meta, {}, {"development": dev})
    assert "## Fairness" in card and "| group | 2 |" in card
    assert direction("fairness.group.equalized_odds_difference") == -1
    assert direction("fairness.group.demographic_parity_ratio") == 1


@pytest.mark.parametrize("seed", range(6))
def test_the_group_counts_give_fairlearns_figures(seed: int) -> None:
    """fairness_metrics counts per group (fast on millions of rows); fairlearn is the oracle."""
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
        true_positive_rate,
    )

    rng = np.random.default_rng(seed)
    n = 3_000
    group = rng.choice(["a", "b", "c", "d", "rare"], n, p=[0.3, 0.3, 0.2, 0.19, 0.01])
    group = np.where(rng.uniform(size=n) < 0.02, None, group)  # missing values are a group
    y = (rng.uniform(size=n) < 0.3 + 0.1 * seed / 6).astype(float)
    p = np.clip(0.4 * y + rng.uniform(size=n) * 0.6 + 0.05 * (group == "b"), 0, 1)
    frame = pd.DataFrame({"group": group})
    out = fairness_metrics(frame, y, p, ("group",), 0.5, 50)["group"]
    g = frame["group"].astype("string").fillna("<missing>").to_numpy(dtype=object)
    keep = np.isin(g, [v for v, c in zip(*np.unique(g, return_counts=True), strict=True)
                       if c >= 50])  # fmt: skip
    yt, yp, gk = y[keep].astype(int), (p[keep] >= 0.5).astype(int), g[keep]
    assert out["left_out"] == ["rare"] and out["groups"] == 5  # a, b, c, d, <missing>
    assert out["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(yt, yp, sensitive_features=gk), abs=1e-15
    )
    assert out["demographic_parity_ratio"] == pytest.approx(
        demographic_parity_ratio(yt, yp, sensitive_features=gk), abs=1e-15
    )
    tpr = MetricFrame(metrics=true_positive_rate, y_true=yt, y_pred=yp, sensitive_features=gk)
    assert out["equal_opportunity_difference"] == pytest.approx(tpr.difference(), abs=1e-15)
    assert out["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(yt, yp, sensitive_features=gk), abs=1e-15
    )
