"""The prediction service's core: the request model, fast encoding and scoring, log rows.

No web framework here: `server.py` is the thin FastAPI shell around it.

- `record_model` builds the pydantic model of one record from the package's `schema.json`:
  every property it lists is required (null allowed where the schema allows it), types are
  strict (a string is not a number), NaN and Infinity are refused, and unknown fields are
  refused, except the dataset's timestamp and personal-data columns, which are optional and
  only logged.
- `Scorer` encodes records with NumPy straight from the request's dicts, exactly as
  `Preprocessor.transform` encodes a frame (a test holds the two equal), so one record costs
  little more than LightGBM's own `Booster.predict`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabml.core.config import SchemaConfig
from tabml.core.schema import category_text
from tabml.learning.package import MANIFEST, Package

if TYPE_CHECKING:
    import numpy as np
    from pydantic import BaseModel

# the columns a prediction log adds to the record's own
REQUEST_ID = "request_id"
LOGGED_AT = "logged_at"
SCORE = "score"
LABEL = "label"
MODEL_VERSION = "model_version"
LOG_COLUMNS = (REQUEST_ID, LOGGED_AT, SCORE, LABEL, MODEL_VERSION)

# requests with at most this many records are encoded row by row in plain Python
_ROW_WISE_BELOW = 16

_JSON_TYPES: dict[str, Any] = {"number": float, "integer": int, "string": str, "boolean": bool}


def model_version(pkg: Package) -> str:
    """A content address of the package: the first 12 hex digits of its manifest's SHA-256."""
    digest = hashlib.sha256((pkg.folder / MANIFEST).read_bytes()).hexdigest()
    return f"{pkg.name}-{digest[:12]}"


def example_request(pkg: Package, records: int = 1) -> dict[str, Any]:
    """A `/predict` body of this package's own schema: the id and every feature of the first
    rows of its reference (development rows), as JSON values (null for a missing value).
    Personal-data columns are left out: they are optional in a request, and the reference
    holds them pseudonymised."""
    import json

    import pandas as pd

    schema = pkg.schema
    columns = [schema.id, *schema.features]
    frame = pd.read_parquet(pkg.reference, columns=columns).head(records)
    return {"records": json.loads(frame.to_json(orient="records", date_format="iso"))}


def logged_only(schema: SchemaConfig) -> list[str]:
    """Columns a request may carry that are logged but not scored: the timestamp and the
    personal-data columns."""
    return [c for c in [schema.timestamp, *schema.pii] if c]


# integer ids: within int64, and bounded by a number JSON carries exactly (the OpenAPI
# description writes bounds as floats, and 2**63 - 1 as a float is 2**63, outside int64)
ID_BOUND = 9_220_000_000_000_000_000


def id_kind(pkg: Package) -> tuple[str, str]:
    """The id column, and "integer" or "string": its type in the development data (read from
    the package's reference). The prediction log stores ids with that one type, so the service
    accepts only ids of that type (an integer of at most 9.22e18 in size: int64), and never
    acknowledges a record it could not log, nor one that monitoring or `tabml append` could not
    join to its label."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    field = pq.read_schema(pkg.reference).field(pkg.schema.id)
    return pkg.schema.id, "integer" if pa.types.is_integer(field.type) else "string"


def request_model(
    schema_json: dict[str, Any],
    optional_text: list[str],
    max_records: int,
    ids: tuple[str, str] | None = None,
    example: dict[str, Any] | None = None,
) -> type[BaseModel]:
    """The pydantic model of a /predict body: `{"records": [...]}`, 1 to `max_records`.

    `ids` (the id column, "integer" or "string": see `id_kind`) narrows the id field to that
    one type. `example` (`example_request` of the package) is the body /docs shows."""
    from pydantic import ConfigDict, Field, create_model

    record = record_model(schema_json, optional_text, ids)
    extra = {"json_schema_extra": {"examples": [example]}} if example else {}
    return create_model(
        "PredictRequest",
        __config__=ConfigDict(extra="forbid", **extra),  # type: ignore[typeddict-item]
        records=(list[record], Field(min_length=1, max_length=max_records)),  # type: ignore[valid-type]
    )


def _text(value: Any) -> Any:
    """Text that can be stored: a lone surrogate ("\\ud800", which JSON can carry and UTF-8
    cannot) is refused here, with the record, rather than acknowledged and lost when the log
    writes it."""
    if isinstance(value, str) and _has_surrogate(value):
        raise ValueError("holds a lone surrogate (\\ud800-\\udfff), which is not text")
    return value


def _has_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _integral(value: Any) -> Any:
    """A JSON number with no fraction (1388.0) is the integer it names, as JSON Schema says."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= ID_BOUND:
        return int(value)
    return value


def record_model(
    schema_json: dict[str, Any], optional_text: list[str], ids: tuple[str, str] | None = None
) -> type[BaseModel]:
    """The pydantic model of one request record, from a package's `schema.json`."""
    from typing import Annotated, Optional

    from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, create_model

    text: Any = Annotated[str, AfterValidator(_text)]
    fields: dict[str, Any] = {}
    required = set(schema_json.get("required", []))
    id_name, id_type = ids if ids is not None else (None, None)
    for name, prop in schema_json["properties"].items():
        if name == id_name:
            narrowed: Any = (
                Annotated[
                    int,
                    Field(ge=-ID_BOUND, le=ID_BOUND, strict=True),
                    BeforeValidator(_integral),
                ]
                if id_type == "integer"
                else text
            )
            fields[name] = (narrowed, Field(..., description=f"record id ({id_type})"))
            continue
        types = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
        python = [text if t == "string" else _JSON_TYPES[t] for t in types if t != "null"]
        annotation: Any = python[0] if len(python) == 1 else python[0] | python[1]
        if "null" in types:
            annotation = Optional[annotation]  # noqa: UP045 (built at run time)
        info = Field(
            ... if name in required else None,
            description=prop.get("description"),
            examples=prop.get("examples"),
        )
        fields[name] = (annotation, info)
    for name in optional_text:
        if name not in fields:
            fields[name] = (Optional[text], Field(None, description="logged, not scored"))  # noqa: UP045
    return create_model(
        "Record",
        __config__=ConfigDict(extra="forbid", strict=True, allow_inf_nan=False),
        **fields,
    )


class ColumnChecks:
    """The record model's rules, applied a column at a time to a columnar body.

    `{"columns": [names], "data": [[values in that order], ...]}`: `check` returns the values
    by field when every rule holds (the same rules as `record_model`: every field present,
    no unknown one, strict JSON types, null only where allowed, finite numbers, the id's one
    type), and None otherwise, so that the caller validates the rows one by one with the
    record model and reports each problem with its record, exactly as for `{"records": ...}`.
    """

    def __init__(
        self,
        schema_json: dict[str, Any],
        optional_text: list[str],
        ids: tuple[str, str] | None = None,
    ) -> None:
        self.required = set(schema_json.get("required", []))
        self.rules: dict[str, tuple[tuple[type, ...], bool]] = {}
        json_types = {"number": (float, int), "integer": (int,), "string": (str,)}
        json_types["boolean"] = (bool,)
        for name, prop in schema_json["properties"].items():
            types = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
            allowed = tuple(k for t in types if t != "null" for k in json_types[t])
            self.rules[name] = (allowed, "null" in types)
        for name in optional_text:
            self.rules.setdefault(name, ((str,), True))
        self.id_name: str | None = ids[0] if ids is not None else None
        self.id_type: str | None = ids[1] if ids is not None else None
        if self.id_name is not None:
            self.rules[self.id_name] = ((int,) if self.id_type == "integer" else (str,), False)

    def check(self, columns: list[str], data: list[list[Any]]) -> dict[str, list[Any]] | None:
        names = set(columns)
        if (
            not data
            or len(names) != len(columns)
            or not self.required <= names
            or not names <= set(self.rules)
            or any(type(row) is not list or len(row) != len(columns) for row in data)
        ):
            return None
        out: dict[str, list[Any]] = {}
        for name, values in zip(columns, zip(*data, strict=True), strict=True):
            allowed, nullable = self.rules[name]
            values_list = list(values)
            if name == self.id_name and self.id_type == "integer":
                values_list = [_integral(v) for v in values_list]
                if set(map(type, values_list)) != {int} or not (
                    min(values_list) >= -ID_BOUND and max(values_list) <= ID_BOUND
                ):
                    return None
                out[name] = values_list
                continue
            # the types present, at C speed; then finiteness where there are floats
            present = set(map(type, values_list))
            if nullable:
                present.discard(type(None))
            if not present <= set(allowed):
                return None
            if float in present and not all(
                map(math.isfinite, (v for v in values_list if type(v) is float))
            ):
                return None
            if str in present and any(_has_surrogate(v) for v in values_list if type(v) is str):
                return None
            out[name] = values_list
        return out


@dataclass(frozen=True)
class _Numeric:
    name: str
    clip: tuple[float, float] | None
    fill: float | None  # imputation value, when the encoding imputes
    scale: tuple[float, float] | None  # (mean, std) for the linear encoding


class Scorer:
    """Scores lists of record dicts with a package's model, without pandas."""

    def __init__(self, pkg: Package) -> None:
        model = pkg.model
        pre = model.preprocessor
        linear = model.encoding == "linear"
        impute = linear or pre.impute
        self.model = model
        self.threshold = pkg.threshold
        self.id = pkg.schema.id
        self._numeric = [
            _Numeric(
                c,
                tuple(pre.clip[c]) if c in pre.clip else None,  # type: ignore[arg-type]
                pre.medians[c] if impute else None,
                (pre.mean[c], pre.std[c]) if linear else None,
            )
            for c in pre.numeric
        ]
        self._boolean = [(c, pre.medians[c] if impute else None) for c in pre.boolean]
        # (name, level -> code, the code of any other value: OTHER's for an open vocabulary,
        # else -1 like a missing value), as Preprocessor.level_codes gives them
        self._categorical = [
            (
                c,
                {v: i for i, v in enumerate(pre.vocab[c])},
                len(pre.vocab[c]) if c in pre.other else -1,
            )
            for c in pre.categorical
        ]
        self._linear = linear
        self._width = len(pre.names(model.encoding))

    def encode(self, records: list[dict[str, Any]]) -> np.ndarray:
        """The model's input matrix for validated records (None for a missing value)."""
        import numpy as np

        if len(records) <= _ROW_WISE_BELOW:
            return np.array([self._row(r) for r in records], dtype="float64").reshape(
                len(records), self._width
            )
        return self._columns(records)

    def _row(self, r: dict[str, Any]) -> list[float]:
        """One record, in plain Python: for a handful of records this beats NumPy's per-call
        overhead. The same arithmetic as `_columns`, value by value (a test holds them equal)."""
        out: list[float] = []
        for num in self._numeric:
            v = r[num.name]
            x = math.nan if v is None else float(v)
            if num.clip is not None and x == x:
                x = min(max(x, num.clip[0]), num.clip[1])
            if num.fill is not None and x != x:
                x = num.fill
            if num.scale is not None:
                x = (x - num.scale[0]) / num.scale[1]
            out.append(x)
        for name, fill in self._boolean:
            v = r[name]
            out.append((math.nan if fill is None else fill) if v is None else float(v))
        for name, vocab, other in self._categorical:
            v = r[name]
            code = -1 if v is None else vocab.get(v, -2)
            if code == -2:  # not a level as sent: "5.0" is the level "5", as in batch scoring
                code = vocab.get(category_text(v), other)
            if self._linear:
                onehot = [0.0] * (len(vocab) + (other >= 0))
                if code >= 0:
                    onehot[code] = 1.0
                out.extend(onehot)
            else:
                out.append(math.nan if code < 0 else float(code))
        return out

    def _columns(self, records: list[dict[str, Any]]) -> np.ndarray:
        """Many records, column by column with NumPy."""
        return self._encode_columns(lambda name: [r[name] for r in records], len(records))

    def encode_columns(self, columns: Mapping[str, Sequence[Any]]) -> np.ndarray:
        """The model's input matrix for a checked columnar body (field -> values)."""
        n = len(next(iter(columns.values()))) if columns else 0
        if n <= _ROW_WISE_BELOW:
            names = list(columns)
            values = zip(*columns.values(), strict=True)
            rows = [dict(zip(names, row, strict=True)) for row in values]
            return self.encode(rows)
        return self._encode_columns(columns.__getitem__, n)

    def _encode_columns(self, get: Callable[[str], Sequence[Any]], n: int) -> np.ndarray:
        """The arithmetic of `_row`, a column at a time: `get(name)` gives a field's values."""
        import numpy as np

        nan = math.nan
        out = np.empty((n, self._width), dtype="float64")
        j = 0
        for num in self._numeric:
            col = np.fromiter(
                (nan if v is None else v for v in get(num.name)), dtype="float64", count=n
            )
            if num.clip is not None:
                col = np.clip(col, *num.clip)
            if num.fill is not None:
                col = np.where(np.isnan(col), num.fill, col)
            if num.scale is not None:
                col = (col - num.scale[0]) / num.scale[1]
            out[:, j] = col
            j += 1
        for name, fill in self._boolean:
            col = np.fromiter(
                (nan if v is None else float(v) for v in get(name)), dtype="float64", count=n
            )
            if fill is not None:
                col = np.where(np.isnan(col), fill, col)
            out[:, j] = col
            j += 1
        for name, vocab, other in self._categorical:
            codes = [
                -1 if v is None else vocab[v] if v in vocab else vocab.get(category_text(v), other)
                for v in get(name)
            ]
            if self._linear:
                width = len(vocab) + (other >= 0)
                block = np.zeros((n, width))
                for i, code in enumerate(codes):
                    if code >= 0:
                        block[i, code] = 1.0
                out[:, j : j + width] = block
                j += width
            else:
                out[:, j] = [nan if code < 0 else float(code) for code in codes]
                j += 1
        return out

    def score_columns(self, columns: Mapping[str, Sequence[Any]]) -> np.ndarray:
        """Positive-class probabilities for a checked columnar body."""
        return self.model.predict_matrix(self.encode_columns(columns))

    def score(self, records: list[dict[str, Any]]) -> np.ndarray:
        """Positive-class probabilities, one per record."""
        return self.model.predict_matrix(self.encode(records))

    def unseen(self, get: Callable[[str], Sequence[Any]], n: int) -> list[list[str]]:
        """Per record, the categorical fields whose value is no level the model learnt (after
        the same normalisation as scoring: "5.0" is "5"): scored as a missing value. Fields
        with an open vocabulary are left out: their new values are expected ("other")."""
        out: list[list[str]] = [[] for _ in range(n)]
        for name, vocab, other in self._categorical:
            if other >= 0:
                continue
            for i, v in enumerate(get(name)):
                if v is not None and v not in vocab and category_text(v) not in vocab:
                    out[i].append(name)
        return out

    def predictions(
        self, records: list[dict[str, Any]], scores: np.ndarray | None = None
    ) -> list[dict[str, Any]]:
        """`{"id", "score", "label"}` per validated record (with their `scores`, when already
        computed), and `unseen` where a category is new to the model: what /predict returns."""
        values = (self.score(records) if scores is None else scores).tolist()
        unseen = self.unseen(lambda name: [r[name] for r in records], len(records))
        return [
            {"id": r[self.id], "score": s, "label": int(s >= self.threshold)}
            | ({"unseen": new} if new else {})
            for r, s, new in zip(records, values, unseen, strict=True)
        ]
