"""package: the model folder, schema.json, metadata.json, MODEL_CARD.md and MANIFEST.sha256."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import tabml
from tabml.core import io
from tabml.core.config import PackageParams, dump
from tabml.core.log import info
from tabml.core.schema import record_json_schema
from tabml.learning import package as pkg

PARAMS = PackageParams.param_keys()


# what a package is built from, besides the data (whose hashes metadata.json records)
GIT_INPUTS = ("src", "conf", "dvc.yaml", "params.yaml", "pyproject.toml", "uv.lock")


def _git(cwd: Path, *args: str) -> str | None:
    try:
        return subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def git_commit(cwd: Path) -> str:
    """The last commit that changed the code or configuration ('unknown' outside git).

    Not HEAD: committing `dvc.lock` and the reports after a run must not make a rebuild of the
    same code and data differ, so a fresh clone reproduces the package byte for byte.
    """
    return _git(cwd, "log", "-1", "--format=%H", "--", *GIT_INPUTS) or "unknown"


def git_dirty(cwd: Path) -> bool | None:
    """Whether those inputs have uncommitted changes (None outside git)."""
    out = _git(cwd, "status", "--porcelain", "--untracked-files=no", "--", *GIT_INPUTS)
    return None if out is None else bool(out)


def data_hashes(files: list[Path]) -> dict[str, str]:
    """MD5 of each data file: the same hash DVC records for it in dvc.lock."""
    import hashlib

    out = {}
    for f in files:
        h = hashlib.md5(usedforsecurity=False)
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        out[f.as_posix()] = h.hexdigest()
    return out


def run(
    params_file: Path,
    model_dir: Path,
    metrics_file: Path,
    slices_file: Path,
    quality_file: Path,
    split_file: Path,
    data_files: list[Path],
    reference: Path,
    output: Path,
) -> None:
    params = PackageParams.load(params_file)
    name, schema = params.name, params.dataset_schema
    metrics = io.read_json(metrics_file)
    quality = io.read_json(quality_file)
    metadata: dict[str, Any] = {
        "name": name,
        "tabml_version": tabml.__version__,
        "git_commit": git_commit(Path.cwd()),
        "git_dirty": git_dirty(Path.cwd()),
        "params": {
            "seed": params.seed,
            "dataset": {"name": name, "schema": dump(schema)},
            "split": dump(params.split),
            "model": dump(params.model),
            "evaluate": dump(params.evaluate),
            "monitor": dump(params.monitor),
            "fairness_limits": {
                "demographic_parity_difference": params.max_demographic_parity_difference,
                "equalized_odds_difference": params.max_equalized_odds_difference,
            },
        },
        "data": data_hashes(data_files),
        "split": io.read_json(split_file),
        "threshold": metrics["threshold"],
        "metrics": metrics,
    }
    with io.atomic_dir(output) as tmp:
        shutil.copytree(model_dir, tmp / pkg.MODEL_DIR)
        shutil.copyfile(reference, tmp / pkg.REFERENCE)
        io.write_json(tmp / pkg.SCHEMA, record_json_schema(schema, f"{name} input record"))
        io.write_json(tmp / pkg.METADATA, metadata)
        io.write_text(tmp / pkg.CARD, pkg.model_card(metadata, io.read_json(slices_file), quality))
        io.write_text(tmp / pkg.MANIFEST, pkg.manifest_text(tmp))
    n_files = len([p for p in output.rglob("*") if p.is_file()])
    info(f"package: wrote {output}/ ({n_files} files, listed in {pkg.MANIFEST})")
