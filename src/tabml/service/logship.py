"""Prediction logs between the serving volume and an object store, by closed day partition.

`ship` copies every file of a day partition older than today (UTC: the day is over, and no
server writes it any more) that the store does not hold yet, to `URL/date=YYYY-MM-DD/NAME`.
Each file is written whole (one upload), and a log file never changes once it has its name
(the name is unique per server and flush), so a file the store holds with the same size is
the same file: a rerun ships nothing twice, and a run cut short is finished by the next.
Hidden files (the spool, a write in progress) never leave the volume; nor does the audit log,
which is not under the prediction log's folder.

`pull` copies the store's partitions within a window (from `since`, never older than the
retention period) that the local folder lacks, for `tabml monitor` and `tabml append`.

Where: `s3://bucket/prefix` (credentials as AWS's tools find them: a pod's service-account
role, OIDC in CI, or keys; `AWS_ENDPOINT_URL` for another S3 endpoint), or `file:///path`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from tabml.core.errors import ConfigError, DataError
from tabml.core.log import info
from tabml.governance.retention import partition_day


@dataclass
class Moved:
    copied: list[str] = field(default_factory=list)  # date=.../name, in order
    present: int = 0  # already there, the same size
    open_days: list[str] = field(default_factory=list)  # partitions not shipped: not closed
    skipped: list[str] = field(default_factory=list)  # outside the window or the retention


def store(url: str) -> tuple[Any, str]:
    """The object store's filesystem and the root path inside it."""
    import pyarrow.fs as pafs

    if not url.startswith(("s3://", "file://")):
        raise ConfigError(f"{url}: give s3://bucket/prefix (or file:///path)")
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    if url.startswith("s3://"):
        bucket_and_prefix = url.removeprefix("s3://").strip("/")
        if not bucket_and_prefix:
            raise ConfigError(f"{url}: no bucket")
        options: dict[str, Any] = {}
        if endpoint:
            scheme, _, host = endpoint.partition("://")
            options = {"endpoint_override": host, "scheme": scheme}
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if region:
            options["region"] = region
        return pafs.S3FileSystem(**options), bucket_and_prefix
    fs, path = pafs.FileSystem.from_uri(url)
    return fs, path.rstrip("/")


def _listing(fs: Any, root: str) -> dict[str, int]:
    """`date=.../name` -> size, for every file under the store's root."""
    import pyarrow.fs as pafs

    try:
        infos = fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    except OSError as err:
        raise DataError(f"{root}: cannot list the object store ({err})") from None
    out = {}
    for item in infos:
        if item.type == pafs.FileType.File:
            out[item.path[len(root) :].lstrip("/")] = item.size
    return out


def _files(folder: Path) -> dict[str, tuple[date, Path]]:
    """`date=.../name` -> (day, file) for the table files of the day partitions of `folder`
    (hidden ones left out)."""
    out: dict[str, tuple[date, Path]] = {}
    if not folder.is_dir():
        return out
    for part in sorted(folder.iterdir()):
        day = partition_day(part.name) if part.is_dir() and not part.is_symlink() else None
        if day is None:
            continue
        for file in sorted(part.iterdir()):
            if file.is_file() and not file.name.startswith("."):
                out[f"{part.name}/{file.name}"] = (day, file)
    return out


def ship(folder: Path, url: str, today: date) -> Moved:
    """Copy the closed day partitions of `folder` to the store (see the module's docstring)."""
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder of prediction logs")
    fs, root = store(url)
    there = _listing(fs, root)
    out = Moved()
    for key, (day, file) in _files(folder).items():
        if day >= today:
            if key.split("/")[0] not in out.open_days:
                out.open_days.append(key.split("/")[0])
            continue
        size = file.stat().st_size
        if there.get(key) == size:
            out.present += 1
            continue
        try:
            with fs.open_output_stream(f"{root}/{key}") as sink, file.open("rb") as src:
                while chunk := src.read(1 << 20):
                    sink.write(chunk)
        except OSError as err:
            raise DataError(
                f"{url}/{key}: cannot be written ({err}); {len(out.copied)} file(s) were "
                "shipped before it. Run the same command again: it ships only what is missing"
            ) from None
        out.copied.append(key)
        if len(out.copied) % 100 == 0:
            info(f"logs ship: {len(out.copied):,} file(s) so far")
    return out


def pull(url: str, folder: Path, since: date | None, oldest: date) -> Moved:
    """Copy the store's partitions from `since` on (and never before `oldest`, the retention
    period's first day) that `folder` lacks."""
    from tabml.core import io

    fs, root = store(url)
    out = Moved()
    first = max(since, oldest) if since is not None else oldest
    for key, size in sorted(_listing(fs, root).items()):
        part, _, name = key.partition("/")
        day = partition_day(part)
        if day is None or "/" in name or name.startswith("."):
            continue
        if day < first:
            out.skipped.append(key)
            continue
        target = folder / part / name
        if target.is_file() and target.stat().st_size == size:
            out.present += 1
            continue
        with io.atomic_path(target) as tmp, fs.open_input_stream(f"{root}/{key}") as src:
            tmp.write_bytes(src.readall())
        out.copied.append(key)
    return out
