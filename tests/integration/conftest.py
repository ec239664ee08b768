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


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = copy_project(tmp_path_factory.mktemp("project"))
    proc = run_dvc("repro", cwd=repo)
    assert ran(proc.stdout) == STAGES
    return repo


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A moto S3 server (tests/integration/test_remote.py's S3Server) for one test module."""
    from tests.integration.test_remote import S3Server

    srv = S3Server(tmp_path_factory.mktemp("moto"))
    yield srv
    srv.stop()
