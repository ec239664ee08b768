"""Retraining data: labelled production rows, from prediction logs, for the development set.

Pure functions; `stages/append.py` reads and writes. `labelled_rows` joins logged records with
the labels that arrived later; `merge` adds them to what earlier appends collected, one row per
id (a newer row replaces an older one), in time order, so appending the same logs twice changes
nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tabml.core.config import SchemaConfig
from tabml.core.errors import DataError

if TYPE_CHECKING:
    import pandas as pd


def _columns(schema: SchemaConfig, frame: pd.DataFrame) -> list[str]:
    cols = [schema.id, *schema.features]
    if schema.timestamp and schema.timestamp in frame.columns:
        cols.insert(1, schema.timestamp)
    return cols


def labelled_rows(
    logs: pd.DataFrame, labels: pd.DataFrame, schema: SchemaConfig
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Logged records with their label: the development set's columns, personal data left out
    (logs hold it pseudonymised already, and clean would pseudonymise it again)."""
    target = schema.target.column
    missing = [c for c in _columns(schema, logs) if c not in logs.columns]
    if missing:
        raise DataError(f"prediction logs: missing columns {missing}; are these tabml logs?")
    for col in (schema.id, target):
        if col not in labels.columns:
            raise DataError(f"labels: no '{col}' column (found {list(labels.columns)})")
    from tabml.core.schema import as_text, shorten, validate

    known = labels[[schema.id, target]].dropna(subset=[target])
    text = known.assign(**{target: as_text(known[target]).str.strip().str.lower()})
    classes = text.groupby(schema.id, sort=False)[target].nunique()
    conflicting = classes[classes > 1]
    if len(conflicting):
        ids = [shorten(str(i)) for i in conflicting.index[:5]]
        raise DataError(
            f"labels: {len(conflicting):,} id(s) are labelled with both classes, e.g. {ids}: "
            "one id has one label; correct the labels file"
        )
    known = known.drop_duplicates(subset=[schema.id], keep="last")
    validate(known, schema, "labels", "labels")  # the target's values, as ingest checks them
    records = logs[_columns(schema, logs)].drop_duplicates(subset=[schema.id], keep="last")
    joined = records.merge(known, on=schema.id, how="inner", validate="one_to_one")
    stats = {
        "logged": len(logs),
        "records": len(records),
        "labelled": len(joined),
        "unlabelled": len(records) - len(joined),
    }
    return joined, stats


def within_schema(
    rows: pd.DataFrame, schema: SchemaConfig
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """The rows the development schema allows, and per column what it left out.

    Production may bring categories development never had, or values out of range: they are
    scored and monitored, but the development set must meet its schema (ingest refuses it
    otherwise), so such rows wait until the dataset config allows their values.
    """
    import pandas as pd

    from tabml.core.schema import refused_in_development, shorten

    outside = pd.Series(False, index=rows.index)
    report: dict[str, dict[str, Any]] = {}
    for name, spec in schema.features.items():
        bad = refused_in_development(spec, rows[name])
        if bad.any():
            values = dict.fromkeys(rows.loc[bad, name].astype(str).head(50))
            examples = [shorten(v) for v in list(values)[:3]]
            report[name] = {"rows": int(bad.sum()), "examples": examples}
            outside |= bad
    return rows[~outside], report


def merge(
    existing: pd.DataFrame | None, new: pd.DataFrame, schema: SchemaConfig
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """`existing` plus `new`, one row per id (the new one wins), in time then id order."""
    import pandas as pd

    before = 0 if existing is None else len(existing)
    frames = [f for f in (existing, new) if f is not None and len(f)]
    combined = pd.concat(frames, ignore_index=True) if frames else new
    replaced = 0
    if existing is not None and len(existing):
        replaced = int(new[schema.id].isin(existing[schema.id]).sum())
    out = combined.drop_duplicates(subset=[schema.id], keep="last")
    order = [c for c in (schema.timestamp, schema.id) if c and c in out.columns]
    out = out.sort_values(order, kind="mergesort").reset_index(drop=True)
    return out, {
        "before": before,
        "added": len(out) - before,
        "replaced": replaced,
        "after": len(out),
    }
