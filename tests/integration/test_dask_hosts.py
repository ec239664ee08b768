"""compute=dask on a cluster of several hosts, simulated: three network namespaces joined by veth
pairs and a bridge, a Dask scheduler in the first and one worker in each, and the train stage
run from the host's own namespace. LightGBM's ranks then talk across the bridge, each from its
own address, as on separate machines.

What it shows: at a fixed rank count the model does not depend on the cluster. Three ranks on
three "hosts" write the same bytes as three ranks of a LocalCluster on 127.0.0.1. (The
filesystem is shared, as a shared volume would be on a real cluster; namespaces isolate only
the network.)

Making namespaces needs root (CAP_NET_ADMIN), which CI has. Where they cannot be made, the
workers run as separate processes on 127.0.0.1 instead, and the test says so in its output.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import BIN, make_frame, train_cli, write_params, write_splits

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


def _start(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    with log.open("wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)


def _wait_for_workers(address: str, n: int, timeout: float = 60) -> None:
    from dask.distributed import Client

    with Client(address, timeout="20s") as client:
        client.wait_for_workers(n, timeout=timeout)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    logs = tmp_path_factory.mktemp("cluster-logs")
    hosts = Hosts()
    dask = str(BIN / "dask")
    with ExitStack() as stack:
        why_not = "not Linux"
        if sys.platform == "linux":
            stack.callback(hosts.down)  # also after a partial set-up
            why_not = hosts.up()
        if why_not is None:
            scheduler = f"tcp://{hosts.addresses[0]}:{PORT}"
            commands = [
                hosts.run(
                    0,
                    [
                        dask,
                        "scheduler",
                        "--host",
                        hosts.addresses[0],
                        "--port",
                        str(PORT),
                        "--no-dashboard",
                    ],
                )
            ]
            for i, address in enumerate(hosts.addresses):
                commands.append(
                    hosts.run(
                        i,
                        [
                            dask,
                            "worker",
                            scheduler,
                            "--host",
                            address,
                            "--name",
                            f"host{i + 1}",
                            "--nthreads",
                            "1",
                            "--no-dashboard",
                            "--no-nanny",
                        ],
                    )
                )
            where = f"{HOSTS} network namespaces on bridge {hosts.bridge}"
        else:
            print(
                f"\nnetwork namespaces cannot be made here ({why_not}): the workers run as "
                "separate processes on 127.0.0.1 instead"
            )
            scheduler = f"tcp://127.0.0.1:{PORT + os.getpid() % 1000}"
            port = scheduler.rsplit(":", 1)[1]
            commands = [
                [dask, "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"]
            ]
            commands += [
                [
                    dask,
                    "worker",
                    scheduler,
                    "--host",
                    "127.0.0.1",
                    "--name",
                    f"host{i}",
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                    "--no-nanny",
                ]
                for i in range(1, HOSTS + 1)
            ]
            where = "processes on 127.0.0.1 (no namespaces)"
        procs = [_start(c, logs / f"{i}.log") for i, c in enumerate(commands)]
        for proc in procs:
            stack.callback(proc.wait, 30)
            stack.callback(proc.terminate)
        time.sleep(1)
        try:
            _wait_for_workers(scheduler, HOSTS)
        except Exception as err:
            text = "\n".join(p.read_text()[-1500:] for p in sorted(logs.iterdir()))
            raise AssertionError(f"the cluster ({where}) did not come up: {err}\n{text}") from err
        yield {"scheduler": scheduler, "where": where, "namespaces": why_not is None}


def _splits(folder: Path) -> Path:
    return write_splits(folder, make_frame(4_500, seed=4), 3_000, 750, 500)


def _train(tmp: Path, data: Path, name: str, scheduler: str | None) -> Any:
    params = write_params(tmp / f"{name}.yaml")
    tree = yaml.safe_load(params.read_text())
    tree["compute"] = {"backend": "dask", "workers": HOSTS, "connect_timeout_seconds": 20}
    tree["model"]["num_threads"] = 1
    tree["monitor"]["reference"]["max_rows"] = 1_000
    params.write_text(yaml.safe_dump(tree, sort_keys=False))
    out = tmp / name
    old = os.environ.pop("DASK_SCHEDULER_ADDRESS", None)
    if scheduler:
        os.environ["DASK_SCHEDULER_ADDRESS"] = scheduler
    try:
        proc = train_cli(params, data, out)
    finally:
        os.environ.pop("DASK_SCHEDULER_ADDRESS", None)
        if old is not None:
            os.environ["DASK_SCHEDULER_ADDRESS"] = old
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc.stderr


def test_three_ranks_on_three_hosts_train_the_model_three_local_ranks_train(
    cluster: dict[str, Any], tmp_path: Path
) -> None:
    data = _splits(tmp_path / "data")
    hosts, log = _train(tmp_path, data, "hosts", cluster["scheduler"])
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
