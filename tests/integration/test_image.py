"""The serving image, built and run with podman: as a release is deployed (docs/deploy.md).

Needs podman and runc, and the local base image (deploy/podman/setup makes both; .ci/run
runs it). Where they are missing, every test here skips and says so.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tabml.cli import PIPELINE_MODULES
from tabml.governance import release as rel
from tabml.learning import package as pkg
from tabml.learning.predict import score
from tests.conftest import BIN, ROOT, tool_env

VERSION = "v9.8.7"
IMAGE = "localhost/tabml-test-model"
TOKEN = "image-test-token"
# the targets (docs/benchmarks.md has the measured figures)
MAX_IMAGE_BYTES = 400 * 1000**2


def _podman_env() -> dict[str, str]:
    missing = [tool for tool in ("podman", "runc") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed: run deploy/podman/setup (as root)")
    proc = subprocess.run(
        [str(ROOT / "deploy/podman/setup")], capture_output=True, text=True, timeout=900
    )
    if proc.returncode != 0:
        pytest.skip(f"podman cannot run here: deploy/podman/setup failed: {proc.stderr[-500:]}")
    exports = proc.stdout.strip().splitlines()[-1].removeprefix("export ").split()
    return {**tool_env(), **dict(pair.split("=", 1) for pair in exports)}


@pytest.fixture(scope="module")
def podman() -> dict[str, str]:
    return _podman_env()


def run(env: dict[str, str], *args: str, check: bool = True, **kw: Any) -> Any:
    proc = subprocess.run(args, env=env, capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def image(project: Path, podman: dict[str, str]) -> Iterator[str]:
    """The release tarball of the session's package, and its image built as a user would."""
    dist = project / "dist"
    stem = f"tabml-model-{VERSION}"
    tarball = dist / f"{stem}.tar.gz"
    rel.write_tarball(project / "models/package", tarball, stem, 1_700_000_000)
    tarball.with_name(tarball.name + ".sha256").write_text(
        f"{pkg.sha256(tarball)}  {tarball.name}\n"
    )
    env = {**podman, "IMAGE": IMAGE}
    built = run(env, str(project / "deploy/podman/build-image"), VERSION, cwd=project, timeout=900)
    tag = built.stdout.strip().splitlines()[-1]
    assert tag == f"{IMAGE}:{VERSION}"
    yield tag
    # the tag goes, the layers under it stay: a plain `rmi` also removes the untagged build
    # layers, and the next run would install every package again (podman image prune frees them)
    run(podman, "podman", "rmi", "--no-prune", "-f", tag, check=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, timeout: float = 30) -> float:
    """Seconds until /ready answers 200."""
    import httpx

    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return time.perf_counter() - start
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise AssertionError(f"/ready did not answer within {timeout} s")


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records", date_format="iso"))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def batch(project: Path) -> pd.DataFrame:
    frame = pd.read_parquet(project / "data/raw/production.parquet")
    return frame.drop(columns=["y_pred_proba", "y_pred"], errors="ignore").iloc[:400]


def test_the_image_is_small_labelled_and_holds_only_the_serving_set(
    image: str, podman: dict[str, str], project: Path
) -> None:
    info = json.loads(run(podman, "podman", "image", "inspect", image).stdout)[0]
    assert info["Size"] <= MAX_IMAGE_BYTES, f"{info['Size'] / 1e6:.0f} MB"
    labels = info["Labels"]
    meta = json.loads((project / "models/package/metadata.json").read_text())
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["org.opencontainers.image.revision"] == meta["git_commit"]
    assert labels["ai.tabml.model.name"] == "tabml-model"
    assert info["Config"]["User"] == "10001:10001"
    found = run(
        podman, "podman", "run", "--rm", "--network", "none", "--entrypoint", "python3", image,
        "-c", "import importlib.util as u, sys; "
        f"print(sorted(m for m in {sorted(PIPELINE_MODULES)!r} if u.find_spec(m)))",
    ).stdout  # fmt: skip
    assert found.strip() == "[]", f"pipeline modules in the serving image: {found}"


def start_service(podman: dict[str, str], image: str, logs: Path, *extra: str) -> tuple[str, int]:
    """`podman run -d` of the image as the docs run it: read-only root, the log volume, a
    loopback port; its name and port once it is up."""
    logs.mkdir()
    port = free_port()
    name = f"tabml-test-{port}"
    run(
        podman, "podman", "run", "-d", "--name", name, "--read-only", "--tmpfs", "/tmp",
        "-v", f"{logs}:/var/log/tabml:U", "-p", f"127.0.0.1:{port}:8000", *extra, image,
    )  # fmt: skip
    return name, port


def test_the_container_serves_as_tabml_predict_scores_as_non_root_on_a_read_only_root(
    image: str, podman: dict[str, str], project: Path, batch: pd.DataFrame, tmp_path: Path
) -> None:
    import httpx

    logs = tmp_path / "logs"
    name, port = start_service(podman, image, logs, "-e", f"TABML_API_TOKEN={TOKEN}")
    try:
        wait_ready(port)
        assert run(podman, "podman", "exec", name, "id", "-u").stdout.strip() == "10001"
        wrote = run(podman, "podman", "exec", name, "touch", "/opt/model/x", check=False)
        assert wrote.returncode != 0 and "Read-only file system" in wrote.stderr
        r = httpx.post(
            f"http://127.0.0.1:{port}/predict",
            json={"records": records(batch)},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        assert httpx.get(f"http://127.0.0.1:{port}/metadata").status_code == 401
    finally:
        run(podman, "podman", "stop", "-t", "30", name, check=False)
        run(podman, "podman", "rm", "-f", name, check=False)
    served = pd.DataFrame(r.json()["predictions"]).set_index("id")
    # tabml predict on the host, and in the image (the serving-only environment)
    want = score(pkg.load(project / "models/package"), batch, "batch").set_index("id")
    assert (served["score"] == want.loc[served.index, "score"]).all(), "not byte for byte"
    assert (served["label"] == want.loc[served.index, "label"]).all()
    batch.to_parquet(tmp_path / "in.parquet")
    out = tmp_path / "out"
    out.mkdir()
    run(
        podman, "podman", "run", "--rm", "--read-only", "--tmpfs", "/tmp", "--network", "none",
        "-v", f"{tmp_path / 'in.parquet'}:/in/in.parquet:ro", "-v", f"{out}:/out:U",
        "--entrypoint", "tabml", image,
        "predict", "--package", "/opt/model", "--input", "/in/in.parquet",
        "--output", "/out/scores.parquet",
    )  # fmt: skip
    inside = pd.read_parquet(out / "scores.parquet").set_index("id")
    pd.testing.assert_frame_equal(inside, want, check_exact=True)
    logged = pd.read_parquet(logs / "predictions")
    assert len(logged) == len(batch)
    # the audit log: one file per container (host) and process and day, in day partitions
    (audit_file,) = (logs / "audit").glob("date=*/audit-*.jsonl")
    audit = [json.loads(line) for line in audit_file.read_text().splitlines()]
    assert [
        (a["endpoint"], a["status"], a["caller"]) for a in audit if a["endpoint"] == "/predict"
    ] == [("/predict", 200, "default")]


def test_sigterm_in_the_container_loses_no_acknowledged_prediction(
    image: str, podman: dict[str, str], batch: pd.DataFrame, tmp_path: Path
) -> None:
    """Requests keep coming while `podman stop` sends SIGTERM: every prediction the service
    acknowledged is in the log on the volume afterwards."""
    import httpx

    logs = tmp_path / "logs"
    name, port = start_service(podman, image, logs, "-e", f"TABML_API_TOKEN={TOKEN}")
    acknowledged: list[str] = []
    stop = threading.Event()
    auth = {"Authorization": f"Bearer {TOKEN}"}

    def client(offset: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10, headers=auth) as c:
            i = offset
            while not stop.is_set():
                part = batch.iloc[(i * 7) % 380 : (i * 7) % 380 + 7]
                try:
                    r = c.post("/predict", json={"records": records(part)})
                except httpx.TransportError:
                    return  # the server has stopped taking connections
                if r.status_code == 200:
                    acknowledged.append(r.json()["request_id"])
                i += 1

    try:
        wait_ready(port)
        threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        deadline = time.time() + 30
        while len(acknowledged) < 40 and time.time() < deadline:
            time.sleep(0.01)
        stopped = run(podman, "podman", "stop", "-t", "30", name)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        state = json.loads(run(podman, "podman", "inspect", name).stdout)[0]["State"]
    finally:
        stop.set()
        run(podman, "podman", "rm", "-f", name, check=False)
    assert stopped.returncode == 0
    assert state["ExitCode"] == 0, "SIGTERM is a clean exit, not a kill after the grace period"
    assert len(acknowledged) >= 40
    logged = pd.read_parquet(logs / "predictions")
    missing = set(acknowledged) - set(logged["request_id"])
    assert not missing, f"{len(missing)} acknowledged requests missing from the log"
    assert len(logged) == 7 * len(acknowledged)


def test_podman_kube_play_of_the_rendered_deployment_serves_predict(
    image: str, podman: dict[str, str], project: Path, batch: pd.DataFrame, tmp_path: Path
) -> None:
    """The example overlay, rendered by kubectl kustomize, run by podman: the container part of
    the manifests (probes, security context, secrets as files, volumes) is real."""
    import httpx

    rendered = subprocess.run(
        [str(BIN / "kubectl"), "kustomize", str(project / "deploy/k8s/overlays/example")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    docs = list(yaml.safe_load_all(rendered))
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    container = spec["containers"][0]
    # only what a local run must change: the image (no registry), one replica, a host port,
    # and the ReadWriteMany claim (no cluster storage here) as an empty folder
    container["image"] = image
    container["imagePullPolicy"] = "Never"
    port = free_port()
    container["ports"][0]["hostPort"] = port
    deployment["spec"]["replicas"] = 1
    deployment["metadata"]["name"] = name = f"tabml-kube-{port}"
    for volume in spec["volumes"]:
        if "persistentVolumeClaim" in volume:
            del volume["persistentVolumeClaim"]
            volume["emptyDir"] = {}
    secrets = [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret},
         "data": {key: base64.b64encode(value.encode()).decode()}}
        for secret, key, value in [("tabml-api", "token", TOKEN), ("tabml-pii", "key", "k" * 32)]
    ]  # fmt: skip
    play = tmp_path / "play.yaml"
    play.write_text(yaml.safe_dump_all([*secrets, deployment]))
    for secret in ("tabml-api", "tabml-pii"):
        run(podman, "podman", "secret", "rm", secret, check=False)
    run(podman, "podman", "kube", "play", str(play))
    try:
        wait_ready(port, timeout=60)
        # podman 4.3 mounts a Secret's data without base64-decoding it; a cluster decodes
        tokens = [TOKEN, base64.b64encode(TOKEN.encode()).decode()]
        answers = [
            httpx.post(
                f"http://127.0.0.1:{port}/predict",
                json={"records": records(batch.iloc[:20])},
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            for token in tokens
        ]
        unauthenticated = httpx.post(
            f"http://127.0.0.1:{port}/predict", json={"records": records(batch.iloc[:1])}
        )
        pods = run(podman, "podman", "pod", "ps", "--format", "{{.Name}}").stdout
    finally:
        run(podman, "podman", "kube", "down", str(play), check=False)
        for secret in ("tabml-api", "tabml-pii"):
            run(podman, "podman", "secret", "rm", secret, check=False)
    assert name in pods
    assert unauthenticated.status_code == 401, "the token comes from the mounted Secret"
    ok = [a for a in answers if a.status_code == 200]
    assert len(ok) == 1, [a.status_code for a in answers]
    assert len(ok[0].json()["predictions"]) == 20


def test_build_image_says_what_to_do_without_a_release(
    podman: dict[str, str], project: Path
) -> None:
    proc = run(
        podman, str(project / "deploy/podman/build-image"), "v0.0.99", cwd=project, check=False
    )
    assert proc.returncode == 2
    assert "tabml release build --tag tabml-model@v0.0.99" in proc.stderr
    assert os.environ.get("IMAGE") is None  # nothing leaked into this process
