"""compute=dask on a cluster of several hosts, simulated: three network namespaces joined by veth
pairs and a bridge, a Dask scheduler in the first and one worker in each, and a moto S3 server
on the bridge as the object store. The stages run from the host's own namespace; the workers
talk across the bridge, each from its own address, as on separate machines.

The workers share no volume with the stages: each worker runs in a mount namespace where the
tests' folders are an empty tmpfs, so it reads a stage's inputs only from the store
($TABML_CLUSTER_STORAGE), where the stage copies them.

What it shows:
- the whole pipeline (`dvc repro`, compute=dask with one rank) on the three hosts writes what
  it writes on one machine;
- at a fixed rank count the model does not depend on the cluster: three ranks on three
  "hosts" write the same bytes as three ranks of a LocalCluster on 127.0.0.1.

Making namespaces needs root (CAP_NET_ADMIN), which CI has. Where they cannot be made, the
workers run as separate processes on 127.0.0.1 instead, and see the tests' files; the test
says so in its output.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import (
    BIN,
    ROOT,
    make_frame,
    tool_env,
    train_cli,
    write_params,
    write_splits,
)

HOSTS = 3
PORT = 8786


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True)


class Hosts:
    """Three namespaces tabml-<tag>-h1..h3 on bridge br-<tag>, at 10.<n>.0.11..13."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 10000}"
        self.bridge = f"tbr{tag}"
        self.names = [f"tabml-{tag}-h{i}" for i in range(1, HOSTS + 1)]
        self.veths = [f"tv{tag}h{i}" for i in range(1, HOSTS + 1)]
        net = 100 + os.getpid() % 100
        self.gateway = f"10.{net}.0.1"
        self.addresses = [f"10.{net}.0.{10 + i}" for i in range(1, HOSTS + 1)]

    def up(self) -> str | None:
        """Make them; None when done, else why not."""
        steps = [
            ("link", "add", self.bridge, "type", "bridge"),
            ("addr", "add", f"{self.gateway}/24", "dev", self.bridge),
            ("link", "set", self.bridge, "up"),
        ]
        for name, veth, address in zip(self.names, self.veths, self.addresses, strict=True):
            steps += [
                ("netns", "add", name),
                ("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name),
                ("link", "set", veth, "master", self.bridge, "up"),
                ("-n", name, "addr", "add", f"{address}/24", "dev", "eth0"),
                ("-n", name, "link", "set", "eth0", "up"),
                ("-n", name, "link", "set", "lo", "up"),
            ]
        for step in steps:
            proc = _ip(*step)
            if proc.returncode != 0:
                return f"ip {' '.join(step)}: {proc.stderr.strip()}"
        return None

    def down(self) -> None:
        for name in self.names:
            _ip("netns", "del", name)
        _ip("link", "del", self.bridge)

    def run(self, host: int, args: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.names[host], *args]


def _start(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)


def _wait_for_workers(address: str, n: int, timeout: float = 60) -> None:
    from dask.distributed import Client

    with Client(address, timeout="20s") as client:
        client.wait_for_workers(n, timeout=timeout)


def _worker(address: str, name: str, scheduler: str, hide: Path | None) -> list[str]:
    """A Dask worker's command; with `hide`, in a mount namespace of its own where that
    folder (the tests' workspaces) is an empty tmpfs: the worker cannot read them."""
    command = [str(BIN / "dask"), "worker", scheduler, "--host", address, "--name", name]
    command += ["--nthreads", "1", "--no-dashboard", "--no-nanny"]
    if hide is None:
        return command
    script = 'mount -t tmpfs tabml-hidden "$0" && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(hide),
            *command]  # fmt: skip


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The scheduler, three workers and a moto S3 server (the object store the workers read
    the stages' files from: they share no volume with the stages)."""
    from tests.integration.test_remote import BUCKET, S3Server

    logs = tmp_path_factory.mktemp("cluster-logs")
    hosts = Hosts()
    dask = str(BIN / "dask")
    with ExitStack() as stack:
        why_not = "not Linux"
        if sys.platform == "linux":
            stack.callback(hosts.down)  # also after a partial set-up
            why_not = hosts.up()
        if why_not is None:
            # the store listens on the bridge, where the hosts reach it
            store = S3Server(tmp_path_factory.mktemp("moto"), hosts.gateway)
            stack.callback(store.stop)
            scheduler = f"tcp://{hosts.addresses[0]}:{PORT}"
            # the workers see none of the tests' files: only the store has the stages' inputs
            hide = tmp_path_factory.getbasetemp()
            commands = [
                hosts.run(0, [dask, "scheduler", "--host", hosts.addresses[0], "--port",
                              str(PORT), "--no-dashboard"])
            ]  # fmt: skip
            for i, address in enumerate(hosts.addresses):
                commands.append(hosts.run(i, _worker(address, f"host{i + 1}", scheduler, hide)))
            where = f"{HOSTS} network namespaces on bridge {hosts.bridge}, the files hidden"
        else:
            print(
                f"\nnetwork namespaces cannot be made here ({why_not}): the workers run as "
                "separate processes on 127.0.0.1 instead, and can see the tests' files"
            )
            store = S3Server(tmp_path_factory.mktemp("moto"))
            stack.callback(store.stop)
            scheduler = f"tcp://127.0.0.1:{PORT + os.getpid() % 1000}"
            port = scheduler.rsplit(":", 1)[1]
            commands = [
                [dask, "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"]
            ]
            commands += [
                _worker("127.0.0.1", f"host{i}", scheduler, None) for i in range(1, HOSTS + 1)
            ]
            where = "processes on 127.0.0.1 (no namespaces)"
        # what the stages and the workers need to reach the store (on Kubernetes: the
        # service account's role, docs/scale.md)
        aws = {k: v for k, v in store.env().items() if k.startswith("AWS_")}
        aws["AWS_ENDPOINT_URL"] = store.endpoint
        env = {**os.environ, **aws, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
        procs = [_start(c, logs / f"{i}.log", env) for i, c in enumerate(commands)]
        for proc in procs:
            stack.callback(proc.wait, 30)
            stack.callback(proc.terminate)
        time.sleep(1)
        try:
            _wait_for_workers(scheduler, HOSTS)
        except Exception as err:
            text = "\n".join(p.read_text()[-1500:] for p in sorted(logs.iterdir()))
            raise AssertionError(f"the cluster ({where}) did not come up: {err}\n{text}") from err
        yield {
            "scheduler": scheduler,
            "where": where,
            "namespaces": why_not is None,
            "store": store,
            "env": {**aws, "DASK_SCHEDULER_ADDRESS": scheduler,
                    "TABML_CLUSTER_STORAGE": f"s3://{BUCKET}/cluster"},
        }  # fmt: skip


def _splits(folder: Path) -> Path:
    return write_splits(folder, make_frame(4_500, seed=4), 3_000, 750, 500)


def _train(tmp: Path, data: Path, name: str, cluster_env: dict[str, str] | None) -> Any:
    params = write_params(tmp / f"{name}.yaml")
    tree = yaml.safe_load(params.read_text())
    tree["compute"] = {"backend": "dask", "workers": HOSTS, "connect_timeout_seconds": 20}
    tree["model"]["num_threads"] = 1
    tree["monitor"]["reference"]["max_rows"] = 1_000
    params.write_text(yaml.safe_dump(tree, sort_keys=False))
    out = tmp / name
    with _environment(cluster_env):
        proc = train_cli(params, data, out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc.stderr


@contextlib.contextmanager
def _environment(cluster_env: dict[str, str] | None) -> Iterator[None]:
    """The cluster's variables set (None: unset, for a local cluster), then as they were."""
    keys = ["DASK_SCHEDULER_ADDRESS", "TABML_CLUSTER_STORAGE", *(cluster_env or {})]
    saved = {k: os.environ.pop(k, None) for k in keys}
    os.environ.update(cluster_env or {})
    try:
        yield
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None)
            if value is not None:
                os.environ[key] = value


def test_three_ranks_on_three_hosts_train_the_model_three_local_ranks_train(
    cluster: dict[str, Any], tmp_path: Path
) -> None:
    data = _splits(tmp_path / "data")
    hosts, log = _train(tmp_path, data, "hosts", cluster["env"])
    print(f"cluster: {cluster['where']}")
    assert f"connecting to the Dask scheduler at {cluster['scheduler']}" in log
    if cluster["namespaces"]:
        # the ranks are the three hosts, in name order, each at its own address
        ranks = log.split("as ranks 0..2: ", 1)[1].splitlines()[0].split(", ")
        assert len({r.rsplit(":", 1)[0] for r in ranks}) == HOSTS, ranks
    local, log = _train(tmp_path, data, "local", None)
    assert "started a local Dask cluster of 3 worker processes" in log
    for name in (
        "model/model.txt",
        "model/model.json",
        "valid_scores.parquet",
        "reference.parquet",
    ):
        assert (hosts / name).read_bytes() == (local / name).read_bytes(), name


def _digests(repo: Path) -> dict[str, str]:
    return {
        f.relative_to(repo).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()
        for top in ("data", "models", "reports")
        for f in sorted((repo / top).rglob("*"))
        if f.is_file()
    }


def test_the_whole_pipeline_on_three_hosts_writes_what_it_writes_on_one_machine(
    cluster: dict[str, Any], project: Path, tmp_path: Path
) -> None:
    """Every stage that can run on the cluster runs there, reading its inputs from the store,
    and every data, model and report file is the one compute=local wrote (with one rank, train
    is single-machine training on a worker)."""
    from dask.distributed import Client

    from tests.integration.test_remote import BUCKET

    repo = tmp_path / "repo"
    shutil.copytree(project, repo, symlinks=True)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    dask = yaml.safe_load((ROOT / "conf/compute/dask.yaml").read_text())
    params["compute"] = {**dask, "workers": 1, "connect_timeout_seconds": 20}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    if cluster["namespaces"]:
        with Client(cluster["scheduler"], timeout="20s") as client:
            seen = client.run(os.path.exists, str(repo / "dvc.yaml"))
        assert not any(seen.values()), f"the workers see the workspace: {seen}"
    proc = subprocess.run(
        [str(BIN / "dvc"), "repro"],
        cwd=repo,
        env={**tool_env(), **cluster["env"]},
        capture_output=True,
        text=True,
    )
    print(f"cluster: {cluster['where']}")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    log = proc.stdout + proc.stderr
    # the bundled sources are CSV files, which ingest reads itself (a CSV is not cut into
    # ranges); every later stage's inputs are Parquet, read by the workers from the store
    assert "a CSV is not cut into parts for the workers" in log
    for stage in ("clean", "split", "train", "evaluate", "monitor"):
        assert f"{stage}: copied " in log, stage
    assert "started a local Dask cluster" not in log
    ours, theirs = _digests(repo), _digests(project)
    assert ours.keys() == theirs.keys()
    changed = {name for name in ours if ours[name] != theirs[name]}
    # only the train metrics differ: they record the rank count
    assert changed == {"reports/train/metrics.json"}, changed
    metrics = json.loads((repo / "reports/train/metrics.json").read_text())
    local = json.loads((project / "reports/train/metrics.json").read_text())
    assert metrics.pop("dask_workers") == 1 and metrics == local
    # the workers' copies are gone from the store
    left = cluster["store"].s3().list_objects_v2(Bucket=BUCKET, Prefix="cluster/")
    assert left.get("KeyCount", 0) == 0, [o["Key"] for o in left.get("Contents", [])]
