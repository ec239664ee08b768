"""`model=lightgbm_dask`: LightGBM's Dask interface on a 2-worker LocalCluster."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import ROOT, run_cli


def test_dask_training_matches_single_machine_and_saves_the_same_format(
    project: Path, tmp_path: Path
) -> None:
    from tabml.evaluate import roc_auc
    from tabml.model import load

    params = tmp_path / "params.yaml"
    run_cli(
        "params",
        "--output",
        str(params),
        "--config-dir",
        str(ROOT / "conf"),
        "model=lightgbm_dask",
        "model.cluster.n_workers=2",
        check=True,
        cwd=project,
    )
    proc = run_cli(
        "train",
        "--params",
        str(params),
        "--input-dir",
        str(project / "data/processed"),
        "--model-dir",
        str(tmp_path / "model"),
        "--live-dir",
        str(tmp_path / "live"),
        "--reference",
        str(tmp_path / "reference.parquet"),
        "--valid-scores",
        str(tmp_path / "valid_scores.parquet"),
        cwd=project,
    )
    assert proc.returncode == 0, proc.stderr
    assert "local Dask cluster, 2 workers" in proc.stderr
    # the cluster that trained it is recorded: another cluster gives another model
    assert "2 Dask workers, 2 threads" in proc.stderr
    summary = json.loads((tmp_path / "live/metrics.json").read_text())
    assert (summary["dask_workers"], summary["dask_threads"]) == (2, 2)
    # the same files as single-machine training: package, predict and monitor work unchanged
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["model.json", "model.txt"]
    model = load(tmp_path / "model")
    test = pd.read_parquet(project / "data/processed/test.parquet")
    auc = roc_auc(test["repaid"].to_numpy("float64"), model.predict(test))
    single = json.loads((project / "reports/metrics.json").read_text())["test"]["roc_auc"]
    assert abs(auc - single) <= 0.005, (auc, single)
    assert (tmp_path / "live/metrics.json").is_file()
    assert len(pd.read_parquet(tmp_path / "reference.parquet")) == 50_000
    # no refit on a cluster: the threshold scores are the model's own on valid
    held_out = pd.read_parquet(tmp_path / "valid_scores.parquet")
    valid = pd.read_parquet(project / "data/processed/valid.parquet")
    assert held_out["id"].tolist() == valid["id"].tolist()
    assert held_out["score"].tolist() == pytest.approx(model.predict(valid).tolist(), abs=1e-12)
