"""Retention: which day partitions of the prediction logs and labels are past their time.

Both are kept as `date=YYYY-MM-DD/` folders (the day a prediction was served, or a label
arrived). A partition is due for deletion once its day is more than `retention_days` before
today (UTC): with 180 days, on 2026-11-30 the oldest kept day is 2026-06-03.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

PARTITION = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


@dataclass
class Plan:
    expired: list[Path] = field(default_factory=list)  # partitions to delete
    kept: list[Path] = field(default_factory=list)
    undated: list[Path] = field(default_factory=list)  # files outside any date= partition
    oldest_kept: date | None = None


def plan(folder: Path, retention_days: int, today: date) -> Plan:
    """What pruning `folder` to `retention_days` days would delete and keep."""
    oldest = today - timedelta(days=retention_days)
    out = Plan(oldest_kept=oldest)
    if not folder.is_dir():
        return out
    for child in sorted(folder.iterdir()):
        if child.name.startswith("."):
            continue
        match = PARTITION.match(child.name) if child.is_dir() else None
        if match is None:
            out.undated.append(child)
            continue
        try:
            day = date.fromisoformat(match.group(1))
        except ValueError:
            out.undated.append(child)
            continue
        (out.expired if day < oldest else out.kept).append(child)
    return out
