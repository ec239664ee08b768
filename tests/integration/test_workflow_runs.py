"""The workflows' steps, run (tests/harness.py), not only linted: the pull-request report on a
change from the repository, from Dependabot and with the upload opted in, retraining (the
loop's end: the labelled logs appended, every stage rerun, the report on the same rows),
monitoring with and without drift and with no data, and a release on a version tag but not on
a deregistration. (A fork's pull request, from the start: test_pr_report.py.)

One clone of the built project is the repository. Its DVC remote is the moto S3 server on
loopback, holding the pipeline's outputs and run-cache and the prediction logs and labels;
its git remote `origin` is a bare repository with `main`; GTO's tags register v1.0.0 and
promote it to prod, and the `gh` stand-in serves that release's tarball as its asset.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tabml.governance import release as rel
from tabml.learning import package as pkg
from tabml.service import serving
from tests.conftest import BIN, ROOT, git, tool_env
from tests.harness import Runner, load, tag_triggers
from tests.integration.test_remote import S3Server, point_at

WORKFLOWS = ROOT / ".github/workflows"
REPOSITORY = "acme/tabml"
TODAY = datetime.now(UTC).date()


def sh(repo: Path, *args: str, env: dict[str, str]) -> str:
    proc = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{args}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout


def write_logs(repo: Path, frame: pd.DataFrame, day: str, name: str) -> None:
    """Prediction logs as the service writes them: the records, scored, under date=DAY/."""
    loaded = pkg.load(repo / "models/package")
    scores = loaded.model.predict(frame)
    logs = frame.assign(
        **{
            serving.REQUEST_ID: "r",
            serving.LOGGED_AT: f"{day}T12:00:00.000000+00:00",
            serving.SCORE: scores,
            serving.LABEL: (scores >= loaded.threshold).astype("int64"),
            serving.MODEL_VERSION: serving.model_version(loaded),
        }
    )
    folder = repo / "data/serving/predictions" / f"date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    logs.to_parquet(folder / f"predictions-{name}.parquet", index=False)


@pytest.fixture(scope="module")
def world(
    project: Path, server: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("workflows")
    repo = base / "repo"
    shutil.copytree(project, repo, symlinks=True)
    aws = {k: v for k, v in server.env().items() if k.startswith("AWS_")}
    env = {**tool_env(), **aws}
    point_at(repo, server, "wf")
    # the production batch's drifting half, logged today (labels for retraining)
    batch = pd.read_parquet(repo / "data/raw/production.parquet")
    batch = batch.drop(columns=["y_pred_proba", "y_pred"], errors="ignore")
    labels = pd.read_parquet(repo / "data/raw/production_labels.parquet")
    drifting = batch.iloc[30_000:36_000]
    write_logs(repo, drifting, TODAY.isoformat(), "today")
    lab = repo / "data/serving/labels" / f"date={TODAY.isoformat()}"
    lab.mkdir(parents=True)
    labels[labels["id"].isin(drifting["id"])].to_parquet(lab / "labels.parquet", index=False)
    sh(repo, str(BIN / "dvc"), "add", "data/serving/predictions", "data/serving/labels", env=env)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "the pipeline's run, logs and labels")
    git(repo, "branch", "-M", "main")
    sh(repo, str(BIN / "dvc"), "push", "--run-cache", env=env)
    # GTO: v1.0.0 registered and in prod; its release assets where `gh release download` looks
    sh(repo, str(BIN / "gto"), "register", "tabml-model", "--version", "v1.0.0", env=env)
    sh(repo, str(BIN / "gto"), "assign", "tabml-model", "--version", "v1.0.0", "--stage",
       "prod", env=env)  # fmt: skip
    releases = base / "releases" / "tabml-model@v1.0.0"
    releases.mkdir(parents=True)
    tarball = releases / "tabml-model-v1.0.0.tar.gz"
    rel.write_tarball(repo / "models/package", tarball, "tabml-model-v1.0.0", 1_700_000_000)
    tarball.with_name(tarball.name + ".sha256").write_text(
        f"{pkg.sha256(tarball)}  {tarball.name}\n"
    )
    # origin: a bare repository with main, as the checkout has it
    origin = base / "origin.git"
    git(base, "init", "-q", "--bare", str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "-q", "origin", "main", "--tags")
    git(repo, "fetch", "-q", "origin")
    return {"repo": repo, "aws": aws, "env": env, "base": base, "releases": base / "releases",
            "batch": batch}  # fmt: skip


def runner(world: dict[str, Any], name: str, **extra: str) -> Runner:
    return Runner(world["repo"], world["base"] / name, {**tool_env(), **extra})


def pr_event(fork: bool = False, user: str = "alice") -> dict[str, Any]:
    head = "someone/tabml" if fork else REPOSITORY
    return {
        "repository": REPOSITORY, "event_name": "pull_request", "base_ref": "main",
        "token": "gh-token", "actor": user, "server_url": "https://github.com", "run_id": "1",
        "event": {"pull_request": {"number": 7, "head": {"repo": {"full_name": head}},
                                   "user": {"login": user}}},
    }  # fmt: skip


def test_the_pull_request_report_comments_once_uploads_nothing_and_spares_forks(
    world: dict[str, Any],
) -> None:
    repo = world["repo"]
    git(repo, "checkout", "-q", "-B", "change")
    r = runner(world, "pr")
    secrets = {"AWS_ACCESS_KEY_ID": world["aws"]["AWS_ACCESS_KEY_ID"],
               "AWS_SECRET_ACCESS_KEY": world["aws"]["AWS_SECRET_ACCESS_KEY"]}  # fmt: skip
    flow = WORKFLOWS / "pr-report.yml"
    # the plan: this change does not run ingest again on personal data, so the read-only
    # environment, without the key
    plan = r.run(flow, "plan", pr_event())
    assert plan.failed is None, r.steps_log()
    assert plan.outputs["plan"] == {"environment": "dvc-read"}
    job = r.run(flow, "report", pr_event(), secrets=secrets, extra_env={
        "AWS_CONFIG_FILE": world["aws"]["AWS_CONFIG_FILE"],
        "AWS_SHARED_CREDENTIALS_FILE": world["aws"]["AWS_SHARED_CREDENTIALS_FILE"],
        "AWS_DEFAULT_REGION": "us-east-1"})  # fmt: skip
    assert job.failed is None, r.steps_log()
    assert "pulling what has already been computed" in r.steps_log()
    (comment,) = r.calls("cml")
    assert comment[:3] == ["comment", "update", "--target=pr"]
    assert "--no-publish" in comment and "--publish" not in comment
    body = (r.out / "comment.md").read_text()
    assert "```mermaid" in body and "xychart-beta" in body and "](images/" not in body
    assert "```mermaid" in job.summary
    assert (r.artifacts / "pr-report/images/roc.png").is_file()  # the PNGs: the artifact

    # Dependabot: a read-only token, as a fork's (tests/integration/test_pr_report.py runs a
    # fork's pull request from the start): no comment; the report is in the summary, and why
    bot = runner(world, "pr-bot")
    job = bot.run(flow, "report", pr_event(user="dependabot[bot]"), start_at="Write the report")
    assert job.failed is None, bot.steps_log()
    assert bot.calls("cml") == [] and "Post or update the comment" in job.skipped
    assert "comes from a fork or from Dependabot" in job.summary

    # the opt-in: CML uploads the images (to the team's own endpoint, here)
    opted = runner(world, "pr-publish")
    job = opted.run(flow, "report", pr_event(), start_at="Write the report",
                    vars={"TABML_CML_PUBLISH": "true",
                          "TABML_CML_PUBLISH_URL": "https://assets.acme.example"})  # fmt: skip
    assert job.failed is None, opted.steps_log()
    (comment,) = opted.calls("cml")
    assert "--publish" in comment and "https://assets.acme.example" in comment
    assert "](images/roc.png)" in (opted.out / "comment.md").read_text()
    git(repo, "checkout", "-q", "main")


def test_retraining_opens_a_pull_request_a_person_merges_with_its_report(
    world: dict[str, Any],
) -> None:
    repo = world["repo"]
    git(repo, "checkout", "-q", "-B", "retrain-run")
    try:
        _retrain(world, repo)
    finally:
        git(repo, "checkout", "-q", "-f", "main")
        for leftover in ("additions.parquet", "additions.parquet.dvc"):
            (repo / "data/external" / leftover).unlink(missing_ok=True)
        subprocess.run([str(BIN / "dvc"), "checkout", "-q", "--force"], cwd=repo, env=world["env"])


def _retrain(world: dict[str, Any], repo: Path) -> None:
    r = runner(world, "retrain", AWS_CONFIG_FILE=world["aws"]["AWS_CONFIG_FILE"],
               AWS_SHARED_CREDENTIALS_FILE=world["aws"]["AWS_SHARED_CREDENTIALS_FILE"],
               AWS_DEFAULT_REGION="us-east-1")  # fmt: skip
    event = {"repository": REPOSITORY, "event_name": "issues", "token": "gh-token",
             "run_id": "4242", "run_attempt": "1",
             "event": {"label": {"name": "retrain"},
                       "repository": {"default_branch": "main"}}}  # fmt: skip
    flow = WORKFLOWS / "retrain.yml"
    # any other label: the job does not run (and, its concurrency being the job's, cancels
    # nothing)
    other = runner(world, "retrain-other").run(
        flow, "retrain", {**event, "event": {**event["event"], "label": {"name": "bug"}}}
    )
    assert other.skipped == ["(job)"]
    job = r.run(flow, "retrain", event, vars={"AWS_ROLE_ARN": "arn:aws:iam::1:role/tabml"},
                aws=world["aws"])  # fmt: skip
    assert job.failed is None, r.steps_log()
    create, comment = r.calls("cml")
    assert create[:2] == ["pr", "create"] and "--squash" not in create
    assert not {"--merge", "--rebase", "--auto-merge"} & set(create)
    body = create[create.index("--body") + 1]
    assert "dispatched CI" in body and "merge by hand" in body
    # the commit CML makes: a message of ours (without one CML appends [skip ci], and GitHub
    # starts no workflow for that head commit), on a branch of this run's own
    ((branch, message, reused),) = r.calls("cml-commit")
    assert "[skip ci]" not in message and branch == "retrain/4242-1" and reused == "False"
    # opened with the workflow's own token: CI is dispatched on the branch (the one event
    # such a token starts)
    assert ["workflow", "run", "ci.yml", "--repo", REPOSITORY, "--ref", branch] in r.calls("gh")
    assert comment[:3] == ["comment", "update", "--target=pr/7"] and "--no-publish" in comment
    # the retraining's report: the model of main and the retrained one on the same rows (the
    # appended rows, the latest, land in this change's test split)
    report = (r.out / "comment.md").read_text()
    assert re.match(r"## (🟢 Better|🔴 Worse|⚪ Not distinguishable) on the same rows", report)
    assert "of them are labelled production rows" in report
    # every labelled row joined, but those whose values the development schema does not allow
    # (the batch's new '50%' downpayment)
    additions = pd.read_parquet(repo / "data/external/additions.parquet")
    left_out = int((world["batch"].iloc[30_000:36_000]["size_of_downpayment"] == "50%").sum())
    assert left_out > 0 and len(additions) == 6_000 - left_out
    assert "left out: 'size_of_downpayment'" in r.steps_log()
    # retraining ran every stage on the larger development set, and pushed the result
    for stage in ("ingest", "clean", "split", "train", "evaluate", "package", "monitor"):
        assert f"Running stage '{stage}'" in r.steps_log(), stage
    quality = json.loads((repo / "reports/data_quality.json").read_text())
    assert quality["development"]["rows_read"] == 50_000 + len(additions)
    # with a GitHub App: its token opens the pull request, CI runs there, no report here
    app = runner(world, "retrain-app")
    job = app.run(flow, "retrain", event, vars={"TABML_APP_ID": "123"},
                  secrets={"TABML_APP_PRIVATE_KEY": "pem"},
                  start_at="Open the pull request (a person reviews and merges it)",
                  given={"app": {"token": "app-token"}})  # fmt: skip
    assert job.failed is None, app.steps_log()
    (create,) = app.calls("cml")
    assert "dispatched CI" not in create[create.index("--body") + 1]
    assert "Post the report on it (no App token, so no other workflow will)" in job.skipped
    assert "Start CI on it (no App token, so the pull request started no workflow)" in job.skipped
    # a second retraining on the same commit: a branch of its own, so a pull request of its own
    again = runner(world, "retrain-again", HARNESS_BRANCHES="retrain/4242-1")
    again.run(flow, "retrain", {**event, "run_id": "4243"}, vars={"TABML_APP_ID": "123"},
              secrets={"TABML_APP_PRIVATE_KEY": "pem"},
              start_at="Open the pull request (a person reviews and merges it)",
              given={"app": {"token": "app-token"}})  # fmt: skip
    ((branch, message, reused),) = again.calls("cml-commit")
    assert branch == "retrain/4243-1" and reused == "False"


def _monitor(world: dict[str, Any], name: str, last_run: str) -> tuple[Runner, Any]:
    r = runner(world, name, HARNESS_RELEASES=str(world["releases"]), HARNESS_LAST_RUN=last_run,
               AWS_CONFIG_FILE=world["aws"]["AWS_CONFIG_FILE"],
               AWS_SHARED_CREDENTIALS_FILE=world["aws"]["AWS_SHARED_CREDENTIALS_FILE"],
               AWS_DEFAULT_REGION="us-east-1")  # fmt: skip
    event = {"repository": REPOSITORY, "event_name": "schedule", "token": "gh-token",
             "server_url": "https://github.com", "run_id": "42"}  # fmt: skip
    secrets = {"AWS_ACCESS_KEY_ID": world["aws"]["AWS_ACCESS_KEY_ID"],
               "AWS_SECRET_ACCESS_KEY": world["aws"]["AWS_SECRET_ACCESS_KEY"]}  # fmt: skip
    return r, r.run(WORKFLOWS / "monitor.yml", "monitor", event, secrets=secrets)


def test_monitoring_watches_the_release_in_prod_and_says_when_there_is_no_data(
    world: dict[str, Any],
) -> None:
    yesterday = (TODAY - timedelta(days=1)).isoformat()
    # drift in today's logs: alerts, one issue that names the release, the window, the run
    r, job = _monitor(world, "monitor-drift", f"{yesterday}T06:17:00Z")
    assert job.failed is None, r.steps_log()
    assert job.outputs["monitor"]["code"] == "10"
    verified = [a for a in r.calls("gh") if a[:2] == ["release", "download"]]
    assert verified and verified[0][2] == "tabml-model@v1.0.0"
    issue = (r.out / "issue.md").read_text()
    assert "raised alerts" in issue and "tabml-model@v1.0.0" in issue
    assert f"logs from {yesterday} on" in issue and "60 days" in issue
    # a window after the last log: nothing to monitor is said, not taken for calm
    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    r, job = _monitor(world, "monitor-empty", f"{tomorrow}T06:17:00Z")
    assert job.failed is None, r.steps_log()
    assert job.outputs["monitor"]["code"] == "12"
    issue = (r.out / "issue.md").read_text()
    assert "No prediction data in the window" in issue and "not the same as no drift" in issue


def test_calm_logs_raise_no_issue(world: dict[str, Any]) -> None:
    """Logs from before the production batch's shift: no alert, no issue."""
    repo, env = world["repo"], world["env"]
    git(repo, "checkout", "-q", "-B", "calm")
    try:
        shutil.rmtree(repo / "data/serving/predictions")
        # no labels either: these rows were never labelled in production
        shutil.rmtree(repo / "data/serving/labels")
        git(repo, "rm", "-q", "data/serving/labels.dvc")
        # the production batch's first two chunks (5,000 rows each), before its shift: the
        # pipeline's own monitor stage raises no alert on them (reports/monitoring/summary.json)
        calm = world["batch"].iloc[:10_000]
        write_logs(repo, calm, TODAY.isoformat(), "calm")
        sh(repo, str(BIN / "dvc"), "add", "data/serving/predictions", env=env)
        sh(repo, str(BIN / "dvc"), "push", "data/serving/predictions.dvc", env=env)
        git(repo, "commit", "-qam", "calm logs")
        r, job = _monitor(world, "monitor-calm", "")
        assert job.failed is None, r.steps_log()
        assert job.outputs["monitor"]["code"] == "0", r.steps_log()[-3000:]
        assert "Open or update the monitoring issue" in job.skipped
        assert not (r.out / "issue.md").exists()
    finally:
        git(repo, "checkout", "-q", "-f", "main")
        subprocess.run([str(BIN / "dvc"), "checkout", "-q", "--force"], cwd=repo, env=env)


def test_logs_shipped_from_the_cluster_are_what_monitoring_reads(
    world: dict[str, Any], server: S3Server, tmp_path: Path
) -> None:
    """The loop's first joint: the CronJob's command ships the closed days of the volume to
    the object store; the monitor workflow's steps (vars.TABML_LOGS_URL) pull its window and
    monitor it, and the summary covers exactly the shipped rows: not today's, still open."""
    repo, env = world["repo"], world["env"]
    url = "s3://tabml-test/shipped/prod"
    git(repo, "checkout", "-q", "-B", "shipped")
    try:
        for tracked in ("predictions", "labels"):
            shutil.rmtree(repo / "data/serving" / tracked)
            git(repo, "rm", "-q", f"data/serving/{tracked}.dvc")
        git(repo, "commit", "-qm", "logs in the object store, not in git")
        days = [TODAY - timedelta(days=2), TODAY - timedelta(days=1), TODAY]
        calm = world["batch"].iloc[:9_000]
        for i, day in enumerate(days):
            write_logs(repo, calm.iloc[i * 3_000 : (i + 1) * 3_000], day.isoformat(), f"a-{i}")
        volume = tmp_path / "volume"
        shutil.move(repo / "data/serving/predictions", volume)
        ship = sh(repo, str(BIN / "tabml"), "logs", "ship", "--logs", str(volume), "--to", url,
                  "--today", TODAY.isoformat(),
                  env={**env, "AWS_ENDPOINT_URL": server.endpoint})  # fmt: skip
        assert "2 file(s) copied" in ship and f"date={TODAY.isoformat()}" in ship
        r = runner(world, "monitor-shipped", HARNESS_RELEASES=str(world["releases"]),
                   HARNESS_LAST_RUN=f"{days[0].isoformat()}T06:17:00Z",
                   AWS_CONFIG_FILE=world["aws"]["AWS_CONFIG_FILE"],
                   AWS_SHARED_CREDENTIALS_FILE=world["aws"]["AWS_SHARED_CREDENTIALS_FILE"],
                   AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=server.endpoint)  # fmt: skip
        event = {"repository": REPOSITORY, "event_name": "schedule", "token": "gh-token",
                 "server_url": "https://github.com", "run_id": "43"}  # fmt: skip
        secrets = {"AWS_ACCESS_KEY_ID": world["aws"]["AWS_ACCESS_KEY_ID"],
                   "AWS_SECRET_ACCESS_KEY": world["aws"]["AWS_SECRET_ACCESS_KEY"]}  # fmt: skip
        job = r.run(WORKFLOWS / "monitor.yml", "monitor", event, secrets=secrets,
                    vars={"TABML_LOGS_URL": url})  # fmt: skip
        assert job.failed is None, r.steps_log()
        assert job.outputs["monitor"]["code"] in ("0", "10"), r.steps_log()[-3000:]
        summary = json.loads((repo / "reports/production/summary.json").read_text())
        assert summary["analysis"]["rows"] == 6_000  # the two closed days, every row once
    finally:
        git(repo, "checkout", "-q", "-f", "main")
        subprocess.run([str(BIN / "dvc"), "checkout", "-q", "--force"], cwd=repo, env=env)


def test_a_release_runs_on_a_version_tag_only_and_publishes_its_files(
    world: dict[str, Any],
) -> None:
    release = load(WORKFLOWS / "release.yml")
    assert tag_triggers(release, "tabml-model@v1.0.0")
    assert not tag_triggers(release, "tabml-model@v1.0.0!")  # GTO's deregistration
    assert not tag_triggers(release, "tabml-model@v1.0.0!#4")  # ... with a counter
    assert not tag_triggers(release, "tabml-model#prod#1")
    deploy = load(WORKFLOWS / "deploy.yml")
    assert tag_triggers(deploy, "tabml-model#prod#1")
    assert not tag_triggers(deploy, "tabml-model#prod!#2")  # an unassignment
    assert not tag_triggers(deploy, "tabml-model@deprecated#3")  # a deprecation
    assert not tag_triggers(deploy, "tabml-model@v1.0.0!#4")
    event = {"repository": REPOSITORY, "event_name": "push", "ref_name": "tabml-model#prod!#2",
             "token": "gh-token"}  # fmt: skip
    skipped = runner(world, "deploy-unassign").run(WORKFLOWS / "deploy.yml", "resolve", event)
    assert skipped.skipped == ["(job)"]  # an unassignment deploys nothing
    repo = world["repo"]
    git(repo, "checkout", "-q", "tabml-model@v1.0.0")
    r = runner(world, "release", AWS_CONFIG_FILE=world["aws"]["AWS_CONFIG_FILE"],
               AWS_SHARED_CREDENTIALS_FILE=world["aws"]["AWS_SHARED_CREDENTIALS_FILE"],
               AWS_DEFAULT_REGION="us-east-1")  # fmt: skip
    tag = {"repository": REPOSITORY, "event_name": "push", "ref_name": "tabml-model@v1.0.0",
           "token": "gh-token", "run_id": "9", "server_url": "https://github.com",
           "sha": git(repo, "rev-parse", "tabml-model@v1.0.0^{commit}").strip(),
           "event": {"repository": {"default_branch": "main"}}}  # fmt: skip
    secrets = {"AWS_ACCESS_KEY_ID": world["aws"]["AWS_ACCESS_KEY_ID"],
               "AWS_SECRET_ACCESS_KEY": world["aws"]["AWS_SECRET_ACCESS_KEY"]}  # fmt: skip
    build = r.run(WORKFLOWS / "release.yml", "build", tag, secrets=secrets)
    assert build.failed is None, r.steps_log()
    assert (r.artifacts / "release/tabml-model-v1.0.0.tar.gz").is_file()
    # the image job needs docker (tests/integration/test_image.py builds the image): its
    # artifact stands in for it here
    image = r.artifacts / "image"
    image.mkdir()
    for name in ("tabml-model-v1.0.0.sbom.cdx.json", "tabml-model-v1.0.0.provenance.sigstore.json"):
        (image / name).write_text("{}")
    (image / "tabml-model-v1.0.0.image").write_text("ghcr.io/acme/tabml:v1.0.0@sha256:" + "0" * 64)
    publish = r.run(WORKFLOWS / "release.yml", "publish", tag)
    assert publish.failed is None, r.steps_log()
    (create,) = [a for a in r.calls("gh") if a[:2] == ["release", "create"]]
    assert create[2] == "tabml-model@v1.0.0"
    assert any(a.endswith(".sbom.cdx.json") for a in create)
    assert "image/tabml-model-v1.0.0.image" in create  # what deploy.yml deploys, by digest
    notes = (repo / "dist/RELEASE_NOTES.md").read_text()
    assert "ghcr.io/acme/tabml:v1.0.0@sha256:" in notes
    # a deregistration tag fails the tag check, should it ever run
    bad = runner(world, "release-bad").run(
        WORKFLOWS / "release.yml",
        "build",
        {**tag, "ref_name": "tabml-model@v1.0.0!"},
        start_at="Check the tag (a GTO registration of this artefact, of a commit on main)",
    )
    assert bad.failed == "Check the tag (a GTO registration of this artefact, of a commit on main)"
    # a good tag of a commit that is not on main (an unmerged branch): refused too
    git(repo, "checkout", "-q", "-B", "unmerged")
    git(repo, "commit", "-q", "--allow-empty", "-m", "not reviewed")
    side = git(repo, "rev-parse", "HEAD").strip()
    checker = runner(world, "release-off-main")
    off_main = checker.run(
        WORKFLOWS / "release.yml",
        "build",
        {**tag, "sha": side},
        start_at="Check the tag (a GTO registration of this artefact, of a commit on main)",
    )
    assert off_main.failed is not None
    assert "is not on main: merge first" in checker.steps_log()
    git(repo, "checkout", "-q", "-f", "main")
    git(repo, "branch", "-q", "-D", "unmerged")
    git(repo, "checkout", "-q", "-f", "main")
