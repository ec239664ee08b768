"""The real pipeline, run once per test session by DVC in a throw-away copy of the project."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import copy_project, run_dvc

STAGES = ["ingest", "clean", "split", "train", "evaluate", "package", "monitor"]


def ran(output: str) -> list[str]:
    """The stages a `dvc repro` output says it ran or brought back from the run-cache (an
    earlier test may have run the same inputs in this project), in pipeline order."""
    return [
        s for s in STAGES
        if f"Running stage '{s}'" in output or f"Stage '{s}' is cached - skipping run" in output
    ]  # fmt: skip


def _build(dest: Path) -> Path:
    repo = copy_project(dest)
    proc = run_dvc("repro", cwd=repo)
    assert ran(proc.stdout) == STAGES
    return repo


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """The project after `dvc repro` on its bundled data. Built once per run: the first
    pytest-xdist worker to need it builds it, and each worker takes a copy of its own (tests
    run stages in it)."""
    if worker_id == "master":  # one process: no one to share with
        return _build(tmp_path_factory.mktemp("project"))
    import fcntl
    import shutil

    shared = tmp_path_factory.getbasetemp().parent  # this run's folder, the workers' parent
    built = shared / "project-built"
    with (shared / "project-built.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other worker waits while one builds
        if not (built / ".tabml-built").exists():
            shutil.rmtree(built, ignore_errors=True)  # a build that failed half-way
            built.mkdir()
            _build(built)
            (built / ".tabml-built").touch()
    repo = tmp_path_factory.mktemp("project") / "repo"
    shutil.copytree(built, repo, symlinks=True, ignore=shutil.ignore_patterns(".tabml-built"))
    return repo


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A moto S3 server (tests/integration/test_remote.py's S3Server) for one test module."""
    from tests.integration.test_remote import S3Server

    srv = S3Server(tmp_path_factory.mktemp("moto"))
    yield srv
    srv.stop()
