"""Who may call the service (named bearer tokens), and the record of who did (the audit log).

Tokens come from `TABML_API_TOKEN` (or `TABML_API_TOKEN_FILE`), named "default", and from the
file `TABML_API_TOKENS_FILE` names: one `name: token` line per client (YAML). That file is read
again when it changes (checked at most once a second), so a client's access is given or taken
back by editing it, with no restart and no change for the other clients. A file that cannot be
read or parsed keeps the tokens read before, and says so: a broken edit never opens the
service.

The audit log is JSON lines, one per request, denied ones included: the time, the caller (the
token's name, never the token), the method and endpoint, the status, the number of records
scored, and the client's address. `tabml audit` summarises it.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tabml import secrets
from tabml.errors import ConfigError
from tabml.log import info
from tabml.metrics import Watched

TOKEN_ENV = "TABML_API_TOKEN"  # noqa: S105 (the variable's name, not a secret)
TOKENS_FILE_ENV = "TABML_API_TOKENS_FILE"
MIN_TOKEN_CHARS = 16
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DENIED = "-"  # the caller of a request without a valid token


def parse_tokens(text: str, source: str) -> dict[str, str]:
    """`{name: token}` from a tokens file; a ConfigError says what is wrong with it."""
    import yaml

    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: not YAML ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: write one 'name: token' line per client")
    out: dict[str, str] = {}
    for name, token in data.items():
        if not isinstance(name, str) or not NAME.match(name):
            raise ConfigError(f"{source}: {name!r} is not a client name (letters, digits, .-_)")
        if not isinstance(token, str) or len(token) < MIN_TOKEN_CHARS:
            raise ConfigError(
                f"{source}: the token of {name!r} is shorter than {MIN_TOKEN_CHARS} characters "
                "(make one with 'openssl rand -hex 32')"
            )
        out[name] = token
    if len(set(out.values())) != len(out):
        raise ConfigError(f"{source}: two clients share a token; give each its own")
    return out


class Tokens:
    """The accepted tokens by name, kept fresh from the tokens file."""

    def __init__(self, env: Mapping[str, str]) -> None:
        single = secrets.from_env(env, TOKEN_ENV)
        self._fixed = {"default": single} if single else {}
        path = env.get(TOKENS_FILE_ENV, "")
        self._path = Path(path) if path else None
        self._lock = threading.Lock()
        self._checked = 0.0
        self._stamp: tuple[float, int] | None = None
        self._from_file: dict[str, str] = {}
        if self._path is not None:
            if not self._path.is_file():
                raise ConfigError(f"{TOKENS_FILE_ENV}={self._path}: no such file")
            self._reload(strict=True)
        self._expected = self._compile()

    @property
    def enabled(self) -> bool:
        return bool(self._fixed) or self._path is not None

    def names(self) -> list[str]:
        return sorted({**self._from_file, **self._fixed})

    def _compile(self) -> list[tuple[str, bytes]]:
        merged = {**self._from_file, **self._fixed}
        return [(name, f"Bearer {token}".encode()) for name, token in sorted(merged.items())]

    def _reload(self, strict: bool = False) -> None:
        if self._path is None:  # fixed tokens only: nothing to re-read
            return
        try:
            st = self._path.stat()
            stamp = (st.st_mtime, st.st_size)
            if stamp == self._stamp:
                return
            tokens = parse_tokens(self._path.read_text(encoding="utf-8"), str(self._path))
        except (OSError, ConfigError) as err:
            if strict:
                raise ConfigError(str(err)) from None
            info(f"access: {err}; keeping the {len(self._from_file)} tokens read before")
            return
        if self._stamp is not None:
            info(f"access: {self._path} changed: {len(tokens)} client token(s) now")
        self._stamp, self._from_file = stamp, tokens

    def who(self, header: bytes) -> str | None:
        """The name of the token in an Authorization header, or None. Every token is compared
        (in constant time each), so the time taken says nothing about which one is close."""
        if self._path is not None:
            now = time.monotonic()
            if now - self._checked >= 1.0:
                with self._lock:
                    if now - self._checked >= 1.0:
                        self._checked = now
                        self._reload()
                        self._expected = self._compile()
        found = None
        for name, expected in self._expected:
            if hmac.compare_digest(header, expected):
                found = name
        return found


class AuditLog:
    """Append-only JSON lines, one per request; safe from several threads and processes (each
    line is one write on a file opened for appending)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"
        os.write(self._fd, line.encode("utf-8"))

    def close(self) -> None:
        os.close(self._fd)


@dataclass
class Audit:
    """ASGI middleware, outermost: one audit line per HTTP request, after it is answered."""

    app: Any
    log: AuditLog

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        watched = Watched(send)
        try:
            await self.app(scope, receive, watched.send)
        finally:
            client = scope.get("client")
            caller = state.get("caller")
            self.log.write(
                {
                    "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "caller": DENIED if caller is None and watched.status == 401 else caller,
                    "method": scope.get("method"),
                    "endpoint": scope.get("path"),
                    "status": watched.status,
                    "records": state.get("records", 0),
                    "client": client[0] if client else None,
                }
            )


@dataclass
class CallerSummary:
    caller: str
    calls: int
    records: int
    errors: int
    first: str
    last: str


@dataclass
class AuditSummary:
    requests: int
    callers: list[CallerSummary]
    denials: dict[str, int]  # client address -> denied requests
    unusual: list[tuple[str, str, int, float]]  # caller, hour, calls, that caller's median


def summarise(lines: list[str], factor: float = 3.0, floor: int = 100) -> AuditSummary:
    """Calls per caller, denials per client address, and unusual volume: an hour in which a
    caller made more than `factor` times its median calls per hour (and at least `floor`)."""
    import statistics
    from collections import Counter, defaultdict

    records = [json.loads(line) for line in lines if line.strip()]
    by_caller: dict[str, list[dict[str, Any]]] = defaultdict(list)
    denials: Counter[str] = Counter()
    for r in records:
        if r.get("status") == 401:
            denials[str(r.get("client"))] += 1
            continue
        by_caller[str(r.get("caller"))].append(r)
    callers = []
    unusual = []
    for caller, rs in sorted(by_caller.items()):
        times = sorted(r["time"] for r in rs)
        callers.append(
            CallerSummary(
                caller,
                len(rs),
                sum(int(r.get("records") or 0) for r in rs),
                sum(1 for r in rs if int(r.get("status", 0)) >= 400),
                times[0],
                times[-1],
            )
        )
        hours = Counter(t[:13] for t in times)
        median = statistics.median(hours.values())
        for hour, calls in sorted(hours.items()):
            if calls >= floor and calls > factor * median:
                unusual.append((caller, hour, calls, median))
    return AuditSummary(len(records), callers, dict(denials.most_common()), unusual)
