"""The deployment files, checked offline: Kubernetes schemas, checkov, and what they promise.

Nothing here talks to a cluster or a registry: kubectl only renders (kustomize), the schemas ship
with kubernetes-validate, and checkov runs with its downloads off.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import BIN, ROOT, tool_env

OVERLAY = ROOT / "deploy/k8s/overlays/example"
CHECKOV = ROOT / ".tools/checkov/bin/checkov"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = subprocess.run(
        [str(BIN / "kubectl"), "kustomize", str(OVERLAY)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    path = tmp_path_factory.mktemp("k8s") / "rendered.yaml"
    path.write_text(out.stdout)
    return path


@pytest.fixture(scope="module")
def every(rendered: Path) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(rendered.read_text())}


@pytest.fixture(scope="module")
def objects(every: dict[tuple[str, str], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The service's objects by kind (those named `tabml`, or the one of their kind)."""
    out: dict[str, dict[str, Any]] = {}
    for (kind, name), doc in every.items():
        if kind not in out or name == "tabml":
            out[kind] = doc
    return out


def test_the_rendered_overlay_validates_against_the_kubernetes_schemas(rendered: Path) -> None:
    proc = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", "--quiet", str(rendered)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _checkov(*args: str) -> dict[str, Any]:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: 'make test' installs it (make .tools/checkov)")
    proc = subprocess.run(
        [str(CHECKOV), *args, "--output", "json", "--skip-download", "--compact"],
        capture_output=True,
        text=True,
        # no calls home: no mapping download, no guidelines, no telemetry
        env={**tool_env(), "BC_SKIP_MAPPING": "TRUE", "CHECKOV_NO_OUTPUT_FILE": "1"},
    )
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    report = yaml.safe_load(proc.stdout) if proc.stdout.strip() else {}
    return report if isinstance(report, dict) else {"results": {}}


def test_checkov_finds_no_failure_and_every_skip_has_a_reason(rendered: Path) -> None:
    for args in (
        ("-d", str(rendered.parent), "--framework", "kubernetes"),
        ("-f", str(ROOT / "Dockerfile"), "--framework", "dockerfile"),
    ):
        report = _checkov(*args)
        failed = [
            (c["check_id"], c["check_name"])
            for c in report.get("results", {}).get("failed_checks", [])
        ]
        assert not failed, f"checkov {args[-1]}: {failed}"
        assert report["summary"]["passed"] > 50, f"checkov {args[-1]} checked too little"
        assert report["summary"]["skipped"] >= 1
    text = (ROOT / "Dockerfile").read_text() + "".join(
        p.read_text() for p in (ROOT / "deploy/k8s").rglob("*.yaml")
    )
    skips = re.findall(r"checkov(?::skip=|\.io/skip\d+: )(CKV_\w+)[:=] *(.*)", text)
    assert skips, "the skips are written where they apply"
    for check, why in skips:
        assert len(why.strip()) > 20, f"{check} is skipped without a reason"


def test_the_deployment_is_probed_limited_locked_down_and_fed_from_secrets(
    objects: dict[str, dict[str, Any]],
) -> None:
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert set(container["resources"]) == {"requests", "limits"}
    sec = container["securityContext"]
    assert sec["readOnlyRootFilesystem"] is True and sec["allowPrivilegeEscalation"] is False
    assert sec["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert "TABML_API_TOKEN" not in env, "the token is a mounted Secret, not a variable"
    token_dir = str(Path(env["TABML_API_TOKEN_FILE"]).parent)
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert volumes[mounts[token_dir]]["secret"]["secretName"] == "tabml-api"
    for flag in ("--log-dir=", "--audit-log="):
        where = next(a.split("=", 1)[1] for a in container["args"] if a.startswith(flag))
        assert any(where.startswith(m + "/") for m in mounts), f"{flag} is on a volume"


def test_service_autoscaler_budget_and_network_policy_select_the_pods(
    objects: dict[str, dict[str, Any]],
) -> None:
    deployment = objects["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]

    def selects(selector: dict[str, str]) -> bool:
        return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

    assert selects(objects["Service"]["spec"]["selector"])
    assert selects(objects["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"])
    policy = objects["NetworkPolicy"]["spec"]
    assert selects(policy["podSelector"]["matchLabels"])
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"} and policy["egress"] == []
    ports = {p["port"] for rule in policy["ingress"] for p in rule["ports"]}
    assert ports == {
        deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
    }
    hpa = objects["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["minReplicas"] >= 2, "a drain must never leave no pod serving"


def test_the_dockerfile_installs_the_locked_serving_set_on_a_pinned_base() -> None:
    text = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^ARG BASE=(\S+)$", text, re.M)
    assert base and re.search(r"@sha256:[0-9a-f]{64}$", base.group(1)), "the base is pinned"
    assert "uv sync --frozen --no-default-groups --no-editable" in text
    # uv itself is installed by hash, like everything uv then installs from uv.lock
    assert "--require-hashes" in text and len(re.findall(r"--hash=sha256:[0-9a-f]{64}", text)) >= 2
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert re.search(r"^VOLUME \[\"/var/log/tabml\"\]$", text, re.M)
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignore and "!src/" in ignore, "the build context is an allow-list"
    assert not [line for line in ignore if line.startswith(("!data", "!models", "!.venv", "!.dvc"))]


def test_set_image_points_an_overlay_at_a_release_by_digest(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(ROOT / "deploy/k8s", tmp_path / "k8s")
    overlay = tmp_path / "k8s/overlays/example"
    before = (overlay / "kustomization.yaml").read_text()
    digest = "sha256:" + "ab" * 32
    for args in (["ghcr.io/acme/tabml", "v2.0.0", digest], ["ghcr.io/acme/tabml", "v2.1.0"]):
        proc = subprocess.run(
            [str(ROOT / "deploy/k8s/set-image"), str(overlay), *args],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        out = subprocess.run(
            [str(BIN / "kubectl"), "kustomize", str(overlay)], capture_output=True, text=True
        )
        images = set(re.findall(r"image: (\S+)", out.stdout))  # the service and its CronJob
        assert images == {"ghcr.io/acme/tabml:" + "@".join(args[1:])}
    after = (overlay / "kustomization.yaml").read_text()
    # only the image entry changed: the comments and the rest are kept
    changed = set(after.splitlines()) ^ set(before.splitlines())
    assert all(re.match(r"\s+new(Name|Tag): ", line) for line in changed), changed
    bad = subprocess.run(
        [str(ROOT / "deploy/k8s/set-image"), str(overlay), "x", "v1.0.0", "latest"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "not a digest" in bad.stderr


def test_the_deployment_behaves_on_a_real_cluster(objects: dict[str, dict[str, Any]]) -> None:
    """What a cluster with an HPA, rolling updates and shared volumes needs of the manifests."""
    deployment = objects["Deployment"]
    # a replicas field would reset the autoscaler's count on every apply or sync
    assert "replicas" not in deployment["spec"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    # the endpoint goes before the server stops accepting connections, inside the grace period
    delay = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert 2 <= delay < pod["terminationGracePeriodSeconds"] - 20
    keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
    assert "kubernetes.io/hostname" in keys
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for constraint in pod["topologySpreadConstraints"]:
        assert constraint["labelSelector"]["matchLabels"].items() <= labels.items()
    # the shared log volume names a class that can give ReadWriteMany
    claim = objects["PersistentVolumeClaim"]["spec"]
    assert claim["accessModes"] == ["ReadWriteMany"] and claim["storageClassName"]
    # client addresses: only the ingress's forwarded header is believed
    assert any(a.startswith("--forwarded-allow-ips=") for a in container["args"])


def test_the_readme_s_apply_works_as_written() -> None:
    """`kubectl apply -k` of the overlay needs its namespace and the API token's Secret (the
    Deployment mounts it, not optional): the README shows both before it."""
    readme = (ROOT / "README.md").read_text()
    block = readme[: readme.index("kubectl apply -k deploy/k8s/overlays/example")]
    namespace = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())["namespace"]
    assert f"kubectl create namespace {namespace}" in block
    assert f"kubectl -n {namespace} create secret generic tabml-api" in block


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    """Every rule it would raise is either followed or ignored where it applies, with why."""
    proc = subprocess.run(
        [str(BIN / "hadolint"), "--no-color", str(ROOT / "Dockerfile")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (ROOT / "Dockerfile").read_text().splitlines()
    for i, line in enumerate(text):
        if line.startswith("# hadolint ignore="):
            assert text[i - 1].startswith("#") and len(text[i - 1]) > 30, f"line {i + 1}: why?"


def test_the_logs_leave_the_cluster_from_a_job_of_their_own(
    every: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """The shipping CronJob: its own service account, read-only access to the log volume, and
    an egress policy of DNS and HTTPS only; the service's policy keeps no egress at all."""
    job = every[("CronJob", "tabml-ship-logs")]["spec"]["jobTemplate"]["spec"]["template"]
    pod = job["spec"]
    assert pod["serviceAccountName"] == "tabml-ship-logs"
    account = every[("ServiceAccount", "tabml-ship-logs")]
    assert "eks.amazonaws.com/role-arn" in account["metadata"]["annotations"]
    (container,) = pod["containers"]
    assert container["command"] == ["tabml", "logs", "ship"]
    assert all(m.get("readOnly") for m in container["volumeMounts"] if m["name"] == "predictions")
    policy = every[("NetworkPolicy", "tabml-ship-logs")]["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= job["metadata"]["labels"].items()
    ports = {(p["port"], p["protocol"]) for rule in policy["egress"] for p in rule["ports"]}
    assert ports == {(53, "UDP"), (53, "TCP"), (443, "TCP")} and policy["ingress"] == []
    assert every[("NetworkPolicy", "tabml")]["spec"]["egress"] == []
