"""The prediction log: every served prediction as Parquet, partitioned by day, for monitoring.

What the service acknowledges is on disk before the answer leaves: `PredictionLog.append`
writes the request's rows to a spool file (JSON lines, one `write` per request, cut back if
the disk fills part-way) and raises `LogUnavailable` when it cannot, so that the service
answers 503 instead of 200. A background thread turns the spool into Parquet: it seals the
current spool segment when `flush_rows` rows are waiting, when the oldest has waited
`flush_seconds`, and on shutdown, writes it by day and deletes it only once every file is in
place. A segment that cannot be written yet (a full disk) stays, and is tried again; the log
is not `healthy` meanwhile, which `/ready` reports.

Layout: `LOG_DIR/date=YYYY-MM-DD/predictions-<UTC time>-<host>-<pid>-<n>.parquet` (the day of
the request, in UTC; the host and pid keep apart the files of servers sharing one volume), and
the spool under `LOG_DIR/.spool/` (hidden: readers and retention skip it). Each Parquet file
is written as every tabml output is (`io.write_parquet`): under a hidden name, flushed, then
renamed; a segment written again after a failure gets the same names, so no row is written
twice. Each spool segment is locked (flock) by the process writing it: a segment left by a
process that died (`kill -9`, a crashed pod) is unlocked, and any server on the volume turns
it into Parquet when it starts or at its next flush. `tabml monitor --input LOG_DIR` reads the
whole tree.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tabml.core import io
from tabml.core.log import info

SPOOL = ".spool"


class LogUnavailable(Exception):
    """The rows could not be put on disk: the request must not be acknowledged."""


@dataclass
class _Segment:
    path: Path
    fd: int
    rows: int = 0
    since: float = 0.0  # when its first row came (monotonic)


def _dumps(row: dict[str, Any]) -> bytes:
    import orjson

    try:
        return orjson.dumps(row)
    except TypeError:  # integers beyond 64 bits: the standard encoder writes them
        return json.dumps(row, separators=(",", ":")).encode("utf-8")


class PredictionLog:
    """Prediction rows (dicts with the same keys), made durable on `append`."""

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
        `on_count(outcome, rows)` is told of rows "written" and "dropped" (service metrics).
        Past `max_queued_rows` rows waiting in the spool (the disk is not keeping up), appends
        are refused."""
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self._spool = folder / SPOOL
        self._spool.mkdir(exist_ok=True)
        self._transform = transform
        self._flush_rows = flush_rows
        self._flush_seconds = flush_seconds
        self._max_queued = max_queued_rows
        self._on_count = on_count
        # the host (a pod's name on Kubernetes) and pid make file names unique among
        # servers sharing one volume, each of which may be pid 1 in its container
        self._writer = f"{_safe(socket.gethostname())}-{os.getpid()}"
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._segments = 0
        self._sealed: list[_Segment] = []
        self._queued = 0  # rows in the spool, not yet in Parquet
        self._append_failed = False
        self._write_failed = False
        self.dropped = 0
        self.written = 0
        self._active = self._new_segment()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    @property
    def healthy(self) -> bool:
        """Whether rows can be put on disk and turned into Parquet now."""
        return not (self._append_failed or self._write_failed)

    def _new_segment(self) -> _Segment:
        self._segments += 1
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        path = self._spool / f"{stamp}-{self._writer}-{self._segments}.jsonl"
        self._spool.mkdir(exist_ok=True)  # another server may have removed it, empty
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o640)
        fcntl.flock(fd, fcntl.LOCK_EX)  # ours while this process lives
        return _Segment(path, fd)

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Put rows on disk (the spool), whole or not at all; `LogUnavailable` when they could
        not be: the disk is full or failing, or the writer is too far behind."""
        data = b"".join(_dumps(r) + b"\n" for r in rows)
        with self._lock:
            if self._stopping:
                raise LogUnavailable("the prediction log is closing")
            if self._queued + len(rows) > self._max_queued:
                raise LogUnavailable(
                    f"{self._queued:,} rows are waiting to be written to {self.folder}: the "
                    "disk is not keeping up"
                )
            segment = self._active
            start = os.fstat(segment.fd).st_size
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(segment.fd, view) :]
            except OSError as err:
                with contextlib.suppress(OSError):
                    os.ftruncate(segment.fd, start)  # no half row is ever left behind
                if not self._append_failed:
                    info(f"prediction log: cannot write to {self._spool} ({err.strerror or err}); "
                         "refusing predictions until it can")  # fmt: skip
                self._append_failed = True
                raise LogUnavailable(f"the prediction log cannot be written: {err}") from None
            if self._append_failed:
                info(f"prediction log: {self._spool} is writable again")
            self._append_failed = False
            if not segment.rows:
                segment.since = time.monotonic()
            segment.rows += len(rows)
            self._queued += len(rows)
            if segment.rows >= self._flush_rows:
                self._wake.set()

    def close(self) -> None:
        """Write what is spooled and stop the writer. Whatever cannot be written stays in the
        spool, for the next start."""
        with self._lock:
            self._stopping = True
        self._wake.set()
        self._thread.join()

    # --- the writer thread ----------------------------------------------------------------

    def _run(self) -> None:
        self._recover()
        while True:
            with self._lock:
                active = self._active
                due = active.rows and (
                    self._stopping
                    or active.rows >= self._flush_rows
                    or time.monotonic() - active.since >= self._flush_seconds
                )
                if due:
                    self._sealed.append(active)
                    try:
                        self._active = self._new_segment()
                    except OSError:
                        self._sealed.pop()  # keep appending where we were; try again later
                stopping = self._stopping
            try:
                self._flush_sealed()
            except Exception as err:  # never die silently: the log is unhealthy, /ready says so
                if not self._write_failed:
                    info(f"prediction log: the writer failed ({type(err).__name__}: {err}); "
                         "rows stay in the spool and are tried again")  # fmt: skip
                self._write_failed = True
            if stopping:
                break
            if self._append_failed:
                self._probe()
            if self._write_failed or self._append_failed:
                timeout = min(self._flush_seconds, 1.0)
            elif self._active.rows:
                timeout = max(0.0, self._active.since + self._flush_seconds - time.monotonic())
            else:
                timeout = self._flush_seconds
            self._wake.wait(timeout)
            self._wake.clear()
        with self._lock:
            self._finish(self._active)
            for segment in self._sealed:
                os.close(segment.fd)
            if not self._sealed:
                with contextlib.suppress(OSError):  # empty: nothing is waiting, leave no trace
                    self._spool.rmdir()
            if self._sealed:
                info(
                    f"prediction log: {sum(s.rows for s in self._sealed):,} rows could not be "
                    f"written yet; they stay in {self._spool} for the next start"
                )

    def _probe(self) -> None:
        """Whether the spool takes writes again: an empty line (readers skip it), so that the
        log turns healthy, and /ready 200, without waiting for a request to try."""
        with self._lock:
            try:
                os.write(self._active.fd, b"\n")
            except OSError:
                return
            if self._append_failed:
                info(f"prediction log: {self._spool} is writable again")
            self._append_failed = False

    def _finish(self, segment: _Segment) -> None:
        """Close a segment with no rows, and remove it."""
        if segment.rows == 0:
            with contextlib.suppress(OSError):
                segment.path.unlink()
        os.close(segment.fd)

    def _flush_sealed(self) -> None:
        while self._sealed:
            segment = self._sealed[0]
            try:
                rows = self._convert(segment.path)
            except OSError as err:
                if not self._write_failed:
                    info(f"prediction log: could not write {segment.rows:,} rows: {err}; they "
                         "are kept in the spool and tried again")  # fmt: skip
                self._write_failed = True
                return
            segment.path.unlink()
            os.close(segment.fd)
            with self._lock:
                self._sealed.pop(0)
                self._queued -= rows
            if self._write_failed:
                info(f"prediction log: writing to {self.folder} again")
            self._write_failed = False
        self._recover()

    def _recover(self) -> None:
        """Turn into Parquet the spool segments that no live process holds (left by a process
        that died)."""
        for path in sorted(self._spool.glob("*.jsonl")):
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # a live writer's (ours included)
                if not path.exists():
                    continue  # taken and finished by another server meanwhile
                try:
                    rows = self._convert(path)
                except OSError as err:
                    info(f"prediction log: cannot recover {path} yet: {err}")
                    self._write_failed = True
                    return
                path.unlink()
                info(f"prediction log: recovered {rows:,} rows a stopped server left in {path}")
            finally:
                os.close(fd)

    def _convert(self, path: Path) -> int:
        """Write one spool segment as Parquet, by day; its row count. A last line cut short
        (a process killed mid-write, never acknowledged) is left out."""
        from tabml.service.serving import LOGGED_AT

        rows: list[dict[str, Any]] = []
        for line in path.read_bytes().split(b"\n"):
            if line.strip():
                with contextlib.suppress(ValueError):
                    rows.append(json.loads(line))
        by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            by_day[str(row.get(LOGGED_AT, ""))[:10] or "unknown"].append(row)
        written = dropped = 0
        for day, day_rows in sorted(by_day.items()):
            w, d = self._write_day(day, day_rows, f"predictions-{path.stem}")
            written, dropped = written + w, dropped + d
        self._count("written", written)  # counted once the whole segment is in place
        self._count("dropped", dropped)
        return len(rows)

    def _write_day(self, day: str, rows: list[dict[str, Any]], name: str) -> tuple[int, int]:
        """One file of rows, named `name`; rows that cannot be converted are set apart, never
        the others. Returns the rows written and dropped.

        The service only acknowledges ids of the package's one id type, so this is a last
        line of defence: on a conversion error the rows are halved until each bad row is
        alone, then it is dropped (counted, and said) and every other row is written. A disk
        error (OSError) is not bisected: it would fail for every half alike, and the segment is
        tried again whole (the same names: nothing is written twice)."""
        import pandas as pd
        import pyarrow as pa

        try:
            frame = pd.DataFrame(rows)
            if self._transform is not None:
                frame = self._transform(frame)
            # written under a hidden name, fsynced, then renamed (what every tabml output does)
            io.write_parquet(self.folder / f"date={day}" / f"{name}.parquet", frame)
        except OSError:
            raise
        except (pa.ArrowException, ValueError, TypeError, OverflowError) as err:
            if len(rows) == 1:
                info(f"prediction log: dropped 1 row that cannot be written ({err})")
                return 0, 1
            half = len(rows) // 2
            a = self._write_day(day, rows[:half], f"{name}-a")
            b = self._write_day(day, rows[half:], f"{name}-b")
            return a[0] + b[0], a[1] + b[1]
        return len(rows), 0

    def _count(self, outcome: str, rows: int) -> None:
        if not rows:
            return
        if outcome == "written":
            self.written += rows
        else:
            self.dropped += rows
        if self._on_count is not None:
            self._on_count(outcome, rows)


def with_received_time(frame: Any, timestamp: str | None) -> tuple[Any, int]:
    """Prediction-log rows whose client sent no timestamp (it is optional in a request) take
    the time the service received them (`logged_at`, UTC); returns the frame and how many rows
    took it. Frames that are not prediction logs are returned as they are."""
    from tabml.service.serving import LOGGED_AT

    if not timestamp or LOGGED_AT not in frame.columns or not len(frame):
        return frame, 0
    if timestamp not in frame.columns:
        return frame.assign(**{timestamp: frame[LOGGED_AT]}), len(frame)
    values = frame[timestamp]
    missing = values.isna() | values.astype("string").str.strip().eq("").fillna(False)
    if not missing.any():
        return frame, 0
    filled = values.astype("object").where(~missing, frame[LOGGED_AT])
    return frame.assign(**{timestamp: filled}), int(missing.sum())


def _safe(name: str) -> str:
    """A host name as a file-name part: letters, digits, dots and dashes only."""
    return re.sub(r"[^A-Za-z0-9.-]", "-", name)[:63] or "host"


def now_iso() -> str:
    """The current UTC time, ISO 8601 with microseconds (sorts as text)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")
