"""Where raw files come from: data sets bundled in the nannyml package, or the user's files.

A source is `nannyml://FILE` for a file in `nannyml/datasets/data/`, or a file name relative to
the sources folder that `dvc.yaml` hands to ingest (`data/external/`), tracked with `dvc add`
so that a change to it re-runs ingest.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path, PurePosixPath

from tabml.core.errors import ConfigError

BUNDLED_SCHEME = "nannyml://"


def bundled_dir() -> Path:
    """The folder of data sets shipped inside nannyml, found without importing nannyml."""
    spec = importlib.util.find_spec("nannyml")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the nannyml package is not installed; run 'make sync'")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


def list_bundled() -> list[str]:
    """Names of the bundled data files."""
    return sorted(
        p.name for p in bundled_dir().iterdir() if p.suffix in (".csv", ".pq", ".parquet")
    )


def is_bundled(source: str) -> bool:
    """Whether a source is a data set bundled in nannyml (not a file the team controls)."""
    return source.startswith(BUNDLED_SCHEME)


def resolve(source: str, sources_dir: Path) -> Path:
    """The file a source names."""
    if source.startswith(BUNDLED_SCHEME):
        name = source.removeprefix(BUNDLED_SCHEME)
        path = bundled_dir() / name
        if "/" in name or not path.is_file():
            raise ConfigError(
                f"source '{source}': no such bundled data set. Bundled files: {list_bundled()}"
            )
        return path
    rel = PurePosixPath(source)
    if rel.is_absolute() or ".." in rel.parts or "://" in source:
        raise ConfigError(
            f"source '{source}': give a file name inside {sources_dir}/ (tracked with "
            f"'dvc add {sources_dir}/FILE'), or nannyml://FILE for a bundled data set"
        )
    return sources_dir / rel
