"""Cleaning: typed columns, one row per id, nothing silently lost.

Every development row read ends up either in the clean frame or in the quarantine frame with a
reason, and the data-quality report's counts add up to the rows read. Personal data arrives
pseudonymised or dropped already: ingest, the first stage that writes, handles it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tabml.core.config import SchemaConfig
from tabml.core.repeats import id_keys, member, repeated_keys
from tabml.core.schema import coerce

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

REASON_COLUMN = "tabml_reject_reason"


@dataclass(frozen=True)
class CleanResult:
    clean: pd.DataFrame
    rejected: pd.DataFrame
    quality: dict[str, Any]


@dataclass(frozen=True)
class ProductionResult:
    features: pd.DataFrame
    labels: pd.DataFrame
    quality: dict[str, Any]


def _count_missing(counts: dict[str, int], frame: pd.DataFrame, columns: list[str]) -> None:
    """Add each column's missing values in `frame` to `counts`."""
    for c in columns:
        if c in frame.columns:
            counts[c] = counts.get(c, 0) + int(frame[c].isna().sum())


def _missing_report(counts: dict[str, int], rows: int) -> dict[str, dict[str, float]]:
    return {c: {"count": n, "fraction": float(n / max(rows, 1))} for c, n in counts.items()}


def _output_columns(schema: SchemaConfig, frame: pd.DataFrame, with_target: bool) -> list[str]:
    cols = [schema.id]
    if schema.timestamp:
        cols.append(schema.timestamp)
    cols += list(schema.features)
    cols += [c for c in schema.pii if c in frame.columns and c != schema.id]
    if with_target:
        cols.append(schema.target.column)
    return cols


def type_development(raw: pd.DataFrame, schema: SchemaConfig) -> pd.DataFrame:
    """A batch of development rows typed by the schema: what cleaning a batch needs before
    the ids seen earlier, so it can run anywhere, in any order."""
    return coerce(raw, schema, "development").frame


@dataclass(frozen=True)
class Repeats:
    """The ids that can repeat in a development file, and where each occurs first.

    `keys`: the id keys (`tabml.core.repeats.id_keys`) seen more than once, sorted; `first`: for
    every non-missing id whose key is among them, the file row of its first occurrence
    (indexed by the id). A row is an identical re-delivery when an earlier row has its id, so
    with these any batch is sorted alone, in any order (`sort_development`, on a Dask worker
    too). Only those ids are held, not every id (a set of 10M ids is about 600 MiB); equal keys
    of different ids (a hash collision) are told apart by the ids themselves."""

    keys: np.ndarray
    first: pd.Series


def find_repeats(id_pieces: Callable[[], Iterable[pd.Series]]) -> Repeats:
    """`Repeats` of an id column read in pieces, in file order; `id_pieces()` reads them
    (twice when some key repeats: the keys first, then the ids holding a repeated key)."""
    import numpy as np
    import pandas as pd

    keys = [id_keys(piece) for piece in id_pieces()]
    every = np.concatenate(keys) if keys else np.array([], dtype=np.uint64)
    del keys
    repeated = repeated_keys(every)
    if not len(repeated):
        return Repeats(repeated, pd.Series([], dtype="int64"))
    candidate = member(every, repeated)
    del every
    ids, rows, start = [], [], 0
    for piece in id_pieces():
        here = candidate[start : start + len(piece)] & piece.notna().to_numpy()
        ids.append(piece[here].reset_index(drop=True))
        rows.append(start + np.flatnonzero(here))
        start += len(piece)
    at = pd.Series(np.concatenate(rows), index=pd.Index(pd.concat(ids, ignore_index=True)))
    return Repeats(repeated, at[~at.index.duplicated(keep="first")])


def sort_development(
    typed: pd.DataFrame, schema: SchemaConfig, start: int, repeats: Repeats
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept rows, quarantined rows with their reason) of a typed batch whose first row is
    file row `start`: pure, so a batch is sorted anywhere, in any order."""
    import numpy as np
    import pandas as pd

    reasons = pd.Series(pd.NA, index=typed.index, dtype="string")
    ids = typed[schema.id]
    reasons[ids.isna()] = "missing_id"
    # identical re-deliveries of a record: keep the first (ingest refuses conflicting ones)
    maybe = ids.notna().to_numpy() & member(id_keys(ids), repeats.keys)
    dup = np.zeros(len(ids), dtype=bool)
    if maybe.any():
        first = ids[maybe].map(repeats.first)
        rows = start + np.flatnonzero(maybe)
        dup[maybe] = first.notna().to_numpy() & (first.to_numpy(dtype=float, na_value=-1) != rows)
    reasons[dup & reasons.isna().to_numpy()] = "duplicate_id"
    reasons[typed[schema.target.column].isna() & reasons.isna()] = "missing_target"

    typed = typed[_output_columns(schema, typed, with_target=True)]
    kept = typed[reasons.isna()].reset_index(drop=True)
    rejected = typed[reasons.notna()].assign(**{REASON_COLUMN: reasons[reasons.notna()]})
    return kept, rejected.reset_index(drop=True)


@dataclass
class Tally:
    """What the data-quality report counts of sorted batches, summed with `+`."""

    rows_read: int = 0
    rows_kept: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    positives: float = 0.0

    @classmethod
    def of(
        cls, kept: pd.DataFrame, rejected: pd.DataFrame, rows: int, schema: SchemaConfig
    ) -> Tally:
        reasons = {str(r): int(n) for r, n in rejected[REASON_COLUMN].value_counts().items()}
        missing: dict[str, int] = {}
        _count_missing(missing, kept, list(schema.features))
        return cls(rows, len(kept), reasons, missing, float(kept[schema.target.column].sum()))

    def __add__(self, other: Tally) -> Tally:
        def summed(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
            return {k: a.get(k, 0) + b.get(k, 0) for k in {**a, **b}}

        return Tally(
            self.rows_read + other.rows_read,
            self.rows_kept + other.rows_kept,
            summed(self.reasons, other.reasons),
            summed(self.missing, other.missing),
            self.positives + other.positives,
        )


class DevelopmentCleaner:
    """`clean_development` for a file read in batches: `add` each batch in file order (or
    `take` the tally of a batch sorted elsewhere), then `quality`.

    `repeats`: the file's `Repeats` (`find_repeats`, a first pass over its id column); without
    it, the cleaner takes one batch, the whole file."""

    def __init__(self, schema: SchemaConfig, repeats: Repeats | None = None) -> None:
        self.schema = schema
        self._repeats = repeats
        self.tally = Tally()

    @property
    def rows_read(self) -> int:
        return self.tally.rows_read

    def add(self, raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(kept rows, quarantined rows with their reason) of one batch."""
        return self.add_typed(type_development(raw, self.schema), len(raw))

    def add_typed(self, typed: pd.DataFrame, rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """`add` of a batch of `rows` raw rows that `type_development` typed already."""
        repeats = self._repeats
        if repeats is None:
            if self.rows_read:
                raise ValueError("DevelopmentCleaner: several batches need the file's Repeats")
            repeats = find_repeats(lambda: [typed[self.schema.id]])
        kept, rejected = sort_development(typed, self.schema, self.rows_read, repeats)
        self.take(Tally.of(kept, rejected, rows, self.schema))
        return kept, rejected

    def take(self, tally: Tally) -> None:
        """Count a batch sorted elsewhere (a Dask worker), batches taken in file order."""
        self.tally = self.tally + tally

    def quality(self) -> dict[str, Any]:
        t = self.tally
        kept = t.rows_kept
        return {
            "rows_read": t.rows_read,
            "rows_kept": kept,
            "rows_rejected": t.rows_read - kept,
            "rejected_by_reason": dict(sorted(t.reasons.items())),
            "missing": _missing_report(t.missing, kept),
            "positive_rate": t.positives / kept if kept else None,
        }


def clean_development(raw: pd.DataFrame, schema: SchemaConfig) -> CleanResult:
    """Type and dedupe the development set; quarantine rows that cannot be used."""
    cleaner = DevelopmentCleaner(schema)
    kept, rejected = cleaner.add(raw)
    return CleanResult(kept, rejected, cleaner.quality())


class ProductionCleaner:
    """`clean_production` for a batch read in pieces: `add` each, then `finish` with labels."""

    def __init__(self, schema: SchemaConfig) -> None:
        from tabml.core.schema import BatchChecks

        self.schema = schema
        # ingest checked the ids; here only the production counts are needed
        self._checks = BatchChecks(schema, "production", track_ids=False)
        self._missing: dict[str, int] = {}
        self._ids: list[pd.Series] = []  # as written: pseudonymised if the id is personal

    def add(self, raw: pd.DataFrame) -> pd.DataFrame:
        """The typed features of one batch."""
        typed = self._checks.add(raw)
        cols = _output_columns(self.schema, typed, with_target=False)
        features = typed[cols].reset_index(drop=True)
        _count_missing(self._missing, features, list(self.schema.features))
        self._ids.append(features[self.schema.id])
        return features

    def finish(self, raw_labels: pd.DataFrame | None) -> tuple[pd.DataFrame, dict[str, Any]]:
        """The typed labels (empty when there are none) and the production quality report."""
        import pandas as pd

        schema = self.schema
        rows = self._checks.rows
        quality: dict[str, Any] = {
            "rows_read": rows,
            "missing": _missing_report(self._missing, rows),
            "unseen_categories": self._checks.unseen(),
            "out_of_range": dict(sorted(self._checks.out_of_range.items())),
        }
        id_col, target = schema.id, schema.target.column
        feature_ids = pd.concat(self._ids, ignore_index=True) if self._ids else pd.Series([])
        if raw_labels is None:
            labels = pd.DataFrame(
                {id_col: feature_ids.iloc[:0], target: pd.Series([], dtype="Int8")}
            )
            quality["labels"] = None
            return labels, quality
        labels = coerce(raw_labels, schema, "labels").frame[[id_col, target]]
        labels = labels.reset_index(drop=True)
        matched = labels[id_col].isin(feature_ids)
        quality["labels"] = {
            "rows": len(labels),
            "matched": int(matched.sum()),
            "positive_rate": float(labels[target].mean()) if len(labels) else None,
        }
        return labels, quality


def clean_production(
    raw: pd.DataFrame, raw_labels: pd.DataFrame | None, schema: SchemaConfig
) -> ProductionResult:
    """Type the production batch; count what development never showed."""
    cleaner = ProductionCleaner(schema)
    features = cleaner.add(raw)
    labels, quality = cleaner.finish(raw_labels)
    return ProductionResult(features, labels, quality)
