"""The pull-request workflow, end to end, as a fork's pull request sees it: its steps run
(tests/harness.py) in a temporary clone on a branch that changes a model parameter, with no
secrets, and the report it writes names the parameter change and the metric delta against the
base branch; no comment is attempted (a fork's token is read-only), the job summary has it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.conftest import BIN, git, run_dvc, tool_env
from tests.harness import Runner


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
    # (a faster learning rate: the change that retrains in the least time, about 100 rounds)
    git(work, "checkout", "-q", "-b", "faster-learning")
    conf = work / "conf/model/lightgbm.yaml"
    conf.write_text(conf.read_text().replace("learning_rate: 0.02", "learning_rate: 0.1"))
    subprocess.run([str(BIN / "tabml"), "params"], cwd=work, check=True, capture_output=True)
    assert yaml.safe_load((work / "params.yaml").read_text())["model"]["learning_rate"] == 0.1
    git(work, "commit", "-qam", "faster learning")

    runner = Runner(work, tmp_path / "harness", tool_env())
    event = {
        "repository": "acme/tabml", "event_name": "pull_request", "base_ref": base_branch,
        "token": "gh-token", "actor": "someone",
        "event": {"pull_request": {"number": 3, "head": {"repo": {"full_name": "someone/tabml"}},
                                   "user": {"login": "someone"}}},
    }  # fmt: skip
    job = runner.run(work / ".github/workflows/pr-report.yml", "report", event)
    assert job.failed is None, runner.steps_log()
    assert "bundled data" in runner.steps_log()  # a fork's pull request: no remote
    assert runner.calls("cml") == [], "a fork's token cannot comment"
    assert "comes from a fork or from Dependabot" in job.summary

    out = work / "reports/pull-request"
    report = (out / "report.md").read_text()
    assert (out / "monitoring.html").is_file()
    # the parameter change, base value then new value
    assert re.search(r"\| `model\.learning_rate` \| 0\.0200 \| 0\.1000 \|", report)
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
    # the charts are Mermaid blocks in the text: nothing to upload; the PNGs are the artifact's
    assert "```mermaid" in report and not re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert (runner.artifacts / "pr-report/images/roc.png").is_file()
    assert report in job.summary
    assert len(report) < 65_536
