"""Auth fails closed, the audit log is whole and readable whatever a client sends, and nothing
the service acknowledges is lost when the disk fills (issue 27, items 11-17, 19, 21, 31)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tabml.core.errors import ConfigError
from tabml.service.access import AuditLog, Proxies, Tokens, parse_tokens, printable, read_lines
from tabml.service.metrics import CLIENT_CLOSED, Watched
from tabml.service.predlog import LogUnavailable, PredictionLog
from tests.conftest import BIN, fill_disk, small_disk

GOOD = "t" * 32


# --- tokens ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "env",
    [{"TABML_API_TOKEN": ""}, {"TABML_API_TOKEN_FILE": " "}, {"TABML_API_TOKENS_FILE": ""}],
)
def test_an_empty_token_variable_is_an_error_not_an_open_door(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=r"set but empty.*--no-auth"):
        Tokens(env)


def test_serving_without_a_token_must_be_asked_for(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if "TABML_API" not in k}
    proc = subprocess.run(
        [str(BIN / "tabml"), "serve", "--package", str(tmp_path)],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2 and "give --no-auth" in proc.stderr, proc.stderr


def test_a_single_token_has_the_same_minimum_as_named_ones() -> None:
    with pytest.raises(ConfigError, match="shorter than 16"):
        Tokens({"TABML_API_TOKEN": "short"})
    assert Tokens({"TABML_API_TOKEN": GOOD}).names() == ["default"]


def test_surrounding_whitespace_in_a_token_file_is_dropped(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text(GOOD + "   \n")
    tokens = Tokens({"TABML_API_TOKEN_FILE": str(secret)})
    assert tokens.who(f"Bearer {GOOD}".encode()) == "default"
    with pytest.raises(ConfigError, match="whitespace"):
        parse_tokens(f"alice: '{'a' * 10} {'a' * 10}'", "tokens.yaml")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (f"alice: {'a' * 20}\nbob: {'b' * 20}\nalice: {'c' * 20}\n",
         "line 3: client 'alice' is named twice"),
        ("alice: 12345678901234567890\n", "is a int .*not a string: quote it"),
        ("alice: 2026-12-04\n", "is a date .*not a string"),
    ],
)  # fmt: skip
def test_a_tokens_file_says_what_is_wrong_with_it(text: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        parse_tokens(text, "tokens.yaml")


def test_a_revocation_is_seen_even_with_the_same_size_and_time(tmp_path: Path) -> None:
    """`cp -p` and `rsync -t` keep the time; the same size hides nothing either."""
    path = tmp_path / "tokens.yaml"
    path.write_text(f"alice: {'a' * 20}\nbob: {'b' * 20}\n")
    stat = path.stat()
    tokens = Tokens({"TABML_API_TOKENS_FILE": str(path)})
    assert tokens.who(f"Bearer {'b' * 20}".encode()) == "bob"
    path.write_text(f"alice: {'a' * 20}\ncat: {'c' * 20}\n")  # bob out, cat in: same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    tokens._checked = float("-inf")  # the once-a-second look is due
    assert tokens.who(f"Bearer {'b' * 20}".encode()) is None
    assert tokens.who(f"Bearer {'c' * 20}".encode()) == "cat"


# --- the audit log --------------------------------------------------------------------------


def test_the_audit_log_is_ascii_lines_that_the_reader_never_crashes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    record = {"time": "2026-12-01T10:00:00.000+00:00", "caller": "-", "method": "GET",
              "endpoint": "/x\u2028\u001b[31m", "status": 401, "records": 0,
              "client": "10.0.0.1"}  # fmt: skip
    assert log.write(record)
    log.close()
    assert path.read_bytes().isascii() and path.read_bytes().count(b"\n") == 1
    with path.open("ab") as f:  # what a crash, a bad copy or another writer could leave
        f.write(b'{"time": "2026-12-01T11:00:00Z", "caller": "a", "status": 200\n')
        f.write(b'\xff\xfe not text\n[1, 2]\n{"caller": "a"}\n')
        f.write(json.dumps({**record, "status": 200, "caller": "x\u001b[2J"}).encode() + b"\n")
        f.write(b'{"time": "2026-12-01T12:00')  # cut short, no newline
    records, bad = read_lines(path.read_bytes())
    assert len(records) == 2
    assert [n for n, _ in bad] == [2, 3, 4, 5, 7]
    from typer.testing import CliRunner

    from tabml.cli import app

    result = CliRunner().invoke(app, ["audit", "--log", str(path)])
    assert result.exit_code == 10, result.output  # a denial: the alert exit code
    out = result.stdout
    assert "\x1b" not in out and "\\x1b[2J" in out and "skipped 5 bad line(s)" in result.stderr
    assert printable("a\u2028b\x07") == "a\\u2028b\\x07"


def test_the_client_is_forwarded_only_by_configured_proxies() -> None:
    xff = [(b"x-forwarded-for", b"203.0.113.7, 10.1.2.3")]
    assert Proxies("").client("127.0.0.1", xff) == "127.0.0.1"  # uvicorn's default trusted it
    proxies = Proxies("10.0.0.0/8")
    assert proxies.client("10.9.9.9", xff) == "203.0.113.7"
    assert proxies.client("192.0.2.1", xff) == "192.0.2.1"
    forged = [(b"x-forwarded-for", b"\x1b[31mevil, 203.0.113.8")]
    assert proxies.client("10.9.9.9", forged) == "203.0.113.8"
    with pytest.raises(ConfigError, match="not an address"):
        Proxies("ingress")


def test_a_rotated_audit_log_is_followed_to_the_new_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.write({"time": "1", "n": 1})
    path.rename(tmp_path / "audit.jsonl.1")  # logrotate
    log.write({"time": "2", "n": 2})
    log.close()
    assert [json.loads(x)["n"] for x in path.read_text().splitlines()] == [2]
    assert [json.loads(x)["n"] for x in (tmp_path / "audit.jsonl.1").read_text().splitlines()] == [
        1
    ]


# --- a full disk ----------------------------------------------------------------------------


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with small_disk(tmp_path / "disk") as mount:
        yield mount


def test_on_a_full_disk_no_prediction_is_acknowledged_that_is_not_kept(disk: Path) -> None:
    logs = disk / "logs"
    log = PredictionLog(logs, flush_rows=10**6, flush_seconds=60)
    row = {"id": 0, "logged_at": "2026-12-01T10:00:00+00:00", "x": "y" * 200}
    ballast = fill_disk(disk)
    acknowledged = refused = 0
    for i in range(2_000):
        try:
            log.append([{**row, "id": i}])
            acknowledged += 1
        except LogUnavailable:
            refused += 1
    assert refused and not log.healthy
    ballast.unlink()  # room again: the log writes, and appends are taken again
    log.append([{**row, "id": 10_000}])
    acknowledged += 1
    log.close()
    frame = pd.concat(pd.read_parquet(p) for p in logs.rglob("*.parquet"))
    assert len(frame) == acknowledged == frame["id"].nunique()


def test_on_a_full_disk_the_audit_log_writes_whole_lines_or_nothing(disk: Path) -> None:
    log = AuditLog(disk / "audit.jsonl")
    fill_disk(disk)
    results = [log.write({"time": str(i), "pad": "p" * 300}) for i in range(300)]
    log.close()
    assert False in results and not log.healthy
    text = (disk / "audit.jsonl").read_bytes()
    assert text.endswith(b"\n") or text == b""
    kept = [json.loads(line) for line in text.splitlines()]
    assert len(kept) == results.count(True)


def test_a_killed_server_s_spool_is_written_by_the_next_one(tmp_path: Path) -> None:
    """What the service acknowledged is in the spool at once: a server killed before any flush
    (kill -9) leaves it there, and the next server on the volume writes it."""
    script = (
        "import os, sys; from pathlib import Path\n"
        "from tabml.service.predlog import PredictionLog\n"
        "log = PredictionLog(Path(sys.argv[1]), flush_rows=10**6, flush_seconds=600)\n"
        "log.append([{'id': i, 'logged_at': '2026-12-01T10:00:00+00:00'} for i in range(7)])\n"
        "os.kill(os.getpid(), 9)\n"
    )
    import sys

    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=False)
    assert proc.returncode == -9 and not list(tmp_path.rglob("*.parquet"))
    PredictionLog(tmp_path, flush_seconds=60).close()
    frame = pd.concat(pd.read_parquet(p) for p in tmp_path.rglob("*.parquet"))
    assert sorted(frame["id"]) == list(range(7))


# --- clients that stall or go away ----------------------------------------------------------


def _gate(timeout: float) -> Any:
    from tabml.service.server import Gate

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the app is never reached")

    return Gate(app, 1000, Tokens({"TABML_API_TOKEN": GOOD}), frozenset(), body_timeout=timeout)


def test_a_client_that_goes_away_is_counted_as_gone_not_as_a_500() -> None:
    scope: dict[str, Any] = {"type": "http", "path": "/predict", "headers": [
        (b"authorization", f"Bearer {GOOD}".encode())]}  # fmt: skip
    sent: list[Any] = []

    async def receive() -> Any:
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    watched = Watched(send, scope)
    asyncio.run(_gate(5)(scope, receive, watched.send))
    assert not sent and watched.status == CLIENT_CLOSED == 499


def test_a_body_that_stalls_gets_408() -> None:
    scope: dict[str, Any] = {"type": "http", "path": "/predict", "headers": [
        (b"authorization", f"Bearer {GOOD}".encode())]}  # fmt: skip
    sent: list[Any] = []

    async def receive() -> Any:
        await asyncio.sleep(3600)

    async def send(message: Any) -> None:
        sent.append(message)

    asyncio.run(_gate(0.05)(scope, receive, send))
    assert sent[0]["status"] == 408 and b"did not arrive" in sent[1]["body"]


# --- TLS ------------------------------------------------------------------------------------


def _pair(tmp_path: Path, name: str, **kw: Any) -> tuple[Path, Path]:
    import trustme

    cert = trustme.CA().issue_cert("127.0.0.1", **kw)
    certfile, keyfile = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    return certfile, keyfile


def test_tls_files_are_checked_first_and_named(tmp_path: Path) -> None:
    from tabml.service.server import check_tls

    cert, key = _pair(tmp_path, "good")
    check_tls(cert, key)
    _, other_key = _pair(tmp_path, "other")
    with pytest.raises(ConfigError, match=f"{other_key} is not the private key of .*{cert}"):
        check_tls(cert, other_key)
    now = datetime.now(UTC)
    old_cert, old_key = _pair(tmp_path, "old", not_before=now - timedelta(days=30),
                              not_after=now - timedelta(days=1))  # fmt: skip
    with pytest.raises(ConfigError, match="expired on"):
        check_tls(old_cert, old_key)
    locked = tmp_path / "locked.key"
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl to encrypt a key with")
    subprocess.run(
        [openssl, "pkey", "-in", str(key), "-out", str(locked), "-aes256", "-passout", "pass:x"],
        check=True,
    )
    with pytest.raises(ConfigError, match="encrypted"):
        check_tls(cert, locked)  # never a prompt: stdin is not even read
    with pytest.raises(ConfigError, match="not a PEM"):
        check_tls(key, key)


def test_an_output_that_cannot_be_written_is_named(disk: Path) -> None:
    """What evaluate (or any stage) says on a full disk: the file, not a bare errno."""
    from tabml.core import io
    from tabml.core.errors import WriteError

    fill_disk(disk)
    frame = pd.DataFrame({"x": range(50_000)})
    for target, write in [
        (disk / "predictions/test.parquet", lambda p: io.write_parquet(p, frame)),
        (disk / "metrics.json", lambda p: io.write_text(p, "x" * 100_000)),
    ]:
        with pytest.raises(WriteError, match=f"{target}: cannot be written"):
            write(target)
        assert not target.exists() and not list(target.parent.glob(".*.tmp"))


def test_an_audit_folder_gets_one_file_per_process_and_day_and_is_read_and_pruned_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On shared storage (NFS), appends from several pods to one file are not atomic: each
    process writes a file of its own, per day, which `tabml audit` reads together and
    `tabml logs prune --audit` deletes past the retention period."""
    import sys
    from datetime import datetime as real

    from tabml.service import access

    class Day:
        now_at = real(2026, 1, 1, 23, 59, tzinfo=UTC)

        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return cls.now_at

    monkeypatch.setattr(access, "datetime", Day)
    folder = tmp_path / "audit"
    log = AuditLog(folder, folder=True)
    record = {"caller": "alice", "method": "POST", "endpoint": "/predict", "status": 200,
              "records": 1, "client": "10.0.0.1"}  # fmt: skip
    log.write({**record, "time": "2026-01-01T23:59:00.000+00:00"})
    Day.now_at = real(2026, 6, 30, 0, 1, tzinfo=UTC)  # a new day: a new file
    log.write({**record, "time": "2026-06-30T00:01:00.000+00:00"})
    log.close()
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.jsonl"))
    assert [f.split("/")[0] for f in files] == ["date=2026-01-01", "date=2026-06-30"]
    assert all(f"/audit-{os.getpid()}" in f or f"-{os.getpid()}.jsonl" in f for f in files)
    from typer.testing import CliRunner

    from tabml.cli import app, main
    from tests.conftest import write_params

    result = CliRunner().invoke(app, ["audit", "--log", str(folder)])
    assert "| alice | 2 | 2 | 0 |" in result.stdout
    params = write_params(tmp_path / "params.yaml", privacy={"retention_days": 30})
    logs = tmp_path / "logs"
    logs.mkdir()
    monkeypatch.setattr(sys, "argv", ["tabml", "logs", "prune", "--logs", str(logs), "--audit",
                                      str(folder), "--today", "2026-07-01", "--no-dvc-add",
                                      "--params", str(params)])  # fmt: skip
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code in (0, None)
    assert [p.name for p in folder.iterdir()] == ["date=2026-06-30"]
