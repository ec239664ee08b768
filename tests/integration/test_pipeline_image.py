"""The pipeline image (`make pipeline-image`, the Dockerfile's `pipeline` target), built and run
with podman as deploy/k8s/dask runs it: non-root, on a read-only root filesystem, the Dask
commands the operator starts, git for the job's checkout, and LightGBM's ranks training the
very model the host trains (the same uv.lock).

Needs podman and runc, and the local base image (deploy/podman/setup; .ci/run runs it); where
they are missing, the tests skip and say so. The first build downloads the pipeline set
(about 2 minutes); later builds reuse podman's layer cache outside the clone.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tests.conftest import ROOT, make_frame, train_cli, write_params, write_splits
from tests.integration.test_image import _podman_env, run

IMAGE = "localhost/tabml-test-pipeline"


@pytest.fixture(scope="module")
def image() -> Iterator[tuple[dict[str, str], str]]:
    env = {**_podman_env(), "IMAGE": IMAGE}
    run(env, "make", "--no-print-directory", "pipeline-image", cwd=ROOT, timeout=900)
    yield env, f"{IMAGE}:latest"
    # the tag goes, the layers under it stay: a plain `rmi` also removes the untagged build
    # layers (apt, the 190 packages), which every later run then built again (about 100 s)
    run(env, "podman", "rmi", "--no-prune", "-f", f"{IMAGE}:latest", check=False)


def _podman(env: dict[str, str], image: str, *args: str, mounts: tuple[str, ...] = ()) -> Any:
    volumes = [a for m in mounts for a in ("-v", m)]
    return subprocess.run(
        [
            "podman",
            "run",
            "--rm",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--network",
            "none",
            *volumes,
            image,
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_image_runs_as_non_root_with_the_commands_the_cluster_and_job_need(
    image: tuple[dict[str, str], str],
) -> None:
    env, tag = image
    proc = _podman(
        env,
        tag,
        "sh",
        "-c",
        "id -u; git --version; dask scheduler --help >/dev/null && "
        "dask worker --help >/dev/null && tabml --help >/dev/null && dvc version -q "
        "&& echo ok",
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split()
    assert lines[0] == "10001" and "git" in lines and lines[-1] == "ok"


def test_ranks_in_the_image_train_the_model_the_host_trains(
    image: tuple[dict[str, str], str], tmp_path: Path
) -> None:
    env, tag = image
    data = write_splits(tmp_path / "data", make_frame(3_000, seed=2), 2_000, 500, 400)
    params = write_params(data / "params.yaml")
    tree = yaml.safe_load(params.read_text())
    tree["compute"] = {"backend": "dask", "workers": 2}
    tree["monitor"]["reference"]["max_rows"] = 1_000
    tree["model"]["num_threads"] = 1
    params.write_text(yaml.safe_dump(tree, sort_keys=False))
    out = tmp_path / "out"
    out.mkdir(mode=0o777)
    out.chmod(0o777)

    args = [
        "tabml",
        "train",
        "--params",
        "/data/params.yaml",
        "--input-dir",
        "/data",
        "--model-dir",
        "/out/model",
        "--live-dir",
        "/out/live",
        "--reference",
        "/out/reference.parquet",
        "--valid-scores",
        "/out/valid_scores.parquet",
    ]
    proc = _podman(env, tag, *args, mounts=(f"{data}:/data:ro", f"{out}:/out"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "started a local Dask cluster of 2 worker processes" in proc.stderr
    host = tmp_path / "host"

    done = train_cli(data / "params.yaml", data, host)
    assert done.returncode == 0, done.stderr
    for name in ("model/model.txt", "model/model.json"):
        assert (out / name).read_bytes() == (host / name).read_bytes(), name
    assert pd.read_parquet(out / "valid_scores.parquet").equals(
        pd.read_parquet(host / "valid_scores.parquet")
    )
