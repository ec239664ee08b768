"""Benchmark: what making a prediction durable costs, against scoring it.

Usage: uv run python benchmarks/predlog.py [--package models/package] [--repeats N] [--runs K]

Needs a built package (`make repro`). Since a prediction is acknowledged only once its log rows
are on disk (the prediction log's spool: one JSON-lines write per request), the request path
pays `PredictionLog.append`. Measured in the same process, on the same production rows, for
requests of 1 and 1,000 records: the p50 and p99 of `append` (the rows as the service builds
them: the record, request id, time, score, label, model version) against `Booster.predict` on
those rows already encoded. K runs of N requests each; medians over the runs.

Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT


def quantiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def one_run(package: Path, repeats: int) -> dict[int, tuple[float, float, float, float]]:
    import pandas as pd

    from tabml.learning import package as pkg
    from tabml.service import serving
    from tabml.service.predlog import PredictionLog, now_iso

    loaded = pkg.load(package)
    scorer = serving.Scorer(loaded)
    batch = pd.read_parquet(ROOT / "data/raw/production.parquet")
    cols = [loaded.schema.id, *loaded.schema.features]
    rows = json.loads(batch[cols].to_json(orient="records"))
    booster, best = loaded.model.booster, loaded.model.best_iteration
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        log = PredictionLog(Path(tmp), flush_rows=10_000, flush_seconds=5.0)
        gc.freeze()
        for size in (1, 1_000):
            requests = [
                [rows[(i * size + k) % len(rows)] for k in range(size)] for i in range(repeats)
            ]
            encoded = [scorer.encode(r) for r in requests]
            bare, durable = [], []
            for records, matrix in zip(requests, encoded, strict=True):
                start = time.perf_counter()
                scores = booster.predict(matrix, num_iteration=best)
                bare.append(time.perf_counter() - start)
                logged = [
                    {**rec, "request_id": "r", "logged_at": now_iso(), "score": float(s),
                     "label": int(s >= 0.5), "model_version": "v"}
                    for rec, s in zip(records, scores, strict=True)
                ]  # fmt: skip
                start = time.perf_counter()
                log.append(logged)
                durable.append(time.perf_counter() - start)
            b50, b99 = quantiles(bare)
            d50, d99 = quantiles(durable)
            out[size] = (b50, b99, d50, d99)
        log.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", type=Path, default=ROOT / "models/package")
    parser.add_argument("--repeats", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [one_run(args.package, args.repeats) for _ in range(args.runs)]
    print("| records per request | Booster.predict p50 / p99 (ms) | log append p50 / p99 (ms) "
          "| append / predict, p50 | p99 |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|")
    for size in (1, 1_000):
        b50, b99, d50, d99 = (statistics.median(r[size][i] for r in runs) for i in range(4))
        print(
            f"| {size:,} | {b50 * 1e3:.3f} / {b99 * 1e3:.3f} | {d50 * 1e3:.3f} / {d99 * 1e3:.3f} "
            f"| {d50 / b50:.2f} | {d99 / b99:.2f} |"
        )


if __name__ == "__main__":
    main()
