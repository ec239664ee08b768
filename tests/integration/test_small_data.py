"""A small data set of the survey kind (4,400 development rows, batches of 1,000), from the file
to monitoring, the way a new user goes: `tabml init-dataset`, the commands it prints, `dvc
repro`, then `tabml monitor` on a batch that has moved. Monitoring must see: the unshifted
batch raises at most one alert, the shifted one raises drift on the columns that moved."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import BIN, copy_project, git, tool_env
from tests.unit.test_profile import survey

pytestmark = pytest.mark.slow


def sh(repo: Path, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / tool), *args], cwd=repo, env=tool_env(), capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = copy_project(tmp_path_factory.mktemp("small") / "repo")
    ext = repo / "data/external"
    survey(4_400, seed=1).to_csv(ext / "fair.csv", index=False)
    batch = survey(1_000, seed=2).drop(columns=["high_income"])
    batch.to_csv(ext / "fair_batch.csv", index=False)
    shifted = survey(1_000, seed=3, shift=True).drop(columns=["high_income"])
    shifted.to_csv(ext / "fair_shifted.csv", index=False)
    # tracked with DVC, as the README says (an experiment's temporary copy gets them back)
    files = [f"data/external/{f}" for f in ("fair.csv", "fair_batch.csv", "fair_shifted.csv")]
    assert sh(repo, "dvc", "add", *files).returncode == 0
    git(repo, "add", *[f"{f}.dvc" for f in files])
    made = sh(
        repo, "tabml", "init-dataset", "data/external/fair.csv", "--target", "high_income",
        "--production", "fair_batch.csv",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    # the commands it prints, in order
    steps = [line.split() for line in made.stdout.splitlines()[1:]]
    assert steps[0] == ["tabml", "params"] and steps[-1] == ["dvc", "repro"]
    assert sh(repo, "tabml", "params").returncode == 0
    git(repo, "add", "conf", "params.yaml")
    git(repo, "commit", "-qm", "fair: dataset config")
    ran = sh(repo, "dvc", "repro")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return repo


def test_the_unshifted_batch_raises_at_most_one_alert(repo: Path) -> None:
    summary = json.loads((repo / "reports/monitoring/summary.json").read_text())
    assert summary["reference"]["chunk_rows"] == [733] * 5 + [735]  # no short chunk
    assert [c["rows"] for c in summary["chunks"]] == [1_000]  # the 267-row tail merged in
    assert summary["totals"]["alerts"]["total"] <= 1, summary["totals"]


def test_the_shifted_batch_raises_drift_on_the_shifted_columns(repo: Path) -> None:
    out = repo / "shifted"
    ran = sh(
        repo, "tabml", "monitor", "--package", "models/package",
        "--input", "data/external/fair_shifted.csv", "--output-dir", str(out),
    )  # fmt: skip
    assert ran.returncode == 10, ran.stderr  # alerts: the exit code a scheduled job acts on
    summary = json.loads((out / "summary.json").read_text())
    by_column = summary["totals"]["drift_alerts_by_column"]
    assert by_column["age"] >= 1 and by_column["hours"] >= 1, by_column
    # the columns that did not move stay quiet
    assert by_column["region"] == 0 and by_column["occupation"] == 0, by_column


def test_the_release_gates_are_the_data_sets_own(repo: Path) -> None:
    gate = sh(repo, "tabml", "gate")
    assert "conf/release/fair.yaml" not in gate.stderr or gate.returncode != 0
    assert "test rows" in gate.stdout and "➖ not measured" in gate.stdout  # no protected yet
    table = {
        line.split("|")[1].strip(): line for line in gate.stdout.splitlines() if line.count("|") > 4
    }
    assert "✅ pass" in table["test rows"], gate.stdout  # 660 test rows against 528


def test_a_failed_ingest_leaves_the_last_good_data_in_place(repo: Path, tmp_path: Path) -> None:
    import shutil

    work = tmp_path / "work"
    shutil.copytree(repo, work, symlinks=True)
    raw = sorted(p.name for p in (work / "data/raw").iterdir())
    dev = work / "data/external/fair.csv"
    frame = pd.read_csv(dev)
    frame["age"] = frame["age"].astype(object)
    frame.loc[3, "age"] = "lots"  # not a number
    frame.to_csv(dev, index=False)
    failed = sh(work, "dvc", "repro")
    assert failed.returncode != 0 and "schema check failed" in failed.stderr, failed.stderr
    assert sorted(p.name for p in (work / "data/raw").iterdir()) == raw
    status = sh(work, "dvc", "status").stdout
    assert "deleted" not in status and "data/external" in status, status


def test_an_experiment_compared_then_promoted_reproduces_its_metrics(
    repo: Path, tmp_path: Path
) -> None:
    """`dvc exp run`, `tabml exp compare`, `tabml promote`, then `dvc repro` on the promoted
    conf/ gives the experiment's own metrics."""
    import shutil

    work = tmp_path / "work"
    shutil.copytree(repo, work, symlinks=True)
    # --temp: the workspace keeps the baseline (a plain `dvc exp run` leaves the experiment in it)
    for name, leaves in (("nl15", 15), ("nl4", 4)):
        ran = sh(work, "dvc", "exp", "run", "--temp", "-S", f"model.num_leaves={leaves}",
                 "-n", name)  # fmt: skip
        assert ran.returncode == 0, ran.stderr
    compared = sh(work, "tabml", "exp", "compare", "nl15", "nl4", "--rounds", "5")
    assert compared.returncode == 0, compared.stderr
    board = json.loads((work / "reports/compare/leaderboard.json").read_text())
    assert [e["name"] for e in board] == ["workspace", "nl15", "nl4"]
    assert "| nl15 | 15 |" in compared.stdout and "tabml promote nl15" in compared.stdout
    # three packages of known size: each row's size is its model files' bytes on disk
    assert board[0]["size_bytes"] == sum(
        f.stat().st_size for f in (work / "models/package/model").rglob("*") if f.is_file()
    )
    assert len({e["size_bytes"] for e in board}) == 3  # 31, 15 and 4 leaves: three sizes
    # the Pareto mark follows from the figures in the table
    for e in board:
        dominated = any(
            o is not e and o["auc"]["test"][0] >= e["auc"]["test"][0]
            and o["p50_ms"] <= e["p50_ms"]
            and (o["auc"]["test"][0] > e["auc"]["test"][0] or o["p50_ms"] < e["p50_ms"])
            for o in board
        )  # fmt: skip
        assert e["pareto"] == (not dominated), e
    refs = git(work, "for-each-ref", "--format=%(refname)", "refs/exps").split()
    theirs = json.loads(
        git(work, "show", f"{next(r for r in refs if r.endswith('/nl15'))}:reports/metrics.json")
    )
    promoted = sh(work, "tabml", "promote", "nl15")
    assert promoted.returncode == 0, promoted.stderr
    assert "num_leaves: 15" in (work / "conf/model/lightgbm.yaml").read_text()
    git(work, "commit", "-qam", "promote nl15")
    again = sh(work, "dvc", "repro")
    assert again.returncode == 0, again.stderr
    ours = json.loads((work / "reports/metrics.json").read_text())
    assert ours["test"] == theirs["test"] and ours["threshold"] == theirs["threshold"]
