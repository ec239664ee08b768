"""Cleaning: typed columns, one row per id, personal data pseudonymised, nothing silently lost.

Every development row read ends up either in the clean frame or in the quarantine frame with a
reason, and the data-quality report's counts add up to the rows read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabml import privacy
from tabml.config import SchemaConfig
from tabml.schema import coerce

if TYPE_CHECKING:
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


def _missing(frame: pd.DataFrame, columns: list[str]) -> dict[str, dict[str, float]]:
    n = max(len(frame), 1)
    return {
        c: {"count": int(frame[c].isna().sum()), "fraction": float(frame[c].isna().sum() / n)}
        for c in columns
        if c in frame.columns
    }


def _output_columns(schema: SchemaConfig, frame: pd.DataFrame, with_target: bool) -> list[str]:
    cols = [schema.id]
    if schema.timestamp:
        cols.append(schema.timestamp)
    cols += list(schema.features)
    cols += [c for c in schema.pii if c in frame.columns and c != schema.id]
    if with_target:
        cols.append(schema.target.column)
    return cols


def clean_development(raw: pd.DataFrame, schema: SchemaConfig, key: bytes | None) -> CleanResult:
    """Type, dedupe and pseudonymise the development set; quarantine rows that cannot be used."""
    import pandas as pd

    typed = coerce(raw, schema, "development").frame
    reasons = pd.Series(pd.NA, index=typed.index, dtype="string")
    ids = typed[schema.id]
    reasons[ids.isna()] = "missing_id"
    # identical re-deliveries of a record: keep the first (ingest refuses conflicting ones)
    dup = ids.duplicated(keep="first") & ids.notna()
    reasons[dup & reasons.isna()] = "duplicate_id"
    reasons[typed[schema.target.column].isna() & reasons.isna()] = "missing_target"

    cols = _output_columns(schema, typed, with_target=True)
    typed = privacy.apply(typed[cols], schema.pii, key)
    kept = typed[reasons.isna()].reset_index(drop=True)
    rejected = typed[reasons.notna()].assign(**{REASON_COLUMN: reasons[reasons.notna()]})
    rejected = rejected.reset_index(drop=True)

    by_reason = {str(k): int(v) for k, v in rejected[REASON_COLUMN].value_counts().items()}
    quality = {
        "rows_read": len(raw),
        "rows_kept": len(kept),
        "rows_rejected": len(rejected),
        "rejected_by_reason": dict(sorted(by_reason.items())),
        "missing": _missing(kept, list(schema.features)),
        "positive_rate": float(kept[schema.target.column].mean()) if len(kept) else None,
    }
    return CleanResult(kept, rejected, quality)


def clean_production(
    raw: pd.DataFrame, raw_labels: pd.DataFrame | None, schema: SchemaConfig, key: bytes | None
) -> ProductionResult:
    """Type and pseudonymise the production batch; count what development never showed."""
    import pandas as pd

    typed = coerce(raw, schema, "production")
    cols = _output_columns(schema, typed.frame, with_target=False)
    features = privacy.apply(typed.frame[cols], schema.pii, key).reset_index(drop=True)
    quality: dict[str, Any] = {
        "rows_read": len(raw),
        "missing": _missing(features, list(schema.features)),
        "unseen_categories": dict(sorted(typed.unseen_categories.items())),
        "out_of_range": dict(sorted(typed.out_of_range.items())),
    }
    id_col, target = schema.id, schema.target.column
    if raw_labels is None:
        labels = pd.DataFrame(
            {id_col: features[id_col].iloc[:0], target: pd.Series([], dtype="Int8")}
        )
        quality["labels"] = None
    else:
        lab = coerce(raw_labels, schema, "labels").frame[[id_col, target]]
        labels = privacy.apply(lab, {k: v for k, v in schema.pii.items() if k == id_col}, key)
        labels = labels.reset_index(drop=True)
        matched = labels[id_col].isin(features[id_col])
        quality["labels"] = {
            "rows": len(labels),
            "matched": int(matched.sum()),
            "positive_rate": float(labels[target].mean()) if len(labels) else None,
        }
    return ProductionResult(features, labels, quality)
