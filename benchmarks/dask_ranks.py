"""Benchmark: compute=dask's LightGBM ranks against single-machine training, on the processed
splits of this workspace (`dvc repro` first; the default data unless --input-dir says other).

Usage: uv run python benchmarks/dask_ranks.py [--ranks 1,2,4] [--runs 2] [--input-dir DIR]
       [--json PATH]

For each N: a LocalCluster of N worker processes on 127.0.0.1 (started before the clock), the
driver run `--runs` times (tabml.compute.distributed.fit_dask, the train stage's call), each run's
model text hashed, and the first run's model scored on test and on the labelled production
batch. Single-machine training (tabml.learning.model.fit) runs in this process, `--runs` times, for
the
baseline; times are medians. CPU
seconds are summed over the workers (their own getrusage) and this process, so the ratio
against single-machine CPU seconds, per boosting round (each N early-stops at its own round),
is the work efficiency, which a 2-core machine shows where wall-clock speed-up cannot. Peak
RSS per worker is each worker's own (its high-water mark reset before the runs).

What must hold (issue 29): N=1 is byte-identical to single-machine training; each N gives the
same bytes run to run; production ROC AUC across N within 0.002.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import cpu_seconds, peak_mib, reset_peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ranks", default="1,2,4", help="rank counts N, comma-separated")
    parser.add_argument("--runs", type=int, default=2, help="runs per N (same bytes each time)")
    parser.add_argument("--input-dir", type=Path, default=Path("data/processed"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    import pandas as pd
    from dask.distributed import Client, LocalCluster

    from tabml.compute.distributed import fit_dask
    from tabml.core.config import DaskCompute, LightGBMConfig, TrainParams
    from tabml.learning.metrics import roc_auc
    from tabml.learning.model import fit

    params = TrainParams.load(args.params)
    schema, cfg = params.dataset_schema, params.model
    if not isinstance(cfg, LightGBMConfig):
        raise SystemExit("benchmarks/dask_ranks.py: params.yaml's model must be lightgbm")
    target = schema.target.column
    splits = {
        n: pd.read_parquet(args.input_dir / f"{n}.parquet") for n in ("train", "valid", "test")
    }
    production = Path("data/interim/production.parquet")
    labels = Path("data/interim/production_labels.parquet")
    scored = {"test": splits["test"]}
    if production.exists() and labels.exists():
        prod = pd.read_parquet(production).merge(pd.read_parquet(labels), on=schema.id)
        scored["production"] = prod

    def aucs(model: Any) -> dict[str, float]:
        return {
            name: roc_auc(frame[target].to_numpy("float64"), model.predict(frame))
            for name, frame in scored.items()
        }

    walls, cpus = [], []
    for _ in range(args.runs):
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        local, local_history = fit(splits["train"], splits["valid"], schema, cfg, params.seed)
        walls.append(time.perf_counter() - t0)
        cpus.append(cpu_seconds() - cpu0)
    base = {
        "wall_s": sorted(walls)[len(walls) // 2],
        "cpu_s": sorted(cpus)[len(cpus) // 2],
        "sha256": hashlib.sha256(local.booster.model_to_string().encode()).hexdigest(),
        "auc": aucs(local),
        "rounds": local_history.best_iteration,
    }
    print(f"single machine: {base['wall_s']:.1f} s, {base['cpu_s']:.1f} CPU s, {base['auc']}")
    rows = []
    for n in (int(x) for x in args.ranks.split(",")):
        with (
            LocalCluster(
                n_workers=n, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            os.environ["DASK_SCHEDULER_ADDRESS"] = cluster.scheduler_address
            compute = DaskCompute(backend="dask", workers=n)
            hashes, walls, cpus, first, rounds = [], [], [], None, 0
            client.run(reset_peak)
            for _ in range(args.runs):
                before = sum(client.run(cpu_seconds).values())
                cpu0, t0 = cpu_seconds(), time.perf_counter()
                model, history = fit_dask(
                    str((args.input_dir / "train.parquet").resolve()),
                    str((args.input_dir / "valid.parquet").resolve()),
                    splits["valid"],
                    schema,
                    cfg,
                    compute,
                    params.seed,
                )
                walls.append(time.perf_counter() - t0)
                cpus.append(sum(client.run(cpu_seconds).values()) - before + cpu_seconds() - cpu0)
                hashes.append(hashlib.sha256(model.booster.model_to_string().encode()).hexdigest())
                first, rounds = first or model, history.best_iteration
            peak = max(client.run(peak_mib).values())
        del os.environ["DASK_SCHEDULER_ADDRESS"]
        row = {
            "ranks": n,
            "same_bytes_every_run": len(set(hashes)) == 1,
            "equals_single_machine": hashes[0] == base["sha256"],
            "wall_s": sorted(walls)[len(walls) // 2],
            "cpu_s": sorted(cpus)[len(cpus) // 2],
            "work_ratio": sorted(cpus)[len(cpus) // 2] / base["cpu_s"],
            "rounds": rounds,
            # CPU per boosting round against single-machine's: early stopping ends at another
            # round for another N, so whole-fit CPU alone compares unlike work
            "work_ratio_per_round": (sorted(cpus)[len(cpus) // 2] / max(rounds, 1))
            / (base["cpu_s"] / max(base["rounds"], 1)),
            "peak_worker_rss_mib": peak,
            "auc": aucs(first),
        }
        rows.append(row)
        print(json.dumps(row))
    print()
    names = list(base["auc"])
    print(
        "| N | same bytes every run | = single machine | rounds | wall s | CPU s | "
        "CPU per round vs single | peak RSS per worker | "
        + " | ".join(f"{k} ROC AUC" for k in names)
        + " |"
    )
    print("|---" * (8 + len(names)) + "|")
    print(
        f"| single machine | | | {base['rounds']} | {base['wall_s']:.1f} | {base['cpu_s']:.1f} "
        "| 1.00x | | " + " | ".join(f"{base['auc'][k]:.5f}" for k in names) + " |"
    )
    for r in rows:
        print(
            f"| {r['ranks']} | {'yes' if r['same_bytes_every_run'] else 'NO'} | "
            f"{'yes' if r['equals_single_machine'] else 'no'} | {r['rounds']} | "
            f"{r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['work_ratio_per_round']:.2f}x | "
            f"{r['peak_worker_rss_mib']:.0f} MiB | "
            + " | ".join(f"{r['auc'][k]:.5f}" for k in names)
            + " |"
        )
    spread = {k: max(r["auc"][k] for r in rows) - min(r["auc"][k] for r in rows) for k in names}
    print(f"\nROC AUC spread across N: {spread}")
    if args.json:
        args.json.write_text(
            json.dumps({"single": base, "ranks": rows, "spread": spread}, indent=1)
        )


if __name__ == "__main__":
    main()
