"""The one place tabml calls DVC's Python API (so a DVC upgrade touches one file)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tabml.core.errors import ConfigError


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


def conf_choices(config_dir: Path, overrides: list[str]) -> dict[str, str]:
    """The option of each config group that composing `overrides` selects, e.g.
    `{"dataset": "fair", "monitor": "fair", "model": "lightgbm", ...}` (the data set's own
    overrides included), so that an error can name the file the user edits."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(str(config_dir.resolve()), version_base=None):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    GlobalHydra.instance().clear()
    return {
        str(k): str(v)
        for k, v in cfg.hydra.runtime.choices.items()
        if v is not None and not str(k).startswith("hydra/")
    }


def resolve_experiment(root: Path, name: str) -> str:
    """The commit of a DVC experiment (its name, as `dvc exp show` lists it) or of a git
    revision; a ConfigError when there is none."""
    import subprocess

    from dvc.repo import Repo
    from dvc.repo.experiments.utils import exp_refs

    with Repo(str(root)) as repo:
        found = [ref for ref in exp_refs(repo.scm) if ref.name == name]
        if len(found) > 1:
            shown = ", ".join(str(ref) for ref in found)
            raise ConfigError(
                f"{len(found)} experiments are named {name} ({shown}): use its commit"
            )
        sha = repo.scm.get_ref(str(found[0])) if found else None
    if sha is None:
        check = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}"],
            cwd=root, capture_output=True, text=True,
        )  # fmt: skip
        sha = check.stdout.strip() or None
    if sha is None:
        raise ConfigError(
            f"no experiment or commit named '{name}'; 'dvc exp show' lists the experiments"
        )
    return str(sha)


def experiment_params(root: Path, name: str) -> str:
    """The params.yaml of a DVC experiment (its name, as `dvc exp show` lists it, or its
    commit), as text."""
    import subprocess

    sha = resolve_experiment(root, name)
    params = subprocess.run(
        ["git", "show", f"{sha}:params.yaml"], cwd=root, capture_output=True, text=True
    )
    if params.returncode != 0:
        raise ConfigError(f"experiment {name} ({sha[:8]}) has no params.yaml")
    return params.stdout


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
        # a base without the file (a first pull request, say) simply lacks it, and so does one
        # whose copy is in neither the local cache nor a remote this machine may read: a
        # fork's pull request gets botocore's NoCredentialsError, and each remote's library
        # (S3, GCS, Azure, SSH) raises its own, so any failure of this optional read counts;
        # the report then shows this change's alone and says why
        with contextlib.suppress(Exception):
            base_files[path] = json.loads(dvc.api.read(path, repo=str(root), rev=base))
    return side(base, base, commit, base_files), side(
        "workspace", "workspace", head_commit, head_files
    )


def stage_changes(root: Path, base: str, stage: str) -> list[str]:
    """What makes `stage` of the workspace differ from `stage` at git revision `base`: its
    definition in dvc.yaml, a dependency (files tracked by git; DVC-tracked data through its
    `.dvc` files) or a declared param. Empty when none differs: its entry in dvc.lock, and so
    its outputs, are then those of `base` (`dvc repro --pull` fetches them, runs nothing)."""
    import subprocess

    import yaml

    def at(rev: str | None, path: str) -> Any:
        if rev is None:
            file = root / path
            return yaml.safe_load(file.read_text(encoding="utf-8")) if file.is_file() else None
        shown = subprocess.run(
            ["git", "show", f"{rev}:{path}"], cwd=root, capture_output=True, text=True
        )
        return yaml.safe_load(shown.stdout) if shown.returncode == 0 else None

    if subprocess.run(["git", "rev-parse", "--verify", "-q", f"{base}^{{commit}}"], cwd=root,
                      capture_output=True).returncode != 0:  # fmt: skip
        raise ConfigError(
            f"--base {base}: no such git revision here. In CI, check out with full history "
            "(fetch-depth: 0)"
        )
    now = (at(None, "dvc.yaml") or {}).get("stages", {}).get(stage)
    if now is None:
        raise ConfigError(f"dvc.yaml has no stage {stage!r}")
    before = (at(base, "dvc.yaml") or {}).get("stages", {}).get(stage)
    if before != now:
        return ["its definition in dvc.yaml"]
    reasons: list[str] = []
    paths = [d for d in now.get("deps", []) if isinstance(d, str)]
    diff = subprocess.run(
        ["git", "diff", "--name-only", base, "--", *paths], cwd=root, capture_output=True,
        text=True, check=True,
    ).stdout.split()  # fmt: skip
    untracked = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard", "--", *paths], cwd=root,
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    reasons += sorted(set(diff) | set(untracked))
    old, new = at(base, "params.yaml") or {}, at(None, "params.yaml") or {}
    for key in now.get("params", []):
        if isinstance(key, str) and _dig(old, key) != _dig(new, key):
            reasons.append(f"params {key}")
    return reasons


def _dig(tree: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(tree, dict):
            return None
        tree = tree.get(part)
    return tree


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


def tracked_roots(root: Path, files: Sequence[Path]) -> list[Path]:
    """The `dvc add`-ed paths (a file, or a folder) that hold `files`: those with a `.dvc` file
    beside them. Files no .dvc file tracks (pipeline outputs, untracked files) are left out."""
    out: list[Path] = []
    top = root.resolve()
    for f in files:
        here = f.resolve()
        for candidate in (here, *here.parents):
            if candidate == top.parent or top not in (candidate, *candidate.parents):
                break
            if candidate.with_name(candidate.name + ".dvc").is_file():
                if candidate not in out:
                    out.append(candidate)
                break
    return out


@dataclass(frozen=True)
class Purged:
    local: int
    remote: int
    commits: list[str]


def _holds(data: bytes, subjects: Any, id_column: str | None) -> bool:
    """Whether one stored object (no name, no extension: judged by its bytes) holds a subject."""
    import io as stdio

    import pandas as pd

    if data[:4] == b"PAR1":
        import pyarrow.parquet as pq

        try:
            frame = pq.read_table(stdio.BytesIO(data)).to_pandas()
        except Exception:  # not readable as a table: judge its bytes
            return bool(subjects.in_bytes(data))
        return bool(subjects.match_frame(frame, id_column).any())
    if id_column is not None and id_column.encode() in data[:10_000]:
        frame = None
        with contextlib.suppress(Exception):  # a CSV with the id column, or bytes to judge
            frame = pd.read_csv(stdio.BytesIO(data), dtype=str, keep_default_na=False)
        if frame is not None and id_column in frame:
            return bool(subjects.match_frame(frame, id_column).any())
    return bool(subjects.in_bytes(data))


def check_remote(root: Path, remote: str | None) -> str | None:
    """The remote a purge would reach, checked now: its name (None when there is no remote),
    or a ConfigError that says why it cannot be read, before anything has been changed."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        name = remote or repo.config["core"].get("remote")
        if not name:
            return None
        try:
            rodb = repo.cloud.get_remote_odb(name, "forget")
            rodb.fs.exists(rodb.path)
            next(iter(rodb.all()), None)  # listing needs the same rights as the purge
        except Exception as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConfigError(
                f"the DVC remote {name!r} cannot be read ({reason}); nothing was changed. Give "
                "the credentials the pipeline pushes with (or --remote NAME), then run the same "
                "'tabml forget' again"
            ) from None
        return str(name)


def purge(
    root: Path,
    subjects: Any,
    id_column: str | None,
    remote: str | None,
    objects: frozenset[str] = frozenset(),
) -> Purged:
    """Delete every object that holds a subject from the local DVC cache, then the remote.

    Each stored object is read: Parquet and CSV objects as tables (the id column, personal
    values in any column), anything else as bytes (personal values and keyed hashes as text);
    `objects` (from the ledger: what the rewritten files were before) go by name. The local
    cache goes first, so that a remote that fails half-way leaves no local copy; then the
    workspace's current state is pushed (it no longer holds them) and the remote is purged.
    Returns how many objects went where, and the commits whose dvc.lock or .dvc files name a
    deleted object or a folder manifest listing one: those revisions can no longer be checked
    out whole.
    """
    import json
    import subprocess

    from dvc.repo import Repo

    from tabml.core.log import info

    with Repo(str(root)) as repo:
        odb = repo.cache.local
        deleted: set[str] = set()
        manifests: dict[str, set[str]] = {}
        local = set(odb.all())
        for oid in sorted(local):
            path = Path(odb.oid_to_path(oid))
            if oid.endswith(".dir"):
                entries = json.loads(path.read_text(encoding="utf-8"))
                manifests[oid] = {e["md5"] for e in entries if "md5" in e}
            elif oid in objects or _holds(path.read_bytes(), subjects, id_column):
                deleted.add(oid)
        for oid in deleted:
            odb.delete(oid)
        info(f"forget: deleted {len(deleted)} object(s) from the local cache")
        remote_deleted = 0
        has_remote = bool(remote or repo.config["core"].get("remote"))
        if has_remote:
            info("forget: dvc push (the current state, without them)")
            repo.push(remote=remote)
            rodb = repo.cloud.get_remote_odb(remote, "forget")
            for oid in list(rodb.all()):
                if oid.endswith(".dir"):
                    continue
                if oid not in deleted and oid not in objects:
                    if oid in local:
                        continue  # judged above: clean
                    with rodb.fs.open(rodb.oid_to_path(oid), "rb") as fh:
                        if not _holds(fh.read(), subjects, id_column):
                            continue
                rodb.delete(oid)
                remote_deleted += 1
                deleted.add(oid)
            info(f"forget: deleted {remote_deleted} object(s) from the remote")
        local_deleted = len(local & deleted)
    broken = deleted | {m.removesuffix(".dir") for m, files in manifests.items() if files & deleted}
    commits = []
    listed = subprocess.run(
        ["git", "rev-list", "--all"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()
    for sha in listed:
        names = subprocess.run(
            ["git", "ls-tree", "-r", "--name-only", sha], cwd=root, capture_output=True,
            text=True, check=True,
        ).stdout.split()  # fmt: skip
        texts = [
            subprocess.run(
                ["git", "show", f"{sha}:{n}"], cwd=root, capture_output=True, text=True
            ).stdout
            for n in names
            if n == "dvc.lock" or n.endswith(".dvc")
        ]
        if any(oid in text for text in texts for oid in broken):
            commits.append(sha)
    return Purged(local_deleted, remote_deleted, commits)
