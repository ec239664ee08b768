"""Benchmark: `dvc repro -f` against the same work in one plain Python process.

Usage: uv run python benchmarks/pipeline.py [--runs N]

Prints a Markdown table for docs/benchmarks.md: median wall time of the full pipeline under
DVC and in one process (same stage functions, same files), their ratio, a no-op `dvc repro`,
and the peak resident memory of the largest process.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BIN, ENV, clone, median, timed

IN_PROCESS = """
import sys, os
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
sys.path.insert(0, {bench!r})
from pathlib import Path
from _common import run_stages_in_process
repo = Path({repo!r})
run_stages_in_process(repo, repo / "params.yaml")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="repetitions (median is quoted)")
    args = parser.parse_args()
    bench = str(Path(__file__).resolve().parent)
    with tempfile.TemporaryDirectory() as tmp:
        repo = clone(Path(tmp) / "repo")
        dvc = str(BIN / "dvc")
        print("warming up (first run fills caches)...", file=sys.stderr)
        timed([dvc, "repro", "-f"], repo)
        dvc_times, plain_times, noop_times = [], [], []
        for i in range(args.runs):
            print(f"run {i + 1}/{args.runs}", file=sys.stderr)
            dvc_times.append(timed([dvc, "repro", "-f"], repo))
            code = IN_PROCESS.format(bench=bench, repo=str(repo))
            plain_times.append(timed([sys.executable, "-c", code], repo))
        for _ in range(max(args.runs, 5)):
            noop_times.append(timed([dvc, "repro"], repo))
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        status = subprocess.run(
            [dvc, "status"], cwd=repo, env=ENV, capture_output=True, text=True
        ).stdout.strip()
    d, p, n = median(dvc_times), median(plain_times), median(noop_times)
    print(f"\n<!-- benchmarks/pipeline.py, {time.strftime('%Y-%m-%d')}, runs={args.runs} -->")
    print("| measure | median | runs |")
    print("|---|---:|---|")
    print(f"| `dvc repro -f` (7 stages) | {d:.2f} s | {', '.join(f'{t:.2f}' for t in dvc_times)} |")
    print(
        f"| same work, one Python process | {p:.2f} s | "
        f"{', '.join(f'{t:.2f}' for t in plain_times)} |"
    )
    print(f"| **ratio** (target <= 1.5) | **{d / p:.2f}** | |")
    print(
        f"| no-op `dvc repro` (target <= 1 s) | {n:.2f} s | "
        f"{', '.join(f'{t:.2f}' for t in noop_times)} |"
    )
    print(f"| peak RSS of the largest process | {peak_mib:.0f} MiB | |")
    print(f"\n`dvc status` after the runs: {status.splitlines()[-1] if status else 'n/a'}")


if __name__ == "__main__":
    main()
