"""Benchmark: `tabml monitor` against NannyML's calculators called directly on the same frames.

Usage: uv run python benchmarks/monitor.py [--runs N] [--rows N]

Builds the default pipeline's package in a fresh clone (in one process, no DVC), then monitors
two batches: the default production batch (50,000 rows) and `--rows` rows (1,000,000 by
default) resampled from it with replacement, kept in time order, with new ids. For each it
times, in fresh processes:

- `tabml monitor`, exactly as a user runs it: verify the package, validate and score the batch,
  run NannyML, write summary.json, metrics.json, report.html and the PNG charts;
- NannyML directly: a Python process that reads the same frames (already scored, exactly as
  tabml hands them to NannyML) and calls the same NannyML calculators with the same settings,
  and nothing else;
- the bare computation of the same work: that, plus `Booster.predict` on the batch's encoded
  feature matrix, since `tabml monitor` must score the batch before NannyML can look at it.

Prints a Markdown table for docs/benchmarks.md: medians, the ratios (target <= 1.2) and the
peak resident memory of each process.
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
from _common import ENV, clone, median

# NannyML's calculators, called directly on frames that already carry score and prediction
BARE = """
import os, resource, sys
os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"
import pandas as pd
import nannyml as nml
from nannyml.thresholds import ConstantThreshold
ref = pd.read_parquet(sys.argv[1]); ana = pd.read_parquet(sys.argv[2])
if len(sys.argv) > 3:  # score the batch too, with LightGBM alone
    import lightgbm as lgb
    import numpy as np
    booster = lgb.Booster(model_file=sys.argv[3])
    booster.predict(np.load(sys.argv[4]), num_iteration=int(sys.argv[5]))
num = {numeric!r}; cat = {categorical!r}; feats = num + cat
kw = dict(timestamp_column_name={timestamp!r}, chunk_size={size})
nml.UnivariateDriftCalculator(column_names=feats + ["score"], treat_as_numerical=num + ["score"],
    treat_as_categorical=cat, continuous_methods=["jensen_shannon"],
    categorical_methods=["jensen_shannon"], **kw).fit(ref).calculate(ana)
nml.DataReconstructionDriftCalculator(column_names=feats, **kw).fit(ref).calculate(ana)
args = dict(metrics=["roc_auc", "f1"], y_pred_proba="score", y_pred="prediction",
    y_true={target!r}, problem_type="classification_binary", **kw)
nml.CBPE(**args).fit(ref).estimate(ana.drop(columns=[{target!r}]))
nml.PerformanceCalculator(**args).fit(ref).calculate(ana)
nml.MissingValuesCalculator(column_names=feats, **kw).fit(ref).calculate(ana)
nml.UnseenValuesCalculator(column_names=cat, threshold=ConstantThreshold(upper=0), **kw
    ).fit(ref).calculate(ana)
nml.NumericalRangeCalculator(column_names=num, threshold=ConstantThreshold(upper=0), **kw
    ).fit(ref).calculate(ana)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""

# `tabml monitor` in a process that reports its peak memory: its own, or its HTML-drawing
# process's if that was larger
CLI = """
import resource, sys
from tabml.cli import main
sys.argv = ["tabml", "monitor", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print(max(resource.getrusage(who).ru_maxrss
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)), file=sys.stderr)
"""


def run_timed(args: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one Python process."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", *args], cwd=cwd, env=ENV, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"benchmark step failed:\n{proc.stderr[-3000:]}")
    return elapsed, int(proc.stderr.strip().splitlines()[-1]) / 1024


def build_package(repo: Path) -> None:
    code = (
        "import os, sys\n"
        "os.environ.setdefault('NML_DISABLE_USAGE_LOGGING', '1')\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
        "from pathlib import Path\n"
        "from _common import run_stages_in_process\n"
        f"run_stages_in_process(Path({str(repo)!r}), Path({str(repo / 'params.yaml')!r}))\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=repo, env=ENV, check=True, capture_output=True)


def resample(repo: Path, rows: int, out: Path) -> tuple[Path, Path]:
    """`rows` rows drawn with replacement from the production batch, in time order."""
    import numpy as np
    import pandas as pd

    batch = pd.read_parquet(repo / "data/raw/production.parquet")
    labels = pd.read_parquet(repo / "data/raw/production_labels.parquet")
    batch = batch.merge(labels, on="id")
    rng = np.random.default_rng(0)
    big = batch.iloc[np.sort(rng.integers(0, len(batch), rows))].reset_index(drop=True)
    big["id"] = np.arange(rows)
    features, target = out / f"batch_{rows}.parquet", out / f"labels_{rows}.parquet"
    big.drop(columns=["repaid"]).to_parquet(features)
    big[["id", "repaid"]].to_parquet(target)
    return features, target


def scored_frames(repo: Path, batch: Path, labels: Path, out: Path) -> tuple[Path, Path, Path]:
    """The exact frames tabml hands NannyML, and the encoded batch, saved for the bare runs."""
    import numpy as np
    import pandas as pd

    from tabml.core import io
    from tabml.core.schema import validate
    from tabml.learning import package as pkg
    from tabml.monitoring import monitor as mon

    loaded = pkg.load(repo / "models/package")
    typed = validate(io.read_table(batch), loaded.schema, "production", str(batch)).frame
    lab = validate(pd.read_parquet(labels), loaded.schema, "labels", str(labels)).frame
    ana = mon.analysis_frame(typed, loaded.model.predict(typed), loaded.schema, lab)
    ana = mon.with_predictions(ana, loaded.threshold)
    ref = mon.with_predictions(io.read_parquet(loaded.reference), loaded.threshold)
    from tabml.adapters.nannyml_adapter import _plain

    ref_path, ana_path = out / f"ref_{batch.stem}.parquet", out / f"ana_{batch.stem}.parquet"
    _plain(ref).to_parquet(ref_path)
    _plain(ana).to_parquet(ana_path)
    matrix = out / f"x_{batch.stem}.npy"
    np.save(matrix, loaded.model.preprocessor.transform(typed, "codes"))
    return ref_path, ana_path, matrix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="repetitions (median is quoted)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the large batch")
    args = parser.parse_args()
    from tabml.learning import package as pkg

    with tempfile.TemporaryDirectory() as tmp:
        repo = clone(Path(tmp) / "repo")
        print("building the default package (in-process pipeline)...", file=sys.stderr)
        build_package(repo)
        loaded = pkg.load(repo / "models/package")
        schema = loaded.schema
        size = json.loads((repo / "models/package/metadata.json").read_text())["params"]["monitor"][
            "chunking"
        ]["rows"]
        bare = BARE.format(
            numeric=[c for c, f in schema.features.items() if f.kind == "numeric"],
            categorical=[c for c, f in schema.features.items() if f.kind != "numeric"],
            timestamp=schema.timestamp,
            size=size,
            target=schema.target.column,
        )
        out = Path(tmp)
        batches = [
            (
                "default batch",
                repo / "data/raw/production.parquet",
                repo / "data/raw/production_labels.parquet",
            ),
        ]
        print(f"resampling {args.rows:,} rows...", file=sys.stderr)
        big, big_labels = resample(repo, args.rows, out)
        batches.append((f"{args.rows:,} resampled rows", big, big_labels))
        rows = []
        for name, batch, labels in batches:
            ref_path, ana_path, matrix = scored_frames(repo, batch, labels, out)
            scoring = [
                str(repo / "models/package/model/model.txt"),
                str(matrix),
                str(loaded.model.best_iteration),
            ]
            tabml_runs, bare_runs, scored_runs, tabml_mem, bare_mem = [], [], [], [], []
            for i in range(args.runs):
                print(f"{name}: run {i + 1}/{args.runs}", file=sys.stderr)
                t, m = run_timed(
                    [
                        CLI,
                        "--package",
                        str(repo / "models/package"),
                        "--input",
                        str(batch),
                        "--labels",
                        str(labels),
                        "--output-dir",
                        str(out / "monitoring"),
                        "--no-fail-on-alerts",
                    ],
                    repo,
                )
                tabml_runs.append(t)
                tabml_mem.append(m)
                t, m = run_timed([bare, str(ref_path), str(ana_path)], repo)
                bare_runs.append(t)
                t, m2 = run_timed([bare, str(ref_path), str(ana_path), *scoring], repo)
                scored_runs.append(t)
                bare_mem.append(max(m, m2))
            rows.append((name, tabml_runs, bare_runs, scored_runs, max(tabml_mem), max(bare_mem)))
    print(f"\n<!-- benchmarks/monitor.py, {time.strftime('%Y-%m-%d')}, runs={args.runs} -->")
    print(
        "| batch | `tabml monitor` | NannyML directly | NannyML + `Booster.predict` "
        "| ratio to NannyML | **ratio to the bare work** (target <= 1.2) | peak RSS tabml / bare |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")

    def cell(runs: list[float]) -> str:
        return f"{median(runs):.2f} s ({', '.join(f'{x:.2f}' for x in runs)})"

    for name, t, b, sc, tm, bm in rows:
        print(
            f"| {name} | {cell(t)} | {cell(b)} | {cell(sc)} | {median(t) / median(b):.2f} "
            f"| **{median(t) / median(sc):.2f}** | {tm:.0f} / {bm:.0f} MiB |"
        )


if __name__ == "__main__":
    main()
