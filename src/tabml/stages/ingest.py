"""ingest: read the sources, validate them against the schema, write Parquet under data/raw.

This is the first stage that writes anything, so personal data is handled here: the rows of
subjects in the erasure ledger (`tabml forget`) are dropped, columns in `schema.pii` are
pseudonymised (keyed HMAC) or dropped before a batch is written, and no raw
value reaches data/raw (a cached output that `dvc push` uploads) or anything after it. What the
config and the development row count can tell about monitoring is checked here too, before
any training: a reference too small for enough chunks fails now, not after the model is built.

Each file is streamed in batches of `batch_rows` rows: typed by the schema, checked, and
appended to its output, so memory holds one batch (plus an id and a row hash per row for the
duplicate check), not several copies of the data. Everything is checked before anything is
published: outputs are written into a temporary folder that replaces data/raw only at the end.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from tabml import datasets, erasure, io, privacy
from tabml.config import ChunkingConfig, Params, SchemaConfig, SourcesConfig
from tabml.errors import DataError
from tabml.log import info
from tabml.monitor import check_chunking, check_reference_rows
from tabml.schema import BatchChecks, Failure, Role, ValidationError, shorten

if TYPE_CHECKING:
    import pandas as pd

PARAMS = (
    "dataset.sources",
    "dataset.schema",
    # checked here, before training: enough development rows for the monitoring reference
    "monitor.chunking",
    "monitor.min_reference_chunks",
    "monitor.reference.max_rows",
)
DEVELOPMENT = "development.parquet"
PRODUCTION = "production.parquet"
LABELS = "production_labels.parquet"
BATCH_ROWS = 1_000_000


def _stream(
    path: Path,
    schema: SchemaConfig,
    role: Role,
    sink: io.ParquetSink,
    batch_rows: int,
    key: bytes | None,
    pseudonymised: bool = False,
    ledger: frozenset[str] = frozenset(),
) -> tuple[BatchChecks, pd.DataFrame]:
    """Type, check, drop erased subjects, pseudonymise and write one file batch by batch;
    raise once with every failure. `pseudonymised`: the file holds personal data pseudonymised
    already (tabml's own prediction logs, through `tabml append`), so it is not hashed twice.
    `ledger`: the erasure ledger's entries, whose rows never go further."""
    checks = BatchChecks(schema, role)
    empty: pd.DataFrame | None = None
    dropped = 0
    for frame in io.iter_table(path, batch_rows):
        typed = checks.add(frame)
        if ledger and schema.id in typed:
            gone = erasure.erased(typed[schema.id], ledger, key)
            if gone.any():
                dropped += int(gone.sum())
                typed = typed[~gone.to_numpy()]
        if not pseudonymised:
            typed = privacy.apply(typed, schema.pii, key)
        if empty is None:
            empty = typed.iloc[:0]
        if len(typed):
            sink.write(typed)
        if checks.rows > len(frame) or len(frame) == batch_rows:
            info(f"ingest: {path.name}: {checks.rows:,} rows read")
    if checks.rows == 0:
        raise DataError(f"{path}: file has a header but no rows")
    if dropped:
        info(f"ingest: {path.name}: {dropped:,} rows of erased subjects dropped (erasure ledger)")
    failures = checks.finish()
    if failures:
        raise ValidationError(str(path), failures)
    assert empty is not None
    return checks, empty


def run(
    params_file: Path,
    sources_dir: Path,
    output_dir: Path,
    batch_rows: int = BATCH_ROWS,
    ledger_file: Path | None = None,
) -> None:
    params = Params.load(params_file, PARAMS)
    sources: SourcesConfig = params.section("dataset.sources")
    schema: SchemaConfig = params.section("dataset.schema")
    chunking: ChunkingConfig = params.section("monitor.chunking")
    min_chunks: int = params.section("monitor.min_reference_chunks")
    max_rows: int = params.section("monitor.reference.max_rows")
    if sources.production_labels and not sources.production:
        raise DataError("dataset.sources: production_labels given without production")
    # what the config alone decides fails before any file is read
    ledger = erasure.read(ledger_file)
    key = privacy.key_from_env(
        os.environ, needed="pseudonymise" in schema.pii.values() or bool(ledger)
    )
    check_chunking(chunking, min_chunks, schema.timestamp)

    with io.atomic_dir(output_dir) as tmp:
        dev_path = datasets.resolve(sources.development, sources_dir)
        info(f"ingest: reading development data {dev_path.name}")
        dev_sink = io.ParquetSink(tmp / DEVELOPMENT)
        dev, empty_dev = _stream(
            dev_path, schema, "development", dev_sink, batch_rows, key, ledger=ledger
        )
        info(f"ingest: {dev.rows:,} development rows meet the schema")
        dev_rows = dev.rows
        if sources.additions:
            add_path = sources_dir / sources.additions
            if add_path.is_file():
                added, _ = _stream(
                    add_path, schema, "development", dev_sink, batch_rows, key, True, ledger
                )
                dev_rows += added.rows
                info(
                    f"ingest: + {added.rows:,} labelled production rows from {add_path.name} "
                    "(tabml append)"
                )
            else:
                info(f"ingest: no {add_path.name} yet ('tabml append' writes it when retraining)")
        dev_sink.close()
        # the reference is the latest max_rows development rows (fewer if clean quarantines)
        check_reference_rows(min(dev_rows, max_rows), chunking, min_chunks, schema.timestamp)

        target = schema.target.column
        prod_sink, labels_sink = io.ParquetSink(tmp / PRODUCTION), io.ParquetSink(tmp / LABELS)
        if sources.production:
            prod_path = datasets.resolve(sources.production, sources_dir)
            prod, _ = _stream(
                prod_path, schema, "production", prod_sink, batch_rows, key, ledger=ledger
            )
            for col, d in prod.unseen().items():
                info(
                    f"ingest: production '{col}': {d['count']:,} values never seen in "
                    f"development {[shorten(v) for v in list(d['values'])[:3]]} (kept for scoring, "
                    "reported by clean)"
                )
            for col, d in prod.out_of_range.items():
                info(
                    f"ingest: production '{col}': {d['below'] + d['above']:,} values out of "
                    "range (kept for scoring)"
                )
            if sources.production_labels:
                lab_path = datasets.resolve(sources.production_labels, sources_dir)
                labels, _ = _stream(
                    lab_path, schema, "labels", labels_sink, batch_rows, key, ledger=ledger
                )
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
