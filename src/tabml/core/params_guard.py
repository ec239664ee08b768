"""What `tabml params` must not throw away: values in params.yaml that conf/ does not give.

`dvc exp apply` writes an experiment's values into params.yaml; composing conf/ again would
put the conf values back without a word. So before it writes, `tabml params` compares the
params.yaml there with the two versions it may replace without loss: the one it wrote last
(its SHA-256, kept in `.dvc/tmp/tabml/`, beside DVC's own temporary files) and the one git
holds at HEAD. Anything else came from somewhere else, and is refused with the keys that
would change.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

from tabml.core.errors import ConfigError


def _record(params: Path) -> Path | None:
    dvc_dir = params.resolve().parent / ".dvc"
    return dvc_dir / "tmp" / "tabml" / f"{params.name}.sha256" if dvc_dir.is_dir() else None


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def remember(params: Path) -> None:
    """Note what was just written, so that the next run may replace it."""
    record = _record(params)
    if record is not None:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(_digest(params.read_text(encoding="utf-8")) + "\n", encoding="utf-8")


def _in_git(params: Path) -> str | None:
    folder = params.resolve().parent
    shown = subprocess.run(
        ["git", "show", f"HEAD:./{params.name}"], cwd=folder, capture_output=True, text=True
    )
    return shown.stdout if shown.returncode == 0 else None


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def changed_keys(old: str, new: str) -> list[str]:
    """`key: old -> new` for every leaf that differs."""
    import yaml

    a, b = _flat(yaml.safe_load(old) or {}), _flat(yaml.safe_load(new) or {})
    return [
        f"{k}: {a.get(k)!r} -> {b.get(k)!r}"
        for k in sorted(set(a) | set(b))
        if a.get(k) != b.get(k)
    ]


def refuse_to_lose(params: Path, new: str) -> None:
    """A ConfigError when writing `new` over `params` would lose values nothing else holds."""
    if not params.is_file():
        return
    current = params.read_text(encoding="utf-8")
    if current == new or current == _in_git(params):
        return
    record = _record(params)
    written = record.read_text(encoding="utf-8").strip() if record and record.is_file() else ""
    if written == _digest(current):
        return  # what this command wrote last
    changes = changed_keys(current, new)
    shown = "\n  ".join(changes[:20]) + (
        f"\n  ... and {len(changes) - 20} more" if len(changes) > 20 else ""
    )
    raise ConfigError(
        f"{params} holds values that conf/ does not give (an applied experiment, 'dvc exp "
        f"apply', or an edit), and writing it again would lose them:\n  {shown}\n"
        "Carry them into conf/ (e.g. conf/model/<name>.yaml) and run 'tabml params' again, or "
        "give --force to discard them"
    )
