"""Benchmark: `tabml exp compare` over five experiments: its wall time, and whether its ranking
by response time is the same in three runs.

Usage: uv run python benchmarks/compare.py [--runs 3] [--rounds 50]

In a clean clone (sharing this project's DVC cache, so the baseline comes from the run-cache),
runs `dvc repro`, then four experiments with `dvc exp run --temp` whose models differ in size
(num_leaves 7, 31 (a learning-rate change), 127 and 255), then `tabml exp compare` over all of
them (the workspace makes five) `--runs` times. Prints Markdown: the seconds per compare (target
<= 60 s), and each run's order by one-record p99 and p50 (target: the same in every run).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BIN, ENV, ROOT, clone

EXPERIMENTS = {
    "leaves7": ["model.num_leaves=7"],
    "lr05": ["model.learning_rate=0.05"],
    "leaves127": ["model.num_leaves=127"],
    "leaves255": ["model.num_leaves=255", "model.min_child_samples=5"],
}


def sh(repo: Path, *cmd: str) -> str:
    proc = subprocess.run(cmd, cwd=repo, env=ENV, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=None, help="tabml exp compare --rounds")
    parser.add_argument(
        "--keep", type=Path, help="build the clone and experiments here once, and reuse them"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = args.keep or Path(tmp) / "repo"
        if not (repo / "models/package").is_dir():
            clone(repo)
            sh(repo, str(BIN / "dvc"), "cache", "dir", "--local", str(ROOT / ".dvc/cache"))
            print("dvc repro (the baseline)...", file=sys.stderr)
            sh(repo, str(BIN / "dvc"), "repro")
            for name, overrides in EXPERIMENTS.items():
                print(f"dvc exp run {name}...", file=sys.stderr)
                sets = [a for o in overrides for a in ("-S", o)]
                sh(repo, str(BIN / "dvc"), "exp", "run", "--temp", "-n", name, *sets)
        seconds, by_p99, by_p50, boards, ranks = [], [], [], [], []
        for run in range(args.runs):
            start = time.perf_counter()
            rounds = ["--rounds", str(args.rounds)] if args.rounds else []
            sh(repo, str(BIN / "tabml"), "exp", "compare", *EXPERIMENTS, *rounds)
            seconds.append(time.perf_counter() - start)
            board = json.loads((repo / "reports/compare/leaderboard.json").read_text())
            boards.append(board)
            by_p99.append([e["name"] for e in sorted(board, key=lambda e: e["p99_ms"])])
            by_p50.append([e["name"] for e in sorted(board, key=lambda e: e["p50_ms"])])
            ranks.append({e["name"]: e["speed_rank"] for e in board})
            print(f"run {run + 1}: {seconds[-1]:.1f} s", file=sys.stderr)
    print("| run | seconds | order by p99 (fastest first) | order by p50 |")
    print("|---:|---:|---|---|")
    for i, (s, a, b) in enumerate(zip(seconds, by_p99, by_p50, strict=True)):
        print(f"| {i + 1} | {s:.1f} | {', '.join(a)} | {', '.join(b)} |")
    print()
    print(f"stable by p99: {all(o == by_p99[0] for o in by_p99)}; "
          f"by p50: {all(o == by_p50[0] for o in by_p50)}; "
          f"speed ranks (ties shared): {all(r == ranks[0] for r in ranks)}")  # fmt: skip
    for i, r in enumerate(ranks):
        print(f"- run {i + 1} speed ranks: {', '.join(f'{k} {v}' for k, v in r.items())}")
    print()
    print("| experiment | test ROC AUC | p50 ms | p99 ms | records/s | KiB | trees | Pareto |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for e in boards[-1]:
        print(
            f"| {e['name']} | {e['auc']['test'][0]:.4f} | {e['p50_ms']:.3f} | {e['p99_ms']:.3f} "
            f"| {e['records_per_s']:,.0f} | {e['size_bytes'] / 1024:,.0f} | {e['trees']} | "
            f"{'★' if e['pareto'] else ''} |"
        )


if __name__ == "__main__":
    main()
