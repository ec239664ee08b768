"""ingest: read the sources, validate them against the schema, write Parquet under data/raw.

Each file is streamed in batches of `batch_rows` rows: typed by the schema, checked, and
appended to its output, so memory holds one batch (plus an id and a row hash per row for the
duplicate check), not several copies of the data. Everything is checked before anything is
published: outputs are written into a temporary folder that replaces data/raw only at the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tabml import datasets, io
from tabml.config import Params, SchemaConfig, SourcesConfig
from tabml.errors import DataError
from tabml.log import info
from tabml.schema import BatchChecks, Failure, Role, ValidationError

if TYPE_CHECKING:
    import pandas as pd

PARAMS = ("dataset.sources", "dataset.schema")
DEVELOPMENT = "development.parquet"
PRODUCTION = "production.parquet"
LABELS = "production_labels.parquet"
BATCH_ROWS = 1_000_000


def _stream(
    path: Path, schema: SchemaConfig, role: Role, sink: io.ParquetSink, batch_rows: int
) -> tuple[BatchChecks, pd.DataFrame]:
    """Type, check and write one file batch by batch; raise once with every failure."""
    checks = BatchChecks(schema, role)
    empty: pd.DataFrame | None = None
    for frame in io.iter_table(path, batch_rows):
        typed = checks.add(frame)
        if empty is None:
            empty = typed.iloc[:0]
        if len(typed):
            sink.write(typed)
        if checks.rows > len(frame):
            info(f"ingest: {path.name}: {checks.rows:,} rows read")
    if checks.rows == 0:
        raise DataError(f"{path}: file has a header but no rows")
    failures = checks.finish()
    if failures:
        raise ValidationError(str(path), failures)
    assert empty is not None
    return checks, empty


def run(
    params_file: Path, sources_dir: Path, output_dir: Path, batch_rows: int = BATCH_ROWS
) -> None:
    params = Params.load(params_file, PARAMS)
    sources: SourcesConfig = params.section("dataset.sources")
    schema: SchemaConfig = params.section("dataset.schema")
    if sources.production_labels and not sources.production:
        raise DataError("dataset.sources: production_labels given without production")

    with io.atomic_dir(output_dir) as tmp:
        dev_path = datasets.resolve(sources.development, sources_dir)
        info(f"ingest: reading development data {dev_path.name}")
        dev_sink = io.ParquetSink(tmp / DEVELOPMENT)
        dev, empty_dev = _stream(dev_path, schema, "development", dev_sink, batch_rows)
        info(f"ingest: {dev.rows:,} development rows meet the schema")
        if sources.additions:
            add_path = sources_dir / sources.additions
            if add_path.is_file():
                added, _ = _stream(add_path, schema, "development", dev_sink, batch_rows)
                info(
                    f"ingest: + {added.rows:,} labelled production rows from {add_path.name} "
                    "(tabml append)"
                )
            else:
                info(f"ingest: no {add_path.name} yet ('tabml append' writes it when retraining)")
        dev_sink.close()

        target = schema.target.column
        prod_sink, labels_sink = io.ParquetSink(tmp / PRODUCTION), io.ParquetSink(tmp / LABELS)
        if sources.production:
            prod_path = datasets.resolve(sources.production, sources_dir)
            prod, _ = _stream(prod_path, schema, "production", prod_sink, batch_rows)
            for col, d in prod.unseen().items():
                info(
                    f"ingest: production '{col}': {d['count']:,} values never seen in "
                    f"development {list(d['values'])[:3]} (kept for scoring, reported by clean)"
                )
            for col, d in prod.out_of_range.items():
                info(
                    f"ingest: production '{col}': {d['below'] + d['above']:,} values out of "
                    "range (kept for scoring)"
                )
            if sources.production_labels:
                lab_path = datasets.resolve(sources.production_labels, sources_dir)
                labels, _ = _stream(lab_path, schema, "labels", labels_sink, batch_rows)
                label_ids = labels.ids()
                unknown = ~label_ids.isin(prod.ids())
                if unknown.any():
                    raise ValidationError(
                        str(lab_path),
                        [
                            Failure(
                                schema.id,
                                "label ids not in the production batch",
                                int(unknown.sum()),
                                tuple(label_ids[unknown].head(3).tolist()),
                                hint="Labels must join the production batch on the id column",
                            )
                        ],
                    )
        # no production batch or labels: empty files with the right columns keep the DAG whole
        prod_sink.close(empty_like=empty_dev.drop(columns=[target]))
        labels_sink.close(empty_like=empty_dev[[schema.id, target]])
    info(f"ingest: wrote {output_dir}/")
