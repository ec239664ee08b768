"""The prediction log: every served prediction as Parquet, partitioned by day, for monitoring.

`PredictionLog.append` only puts rows on a queue; one background thread takes them off, and
writes a file when `flush_rows` rows are waiting, when the oldest has waited `flush_seconds`,
and on shutdown. So a request never waits on the disk.

Layout: `LOG_DIR/date=YYYY-MM-DD/predictions-<UTC time>-<host>-<pid>-<n>.parquet` (the day of
the request, in UTC; the host and pid keep apart the files of servers sharing one volume). Each
file is written as every tabml output is (`io.write_parquet`): under a hidden name, flushed to
disk, then renamed: a server killed mid-write leaves every finished file readable and no partial
file under a name that readers take (they skip hidden files).
`tabml monitor --input LOG_DIR` reads the whole tree.
"""

from __future__ import annotations

import os
import queue
import re
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tabml import io
from tabml.log import info

_STOP = object()
# say so when rows are dropped, then again every this many
_WARN_EVERY = 100_000


class PredictionLog:
    """A background writer of prediction rows (dicts with the same keys)."""

    def __init__(
        self,
        folder: Path,
        transform: Callable[[Any], Any] | None = None,
        flush_rows: int = 10_000,
        flush_seconds: float = 5.0,
        max_queued_rows: int = 1_000_000,
        on_count: Callable[[str, int], None] | None = None,
    ) -> None:
        """`transform` maps each pandas frame before it is written (pseudonymising pii);
        `on_count(outcome, rows)` is told of rows "written" and "dropped" (service metrics)."""
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self._transform = transform
        self._flush_rows = flush_rows
        self._flush_seconds = flush_seconds
        self._queue: queue.Queue[Any] = queue.Queue()
        self._queued = 0
        self._max_queued = max_queued_rows
        self._lock = threading.Lock()
        self._files = 0
        self._on_count = on_count
        # the host (a pod's name on Kubernetes) and pid make file names unique among
        # servers sharing one volume, each of which may be pid 1 in its container
        self._writer = f"{_safe(socket.gethostname())}-{os.getpid()}"
        self.dropped = 0
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Queue rows for writing; never blocks. Past `max_queued_rows` rows are dropped and
        counted (the disk cannot keep up), rather than holding up requests or memory."""
        with self._lock:
            if self._queued + len(rows) > self._max_queued:
                before = self.dropped
                self._count("dropped", len(rows))
                if before // _WARN_EVERY != self.dropped // _WARN_EVERY or not before:
                    info(
                        f"prediction log: {self.dropped:,} rows dropped so far: the disk is not "
                        f"keeping up with {self._max_queued:,} queued rows ({self.folder})"
                    )
                return
            self._queued += len(rows)
        self._queue.put(rows)

    def close(self) -> None:
        """Write what is queued and stop the writer."""
        self._queue.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        pending: list[dict[str, Any]] = []
        oldest = 0.0
        stopping = False
        while not stopping:
            timeout = (
                None if not pending else max(0.0, oldest + self._flush_seconds - time.monotonic())
            )
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is _STOP:
                stopping = True
            elif item is not None:
                if not pending:
                    oldest = time.monotonic()
                pending.extend(item)
            due = pending and (
                stopping
                or len(pending) >= self._flush_rows
                or time.monotonic() - oldest >= self._flush_seconds
            )
            if due:
                try:
                    self._write(pending)
                except Exception as err:  # keep serving; say what was lost and why
                    self._count("dropped", len(pending))
                    info(f"prediction log: could not write {len(pending):,} rows: {err}")
                with self._lock:
                    self._queued -= len(pending)
                pending = []

    def _write(self, rows: list[dict[str, Any]]) -> None:

        from tabml.serving import LOGGED_AT

        by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            by_day[row[LOGGED_AT][:10]].append(row)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        for day, day_rows in sorted(by_day.items()):
            self._write_day(day, day_rows, stamp)

    def _write_day(self, day: str, rows: list[dict[str, Any]], stamp: str) -> None:
        """One file of rows; rows that cannot be converted are set apart, never the others.

        The service only acknowledges ids of the package's one id type, so this is a last
        line of defence: on a conversion error the rows are halved until each bad row is
        alone, then it is dropped (counted, and said) and every other row is written. A disk
        error is not bisected: it would fail for every half alike."""
        import pandas as pd
        import pyarrow as pa

        try:
            frame = pd.DataFrame(rows)
            if self._transform is not None:
                frame = self._transform(frame)
            self._files += 1
            name = f"predictions-{stamp}-{self._writer}-{self._files}.parquet"
            # written under a hidden name, fsynced, then renamed (what every tabml output does)
            io.write_parquet(self.folder / f"date={day}" / name, frame)
        except (pa.ArrowException, ValueError, TypeError, OverflowError) as err:
            if len(rows) == 1:
                self._count("dropped", 1)
                info(f"prediction log: dropped 1 row that cannot be written ({err})")
                return
            half = len(rows) // 2
            self._write_day(day, rows[:half], stamp)
            self._write_day(day, rows[half:], stamp)
            return
        self._count("written", len(rows))

    def _count(self, outcome: str, rows: int) -> None:
        if outcome == "written":
            self.written += rows
        else:
            self.dropped += rows
        if self._on_count is not None:
            self._on_count(outcome, rows)


def _safe(name: str) -> str:
    """A host name as a file-name part: letters, digits, dots and dashes only."""
    return re.sub(r"[^A-Za-z0-9.-]", "-", name)[:63] or "host"


def now_iso() -> str:
    """The current UTC time, ISO 8601 with microseconds (sorts as text)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")
