"""Helpers shared by the benchmarks: a clean copy of the project and in-process stage runs."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {
    **os.environ,
    "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    "NML_DISABLE_USAGE_LOGGING": "1",
    "ITERATIVE_DO_NOT_TRACK": "1",
}


def clone(dest: Path) -> Path:
    """A clean clone of the committed project (no data, no models, no cache)."""
    subprocess.run(["git", "clone", "-q", str(ROOT), str(dest)], check=True)
    return dest


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=ENV, check=True, capture_output=True)
    return time.perf_counter() - start


def run_stages_in_process(repo: Path, params: Path) -> None:
    """The pipeline's work, every stage in this one Python process, without DVC."""
    from tabml.stages import clean, evaluate, ingest, monitor, package, split, train

    d = repo
    ingest.run(params, d / "data/external", d / "data/raw")
    clean.run(params, d / "data/raw", d / "data/interim", d / "reports/data_quality.json")
    split.run(
        params, d / "data/interim/clean.parquet", d / "data/processed", d / "reports/split.json"
    )
    train.run(
        params,
        d / "data/processed",
        d / "models/model",
        d / "reports/train",
        d / "models/reference.parquet",
        d / "models/valid_scores.parquet",
    )
    evaluate.run(
        params,
        d / "models/model",
        d / "models/valid_scores.parquet",
        d / "data/processed",
        d / "data/interim",
        d / "data/predictions",
        d / "reports/metrics.json",
        d / "reports/slices.json",
        d / "reports/plots",
    )
    package.run(
        params,
        d / "models/model",
        d / "reports/metrics.json",
        d / "reports/slices.json",
        d / "reports/data_quality.json",
        d / "reports/split.json",
        [d / f"data/processed/{s}.parquet" for s in ("train", "valid", "test")],
        d / "models/reference.parquet",
        d / "models/package",
    )
    monitor.run(
        d / "models/package",
        d / "data/raw/production.parquet",
        d / "data/raw/production_labels.parquet",
        d / "reports/monitoring",
    )


def median(values: list[float]) -> float:
    return statistics.median(values)


def cpu_seconds() -> float:
    """This process's CPU seconds, user and system (run on Dask workers too: client.run)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def reset_peak() -> None:
    """Start this process's peak RSS afresh (Linux: VmHWM; a worker forked from a big parent
    would otherwise report the parent's peak)."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_mib() -> float:
    """This process's peak RSS since `reset_peak` (or its start), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
