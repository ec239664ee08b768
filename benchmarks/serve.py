"""Benchmark: the prediction service against LightGBM's `Booster.predict`.

Usage: uv run python benchmarks/serve.py [--package models/package] [--repeats N]

Needs a built package (`make repro`). Measures, on the default production batch:

- the app's scoring path in process, no HTTP (validate the JSON body with the request model,
  encode, predict, build the response rows), for 1 record and for 1,000 records, against
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
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BIN, ENV, ROOT


def quantiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def in_process(package: Path, repeats: int) -> list[tuple[str, float, float, float, float]]:
    import pandas as pd

    from tabml import package as pkg
    from tabml import serving

    loaded = pkg.load(package)
    schema_json = json.loads((package / pkg.SCHEMA).read_text())
    request = serving.request_model(schema_json, serving.logged_only(loaded.schema), 1_000)
    scorer = serving.Scorer(loaded)
    batch = pd.read_parquet(ROOT / "data/raw/production.parquet")
    cols = [loaded.schema.id, *loaded.schema.features]
    rows = json.loads(batch[cols].to_json(orient="records"))
    booster, best = loaded.model.booster, loaded.model.best_iteration

    gc.freeze()  # as create_app does once everything is loaded

    def app_path(body: bytes) -> list[dict[str, object]]:
        validated = request.model_validate_json(body)
        return scorer.predictions([r.model_dump() for r in validated.records])  # type: ignore[attr-defined]

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


def over_http(package: Path, seconds: float) -> tuple[float, float, list[tuple[int, float]]]:
    import httpx
    import pandas as pd

    from tabml import package as pkg

    loaded = pkg.load(package)
    cols = [loaded.schema.id, *loaded.schema.features]
    batch = pd.read_parquet(ROOT / "data/raw/production.parquet")
    rows = json.loads(batch[cols].head(5_000).to_json(orient="records"))
    port = free_port()
    server = subprocess.Popen(
        [str(BIN / "tabml"), "serve", "--package", str(package), "--port", str(port)],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        with httpx.Client(base_url=url) as client:
            latencies = []
            for i in range(1_000):
                start = time.perf_counter()
                r = client.post("/predict", json={"records": [rows[i % len(rows)]]})
                latencies.append(time.perf_counter() - start)
                assert r.status_code == 200
        p50, p99 = quantiles(latencies)
        throughput = []
        for clients in (1, 8, 32):
            done = [0] * clients
            stop = time.perf_counter() + seconds

            def work(k: int, stop: float, done: list[int], step: int) -> None:
                with httpx.Client(base_url=url) as c:
                    i = k
                    while time.perf_counter() < stop:
                        c.post("/predict", json={"records": [rows[i % len(rows)]]})
                        done[k] += 1
                        i += step

            threads = [
                threading.Thread(target=work, args=(k, stop, done, clients)) for k in range(clients)
            ]
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            throughput.append((clients, sum(done) / (time.perf_counter() - start)))
    finally:
        server.terminate()
        server.wait(timeout=30)
    return p50, p99, throughput


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
    p50, p99, throughput = over_http(args.package, args.seconds)

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
    print()
    print("| HTTP on 127.0.0.1, one-record requests | value |")
    print("|---|---:|")
    print(f"| latency p50 | {p50 * 1e3:.2f} ms |")
    print(f"| latency p99 | {p99 * 1e3:.2f} ms |")
    for clients, rate in throughput:
        print(
            f"| throughput, {clients} concurrent client{'s' if clients > 1 else ''} "
            f"| {rate:,.0f} records/s |"
        )


if __name__ == "__main__":
    main()
