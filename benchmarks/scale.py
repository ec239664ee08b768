"""Benchmark: each pipeline stage at growing development sizes, and training against bare LightGBM.

Usage: uv run python benchmarks/scale.py [--sizes 100000,1000000,10000000] [--chart PATH]
       [--json PATH] [--stages ingest,clean]
       | --replot PATH [--chart PATH]  (table and chart from saved figures)

For each size, in a fresh clone: `tabml synth` makes a development set of that many rows
shaped like the default car-loan data (the production batch stays the bundled one), then
every stage's command from dvc.yaml runs in its own process under `/usr/bin/time`, which
reports its wall time and peak resident memory. After train, a separate process trains bare
LightGBM (`lgb.Dataset` + `lgb.train`, same parameters, same early stopping, and the same
refit on train + valid when `model.refit` is on) on the arrays the train stage fitted on, for
the ratio.

Prints a Markdown table for docs/benchmarks.md and, with --chart, draws time and memory per
stage against rows on log-log axes (matplotlib PNG).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ENV, clone

BARE = """
import json, sys, time
import lightgbm as lgb
import pandas as pd
from pathlib import Path
from tabml.core.config import TrainParams
from tabml.learning.features import Preprocessor
from tabml.learning.model import _lgb_columns, _lgb_params
params = TrainParams.load(Path("params.yaml"))
schema, cfg, seed = params.dataset_schema, params.model, params.seed
meta = json.loads(Path("models/model/model.json").read_text())
prep = Preprocessor.from_dict(meta["preprocessor"])
train = pd.read_parquet("data/processed/train.parquet")
valid = pd.read_parquet("data/processed/valid.parquet")
x_train, x_valid = prep.transform(train, "codes"), prep.transform(valid, "codes")
y_train = train[schema.target.column].to_numpy("float64")
y_valid = valid[schema.target.column].to_numpy("float64")
names, cats = _lgb_columns(prep)
start = time.perf_counter()
dtrain = lgb.Dataset(x_train, y_train, feature_name=names, categorical_feature=cats)
dvalid = lgb.Dataset(x_valid, y_valid, reference=dtrain)
booster = lgb.train(_lgb_params(cfg, seed), dtrain, num_boost_round=cfg.num_boost_round,
    valid_sets=[dtrain, dvalid], valid_names=["train", "valid"],
    callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)])
if cfg.refit:  # the same refit on train + valid as the stage
    import numpy as np
    del dtrain, dvalid
    whole = lgb.Dataset(np.vstack([x_train, x_valid]), np.concatenate([y_train, y_valid]),
        feature_name=names, categorical_feature=cats)
    lgb.train({**_lgb_params(cfg, seed), "metric": "none"}, whole,
        num_boost_round=booster.best_iteration)
print(time.perf_counter() - start, booster.best_iteration)
"""


def timed(cmd: str, cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS in MiB of one command, from /usr/bin/time."""
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "TIME %e %M", *shlex.split(cmd)],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed:\n{proc.stderr[-3000:]}")
    line = next(x for x in proc.stderr.splitlines()[::-1] if x.startswith("TIME "))
    _, wall, kib = line.split()
    return float(wall), int(kib) / 1024


def run_size(rows: int, tmp: Path, only: list[str] | None = None) -> dict[str, tuple[float, float]]:
    repo = clone(tmp / f"repo-{rows}")
    synth_dir = repo / "data/external/synth"
    print(f"{rows:,} rows: synthesizing...", file=sys.stderr)
    timed(f"tabml synth --rows {rows} --output {synth_dir}", repo)
    subprocess.run(
        ["tabml", "params", "dataset.sources.development=synth/development.parquet"],
        cwd=repo,
        env=ENV,
        check=True,
        capture_output=True,
    )
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    results: dict[str, tuple[float, float]] = {}
    for name, stage in stages.items():
        if only is not None and name not in only:
            continue
        print(f"{rows:,} rows: {name}...", file=sys.stderr)
        results[name] = timed(" ".join(stage["cmd"].split()), repo)
        if name == "train":
            out = subprocess.run(
                [sys.executable, "-c", BARE], cwd=repo, env=ENV, capture_output=True, text=True
            )
            if out.returncode != 0:
                raise SystemExit(f"bare LightGBM failed:\n{out.stderr[-3000:]}")
            seconds, best = out.stdout.split()
            results["bare lightgbm.train"] = (float(seconds), float("nan"))
            results["best iteration"] = (float(best), float("nan"))
    return results


def chart(all_results: dict[int, dict[str, tuple[float, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(all_results)
    stages = [s for s in all_results[sizes[0]] if s != "best iteration"]
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(12, 4.8))
    for i, stage in enumerate(stages):
        color = f"C{i % 10}"
        ax_t.plot(
            sizes, [all_results[n][stage][0] for n in sizes], marker="o", color=color, label=stage
        )
        mem = [all_results[n][stage][1] for n in sizes]
        if not any(math.isnan(m) for m in mem):
            ax_m.plot(sizes, mem, marker="o", color=color, label=stage)
    lo, hi = sizes[0], sizes[-1]
    base = all_results[lo]["train"][0]
    ax_t.plot([lo, hi], [base, base * hi / lo], "k:", label="linear growth (from train)")
    for ax, label in ((ax_t, "wall time (s)"), (ax_m, "peak RSS (MiB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("development rows")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    ax_t.legend(fontsize=7, loc="upper left")
    ax_m.legend(fontsize=7, loc="upper left")
    ax_t.set_title("Time per stage")
    ax_m.set_title("Peak memory per stage")
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})


def table(all_results: dict[int, dict[str, tuple[float, float]]]) -> None:
    sizes = sorted(all_results)
    stages = list(all_results[sizes[0]])
    print(f"\n<!-- benchmarks/scale.py, {time.strftime('%Y-%m-%d')} -->")
    print("| stage | " + " | ".join(f"{n:,} rows" for n in sizes) + " | growth per 10x rows |")
    print("|---|" + "---:|" * (len(sizes) + 1))
    for stage in stages:
        cells = []
        for n in sizes:
            t, m = all_results[n][stage]
            cells.append(
                f"{t:.0f}"
                if stage == "best iteration"
                else (f"{t:.1f} s" + ("" if math.isnan(m) else f", {m:,.0f} MiB"))
            )
        first, last = all_results[sizes[0]][stage][0], all_results[sizes[-1]][stage][0]
        decades = math.log10(sizes[-1] / sizes[0])
        growth = f"{(last / first) ** (1 / decades):.1f}x" if first > 0 and decades else "n/a"
        print(f"| {stage} | " + " | ".join(cells) + f" | {growth} |")
    if "train" not in stages:
        return
    train = [all_results[n]["train"][0] / all_results[n]["bare lightgbm.train"][0] for n in sizes]
    print("| train stage / bare LightGBM | " + " | ".join(f"{r:.2f}" for r in train) + " | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000,10000000", help="comma-separated")
    parser.add_argument("--chart", type=Path, help="write the log-log chart here (PNG)")
    parser.add_argument("--json", type=Path, help="also save the raw figures here")
    parser.add_argument("--replot", type=Path, help="only redraw the chart from saved figures")
    parser.add_argument(
        "--stages", help="comma-separated stages to run, in pipeline order (default: all)"
    )
    args = parser.parse_args()
    if args.replot:
        saved = json.loads(args.replot.read_text())
        figures = {int(k): {s: (v[0], v[1]) for s, v in r.items()} for k, r in saved.items()}
        table(figures)
        if args.chart:
            chart(figures, args.chart)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    all_results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rows in sizes:
            only = args.stages.split(",") if args.stages else None
            all_results[rows] = run_size(rows, Path(tmp), only)
            if args.json:  # saved after every size: a long run is never lost
                args.json.write_text(json.dumps({str(k): v for k, v in all_results.items()}))
    table(all_results)
    print(json.dumps({str(k): v for k, v in all_results.items()}), file=sys.stderr)
    if args.chart:
        chart(all_results, args.chart)
        print(f"\nchart: {args.chart}", file=sys.stderr)


if __name__ == "__main__":
    main()
