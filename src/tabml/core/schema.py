"""The dataset schema: type coercion and validation with errors that name what to fix.

Validation is lazy: every check runs and every failure is reported at once, each naming the
file, the column, the check, how many rows failed and a few examples.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from tabml.core.config import FeatureSpec, SchemaConfig
from tabml.core.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

Role = Literal["development", "production", "labels"]

_TRUE = {"true", "1", "yes", "t", "y", "1.0"}
_FALSE = {"false", "0", "no", "f", "n", "0.0"}
MAX_EXAMPLES = 3
# an example value or name in a message is cut to this many characters (a 10 MB cell is
# never echoed whole, to the terminal or to DVC's log)
MAX_SHOWN_CHARS = 40

# the level that stands for every value outside an open vocabulary: what the model encodes
# such a value as (learning.features) and what monitoring collapses it to
OTHER = "(other)"


def shorten(value: Any, limit: int = MAX_SHOWN_CHARS) -> Any:
    """A text value cut to a short prefix with '…' and its length; other values unchanged."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]}… ({len(value):,} characters)"
    return value


@dataclass(frozen=True)
class Failure:
    """One failed check on one column."""

    column: str
    check: str
    count: int
    examples: tuple[Any, ...] = ()
    rows: tuple[int, ...] = ()
    hint: str = ""

    def describe(self) -> str:
        text = f"column '{shorten(self.column)}': {self.check}"
        if self.count:
            text += f": {self.count} row{'s' if self.count != 1 else ''}"
        if self.examples:
            text += f", e.g. {[shorten(e) for e in self.examples]}"
        if self.rows:
            text += f" (rows {', '.join(str(r) for r in self.rows)})"
        if self.hint:
            text += f". {self.hint}"
        return text


@dataclass
class Coerced:
    """A frame with schema types applied, what failed, and what production data broke."""

    frame: pd.DataFrame
    failures: list[Failure] = field(default_factory=list)
    # production only: values kept for scoring but outside what development data allows
    unseen_categories: dict[str, dict[str, Any]] = field(default_factory=dict)
    out_of_range: dict[str, dict[str, int]] = field(default_factory=dict)

    def raise_if_failed(self, source: str) -> None:
        if self.failures:
            raise ValidationError(source, self.failures)


class ValidationError(DataError):
    def __init__(self, source: str, failures: list[Failure]) -> None:
        self.source = source
        self.failures = failures
        n = len(failures)
        lines = [f"{source}: {n} schema check{'s' if n != 1 else ''} failed:"]
        lines += [f"  - {f.describe()}" for f in failures]
        lines.append("Fix the data, or the dataset config in conf/dataset/ if the data is right.")
        super().__init__("\n".join(lines))


def _names(columns: Any, limit: int = 20) -> str:
    """Column names for a message: at most `limit`, each cut short."""
    names = [shorten(str(c)) for c in list(columns)[:limit]]
    more = f" and {len(columns) - limit:,} more" if len(columns) > limit else ""
    return f"{names}{more}"


def _where(mask: pd.Series, values: pd.Series) -> tuple[int, tuple[Any, ...], tuple[int, ...]]:
    """Count, example values and (1-based data) row numbers where mask holds."""
    idx = mask.to_numpy().nonzero()[0]
    examples: list[Any] = []
    for v in values.iloc[idx[:50]].tolist():
        v = v.item() if hasattr(v, "item") else v
        if v not in examples:
            examples.append(v)
        if len(examples) == MAX_EXAMPLES:
            break
    return len(idx), tuple(examples), tuple(int(i) + 1 for i in idx[:MAX_EXAMPLES])


# a number-coded category written as a float ("5.0"): the same category as "5"
INTEGRAL_TEXT = r"^(-?\d+)\.0+$"


_INTEGRAL = re.compile(INTEGRAL_TEXT)


def category_text(value: str) -> str:
    """One category label as `as_text` gives it: "5.0" is "5" (a CSV column of numbers read
    as floats, a client that sends 5.0 as text). Serving and batch scoring both use it."""
    match = _INTEGRAL.match(value)
    return match.group(1) if match else value


def as_text(values: pd.Series) -> pd.Series:
    """Category labels as strings; integral floats lose their '.0' (1.0 -> '1'), in numbers
    and in text ("5.0" -> "5") alike."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(values.dtype):
        return values.map(lambda v: v if pd.isna(v) else str(v).lower()).astype("string")
    if pd.api.types.is_numeric_dtype(values.dtype):
        num = pd.to_numeric(values, errors="coerce")
        integral = num.dropna().mod(1).eq(0).all()
        if integral:
            return num.astype("Int64").astype("string")
        return num.astype("string")
    if isinstance(values.dtype, pd.CategoricalDtype):
        return as_text(values.astype(values.cat.categories.dtype))
    text = values.astype("string")
    if not text.str.contains(".0", regex=False).any():  # the common case: nothing to rewrite
        return text
    return text.str.replace(INTEGRAL_TEXT, r"\1", regex=True)


def _coerce_numeric(name: str, values: pd.Series) -> tuple[pd.Series, Failure | None]:
    import pandas as pd

    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("float64"), None
    out = pd.to_numeric(values, errors="coerce").astype("float64")
    bad = values.notna() & out.isna()
    if bad.any():
        n, ex, rows = _where(bad, values)
        return out, Failure(name, "wrong type: not a number", n, ex, rows)
    import numpy as np

    inf = np.isinf(out.to_numpy())
    if inf.any():
        mask = pd.Series(inf, index=values.index)
        n, ex, rows = _where(mask, values)
        return out, Failure(name, "not a finite number", n, ex, rows)
    return out, None


def _coerce_boolean(name: str, values: pd.Series) -> tuple[pd.Series, Failure | None]:
    import pandas as pd

    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("boolean"), None
    text = as_text(values).str.strip().str.lower()
    out = pd.Series(pd.NA, index=values.index, dtype="boolean")
    out[text.isin(_TRUE).fillna(False)] = True
    out[text.isin(_FALSE).fillna(False)] = False
    bad = values.notna() & out.isna()
    if bad.any():
        n, ex, rows = _where(bad, values)
        return out, Failure(
            name, "wrong type: not a boolean (true/false, 1/0, yes/no)", n, ex, rows
        )
    return out, None


def _coerce_target(
    schema: SchemaConfig, values: pd.Series, role: Role
) -> tuple[pd.Series, list[Failure]]:
    """Map the target to 1 (positive class) and 0, or report why it cannot be."""
    import pandas as pd

    name = schema.target.column
    positive = str(schema.target.positive).lower()
    text = as_text(values).str.strip().str.lower()
    if positive in _TRUE and not text.dropna().isin([positive]).any():
        # a config that says `positive: 1` also matches a `true` column and vice versa
        positive = next((v for v in _TRUE if text.dropna().isin([v]).any()), positive)
    failures: list[Failure] = []
    present = text.dropna()
    if present.empty:
        failures.append(Failure(name, "missing target: every value is empty", len(values)))
        return pd.Series(pd.NA, index=values.index, dtype="Int8"), failures
    classes = sorted(present.unique().tolist())
    if role == "labels" and positive in _TRUE and not set(classes) <= _TRUE | _FALSE:
        # labels that arrive later: a yes/no (1/0) target takes only those two values
        odd = [c for c in classes if c not in _TRUE | _FALSE]
        bad = text.isin(odd)
        n, ex, rows = _where(bad, values)
        failures.append(
            Failure(
                name,
                f"not a label of this target (positive {schema.target.positive!r}, else 0/false)",
                n,
                ex,
                rows,
            )
        )
    elif len(classes) > 2:
        failures.append(
            Failure(
                name,
                f"target must be binary, found {len(classes)} classes",
                len(values),
                tuple(classes[:MAX_EXAMPLES]),
            )
        )
    elif positive not in classes and role == "development":
        failures.append(
            Failure(
                name,
                f"positive class {schema.target.positive!r} never occurs",
                len(present),
                tuple(classes),
                hint="Check target.positive in the dataset config",
            )
        )
    elif len(classes) == 1 and role == "development":
        failures.append(
            Failure(
                name,
                "single class: the target has only one value",
                len(present),
                tuple(classes),
                hint="A classifier needs both classes in the development data",
            )
        )
    out = (text == positive).astype("Int8").mask(text.isna())
    return out, failures


def coerce(frame: pd.DataFrame, schema: SchemaConfig, role: Role) -> Coerced:
    """Apply the schema's types to a frame (a whole file, or one batch of it); collect every
    failure the rows themselves show.

    Development data must meet the schema. Production data may carry categories never seen in
    development and values out of range: they are kept for scoring and counted instead.
    The checks that need the whole file (ids repeated with different values, columns with no
    value at all) are `BatchChecks`'s alone, for every path: `validate` uses it too.
    """
    import pandas as pd

    out = pd.DataFrame(index=frame.index)
    result = Coerced(out, _column_failures(frame, schema, role))
    failures = result.failures
    if schema.id in frame.columns:
        failures.extend(_coerce_id(frame[schema.id], schema, out))
    if schema.timestamp and schema.timestamp in frame.columns and role != "labels":
        failures.extend(_coerce_timestamp(frame[schema.timestamp], schema.timestamp, out))
    if role != "labels":
        for name, spec in schema.features.items():
            if name in frame.columns:
                out[name] = _coerce_feature(name, spec, frame[name], role, result)
    if schema.target.column in frame.columns and role in ("development", "labels"):
        out[schema.target.column], target_failures = _coerce_target(
            schema, frame[schema.target.column], role
        )
        failures.extend(target_failures)
    if role != "labels":
        for c in schema.pii:
            if c in frame.columns and c != schema.id:
                out[c] = as_text(frame[c])
    return result


def _column_failures(frame: pd.DataFrame, schema: SchemaConfig, role: Role) -> list[Failure]:
    """Columns the role needs that are missing; for development data under `extra_columns:
    reject`, columns the schema does not know."""
    if role == "labels":
        required = [schema.id, schema.target.column]
    else:
        required = [schema.id, *schema.features]
        if schema.timestamp:
            required.append(schema.timestamp)
        if role == "development":
            required.append(schema.target.column)
    failures = [
        Failure(c, "missing column", 0, hint=f"found columns: {_names(frame.columns)}")
        for c in required
        if c not in frame.columns
    ]
    if role == "development" and schema.extra_columns == "reject":
        extra = sorted(set(frame.columns) - schema.known_columns, key=str)
        failures += [
            Failure(
                str(c),
                "extra column not in the schema",
                0,
                hint="Add it to features or ignore, or set extra_columns: allow",
            )
            for c in extra
        ]
    return failures


def _coerce_id(ids: pd.Series, schema: SchemaConfig, out: pd.DataFrame) -> list[Failure]:
    """The id as it is, refusing empty ones (conflicting duplicates are `BatchChecks`'s)."""
    out[schema.id] = ids
    null_ids = ids.isna()
    if not null_ids.any():
        return []
    n, _, rows = _where(null_ids, ids)
    return [Failure(schema.id, "empty id", n, (), rows)]


def _coerce_timestamp(raw: pd.Series, name: str, out: pd.DataFrame) -> list[Failure]:
    """The timestamp column as datetime64[ns] in UTC, without a zone: a value with an offset or
    a zone is converted to UTC, one without is taken as UTC already, so aware, naive and mixed
    columns all compare. Refused, with the rows: values that are not timestamps, empty ones,
    and ones outside what datetime64[ns] holds (1677-09-22 to 2262-04-11)."""
    import pandas as pd

    failures = []
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        ts = raw.dt.tz_convert("UTC").dt.tz_localize(None)
    elif pd.api.types.is_datetime64_any_dtype(raw):
        ts = raw
    else:
        ts = pd.to_datetime(raw, errors="coerce", format="mixed", utc=True).dt.tz_localize(None)
    bad = raw.notna() & ts.isna()
    if bad.any():
        n, ex, rows = _where(bad, raw)
        failures.append(Failure(name, "wrong type: not a timestamp", n, ex, rows))
    far = ts.notna() & ((ts < pd.Timestamp.min) | (ts > pd.Timestamp.max))
    if far.any():
        n, ex, rows = _where(far, raw)
        failures.append(Failure(name, "timestamp outside 1677-09-22 .. 2262-04-11", n, ex, rows))
        ts = ts.mask(far)
    if raw.isna().any():
        n, _, rows = _where(raw.isna(), raw)
        failures.append(Failure(name, "empty timestamp", n, (), rows))
    out[name] = ts.astype("datetime64[ns]")
    return failures


def _coerce_feature(
    name: str,
    spec: FeatureSpec,
    values: pd.Series,
    role: Role,
    result: Coerced,
) -> pd.Series:
    failures = result.failures
    if spec.kind == "numeric":
        out, fail = _coerce_numeric(name, values)
        if fail:
            failures.append(fail)
            return out
        low, high = _out_of_range(spec, out)
        bad = low | high
        if bad.any():
            if role == "development":
                n, ex, rows = _where(bad, values)
                failures.append(
                    Failure(name, f"value out of range [{spec.min}, {spec.max}]", n, ex, rows)
                )
            else:
                result.out_of_range[name] = {"below": int(low.sum()), "above": int(high.sum())}
        return out
    if spec.kind == "boolean":
        out, fail = _coerce_boolean(name, values)
        if fail:
            failures.append(fail)
        return out
    text = as_text(values)
    if spec.categories is not None:
        unknown = _unknown_categories(spec, text)
        if unknown.any():
            if role == "development":
                n, ex, rows = _where(unknown, text)
                failures.append(
                    Failure(
                        name, f"unknown category, allowed: {sorted(spec.categories)}", n, ex, rows
                    )
                )
            else:
                counts = text[unknown].value_counts()
                result.unseen_categories[name] = {
                    "count": int(unknown.sum()),
                    "values": {str(k): int(v) for k, v in counts.head(20).items()},
                }
    return text


def _out_of_range(spec: FeatureSpec, numbers: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(below min, above max) masks of a numeric column; missing values are neither."""
    import pandas as pd

    none = pd.Series(False, index=numbers.index)
    low = (numbers < spec.min).fillna(False) if spec.min is not None else none
    high = (numbers > spec.max).fillna(False) if spec.max is not None else none
    return low, high


def _unknown_categories(spec: FeatureSpec, text: pd.Series) -> pd.Series:
    """Mask of labels outside the declared categories (all False when none are declared)."""
    if spec.categories is None:
        return text.notna() & False
    return text.notna() & ~text.isin(list(spec.categories)).fillna(False)


def refused_in_development(spec: FeatureSpec, values: pd.Series) -> pd.Series:
    """Mask of the values `coerce` accepts in production but refuses in development data: an
    unknown category, or a number out of range. Decided exactly as `coerce` decides it."""
    import pandas as pd

    if spec.kind == "numeric":
        low, high = _out_of_range(spec, _coerce_numeric("", values)[0])
        return low | high
    if spec.kind == "categorical":
        return _unknown_categories(spec, as_text(values))
    return pd.Series(False, index=values.index)


def validate(frame: pd.DataFrame, schema: SchemaConfig, role: Role, source: str) -> Coerced:
    """Coerce a whole file and raise one error listing every failed check: the same checks,
    by the same code, as ingest's file read batch by batch (`BatchChecks`)."""
    checks = BatchChecks(schema, role)
    typed = checks.add(frame)
    result = Coerced(typed, checks.finish(), checks.unseen(), dict(checks.out_of_range))
    result.raise_if_failed(source)
    return result


def record_json_schema(schema: SchemaConfig, title: str) -> dict[str, Any]:
    """The JSON Schema of one input record, as shipped in a model package.

    Categories and ranges are documented but not enforced: production data may carry values
    development never saw, and those are scored and reported by monitoring, not refused.
    """
    props: dict[str, Any] = {schema.id: {"type": ["integer", "string"], "description": "record id"}}
    for name, spec in schema.features.items():
        prop: dict[str, Any] = {"x-tabml-kind": spec.kind}
        if spec.kind == "numeric":
            prop["type"] = ["number", "null"]
            if spec.min is not None or spec.max is not None:
                prop["description"] = f"expected range [{spec.min}, {spec.max}]"
        elif spec.kind == "boolean":
            prop["type"] = ["boolean", "null"]
        else:
            prop["type"] = ["string", "null"]
            if spec.categories:
                prop["examples"] = list(spec.categories)
        props[name] = prop
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        "type": "object",
        "properties": props,
        "required": [schema.id, *schema.features],
        "additionalProperties": True,
    }


class _Column:
    """One value per row added, batch by batch, in as few arrays as it can: batches of one
    numpy dtype go into one buffer that doubles when full (small arrays per batch fragment the
    heap: 10M ids and row hashes in batches took about twice their 160 MB), anything else
    (strings, nullable integers, a dtype that changes between CSV chunks) into a list."""

    def __init__(self, capacity: int = 1024) -> None:
        self.rows = 0
        self._capacity = max(capacity, 1)
        self._buffer: Any = None
        self._filled = 0
        self._rest: list[Any] = []

    def append(self, values: Any) -> None:
        import numpy as np
        import pandas as pd

        plain = isinstance(values, np.ndarray) or (
            isinstance(values.dtype, np.dtype) and values.dtype.kind in "iufMb"
        )
        array = np.asarray(values) if plain else None
        self.rows += len(values)
        if (
            array is not None
            and not self._rest
            and (self._buffer is None or self._buffer.dtype == array.dtype)
        ):
            if self._buffer is None or self._filled + len(array) > len(self._buffer):
                grown = np.empty(max(2 * self._filled, self._filled + len(array),
                                     self._capacity), dtype=array.dtype)  # fmt: skip
                if self._buffer is not None:
                    grown[: self._filled] = self._buffer[: self._filled]
                self._buffer = grown
            self._buffer[self._filled : self._filled + len(array)] = array
            self._filled += len(array)
            return
        if self._buffer is not None:  # another dtype: the buffer joins the list, in order
            self._rest.append(pd.Series(self._buffer[: self._filled]))
            self._buffer, self._filled = None, 0
        self._rest.append(pd.Series(values).reset_index(drop=True))

    def parts(self) -> list[Any]:
        """The values as numpy arrays, in order."""
        import numpy as np

        head = [self._buffer[: self._filled]] if self._buffer is not None else []
        return head + [np.asarray(p) for p in self._rest]

    def series(self) -> pd.Series:
        """The values as one Series, in order."""
        import pandas as pd

        if not self._rest:
            data = self._buffer[: self._filled] if self._buffer is not None else []
            return pd.Series(data)
        return pd.concat(self._rest, ignore_index=True)


@dataclass
class CheckedBatch:
    """One batch typed by `check_batch`, with what `BatchChecks` needs of the raw batch."""

    coerced: Coerced
    rows: int
    columns: frozenset[str]
    # per feature, its values present in the raw batch
    filled: dict[str, int]
    # a hash of each typed row, when ids are tracked
    hashes: np.ndarray | None


def check_batch(
    frame: pd.DataFrame, schema: SchemaConfig, role: Role, track_ids: bool = True
) -> CheckedBatch:
    """`coerce` one batch, and what the whole-file checks need of it: pure, so it can run
    where the batch was read (a Dask worker) and be taken in file order by `BatchChecks`."""
    import pandas as pd

    result = coerce(frame, schema, role)
    filled = {n: int(frame[n].notna().sum()) for n in schema.features if n in frame.columns}
    hashes = None
    if track_ids and schema.id in result.frame.columns:
        # typed values hash the same in every batch, whatever each chunk of a CSV inferred
        hashes = pd.util.hash_pandas_object(result.frame, index=False).to_numpy()
    return CheckedBatch(result, len(frame), frozenset(frame.columns), filled, hashes)


class BatchChecks:
    """`coerce` over a file read batch by batch, as if it had been read whole.

    Each batch is typed as it comes (`add` returns it); failures are merged across batches
    (counts summed, examples and file row numbers kept); the whole-file checks run once in
    `finish`: ids repeated with different values (or at all, for labels) anywhere in the file,
    and features with no value in any row. Memory: one batch, plus an id and a row hash per row
    (`track_ids=False` keeps neither, for data whose ids were checked already).
    """

    def __init__(
        self, schema: SchemaConfig, role: Role, track_ids: bool = True, rows_hint: int = 0
    ) -> None:
        self.schema, self.role, self.track_ids = schema, role, track_ids
        self.rows = 0
        self._failures: dict[tuple[str, str], Failure] = {}
        self._unseen: dict[str, dict[str, Any]] = {}
        self.out_of_range: dict[str, dict[str, int]] = {}
        # `rows_hint`: the file's rows when known (a Parquet footer), so the buffers never grow
        self._ids = _Column(rows_hint)
        self._hashes = _Column(rows_hint)
        self._filled: dict[str, int] = {}
        self._columns: set[str] = set()

    def add(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Type one batch; remember what the whole-file checks need."""
        return self.take(check_batch(frame, self.schema, self.role, self.track_ids))

    def take(self, checked: CheckedBatch) -> pd.DataFrame:
        """Remember one batch `check_batch` typed (here or on a Dask worker), batches taken
        in file order; its typed rows."""
        result = checked.coerced
        for f in result.failures:
            self._merge(f, self.rows)
        for name, d in result.unseen_categories.items():
            seen = self._unseen.setdefault(name, {"count": 0, "values": {}})
            seen["count"] += d["count"]
            for value, n in d["values"].items():
                seen["values"][value] = seen["values"].get(value, 0) + n
        for name, d in result.out_of_range.items():
            now = self.out_of_range.setdefault(name, {"below": 0, "above": 0})
            now["below"] += d["below"]
            now["above"] += d["above"]
        self._columns |= checked.columns
        for name, n in checked.filled.items():
            self._filled[name] = self._filled.get(name, 0) + n
        if self.track_ids and checked.hashes is not None:
            self._ids.append(result.frame[self.schema.id])
            self._hashes.append(checked.hashes)
        self.rows += checked.rows
        return result.frame

    def unseen(self) -> dict[str, dict[str, Any]]:
        """Per column, production values never seen in development: their count and the 20
        most frequent, as `coerce` reports them for a file read whole."""
        return {
            name: {
                "count": d["count"],
                "values": dict(sorted(d["values"].items(), key=lambda kv: -kv[1])[:20]),
            }
            for name, d in sorted(self._unseen.items())
        }

    def ids(self) -> pd.Series:
        """The typed ids of every row added, in file order."""

        return self._ids.series()

    def _merge(self, f: Failure, offset: int) -> None:
        rows = tuple(r + offset for r in f.rows)
        key = (f.column, f.check)
        if key not in self._failures:
            self._failures[key] = Failure(f.column, f.check, f.count, f.examples, rows, f.hint)
            return
        old = self._failures[key]
        examples = tuple(dict.fromkeys(old.examples + f.examples))[:MAX_EXAMPLES]
        self._failures[key] = Failure(
            f.column,
            f.check,
            old.count + f.count,
            examples,
            (old.rows + rows)[:MAX_EXAMPLES],
            old.hint,
        )

    def finish(self) -> list[Failure]:
        """Every failure of the file, the whole-file checks included."""
        import numpy as np
        import pandas as pd

        for name in self.schema.features:
            empty = self.rows and self._filled.get(name, 0) == 0  # no rows: nothing to judge
            if name in self._columns and empty and self.role != "labels":
                self._merge(
                    Failure(
                        name,
                        "all values are empty",
                        self.rows,
                        hint="Fix the export, or move the column to ignore",
                    ),
                    0,
                )
        if self._ids.rows:
            from tabml.core.repeats import repeat_candidates, take

            ids = self._ids.series()
            # the exact checks run on the rows whose id key repeats, not on every id (a hash
            # table of 10M ids is about 400 MiB): every repeated id is among them
            at = repeat_candidates(ids)
            pairs = pd.DataFrame(
                {"id": ids.iloc[at].reset_index(drop=True),
                 "hash": take(self._hashes.parts(), at)}
            )  # fmt: skip
            repeats = pairs["id"].duplicated(keep=False).to_numpy()
            pairs = pairs[repeats]
            mask = np.zeros(len(ids), dtype=bool)
            mask[at[repeats]] = True
            dup = pd.Series(mask)
            if dup.any() and self.role != "labels":
                # identical re-deliveries are removed by clean; different rows sharing an id
                # mean the id is not an id
                conflicting = pairs.loc[~pairs.duplicated(keep=False), "id"].unique()
                if len(conflicting):
                    n, ex, rows = _where(ids.isin(conflicting), ids)
                    self._merge(
                        Failure(
                            self.schema.id,
                            "duplicate id with different values",
                            n,
                            ex,
                            rows,
                            hint="Each id must name one record",
                        ),
                        0,
                    )
            elif dup.any():
                n, ex, rows = _where(dup, ids)
                self._merge(Failure(self.schema.id, "duplicate id", n, ex, rows), 0)
        return list(self._failures.values())
