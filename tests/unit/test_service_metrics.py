"""The service's metrics and secrets: what Prometheus reads must be what happened."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tabml.core import secrets
from tabml.core.errors import ConfigError
from tabml.service.metrics import SCORE_BUCKETS, ServiceMetrics, reason
from tabml.service.predlog import LogUnavailable, PredictionLog


def samples(metrics: ServiceMetrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    out = {}
    for family in metrics.registry.collect():
        for s in family.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


def test_scores_added_at_once_are_what_observing_each_gives() -> None:
    """The NumPy bucket count equals prometheus-client's own, edges and extremes included."""
    from prometheus_client import CollectorRegistry, Histogram

    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.random(997), [0.0, 0.1, 1.0, 0.30000000000000004, 0.7]])
    metrics = ServiceMetrics("m", "lightgbm", "m-1")
    metrics.scored("/predict", scores[:500])
    metrics.scored("/predict/columnar", scores[500:])
    metrics.scored("/predict", np.array([]))
    reference = Histogram(
        "ref", "one at a time", buckets=SCORE_BUCKETS, registry=CollectorRegistry()
    )
    for v in scores:
        reference.observe(float(v))
    want = {s.labels["le"]: s.value for s in reference.collect()[0].samples if "le" in s.labels}
    got = {dict(k)["le"]: v for k, v in samples(metrics, "tabml_score_bucket").items()}
    assert got == want
    assert sum(samples(metrics, "tabml_score_sum").values()) == pytest.approx(scores.sum())
    per_endpoint = {
        dict(k)["endpoint"]: v for k, v in samples(metrics, "tabml_records_scored_total").items()
    }
    assert per_endpoint == {"/predict": 500, "/predict/columnar": 502}


def test_unknown_paths_share_one_series_and_every_error_has_a_reason() -> None:
    metrics = ServiceMetrics("m", "logreg", "m-1")
    for path in ("/a", "/b/c", "/wp-admin.php"):
        metrics.request(path, 404, 0.001)
    metrics.request("/predict", 503, 0.001)
    metrics.request("/predict", 418, 0.001)
    errors = {tuple(dict(k)[n] for n in ("endpoint", "status", "reason")): v
              for k, v in samples(metrics, "tabml_http_errors_total").items()}  # fmt: skip
    assert errors == {
        ("other", "404", "not_found"): 3,
        ("/predict", "503", "not_ready"): 1,
        ("/predict", "418", "client_error"): 1,
    }
    assert reason(502) == "server_error"


def test_the_prediction_log_reports_written_and_dropped_rows(tmp_path: Path) -> None:
    counted: list[tuple[str, int]] = []
    log = PredictionLog(
        tmp_path, flush_rows=10**6, flush_seconds=60, max_queued_rows=5,
        on_count=lambda outcome, n: counted.append((outcome, n)),
    )  # fmt: skip
    row = {"id": 1, "logged_at": "2026-11-30T00:00:00+00:00", "x": 1.0}
    log.append([row] * 3 + [{**row, "id": 2**64}])  # no Parquet integer holds the last id
    with pytest.raises(LogUnavailable, match="not keeping up"):
        log.append([row] * 4)  # over the spool's limit: refused, not acknowledged and dropped
    log.close()
    assert sorted(counted) == [("dropped", 1), ("written", 3)]
    names = [p.name for p in tmp_path.rglob("*.parquet")]
    import os
    import socket

    assert names and all(
        f"-{os.getpid()}-" in name and socket.gethostname().split(".")[0][:20] in name
        for name in names
    )


def test_a_secret_comes_from_the_variable_or_the_file_it_names(tmp_path: Path) -> None:
    f = tmp_path / "token"
    f.write_text("from-a-file\n")
    assert secrets.from_env({"T": "plain"}, "T") == "plain"
    assert secrets.from_env({"T_FILE": str(f)}, "T") == "from-a-file"
    assert secrets.from_env({}, "T") == ""
    with pytest.raises(ConfigError, match="both T and T_FILE"):
        secrets.from_env({"T": "a", "T_FILE": str(f)}, "T")
    with pytest.raises(ConfigError, match="cannot read"):
        secrets.from_env({"T_FILE": str(tmp_path / "missing")}, "T")
    (tmp_path / "empty").write_text("")
    with pytest.raises(ConfigError, match="empty"):
        secrets.from_env({"T_FILE": str(tmp_path / "empty")}, "T")
