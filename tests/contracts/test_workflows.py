"""The GitHub workflows are hardened, and stay so: these checks run offline on every `make test`."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import BIN, ROOT, tool_env

WORKFLOWS = sorted((ROOT / ".github/workflows").glob("*.yml"))
TELEMETRY = {"NML_DISABLE_USAGE_LOGGING": "1", "ITERATIVE_DO_NOT_TRACK": "1"}
PINNED = re.compile(r"^\s*(?:-\s*)?uses:\s*[\w.-]+/[\w./-]+@[0-9a-f]{40}\s+#\s*v\d+(\.\d+)*\s*$")


def load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the `on:` key as True
    if True in data:
        data["on"] = data.pop(True)
    return data


def steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    return [s for job in workflow["jobs"].values() for s in job.get("steps", [])]


def test_there_are_workflows() -> None:
    names = {p.name for p in WORKFLOWS}
    assert {"ci.yml", "pr-report.yml", "release.yml", "monitor.yml", "retrain.yml"} <= names
    assert "deploy.yml" in names


def test_zizmor_offline_reports_no_finding() -> None:
    proc = subprocess.run(
        [str(BIN / "zizmor"), "--offline", "--persona=pedantic", str(ROOT / ".github/workflows")],
        capture_output=True,
        text=True,
        env=tool_env(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No findings to report" in proc.stdout


def test_every_workflow_passes_the_schema_check() -> None:
    proc = subprocess.run(
        [
            str(BIN / "check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            *map(str, WORKFLOWS),
        ],
        capture_output=True,
        text=True,
        env=tool_env(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_with_its_release(path: Path) -> None:
    lines = [line for line in path.read_text().splitlines() if re.match(r"^\s*(-\s*)?uses:", line)]
    assert lines
    loose = [line.strip() for line in lines if not PINNED.match(line)]
    assert not loose, f"not pinned to a full SHA with '# vX.Y.Z': {loose}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_permissions_are_read_only_at_the_top(path: Path) -> None:
    workflow = load(path)
    assert workflow["permissions"] == {"contents": "read"}
    for name, job in workflow["jobs"].items():
        granted = job.get("permissions", {})
        writes = {k for k, v in granted.items() if v == "write"}
        scripts = "\n".join(s.get("run", "") for s in job.get("steps", []))
        needed = set()
        if "cml comment" in scripts or ("cml " in scripts and "comment update" in scripts):
            needed.add("pull-requests")
        if "gh release create" in scripts:
            needed.add("contents")
        if "cml pr create" in scripts:  # pushes a branch and opens a pull request
            needed |= {"contents", "pull-requests"}
        if "gh issue" in scripts:
            needed.add("issues")
        if "gh pr create" in scripts:  # pushes a branch and opens a pull request
            needed |= {"contents", "pull-requests"}
        uses = [s.get("uses", "") for s in job.get("steps", [])]
        if any(u.startswith("docker/build-push-action@") for u in uses):
            needed.add("packages")  # pushes the image
        if any(u.startswith("actions/attest-build-provenance@") for u in uses):
            # signs, stores and records the attestation against the image
            needed |= {"id-token", "attestations", "artifact-metadata"}
        if "gh workflow run" in scripts:  # dispatches CI on a branch it opened
            needed.add("actions")
        if any(u.startswith("aws-actions/configure-aws-credentials@") for u in uses):
            needed.add("id-token")  # the OIDC role for the DVC remote
        assert writes == needed, f"{name} is granted {granted} but needs write on {needed}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_privileged_triggers(path: Path) -> None:
    triggers = load(path)["on"]
    names = {triggers} if isinstance(triggers, str) else set(triggers)
    assert not names & {"pull_request_target", "workflow_run"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_expression_inside_a_run_script(path: Path) -> None:
    """Untrusted input (branch names, titles) reaches scripts only through env:."""
    for step in steps(load(path)):
        assert "${{" not in step.get("run", ""), step.get("name")


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_checkout_keeps_no_credentials(path: Path) -> None:
    checkouts = [s for s in steps(load(path)) if s.get("uses", "").startswith("actions/checkout@")]
    assert checkouts
    assert all(s.get("with", {}).get("persist-credentials") is False for s in checkouts)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_job_has_a_timeout_and_superseded_runs_cancel(path: Path) -> None:
    workflow = load(path)
    assert all(isinstance(j.get("timeout-minutes"), int) for j in workflow["jobs"].values())
    if path.name == "retrain.yml":
        # a workflow-level group is taken before the job's `if:`: any label on any issue would
        # cancel a retraining in progress. The job holds it, and never cancels one that pushes
        (job,) = workflow["jobs"].values()
        assert "concurrency" not in workflow
        assert job["concurrency"] == {"group": "retrain", "cancel-in-progress": False}
        return
    assert workflow["concurrency"]["cancel-in-progress"] is True
    triggers = set(workflow["on"]) if isinstance(workflow["on"], dict) else {workflow["on"]}
    if triggers & {"push", "pull_request"}:  # one group per branch or pull request
        assert "${{" in workflow["concurrency"]["group"]
    else:  # one run at a time
        assert workflow["concurrency"]["group"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_telemetry_is_off(path: Path) -> None:
    assert TELEMETRY.items() <= load(path)["env"].items()


def test_pr_report_checks_out_full_history_and_comments_with_cml() -> None:
    workflow = load(ROOT / ".github/workflows/pr-report.yml")
    assert set(workflow["on"]) == {"pull_request"}
    plan, job = workflow["jobs"]["plan"], workflow["jobs"]["report"]
    checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0
    cml = next(s for s in job["steps"] if s.get("uses", "").startswith("iterative/setup-cml@"))
    assert cml["with"] == {"version": "0.20.6", "vega": False}
    scripts = "\n".join(s.get("run", "") for s in job["steps"])
    assert "tabml report --base" in scripts and "GITHUB_STEP_SUMMARY" in scripts
    assert any(s.get("uses", "").startswith("actions/upload-artifact@") for s in job["steps"])
    # secrets come from an environment, so forks (no secrets) take the bundled-data branch;
    # which one the plan decides: the read-only one, or the approved one with the PII key
    assert job["needs"] == "plan"
    assert job["environment"] == "${{ needs.plan.outputs.environment }}"
    decide = "\n".join(s.get("run", "") for s in plan["steps"])
    assert "tabml needs-key --base" in decide and "environment=dvc-read" in decide
    assert '[ "$needed" = yes ] && [ "$SAME_REPO" = true ]' in decide  # never a fork
    assert "permissions" in plan and set(plan["permissions"]) == {"contents"}


def test_release_builds_from_tags_and_publishes_with_least_privilege() -> None:
    workflow = load(ROOT / ".github/workflows/release.yml")
    assert workflow["on"] == {"push": {"tags": ["*@v*", "!*!*", "!*#*"]}}
    build, publish = workflow["jobs"]["build"], workflow["jobs"]["publish"]
    scripts = "\n".join(s.get("run", "") for s in build["steps"])
    assert "gto check-ref" not in scripts, "it exits 0 for any ref"
    assert 'tabml release check-tag "$TAG"' in scripts
    assert "tabml release build --tag" in scripts
    assert build["permissions"] == {"contents": "read", "id-token": "write"}
    assert build["environment"] == "dvc-write"
    assert "git merge-base --is-ancestor" in scripts, "a tag of a commit on main only"
    assert any(s.get("uses", "").startswith("aws-actions/") for s in build["steps"]), "OIDC"
    assert publish["permissions"]["contents"] == "write"
    assert publish["needs"] == ["build", "image"]
    assert "gh release create" in "\n".join(s.get("run", "") for s in publish["steps"])
    # nothing cached may reach a published artefact
    setup_uv = next(s for s in build["steps"] if s.get("uses", "").startswith("astral-sh/"))
    assert setup_uv["with"]["enable-cache"] is False


def test_monitor_runs_on_a_schedule_and_opens_one_issue_on_alerts() -> None:
    workflow = load(ROOT / ".github/workflows/monitor.yml")
    assert set(workflow["on"]) == {"schedule", "workflow_dispatch"}
    (job,) = workflow["jobs"].values()
    steps = {s.get("name"): s for s in job["steps"]}
    monitor = steps["Monitor"]["run"]
    assert 'tabml monitor --package "$TARBALL" --since "$SINCE"' in monitor
    # exit 10 (alerts) and 12 (no data in the window) are not failures; both make an issue
    assert '"$code" != 10' in monitor and '"$code" != 12' in monitor
    issue = steps["Open or update the monitoring issue"]
    assert "steps.monitor.outputs.code == '12'" in issue["if"]
    assert "gh issue list" in issue["run"] and "gh issue comment" in issue["run"]
    assert any(s.get("uses", "").startswith("actions/upload-artifact@") for s in job["steps"])


def test_retrain_appends_reproduces_and_opens_a_pull_request() -> None:
    workflow = load(ROOT / ".github/workflows/retrain.yml")
    assert set(workflow["on"]) == {"workflow_dispatch", "issues"}
    (job,) = workflow["jobs"].values()
    assert "github.event.label.name == 'retrain'" in job["if"]
    scripts = [s.get("run", "") for s in job["steps"]]
    order = [
        next(i for i, r in enumerate(scripts) if needle in r)
        for needle in ("tabml append", "dvc repro", "cml pr create")
    ]
    assert order == sorted(order)
    assert "--squash" not in "\n".join(scripts), "a retrained model is merged by a person"


def test_release_pushes_the_image_at_the_tag_with_an_sbom_and_provenance() -> None:
    workflow = load(ROOT / ".github/workflows/release.yml")
    image = workflow["jobs"]["image"]
    assert image["needs"] == "build"
    by_action = {s["uses"].split("@")[0]: s for s in image["steps"] if "uses" in s}
    push = by_action["docker/build-push-action"]["with"]
    assert push["push"] is True and push["no-cache"] is True
    assert push["tags"] == "${{ steps.names.outputs.image }}:${{ steps.names.outputs.version }}"
    for arg in ("RELEASE", "MODEL_VERSION", "GIT_COMMIT"):
        assert f"{arg}=" in push["build-args"]
    assert "BASE=" not in push["build-args"], "the Dockerfile's pinned base is used"
    attest = by_action["actions/attest-build-provenance"]["with"]
    assert attest["subject-digest"] == "${{ steps.push.outputs.digest }}"
    scripts = "\n".join(s.get("run", "") for s in image["steps"])
    assert "--format cyclonedx1.5" in scripts and "--no-default-groups" in scripts
    assert 'echo "image=ghcr.io/${REPO,,}"' in scripts  # GHCR names are lower case
    publish = "\n".join(s.get("run", "") for s in workflow["jobs"]["publish"]["steps"])
    assert "image/*.sbom.cdx.json image/*.provenance.sigstore.json image/*.image" in publish


def test_deploy_runs_on_stage_assignments_only_and_opens_a_pull_request() -> None:
    workflow = load(ROOT / ".github/workflows/deploy.yml")
    assert workflow["on"] == {"push": {"tags": ["*#*", "!*!*", "!*@*"]}}
    resolve, promote = workflow["jobs"]["resolve"], workflow["jobs"]["promote"]
    assert "!contains(github.ref_name, '!')" in resolve["if"]  # unassignments do nothing
    assert promote["needs"] == "resolve"
    scripts = "\n".join(s.get("run", "") for s in resolve["steps"] + promote["steps"])
    assert 'gto show "${artifact}#${stage}" --version' in scripts
    assert "deploy/k8s/set-image" in scripts and "gh pr create" in scripts
    assert "kubectl apply" not in scripts, "no cluster credentials in the workflow"
    # the digest the release recorded, verified, never the mutable tag's
    assert "imagetools inspect" not in scripts
    assert 'gh release download "$release"' in scripts and "gh attestation verify" in scripts
    assert "sleep 30" in scripts and "Rerun this workflow" in scripts  # a bounded wait
    # promotions of one stage in order, none cancelled; a branch per run (rollbacks)
    assert promote["concurrency"] == {
        "group": "deploy-${{ needs.resolve.outputs.stage }}",
        "cancel-in-progress": False,
    }
    assert 'branch="deploy/${STAGE}-${VERSION}-${GITHUB_RUN_ID}"' in scripts
    # the App's token where there is one; without it, CI is dispatched on the branch
    pr = next(s for s in promote["steps"] if s.get("name") == "Open the deployment pull request")
    assert pr["env"]["GH_TOKEN"] == "${{ steps.app.outputs.token || github.token }}"
    assert 'gh workflow run ci.yml --repo "$REPO" --ref "$BRANCH"' in scripts


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_run_step_is_bash_with_pipefail(path: Path) -> None:
    """GitHub runs a `run:` step with no shell as `bash -e {0}`: a command that fails before
    a pipe (`tabml report | tee`) goes unnoticed. `shell: bash` means `-eo pipefail`."""
    workflow = load(path)
    assert workflow["defaults"] == {"run": {"shell": "bash"}}
    assert all(s.get("shell", "bash") == "bash" for s in steps(workflow) if "run" in s)


def test_the_harness_runs_steps_as_github_does(tmp_path: Path) -> None:
    """With no shell named, a failed command before a pipe passes, as on GitHub (bash -e);
    with `shell: bash` it fails the step. A harness that always set pipefail would hide it."""
    from tests.harness import Runner

    flow = {"on": "push", "jobs": {"j": {"steps": [{"name": "pipe", "run": "false | cat"}]}}}
    plain = tmp_path / "plain.yml"
    plain.write_text(yaml.safe_dump(flow))
    strict = tmp_path / "strict.yml"
    strict.write_text(yaml.safe_dump({**flow, "defaults": {"run": {"shell": "bash"}}}))
    runner = Runner(tmp_path, tmp_path / "work", tool_env())
    assert runner.run(plain, "j", {}).failed is None
    assert runner.run(strict, "j", {}).failed == "pipe"


def _runs(step: dict[str, Any], command: str) -> bool:
    """Whether a step's script runs `command` (at the start of a line, or in `$(...)`), not
    merely mentions it in a message."""
    lines = step.get("run", "").splitlines()
    return any(ln.strip().startswith(command) or f"$({command}" in ln for ln in lines)


# What a step needs of the job's token. A job's `permissions:` block sets every scope it does
# not name to `none`, `contents` included: checkout then fails on a private repository.
NEEDS = [
    (lambda s: s.get("uses", "").startswith("actions/checkout@"), "contents", "read"),
    (lambda s: _runs(s, "gh run download"), "actions", "read"),
    (lambda s: _runs(s, "gh workflow run"), "actions", "write"),
    (lambda s: _runs(s, "gh release create"), "contents", "write"),
    (lambda s: _runs(s, "gh release download"), "contents", "read"),
    (lambda s: _runs(s, "gh attestation verify"), "attestations", "read"),
    (lambda s: _runs(s, "gh pr create"), "pull-requests", "write"),
    (lambda s: _runs(s, "cml pr create"), "pull-requests", "write"),
    (lambda s: _runs(s, "cml comment"), "pull-requests", "write"),
    (lambda s: _runs(s, "gh issue"), "issues", "write"),
    (lambda s: s.get("uses", "").startswith("aws-actions/configure-aws-credentials@"),
     "id-token", "write"),
    (lambda s: s.get("uses", "").startswith("actions/attest-build-provenance@"),
     "id-token", "write"),
    (lambda s: s.get("uses", "").startswith("actions/attest-build-provenance@"),
     "attestations", "write"),
    (lambda s: s.get("uses", "").startswith("actions/attest-build-provenance@"),
     "artifact-metadata", "write"),
    (lambda s: s.get("uses", "").startswith("docker/build-push-action@")
     and s.get("with", {}).get("push") is True, "packages", "write"),
]  # fmt: skip
LEVEL = {"none": 0, "read": 1, "write": 2}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_job_has_each_scope_its_steps_need(path: Path) -> None:
    workflow = load(path)
    for name, job in workflow["jobs"].items():
        granted = job.get("permissions", workflow.get("permissions", {}))
        for step in job.get("steps", []):
            tokens = [str(step.get("env", {}).get(k, "")) for k in ("GH_TOKEN", "REPO_TOKEN")]
            if any("steps.app" in t and "github.token" not in t for t in tokens):
                continue  # the App's token, with the App's permissions, not the job's
            for applies, scope, level in NEEDS:
                if applies(step):
                    have = LEVEL[granted.get(scope, "none")]
                    assert have >= LEVEL[level], (
                        f"{path.name}: job {name}, step {step.get('name') or step.get('uses')}: "
                        f"needs {scope}: {level}"
                    )


def test_ci_builds_the_image_a_release_builds_and_scores_through_it() -> None:
    """GitHub's CI runs the tests without root, so the podman tests skip there: the image is
    built and exercised by a job of its own, from a release tarball as release.yml builds it."""
    workflow = load(ROOT / ".github/workflows/ci.yml")
    assert "workflow_dispatch" in workflow["on"]
    image = workflow["jobs"]["image"]
    scripts = "\n".join(s.get("run", "") for s in image["steps"])
    assert "tabml release build --tag" in scripts
    assert "docker build --build-arg RELEASE=" in scripts and "-t tabml-ci:latest ." in scripts
    assert "--entrypoint python3 tabml-ci:latest" in scripts  # the import check
    assert "tabml package example models/package" in scripts and "/predict" in scripts
    assert "= 401" in scripts  # and it fails closed without the token
