"""Secrets from the environment: the variable itself, or a file that `NAME_FILE` points to.

The file form is how orchestrators hand secrets over without putting them in the environment,
where `ps e`, crash reports and child processes can read them: a Kubernetes Secret mounted as a
volume, a Docker or Podman secret under /run/secrets.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tabml.core.errors import ConfigError


def from_env(env: Mapping[str, str], name: str) -> str:
    """The secret in `name`, or read from the file named by `name`_FILE (one final newline
    dropped); "" when neither is set. Both set is an error: which one wins would be a guess."""
    path = env.get(f"{name}_FILE", "")
    value = env.get(name, "")
    if path and value:
        raise ConfigError(f"both {name} and {name}_FILE are set; set only one of them")
    if not path:
        return value
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        why = getattr(err, "strerror", None) or str(err)
        raise ConfigError(f"{name}_FILE={path}: cannot read the secret there ({why})") from None
    if text.endswith("\n"):
        text = text[:-1].removesuffix("\r")
    if not text:
        raise ConfigError(f"{name}_FILE={path}: the file is empty")
    return text
