"""clean: typed, deduplicated data; quarantined rows; the data-quality report.

Streams data/raw in batches of `batch_rows` rows: each batch is cleaned and appended to the
clean and quarantine files, and the report's counts are summed, so memory holds one batch and
the set of ids seen (for duplicates), not the whole data several times over.
"""

from __future__ import annotations

from pathlib import Path

from tabml import io
from tabml.clean import DevelopmentCleaner, ProductionCleaner
from tabml.config import Params, SchemaConfig
from tabml.errors import DataError
from tabml.log import info
from tabml.stages.ingest import BATCH_ROWS, DEVELOPMENT, LABELS, PRODUCTION

PARAMS = ("dataset.schema",)
CLEAN = "clean.parquet"
REJECTED = "rejected.parquet"


def run(
    params_file: Path,
    input_dir: Path,
    output_dir: Path,
    report: Path,
    batch_rows: int = BATCH_ROWS,
) -> None:
    schema: SchemaConfig = Params.load(params_file, PARAMS).section("dataset.schema")

    with io.atomic_dir(output_dir) as tmp:
        dev = DevelopmentCleaner(schema)
        kept_sink, rejected_sink = io.ParquetSink(tmp / CLEAN), io.ParquetSink(tmp / REJECTED)
        empty_kept = empty_rejected = None
        for raw in io.iter_table(_existing(input_dir / DEVELOPMENT), batch_rows):
            kept, rejected = dev.add(raw)
            if len(raw) == batch_rows:
                info(f"clean: {dev.rows_read:,} development rows cleaned")
            if empty_kept is None:
                empty_kept, empty_rejected = kept.iloc[:0], rejected.iloc[:0]
            if len(kept):
                kept_sink.write(kept)
            if len(rejected):
                rejected_sink.write(rejected)
        kept_sink.close(empty_like=empty_kept)
        rejected_sink.close(empty_like=empty_rejected)
        q = dev.quality()
        info(
            f"clean: {q['rows_read']:,} rows read, {q['rows_kept']:,} kept, "
            f"{q['rows_rejected']:,} quarantined {q['rejected_by_reason'] or ''}"
        )
        quality = {"development": q, "production": None}

        prod = ProductionCleaner(schema)
        features_sink = io.ParquetSink(tmp / PRODUCTION)
        for raw in io.iter_table(_existing(input_dir / PRODUCTION), batch_rows):
            if len(raw):
                features_sink.write(prod.add(raw))
        if features_sink.rows:
            raw_labels = io.read_parquet(input_dir / LABELS)
            labels, quality["production"] = prod.finish(raw_labels if len(raw_labels) else None)
        else:
            # no production batch: empty files with the right columns keep the DAG the same
            assert empty_kept is not None
            labels = empty_kept[[schema.id, schema.target.column]]
        features_sink.close(
            empty_like=None
            if empty_kept is None
            else empty_kept.drop(columns=[schema.target.column])
        )
        io.write_parquet(tmp / LABELS, labels)
    io.write_json(report, quality)
    info(f"clean: wrote {output_dir}/ and {report}")


def _existing(path: Path) -> Path:
    if not path.exists():
        raise DataError(f"{path}: not found. Run the stage that writes it first.")
    return path
