"""The HTTP service (`tabml serve`): FastAPI around `serving.Scorer` and `predlog.PredictionLog`.

Endpoints: `POST /predict`, `POST /predict/columnar`, `GET /health` (liveness), `GET /ready`
(readiness: the package is loaded and verified, and the server is not shutting down),
`GET /metadata`, `GET /metrics` (Prometheus), and the OpenAPI description at `/openapi.json`
(browsable at `/docs`). With a token set (`TABML_API_TOKEN`, `TABML_API_TOKEN_FILE`, or named
client tokens in `TABML_API_TOKENS_FILE`: see tabml.service.access), the token is checked before
anything else, and only the probes `/health` and `/ready` answer without it (401 otherwise).
With an audit log, every request is recorded with its caller's name (tabml.service.access). Bad
input
never gets a 500: wrong types, missing or extra fields, NaN and Infinity get a 422 that lists
each error with its record; a body over the limit, declared or streamed, gets a 413.
"""

# no `from __future__ import annotations` here: FastAPI reads the request model from
# predict()'s signature at run time, and that model is built per package
import gc
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tabml.core.log import info
from tabml.learning import package as pkg
from tabml.service import serving
from tabml.service.access import TOKEN_ENV, Audit, AuditLog, Proxies, Tokens
from tabml.service.metrics import CONTENT_TYPE, Measure, ServiceMetrics
from tabml.service.predlog import LogUnavailable, PredictionLog, now_iso

# `tabml serve` hands its settings to each uvicorn worker through these
SETTINGS_ENV = "TABML_SERVE_SETTINGS"
# a 422 lists at most this many problems (and says how many there were)
MAX_ERRORS = 100
# what answers without the token when one is set: the probes of an orchestrator
OPEN_PATHS = frozenset({"/health", "/ready"})


@dataclass(frozen=True)
class Settings:
    package: str
    log_dir: str | None = None
    max_records: int = 1_000
    max_body_bytes: int = 5_000_000
    flush_rows: int = 10_000
    flush_seconds: float = 5.0
    audit_log: str | None = None
    # serving without any token must be asked for (`tabml serve --no-auth`): fail closed
    no_auth: bool = False
    # the proxies (addresses, CIDR networks) whose X-Forwarded-For names the client
    forwarded_allow_ips: str = ""
    # a request body that does not arrive in this many seconds gets 408
    body_timeout: float = 30.0
    # a connection that has not sent a request's headers in this many seconds is closed
    header_timeout: float = 10.0


class Gate:
    """ASGI middleware in front of everything else: the token, then the body's size.

    With a token set, every request but the open paths (`/health`, for probes) must carry it,
    checked in constant time before anything else answers: no OpenAPI description, metadata or
    validation detail is given to a caller without it (401). Then the body is read, at most
    `limit` bytes whether its length is declared or it is streamed in chunks (413 past that),
    and handed on whole.
    """

    def __init__(
        self,
        app: Any,
        limit: int,
        tokens: Tokens,
        open_paths: frozenset[str],
        body_timeout: float = 30.0,
    ) -> None:
        self.app, self.limit, self.open_paths, self.tokens = app, limit, open_paths, tokens
        self.body_timeout = body_timeout

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        if self.tokens.enabled and scope.get("path") not in self.open_paths:
            caller = self.tokens.who(headers.get(b"authorization", b""))
            scope.setdefault("state", {})["caller"] = caller
            if caller is None:
                await _answer(
                    send,
                    401,
                    {"detail": "missing or wrong bearer token"},
                    [(b"www-authenticate", b"Bearer")],
                )
                return
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        import asyncio

        chunks: list[bytes] = []
        seen = 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), self.body_timeout)
            except TimeoutError:  # a body that stalls holds a connection: not for ever
                detail = f"the request body did not arrive within {self.body_timeout:g} s"
                await _answer(send, 408, {"detail": detail}, [(b"connection", b"close")])
                return
            if message["type"] != "http.request":  # the client went away: nothing to answer
                scope.setdefault("state", {})["client_closed"] = True
                return
            body = message.get("body", b"")
            seen += len(body)
            if seen > self.limit:
                await self._refuse(send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        whole = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        delivered = False

        async def replay() -> Any:
            nonlocal delivered
            if not delivered:
                delivered = True
                return whole
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Any) -> None:
        detail = f"request body over the limit of {self.limit:,} bytes; send fewer records"
        await _answer(send, 413, {"detail": detail}, [])


async def _answer(send: Any, status: int, content: Any, headers: list[Any]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *headers],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(content).encode()})


def _json_route() -> Any:
    """A FastAPI route class whose request bodies are parsed with orjson (a 1,000-record body
    in a quarter of the time), falling back to the standard parser for what orjson refuses
    and Python reads (integers beyond 64 bits), so that every body gets the same verdict."""
    import json as std_json

    import orjson
    from fastapi import Request
    from fastapi.routing import APIRoute

    class FastJsonRequest(Request):
        async def json(self) -> Any:
            if not hasattr(self, "_json"):
                body = await self.body()
                try:
                    self._json = orjson.loads(body)
                except orjson.JSONDecodeError:
                    self._json = std_json.loads(body)
            return self._json

    class FastJsonRoute(APIRoute):
        def get_route_handler(self) -> Any:
            handler = super().get_route_handler()

            async def route(request: Request) -> Any:
                return await handler(FastJsonRequest(request.scope, request.receive))

            return route

    return FastJsonRoute


def _errors(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """FastAPI's validation errors as one entry per problem, with the record it is in."""
    out = []
    for err in raw:
        loc = [p for p in err.get("loc", ()) if p != "body"]
        record = (
            loc[1] if len(loc) > 1 and loc[0] == "records" and isinstance(loc[1], int) else None
        )
        field = loc[2] if record is not None and len(loc) > 2 else (".".join(map(str, loc)) or None)
        out.append(
            {"record": record, "field": field, "error": err.get("msg"), "type": err.get("type")}
        )
    return out


# --- the response models (what the OpenAPI description shows) -------------------------------


class Prediction(BaseModel):
    id: int | str
    score: float
    label: int
    # present when a categorical field holds a value the model never learnt (scored as
    # missing): the fields' names
    unseen: list[str] | None = None


class PredictResponse(BaseModel):
    model_version: str
    request_id: str
    predictions: list[Prediction]


class Problem(BaseModel):
    record: int | None
    field: str | int | None
    error: str | None
    type: str | None


class Problems(BaseModel):
    detail: str
    errors: list[Problem]


class Refusal(BaseModel):
    detail: str


class ColumnarPredictions(BaseModel):
    id: list[int | str]
    score: list[float]
    label: list[int]
    # present when some record holds a category the model never learnt: field -> the
    # indices of those records
    unseen: dict[str, list[int]] | None = None


class ColumnarResponse(BaseModel):
    model_version: str
    request_id: str
    predictions: ColumnarPredictions


REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"model": Refusal, "description": "missing or wrong bearer token"},
    413: {"model": Refusal, "description": "request body over the limit"},
    422: {"model": Problems, "description": "invalid records: each problem listed"},
    503: {"model": Refusal, "description": "not scored: the prediction could not be recorded"},
}


def _columnar_request(max_records: int) -> type[BaseModel]:
    class ColumnarRequest(BaseModel):
        """The records as columns: the field names once, then one list of values per record,
        in the order of `columns`. The same rules, limits and per-record errors as
        `{"records": [...]}`, in a body a third the size for many records."""

        model_config = ConfigDict(extra="forbid")
        columns: list[str] = Field(
            min_length=1, description="field names: the id, every feature, optional extras"
        )
        data: list[list[Any]] = Field(
            min_length=1,
            max_length=max_records,
            description="one list per record, its values in the order of `columns`",
        )

    return ColumnarRequest


# --- the service: one package, its scorer, log and metrics ---------------------------------


class Service:
    """What the handlers share: the verified package and its scorer, the prediction log, the
    metrics and whether the server is ready."""

    def __init__(self, settings: Settings) -> None:
        with pkg.unpacked(Path(settings.package)) as folder:
            self.loaded = pkg.load(folder)
            self.schema_json = json.loads((folder / pkg.SCHEMA).read_text(encoding="utf-8"))
            self.card = (folder / pkg.CARD).read_text(encoding="utf-8")
            self.version = serving.model_version(self.loaded)
            self.ids = serving.id_kind(self.loaded)
        self.settings = settings
        self.scorer = serving.Scorer(self.loaded)
        self.schema = self.loaded.schema
        self.metrics = ServiceMetrics(self.loaded.name, self.loaded.model.kind, self.version)
        # ready once the package is loaded and verified (above) and the server runs; not ready
        # again from the moment it is told to stop, so that no new traffic is sent its way
        self.ready = False
        self.log = self._prediction_log() if settings.log_dir else None
        self.audit = (
            AuditLog(Path(settings.audit_log), folder=settings.audit_log.endswith("/"))
            if settings.audit_log
            else None
        )
        logged = serving.logged_only(self.schema)
        # /docs shows a body of this package's own schema (its reference's first record)
        self.request_model = serving.request_model(
            self.schema_json, logged, settings.max_records, self.ids,
            example=serving.example_request(self.loaded),
        )  # fmt: skip
        self.columnar_request = _columnar_request(settings.max_records)
        self.columnar_checks = serving.ColumnChecks(self.schema_json, logged, self.ids)
        self.record_type = serving.record_model(self.schema_json, logged, self.ids)

    def _prediction_log(self) -> PredictionLog:
        from tabml.governance import privacy

        pii = dict(self.schema.pii)
        # personal data reaches the log only pseudonymised (or dropped), as ingest does
        key = privacy.key_from_env(os.environ, "pseudonymise" in pii.values())

        def protect(frame: Any) -> Any:
            return privacy.apply(frame, pii, key)

        return PredictionLog(
            Path(str(self.settings.log_dir)),
            transform=protect if pii else None,
            flush_rows=self.settings.flush_rows,
            flush_seconds=self.settings.flush_seconds,
            on_count=self.metrics.log_rows,
        )

    def healthy(self) -> str | None:
        """Why the service cannot take predictions now (None when it can): what it would
        acknowledge must be recorded, so a log that cannot be written makes it unready."""
        if not self.ready:
            return "not ready"
        if self.log is not None and not self.log.healthy:
            return "the prediction log cannot be written"
        if self.audit is not None and not self.audit.healthy:
            return "the audit log cannot be written"
        return None

    def close(self) -> None:
        self.ready = False
        if self.log is not None:
            self.log.close()
        if self.audit is not None:
            self.audit.close()

    def log_rows(
        self,
        records: list[dict[str, Any]],
        scores: list[float],
        labels: list[int],
        request_id: str,
    ) -> None:
        """Append one request's records, scores and labels to the prediction log, if any."""
        if self.log is None:
            return
        at = now_iso()
        self.log.append(
            [
                {
                    **rec,
                    serving.REQUEST_ID: request_id,
                    serving.LOGGED_AT: at,
                    serving.SCORE: score,
                    serving.LABEL: label,
                    serving.MODEL_VERSION: self.version,
                }
                for rec, score, label in zip(records, scores, labels, strict=True)
            ]
        )

    def row_errors(self, columns: list[str], data: list[list[Any]]) -> list[dict[str, Any]]:
        """The columnar body's problems, record by record, as `/predict` reports them."""
        from pydantic import ValidationError as PydanticError

        errors: list[dict[str, Any]] = []
        if len(set(columns)) != len(columns):
            twice = sorted({c for c in columns if columns.count(c) > 1})
            msg = f"columns named more than once: {twice}"
            errors.append({"loc": ("body", "columns"), "msg": msg, "type": "columns"})
            return errors
        for i, row in enumerate(data):
            if len(row) != len(columns):
                errors.append(
                    {
                        "loc": ("body", "records", i),
                        "msg": f"{len(row)} values for {len(columns)} columns",
                        "type": "row_length",
                    }
                )
                continue
            try:
                self.record_type.model_validate(dict(zip(columns, row, strict=True)))
            except PydanticError as err:
                for e in err.errors():
                    errors.append({**e, "loc": ("body", "records", i, *e["loc"])})
        return errors


# --- the application ------------------------------------------------------------------------


def create_app(settings: Settings) -> Any:
    """The FastAPI application for one package."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Security
    from fastapi.security import HTTPBearer

    service = Service(settings)
    loaded = service.loaded

    @asynccontextmanager
    async def lifespan(_: Any) -> Any:
        service.ready = True
        yield
        service.close()

    app = FastAPI(
        title=f"tabml: {loaded.name}",
        version=service.version,
        description=f"Scores records with the `{loaded.name}` package ({loaded.model.kind}).",
        lifespan=lifespan,
    )
    app.router.route_class = _json_route()
    tokens = Tokens(os.environ)
    if not tokens.enabled and not settings.no_auth:
        from tabml.core.errors import ConfigError

        raise ConfigError(
            f"no token is set: set {TOKEN_ENV} (or {TOKEN_ENV}_FILE, or named client tokens in "
            "TABML_API_TOKENS_FILE), or start with --no-auth to serve without authentication"
        )
    app.add_middleware(
        Gate,
        limit=settings.max_body_bytes,
        tokens=tokens,
        open_paths=OPEN_PATHS,
        body_timeout=settings.body_timeout,
    )
    # around it: times every request and counts every refusal, the Gate's included
    app.add_middleware(Measure, metrics=service.metrics)
    if service.audit is not None:  # outermost: one line per request, denied ones included
        proxies = Proxies(settings.forwarded_allow_ips)
        app.add_middleware(Audit, log=service.audit, proxies=proxies, open_paths=OPEN_PATHS)
    # declares the scheme in the OpenAPI description; Gate enforces it, before anything else
    bearer = HTTPBearer(auto_error=False, description=f"the token in {TOKEN_ENV}")
    secured = [Security(bearer)] if tokens.enabled else []
    _add_error_handlers(app)
    _add_probes(app, service, secured)
    _add_predict(app, service, secured)

    # everything loaded so far (pandas, LightGBM, the model) lives as long as the server: keep
    # it out of the garbage collector's way, which cuts the p99 of a 1,000-record request
    # from about 100 ms to 21 ms (benchmarks/serve.py)
    gc.freeze()
    info(
        f"serve: {loaded.name} ({loaded.model.kind}, {service.version}); up to "
        f"{settings.max_records:,} records per request; "
        + (f"logging predictions to {settings.log_dir}" if service.log else "no prediction log")
        + (
            f"; bearer token required ({len(tokens.names())} client(s))"
            if tokens.enabled
            else "; NO AUTHENTICATION (--no-auth): anyone who reaches it can call it"
        )
        + (f"; audit log {settings.audit_log}" if service.audit else "")
    )
    return app


def _add_error_handlers(app: Any) -> None:
    """422 with one entry per problem for invalid requests, and for bodies that are not text."""
    from fastapi import Request
    from fastapi.exception_handlers import http_exception_handler
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _errors(list(exc.errors()))
        shown = errors[:MAX_ERRORS]
        more = f"; the first {MAX_ERRORS} are listed" if len(errors) > MAX_ERRORS else ""
        return JSONResponse(
            status_code=422,
            content={"detail": f"{len(errors)} problem(s) in the request{more}", "errors": shown},
        )

    @app.exception_handler(StarletteHTTPException)
    async def refused(request: Request, exc: StarletteHTTPException) -> Any:
        if exc.status_code == 400:  # FastAPI's "error parsing the body": bytes that are not text
            problem = {"record": None, "field": None, "error": str(exc.detail), "type": "body"}
            return JSONResponse(
                status_code=422,
                content={"detail": "the body is not UTF-8 JSON", "errors": [problem]},
            )
        return await http_exception_handler(request, exc)


def _add_probes(app: Any, service: Service, secured: list[Any]) -> None:
    """`/health`, `/ready`, `/metrics` and `/metadata`."""
    from fastapi.responses import JSONResponse, Response

    loaded, version = service.loaded, service.version

    @app.api_route("/health", methods=["GET", "HEAD"])
    def health() -> dict[str, str]:
        """Liveness, and which package is served."""
        return {"status": "ok", "package": loaded.name, "model_version": version}

    @app.api_route(
        "/ready",
        methods=["GET", "HEAD"],
        responses={503: {"model": Refusal, "description": "not ready"}},
    )
    def ready() -> Any:
        """Readiness: 200 once the package is loaded and verified; 503 while shutting down, and
        while the prediction log or the audit log cannot be written."""
        why = service.healthy()
        if why is not None:
            return JSONResponse(status_code=503, content={"detail": why})
        return {"status": "ready", "package": loaded.name, "model_version": version}

    @app.get(
        "/metrics",
        dependencies=secured,
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text"}},
    )
    def prometheus() -> Response:
        """The service's metrics in Prometheus's text format (see tabml.service.metrics); with
        several
        workers, the sum over all of them."""
        return Response(service.metrics.exposition(), media_type=CONTENT_TYPE)

    @app.get("/metadata", dependencies=secured)
    def metadata() -> dict[str, Any]:
        """The model card's fields, the record schema and the package's metrics."""
        meta = loaded.metadata
        return {
            "name": loaded.name,
            "model_version": version,
            "model": loaded.model.kind,
            "threshold": loaded.threshold,
            "tabml_version": meta.get("tabml_version"),
            "git_commit": meta.get("git_commit"),
            "metrics": meta.get("metrics"),
            "schema": service.schema_json,
            "max_records": service.settings.max_records,
            "model_card": service.card,
        }


def _add_predict(app: Any, service: Service, secured: list[Any]) -> None:
    """`POST /predict` (records) and `POST /predict/columnar` (columns)."""
    import orjson
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import Response

    scorer, metrics, version = service.scorer, service.metrics, service.version
    request_model, columnar_request = service.request_model, service.columnar_request

    @app.post(
        "/predict",
        response_model=PredictResponse,
        dependencies=secured,
        responses=REFUSALS,
    )
    async def predict(body: request_model, request: Request) -> Any:  # type: ignore[valid-type]
        """Score up to `max_records` records: a probability of the positive class and a label."""
        # the validated field values as they are (flat records: no copy as model_dump makes)
        records = [vars(r) for r in body.records]  # type: ignore[attr-defined]
        scores = scorer.score(records)
        metrics.scored("/predict", scores)
        request.scope.setdefault("state", {})["records"] = len(records)
        out = scorer.predictions(records, scores)
        request_id = uuid.uuid4().hex
        if service.log is not None:
            scored = [p["score"] for p in out]
            try:
                service.log_rows(records, scored, [p["label"] for p in out], request_id)
            except LogUnavailable as err:
                return _unavailable(err)
        answer = {"model_version": version, "request_id": request_id, "predictions": out}
        return Response(orjson.dumps(answer), media_type="application/json")

    @app.post(
        "/predict/columnar",
        response_model=ColumnarResponse,
        dependencies=secured,
        responses=REFUSALS,
    )
    async def predict_columnar(body: columnar_request, request: Request) -> Any:  # type: ignore[valid-type]
        """`/predict` for records sent as columns; predictions come back as columns too.

        Each row of `data` is checked by the same rules as a record of `/predict` (JSON Schema
        cannot say which type each position of a row must have, so that part is described
        here, not in the schema), and a problem is reported with its record's index."""
        names, data = body.columns, body.data  # type: ignore[attr-defined]
        columns = service.columnar_checks.check(names, data)
        if columns is None:
            raise RequestValidationError(service.row_errors(names, data))
        scores = scorer.score_columns(columns)
        metrics.scored("/predict/columnar", scores)
        request.scope.setdefault("state", {})["records"] = len(scores)
        labels = (scores >= scorer.threshold).astype("int64").tolist()
        request_id = uuid.uuid4().hex
        if service.log is not None:
            rows = zip(*columns.values(), strict=True)
            records = [dict(zip(list(columns), row, strict=True)) for row in rows]
            try:
                service.log_rows(records, scores.tolist(), labels, request_id)
            except LogUnavailable as err:
                return _unavailable(err)
        answer = {
            "model_version": version,
            "request_id": request_id,
            "predictions": {
                "id": columns[service.schema.id],
                "score": scores.tolist(),
                "label": labels,
            },
        }
        new: dict[str, list[int]] = {}
        for i, fields in enumerate(scorer.unseen(columns.__getitem__, len(labels))):
            for name in fields:
                new.setdefault(name, []).append(i)
        if new:
            answer["predictions"]["unseen"] = new  # type: ignore[index]
        return Response(orjson.dumps(answer), media_type="application/json")


def _unavailable(err: Exception) -> Any:
    """503 for a prediction that could not be logged: never acknowledged, so the client may
    send it again (to another replica: /ready says 503 meanwhile)."""
    from fastapi.responses import JSONResponse

    detail = f"not scored: the prediction could not be recorded ({err}); try again"
    return JSONResponse(status_code=503, content={"detail": detail}, headers={"Retry-After": "5"})


def listening_socket(host: str, port: int, reuse_port: bool = False) -> Any:
    """A listening TCP socket made as asyncio needs it to set TCP_NODELAY.

    uvicorn's own socket for --workers > 1 is made with protocol 0, and asyncio sets
    TCP_NODELAY only on sockets whose protocol is IPPROTO_TCP (uvicorn issue #3149): every
    response then waits for the client's delayed acknowledgement, about 40 ms. Accepted
    connections inherit the listening socket's protocol, so making it with IPPROTO_TCP fixes
    every connection. With `reuse_port`, each worker listens on a socket of its own
    (SO_REUSEPORT) and the kernel spreads new connections evenly over them; one shared socket
    lets whichever worker wakes first take them (7 of 8 kept-alive clients on one worker, seen
    here), and throughput then does not grow with workers.
    """
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def check_tls(certfile: Path, keyfile: Path) -> None:
    """Load the certificate and key as the server will, before anything else: an error names
    the file and says what is wrong; an encrypted key is refused (never a prompt on the
    terminal); an expired certificate is refused and one near its end is warned about."""
    import ssl
    import sys
    from datetime import UTC, datetime

    from tabml.core.errors import ConfigError

    for path in (certfile, keyfile):
        if not path.is_file():
            raise ConfigError(f"{path}: no such file (--ssl-certfile / --ssl-keyfile)")

    def no_prompt() -> bytes:
        raise ConfigError(
            f"{keyfile}: the private key is encrypted; give an unencrypted key (a mounted "
            "secret), e.g. 'openssl pkey -in KEY -out plain.pem'"
        )

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(certfile, keyfile, no_prompt)
    except ssl.SSLError as err:
        why = err.reason or str(err)
        if "KEY_VALUES_MISMATCH" in str(err):
            raise ConfigError(
                f"{keyfile} is not the private key of the certificate in {certfile}"
            ) from None
        raise ConfigError(
            f"{certfile} / {keyfile}: not a PEM certificate and its key ({why})"
        ) from None
    try:  # the first certificate of the chain: the server's own
        decoded = ssl._ssl._test_decode_cert(str(certfile))  # type: ignore[attr-defined]
        ends = datetime.fromtimestamp(ssl.cert_time_to_seconds(decoded["notAfter"]), UTC)
    except (AttributeError, KeyError, ValueError, ssl.SSLError):
        return  # no reader for the dates here: uvicorn serves it as it is
    now = datetime.now(UTC)
    if ends <= now:
        raise ConfigError(f"{certfile}: the certificate expired on {ends:%Y-%m-%d %H:%M} UTC")
    if (ends - now).days < 14:
        print(
            f"warning: {certfile}: the certificate expires on {ends:%Y-%m-%d} UTC, in "
            f"{(ends - now).days} day(s)",
            file=sys.stderr,
        )


def hangup_stops() -> None:
    """SIGHUP (a closed terminal, a supervisor's reload) stops the server as SIGTERM does:
    requests in flight finish and the logs are flushed, instead of dying at once."""
    import signal

    signal.signal(signal.SIGHUP, lambda *_: os.kill(os.getpid(), signal.SIGTERM))


def _protocol(header_timeout: float) -> Any:
    """uvicorn's HTTP/1.1 protocol with a deadline for a request's headers: a connection that
    trickles them (or sends nothing) is closed, and does not hold a slot for ever."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class Protocol(H11Protocol):
        _deadline: Any = None

        def _arm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline = self.loop.call_later(header_timeout, self._expired)

        def _expired(self) -> None:
            self._deadline = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()  # no complete request line and headers yet

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            super().connection_lost(exc)

    return Protocol


def uvicorn_options(settings: Settings, tls: dict[str, str]) -> dict[str, Any]:
    """What every uvicorn server of `tabml serve` runs with."""
    return {
        "log_level": "info",
        "ssl_certfile": tls.get("ssl_certfile"),
        "ssl_keyfile": tls.get("ssl_keyfile"),
        # the client's address comes from tabml.service.access.Proxies, from configured proxies only
        # (uvicorn would trust X-Forwarded-For from 127.0.0.1, and lose the peer's address)
        "proxy_headers": False,
        "http": _protocol(settings.header_timeout),
        "timeout_keep_alive": 5,
        "h11_max_incomplete_event_size": 64 * 1024,
    }


def _worker(host: str, port: int, tls: dict[str, str]) -> None:
    """One worker process: its own SO_REUSEPORT socket, one uvicorn server."""
    import uvicorn

    hangup_stops()
    settings = Settings(**json.loads(os.environ[SETTINGS_ENV]))
    sock = listening_socket(host, port, reuse_port=True)
    config = uvicorn.Config(
        "tabml.service.server:app_from_env", factory=True, **uvicorn_options(settings, tls)
    )
    uvicorn.Server(config).run(sockets=[sock])


def run_workers(host: str, port: int, workers: int, tls: dict[str, str] | None = None) -> None:
    """`workers` uvicorn processes, each on its own socket of the same port (see
    `listening_socket`); each builds the app with `app_from_env`.

    The workers share their metrics through prometheus-client's multiprocess mode (a folder in
    `PROMETHEUS_MULTIPROC_DIR`, made here unless set). SIGTERM or Ctrl-C stops every worker
    gracefully (each flushes its prediction log); if a
    worker dies, the others are stopped and the command fails, for a supervisor (Kubernetes,
    systemd) to restart it whole.
    """
    import multiprocessing
    import shutil
    import signal
    import tempfile

    from tabml.core.errors import TabmlError
    from tabml.service.metrics import MULTIPROC_ENV

    try:  # a port held by another program: say so once, not once per worker
        listening_socket(host, port, reuse_port=True).close()
    except OSError as err:
        raise TabmlError(f"cannot listen on {host}:{port}: {err.strerror}") from None
    # /metrics sums every worker's values: prometheus-client's multiprocess mode, in a folder
    # of files that the workers share (the user's, emptied, or a new temporary one)
    shared = os.environ.get(MULTIPROC_ENV)
    made = None
    if shared:
        for old in Path(shared).glob("*.db"):
            old.unlink()
    else:
        made = tempfile.mkdtemp(prefix="tabml-metrics-")
        os.environ[MULTIPROC_ENV] = made
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(host, port, tls or {}), name=f"tabml-worker-{i}")
             for i in range(workers)]  # fmt: skip
    asked = False  # told to stop (a signal), as opposed to a worker dying

    def stop_workers() -> None:
        for proc in procs:
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)

    def stop(signum: int, _: Any) -> None:
        nonlocal asked
        asked = True
        stop_workers()

    handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {s: signal.signal(s, stop) for s in handled}
    try:
        for proc in procs:
            proc.start()
        info(f"serve: {workers} workers on http://{host}:{port}")
        from multiprocessing.connection import wait

        wait([proc.sentinel for proc in procs])  # the first to end
        stop_workers()
        for proc in procs:
            proc.join(timeout=60)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
            os.environ.pop(MULTIPROC_ENV, None)
    failed = {p.name: p.exitcode for p in procs if p.exitcode not in (0, -signal.SIGTERM)}
    if not asked:  # no one asked it to stop: a worker died (or quit), and took the rest down
        died = failed or {p.name: p.exitcode for p in procs}
        how = ", ".join(
            f"{name} " + (f"killed by signal {-code}" if code and code < 0 else f"exit {code}")
            for name, code in died.items()
        )
        raise TabmlError(
            f"a worker stopped unexpectedly ({how}); the others were stopped, and the service "
            "with them: restart it (a supervisor such as Kubernetes does)"
        )
    if failed:
        raise TabmlError(f"workers failed while stopping: {failed}")


def app_from_env() -> Any:
    """The factory uvicorn's workers call: settings come from `tabml serve`."""
    return create_app(Settings(**json.loads(os.environ[SETTINGS_ENV])))
