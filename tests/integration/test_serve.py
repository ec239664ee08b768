"""The HTTP service on the real package: scores, errors, auth, logs, concurrency, restarts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tabml.learning import package as pkg
from tabml.learning.predict import score
from tabml.service.server import TOKEN_ENV, Settings, create_app
from tests.conftest import BIN, fill_disk, run_cli, small_disk, tool_env

# starlette's TestClient warns that it will move from httpx to httpx2; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx`")


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as a client sends them: JSON types, null for missing, ISO times."""
    return json.loads(frame.to_json(orient="records", date_format="iso"))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def batch(project: Path) -> pd.DataFrame:
    """The production batch as a client has it: the id, the time and the features."""
    frame = pd.read_parquet(project / "data/raw/production.parquet")
    return frame.drop(columns=["y_pred_proba", "y_pred"], errors="ignore")


@pytest.fixture(scope="module")
def expected(project: Path, batch: pd.DataFrame) -> pd.DataFrame:
    """What `tabml predict` gives for the batch."""
    return score(pkg.load(project / "models/package"), batch, "batch").set_index("id")


def client_for(settings: Settings) -> Any:
    from fastapi.testclient import TestClient

    return TestClient(create_app(settings))


@pytest.fixture(scope="module")
def client(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    logs = tmp_path_factory.mktemp("logs")
    with client_for(
        Settings(
            no_auth=True,
            package=str(project / "models/package"),
            log_dir=str(logs),
            flush_seconds=0.1,
        )
    ) as c:
        c.logs = logs
        yield c


def test_predict_scores_like_tabml_predict(
    client: Any, batch: pd.DataFrame, expected: pd.DataFrame
) -> None:
    sent = batch.iloc[:1000]
    response = client.post("/predict", json={"records": records(sent)})
    assert response.status_code == 200, response.text[:1000]
    body = response.json()
    got = pd.DataFrame(body["predictions"]).set_index("id")
    want = expected.loc[sent["id"]]
    np.testing.assert_allclose(got["score"], want["score"], rtol=0, atol=1e-12)
    assert (got["label"] == want["label"]).all()
    assert body["model_version"] == client.get("/health").json()["model_version"]


@pytest.mark.parametrize(
    ("change", "field", "kind"),
    [
        ({"car_value": "12638"}, "car_value", "float_type"),
        ({"repaid_loan_on_prev_car": "no"}, "repaid_loan_on_prev_car", "bool_type"),
        ({"salary_range": 3}, "salary_range", "string_type"),
        ({"loan_length": None, "extra": 1}, "extra", "extra_forbidden"),
        ({"car_value": "<1e400>"}, "car_value", "finite_number"),  # valid JSON, infinite
    ],
)
def test_bad_records_get_422_with_each_error_and_its_record(
    client: Any, batch: pd.DataFrame, change: dict[str, Any], field: str, kind: str
) -> None:
    good = records(batch.iloc[:2])
    text = json.dumps({"records": [good[0], {**good[1], **change}]}).replace('"<1e400>"', "1e400")
    response = client.post("/predict", content=text, headers={"content-type": "application/json"})
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert {"record": 1, "field": field, "type": kind}.items() <= errors[0].items(), errors


def test_missing_fields_nan_and_broken_json_are_422_not_500(
    client: Any, batch: pd.DataFrame
) -> None:
    rec = records(batch.iloc[:1])[0]
    del rec["driver_tenure"]
    missing = client.post("/predict", json={"records": [rec]})
    assert missing.status_code == 422
    assert missing.json()["errors"][0] == {
        "record": 0,
        "field": "driver_tenure",
        "error": "Field required",
        "type": "missing",
    }
    text = json.dumps({"records": [{**rec, "driver_tenure": 1.0}]}).replace("1.0}", "NaN}")
    nan = client.post("/predict", content=text, headers={"content-type": "application/json"})
    assert nan.status_code == 422 and nan.json()["errors"][0]["type"] == "finite_number"
    for body in (b"{not json", b"[]", b'{"records": []}', b'{"records": "x"}', b"", b"5\xff\r\x01"):
        response = client.post(
            "/predict", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, body


def test_a_422_lists_at_most_100_problems(client: Any, batch: pd.DataFrame) -> None:
    bad = [{**r, "car_value": "x", "loan_length": "y"} for r in records(batch.iloc[:300])]
    response = client.post("/predict", json={"records": bad})
    assert response.status_code == 422
    assert response.json()["detail"] == "600 problem(s) in the request; the first 100 are listed"
    assert len(response.json()["errors"]) == 100


def test_too_many_records_is_422_and_a_huge_body_413(project: Path, batch: pd.DataFrame) -> None:
    settings = Settings(
        package=str(project / "models/package"), max_records=10, max_body_bytes=20_000,
        no_auth=True,
    )  # fmt: skip
    with client_for(settings) as c:
        eleven = c.post("/predict", json={"records": records(batch.iloc[:11])})
        assert eleven.status_code == 422 and "at most 10" in eleven.text
        huge = c.post("/predict", json={"records": records(batch.iloc[:200])})
        assert huge.status_code == 413 and "20,000 bytes" in huge.json()["detail"]
        assert c.post("/predict", json={"records": records(batch.iloc[:10])}).status_code == 200


def test_a_token_protects_predict(
    project: Path, batch: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "s3cret-token-for-tests")
    with client_for(Settings(no_auth=True, package=str(project / "models/package"))) as c:
        body = {"records": records(batch.iloc[:1])}
        assert c.post("/predict", json=body).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert c.post("/predict", json=body, headers=wrong).status_code == 401
        right = {"Authorization": "Bearer s3cret-token-for-tests"}
        assert c.post("/predict", json=body, headers=right).status_code == 200
        assert c.get("/health").status_code == 200
        # nothing else answers without the token: not the description, not the metadata,
        # not even a validation error's field-level detail
        for path in ("/openapi.json", "/docs", "/metadata"):
            assert c.get(path).status_code == 401, path
        bad = c.post("/predict", json={"records": [{"id": "x"}]})
        assert bad.status_code == 401 and "car_value" not in bad.text
        spec = c.get("/openapi.json", headers=right).json()
        assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
        assert c.get("/metadata", headers=right).status_code == 200


def test_a_streamed_body_over_the_limit_is_413(project: Path, batch: pd.DataFrame) -> None:
    settings = Settings(
        no_auth=True, package=str(project / "models/package"), max_body_bytes=20_000
    )
    body = json.dumps({"records": records(batch.iloc[:200])}).encode()

    def chunks() -> Iterator[bytes]:  # no content-length: sent chunked
        for i in range(0, len(body), 4096):
            yield body[i : i + 4096]

    with client_for(settings) as c:
        streamed = c.post(
            "/predict", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413, streamed.text
        small = json.dumps({"records": records(batch.iloc[:5])}).encode()
        ok = c.post(
            "/predict",
            content=iter([small[:100], small[100:]]),
            headers={"content-type": "application/json"},
        )
        assert ok.status_code == 200, ok.text


def test_what_is_acknowledged_is_logged_one_for_one(
    project: Path, batch: pd.DataFrame, tmp_path: Path
) -> None:
    """Huge and mixed ids: each request is either refused at the door (422) or logged, and no
    refused record takes an acknowledged one down with it."""
    logs = tmp_path / "logs"
    settings = Settings(no_auth=True, package=str(project / "models/package"), log_dir=str(logs))
    sent = records(batch.iloc[:40])
    acknowledged: list[object] = []
    with client_for(settings) as c:
        for i, rec in enumerate(sent):
            rec = dict(rec)
            if i % 4 == 1:
                rec["id"] = 2**63 + i  # beyond int64
            elif i % 4 == 2:
                rec["id"] = f"abc-{i}"  # a string where the development ids are integers
            response = c.post("/predict", json={"records": [rec]})
            if response.status_code == 200:
                acknowledged.append(response.json()["predictions"][0]["id"])
            else:
                assert response.status_code == 422 and "id" in response.text, response.text
    logged = pd.concat(pd.read_parquet(f) for f in sorted(logs.rglob("*.parquet")))
    assert len(acknowledged) == 20
    assert sorted(logged["id"].tolist()) == sorted(acknowledged)


def test_health_metadata_and_openapi(client: Any) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["package"] == "car_loan"
    meta = client.get("/metadata").json()
    assert meta["metrics"]["test"]["roc_auc"] > 0.9
    assert set(meta["schema"]["required"]) >= {"id", "car_value"}
    assert meta["model_card"].startswith("# Model card")
    spec = client.get("/openapi.json").json()
    record = spec["components"]["schemas"]["Record"]
    assert "car_value" in record["required"] and record["additionalProperties"] is False
    # /docs' example body is the package's own (its reference's first record), and valid
    example = spec["components"]["schemas"]["PredictRequest"]["examples"][0]
    assert {"id", "car_value", "salary_range"} <= set(example["records"][0])
    assert client.post("/predict", json=example).status_code == 200


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_schemathesis_finds_no_failure(project: Path, mode: str) -> None:
    """Generated requests, valid and invalid, against every operation, with every check.

    (schemathesis' pytest plugin relies on a pytest internal that pytest 9 removed, so its
    strategies are driven with hypothesis directly.)
    """
    app = create_app(Settings(no_auth=True, package=str(project / "models/package"), max_records=5))
    api = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in api.get_all_operations()]
    assert {op.label for op in operations} >= {"POST /predict", "GET /health", "GET /metadata"}
    columnar = [op for op in operations if op.label == "POST /predict/columnar"]
    assert columnar, "the columnar form is in the OpenAPI description"
    if mode == "negative":  # GETs without parameters have no invalid form
        operations = [op for op in operations if op.label.startswith("POST /predict")]
    for operation in operations:
        # JSON Schema cannot say which type each position of a columnar row must have, so
        # generated "valid" rows are not valid records: that one check is left to the tests
        # above, every other check runs
        excluded = [positive_data_acceptance] if operation in columnar else []
        run_checks(operation, mode, excluded)


def run_checks(operation: Any, mode: str, excluded: list[Any]) -> None:
    @given(case=operation.as_strategy(generation_mode=GenerationMode(mode)))
    @settings(
        max_examples=25,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        case.call_and_validate(excluded_checks=excluded)

    check()


def test_logs_hold_every_prediction_and_monitor_reads_them(
    client: Any, batch: pd.DataFrame, project: Path, tmp_path: Path
) -> None:
    before = {p for p in client.logs.rglob("*.parquet")}
    sent = batch.iloc[1000:1300]
    for part in (sent.iloc[:100], sent.iloc[100:]):
        assert client.post("/predict", json={"records": records(part)}).status_code == 200
    deadline = time.time() + 10
    while time.time() < deadline:
        logged = pd.concat(
            [pd.read_parquet(p) for p in set(client.logs.rglob("*.parquet")) - before]
            or [pd.DataFrame()]
        )
        if len(logged) >= 300:
            break
        time.sleep(0.1)
    assert sorted(logged["id"]) == sorted(sent["id"])
    assert {"request_id", "logged_at", "score", "label", "model_version"} <= set(logged.columns)
    assert logged["request_id"].nunique() == 2
    assert all(p.parent.name.startswith("date=") for p in client.logs.rglob("*.parquet"))
    proc = run_cli(
        "monitor",
        "--package",
        str(project / "models/package"),
        "--input",
        str(client.logs),
        "--output-dir",
        str(tmp_path / "mon"),
        "--chunk-rows",
        "100",
        "--no-fail-on-alerts",
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "mon/summary.json").read_text())["analysis"]["rows"] >= 300


# --- a real server -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(
    package: Path, port: int, logs: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            str(BIN / "tabml"),
            "serve",
            "--package",
            str(package),
            "--port",
            str(port),
            "--log-dir",
            str(logs),
            *extra,
            # no token given: serving without one must be asked for
            *([] if any("TOKEN" in k for k in (env or {})) else ["--no-auth"]),
        ],
        env={**tool_env(), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    import httpx

    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"server did not start:\n{proc.communicate()[0]}")


def test_fifty_concurrent_requests_on_uvicorn_match_tabml_predict(
    project: Path, batch: pd.DataFrame, expected: pd.DataFrame, tmp_path: Path
) -> None:
    import httpx

    port = free_port()
    server = start(project / "models/package", port, tmp_path / "logs")
    try:
        parts = [batch.iloc[i * 20 : (i + 1) * 20] for i in range(50)]

        def send(part: pd.DataFrame) -> httpx.Response:
            return httpx.post(
                f"http://127.0.0.1:{port}/predict", json={"records": records(part)}, timeout=60
            )

        with ThreadPoolExecutor(max_workers=50) as pool:
            responses = list(pool.map(send, parts))
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    assert [r.status_code for r in responses] == [200] * 50
    got = pd.DataFrame([p for r in responses for p in r.json()["predictions"]]).set_index("id")
    want = expected.loc[got.index]
    np.testing.assert_allclose(got["score"], want["score"], rtol=0, atol=1e-12)
    logged = pd.read_parquet(tmp_path / "logs")  # a graceful stop flushes everything
    assert len(logged) == 1000


def test_the_log_survives_a_kill_and_a_restart(
    project: Path, batch: pd.DataFrame, tmp_path: Path
) -> None:
    import httpx

    logs, port = tmp_path / "logs", free_port()
    server = start(project / "models/package", port, logs)
    url = f"http://127.0.0.1:{port}/predict"
    for i in range(20):
        httpx.post(url, json={"records": records(batch.iloc[i * 50 : (i + 1) * 50])}, timeout=60)
    time.sleep(6)  # past the flush interval: these are on disk
    httpx.post(url, json={"records": records(batch.iloc[1000:1050])}, timeout=60)
    os.kill(server.pid, signal.SIGKILL)  # no chance to flush the last request
    server.wait(timeout=30)
    files = list(logs.rglob("*.parquet"))
    assert all(not p.name.startswith(".") for p in files)
    assert sum(len(pd.read_parquet(p)) for p in files) == 1000  # every finished file reads
    # a restart writes what the killed server had acknowledged (its spool) and appends to the
    # same log; a graceful stop writes what it holds: every acknowledged row, once
    server = start(project / "models/package", port, logs)
    httpx.post(url, json={"records": records(batch.iloc[2000:2100])}, timeout=60)
    server.send_signal(signal.SIGINT)
    server.wait(timeout=30)
    logged = pd.read_parquet(logs)
    assert len(logged) == 1150 and logged["id"].is_unique


def test_the_columnar_form_scores_like_records_and_logs_each_record(
    project: Path, batch: pd.DataFrame, expected: pd.DataFrame, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    settings = Settings(no_auth=True, package=str(project / "models/package"), log_dir=str(logs))
    sent = records(batch.iloc[:1000])
    names = list(sent[0])
    body = {"columns": names, "data": [[r[n] for n in names] for r in sent]}
    with client_for(settings) as c:
        response = c.post("/predict/columnar", json=body)
        assert response.status_code == 200, response.text[:500]
        got = response.json()["predictions"]
        want = expected.loc[[r["id"] for r in sent]]
        assert got["id"] == [r["id"] for r in sent]
        np.testing.assert_allclose(got["score"], want["score"], rtol=0, atol=1e-12)
        assert got["label"] == want["label"].tolist()
        # the same rules and per-record errors as /predict
        broken = [row[:] for row in body["data"][:5]]
        broken[3][names.index("car_value")] = "lots"
        bad = c.post("/predict/columnar", json={"columns": names, "data": broken})
        assert bad.status_code == 422
        assert [(e["record"], e["field"]) for e in bad.json()["errors"]] == [(3, "car_value")]
        short = c.post(
            "/predict/columnar", json={"columns": names[:-1], "data": [r[:-1] for r in broken[:2]]}
        )
        assert short.status_code == 422 and {e["record"] for e in short.json()["errors"]} == {0, 1}
        ragged = c.post("/predict/columnar", json={"columns": names, "data": [broken[0][:-1]]})
        assert ragged.status_code == 422 and "values for" in ragged.text
        too_many = {"columns": names, "data": body["data"] * 2}
        assert c.post("/predict/columnar", json=too_many).status_code == 422
    logged = pd.concat(pd.read_parquet(f) for f in sorted(logs.rglob("*.parquet")))
    assert sorted(logged["id"].tolist()) == sorted(r["id"] for r in sent)


def test_two_workers_answer_a_kept_alive_client_and_report_their_metrics_as_one(
    project: Path, batch: pd.DataFrame, tmp_path: Path
) -> None:
    """Two workers serve one port; whichever answers /metrics reports the sum over both. (Their
    sockets' TCP_NODELAY, without which each response waited ~40 ms for the client's delayed
    ACK, is test_serving.py's; the latency itself is benchmarks/serve.py's.)"""
    import httpx

    port = free_port()
    shared = tmp_path / "metrics"
    shared.mkdir()
    (shared / "counter_1.db").write_bytes(b"stale")  # from an earlier run: must be cleared
    server = start(
        project / "models/package",
        port,
        tmp_path / "logs",
        "--workers",
        "2",
        env={"PROMETHEUS_MULTIPROC_DIR": str(shared)},
    )
    sent = records(batch.iloc[:50])
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for i in range(200):
                r = client.post("/predict", json={"records": [sent[i % 50]]})
                assert r.status_code == 200
        # then 30 requests of 3 records, each on a new connection: the kernel spreads those
        # over both workers; and 5 refusals
        for i in range(30):
            assert httpx.post(
                f"http://127.0.0.1:{port}/predict", json={"records": sent[i : i + 3]}
            ).is_success
        for _ in range(5):
            assert httpx.post(f"http://127.0.0.1:{port}/predict", json={}).status_code == 422
        # whichever worker answers /metrics, it reports the sum over both
        scrapes = [
            metric_values(httpx.get(f"http://127.0.0.1:{port}/metrics").text) for _ in range(6)
        ]
        writers = {p.name.split("_")[-1] for p in shared.glob("counter_*.db")}
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    assert len(writers) == 2, f"both workers write their counters: {sorted(writers)}"
    for values in scrapes:
        assert values[("tabml_records_scored_total", "/predict")] == 200 + 30 * 3
        assert values[("tabml_score_count", "")] == 200 + 30 * 3
        assert values[("tabml_http_errors_total", "/predict 422 invalid_records")] == 5


def metric_values(text: str) -> dict[tuple[str, str], float]:
    """Prometheus text as {(name, "endpoint [status reason]"): value}, for the tests."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            key = " ".join(
                labels[k] for k in ("endpoint", "status", "reason", "outcome") if k in labels
            )
            if "le" in labels:
                key += f" le={labels['le']}"
            out[(sample.name, key)] = sample.value
    return out


def test_metrics_count_what_the_service_did(
    project: Path, batch: pd.DataFrame, expected: pd.DataFrame, tmp_path: Path
) -> None:
    """Records, scores, refusals by reason, latency per endpoint and log rows, as Prometheus
    reads them; the probes answer without the token, /metrics only with it."""
    logs = tmp_path / "logs"
    settings = Settings(
        no_auth=True,
        package=str(project / "models/package"),
        log_dir=str(logs),
        flush_seconds=0.05,
        max_body_bytes=20_000,
    )
    token = {"Authorization": "Bearer t0ken-for-the-metrics-test"}
    os.environ[TOKEN_ENV] = "t0ken-for-the-metrics-test"
    try:
        client = client_for(settings)
    finally:
        del os.environ[TOKEN_ENV]
    sent = batch.iloc[:25]
    with client:
        assert client.get("/ready").status_code == 200  # no token: a probe
        assert client.get("/metrics").status_code == 401
        for part in (sent.iloc[:10], sent.iloc[10:]):
            r = client.post("/predict", json={"records": records(part)}, headers=token)
            assert r.status_code == 200
        assert client.post("/predict", json={"records": [{}]}, headers=token).status_code == 422
        big = {"records": records(batch.iloc[:200])}
        assert client.post("/predict", json=big, headers=token).status_code == 413
        assert client.get("/nowhere", headers=token).status_code == 404
        deadline = time.time() + 10
        while True:  # the log is written in the background: wait for its 25 rows
            answer = client.get("/metrics", headers=token)
            written = metric_values(answer.text)[("tabml_prediction_log_rows_total", "written")]
            if written == 25 or time.time() > deadline:
                break
            time.sleep(0.02)
    assert answer.headers["content-type"].startswith("text/plain")
    values = metric_values(answer.text)
    assert 'model_version="car_loan-' in answer.text
    assert values[("tabml_records_scored_total", "/predict")] == 25
    scores = expected.loc[sent["id"], "score"].to_numpy()
    assert values[("tabml_score_count", "")] == 25
    assert values[("tabml_score_sum", "")] == pytest.approx(scores.sum(), rel=1e-12)
    for bound in ("0.1", "0.5", "0.9", "1.0"):
        below = int((scores <= float(bound)).sum())
        assert values[("tabml_score_bucket", f" le={bound}")] == below, bound
    assert values[("tabml_http_errors_total", "/metrics 401 unauthorized")] == 1
    assert ("tabml_http_errors_total", "/ready 401 unauthorized") not in values
    assert values[("tabml_http_errors_total", "/predict 422 invalid_records")] == 1
    assert values[("tabml_http_errors_total", "/predict 413 body_too_large")] == 1
    assert values[("tabml_http_errors_total", "other 404 not_found")] == 1
    assert values[("tabml_request_duration_seconds_count", "/predict")] == 4
    assert values[("tabml_request_duration_seconds_count", "/ready")] == 1
    logged = len(pd.read_parquet(logs))
    assert values[("tabml_prediction_log_rows_total", "written")] == logged == 25
    assert values[("tabml_prediction_log_rows_total", "dropped")] == 0
    assert values[("tabml_model_info", "")] == 1


BLOCKER = """
import importlib.abc, sys
PIPELINE = {PIPELINE!r}
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in PIPELINE:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Refuse())
"""


def test_serve_and_predict_need_only_the_serving_set(
    project: Path, batch: pd.DataFrame, expected: pd.DataFrame, tmp_path: Path
) -> None:
    """With every module of the pipeline group unimportable (as in the image, which has only
    the project's own dependencies), predict and serve work and a pipeline command says why
    it cannot. The image test (test_image.py) checks the same in the real environment."""
    import httpx

    from tabml.cli import PIPELINE_MODULES

    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER.format(PIPELINE=sorted(PIPELINE_MODULES)))
    env = {**tool_env(), "PYTHONPATH": str(site)}
    batch.iloc[:100].to_parquet(tmp_path / "in.parquet")
    proc = subprocess.run(
        [str(BIN / "tabml"), "predict", "--package", str(project / "models/package"),
         "--input", str(tmp_path / "in.parquet"), "--output", str(tmp_path / "out.parquet")],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    got = pd.read_parquet(tmp_path / "out.parquet").set_index("id")
    pd.testing.assert_series_equal(got["score"], expected.loc[got.index, "score"])

    port = free_port()
    server = start(project / "models/package", port, tmp_path / "logs", env=env)
    try:
        r = httpx.post(
            f"http://127.0.0.1:{port}/predict", json={"records": records(batch.iloc[:5])}
        )
        assert r.status_code == 200
        assert "tabml_records_scored_total" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert len(pd.read_parquet(tmp_path / "logs")) == 5

    refused = subprocess.run(
        [str(BIN / "tabml"), "datasets"], env=env, capture_output=True, text=True
    )
    assert refused.returncode == 2
    assert "needs nannyml" in refused.stderr and "uv sync" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_https_with_a_throwaway_authority_and_a_warning_for_plain_http_beyond_loopback(
    project: Path, batch: pd.DataFrame, tmp_path: Path
) -> None:
    """The client verifies the server's certificate against the authority and gets scores;
    plain HTTP on a non-loopback address says at start that it is plain."""
    import httpx
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile, cafile = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "tabml"), "serve", "--package", str(project / "models/package"),
         "--port", str(port), "--ssl-certfile", str(certfile), "--ssl-keyfile", str(keyfile),
         "--no-auth"],
        env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.time() + 60
        while True:
            try:
                r = httpx.post(
                    f"https://127.0.0.1:{port}/predict",
                    json={"records": records(batch.iloc[:3])},
                    verify=str(cafile),
                )
                break
            except httpx.ConnectError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        assert r.status_code == 200 and len(r.json()["predictions"]) == 3
        with pytest.raises(httpx.ConnectError):  # a client that does not trust the authority
            httpx.get(f"https://127.0.0.1:{port}/health")
        with pytest.raises(httpx.RemoteProtocolError):  # and no plain HTTP on that port
            httpx.get(f"http://127.0.0.1:{port}/health")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert "warning" not in out.lower()
    # plain HTTP beyond loopback: `start` waits for /health, the output says it is plain
    proc = start(project / "models/package", free_port(), tmp_path / "logs", "--host", "0.0.0.0")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert "warning: serving plain HTTP on 0.0.0.0" in out


def test_named_tokens_are_taken_back_without_a_restart_and_every_call_is_audited(
    project: Path, batch: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = "a" * 40, "b" * 40
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(f"alice: {alice}\nbob: {bob}\n")
    monkeypatch.setenv("TABML_API_TOKENS_FILE", str(tokens))
    audit = tmp_path / "audit/audit.jsonl"
    client = client_for(Settings(package=str(project / "models/package"), audit_log=str(audit)))
    body = {"records": records(batch.iloc[:3])}

    def predict(token: str) -> int:
        headers = {"Authorization": f"Bearer {token}"}
        return int(client.post("/predict", json=body, headers=headers).status_code)

    with client:
        assert [predict(alice), predict(bob), predict("nope")] == [200, 200, 401]
        tokens.write_text(f"alice: {alice}\n")  # bob's access taken back
        time.sleep(1.1)  # the file is looked at once a second at most
        assert [predict(bob), predict(alice)] == [401, 200]
        assert client.get("/ready").status_code == 200
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [(r["caller"], r["status"], r["records"]) for r in lines] == [
        ("alice", 200, 3),
        ("bob", 200, 3),
        ("-", 401, 0),
        ("-", 401, 0),
        ("alice", 200, 3),
        (None, 200, 0),
    ]
    assert all(r["endpoint"] in ("/predict", "/ready") and r["client"] for r in lines)
    text = audit.read_text()
    assert alice not in text and bob not in text, "the audit log names callers, never tokens"
    summary = run_cli("audit", "--log", str(audit))
    assert summary.returncode == 10, summary.stderr  # there were denials
    assert "| alice | 2 | 6 | 0 |" in summary.stdout and "testclient: 2" in summary.stdout


# --- fail closed, lose nothing (issue 27) ---------------------------------------------------


def test_without_a_token_the_app_refuses_to_start_unless_told(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tabml.core.errors import ConfigError

    for name in (TOKEN_ENV, "TABML_API_TOKEN_FILE", "TABML_API_TOKENS_FILE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="--no-auth"):
        create_app(Settings(package=str(project / "models/package")))


def test_lone_surrogates_are_422_and_head_works_on_the_probes(
    client: Any, batch: pd.DataFrame
) -> None:
    record = records(batch.iloc[:1])[0]
    text_field = next(k for k, v in record.items() if isinstance(v, str) and k != "id")
    lone = '"\\ud800"'  # JSON's escape for a lone surrogate: valid JSON, not storable text
    body = json.dumps({"records": [{**record, text_field: "LONE"}]}).replace('"LONE"', lone)
    headers = {"content-type": "application/json"}
    r = client.post("/predict", content=body, headers=headers)
    assert r.status_code == 422 and "surrogate" in r.text, r.text
    values = [("LONE" if k == text_field else v) for k, v in record.items()]
    columnar = json.dumps({"columns": list(record), "data": [values]}).replace('"LONE"', lone)
    assert client.post("/predict/columnar", content=columnar, headers=headers).status_code == 422
    for path in ("/health", "/ready"):
        assert client.head(path).status_code == 200


def test_a_full_disk_gets_503_and_not_ready_and_nothing_acknowledged_is_lost(
    project: Path, batch: pd.DataFrame, tmp_path: Path
) -> None:
    """600 requests on a disk that fills: every 200 is in the log, the rest got 503, /ready
    said 503 while the log could not be written and 200 again once it could."""
    with small_disk(tmp_path / "disk", "512k") as mount:
        logs, audit = mount / "predictions", mount / "audit/audit.jsonl"
        settings = Settings(
            no_auth=True, package=str(project / "models/package"), log_dir=str(logs),
            audit_log=str(audit), flush_seconds=0.05,
        )  # fmt: skip
        sent = records(batch.iloc[:5])
        acknowledged: list[str] = []
        statuses: list[int] = []
        with client_for(settings) as c:
            ballast = fill_disk(mount)
            for _ in range(600):
                r = c.post("/predict", json={"records": sent})
                statuses.append(r.status_code)
                if r.status_code == 200:
                    acknowledged.append(r.json()["request_id"])
            assert c.get("/ready").status_code == 503
            ballast.unlink()
            deadline = time.time() + 10
            while c.get("/ready").status_code != 200 and time.time() < deadline:
                time.sleep(0.05)
            assert c.get("/ready").status_code == 200
            r = c.post("/predict", json={"records": sent})
            assert r.status_code == 200
            acknowledged.append(r.json()["request_id"])
        assert set(statuses) <= {200, 503} and 503 in statuses
        logged = pd.read_parquet(logs)
        assert set(logged["request_id"]) == set(acknowledged)
        assert len(logged) == 5 * len(acknowledged)
        lines = audit.read_bytes().splitlines()
        assert all(json.loads(line) for line in lines)  # whole lines only


def test_the_peer_is_audited_and_a_stalled_request_is_cut_off(
    project: Path, tmp_path: Path
) -> None:
    """On a real server: a connection that never finishes its headers is closed after
    --header-timeout; X-Forwarded-For from an untrusted peer is not believed."""
    import httpx

    port, audit = free_port(), tmp_path / "audit"
    # a folder (the trailing slash, as the image and the manifests give it): one file per
    # process and day
    server = start(project / "models/package", port, tmp_path / "logs", "--audit-log",
                   f"{audit}/", "--header-timeout", "1")  # fmt: skip
    try:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
            sock.settimeout(10)
            started = time.monotonic()
            assert sock.recv(100) == b""  # closed by the server
            assert time.monotonic() - started < 9
        headers = {"X-Forwarded-For": "198.51.100.1, \x1b[31m"}
        assert httpx.get(f"http://127.0.0.1:{port}/ready", headers=headers).status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    (written,) = audit.glob("date=*/audit-*.jsonl")
    line = json.loads(written.read_text().splitlines()[-1])
    assert line["client"] == line["peer"] == "127.0.0.1"


def test_sighup_stops_gracefully_and_a_dead_worker_fails_the_command(
    project: Path, batch: pd.DataFrame, tmp_path: Path
) -> None:
    import httpx

    port, logs = free_port(), tmp_path / "logs"
    server = start(project / "models/package", port, logs)
    for i in range(3):
        r = httpx.post(f"http://127.0.0.1:{port}/predict",
                       json={"records": records(batch.iloc[i * 5 : i * 5 + 5])})  # fmt: skip
        assert r.status_code == 200
    server.send_signal(signal.SIGHUP)
    out, _ = server.communicate(timeout=30)
    # stopped as SIGTERM stops it (uvicorn re-raises that signal once it has shut down), not
    # killed by the hangup
    assert server.returncode in (0, -signal.SIGTERM), out
    assert "Shutting down" in out
    assert len(pd.read_parquet(logs)) == 15  # flushed, not killed
    # two workers, one killed: the command says so and fails, for a supervisor to restart
    server = start(project / "models/package", port, tmp_path / "logs2", "--workers", "2")
    children = [int(p) for p in Path(f"/proc/{server.pid}/task/{server.pid}/children")
                .read_text().split()]  # fmt: skip
    workers = [c for c in children if "tabml-worker" in _cmdline(c) or _is_worker(c)]
    os.kill(workers[0], signal.SIGKILL)
    out, _ = server.communicate(timeout=60)
    assert server.returncode == 1, out
    assert "a worker stopped unexpectedly" in out and "killed by signal 9" in out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _is_worker(pid: int) -> bool:
    return "multiprocessing" in _cmdline(pid) and "resource_tracker" not in _cmdline(pid)


def test_the_package_s_example_request_is_one_it_accepts(client: Any, project: Path) -> None:
    """`tabml package example` builds the README's request from the package's own schema, for
    any dataset: the service scores it."""
    from tabml.service.serving import example_request

    body = example_request(pkg.load(project / "models/package"), records=3)
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == 3
