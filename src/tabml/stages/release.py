"""release: the shell of `tabml gate` and `tabml release register|build` (commands, not stages).

Reads dvc.yaml's `artifacts:` (the one model artefact), params.yaml's `release` gates, the run's
metrics, and the previous release through GTO and DVC; the decisions are
`tabml.governance.release`'s.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tabml.adapters.dvc_adapter import metrics_at, repro, unclean_outputs
from tabml.core import io
from tabml.core.catalog import Repo
from tabml.core.config import ReleaseParams
from tabml.core.errors import ConfigError, DataError
from tabml.core.log import info
from tabml.governance import release as rel
from tabml.learning import package as pkg

PARAMS = ReleaseParams.param_keys()
# the GTO stage whose release the challenger is compared with on the same rows
PROD_STAGE = "prod"
NOTES = "RELEASE_NOTES.md"


def artifact(root: Path) -> tuple[str, dict[str, Any]]:
    """The model artefact dvc.yaml declares under `artifacts:` (there must be exactly one)."""
    declared = (yaml.safe_load((root / "dvc.yaml").read_text()) or {}).get("artifacts") or {}
    models = {k: v for k, v in declared.items() if (v or {}).get("type") == "model"}
    if len(models) != 1:
        raise ConfigError(
            f"{root / 'dvc.yaml'}: declare exactly one artefact of type: model under "
            f"'artifacts:' (found {sorted(models) or 'none'})"
        )
    (name, spec), *_ = models.items()
    return name, spec


def _git(root: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise rel.ReleaseError(f"git {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def latest_release(root: Path, name: str, below: str | None = None) -> tuple[str, str] | None:
    """(tag, version) of the highest released version of `name` (below `below`, if given).

    Releases are GTO registration tags, `<name>@vX.Y.Z`; GTO parses each one.
    """
    import semver

    versions = []
    for tag in _git(root, "tag", "--list", f"{name}@v*").splitlines():
        try:
            version = rel.parse_tag(tag, name)
        except rel.ReleaseError:
            continue  # not a registration (GTO's deprecations and the like)
        parsed = semver.Version.parse(version[1:])
        if below is None or parsed < semver.Version.parse(below[1:]):
            versions.append((parsed, tag, version))
    if not versions:
        return None
    _, tag, version = max(versions)
    return tag, version


@dataclass(frozen=True)
class SameRowsPaths:
    """This run's package and test split, on which the release in `prod` is compared."""

    package: Path = Path(Repo.PACKAGE)
    test: Path = Path(Repo.TEST)


def check(
    root: Path,
    params_file: Path,
    metrics: Path,
    monitoring: Path,
    below: str | None = None,
    paths: SameRowsPaths = SameRowsPaths(),
) -> list[rel.Gate]:
    """Every gate for the run in `root`, against the latest release (below version `below`)."""
    name, _ = artifact(root)
    previous = latest_release(root, name, below)
    return _gates(root, params_file, metrics, monitoring, previous, name, paths)


def in_prod(root: Path, name: str) -> tuple[str, str] | None:
    """(tag, version) of the release GTO says is in the `prod` stage, if any."""
    from gto.api import find_versions_in_stage
    from gto.exceptions import ArtifactNotFound

    try:
        found: Any = find_versions_in_stage(str(root), name, PROD_STAGE)
    except ArtifactNotFound:  # nothing registered yet: the first release
        return None
    if isinstance(found, list):
        found = found[0] if found else None
    if found is None:
        return None
    version = str(getattr(found, "version", found))
    return f"{name}@{version}", version


def against_prod(
    root: Path, name: str, paths: SameRowsPaths, time_rounds: int = 0
) -> tuple[str, Any, Any] | str | None:
    """The release in prod against this run, on this run's test split: (its tag, the paired
    result, the paired response time when `time_rounds`), the reason it cannot be had, or None
    when no release is in prod."""
    from tabml.stages.compare import against

    prod = in_prod(root, name)
    if prod is None:
        return None
    tag = prod[0]
    if not (root / paths.package).is_dir() or not (root / paths.test).is_file():
        return "this run has no package or test split: run 'dvc repro' first"
    result = against(
        root, tag, f"`{tag}`", paths.package, root / paths.test, Path(), Path(),
        time_rounds=time_rounds,
    )  # only the test split: the production batch moves with the data  # fmt: skip
    if isinstance(result, str):
        return result
    return tag, result.results["test"], result.latency


def _json_object(path: Path) -> dict[str, Any]:
    """A metrics file: a JSON object, or a DataError that names the file."""
    data = io.read_json(path)
    if not isinstance(data, dict):
        raise DataError(
            f"{path}: a JSON {type(data).__name__}, not a metrics file (an object such as "
            '{"test": {"roc_auc": 0.9, ...}})'
        )
    return data


def _gates(
    root: Path,
    params_file: Path,
    metrics: Path,
    monitoring: Path,
    previous: tuple[str, str] | None,
    name: str,
    paths: SameRowsPaths,
) -> list[rel.Gate]:
    params = ReleaseParams.load(params_file)
    cfg, schema = params.release, params.dataset_schema
    current = _json_object(metrics) if metrics.is_file() else {}
    alerts = _json_object(monitoring) if monitoring.is_file() else None
    before = None
    if previous is not None:
        key = metrics.resolve().relative_to(root.resolve()).as_posix()
        before = metrics_at(root, previous[0]).get(key, {})
    vs_prod = None
    if cfg.max_roc_auc_drop_vs_prod is not None or cfg.max_p99_ratio_vs_prod is not None:
        rounds = 30 if cfg.max_p99_ratio_vs_prod is not None else 0
        vs_prod = against_prod(root, name, paths, rounds)
    return rel.gates(
        cfg, current, alerts, before, previous[0] if previous else None, vs_prod,
        schema.protected, sources=(str(metrics), str(monitoring)),
    )  # fmt: skip


def _require_committed(root: Path) -> None:
    """Refuse uncommitted changes to tracked files: a release names exactly a commit."""
    dirty = _git(root, "status", "--porcelain", "--untracked-files=no")
    if dirty:
        raise rel.ReleaseError(
            "the workspace has uncommitted changes; commit or stash them first:\n  "
            + "\n  ".join(dirty.splitlines()[:10])
        )


def require_clean(root: Path) -> None:
    """Refuse uncommitted changes to tracked files, and outputs DVC says are stale."""
    _require_committed(root)
    stale = unclean_outputs(root)
    if stale:
        raise rel.ReleaseError(
            "dvc status is not clean (run 'dvc repro' and commit dvc.lock and reports):\n  "
            + "\n  ".join(stale[:10])
        )


def _require_gates(results: list[rel.Gate]) -> None:
    print(rel.gate_table(results))
    if not all(g.passed for g in results):
        raise rel.GatesFailed(
            f"quality gates failed; no release made:\n{rel.failures(results)}\n"
            "Change a limit in the file named, then run 'tabml params'; or improve the run."
        )


def register(root: Path, version: str, params_file: Path, metrics: Path, monitoring: Path) -> str:
    """Checks, then `gto register`: the annotated tag `<artifact>@<version>` on HEAD."""
    from gto.api import register as gto_register

    name, _ = artifact(root)
    previous = latest_release(root, name)
    rel.check_version(version, previous[1] if previous else None)
    require_clean(root)
    _require_gates(_gates(root, params_file, metrics, monitoring, previous, name, SameRowsPaths()))
    gto_register(str(root), name, "HEAD", version=version, message=f"Release {name} {version}")
    tag = f"{name}@{version}"
    info(f"release: tagged {tag}; publish it with: git push origin {tag}")
    return tag


def build(
    root: Path,
    tag: str,
    output_dir: Path,
    params_file: Path,
    metrics: Path,
    monitoring: Path,
    package: Path,
    pull: bool,
) -> Path:
    """The release build at the tagged commit: repro, gates, tarball, checksum, notes."""
    name, _ = artifact(root)
    version = rel.parse_tag(tag, name)
    tagged = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"refs/tags/{tag}^{{commit}}"],
        cwd=root,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not tagged:
        raise rel.ReleaseError(f"no tag {tag} in this repository ('git fetch --tags'?)")
    head = _git(root, "rev-parse", "HEAD")
    if tagged != head:
        raise rel.ReleaseError(
            f"the workspace is at {head[:8]}, not at {tag} ({tagged[:8]}); 'git checkout {tag}'"
        )
    _require_committed(root)
    info(f"release: {name} {version}: dvc repro at {tag}" + (" (pulling)" if pull else ""))
    repro(root, pull)
    require_clean(root)
    results = check(
        root, params_file, metrics, monitoring, below=version, paths=SameRowsPaths(package)
    )
    _require_gates(results)

    stem = f"{name}-{version}"
    tarball = output_dir / f"{stem}.tar.gz"
    mtime = int(_git(root, "show", "-s", "--format=%ct", "HEAD"))
    rel.write_tarball(package, tarball, stem, mtime)
    checksum = tarball.with_name(tarball.name + ".sha256")
    io.write_text(checksum, f"{pkg.sha256(tarball)}  {tarball.name}\n")
    io.write_text(output_dir / pkg.CARD, (package / pkg.CARD).read_text())
    notes = rel.release_notes(tag, io.read_json(metrics), results, checksum.name)
    io.write_text(output_dir / NOTES, notes)
    info(f"release: wrote {tarball}, {checksum.name}, {pkg.CARD} and {NOTES} in {output_dir}")
    return tarball
