"""The one place tabml calls DVC's Python API (so a DVC upgrade touches one file)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tabml.errors import ConfigError


def compose_params(config_dir: Path, output: Path, overrides: list[str]) -> None:
    """Compose Hydra's conf/ into params.yaml with the same function `dvc exp run` uses."""
    from dvc.utils.hydra import compose_and_dump
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if not (config_dir / "config.yaml").is_file():
        raise ConfigError(f"{config_dir}: no config.yaml; point --config-dir at tabml's conf/")
    try:
        compose_and_dump(
            output, str(config_dir.resolve()), None, "config", str(config_dir), overrides
        )
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(
            f"{config_dir}: cannot compose {overrides or 'the defaults'}: {err}"
        ) from None


@dataclass(frozen=True)
class Revision:
    """What DVC tracks at one revision: metrics, params, plot data and some JSON reports.

    Each mapping is keyed by the file's path relative to the repository root and holds the
    file's parsed content; a file the revision does not have is absent.
    """

    name: str
    commit: str | None
    metrics: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    plots: dict[str, Any] = field(default_factory=dict)
    reports: dict[str, Any] = field(default_factory=dict)


def _by_file(shown: dict[str, Any], rev: str) -> dict[str, Any]:
    """`{file: content}` from the result of DVC's metrics/params/plots show, errors dropped."""
    shown_rev = shown.get(rev, {})
    # plots nest one level deeper: {"definitions": ..., "sources": {"data": {file: ...}}}
    files = shown_rev.get("sources", shown_rev).get("data", {})
    return {
        path: entry["data"]
        for path, entry in files.items()
        if isinstance(entry, dict) and "data" in entry and "error" not in entry
    }


def read_revisions(root: Path, base: str, reports: Sequence[str]) -> tuple[Revision, Revision]:
    """The base revision and the workspace, as DVC sees them (never by parsing git objects).

    Metrics, params and plot files are the ones dvc.yaml declares; `reports` are further JSON
    files (relative to `root`), read at the base through `dvc.api.read`.
    """
    import json

    import dvc.api
    from dvc.exceptions import DvcException
    from dvc.repo import Repo
    from dvc.scm import RevError, resolve_rev

    try:
        with Repo(str(root)) as repo:
            commit = resolve_rev(repo.scm, base)
            head_commit = repo.scm.get_rev()
            revs = ["workspace", base]
            metrics = repo.metrics.show(revs=revs)
            params = repo.params.show(revs=revs)
            plots = repo.plots.show(revs=revs)
    except RevError:
        raise ConfigError(
            f"--base {base}: no such git revision here. In CI, check out with full history "
            "(fetch-depth: 0); locally, 'git fetch' the branch or give a commit"
        ) from None
    except DvcException as err:
        raise ConfigError(f"{root}: DVC cannot read this repository: {err}") from None

    def side(name: str, key: str, sha: str | None, files: dict[str, Any]) -> Revision:
        return Revision(
            name=name,
            commit=sha,
            metrics=_by_file(metrics, key),
            params=_by_file(params, key).get("params.yaml", {}),
            plots=_by_file(plots, key),
            reports=files,
        )

    head_files: dict[str, Any] = {}
    base_files: dict[str, Any] = {}
    for path in reports:
        if (root / path).is_file():
            head_files[path] = json.loads((root / path).read_text(encoding="utf-8"))
        # a base without the file (a first pull request, say) simply lacks it
        with contextlib.suppress(DvcException):
            base_files[path] = json.loads(dvc.api.read(path, repo=str(root), rev=base))
    return side(base, base, commit, base_files), side(
        "workspace", "workspace", head_commit, head_files
    )


def metrics_at(root: Path, rev: str) -> dict[str, Any]:
    """`{metrics file: content}` at a git revision, for the files dvc.yaml declares there."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            return _by_file(repo.metrics.show(revs=[rev]), rev)
    except DvcException as err:
        raise ConfigError(f"{root}: DVC cannot read the metrics at {rev}: {err}") from None


def unclean_outputs(root: Path) -> list[str]:
    """What `dvc status` reports as changed, one line per stage or file (empty: up to date)."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        status = repo.status()
    return [f"{stage}: {change}" for stage, changes in status.items() for change in changes]


def repro(root: Path, pull: bool) -> None:
    """`dvc repro` (with `--pull --allow-missing` to fetch what the remote already has)."""
    import subprocess
    import sys

    args = [sys.executable, "-m", "dvc", "repro"] + (["--pull", "--allow-missing"] if pull else [])
    if subprocess.run(args, cwd=root).returncode != 0:
        raise ConfigError(f"dvc repro failed in {root}; see its output above")


def add(path: Path) -> None:
    """`dvc add path`: track a data file (its .dvc file goes beside it)."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo() as repo:
            repo.add(str(path))
    except DvcException as err:
        raise ConfigError(f"dvc add {path} failed: {err}") from None


def get_output(root: Path, rev: str, path: str, dest: Path) -> None:
    """Copy a DVC-tracked output (`path`, a file or folder) as it was at git revision `rev`
    into `dest`, from the local cache or the remote; a `ConfigError` says why it cannot."""
    from dvc.api import DVCFileSystem

    try:
        fs = DVCFileSystem(url=str(root), rev=rev)
        if not fs.exists(path):
            raise ConfigError(f"{path} is not tracked at {rev}")
        fs.get(path, str(dest), recursive=True)
    except ConfigError:
        raise
    except Exception as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(
            f"{path} at {rev} is neither in the local DVC cache nor readable from the remote "
            f"({reason})"
        ) from None
