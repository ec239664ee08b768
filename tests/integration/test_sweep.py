"""A grid sweep through DVC's queue with Hydra's sweep syntax (docs/tuning.md): each
combination is one queued experiment, composed from conf/ with its overrides."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import copy_project, run_dvc


def test_a_grid_queues_one_experiment_per_combination(tmp_path: Path) -> None:
    repo = copy_project(tmp_path / "repo")
    run_dvc("exp", "run", "--queue", "-S", "model.learning_rate=0.02,0.05",
            "-S", "model.num_leaves=31,63", cwd=repo)  # fmt: skip
    shown = json.loads(run_dvc("exp", "show", "--json", cwd=repo).stdout)
    grid = set()
    for rev in shown:
        for exp in rev.get("experiments") or []:
            for r in exp.get("revs", []):
                model = r["data"]["params"]["params.yaml"]["data"]["model"]
                grid.add((model["learning_rate"], model["num_leaves"]))
                # the rest is conf/ as composed: the same dataset and the other settings
                assert r["data"]["params"]["params.yaml"]["data"]["dataset"]["name"] == "car_loan"
    assert grid == {(0.02, 31), (0.02, 63), (0.05, 31), (0.05, 63)}
    run_dvc("queue", "remove", "--all", cwd=repo)
