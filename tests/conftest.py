"""Shared fixtures: small synthetic datasets and a throw-away copy of the project."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
os.environ.setdefault("ITERATIVE_DO_NOT_TRACK", "1")


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """Every test in tests/integration is `slow` (it runs DVC, the pipeline, a server or a
    container): `make test-fast` is `-m "not slow"`, `make test` runs both in one pass.

    The others keep the fast tier's 60 s limit in either run. Alone, unit and contract tests
    come first, since they fail fastest. With the slow ones, those go first instead, so the
    quick tests fill the workers' tails: one pass took about a minute less than the two tiers
    run one after the other."""
    import pytest

    for item in items:
        if Path(str(item.fspath)).parent.name == "integration":
            item.add_marker(pytest.mark.slow)
        elif item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(60))
    fast_only = "not slow" in (config.getoption("markexpr") or "")
    first = ["unit", "contracts", "integration"]
    order = {name: i for i, name in enumerate(first if fast_only else first[::-1])}
    items.sort(key=lambda item: order.get(Path(str(item.fspath)).parent.name, 3))


def make_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """A small loan-like dataset whose target depends on its features."""
    rng = np.random.default_rng(seed)
    income = rng.choice(["low", "mid", "high"], n)
    amount = rng.uniform(1_000, 50_000, n).round(0)
    ratio = rng.uniform(0, 1, n)
    owner = rng.choice([True, False], n)
    logit = 2.5 * (ratio - 0.5) - amount / 40_000 + np.where(income == "high", 1.0, 0.0)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-3 * logit))).astype(int)
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "ts": pd.date_range("2024-01-01", periods=n, freq="h").astype(str),
            "amount": amount,
            "income": income,
            "ratio": ratio,
            "owner": owner,
            "email": [f"user{i}@example.com" for i in range(n)],
            "y": y,
        }
    )
    frame.loc[rng.choice(n, n // 20, replace=False), "ratio"] = np.nan
    return frame


def write_groups(frame: pd.DataFrame, path: Path, group_rows: int) -> str:
    """A Parquet file of `frame` in row groups of `group_rows`, typed as the stages write."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    pq.write_table(table, path, row_group_size=group_rows)
    return str(path)


def write_splits(folder: Path, frame: pd.DataFrame, train: int, valid: int, group: int) -> Path:
    """train, valid and test files in `folder` (made): the first `train` rows, the next
    `valid`, the rest; without the personal-data column the pipeline never keeps."""
    folder.mkdir(parents=True, exist_ok=True)
    frame = frame.drop(columns=["email"], errors="ignore")
    parts = {"train": frame.iloc[:train], "valid": frame.iloc[train : train + valid]}
    parts["test"] = frame.iloc[train + valid :]
    for name, part in parts.items():
        write_groups(part.reset_index(drop=True), folder / f"{name}.parquet", group)
    return folder


def schema_dict(**changes: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "id": "id",
        "timestamp": "ts",
        "target": {"column": "y", "positive": 1},
        "features": {
            "amount": {"kind": "numeric", "min": 0},
            "income": {"kind": "categorical", "categories": ["low", "mid", "high"]},
            "ratio": {"kind": "numeric", "min": 0, "max": 1},
            "owner": {"kind": "boolean"},
        },
        "ignore": [],
        "extra_columns": "reject",
        "pii": {"email": "pseudonymise"},
    }
    schema.update(changes)
    return schema


def write_params(
    path: Path, schema: dict[str, Any] | None = None, source: str = "dev.csv", **sections: Any
) -> Path:
    """A complete params.yaml for the small dataset, on top of the repo's default sections."""
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    base["dataset"] = {
        "name": "mini",
        "sources": {"development": source, "production": None, "production_labels": None},
        "schema": schema or schema_dict(),
        "segments": ["income"],
    }
    base["model"] = {
        **base["model"],
        "num_boost_round": 50,
        "early_stopping_rounds": 10,
        "min_child_samples": 5,
    }
    # chunks small enough for a few hundred development rows (ingest checks it early)
    base["monitor"] = {**base["monitor"], "chunking": {"method": "rows", "rows": 10}}
    for key, value in sections.items():
        base[key] = value
    path.write_text(yaml.safe_dump(base, sort_keys=False, allow_unicode=True))
    return path


def tool_env() -> dict[str, str]:
    """The environment with this virtualenv's scripts first on PATH, as `uv run` gives."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


def _run(
    tool: str, args: tuple[str, ...], cwd: Path | None, check: bool
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(BIN / tool), *args], cwd=cwd, env=tool_env(), capture_output=True, text=True
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{tool} {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_cli(
    *args: str, cwd: Path | None = None, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run the installed `tabml` console script, as dvc would."""
    return _run("tabml", args, cwd, check)


def train_cli(
    params: Path, inputs: Path, out: Path, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`tabml train` on the splits in `inputs`, everything it writes under `out` (model/,
    live/, reference.parquet, valid_scores.parquet)."""
    return run_cli(
        "train",
        "--params",
        str(params),
        "--input-dir",
        str(inputs),
        "--model-dir",
        str(out / "model"),
        "--live-dir",
        str(out / "live"),
        "--reference",
        str(out / "reference.parquet"),
        "--valid-scores",
        str(out / "valid_scores.parquet"),
        cwd=cwd,
    )


def run_dvc(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return _run("dvc", args, cwd, check)


def copy_project(dest: Path) -> Path:
    """A fresh git repository holding the project's files as in the working tree: tracked ones
    and new ones git does not ignore (no data, no models)."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    # the working tree may hold uncommitted edits: take those too
    for name in ["dvc.yaml", "params.yaml", ".dvc/config", ".gitignore", ".dvcignore"]:
        shutil.copy2(ROOT / name, dest / name)
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "copy")
    return dest


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@contextlib.contextmanager
def small_disk(folder: Path, size: str = "256k") -> Iterator[Path]:
    """A small tmpfs at `folder`: a disk that fills. Needs root (as CI runs); skips elsewhere."""
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.decode()[:200]}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill_disk(folder: Path) -> Path:
    """Fill the disk `folder` is on; returns the file to remove to make room again."""
    ballast = folder / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"x" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    return ballast
