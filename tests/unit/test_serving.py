"""The service's core without HTTP: encoding equals the pipeline's, the log is safe and private."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from pydantic import ValidationError

from tabml.core.config import ModelConfig, SchemaConfig, parse
from tabml.core.schema import record_json_schema
from tabml.data.clean import clean_development
from tabml.governance import privacy
from tabml.learning.model import fit
from tabml.service import serving
from tabml.service.predlog import LogUnavailable, PredictionLog, now_iso
from tests.conftest import ROOT, make_frame, schema_dict

SCHEMA = parse(SchemaConfig, schema_dict(pii={}))
BASE_MODELS = {p.stem: yaml.safe_load(p.read_text()) for p in (ROOT / "conf/model").glob("*.yaml")}


class _Pkg:
    """What Scorer reads from a package."""

    def __init__(self, model: object) -> None:
        self.model, self.threshold, self.schema = model, 0.5, SCHEMA


def _records(frame: pd.DataFrame) -> list[dict[str, object]]:
    cols = [SCHEMA.id, *SCHEMA.features]
    out = frame[cols].astype(object).where(frame[cols].notna(), None).to_dict("records")
    return out  # type: ignore[return-value]


# income with an open vocabulary: its two most frequent levels, every other value "(other)"
OPEN = parse(
    SchemaConfig,
    schema_dict(
        pii={},
        features={
            **schema_dict()["features"],
            "income": {"kind": "categorical", "max_levels": 2},
        },
    ),
)


@pytest.mark.parametrize("schema", [SCHEMA, OPEN], ids=["closed", "open"])
@pytest.mark.parametrize("kind", ["lightgbm", "logreg"])
def test_numpy_encoding_scores_exactly_like_the_pipeline(kind: str, schema: object) -> None:
    frame = clean_development(make_frame(600), SCHEMA).clean
    overrides = {"num_boost_round": 30} if kind == "lightgbm" else {}
    cfg = parse(ModelConfig, {**BASE_MODELS[kind], **overrides})
    model, _ = fit(frame.iloc[:400], frame.iloc[400:500], schema, cfg, seed=0)  # type: ignore[arg-type]
    assert bool(model.preprocessor.other) == (schema is OPEN)
    test = frame.iloc[500:].copy()
    test.loc[test.index[:5], "income"] = "never seen"
    test.loc[test.index[5:10], "amount"] = np.nan
    test.loc[test.index[10:12], "owner"] = pd.NA
    scorer = serving.Scorer(_Pkg(model))  # type: ignore[arg-type]
    records = _records(test)
    np.testing.assert_array_equal(
        scorer.encode(records), model.preprocessor.transform(test, model.encoding)
    )
    np.testing.assert_array_equal(scorer.score(records), model.predict(test))
    # small requests take the row-by-row path: the same numbers, record by record
    for i in range(len(records)):
        np.testing.assert_array_equal(
            scorer.encode(records[i : i + 1]),
            model.preprocessor.transform(test.iloc[i : i + 1], model.encoding),
        )
    np.testing.assert_array_equal(scorer.score(records[:3]), model.predict(test.iloc[:3]))


def test_the_record_model_is_strict_and_complete() -> None:
    record = serving.record_model(record_json_schema(SCHEMA, "t"), ["ts", "email"])
    good = {"id": 1, "amount": 10, "income": "low", "ratio": None, "owner": True}
    assert record(**good).amount == 10.0  # an integer is a number
    assert record(**good, ts="2024-01-01", email="a@b.c").email == "a@b.c"
    bad_cases = [
        ({**good, "amount": "10"}, "float_type"),  # a string is not a number
        ({**good, "owner": "yes"}, "bool_type"),
        ({**good, "income": 3}, "string_type"),
        ({**good, "amount": float("nan")}, "finite_number"),
        ({**good, "amount": float("inf")}, "finite_number"),
        ({k: v for k, v in good.items() if k != "ratio"}, "missing"),
        ({**good, "surprise": 1}, "extra_forbidden"),
    ]
    for data, kind in bad_cases:
        with pytest.raises(ValidationError) as err:
            record(**data)
        assert {e["type"] for e in err.value.errors()} == {kind}, data


def _rows(n: int, day: str = "2026-11-26") -> list[dict[str, object]]:
    return [
        {"id": i, "email": f"u{i}@x.org", serving.LOGGED_AT: f"{day}T10:00:00+00:00", "score": 0.5}
        for i in range(n)
    ]


def test_the_log_writes_by_day_in_the_background_and_pseudonymises(tmp_path: Path) -> None:
    key = b"k" * 32
    writing, disk_free = threading.Event(), threading.Event()

    def slow_disk(frame: pd.DataFrame) -> pd.DataFrame:
        writing.set()
        disk_free.wait(timeout=30)  # the write is held up until the test lets it go
        return privacy.apply(frame, {"email": "pseudonymise"}, key)

    log = PredictionLog(tmp_path, transform=slow_disk, flush_rows=5, flush_seconds=60)
    log.append(_rows(5))  # a full batch: the writer starts on it, and is held up
    assert writing.wait(timeout=10)
    # appending while the writer is stuck returns at once: a request never waits for the disk
    appender = threading.Thread(target=log.append, args=(_rows(3, day="2026-11-27"),))
    appender.start()
    appender.join(timeout=10)
    assert not appender.is_alive(), "append waited for the writer"
    assert not list(tmp_path.rglob("*.parquet"))  # nothing written yet
    disk_free.set()
    log.close()
    files = sorted(tmp_path.rglob("*.parquet"))
    assert [f.parent.name for f in files] == ["date=2026-11-26", "date=2026-11-27"]
    frame = pd.concat(pd.read_parquet(f) for f in files)
    assert len(frame) == 8 and log.written == 8
    assert not frame["email"].str.contains("@").any()
    expected = privacy.pseudonymise(pd.Series(["u0@x.org"]), key)[0]
    assert expected in set(frame["email"])


def test_the_log_flushes_on_time_and_leaves_no_partial_files(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, flush_rows=10**6, flush_seconds=0.2)
    log.append(_rows(2, day=now_iso()[:10]))
    deadline = time.time() + 5
    while not list(tmp_path.rglob("*.parquet")) and time.time() < deadline:
        time.sleep(0.05)
    assert len(list(tmp_path.rglob("*.parquet"))) == 1
    log.close()
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]


def test_a_full_spool_refuses_instead_of_dropping(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, flush_rows=10**6, flush_seconds=60, max_queued_rows=5)
    log.append(_rows(4))
    with pytest.raises(LogUnavailable, match="4 rows are waiting"):
        log.append(_rows(4))
    log.close()
    assert (log.written, log.dropped) == (4, 0)


def test_a_failed_write_keeps_the_rows_and_tries_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder that cannot be written: the rows stay in the spool, the log says it is not
    healthy, and once the folder is fixed they are written, each once."""
    blocker = tmp_path / "date=2026-11-26"
    blocker.write_text("a file where a folder should be")
    log = PredictionLog(tmp_path, flush_rows=1, flush_seconds=0.05)
    log.append(_rows(1))
    log.append(_rows(2, day="2026-11-27"))
    deadline = time.time() + 10
    while log.healthy and time.time() < deadline:
        time.sleep(0.02)
    assert not log.healthy and "kept in the spool and tried again" in capsys.readouterr().err
    blocker.unlink()
    while not log.healthy and time.time() < deadline:
        time.sleep(0.02)
    log.close()
    assert log.healthy and (log.written, log.dropped) == (3, 0)
    written = pd.concat(pd.read_parquet(f) for f in sorted(tmp_path.rglob("*.parquet")))
    assert sorted(written["id"]) == [0, 0, 1]


def test_a_row_that_cannot_be_written_takes_no_other_row_down(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _rows(10)
    rows[3]["id"] = 2**64  # no Parquet integer holds it
    log = PredictionLog(tmp_path, flush_rows=1_000, flush_seconds=60)
    log.append(rows)
    log.close()
    assert (log.written, log.dropped) == (9, 1)
    assert "dropped 1 row that cannot be written" in capsys.readouterr().err
    written = pd.concat(pd.read_parquet(f) for f in sorted(tmp_path.rglob("*.parquet")))
    assert sorted(written["id"]) == [0, 1, 2, 4, 5, 6, 7, 8, 9]


def test_ids_are_of_the_one_type_the_log_stores() -> None:
    schema = record_json_schema(SCHEMA, "t")
    good = {"amount": 10.0, "income": "low", "ratio": None, "owner": True}
    as_int = serving.record_model(schema, [], ("id", "integer"))
    assert as_int(id=serving.ID_BOUND, **good).id == serving.ID_BOUND
    for bad in (2**63, -(2**63) - 1, serving.ID_BOUND + 1, "abc"):
        with pytest.raises(ValidationError):
            as_int(id=bad, **good)
    as_text = serving.record_model(schema, [], ("id", "string"))
    assert as_text(id="abc", **good).id == "abc"
    with pytest.raises(ValidationError):
        as_text(id=5, **good)


def test_an_integral_number_is_an_integer_id() -> None:
    """JSON Schema counts 1388.0 as an integer; the id is then logged as 1388."""
    schema = record_json_schema(SCHEMA, "t")
    good = {"amount": 10.0, "income": "low", "ratio": None, "owner": True}
    as_int = serving.record_model(schema, [], ("id", "integer"))
    assert as_int(id=1388.0, **good).id == 1388
    for bad in (1388.5, "1388", True):
        with pytest.raises(ValidationError):
            as_int(id=bad, **good)


@pytest.mark.parametrize("rows", [3, 200])
def test_the_columnar_form_scores_exactly_like_records(rows: int) -> None:
    frame = clean_development(make_frame(600), SCHEMA).clean
    cfg = parse(ModelConfig, {**BASE_MODELS["lightgbm"], "num_boost_round": 30})
    model, _ = fit(frame.iloc[:400], frame.iloc[400:500], SCHEMA, cfg, seed=0)
    scorer = serving.Scorer(_Pkg(model))  # type: ignore[arg-type]
    records = _records(frame.iloc[400 : 400 + rows])
    names = list(records[0])[::-1]  # any order of columns
    data = [[r[n] for n in names] for r in records]
    checks = serving.ColumnChecks(record_json_schema(SCHEMA, "t"), [], ("id", "integer"))
    columns = checks.check(names, data)
    assert columns is not None
    np.testing.assert_array_equal(scorer.score_columns(columns), scorer.score(records))


def test_the_columnar_checks_apply_the_record_rules() -> None:
    checks = serving.ColumnChecks(record_json_schema(SCHEMA, "t"), ["ts"], ("id", "integer"))
    names = ["id", "amount", "income", "ratio", "owner"]
    good = [[1, 10.5, "low", None, True], [2.0, 3, "mid", 0.5, False]]
    assert checks.check(names, good) == {
        "id": [1, 2],
        "amount": [10.5, 3],
        "income": ["low", "mid"],
        "ratio": [None, 0.5],
        "owner": [True, False],
    }
    assert checks.check([*names, "ts"], [[*r, "2024-01-01"] for r in good]) is not None
    bad = {
        "a string for a number": (names, [[1, "10", "low", None, True]]),
        "null where not allowed": (names, [[None, 1.0, "low", None, True]]),
        "NaN": (names, [[1, float("nan"), "low", None, True]]),
        "a number for a boolean": (names, [[1, 1.0, "low", None, 1]]),
        "missing column": (names[:-1], [[1, 1.0, "low", None]]),
        "unknown column": ([*names, "x"], [[1, 1.0, "low", None, True, 0]]),
        "short row": (names, [[1, 1.0, "low", None]]),
        "duplicate column": ([*names, "id"], [[1, 1.0, "low", None, True, 1]]),
        "id beyond int64": (names, [[2**63, 1.0, "low", None, True]]),
        "a string id": (names, [["a", 1.0, "low", None, True]]),
        "no rows": (names, []),
    }
    for case, (cols, data) in bad.items():
        assert checks.check(cols, data) is None, case


def _accepted_nodelay(sock: socket.socket) -> int:
    """TCP_NODELAY on a connection an asyncio server (uvicorn's loop) accepts on `sock`."""
    sock.listen()
    port = sock.getsockname()[1]
    seen: list[int] = []

    async def main() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted = writer.get_extra_info("socket")
            seen.append(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(handle, sock=sock)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await reader.read()
        writer.close()
        server.close()
        await server.wait_closed()

    asyncio.run(main())
    return seen[0]


def test_connections_on_the_workers_socket_send_without_waiting_for_an_ack() -> None:
    """`tabml serve --workers N` listens on sockets it makes itself: asyncio sets TCP_NODELAY
    only on IPPROTO_TCP sockets, and uvicorn's own (protocol 0) left every response waiting
    ~40 ms for the client's delayed ACK (benchmarks/serve.py measures the latency)."""
    from tabml.service.server import listening_socket

    assert _accepted_nodelay(listening_socket("127.0.0.1", 0)) != 0
    # a socket made as uvicorn makes it does not get TCP_NODELAY: this test can fail
    plain = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    plain.bind(("127.0.0.1", 0))
    assert _accepted_nodelay(plain) == 0


def test_a_number_coded_category_scores_the_same_served_or_batched() -> None:
    """Occupation codes 1-3: a CSV column of them reads as floats (5.0), a client may send
    "5.0" as text. Both are the level "5" for serving and batch scoring alike (one rule:
    schema.category_text)."""
    from tabml.core.schema import as_text, validate

    codes = {"low": "1", "mid": "2", "high": "3"}
    schema = parse(
        SchemaConfig,
        schema_dict(pii={}, features={**schema_dict()["features"],
                    "income": {"kind": "categorical", "categories": ["1", "2", "3"]}}),
    )  # fmt: skip
    frame = make_frame(600).assign(income=lambda f: f["income"].map(codes))
    frame = clean_development(frame, schema).clean
    cfg = parse(ModelConfig, {**BASE_MODELS["lightgbm"], "num_boost_round": 30})
    model, _ = fit(frame.iloc[:400], frame.iloc[400:500], schema, cfg, seed=0)
    pkg = _Pkg(model)
    pkg.schema = schema
    scorer = serving.Scorer(pkg)  # type: ignore[arg-type]
    test = frame.iloc[500:510]
    records = _records(test)
    as_sent = [{**r, "income": f"{r['income']}.0"} for r in records]
    np.testing.assert_array_equal(scorer.score(as_sent), scorer.score(records))
    np.testing.assert_array_equal(scorer.score(as_sent[:2]), scorer.score(records[:2]))
    columns = {k: [r[k] for r in as_sent] for k in as_sent[0]}
    np.testing.assert_array_equal(scorer.score_columns(columns), scorer.score(records))
    # batch: the codes as floats (a CSV column of numbers), and as text "2.0"
    for column in (test["income"].astype(float), test["income"] + ".0"):
        typed = validate(test.assign(income=column), schema, "production", "batch").frame
        np.testing.assert_array_equal(model.predict(typed), scorer.score(records))
    assert as_text(pd.Series(["2.0", "x", "02", "-3.00"])).tolist() == ["2", "x", "02", "-3"]
    # "5.0" is a level the model knows: no flag; "7" is not: flagged, and scored as missing
    assert all("unseen" not in p for p in scorer.predictions(as_sent))
    new = [{**records[0], "income": "7"}, records[1]]
    flagged = scorer.predictions(new)
    assert flagged[0]["unseen"] == ["income"] and "unseen" not in flagged[1]
    missing = scorer.score([{**records[0], "income": None}])
    np.testing.assert_array_equal(scorer.score(new[:1]), missing)


def test_an_unexpected_writer_failure_keeps_the_rows_and_says_so(tmp_path: Path) -> None:
    """Whatever goes wrong in the writer, it never dies silently while requests keep being
    acknowledged: the log turns unhealthy (/ready 503), the rows stay spooled, and are written
    once the fault is gone."""
    failures = [RuntimeError("a bug in a transform")]

    def flaky(frame: pd.DataFrame) -> pd.DataFrame:
        if failures:
            raise failures.pop()
        return frame

    log = PredictionLog(tmp_path, transform=flaky, flush_rows=1, flush_seconds=0.05)
    log.append(_rows(3))
    deadline = time.time() + 10
    while log.healthy and log.written == 0 and time.time() < deadline:
        time.sleep(0.01)
    while not log.healthy and time.time() < deadline:
        time.sleep(0.02)
    log.close()
    assert not failures and (log.written, log.dropped) == (3, 0)
