"""Benchmark: the data stages (ingest, clean, split) with compute=dask against compute=local.

Usage: uv run python benchmarks/dask_data.py [--rows 10000000] [--workers 1,2,4] [--runs 3]
       [--stages ingest,clean,split] [--moto] [--json PATH]

In a temporary folder: `tabml synth` makes `--rows` development rows of car-loan's shape and
`tabml ingest` writes data/raw (row groups of 1,000,000 rows); ingest reads synth's Parquet
file, clean data/raw, and split clean's local output. Then each stage's call
(`tabml.stages.<stage>.run`, the command's) runs in this process, `--runs` times with
compute=local and `--runs` times for each worker count N on a LocalCluster of N worker
processes (started before the clock). Times are medians. CPU seconds are summed over this
process and the workers (their own getrusage), so their ratio to compute=local's is the work
efficiency, which a 2-core machine shows where wall-clock speed-up cannot. Peak RSS: this
process's and the largest worker's, each high-water mark reset before the runs.

With `--moto`, the workers read each stage's files from an object store instead of this
machine's disk (TABML_CLUSTER_STORAGE): a moto S3 server on 127.0.0.1, started here, whose CPU
seconds are counted with the workers'. moto keeps objects in its own Python process, so this
measures what the copies and the workers' reads through S3 cost on top of the work, not a
real store's speed.

What must hold (issue 29): every run writes the same bytes as compute=local, for every N.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import ENV, cpu_seconds, median, peak_mib, reset_peak


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def _measure(
    run: Callable[[Path, Path], None], params: Path, out: Path, runs: int, client: Any = None
) -> tuple[list[float], list[float], list[float], set[str]]:
    """`runs` runs of `run(params, out-i)`: wall and CPU seconds (this process's and, with a
    client, its workers'), this process's peak RSS, and the outputs' digests."""
    walls, cpus, peaks, digests = [], [], [], set()
    for i in range(runs):
        before = sum(client.run(cpu_seconds).values()) if client else 0.0
        reset_peak()
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        run(params, out.with_name(f"{out.name}-{i}"))
        walls.append(time.perf_counter() - t0)
        workers = sum(client.run(cpu_seconds).values()) - before if client else 0.0
        cpus.append(cpu_seconds() - cpu0 + workers)
        peaks.append(peak_mib())
        digests.add(_digest(out.with_name(f"{out.name}-{i}")))
    return walls, cpus, peaks, digests


class Moto:
    """A moto S3 server on 127.0.0.1 with bucket `bench`, and the variables that reach it."""

    def __init__(self) -> None:
        import socket

        import boto3

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.env = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                    "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": self.endpoint,
                    "TABML_CLUSTER_STORAGE": "s3://bench/cluster"}  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                     aws_access_key_id="bench", aws_secret_access_key="bench",
                     ).create_bucket(Bucket="bench")  # fmt: skip

    def cpu_seconds(self) -> float:
        import psutil

        times = psutil.Process(self.proc.pid).cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="development rows")
    parser.add_argument("--workers", default="1,2,4", help="worker counts N, comma-separated")
    parser.add_argument("--runs", type=int, default=3, help="runs per mode")
    parser.add_argument("--stages", default="ingest,clean,split", help="comma-separated")
    parser.add_argument(
        "--moto", action="store_true",
        help="the workers read through a moto S3 server (TABML_CLUSTER_STORAGE), not the disk",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    root = Path(__file__).resolve().parent.parent

    import yaml
    from dask.distributed import Client, LocalCluster

    from tabml.stages import clean, ingest, split

    moto = Moto() if args.moto else None
    if moto:  # this process copies; the workers (started below) inherit the variables
        os.environ.update(moto.env)
    with tempfile.TemporaryDirectory(prefix="tabml-dask-data-") as tmp_name:
        tmp = Path(tmp_name)
        env = ENV  # this virtualenv's tools first, telemetry off
        print(f"{args.rows:,} rows: synth and ingest...", file=sys.stderr)
        synth = ["tabml", "synth", "--rows", str(args.rows), "--output", f"{tmp}/external/synth"]
        subprocess.run(synth, check=True, env=env, capture_output=True)
        tree = yaml.safe_load((root / "params.yaml").read_text())
        tree["dataset"]["sources"]["development"] = "synth/development.parquet"
        local_params = tmp / "params-local.yaml"
        local_params.write_text(yaml.safe_dump(tree, sort_keys=False))
        tree["compute"] = {**yaml.safe_load((root / "conf/compute/dask.yaml").read_text())}
        subprocess.run(["tabml", "ingest", "--params", str(local_params), "--sources-dir",
                        str(tmp / "external"), "--output-dir", str(tmp / "raw"),
                        "--erasure-ledger", str(root / "data/erasure/ledger.txt")],
                       check=True, env=env, capture_output=True)  # fmt: skip
        clean.run(local_params, tmp / "raw", tmp / "interim", tmp / "quality.json")
        ledger = root / "data/erasure/ledger.txt"
        stages: dict[str, Callable[[Path, Path], None]] = {
            "ingest": lambda p, out: ingest.run(p, tmp / "external", out, ledger_file=ledger),
            "clean": lambda p, out: clean.run(p, tmp / "raw", out, out.with_suffix(".json")),
            "split": lambda p, out: split.run(
                p, tmp / "interim/clean.parquet", out, out.with_suffix(".json")
            ),
        }
        results: dict[str, Any] = {}
        for stage in args.stages.split(","):
            run = stages[stage]
            walls, cpus, peaks, digests = _measure(run, local_params, tmp / f"{stage}-local",
                                                   args.runs)  # fmt: skip
            base = {"wall_s": median(walls), "cpu_s": median(cpus), "peak_mib": median(peaks)}
            reference = digests.pop()
            print(f"{stage}, compute=local: {json.dumps(base)}", file=sys.stderr)
            rows: list[dict[str, Any]] = []
            for n in (int(x) for x in args.workers.split(",")):
                tree["compute"]["workers"] = n
                params = tmp / f"params-dask-{n}.yaml"
                params.write_text(yaml.safe_dump(tree, sort_keys=False))
                with (
                    LocalCluster(n_workers=n, threads_per_worker=1, host="127.0.0.1",
                                 dashboard_address=None) as cluster,
                    Client(cluster) as client,
                ):  # fmt: skip
                    os.environ["DASK_SCHEDULER_ADDRESS"] = cluster.scheduler_address
                    client.run(reset_peak)
                    moto_cpu, store_cpu = (moto.cpu_seconds() if moto else 0.0), 0.0
                    walls, cpus, peaks, digests = _measure(
                        run, params, tmp / f"{stage}-dask-{n}", args.runs, client
                    )
                    if moto:  # the store's work, spread over the runs
                        store_cpu = (moto.cpu_seconds() - moto_cpu) / args.runs
                        cpus = [c + store_cpu for c in cpus]
                    worker_peak = max(client.run(peak_mib).values())
                    del os.environ["DASK_SCHEDULER_ADDRESS"]
                row = {
                    "workers": n,
                    "same_bytes_as_local": digests == {reference},
                    "wall_s": median(walls),
                    "cpu_s": median(cpus),
                    "cpu_vs_local": median(cpus) / base["cpu_s"],
                    "driverpeak_mib": median(peaks),
                    "workerpeak_mib": worker_peak,
                    "store_cpu_s": store_cpu,  # moto's share of cpu_s (--moto)
                }
                rows.append(row)
                print(f"{stage}: {json.dumps(row)}", file=sys.stderr)
            results[stage] = {"local": base, "dask": rows}
    if moto:
        moto.stop()
    where = "read through a moto S3 server" if moto else "read this machine's disk"
    for stage, result in results.items():
        base = result["local"]
        print(f"\n<!-- benchmarks/dask_data.py, {stage}, {time.strftime('%Y-%m-%d')}, "
              f"{args.rows:,} rows, the workers {where} -->")  # fmt: skip
        print("| compute | same bytes as local | wall s | CPU s | CPU vs local | peak RSS, this "
              "process | peak RSS per worker |")  # fmt: skip
        print("|---|---|---:|---:|---:|---:|---:|")
        print(f"| local | | {base['wall_s']:.1f} | {base['cpu_s']:.1f} | 1.00x | "
              f"{base['peak_mib']:,.0f} MiB | |")  # fmt: skip
        for r in result["dask"]:
            print(f"| dask, N={r['workers']} | {'yes' if r['same_bytes_as_local'] else 'NO'} | "
                  f"{r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['cpu_vs_local']:.2f}x | "
                  f"{r['driverpeak_mib']:,.0f} MiB | {r['workerpeak_mib']:,.0f} MiB |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"rows": args.rows, **results}, indent=2))


if __name__ == "__main__":
    main()
