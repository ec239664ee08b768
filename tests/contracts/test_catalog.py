"""The catalog (tabml.core.catalog) and dvc.yaml name the same files.

dvc.yaml writes the folders; the catalog writes the names inside them. A renamed output that
one of the two missed would leave a stage reading a file nobody writes, or the pull-request
report silently without a section; these tests fail first.
"""

from __future__ import annotations

import shlex
from pathlib import PurePosixPath

import pytest
import yaml

from tabml.core import catalog
from tests.conftest import ROOT

DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())
STAGES = DVC["stages"]

# dvc.yaml's folder -> the catalog class that names its files
FOLDERS: dict[str, type] = {
    "data/raw": catalog.Raw,
    "data/interim": catalog.Interim,
    "data/processed": catalog.Splits,
    "models/model": catalog.Model,
    "reports/train": catalog.TrainLive,
    "data/predictions": catalog.Predictions,
    "reports/plots": catalog.Plots,
    "reports/monitoring": catalog.Monitoring,
    "models/package": catalog.Package,
}


def _path(entry: object) -> str:
    return next(iter(entry)) if isinstance(entry, dict) else str(entry)


def _declared() -> set[str]:
    """Every path dvc.yaml names: stage deps, outs, metrics and plots, and top-level plots."""
    paths = {
        _path(e)
        for stage in STAGES.values()
        for key in ("deps", "outs", "metrics", "plots")
        for e in stage.get(key, [])
    }
    for plot in DVC.get("plots", []):
        spec = next(iter(plot.values())) if isinstance(plot, dict) else None
        for side in ("x", "y"):
            value = (spec or {}).get(side)
            if isinstance(value, dict):
                paths |= set(value)
    return paths


def _command_args() -> set[str]:
    return {a for stage in STAGES.values() for a in shlex.split(stage["cmd"])}


@pytest.mark.parametrize("folder", sorted(FOLDERS))
def test_every_catalog_folder_is_one_dvc_yaml_passes_to_a_stage(folder: str) -> None:
    assert folder in _command_args(), f"no stage is given {folder} on its command line"


def test_every_file_dvc_yaml_names_inside_a_stage_folder_is_in_the_catalog() -> None:
    checked = 0
    for path in _declared():
        parent, name = str(PurePosixPath(path).parent), PurePosixPath(path).name
        for folder, names in FOLDERS.items():
            if parent == folder:
                assert name in catalog.names(names).values(), (
                    f"dvc.yaml names {path}, but tabml.core.catalog.{names.__name__} has no "
                    f"{name!r}"
                )
                checked += 1
    assert checked >= 10  # the test looked at the files it is about


def test_every_monitoring_file_is_a_declared_output() -> None:
    """`tabml monitor` writes each of these; dvc.yaml must track each, or a rerun keeps the
    old one."""
    monitor = {_path(e) for k in ("outs", "metrics") for e in STAGES["monitor"].get(k, [])}
    expected = {f"reports/monitoring/{n}" for n in catalog.names(catalog.Monitoring).values()}
    assert monitor == expected


def test_every_repository_path_of_the_catalog_is_in_dvc_yaml() -> None:
    """The defaults of the commands outside the pipeline, and what `tabml report` reads at a
    revision: each must be a path dvc.yaml declares, or a folder it passes."""
    declared, args = _declared(), _command_args()
    paths = [*catalog.names(catalog.Repo).values(), *catalog.Repo.PLOT_FILES.values()]
    for path in paths:
        assert path in declared or path in args, f"catalog.Repo: {path} is not in dvc.yaml"


def test_the_report_reads_what_evaluate_and_monitor_write() -> None:
    from tabml.reporting import report
    from tabml.stages import report as stage

    for path in (report.METRICS, report.MONITORING_METRICS, report.SUMMARY, report.DATA_QUALITY):
        assert path in _declared(), path
    for path in stage.MONITORING_CHARTS.values():
        assert path in _declared(), path
