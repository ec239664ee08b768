"""Cleaning: typed columns, one row per id, nothing silently lost.

Every development row read ends up either in the clean frame or in the quarantine frame with a
reason, and the data-quality report's counts add up to the rows read. Personal data arrives
pseudonymised or dropped already: ingest, the first stage that writes, handles it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabml.config import SchemaConfig
from tabml.repeats import id_keys, member
from tabml.schema import coerce

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


class DevelopmentCleaner:
    """`clean_development` for a file read in batches: `add` each batch in file order, then
    `quality`. An id seen in any earlier batch is a duplicate, as it would be in one read.

    `repeated`: the keys (`tabml.repeats.id_keys`) of the ids that occur more than once in the
    whole file, from a first pass over its id column (`repeated_keys`). Only those ids are
    remembered, so memory holds the repeated ids, not every id (a set of 10M ids is about
    600 MiB); without it, every id is. Keys only pick the candidates: an equal key with a
    different id (a hash collision) is still told apart by the ids themselves."""

    def __init__(self, schema: SchemaConfig, repeated: np.ndarray | None = None) -> None:
        self.schema = schema
        self._repeated = repeated
        self._seen: set[Any] = set()
        self.rows_read = self.rows_kept = 0
        self._reasons: dict[str, int] = {}
        self._missing: dict[str, int] = {}
        self._positives = 0.0

    def add(self, raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(kept rows, quarantined rows with their reason) of one batch."""
        return self.add_typed(type_development(raw, self.schema), len(raw))

    def add_typed(self, typed: pd.DataFrame, rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """`add` of a batch of `rows` raw rows that `type_development` typed already (on a
        Dask worker, say): the part that must see the batches in file order."""
        import pandas as pd

        schema = self.schema
        reasons = pd.Series(pd.NA, index=typed.index, dtype="string")
        ids = typed[schema.id]
        reasons[ids.isna()] = "missing_id"
        # identical re-deliveries of a record: keep the first (ingest refuses conflicting ones)
        maybe = ids.notna().to_numpy()
        if self._repeated is not None:
            maybe = maybe & member(id_keys(ids), self._repeated)
        candidates = ids[maybe]
        dup = pd.Series(False, index=ids.index)
        dup[maybe] = (candidates.duplicated(keep="first") | candidates.isin(self._seen)).to_numpy()
        reasons[dup & reasons.isna()] = "duplicate_id"
        reasons[typed[schema.target.column].isna() & reasons.isna()] = "missing_target"
        self._seen.update(candidates.tolist())

        typed = typed[_output_columns(schema, typed, with_target=True)]
        kept = typed[reasons.isna()].reset_index(drop=True)
        rejected = typed[reasons.notna()].assign(**{REASON_COLUMN: reasons[reasons.notna()]})
        rejected = rejected.reset_index(drop=True)

        self.rows_read += rows
        self.rows_kept += len(kept)
        for reason, n in rejected[REASON_COLUMN].value_counts().items():
            self._reasons[str(reason)] = self._reasons.get(str(reason), 0) + int(n)
        _count_missing(self._missing, kept, list(schema.features))
        self._positives += float(kept[schema.target.column].sum())
        return kept, rejected

    def quality(self) -> dict[str, Any]:
        kept = self.rows_kept
        return {
            "rows_read": self.rows_read,
            "rows_kept": kept,
            "rows_rejected": self.rows_read - kept,
            "rejected_by_reason": dict(sorted(self._reasons.items())),
            "missing": _missing_report(self._missing, kept),
            "positive_rate": self._positives / kept if kept else None,
        }


def clean_development(raw: pd.DataFrame, schema: SchemaConfig) -> CleanResult:
    """Type and dedupe the development set; quarantine rows that cannot be used."""
    cleaner = DevelopmentCleaner(schema)
    kept, rejected = cleaner.add(raw)
    return CleanResult(kept, rejected, cleaner.quality())


class ProductionCleaner:
    """`clean_production` for a batch read in pieces: `add` each, then `finish` with labels."""

    def __init__(self, schema: SchemaConfig) -> None:
        from tabml.schema import BatchChecks

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
