"""The service's own metrics, in Prometheus's text format (`GET /metrics`), via prometheus-client.

What is measured, every series labelled with the package's `model_version`:
- `tabml_request_duration_seconds{endpoint}`: a latency histogram per endpoint;
- `tabml_http_errors_total{endpoint,status,reason}`: each 4xx and 5xx answer, with its reason;
- `tabml_records_scored_total{endpoint}` and `tabml_score`: records scored and the score
  distribution (a histogram of the probability of the positive class, in tenths);
- `tabml_prediction_log_rows_total{outcome}`: prediction-log rows written and dropped;
- `tabml_model_info{name,kind}`: 1, to join the model's name and kind onto the others.

With `tabml serve --workers N` every worker writes its values to files in a folder shared by
the workers (prometheus-client's multiprocess mode: `PROMETHEUS_MULTIPROC_DIR`, set by
`tabml serve`), and `/metrics` answers from any worker with the sum over all of them.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from time import perf_counter
from typing import Any

# prometheus-client's multiprocess mode: the folder the workers' value files go in
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# every other path is counted as "other": a scanner probing random URLs must not create a
# series per URL
ENDPOINTS = frozenset(
    {
        "/predict",
        "/predict/columnar",
        "/health",
        "/ready",
        "/metadata",
        "/metrics",
        "/openapi.json",
        "/docs",
    }
)
REASONS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "body_too_large",
    422: "invalid_records",
    499: "client_closed",
    500: "internal_error",
    503: "not_ready",
}
# up to this many scores are counted one by one, more with NumPy
SMALL = 16
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
SCORE_BUCKETS = tuple(round(0.1 * i, 1) for i in range(1, 11))


def reason(status: int) -> str:
    """A short word for an HTTP error status: the label of its error counter."""
    return REASONS.get(status, "client_error" if status < 500 else "server_error")


class ServiceMetrics:
    """The metric families of one served package, in a registry of their own."""

    def __init__(self, name: str, kind: str, model_version: str) -> None:
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Gauge,
            Histogram,
            disable_created_metrics,
        )

        # the `_created` timestamp series double the output and no dashboard reads them
        disable_created_metrics()

        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        # a registry of its own, not the process-wide default: two apps in one process (tests)
        # must not clash, and in multiprocess mode exposition reads the files instead
        self.registry = CollectorRegistry(auto_describe=True)
        version = {"model_version": model_version}
        reg = self.registry
        self._latency = Histogram(
            "tabml_request_duration_seconds",
            "Time from a request's arrival to its last response byte, per endpoint.",
            ["endpoint", "model_version"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self._errors = Counter(
            "tabml_http_errors",
            "Answers with a 4xx or 5xx status, by endpoint, status and reason.",
            ["endpoint", "status", "reason", "model_version"],
            registry=reg,
        )
        self._records = Counter(
            "tabml_records_scored",
            "Records scored, per endpoint.",
            ["endpoint", "model_version"],
            registry=reg,
        )
        self._score = Histogram(
            "tabml_score",
            "Scores returned: the probability of the positive class.",
            ["model_version"],
            buckets=SCORE_BUCKETS,
            registry=reg,
        ).labels(**version)
        log_rows = Counter(
            "tabml_prediction_log_rows",
            "Prediction-log rows written to disk, and dropped (disk slow, full or failing).",
            ["outcome", "model_version"],
            registry=reg,
        )
        self._log_written = log_rows.labels(outcome="written", **version)
        self._log_dropped = log_rows.labels(outcome="dropped", **version)
        info = Gauge(
            "tabml_model_info",
            "The package served: always 1, labelled with its name, kind and version.",
            ["name", "kind", "model_version"],
            registry=reg,
            multiprocess_mode="max",
        )
        info.labels(name=name, kind=kind, **version).set(1)
        self._version = model_version
        # children per endpoint, made once: a label lookup per request is most of the cost
        self._latency_of = {e: self._latency.labels(e, model_version) for e in ENDPOINTS}
        self._latency_of["other"] = self._latency.labels("other", model_version)
        self._records_of = {
            e: self._records.labels(e, model_version) for e in ("/predict", "/predict/columnar")
        }
        # the histogram's own values, and its bounds as a list and an array: a request updates
        # them directly, without the per-call checks of observe() (what it would do, counted)
        self._buckets = self._score._buckets
        self._sum = self._score._sum
        self._upper = list(self._score._upper_bounds)
        import numpy as np

        self._bounds = np.asarray(self._upper, dtype="float64")

    def request(self, path: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        endpoint = path if path in ENDPOINTS else "other"
        self._latency_of[endpoint].observe(seconds)
        if status >= 400:
            self._errors.labels(endpoint, str(status), reason(status), self._version).inc()

    def scored(self, endpoint: str, scores: Any) -> None:
        """Count the records of one answer and add its scores to the histogram, all at once.

        prometheus-client observes one value at a time (a lock and a loop each); a 1,000-record
        answer instead adds its bucket counts, found with NumPy, in one step per bucket, and a
        few records go straight to their buckets' values. Either way the result is what
        observing each score gives (tests/unit/test_service_metrics.py).
        """
        n = len(scores)
        if n == 0:
            return
        self._records_of[endpoint].inc(n)
        if n <= SMALL:  # a few records: plain Python beats NumPy's call overheads
            buckets, bounds = self._buckets, self._upper
            total = 0.0
            for v in scores.tolist():
                buckets[bisect_left(bounds, v)].inc(1)
                total += v
            self._sum.inc(total)
            return
        import numpy as np

        values = np.asarray(scores, dtype="float64")
        # prometheus-client keeps per-bucket (not cumulative) counts: the first bucket whose
        # upper bound is >= the value gets it
        counts = np.bincount(
            np.searchsorted(self._bounds, values, side="left"), minlength=len(self._bounds)
        )
        for bucket, count in zip(self._buckets, counts.tolist(), strict=False):
            if count:
                bucket.inc(count)
        self._sum.inc(float(values.sum()))

    def log_rows(self, outcome: str, rows: int) -> None:
        """Prediction-log rows `written` or `dropped` (the log's callback)."""
        (self._log_written if outcome == "written" else self._log_dropped).inc(rows)

    def exposition(self) -> bytes:
        """The text `/metrics` answers: this process's values, or every worker's summed."""
        from prometheus_client import CollectorRegistry, generate_latest

        if not self.multiprocess:
            return bytes(generate_latest(self.registry))
        from prometheus_client.multiprocess import MultiProcessCollector

        summed = CollectorRegistry()
        MultiProcessCollector(summed)
        return bytes(generate_latest(summed))


# the status recorded for a request whose client went away before any answer (nginx's)
CLIENT_CLOSED = 499


class Watched:
    """An ASGI `send` that remembers the status the app answered with: 500 until it does
    (what the client gets when the app raises first), or 499 when the client went away before
    any answer (the Gate marks it in the scope's state). The measuring and auditing
    middlewares use it."""

    def __init__(self, send: Any, scope: Any = None) -> None:
        self._status: int | None = None
        self._send = send
        self._scope = scope

    @property
    def status(self) -> int:
        if self._status is not None:
            return self._status
        state = (self._scope or {}).get("state", {})
        return CLIENT_CLOSED if state.get("client_closed") else 500

    async def send(self, message: Any) -> None:
        if message["type"] == "http.response.start":
            self._status = message["status"]
        await self._send(message)


class Measure:
    """ASGI middleware, outermost: times every HTTP request and counts its errors."""

    def __init__(self, app: Any, metrics: ServiceMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = perf_counter()
        watched = Watched(send, scope)
        try:
            await self.app(scope, receive, watched.send)
        finally:
            self.metrics.request(scope.get("path", ""), watched.status, perf_counter() - start)
