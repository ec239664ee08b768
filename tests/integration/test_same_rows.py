"""Champion against challenger on the same rows, in the pull-request report (real DVC runs).

The base revision's package (the champion) and the workspace's (the challenger) are both
scored on the workspace's test split and labelled production batch, and the verdict is the
paired comparison's (DeLong's test), so that a change of the data is judged fairly. The
retraining case (appended rows move the test split) is the retrain workflow's report in
`test_workflow_runs.py::test_retraining_opens_a_pull_request_a_person_merges_with_its_report`.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import git, run_cli, run_dvc


@pytest.fixture
def repo(project: Path, tmp_path: Path) -> Path:
    """A copy of the built project (with its DVC cache and run-cache), the run committed."""
    repo = tmp_path / "repo"
    shutil.copytree(project, repo, symlinks=True)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", "the champion's run")
    return repo


def report(repo: Path, base: str = "HEAD") -> str:
    out = repo / "reports/pull-request/report.md"
    proc = run_cli("report", "--base", base, "--output", str(out), cwd=repo)
    assert proc.returncode == 0, proc.stderr
    return out.read_text()


def ci(text: str, rows: str) -> tuple[float, float]:
    line = next(line for line in text.splitlines() if line.startswith(f"| {rows}"))
    low, high = re.search(r"\| ([+-][\d.]+) to ([+-][\d.]+) \|", line).groups()  # type: ignore[union-attr]
    return float(low), float(high)


def test_a_no_op_change_is_not_distinguishable(repo: Path) -> None:
    text = report(repo)
    assert text.startswith("## ⚪ Not distinguishable on the same rows")
    assert "### Metrics of each run, on its own test split" in text
    assert ci(text, "this change's test split") == (0.0, 0.0)
    # the same package twice, timed side by side: a ratio near 1 whose interval holds 1
    line = next(x for x in text.splitlines() if "Response time, one record" in x)
    ratio, low, high = (float(v) for v in re.search(
        r"takes ×([\d.]+) the base's time \(95% CI ×([\d.]+) to ×([\d.]+)", line).groups())  # type: ignore[union-attr]  # fmt: skip
    assert 0.7 < ratio < 1.4 and low <= ratio <= high, line
    assert "🔴" not in line


def test_lightgbm_against_the_baseline_is_better_with_an_interval_above_zero(
    repo: Path,
) -> None:
    run_cli("params", "model=logreg", cwd=repo, check=True)
    run_dvc("repro", cwd=repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "the baseline as champion")
    run_cli("params", cwd=repo, check=True)
    proc = run_dvc("repro", cwd=repo)
    # LightGBM again: every stage after check comes back from the run-cache, none runs
    for stage in ("train", "evaluate", "package", "monitor"):
        assert f"Stage '{stage}' is cached - skipping run" in proc.stdout, proc.stdout
    text = report(repo)
    assert text.startswith("## 🟢 Better on the same rows"), text[:300]
    low, _ = ci(text, "this change's test split")
    assert low > 0
    low, _ = ci(text, "the labelled production batch")
    assert low > 0
    # LightGBM's trees against logistic regression's dot product: slower, and measured so
    line = next(x for x in text.splitlines() if "Response time, one record" in x)
    assert "interleaved rounds" in line


def test_without_the_champions_package_the_report_says_so_and_falls_back(repo: Path) -> None:
    """No cache, and a remote the machine cannot reach (no credentials): one line says why,
    and the per-run verdict is marked as such."""
    shutil.move(repo / ".dvc/cache", repo / "cache-elsewhere")
    text = report(repo)
    title, _, why = text.split("\n")[:3]
    assert title.endswith(", not on the same rows"), title
    assert why.startswith("_The base model could not be scored on this change's rows (")
    assert "neither in the local DVC cache nor readable from the remote" in why
    assert "### The base model against this change" not in text
