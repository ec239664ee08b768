"""Benchmark: monitor with compute=dask against compute=local, on a batch of `--rows` rows.

Usage: uv run python benchmarks/dask_monitor.py [--rows 2000000] [--workers 1,2,4]
       [--runs 3] [--chunks 20] [--json PATH]

Needs the project's package (models/package: `make repro` first). In a temporary folder, the
production batch (data/raw/production.parquet) is repeated, each copy with new ids and
later time stamps, up to `--rows` rows, in one Parquet file of 250,000-row row groups. Then
`tabml monitor` runs in a fresh process each time, as a user runs it: `--runs` times with
compute=local and `--runs` times for each worker count N on a LocalCluster of N worker
processes (started in this process, before the clock), with `--chunks` chunks
(`--chunk-count`; the package's 5,000-row chunks would make hundreds). Times are medians.
CPU seconds are the command's (with the child that draws the report) plus the workers', so
their ratio to compute=local's is the work efficiency, which a 2-core machine shows where
wall-clock speed-up cannot. Peak RSS: the command's, and the largest worker's (its
high-water mark reset before the runs).

What must hold (issue 29): every run writes the same bytes as compute=local, for every N; and
the command's peak falls well below compute=local's (it never holds the batch).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import ENV, ROOT, cpu_seconds, median, peak_mib, reset_peak
from benchmarks.dask_data import _digest


def _batch(rows: int, out: Path) -> None:
    """`rows` rows of the production batch, repeated with new ids and later time stamps."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    base = pd.read_parquet(ROOT / "data/raw/production.parquet")
    stamps = pd.to_datetime(base["timestamp"])
    span = stamps.max() - stamps.min() + pd.Timedelta(seconds=1)
    ids = pd.to_numeric(base["id"])
    step = int(ids.max()) + 1
    with pq.ParquetWriter(out, pa.Table.from_pandas(base, preserve_index=False).schema) as w:
        copy, written = 0, 0
        while written < rows:
            part = base.iloc[: rows - written].copy()
            part["id"] = (ids.iloc[: len(part)] + copy * step).astype(base["id"].dtype)
            part["timestamp"] = (stamps.iloc[: len(part)] + copy * span).astype(
                base["timestamp"].dtype
            )
            table = pa.Table.from_pandas(part, preserve_index=False)
            w.write_table(table, row_group_size=250_000)
            written += len(part)
            copy += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows in the batch")
    parser.add_argument("--workers", default="1,2,4", help="worker counts N, comma-separated")
    parser.add_argument("--runs", type=int, default=3, help="runs per mode")
    parser.add_argument("--chunks", type=int, default=20, help="chunks (--chunk-count)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    # the batch is written by a child process, so that its frames do not count in the peaks
    parser.add_argument("--write-batch", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write_batch:
        _batch(args.rows, args.write_batch)
        return
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    package = ROOT / "models/package"
    if not (package / "metadata.json").exists():
        sys.exit(f"{package} is missing: run 'make repro' first")

    import yaml
    from dask.distributed import Client, LocalCluster

    env = dict(ENV)  # this virtualenv's tools first, telemetry off
    with tempfile.TemporaryDirectory(prefix="tabml-dask-monitor-") as tmp_name:
        tmp = Path(tmp_name)
        batch = tmp / "batch.parquet"
        print(f"{args.rows:,} rows: writing the batch...", file=sys.stderr)
        write = [sys.executable, __file__, "--rows", str(args.rows), "--write-batch", str(batch)]
        subprocess.run(write, check=True)

        def measure(params: Path, name: str, client: Any = None) -> dict[str, Any]:
            walls, cpus, peaks, digests = [], [], [], set()
            for i in range(args.runs):
                out = tmp / f"{name}-{i}"
                before = sum(client.run(cpu_seconds).values()) if client else 0.0
                cmd = ["tabml", "monitor", "--package", str(package), "--input", str(batch),
                       "--output-dir", str(out), "--chunk-count", str(args.chunks),
                       "--no-fail-on-alerts", "--params", str(params)]  # fmt: skip
                t0 = time.perf_counter()
                child = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)
                _, status, usage = os.wait4(child.pid, 0)
                walls.append(time.perf_counter() - t0)
                if status:
                    sys.exit(f"{' '.join(cmd)} failed ({status})")
                workers = sum(client.run(cpu_seconds).values()) - before if client else 0.0
                # the command's own CPU (with its report-drawing child) and the workers'
                cpus.append(usage.ru_utime + usage.ru_stime + workers)
                peaks.append(usage.ru_maxrss / 1024)
                digests.add(_digest(out))
            return {
                "wall_s": median(walls),
                "cpu_s": median(cpus),
                "peak_mib": median(peaks),
                "digests": digests,
            }

        tree = yaml.safe_load((ROOT / "params.yaml").read_text())
        local_params = tmp / "params-local.yaml"
        local_params.write_text(yaml.safe_dump(tree, sort_keys=False))
        base = measure(local_params, "local")
        reference = base.pop("digests")
        print(f"compute=local: {json.dumps(base)}", file=sys.stderr)
        rows: list[dict[str, Any]] = []
        for n in (int(x) for x in args.workers.split(",")):
            tree["compute"] = {"backend": "dask", "workers": n}
            params = tmp / f"params-dask-{n}.yaml"
            params.write_text(yaml.safe_dump(tree, sort_keys=False))
            with (
                LocalCluster(n_workers=n, threads_per_worker=1, host="127.0.0.1",
                             dashboard_address=None) as cluster,
                Client(cluster) as client,
            ):  # fmt: skip
                env["DASK_SCHEDULER_ADDRESS"] = cluster.scheduler_address
                client.run(reset_peak)
                got = measure(params, f"dask-{n}", client)
                worker_peak = max(client.run(peak_mib).values())
                del env["DASK_SCHEDULER_ADDRESS"]
            row = {
                "workers": n,
                "same_bytes_as_local": got.pop("digests") == reference,
                **got,
                "cpu_vs_local": got["cpu_s"] / base["cpu_s"],
                "workerpeak_mib": worker_peak,
            }
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    print(f"\n<!-- benchmarks/dask_monitor.py, {time.strftime('%Y-%m-%d')}, {args.rows:,} rows, "
          f"{args.chunks} chunks -->")  # fmt: skip
    print("| compute | same bytes as local | wall s | CPU s | CPU vs local | peak RSS, the "
          "command | peak RSS per worker |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|")
    print(f"| local | | {base['wall_s']:.1f} | {base['cpu_s']:.1f} | 1.00x | "
          f"{base['peak_mib']:,.0f} MiB | |")  # fmt: skip
    for r in rows:
        print(f"| dask, N={r['workers']} | {'yes' if r['same_bytes_as_local'] else 'NO'} | "
              f"{r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['cpu_vs_local']:.2f}x | "
              f"{r['peak_mib']:,.0f} MiB | {r['workerpeak_mib']:,.0f} MiB |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"rows": args.rows, "local": base, "dask": rows}))


if __name__ == "__main__":
    main()
