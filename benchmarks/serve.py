"""Benchmark: the prediction service against LightGBM's `Booster.predict`.

Usage: uv run python benchmarks/serve.py [--package models/package] [--repeats N]

Needs a built package (`make repro`). Measures, on the default production batch:

- the app's scoring path in process, no HTTP (validate the JSON body with the request model,
  encode, predict, count the records and scores in the service's metrics, build the response
  rows), for 1 record and for 1,000 records, against
  `Booster.predict` on the same rows already encoded: p50 and p99 and their ratios (targets
  <= 1.5 for one record, <= 1.3 for 1,000). Each is timed in its own loop over 2,000 different
  requests, after the same `gc.freeze()` the app does at start-up;
- `tabml serve` over HTTP on 127.0.0.1 (one uvicorn worker, no prediction log): latency p50 and
  p99 of one-record requests, and throughput in records per second with 1, 8 and 32
  concurrent clients, each sending one-record requests.

Prints Markdown tables for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BIN, ENV, ROOT


def quantiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def in_process(package: Path, repeats: int) -> list[tuple[str, float, float, float, float]]:
    import pandas as pd

    from tabml.learning import package as pkg
    from tabml.service import serving
    from tabml.service.metrics import ServiceMetrics

    loaded = pkg.load(package)
    schema_json = json.loads((package / pkg.SCHEMA).read_text())
    request = serving.request_model(
        schema_json, serving.logged_only(loaded.schema), 1_000, serving.id_kind(loaded)
    )
    scorer = serving.Scorer(loaded)
    batch = pd.read_parquet(ROOT / "data/raw/production.parquet")
    cols = [loaded.schema.id, *loaded.schema.features]
    rows = json.loads(batch[cols].to_json(orient="records"))
    booster, best = loaded.model.booster, loaded.model.best_iteration

    gc.freeze()  # as create_app does once everything is loaded

    metrics = ServiceMetrics(loaded.name, loaded.model.kind, serving.model_version(loaded))

    def app_path(body: bytes) -> list[dict[str, object]]:
        # what the /predict handler does, metrics included
        validated = request.model_validate_json(body)
        records = [vars(r) for r in validated.records]  # type: ignore[attr-defined]
        scores = scorer.score(records)
        metrics.scored("/predict", scores)
        return scorer.predictions(records, scores)

    out = []
    for n in (1, 1_000):
        bodies = [
            json.dumps({"records": rows[i * n : (i + 1) * n]}).encode()
            for i in range(min(repeats, len(rows) // n))
        ]
        matrices = [scorer.encode(json.loads(b)["records"]) for b in bodies]
        for body, matrix in zip(bodies[:20], matrices[:20], strict=True):  # warm up
            app_path(body)
            booster.predict(matrix, num_iteration=best)
        # each in its own loop, so neither runs on caches the other just warmed
        app_t, bare_t = [], []
        for body in bodies:
            start = time.perf_counter()
            app_path(body)
            app_t.append(time.perf_counter() - start)
        for matrix in matrices:
            start = time.perf_counter()
            booster.predict(matrix, num_iteration=best)
            bare_t.append(time.perf_counter() - start)
        (a50, a99), (b50, b99) = quantiles(app_t), quantiles(bare_t)
        out.append((f"{n:,} record{'s' if n > 1 else ''}", a50, a99, b50, b99))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _loadgen(port: int, pairs: list[tuple[str, str]], clients: int, seconds: float) -> dict:
    """Run benchmarks/loadgen.py in its own process against the server on `port`."""
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(pairs, fh)
    try:
        out = subprocess.run(
            [sys.executable, str(Path(__file__).with_name("loadgen.py")), "127.0.0.1",
             str(port), fh.name, str(clients), str(seconds)],
            capture_output=True, text=True, check=True, env=ENV,
        ).stdout  # fmt: skip
    finally:
        Path(fh.name).unlink()
    result = json.loads(out)
    assert result["errors"] == 0, f"{result['errors']} responses were not 200"
    return result


def _start(package: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    import httpx

    server = subprocess.Popen(
        [str(BIN / "tabml"), "serve", "--package", str(package), "--port", str(port),
         "--workers", str(workers), "--no-auth"],
        env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("the server did not start")


def over_http(package: Path, seconds: float) -> dict[str, object]:
    """Latency, records/s at 1, 8 and 32 clients, and 1,000-record requests in both forms,
    for one and two workers; `Booster.predict` on the same 1,000-row matrices for the ratio."""
    import pandas as pd

    from tabml.learning import package as pkg
    from tabml.service import serving

    loaded = pkg.load(package)
    cols = [loaded.schema.id, *loaded.schema.features]
    batch = pd.read_parquet(ROOT / "data/raw/production.parquet")
    rows = json.loads(batch[cols].head(20_000).to_json(orient="records"))
    one = [("/predict", json.dumps({"records": [r]})) for r in rows[:2_000]]
    blocks = [rows[i * 1_000 : (i + 1) * 1_000] for i in range(20)]
    as_records = [("/predict", json.dumps({"records": b})) for b in blocks]
    as_columns = [
        (
            "/predict/columnar",
            json.dumps({"columns": cols, "data": [[r[c] for c in cols] for r in b]}),
        )
        for b in blocks
    ]
    sizes = {"records": len(as_records[0][1]), "columnar": len(as_columns[0][1])}
    scorer = serving.Scorer(loaded)
    matrices = [scorer.encode(b) for b in blocks]
    booster, best = loaded.model.booster, loaded.model.best_iteration

    def bare_rate() -> float:
        for m in matrices[:3]:
            booster.predict(m, num_iteration=best)
        times = []
        for _ in range(3):
            for m in matrices:
                began = time.perf_counter()
                booster.predict(m, num_iteration=best)
                times.append(time.perf_counter() - began)
        return 1_000 / statistics.median(times)

    results: dict[str, object] = {"sizes": sizes, "bare": [bare_rate()]}
    for workers in (1, 2):
        port = free_port()
        server = _start(package, port, workers)
        try:
            _loadgen(port, one, 2, 2.0)  # warm up every worker
            latency = _loadgen(port, one, 1, seconds)["latencies"]
            throughput = {}
            for clients in (1, 8, 32):
                r = _loadgen(port, one, clients, seconds)
                throughput[clients] = r["responses"] / r["seconds"]
            big = {}
            for form, pairs in (("records", as_records), ("columnar", as_columns)):
                r = _loadgen(port, pairs, 1, seconds)
                big[form] = 1_000 * r["responses"] / r["seconds"]
        finally:
            server.terminate()
            server.wait(timeout=30)
        results[f"workers={workers}"] = {
            "p50": quantiles(latency)[0],
            "p99": quantiles(latency)[1],
            "throughput": throughput,
            "big": big,
        }
    results["bare"].append(bare_rate())  # type: ignore[attr-defined]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", type=Path, default=ROOT / "models/package")
    parser.add_argument("--repeats", type=int, default=2_000, help="requests per measurement")
    parser.add_argument("--seconds", type=float, default=10.0, help="per throughput run")
    args = parser.parse_args()
    os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
    if not (args.package / "MANIFEST.sha256").is_file():
        sys.exit(f"{args.package}: no package; run 'make repro' first")
    print("in process...", file=sys.stderr)
    rows = in_process(args.package, args.repeats)
    print("over HTTP...", file=sys.stderr)
    http = over_http(args.package, args.seconds)

    print(f"\n<!-- benchmarks/serve.py, {time.strftime('%Y-%m-%d')}, repeats={args.repeats} -->")
    print(
        "| scoring path, in process | app p50 | app p99 | `Booster.predict` p50 | p99 "
        "| **ratio p50** | ratio p99 | target |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for (name, a50, a99, b50, b99), target in zip(rows, ("<= 1.5", "<= 1.3"), strict=True):
        print(
            f"| {name} | {a50 * 1e3:.3f} ms | {a99 * 1e3:.3f} ms | {b50 * 1e3:.3f} ms | "
            f"{b99 * 1e3:.3f} ms | **{a50 / b50:.2f}** | {a99 / b99:.2f} | {target} |"
        )
    one, two = http["workers=1"], http["workers=2"]
    print()
    print("| HTTP on 127.0.0.1 (kept-alive connections) | 1 worker | 2 workers | 2 / 1 |")
    print("|---|---:|---:|---:|")
    print(f"| one-record latency p50 | {one['p50'] * 1e3:.2f} ms | {two['p50'] * 1e3:.2f} ms "
          f"| {two['p50'] / one['p50']:.2f} |")  # fmt: skip
    print(f"| one-record latency p99 | {one['p99'] * 1e3:.2f} ms | {two['p99'] * 1e3:.2f} ms "
          f"| {two['p99'] / one['p99']:.2f} |")  # fmt: skip
    for clients in (1, 8, 32):
        a, b = one["throughput"][clients], two["throughput"][clients]
        print(f"| one-record requests, {clients} client{'s' if clients > 1 else ''} "
              f"| {a:,.0f} records/s | {b:,.0f} records/s | **{b / a:.2f}** |")  # fmt: skip
    bare = statistics.median(http["bare"])
    sizes = http["sizes"]
    print()
    print("| 1,000-record requests, 1 client | body | 1 worker | ratio to bare | 2 workers |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| `Booster.predict` on the encoded rows, no HTTP | - | {bare:,.0f} records/s | 1.00 | - |"
    )
    for form in ("records", "columnar"):
        a, b = one["big"][form], two["big"][form]
        print(f"| `{form}` form | {sizes[form] / 1e3:,.0f} KB | {a:,.0f} records/s "
              f"| **{bare / a:.2f}** | {b:,.0f} records/s |")  # fmt: skip


if __name__ == "__main__":
    main()
