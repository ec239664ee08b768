"""The real pipeline, run once per test session by DVC in a throw-away copy of the project."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import copy_project, run_dvc

STAGES = ["ingest", "clean", "split", "train", "evaluate", "package", "monitor"]


def ran(output: str) -> list[str]:
    """The stages a `dvc repro` output says it ran, in pipeline order."""
    return [s for s in STAGES if f"Running stage '{s}'" in output]


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = copy_project(tmp_path_factory.mktemp("project"))
    proc = run_dvc("repro", cwd=repo)
    assert ran(proc.stdout) == STAGES
    return repo
