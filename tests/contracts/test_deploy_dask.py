"""deploy/k8s/dask, checked offline: the operator's CRD schemas, the Kubernetes schemas, checkov,
and what the manifests promise (enough workers for the ranks, no volume shared with the
workers: they read the object store; S3 through a role, locked-down pods).

The DaskCluster and DaskAutoscaler are validated against the CRDs the dask-kubernetes package
ships (its Helm chart's crds/), strictly: a field the CRD does not declare is an error here,
as `kubectl apply --validate=strict` would make it. checkov does not know the operator's
kinds, so the worker and scheduler pod specs are checked as the Pods the operator makes."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import BIN, ROOT
from tests.contracts.test_deploy import _checkov

DASK = ROOT / "deploy/k8s/dask"
OPERATOR_KINDS = {"DaskCluster", "DaskAutoscaler"}


@pytest.fixture(scope="module")
def docs() -> dict[str, dict[str, Any]]:
    out = subprocess.run(
        [str(BIN / "kubectl"), "kustomize", str(DASK)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return {d["kind"]: d for d in yaml.safe_load_all(out.stdout)}


def _crd_schema(kind: str) -> dict[str, Any]:
    import dask_kubernetes

    crds = Path(dask_kubernetes.__file__).parent / "operator/deployment/helm"
    (path,) = crds.glob(f"*/crds/{kind.lower()}.yaml")
    crd = yaml.safe_load(path.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return _strict(version["schema"]["openAPIV3Schema"])


def _strict(schema: Any) -> Any:
    """The schema with undeclared fields refused wherever it lists its fields (Kubernetes'
    strict field validation), and Kubernetes' int-or-string extension spelled out."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def _errors(doc: dict[str, Any]) -> list[str]:
    import jsonschema

    body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata")}
    validator = jsonschema.Draft7Validator(_crd_schema(doc["kind"]))
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)
    ]


def test_the_operator_resources_validate_against_the_operators_own_crds(
    docs: dict[str, dict[str, Any]],
) -> None:
    for kind in OPERATOR_KINDS:
        assert docs[kind]["apiVersion"] == "kubernetes.dask.org/v1"
        assert _errors(docs[kind]) == [], kind


def test_the_crd_check_refuses_a_misspelt_field(docs: dict[str, dict[str, Any]]) -> None:
    cluster = copy.deepcopy(docs["DaskCluster"])
    cluster["spec"]["worker"]["replica"] = cluster["spec"]["worker"].pop("replicas")
    assert any("replica" in e for e in _errors(cluster))


def test_the_other_resources_validate_against_the_kubernetes_schemas(
    docs: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    plain = [d for k, d in docs.items() if k not in OPERATOR_KINDS]
    assert {d["kind"] for d in plain} == {
        "ServiceAccount",
        "Job",
        "NetworkPolicy",
    }
    path = tmp_path / "plain.yaml"
    path.write_text(yaml.safe_dump_all(plain))
    proc = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", "--quiet", str(path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_checkov_passes_the_job_and_the_pods_the_operator_makes(
    docs: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    plain = [d for k, d in docs.items() if k not in OPERATOR_KINDS]
    spec = docs["DaskCluster"]["spec"]
    pods = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            # the labels the operator gives the pods it makes
            "metadata": {
                "name": f"tabml-{role}",
                "namespace": "tabml-pipeline",
                "labels": {"dask.org/cluster-name": "tabml", "dask.org/component": role},
            },
            "spec": spec[role]["spec"],
        }
        for role in ("worker", "scheduler")
    ]
    (tmp_path / "all.yaml").write_text(yaml.safe_dump_all(plain + pods))
    report = _checkov("-d", str(tmp_path), "--framework", "kubernetes")
    failed = [
        (c["check_id"], c["resource"], c["check_name"])
        for c in report.get("results", {}).get("failed_checks", [])
    ]
    assert not failed
    assert report["summary"]["passed"] > 150


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def test_the_cluster_has_the_ranks_the_job_trains_with_and_shares_no_volume_with_it(
    docs: dict[str, dict[str, Any]],
) -> None:
    job = docs["Job"]["spec"]["template"]["spec"]
    (repro,) = job["containers"]
    env = _env(repro)
    ranks = int(env["TABML_RANKS"])
    cluster = docs["DaskCluster"]
    # the operator names the scheduler's service CLUSTER-scheduler
    assert env["DASK_SCHEDULER_ADDRESS"] == f"tcp://{cluster['metadata']['name']}-scheduler:8786"
    assert cluster["spec"]["worker"]["replicas"] >= ranks
    scaler = docs["DaskAutoscaler"]["spec"]
    assert scaler["cluster"] == cluster["metadata"]["name"]
    assert ranks <= scaler["minimum"] <= scaler["maximum"]
    assert '"compute.workers=$TABML_RANKS"' in repro["args"][0]
    assert "compute=dask" in repro["args"][0]
    # the workers read a stage's files from the object store, never from a volume of the job:
    # no ReadWriteMany class needed; the job's checkout is a volume of its own pod
    assert env["TABML_CLUSTER_STORAGE"].startswith("s3://")
    worker_pod = cluster["spec"]["worker"]["spec"]
    assert all("persistentVolumeClaim" not in v for v in worker_pod["volumes"])
    assert "PersistentVolumeClaim" not in docs
    (workspace,) = [v for v in job["volumes"] if v["name"] == "workspace"]
    claim = workspace["ephemeral"]["volumeClaimTemplate"]["spec"]
    assert claim["accessModes"] == ["ReadWriteOnce"]
    (mount,) = [m for m in repro["volumeMounts"] if m["name"] == "workspace"]
    assert repro["args"][0].count(f"{mount['mountPath']}/$HOSTNAME") >= 2
    # the ranks' ports are open to this namespace only
    policy = docs["NetworkPolicy"]["spec"]
    assert policy["podSelector"]["matchLabels"]["dask.org/cluster-name"] == "tabml"
    assert policy["ingress"] == [{"from": [{"podSelector": {}}]}]


def test_every_pod_is_limited_locked_down_reaches_s3_through_a_role_and_sends_no_telemetry(
    docs: dict[str, dict[str, Any]],
) -> None:
    account = docs["ServiceAccount"]
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:")
    cluster = docs["DaskCluster"]["spec"]
    pods = {
        "job": docs["Job"]["spec"]["template"]["spec"],
        "worker": cluster["worker"]["spec"],
        "scheduler": cluster["scheduler"]["spec"],
    }
    for role, pod in pods.items():
        assert pod["serviceAccountName"] == account["metadata"]["name"], role
        assert pod["automountServiceAccountToken"] is False, role
        assert pod["securityContext"]["runAsNonRoot"] is True, role
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", role
        for container in pod["containers"]:
            assert "@sha256:" in container["image"], role
            assert set(container["resources"]) == {"requests", "limits"}, role
            sec = container["securityContext"]
            assert sec["readOnlyRootFilesystem"] is True, role
            assert sec["allowPrivilegeEscalation"] is False, role
            assert sec["capabilities"]["drop"] == ["ALL"], role
            env = _env(container)
            assert not {k for k in env if k.startswith("AWS_")}, f"{role}: keys in the manifest"
            assert env.get("ITERATIVE_DO_NOT_TRACK") == "1", role
            if role != "scheduler":
                assert env.get("NML_DISABLE_USAGE_LOGGING") == "1", role
