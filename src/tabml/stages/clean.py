"""clean: typed, deduplicated data; quarantined rows; the data-quality report.

Streams data/raw in batches of `batch_rows` rows: each batch is cleaned and appended to the
clean and quarantine files, and the report's counts are summed, so memory holds one batch and
the set of ids seen (for duplicates), not the whole data several times over.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabml import io
from tabml.catalog import Interim, Raw
from tabml.clean import DevelopmentCleaner, ProductionCleaner
from tabml.config import CleanParams, SchemaConfig
from tabml.errors import DataError
from tabml.log import info

if TYPE_CHECKING:
    import pandas as pd


PARAMS = CleanParams.param_keys()


def run(
    params_file: Path,
    input_dir: Path,
    output_dir: Path,
    report: Path,
    batch_rows: int = io.BATCH_ROWS,
) -> None:
    schema = CleanParams.load(params_file).dataset_schema
    with io.atomic_dir(output_dir) as tmp:
        development, empty = _development(input_dir / Raw.DEVELOPMENT, tmp, schema, batch_rows)
        production = _production(input_dir, tmp, schema, batch_rows, empty)
    io.write_json(report, {"development": development, "production": production})
    info(f"clean: wrote {output_dir}/ and {report}")


def _development(
    path: Path, out: Path, schema: SchemaConfig, batch_rows: int
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Clean the development rows into clean and rejected files; their quality report, and an
    empty frame with the clean file's columns."""
    dev = DevelopmentCleaner(schema)
    kept_sink = io.ParquetSink(out / Interim.CLEAN)
    rejected_sink = io.ParquetSink(out / Interim.REJECTED)
    empty_kept = empty_rejected = None
    for raw in io.iter_table(_existing(path), batch_rows):
        kept, rejected = dev.add(raw)
        if len(raw) == batch_rows:
            info(f"clean: {dev.rows_read:,} development rows cleaned")
        if empty_kept is None:
            empty_kept, empty_rejected = kept.iloc[:0], rejected.iloc[:0]
        if len(kept):
            kept_sink.write(kept)
        if len(rejected):
            rejected_sink.write(rejected)
    if empty_kept is None:  # iter_table yields at least one (empty) frame
        raise DataError(f"{path}: no table could be read")
    kept_sink.close(empty_like=empty_kept)
    rejected_sink.close(empty_like=empty_rejected)
    q = dev.quality()
    info(
        f"clean: {q['rows_read']:,} rows read, {q['rows_kept']:,} kept, "
        f"{q['rows_rejected']:,} quarantined {q['rejected_by_reason'] or ''}"
    )
    return q, empty_kept


def _production(
    input_dir: Path, out: Path, schema: SchemaConfig, batch_rows: int, empty: pd.DataFrame
) -> dict[str, Any] | None:
    """Clean the production batch and its labels; their quality report (None without a batch)."""
    prod = ProductionCleaner(schema)
    quality = None
    features_sink = io.ParquetSink(out / Interim.PRODUCTION)
    for raw in io.iter_table(_existing(input_dir / Raw.PRODUCTION), batch_rows):
        if len(raw):
            features_sink.write(prod.add(raw))
    if features_sink.rows:
        raw_labels = io.read_parquet(input_dir / Raw.LABELS)
        labels, quality = prod.finish(raw_labels if len(raw_labels) else None)
    else:
        # no production batch: empty files with the right columns keep the DAG the same
        labels = empty[[schema.id, schema.target.column]]
    features_sink.close(empty_like=empty.drop(columns=[schema.target.column]))
    io.write_parquet(out / Interim.LABELS, labels)
    return quality


def _existing(path: Path) -> Path:
    if not path.exists():
        raise DataError(f"{path}: not found. Run the stage that writes it first.")
    return path
