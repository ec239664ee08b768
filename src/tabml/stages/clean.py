"""clean: typed, deduplicated, pseudonymised data; quarantined rows; the data-quality report."""

from __future__ import annotations

import os
from pathlib import Path

from tabml import io, privacy
from tabml.clean import clean_development, clean_production
from tabml.config import Params, SchemaConfig
from tabml.log import info
from tabml.stages.ingest import DEVELOPMENT, LABELS, PRODUCTION

PARAMS = ("dataset.schema",)
CLEAN = "clean.parquet"
REJECTED = "rejected.parquet"


def run(params_file: Path, input_dir: Path, output_dir: Path, report: Path) -> None:
    schema: SchemaConfig = Params.load(params_file, PARAMS).section("dataset.schema")
    key = privacy.key_from_env(os.environ, needed="pseudonymise" in schema.pii.values())

    dev = clean_development(io.read_parquet(input_dir / DEVELOPMENT), schema, key)
    q = dev.quality
    info(
        f"clean: {q['rows_read']:,} rows read, {q['rows_kept']:,} kept, "
        f"{q['rows_rejected']:,} quarantined {q['rejected_by_reason'] or ''}"
    )
    quality = {"development": q, "production": None}

    raw_prod = io.read_parquet(input_dir / PRODUCTION)
    if len(raw_prod):
        raw_labels = io.read_parquet(input_dir / LABELS)
        prod = clean_production(raw_prod, raw_labels if len(raw_labels) else None, schema, key)
        quality["production"] = prod.quality
        prod_features, prod_labels = prod.features, prod.labels
    else:
        # no production batch: empty files with the right columns keep the DAG the same
        prod_features = dev.clean.drop(columns=[schema.target.column]).iloc[:0]
        prod_labels = dev.clean[[schema.id, schema.target.column]].iloc[:0]

    with io.atomic_dir(output_dir) as tmp:
        io.write_parquet(tmp / CLEAN, dev.clean)
        io.write_parquet(tmp / REJECTED, dev.rejected)
        io.write_parquet(tmp / PRODUCTION, prod_features)
        io.write_parquet(tmp / LABELS, prod_labels)
    io.write_json(report, quality)
    info(f"clean: wrote {output_dir}/ and {report}")
