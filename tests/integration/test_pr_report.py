"""The pull-request workflow, end to end: its shell steps (all but the final `cml` call) run in a
temporary clone on a branch that changes a model parameter, and the report it writes names the
parameter change and the metric delta against the base branch.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import BIN, ROOT, git, run_dvc
from tests.contracts.test_workflows import load

EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")


def uv_dir() -> str:
    """Where the uv that made this environment lives (CI: on PATH; here: .tools/bin)."""
    found = shutil.which("uv") or str(ROOT / ".tools/bin/uv")
    assert Path(found).is_file(), "no uv: run 'make sync' first"
    return str(Path(found).parent)


def evaluate(value: str, base_branch: str) -> str:
    """The few expressions the workflow may use, as a pull request from a fork sees them."""

    def one(match: re.Match[str]) -> str:
        expr = match.group(1)
        if expr == "github.base_ref":
            return base_branch
        if expr.startswith("secrets."):
            return ""  # forks get no secrets: the bundled-data branch
        raise AssertionError(f"the test does not know the expression {expr!r}")

    return EXPRESSION.sub(one, str(value))


def shell_steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    (job,) = workflow["jobs"].values()
    return [s for s in job["steps"] if "run" in s and "cml " not in s["run"]]


def test_pr_report_steps_name_the_param_change_and_the_metric_delta(
    project: Path, tmp_path: Path
) -> None:
    base_branch = git(project, "rev-parse", "--abbrev-ref", "HEAD").strip()
    # the base branch: the project with its pipeline run recorded (dvc.lock and small reports)
    base = tmp_path / "base"
    git(tmp_path, "clone", "-q", str(project), str(base))
    shutil.copy2(project / "dvc.lock", base / "dvc.lock")
    shutil.copytree(project / "reports", base / "reports", dirs_exist_ok=True)
    git(base, "add", "-A")
    git(base, "commit", "-q", "--allow-empty", "-m", "record the run")
    base_metrics = json.loads((base / "reports/metrics.json").read_text())

    # the pull request: a branch of a clone of it that changes one model parameter
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(base), str(work))
    run_dvc("cache", "dir", "--local", str(project / ".dvc/cache"), cwd=work)
    git(work, "checkout", "-q", "-b", "fewer-leaves")
    conf = work / "conf/model/lightgbm.yaml"
    conf.write_text(conf.read_text().replace("num_leaves: 31", "num_leaves: 15"))
    subprocess.run([str(BIN / "tabml"), "params"], cwd=work, check=True, capture_output=True)
    assert yaml.safe_load((work / "params.yaml").read_text())["model"]["num_leaves"] == 15
    git(work, "commit", "-qam", "fewer leaves")

    workflow = load(work / ".github/workflows/pr-report.yml")
    env = {
        **os.environ,
        "PATH": os.pathsep.join([uv_dir(), os.environ["PATH"]]),
        **{k: evaluate(v, base_branch) for k, v in workflow["env"].items()},
    }
    env.pop("VIRTUAL_ENV", None)
    for step in shell_steps(workflow):
        step_env = {k: evaluate(v, base_branch) for k, v in step.get("env", {}).items()}
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=work,
            env={**env, **step_env},
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, f"{step.get('name')}:\n{proc.stdout}\n{proc.stderr}"
        if step.get("name") == "Reproduce the pipeline":
            assert "bundled data" in proc.stdout  # a fork's pull request: no remote

    out = work / "reports/pull-request"
    report = (out / "report.md").read_text()
    assert (out / "monitoring.html").is_file()
    # the parameter change, base value then new value
    assert re.search(r"\| `model\.num_leaves` \| 31 \| 15 \|", report)
    # the metric delta against the base, with its verdict in the headline
    new_metrics = json.loads((work / "reports/metrics.json").read_text())
    before, after = base_metrics["test"]["roc_auc"], new_metrics["test"]["roc_auc"]
    assert before != after
    row = re.search(r"^\| `test\.roc_auc` \| (.*)$", report, re.MULTILINE)
    assert row and f"{after - before:+.4f}" in row.group(1)
    # only a param changed, so the split is the same: scored on the same rows, the base model
    # gets exactly the base run's figure
    headline = report.splitlines()[0]
    assert f"on the same rows: test ROC AUC {after:.4f} against the base model's {before:.4f}" in (
        headline
    ), headline
    # every image it links is there, relative to the report
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report):
        assert (out / link).is_file(), link
    assert len(report) < 65_536
