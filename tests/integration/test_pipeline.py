"""The real pipeline, run by DVC in a throw-away copy of the project on the bundled data."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import yaml

from tabml.core import catalog
from tests.conftest import BIN, run_cli, run_dvc, tool_env
from tests.integration.conftest import ran


def test_pipeline_writes_every_artefact(project: Path) -> None:
    for path in [
        "data/raw/development.parquet",
        "data/interim/clean.parquet",
        "data/interim/rejected.parquet",
        "data/processed/test.parquet",
        "models/package/MANIFEST.sha256",
        "models/package/MODEL_CARD.md",
        "models/package/schema.json",
        "reports/plots/roc.json",
        "reports/train/plots/metrics/valid/auc.tsv",
    ]:
        assert (project / path).is_file(), path
    # each folder dvc.yaml passes holds exactly the files the catalog names
    for folder, names in {
        "data/raw": catalog.Raw,
        "data/interim": catalog.Interim,
        "data/processed": catalog.Splits,
        "models/model": catalog.Model,
        "data/predictions": catalog.Predictions,
        "reports/plots": catalog.Plots,
        "models/package": catalog.Package,
    }.items():
        written = {p.name for p in (project / folder).iterdir()}
        assert written == set(catalog.names(names).values()), folder
    monitoring = {p.name for p in (project / "reports/monitoring").iterdir()}
    assert set(catalog.names(catalog.Monitoring).values()) <= monitoring
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert metrics["test"]["roc_auc"] > 0.95 and metrics["production"]["rows"] == 50_000
    quality = json.loads((project / "reports/data_quality.json").read_text())
    dev = quality["development"]
    assert dev["rows_read"] == dev["rows_kept"] + sum(dev["rejected_by_reason"].values())
    assert quality["production"]["unseen_categories"]["size_of_downpayment"]["values"] == {
        "50%": 700
    }


def test_metadata_records_the_data_hashes_dvc_records(project: Path) -> None:
    meta = json.loads((project / "models/package/metadata.json").read_text())
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    deps = {d["path"]: d["md5"] for d in lock["stages"]["package"]["deps"]}
    for path, md5 in meta["data"].items():
        assert deps[path] == md5
    assert len(meta["git_commit"]) == 40 and meta["git_dirty"] is False


def test_a_package_names_no_tabml_module_so_it_outlives_a_change_of_layout(
    project: Path,
) -> None:
    """A package holds a LightGBM model file, JSON and Parquet: no pickle and no Python import
    path. So a package built before tabml's modules moved (issue 30: `tabml.model` became
    `tabml.learning.model`) loads and scores after it; a module path stored in any of its
    files would tie the package to one layout."""
    import re

    folder = project / "models/package"
    names = re.compile(rb"tabml\.(?:core|adapters|governance|data|monitoring|learning|service|"
                       rb"compute|reporting|stages|cli|model|features|io|schema)\b")  # fmt: skip
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        assert not names.search(path.read_bytes()), f"{path.relative_to(folder)} names a module"


def test_committing_the_run_leaves_a_rebuilt_package_identical(project: Path) -> None:
    """A fresh clone of the recorded run rebuilds the same package bytes (dvc.lock agrees)."""
    from tests.conftest import git

    before = (project / "models/package/MANIFEST.sha256").read_bytes()
    git(project, "add", "-A")
    git(project, "commit", "-q", "--allow-empty", "-m", "record the run: dvc.lock and reports")
    run_dvc("repro", "-f", "-s", "package", cwd=project)
    assert (project / "models/package/MANIFEST.sha256").read_bytes() == before


def test_split_is_time_ordered_and_disjoint(project: Path) -> None:
    parts = {
        n: pd.read_parquet(project / f"data/processed/{n}.parquet")
        for n in ("train", "valid", "test")
    }
    assert parts["test"]["timestamp"].min() > parts["train"]["timestamp"].max()
    ids = [set(p["id"]) for p in parts.values()]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])


def test_predict_reproduces_evaluate_scores(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    run_cli(
        "predict",
        "--package",
        "models/package",
        "--input",
        "data/processed/test.parquet",
        "--output",
        str(out),
        cwd=project,
        check=True,
    )
    scored = pd.read_csv(out)
    expected = pd.read_parquet(project / "data/predictions/test.parquet")
    pd.testing.assert_series_equal(scored["id"], expected["id"], check_dtype=False)
    assert (scored["score"] - expected["score"]).abs().max() < 1e-12
    assert (scored["label"] == expected["label"]).all()


def test_predict_refuses_a_tampered_package(project: Path, tmp_path: Path) -> None:
    pkg = tmp_path / "package"
    shutil.copytree(project / "models/package", pkg)
    card = pkg / "MODEL_CARD.md"
    card.write_text(card.read_text() + "\nextra")
    proc = run_cli(
        "predict",
        "--package",
        str(pkg),
        "--input",
        "data/processed/test.parquet",
        "--output",
        str(tmp_path / "x.csv"),
        cwd=project,
    )
    assert proc.returncode != 0
    assert "MODEL_CARD.md" in proc.stderr and "checksum mismatch" in proc.stderr
    assert not (tmp_path / "x.csv").exists()


def test_predict_names_a_missing_column(project: Path, tmp_path: Path) -> None:
    frame = pd.read_parquet(project / "data/processed/test.parquet").drop(columns=["car_value"])
    frame.to_csv(tmp_path / "in.csv", index=False)
    proc = run_cli(
        "predict",
        "--package",
        "models/package",
        "--input",
        str(tmp_path / "in.csv"),
        "--output",
        str(tmp_path / "x.csv"),
        cwd=project,
    )
    assert proc.returncode != 0 and "'car_value': missing column" in proc.stderr


def test_noop_repro_runs_nothing_and_keeps_the_lock(project: Path) -> None:
    before = (project / "dvc.lock").read_bytes()
    proc = run_dvc("repro", cwd=project)
    assert ran(proc.stdout) == []
    assert (project / "dvc.lock").read_bytes() == before


def test_forced_rerun_is_byte_identical(project: Path) -> None:
    files = [
        "models/model/model.txt",
        "models/model/model.json",
        "reports/metrics.json",
        "reports/slices.json",
        "reports/train/metrics.json",
        "reports/data_quality.json",
        "models/reference.parquet",
        "models/valid_scores.parquet",
        "reports/monitoring/summary.json",
        "reports/monitoring/metrics.json",
        "reports/monitoring/drift_alerts.png",
        "reports/monitoring/report.html",
    ]
    before = {f: (project / f).read_bytes() for f in files}
    run_dvc("repro", "-f", cwd=project)
    for f in files:
        assert (project / f).read_bytes() == before[f], f"{f} changed between identical runs"


def _snapshot(project: Path) -> dict[Path, bytes]:
    """What `dvc checkout` cannot bring back: params.yaml, dvc.lock and reports/ (the
    uncached outputs live there)."""
    files = [project / "params.yaml", project / "dvc.lock"]
    files += [p for p in (project / "reports").rglob("*") if p.is_file()]
    return {p: p.read_bytes() for p in files}


def _restore(project: Path, snapshot: dict[Path, bytes]) -> None:
    """The project as it was at `snapshot`, without running a stage again: the small files
    written back, the cached outputs checked out from DVC's cache, and `dvc status` clean."""
    for p in (project / "reports").rglob("*"):
        if p.is_file() and p not in snapshot:
            p.unlink()
    for p, data in snapshot.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    run_dvc("checkout", "--force", cwd=project)
    status = run_dvc("status", "--json", cwd=project).stdout
    assert json.loads(status) == {}, status


def test_model_param_change_reruns_train_onwards_only(project: Path) -> None:
    params = project / "params.yaml"
    before = _snapshot(project)
    try:
        # (a faster learning rate retrains in the least time: about 100 rounds, not 500)
        params.write_text(params.read_text().replace("learning_rate: 0.02", "learning_rate: 0.1"))
        proc = run_dvc("repro", cwd=project)
        assert ran(proc.stdout) == ["train", "evaluate", "package", "monitor"]
    finally:
        _restore(project, before)


def test_a_bad_param_stops_the_run_before_any_output_is_deleted(project: Path) -> None:
    """What `dvc exp run -S model.num_leaves=1000000000` does: params.yaml changes, then
    `dvc repro`. The check stage refuses the value, with LightGBM's limit, before DVC deletes
    train's outputs (it deletes them before running a stage)."""
    params = project / "params.yaml"
    original = params.read_text()
    outputs = ["models/model/model.txt", "reports/train/metrics.json", "models/package"]
    try:
        params.write_text(original.replace("num_leaves: 31", "num_leaves: 1000000000"))
        proc = run_dvc("repro", cwd=project, check=False)
        assert proc.returncode != 0
        assert "num_leaves" in proc.stderr and "131072" in proc.stderr, proc.stderr
        assert ran(proc.stdout) == []
        assert all((project / f).exists() for f in outputs)
    finally:
        params.write_text(original)
    assert ran(run_dvc("repro", cwd=project).stdout) == []  # nothing to redo


def test_killed_stage_leaves_no_partial_output_and_repro_recovers(
    project: Path, tmp_path: Path
) -> None:
    from tabml.learning.model import load

    log = tmp_path / "dvc.log"
    env = tool_env()
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [str(BIN / "dvc"), "repro", "-f", "-s", "train"],
            cwd=project,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "fitting" not in log.read_text():
            time.sleep(0.05)
        time.sleep(1.0)  # mid-training
        os.killpg(proc.pid, signal.SIGKILL)  # dvc and the stage together, no clean-up
        proc.wait()
    assert "fitting" in log.read_text() and "wrote models/model" not in log.read_text()
    # whatever is at the output path is absent or a complete, loadable model
    if (project / "models/model").exists():
        load(project / "models/model")
    rerun = run_dvc("repro", cwd=project)
    assert "train" in ran(rerun.stdout)
    load(project / "models/model")
    assert "up to date" in run_dvc("status", cwd=project).stdout
