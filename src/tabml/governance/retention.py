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

from tabml.core.errors import ConfigError

PARTITION = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
# a retention or window longer than this is a typing error, not a policy (100 years)
MAX_DAYS = 36_500


def parse_day(text: str, option: str) -> date:
    """A day given on the command line, as a date: YYYY-MM-DD, or any ISO 8601 form of a day
    (20261201, 2026-W49-1). Partitions are compared with it as dates, never as text."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"{option} {text!r}: give a day as YYYY-MM-DD (e.g. 2026-12-01)"
        ) from None


def window_start(today: date, days: int, option: str) -> date:
    """The first day of a window of `days` days that ends `today`; a clear error for a count
    outside 1..MAX_DAYS, or a window that would start before year 1."""
    if not 1 <= days <= MAX_DAYS:
        raise ConfigError(f"{option} {days}: give a number of days from 1 to {MAX_DAYS:,}")
    try:
        return today - timedelta(days=days)
    except OverflowError:
        raise ConfigError(
            f"{option} {days} counted back from {today} goes before the year 1: check the day"
        ) from None


def partition_day(name: str) -> date | None:
    """The day of a `date=YYYY-MM-DD` folder name; None for any other name or an impossible
    day."""
    match = PARTITION.match(name)
    if match is None:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


@dataclass
class Plan:
    expired: list[Path] = field(default_factory=list)  # partitions to delete
    kept: list[Path] = field(default_factory=list)
    undated: list[Path] = field(default_factory=list)  # files outside any date= partition
    links: list[Path] = field(default_factory=list)  # symbolic links: never followed nor deleted
    oldest_kept: date | None = None


def plan(folder: Path, retention_days: int, today: date) -> Plan:
    """What pruning `folder` to `retention_days` days would delete and keep. A symbolic link
    among the partitions is set apart: deleting through it could reach outside the folder,
    and deleting the link alone would delete nothing."""
    oldest = window_start(today, retention_days, "--days")
    out = Plan(oldest_kept=oldest)
    if not folder.is_dir():
        return out
    for child in sorted(folder.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_symlink():
            out.links.append(child)
            continue
        day = partition_day(child.name) if child.is_dir() else None
        if day is None:
            out.undated.append(child)
            continue
        (out.expired if day < oldest else out.kept).append(child)
    return out
