"""Benchmark: model quality on the bundled production batches, against the shipped predictions.

Usage: uv run python benchmarks/quality.py [--datasets car_loan employment] [--set KEY=VALUE ...]

Runs the pipeline's stages in one process for each dataset (default config, with the `--set`
Hydra overrides, e.g. the settings `tabml tune` proposed) and prints production ROC AUC next
to that of the predictions that ship with the data; and for employment, per year of its
production batch (2016, 2017, 2018), ours against the shipped predictions.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, clone, run_stages_in_process

SHIPPED = {  # (analysis file, its score column, labels file, label column)
    "car_loan": (
        "synthetic_car_loan_dq_analysis.csv",
        "y_pred_proba",
        "synthetic_car_loan_analysis_target.csv",
        "repaid",
    ),
    "employment": (
        "employment_MA_analysis.pq",
        "predicted_probability",
        "employment_MA_analysis_target.pq",
        "employed",
    ),
}
TARGETS = {"car_loan": 0.964, "employment": 0.905}


def shipped_auc(name: str) -> float:
    import pandas as pd

    from tabml.data.datasets import bundled_dir
    from tabml.learning.metrics import roc_auc

    feats, score, labels, target = SHIPPED[name]
    read = pd.read_csv if feats.endswith(".csv") else pd.read_parquet
    joined = read(bundled_dir() / feats).merge(read(bundled_dir() / labels), on="id")
    return roc_auc(joined[target].to_numpy(float), joined[score].to_numpy(float))


def per_year(repo: Path) -> list[tuple[int, float, float, int]]:
    """Employment's production batch by year: our package's ROC AUC and the shipped one's."""
    import pandas as pd

    from tabml.core.schema import validate
    from tabml.data.datasets import bundled_dir
    from tabml.learning import package as pkg
    from tabml.learning.metrics import roc_auc

    feats, score, labels, target = SHIPPED["employment"]
    batch = pd.read_parquet(bundled_dir() / feats).merge(
        pd.read_parquet(bundled_dir() / labels), on="id"
    )
    loaded = pkg.load(repo / "models/package")
    typed = validate(batch.drop(columns=[target]), loaded.schema, "production", feats).frame
    batch = batch.assign(ours=loaded.model.predict(typed))
    out = []
    for year, rows in batch.groupby("year"):
        y = rows[target].to_numpy(float)
        out.append((int(str(year)), roc_auc(y, rows["ours"].to_numpy(float)),
                    roc_auc(y, rows[score].to_numpy(float)), len(rows)))  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(SHIPPED))
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Hydra override for every dataset (e.g. model.num_leaves=63)",
    )
    args = parser.parse_args()
    years: list[tuple[int, float, float, int]] = []
    from tabml.adapters.dvc_adapter import compose_params

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        repo = clone(Path(tmp) / "repo")
        for name in args.datasets:
            print(f"running {name}...", file=sys.stderr)
            params = repo / f"params-{name}.yaml"
            compose_params(ROOT / "conf", params, [f"dataset={name}", *args.set])
            run_stages_in_process(repo, params)
            if name == "employment":
                years = per_year(repo)
            m = json.loads((repo / "reports/metrics.json").read_text())
            rows.append(
                (
                    name,
                    m["test"]["roc_auc"],
                    m["production"]["roc_auc"],
                    m["production"]["rows"],
                    shipped_auc(name),
                )
            )
    print(
        "| dataset | test ROC AUC | production ROC AUC | production rows | shipped predictions "
        "| target |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, test, prod, n, shipped in rows:
        ok = "met" if prod >= TARGETS[name] else "missed"
        print(
            f"| {name} | {test:.4f} | {prod:.4f} | {n:,} | {shipped:.4f} | "
            f">= {TARGETS[name]} ({ok}) |"
        )
    if years:
        print("\n| employment, production year | rows | ours | shipped | ours better |")
        print("|---:|---:|---:|---:|---|")
        for year, ours, theirs, n in years:
            print(
                f"| {year} | {n:,} | {ours:.4f} | {theirs:.4f} | "
                f"{'yes' if ours > theirs else 'no'} |"
            )


if __name__ == "__main__":
    main()
