"""A data set's config proposed from its development file (`tabml init-dataset`). Pure: a frame
in, a `Proposal` out; `tabml.stages.init_dataset` reads the file and writes conf/.

What it decides, and says why in the comments it writes:

- **roles**: the target (named, or guessed from its name), the id (a column unique in every row)
  and the time stamp (a date column), each guessed only where one column fits, and stated;
- **kinds**: numbers are numeric, with their range and a margin; whole numbers with few distinct
  values (codes such as 1-6) and text with few values are categorical, their categories written
  as strings ("5", not 5.0); text with many values keeps its most frequent levels; true/false
  and 0/1 columns are boolean; text unique in almost every row is left out (free text, a name);
- **personal data**: columns whose name or values look like names, e-mail addresses or phone
  numbers are flagged and dropped at ingest until the user decides (`pii:`);
- **leaks**: a feature that alone predicts the target almost perfectly on held-out rows (a
  column known only after the outcome) is flagged and left out until the user decides;
- **protected attributes**: columns named like sex, race or age are proposed, never declared;
- **monitoring and release**: a chunk size that makes the reference's chunks with none short,
  and gates that the data's size can meet (`test rows`, and a test ROC AUC no lower than the
  best single feature's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tabml.core.chunking import advised_rows
from tabml.core.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

# whole numbers with at most this many distinct values are codes (categorical), not amounts
MAX_CODE_LEVELS = 20
# text with at most this many distinct values lists its categories; more keep the top levels
MAX_LISTED_CATEGORIES = 50
# a feature alone at or above this ROC AUC on held-out rows is flagged as a likely leak
LEAK_AUC = 0.95
# at least this share of a column's values must look like e-mails or phone numbers to flag it
PII_SHARE = 0.5
# the share of the range added on either side of a numeric column's observed min and max
RANGE_MARGIN = 0.1

_TARGET_NAMES = ("target", "label", "y", "class", "outcome", "response")
_ID_NAME = re.compile(r"(^|_)(id|key|uuid|identifier)$", re.IGNORECASE)
_TIME_NAME = re.compile(r"(date|time|timestamp|_at$|^ts$|when|day)", re.IGNORECASE)
_PII_NAME = re.compile(
    r"(^|_)(first_?name|last_?name|full_?name|surname|name|e_?mail|phone|mobile|tel|address|"
    r"street|ssn|passport|birth|dob|zip|postcode|ip_?address|iban|card)($|_)",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_PHONE = re.compile(r"^\+?[\d\s().-]{7,20}$")
_PROTECTED_NAME = re.compile(
    r"(^|_)(sex|gender|race|rac1p|ethnic\w*|religion|age|agep|disab\w*|dis|nationality|"
    r"marital|mar|citizen\w*|cit)($|_)",
    re.IGNORECASE,
)
_TRUE_FALSE = {"true", "false", "yes", "no", "t", "f", "y", "n"}


@dataclass
class Column:
    """What the profile decided for one column, and why (written as a comment)."""

    name: str
    role: str  # feature | ignore | pii
    spec: dict[str, Any] = field(default_factory=dict)
    why: str = ""
    flag: str = ""  # a decision left to the user (personal data, a leak)
    auc: float | None = None  # ROC AUC of the column alone, on held-out rows


@dataclass
class Proposal:
    """A data set's config, proposed from its development rows."""

    rows: int
    target: str
    positive: Any
    positive_rate: float
    id: str
    timestamp: str | None
    columns: list[Column]
    protected_candidates: list[str]
    roles_stated: list[str]  # how target, id and time stamp were found
    chunk_rows: int
    reference_chunks: int
    min_test_rows: int
    min_test_roc_auc: float
    best_single: tuple[str, float] | None

    @property
    def flags(self) -> list[Column]:
        return [c for c in self.columns if c.flag]


def propose(
    frame: pd.DataFrame,
    target: str | None = None,
    id_column: str | None = None,
    timestamp: str | None = None,
    test_fraction: float = 0.15,
    reference_max_rows: int = 100_000,
    min_reference_chunks: int = 6,
    default_chunk_rows: int = 5_000,
) -> Proposal:
    """The proposal for `frame`; roles given are checked, roles not given are guessed."""
    if not len(frame):
        raise DataError("the file has no rows: nothing to propose a config from")
    stated: list[str] = []
    target = _target(frame, target, stated)
    values = frame[target].dropna()
    positive, rate = _positive(values, target)
    id_column = _id(frame, id_column, target, stated)
    timestamp = _timestamp(frame, timestamp, {target, id_column}, stated)
    y = (frame[target] == positive).astype("int64")
    columns = []
    for name in frame.columns:
        if name in {target, id_column, timestamp}:
            continue
        columns.append(_column(str(name), frame[name]))
    _flag_leaks(frame, columns, y, timestamp or id_column)
    scored = [(c.name, c.auc) for c in columns if c.role == "feature" and c.auc is not None]
    best = max(scored, key=lambda t: t[1]) if scored else None
    reference_rows = min(len(frame), reference_max_rows)
    if reference_rows >= default_chunk_rows * min_reference_chunks:
        chunk_rows = default_chunk_rows
    else:
        chunk_rows = advised_rows(reference_rows, min_reference_chunks)
    expected_test = int(len(frame) * test_fraction)
    return Proposal(
        rows=len(frame),
        target=target,
        positive=positive,
        positive_rate=rate,
        id=id_column,
        timestamp=timestamp,
        columns=columns,
        protected_candidates=[
            c.name for c in columns if c.role == "feature" and _PROTECTED_NAME.search(c.name)
        ],
        roles_stated=stated,
        chunk_rows=chunk_rows,
        reference_chunks=reference_rows // max(chunk_rows, 1),
        # most of the expected test rows (a cleaning step may drop some), at most the default
        min_test_rows=min(1_000, int(expected_test * 0.8)),
        # the model must beat the best single feature, rounded down to 0.01
        min_test_roc_auc=(int(best[1] * 100) / 100) if best else 0.6,
        best_single=best,
    )


def _target(frame: pd.DataFrame, given: str | None, stated: list[str]) -> str:
    if given is not None:
        _require(frame, given, "--target")
        stated.append(f"target: {given} (given)")
        return given
    found = [c for c in frame.columns if str(c).lower() in _TARGET_NAMES]
    if len(found) == 1:
        stated.append(f"target: {found[0]} (guessed from its name; --target to choose)")
        return str(found[0])
    two = [str(c) for c in frame.columns if frame[c].dropna().nunique() == 2]
    raise DataError(
        "which column is the target? Name it with --target COL"
        + (f"; columns with two values: {', '.join(two[:10])}" if two else "")
    )


def _positive(values: pd.Series, target: str) -> tuple[Any, float]:
    levels = values.unique().tolist()
    if len(levels) != 2:
        shown = ", ".join(repr(v) for v in levels[:6])
        raise DataError(
            f"target '{target}' has {len(levels)} distinct values ({shown}); tabml trains "
            "binary classifiers, so the target needs exactly two (map it to 0/1 first)"
        )
    text = {str(v).strip().lower(): v for v in levels}
    for word in ("1", "1.0", "true", "yes", "y", "positive", "pos"):
        if word in text:
            positive = text[word]
            break
    else:  # the rarer value: what a classifier is usually asked to find
        positive = values.value_counts().sort_index().idxmin()
    positive = positive.item() if hasattr(positive, "item") else positive
    if isinstance(positive, float) and positive.is_integer():
        positive = int(positive)
    return positive, float((values == positive).mean())


def _id(frame: pd.DataFrame, given: str | None, target: str, stated: list[str]) -> str:
    # identical re-deliveries of a row are one record: clean keeps the first of them
    distinct = frame.drop_duplicates()
    if len(distinct) < len(frame):
        stated.append(
            f"{len(frame) - len(distinct):,} rows repeat another row exactly (re-deliveries: "
            "clean keeps the first, quarantines the rest as duplicate_id)"
        )
    frame = distinct
    if given is not None:
        _require(frame, given, "--id")
        col = frame[given]
        if col.isna().any() or col.duplicated().any():
            raise DataError(
                f"--id {given}: not unique in every row ({int(col.duplicated().sum())} "
                f"repeated with other values, {int(col.isna().sum())} missing); an id names "
                "one record"
            )
        stated.append(f"id: {given} (given)")
        return given
    unique = [
        str(c)
        for c in frame.columns
        if c != target and frame[c].notna().all() and not frame[c].duplicated().any()
    ]
    named = [c for c in unique if _ID_NAME.search(c)]
    pick = named[:1] or [c for c in unique if _is_whole_numbers(frame[c])][:1]
    if not pick:
        raise DataError(
            "no column is unique in every row, and tabml needs an id to join labels and erase "
            "a person's rows: add one to the file (a row number will do) and name it with --id"
        )
    how = "its name, and it is unique" if named else "the first column unique in every row"
    stated.append(f"id: {pick[0]} (guessed: {how}; --id to choose)")
    return pick[0]


def _timestamp(
    frame: pd.DataFrame, given: str | None, taken: set[str], stated: list[str]
) -> str | None:
    if given is not None:
        _require(frame, given, "--timestamp")
        if _date_share(frame[given]) < 0.95:
            raise DataError(f"--timestamp {given}: its values are not dates")
        stated.append(f"timestamp: {given} (given)")
        return given
    found = [
        str(c)
        for c in frame.columns
        if c not in taken and _looks_like_time(str(c), frame[c]) and _date_share(frame[c]) >= 0.95
    ]
    if len(found) == 1:
        stated.append(f"timestamp: {found[0]} (guessed; --timestamp to choose)")
        return found[0]
    stated.append(
        "timestamp: none"
        + (f" (several candidates: {', '.join(found)}; --timestamp to choose)" if found else "")
        + ": split=time orders rows by id, and monitoring chunks by rows"
    )
    return None


def _require(frame: pd.DataFrame, name: str, option: str) -> None:
    if name not in frame.columns:
        shown = ", ".join(str(c) for c in list(frame.columns)[:20])
        raise DataError(f"{option} {name}: no such column; the file has: {shown}")


def _looks_like_time(name: str, values: pd.Series) -> bool:
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return True
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return False
    # text: named like a time, or written like a date (2024-01-31, 31/01/2024, 10:15)
    sample = values.dropna().astype("string").head(200)
    dated = sample.str.contains(r"\d[-/.:]\d", regex=True).mean() if len(sample) else 0.0
    return bool(_TIME_NAME.search(name)) or float(dated) >= 0.95


def _date_share(values: pd.Series) -> float:
    import pandas as pd

    present = values.dropna()
    if not len(present):
        return 0.0
    if pd.api.types.is_datetime64_any_dtype(present.dtype):
        return 1.0
    parsed = pd.to_datetime(present.astype("string"), errors="coerce", format="mixed")
    return float(parsed.notna().mean())


def _is_whole_numbers(values: pd.Series) -> bool:
    import pandas as pd

    if not pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values):
        return False
    present = values.dropna()
    return bool(len(present)) and bool(present.mod(1).eq(0).all())


def _column(name: str, values: pd.Series) -> Column:
    """One column's role and spec."""
    import pandas as pd

    from tabml.core.schema import as_text

    present = values.dropna()
    pii = _pii(name, present)
    if pii:
        return Column(name, "pii", {"pii": "drop"}, flag=pii)
    distinct = present.nunique()
    if distinct <= 1:
        return Column(name, "ignore", why="the same value in every row: it says nothing")
    if pd.api.types.is_bool_dtype(values.dtype):
        return Column(name, "feature", {"kind": "boolean"}, "true/false")
    if pd.api.types.is_numeric_dtype(values.dtype):
        if distinct <= 2 and set(present.unique().tolist()) <= {0, 1}:
            return Column(name, "feature", {"kind": "boolean"}, "only 0 and 1")
        if _is_whole_numbers(values) and distinct <= MAX_CODE_LEVELS:
            levels = sorted(as_text(present).unique().tolist(), key=_natural)
            why = (
                f"{distinct} whole-number codes: a category each (make it numeric, with a "
                "range, if their order means more than their names)"
            )
            return Column(name, "feature", {"kind": "categorical", "categories": levels}, why)
        return Column(name, "feature", {"kind": "numeric", **_range(present)}, "a number")
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return Column(name, "ignore", why="a date that is not the time stamp: not a feature")
    text = as_text(present)
    lowered = set(text.str.strip().str.lower().unique().tolist())
    if distinct == 2 and lowered <= _TRUE_FALSE:
        return Column(name, "feature", {"kind": "boolean"}, "two yes/no values")
    if distinct <= MAX_LISTED_CATEGORIES:
        levels = sorted(text.unique().tolist(), key=_natural)
        why = f"text with {distinct} values"
        if all(_natural(v)[0] == 0 for v in levels):
            why = f"{distinct} number codes, written as text: a category each"
        return Column(name, "feature", {"kind": "categorical", "categories": levels}, why)
    if distinct >= 0.9 * len(present):
        return Column(
            name,
            "ignore",
            why=f"text unique in almost every row ({distinct:,} values): not a feature",
        )
    return Column(
        name,
        "feature",
        {"kind": "categorical", "max_levels": MAX_LISTED_CATEGORIES, "min_frequency": 5},
        f"text with {distinct:,} values: the {MAX_LISTED_CATEGORIES} most frequent are kept, "
        "the rest are one 'other' level",
    )


def _natural(text: str) -> tuple[int, float, str]:
    """Numbers in numeric order ("2" before "10"), then text."""
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)


def _nice(value: float, up: bool) -> float | int:
    """`value` rounded outwards to three significant figures (an int when it is whole)."""
    import math

    if value == 0:
        return 0
    step = 10 ** (math.floor(math.log10(abs(value))) - 2)
    out = (math.ceil if up else math.floor)(round(value / step, 6)) * step
    out = round(out, 10)
    return int(out) if float(out).is_integer() else out


def _range(present: pd.Series) -> dict[str, Any]:
    lo, hi = float(present.min()), float(present.max())
    margin = (hi - lo) * RANGE_MARGIN
    low = lo - margin
    if lo >= 0 > low:  # a column that is never negative stays so
        low = 0.0
    if bool(present.mod(1).eq(0).all()):  # whole numbers: whole bounds
        import math

        return {"min": math.floor(low), "max": math.ceil(hi + margin)}
    return {"min": _nice(low, up=False), "max": _nice(hi + margin, up=True)}


def _pii(name: str, present: pd.Series) -> str:
    """Why the column looks like personal data, or ''."""
    import pandas as pd

    if _PII_NAME.search(name):
        return f"its name ('{name}') suggests personal data"
    if pd.api.types.is_numeric_dtype(present.dtype) or not len(present):
        return ""
    text = present.astype("string").str.strip()
    sample = text.head(10_000)
    emails = float(sample.str.match(_EMAIL.pattern).mean())
    if emails >= PII_SHARE:
        return f"{emails:.0%} of its values are e-mail addresses"
    phones = float((sample.str.match(_PHONE.pattern) & (sample.str.count(r"\d") >= 7)).mean())
    if phones >= PII_SHARE:
        return f"{phones:.0%} of its values look like phone numbers"
    return ""


def _single_auc(values: pd.Series, y: pd.Series, order: pd.Series) -> float | None:
    """ROC AUC of one column alone on the later half of the rows (by `order`), scored by the
    earlier half: a number by itself (either direction), a category by its earlier rate."""
    import numpy as np
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    ranked = order.rank(method="first")
    early, late = ranked <= len(order) / 2, ranked > len(order) / 2
    if y[late].nunique() < 2:
        return None
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values):
        x = values[late].astype("float64")
        fill = float(values[early].median()) if values[early].notna().any() else 0.0
        auc = float(roc_auc_score(y[late], x.fillna(fill)))
        return max(auc, 1 - auc)
    text = values.astype("string").fillna("<missing>")
    rates = y[early].groupby(text[early]).mean()
    score = text[late].map(rates).astype("float64").fillna(float(y[early].mean()))
    return float(roc_auc_score(y[late], score.to_numpy(dtype=np.float64)))


def _flag_leaks(frame: pd.DataFrame, columns: list[Column], y: pd.Series, order: str) -> None:
    for col in columns:
        if col.role != "feature":
            continue
        auc = col.auc = _single_auc(frame[col.name], y, frame[order])
        if auc is not None and auc >= LEAK_AUC:
            col.role = "ignore"
            col.flag = (
                f"alone it predicts the target with ROC AUC {auc:.3f} on held-out rows: a "
                "column known only after the outcome? Left out; move it back to features if "
                "it is known when the model scores"
            )
