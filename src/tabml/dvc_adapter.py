"""The one place tabml calls DVC's Python API (so a DVC upgrade touches one file)."""

from __future__ import annotations

from pathlib import Path


def compose_params(config_dir: Path, output: Path, overrides: list[str]) -> None:
    """Compose Hydra's conf/ into params.yaml with the same function `dvc exp run` uses."""
    from dvc.utils.hydra import compose_and_dump

    compose_and_dump(output, str(config_dir.resolve()), None, "config", str(config_dir), overrides)
