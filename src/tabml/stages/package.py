"""package: the model folder, schema.json, metadata.json, MODEL_CARD.md and MANIFEST.sha256."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import tabml
from tabml import io
from tabml import package as pkg
from tabml.config import Params, dump
from tabml.log import info
from tabml.schema import record_json_schema

PARAMS = ("seed", "dataset.name", "dataset.schema", "split", "model", "evaluate", "monitor")


def git_commit(cwd: Path) -> str:
    """The commit the workspace is on, or 'unknown' outside git."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


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
    params = Params.load(params_file, PARAMS)
    name = params.section("dataset.name")
    metrics = io.read_json(metrics_file)
    quality = io.read_json(quality_file)
    metadata: dict[str, Any] = {
        "name": name,
        "tabml_version": tabml.__version__,
        "git_commit": git_commit(Path.cwd()),
        "params": {
            "seed": params.section("seed"),
            "dataset": {"name": name, "schema": dump(params.section("dataset.schema"))},
            "split": dump(params.section("split")),
            "model": dump(params.section("model")),
            "evaluate": dump(params.section("evaluate")),
            "monitor": dump(params.section("monitor")),
        },
        "data": data_hashes(data_files),
        "split": io.read_json(split_file),
        "threshold": metrics["threshold"],
        "metrics": metrics,
    }
    with io.atomic_dir(output) as tmp:
        shutil.copytree(model_dir, tmp / pkg.MODEL_DIR)
        shutil.copyfile(reference, tmp / pkg.REFERENCE)
        schema = params.section("dataset.schema")
        io.write_json(tmp / pkg.SCHEMA, record_json_schema(schema, f"{name} input record"))
        io.write_json(tmp / pkg.METADATA, metadata)
        io.write_text(tmp / pkg.CARD, pkg.model_card(metadata, io.read_json(slices_file), quality))
        io.write_text(tmp / pkg.MANIFEST, pkg.manifest_text(tmp))
    n_files = len([p for p in output.rglob("*") if p.is_file()])
    info(f"package: wrote {output}/ ({n_files} files, listed in {pkg.MANIFEST})")
