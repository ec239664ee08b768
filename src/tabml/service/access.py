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

from tabml.core import secrets
from tabml.core.errors import ConfigError
from tabml.core.log import info
from tabml.service.metrics import Watched

TOKEN_ENV = "TABML_API_TOKEN"  # noqa: S105 (the variable's name, not a secret)
TOKENS_FILE_ENV = "TABML_API_TOKENS_FILE"
MIN_TOKEN_CHARS = 16
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DENIED = "-"  # the caller of a request without a valid token


def _yaml_mapping(text: str, source: str) -> Any:
    """YAML, with a client named twice refused (PyYAML keeps the last one silently)."""
    import yaml

    class Strict(yaml.SafeLoader):
        pass

    def mapping(loader: Strict, node: yaml.MappingNode) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node)
            if key in seen:
                line = key_node.start_mark.line + 1
                raise ConfigError(
                    f"{source}: line {line}: client {key!r} is named twice; name each client once"
                )
            seen.add(key)
        return loader.construct_mapping(node)

    Strict.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    try:
        return yaml.load(text, Loader=Strict)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: not YAML ({err})") from None


def check_token(token: Any, what: str) -> str:
    """A token as the service compares it: a string of at least MIN_TOKEN_CHARS characters,
    without whitespace (HTTP drops it at the ends of a header, so such a token could never
    match). Surrounding whitespace, as a file's trailing newline or spaces, is dropped."""
    if not isinstance(token, str):
        raise ConfigError(
            f"{what} is a {type(token).__name__} ({str(token)[:6]}...), not a string: quote it "
            "in YAML ('name: \"...\"'), or make one with 'openssl rand -hex 32'"
        )
    token = token.strip()
    if any(c.isspace() for c in token):
        raise ConfigError(f"{what} holds whitespace: a token is one word")
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(
            f"{what} is shorter than {MIN_TOKEN_CHARS} characters "
            "(make one with 'openssl rand -hex 32')"
        )
    return token


def parse_tokens(text: str, source: str) -> dict[str, str]:
    """`{name: token}` from a tokens file; a ConfigError says what is wrong with it."""
    data = _yaml_mapping(text, source) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: write one 'name: token' line per client")
    out: dict[str, str] = {}
    for name, token in data.items():
        if not isinstance(name, str) or not NAME.match(name):
            raise ConfigError(f"{source}: {name!r} is not a client name (letters, digits, .-_)")
        out[name] = check_token(token, f"{source}: the token of {name!r}")
    if len(set(out.values())) != len(out):
        raise ConfigError(f"{source}: two clients share a token; give each its own")
    return out


class Tokens:
    """The accepted tokens by name, kept fresh from the tokens file."""

    def __init__(self, env: Mapping[str, str]) -> None:
        for name in (TOKEN_ENV, f"{TOKEN_ENV}_FILE", TOKENS_FILE_ENV):
            if name in env and not env[name].strip():  # set, but to nothing: fail closed
                raise ConfigError(
                    f"{name} is set but empty: set it to a token (or a file's path), or unset "
                    "it and start with --no-auth to serve without authentication"
                )
        single = secrets.from_env(env, TOKEN_ENV)
        if single:
            single = check_token(single, TOKEN_ENV)
        self._fixed = {"default": single} if single else {}
        path = env.get(TOKENS_FILE_ENV, "")
        self._path = Path(path) if path else None
        self._lock = threading.Lock()
        self._checked = 0.0
        self._stamp: bytes | None = None  # the file's content hash when last read
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
        import hashlib

        try:
            # by content: a file replaced with one of the same size and time (`cp -p`,
            # `rsync -t`) is a change too, and a revocation must never be missed
            data = self._path.read_bytes()
            stamp = hashlib.sha256(data).digest()
            if stamp == self._stamp:
                return
            tokens = parse_tokens(data.decode("utf-8"), str(self._path))
        except (OSError, UnicodeDecodeError, ConfigError) as err:
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
    """Append-only JSON lines, one per request, ASCII only (no character a reader could take
    for a line break). Each line is written whole or not at all: under an exclusive lock, and
    cut back to where it started when the disk fills part-way. A log renamed away (logrotate)
    is followed by a new file at the path. `healthy` is False while lines cannot be written:
    the service then refuses requests and says it is not ready, since what it cannot record
    it must not do."""

    def __init__(self, path: Path, folder: bool | None = None) -> None:
        # a folder (`folder`, or an existing one): one file per process and day,
        # `date=YYYY-MM-DD/audit-<host>-<pid>.jsonl`, written by that process alone (appends
        # from several NFS clients to one file are not atomic), in day partitions that
        # retention prunes like the prediction log's
        self.folder = path if (path.is_dir() if folder is None else folder) else None
        import socket

        self._writer = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:63] or "host"
        self._writer += f"-{os.getpid()}"
        self.path = path
        self.path = self._target()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._fd = self._open()
        self.healthy = True

    def _target(self) -> Path:
        if self.folder is None:
            return self.path
        day = datetime.now(UTC).date().isoformat()
        return self.folder / f"date={day}" / f"audit-{self._writer}.jsonl"

    def _open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)

    def _current(self) -> int:
        """The descriptor of the file to write now: reopened after a rotation, and on a new
        day when the log is a folder."""
        target = self._target()
        try:
            moved = target != self.path or target.stat().st_ino != os.fstat(self._fd).st_ino
        except FileNotFoundError:
            moved = True
        if moved:
            os.close(self._fd)
            self.path = target
            self._fd = self._open()
        return self._fd

    def reopen(self) -> None:
        """Start writing to whatever file is at the path now (after logrotate, or SIGHUP)."""
        with self._lock:
            self._current()

    def write(self, record: dict[str, Any]) -> bool:
        """Append one line; False (and `healthy` False) when it could not be written whole."""
        import fcntl

        data = (json.dumps(record, separators=(",", ":"), ensure_ascii=True) + "\n").encode()
        with self._lock:
            try:
                fd = self._current()
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    start = os.fstat(fd).st_size
                    try:
                        view = memoryview(data)
                        while view:
                            view = view[os.write(fd, view) :]
                    except OSError:
                        os.ftruncate(fd, start)  # half a line is never left behind
                        raise
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            except OSError as err:
                if self.healthy:
                    info(f"audit log {self.path}: cannot write ({err.strerror or err}); "
                         "refusing requests until it can")  # fmt: skip
                self.healthy = False
                return False
        if not self.healthy:
            info(f"audit log {self.path}: writable again")
        self.healthy = True
        return True

    def close(self) -> None:
        os.close(self._fd)


def _networks(allowed: str) -> list[Any]:
    """`--forwarded-allow-ips`: addresses and networks (CIDR), comma-separated."""
    import ipaddress

    out = []
    for part in (p.strip() for p in allowed.split(",")):
        if not part:
            continue
        try:
            out.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ConfigError(
                f"--forwarded-allow-ips: {part!r} is not an address or a network (CIDR)"
            ) from None
    return out


class Proxies:
    """Which peers may say who the client is (X-Forwarded-For): the configured proxies only.

    The client is the right-most address in X-Forwarded-For that is not itself a trusted
    proxy (what each trusted hop appended), and only when the peer is trusted; anything that
    is not an IP address is ignored, so no text of a client's choosing reaches the log."""

    def __init__(self, allowed: str) -> None:
        self.networks = _networks(allowed)

    def trusted(self, address: str | None) -> bool:
        import ipaddress

        if not address or not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.networks)

    def client(self, peer: str | None, headers: list[tuple[bytes, bytes]]) -> str | None:
        import ipaddress

        if not self.trusted(peer):
            return peer
        hops = [
            hop.strip()
            for name, value in headers
            if name.lower() == b"x-forwarded-for"
            for hop in value.decode("latin-1").split(",")
        ]
        client = peer
        for hop in reversed(hops):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                break  # a hop that is not an address: stop at what is known
            client = hop
            if not self.trusted(hop):
                break
        return client


@dataclass
class Audit:
    """ASGI middleware, outermost: one audit line per HTTP request, after it is answered. The
    peer (the socket's other end) is logged beside the client (the peer, or the address a
    trusted proxy forwarded). While the log cannot be written, every request but the probes
    gets 503: nothing is done that cannot be recorded."""

    app: Any
    log: AuditLog
    proxies: Proxies
    open_paths: frozenset[str] = frozenset()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        watched = Watched(send, scope)
        try:
            if not self.log.healthy and scope.get("path") not in self.open_paths:
                detail = {"detail": "the audit log cannot be written; try again later"}
                body = json.dumps(detail).encode()
                await watched.send(
                    {"type": "http.response.start", "status": 503,
                     "headers": [(b"content-type", b"application/json")]}
                )  # fmt: skip
                await watched.send({"type": "http.response.body", "body": body})
                return
            await self.app(scope, receive, watched.send)
        finally:
            peer = scope.get("client")
            address = peer[0] if peer else None
            caller = state.get("caller")
            self.log.write(
                {
                    "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "caller": DENIED if caller is None and watched.status == 401 else caller,
                    "method": scope.get("method"),
                    "endpoint": scope.get("path"),
                    "status": watched.status,
                    "records": state.get("records", 0),
                    "client": self.proxies.client(address, scope.get("headers", [])),
                    "peer": address,
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


def printable(text: Any) -> str:
    """A value as a terminal may show it: control and format characters escaped."""
    import unicodedata

    def shown(c: str) -> str:
        kind = unicodedata.category(c)
        if kind[0] == "C" or kind in ("Zl", "Zp"):  # controls, formats; line separators
            return c.encode("unicode_escape").decode("ascii")
        return c

    return "".join(map(shown, str(text)))


def log_files(path: Path) -> list[Path]:
    """The audit log's files: the file itself, or every `*.jsonl` under a folder (one per
    process and day), in name order."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*.jsonl") if not p.name.startswith("."))
    return [path] if path.is_file() else []


def read_lines(data: bytes) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """The audit log's records, split on newlines only (never on U+2028 and its kind), and the
    lines that are not records: (line number, why), so that one bad line never hides the
    rest."""
    records: list[dict[str, Any]] = []
    bad: list[tuple[int, str]] = []
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            bad.append((number, "not UTF-8"))
            continue
        except ValueError:
            bad.append((number, "not JSON (cut short?)"))
            continue
        if not isinstance(record, dict):
            bad.append((number, f"a JSON {type(record).__name__}, not a record"))
        elif not isinstance(record.get("time"), str):
            bad.append((number, "no 'time'"))
        else:
            records.append(record)
    return records, bad


def summarise(
    lines: list[str] | list[dict[str, Any]], factor: float = 3.0, floor: int = 100
) -> AuditSummary:
    """Calls per caller, denials per client address, and unusual volume: an hour in which a
    caller made more than `factor` times its median calls per hour (and at least `floor`)."""
    import statistics
    from collections import Counter, defaultdict

    records = [json.loads(r) if isinstance(r, str) else r for r in lines if r]
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
        times = sorted(str(r["time"]) for r in rs)
        callers.append(
            CallerSummary(
                caller,
                len(rs),
                sum(_int(r.get("records")) for r in rs),
                sum(1 for r in rs if _int(r.get("status")) >= 400),
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


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
