"""The one place tabml calls DVC's Python API (so a DVC upgrade touches one file)."""

from __future__ import annotations

from pathlib import Path

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
