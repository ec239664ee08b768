"""ingest: read the sources, validate them against the schema, write Parquet under data/raw.

This is the first stage that writes anything, so personal data is handled here: the rows of
subjects in the erasure ledger (`tabml forget`) are dropped, columns in `schema.pii` are
pseudonymised (keyed HMAC) or dropped before a batch is written, and no raw
value reaches data/raw (a cached output that `dvc push` uploads) or anything after it. What the
config and the development row count can tell about monitoring is checked here too, before
any training: a reference too small for enough chunks fails now, not after the model is built.

Each file is streamed in pieces of a quarter batch (`io.iter_grouped`): typed by the schema,
checked, and appended to its output, a row group per batch of `batch_rows` rows, so memory
holds one piece (plus an id and a row hash per row for the duplicate check), not several
copies of the data. Everything is checked before anything is
published: outputs are written into a temporary folder that replaces data/raw only at the end.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from tabml.core import io
from tabml.core.catalog import Raw
from tabml.core.config import ComputeConfig, DaskCompute, IngestParams, SchemaConfig, SourcesConfig
from tabml.core.errors import ConfigError, DataError
from tabml.core.log import info
from tabml.core.schema import (
    BatchChecks,
    CheckedBatch,
    Failure,
    Role,
    ValidationError,
    check_batch,
    shorten,
)
from tabml.data import datasets
from tabml.governance import erasure, privacy
from tabml.monitoring.monitor import check_chunking, check_reference_rows

if TYPE_CHECKING:
    import pandas as pd

PARAMS = IngestParams.param_keys()


def _stream(
    path: Path,
    schema: SchemaConfig,
    role: Role,
    sink: io.ParquetSink,
    batch_rows: int,
    key: bytes | None,
    pseudonymised: bool = False,
    ledger: frozenset[str] = frozenset(),
    piece_rows: int = io.PIECE_ROWS,
    compute: ComputeConfig | None = None,
) -> tuple[BatchChecks, pd.DataFrame]:
    """Type, check, drop erased subjects, pseudonymise and write one file batch by batch;
    raise once with every failure. `pseudonymised`: the file holds personal data pseudonymised
    already (tabml's own prediction logs, through `tabml append`), so it is not hashed twice.
    `ledger`: the erasure ledger's entries, whose rows never go further."""
    checks = BatchChecks(schema, role, rows_hint=io.rows_hint(path))
    empty: pd.DataFrame | None = None
    dropped = 0
    cluster = compute if isinstance(compute, DaskCompute) and _on_cluster(path, schema) else None
    if cluster is not None and key is None:
        # no key, so no erased ids to find (a ledger needs one) and nothing to pseudonymise:
        # the workers apply the privacy rules and encode each batch's row group themselves
        from tabml.compute.distributed import ingested_on_cluster

        for batch in ingested_on_cluster(
            str(path), schema, role, pseudonymised, batch_rows, cluster, lambda: sink.schema
        ):
            for checked in batch.checked:
                checks.take(checked)
            if empty is None:
                empty = batch.empty
            sink.add_part(batch.part.data, batch.part.schema)
            _progress(path, checks.rows, batch_rows)
    else:
        rows = _checked(path, schema, role, batch_rows, piece_rows, cluster)
        for checked, batch_ends in rows:
            typed = checks.take(checked)
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
            if batch_ends:
                sink.end_group()  # a row group per batch, as when a batch was read whole
                _progress(path, checks.rows, batch_rows)
    if checks.rows == 0:
        raise DataError(f"{path}: file has a header but no rows")
    if dropped:
        info(f"ingest: {path.name}: {dropped:,} rows of erased subjects dropped (erasure ledger)")
    failures = checks.finish()
    if failures:
        raise ValidationError(str(path), failures)
    if empty is None:  # a file with no batch at all was refused above (no rows)
        raise DataError(f"{path}: no rows could be read")
    return checks, empty


def run(
    params_file: Path,
    sources_dir: Path,
    output_dir: Path,
    batch_rows: int = io.BATCH_ROWS,
    ledger_file: Path | None = None,
    piece_rows: int = io.PIECE_ROWS,
) -> None:
    params = IngestParams.load(params_file)
    sources, schema = params.sources, params.dataset_schema
    if sources.production_labels and not sources.production:
        raise DataError("dataset.sources: production_labels given without production")
    # what the config alone decides fails before any file is read
    book = erasure.load(ledger_file)
    ledger = book.ids
    key = None
    if "pseudonymise" in schema.pii.values():
        key = privacy.require_key(os.environ)
    elif ledger:
        key = privacy.require_key(
            os.environ, "the erasure ledger is not empty, and its entries are keyed hashes of ids"
        )
    if key is not None:
        book.check_key(key, ledger_file)  # another key would let the erased back in
    check_chunking(params.chunking, params.min_reference_chunks, schema.timestamp)
    stream = partial(
        _stream, schema=schema, batch_rows=batch_rows, key=key, ledger=ledger,
        piece_rows=piece_rows, compute=params.compute,
    )  # fmt: skip

    with io.atomic_dir(output_dir) as tmp:
        dev_rows, empty_dev = _development(sources, sources_dir, tmp / Raw.DEVELOPMENT, stream)
        # the reference is the latest max_rows development rows (fewer if clean quarantines)
        check_reference_rows(
            min(dev_rows, params.reference_rows),
            params.chunking,
            params.min_reference_chunks,
            schema.timestamp,
        )
        prod_sink = io.ParquetSink(tmp / Raw.PRODUCTION, grouped=True)
        labels_sink = io.ParquetSink(tmp / Raw.LABELS, grouped=True)
        if sources.production:
            _production(
                sources.production, sources.production_labels, sources_dir, schema,
                prod_sink, labels_sink, stream,
            )  # fmt: skip
        # no production batch or labels: empty files with the right columns keep the DAG whole
        prod_sink.close(empty_like=empty_dev.drop(columns=[schema.target.column]))
        labels_sink.close(empty_like=empty_dev[[schema.id, schema.target.column]])
    info(f"ingest: wrote {output_dir}/")


def _progress(path: Path, rows: int, batch_rows: int) -> None:
    if rows >= batch_rows:
        info(f"ingest: {path.name}: {rows:,} rows read")


def _on_cluster(path: Path, schema: SchemaConfig) -> bool:
    """With compute=dask, whether the file's rows are typed and checked on the cluster (a
    Parquet file with rows: a CSV cannot be cut into parts a worker reads alone, so it is
    read here). Raw personal data goes nowhere new: not into the store, nor unencrypted
    across the network."""
    if not io.rows_hint(path):  # not a Parquet file with rows
        if path.suffix == ".csv":
            info(f"ingest: {path.name} is read here: a CSV is not cut into parts for the workers")
        return False
    from tabml.compute.distributed import (
        SCHEDULER_ENV,
        STORAGE_ENV,
        encrypted_or_local,
        scheduler_address,
        storage_url,
    )

    address = scheduler_address()
    if schema.pii and storage_url() and address:  # for_workers would copy it there
        # a copy in the store, outside DVC's remote and the ledger's rebuild, would sit there
        # raw until removed or expired
        info(
            f"ingest: {path.name} is read here: it holds personal data "
            f"({', '.join(sorted(schema.pii))}) not yet pseudonymised, which is never "
            f"copied to {STORAGE_ENV}"
        )
        return False
    if schema.pii and address and not encrypted_or_local(address):
        # fail closed: the raw values would cross the network before pseudonymisation
        raise ConfigError(
            f"ingest with compute=dask sends the rows the workers read, personal data "
            f"({', '.join(sorted(schema.pii))}) still raw, from the workers to this "
            f"process, and {SCHEDULER_ENV} is {address}, which is not encrypted. Use a "
            "tls:// scheduler address with Dask's TLS settings (distributed.comm.tls, "
            "https://distributed.dask.org/en/stable/tls.html), or unset it to run on a "
            "local cluster on this machine"
        )
    return True


def _checked(
    path: Path,
    schema: SchemaConfig,
    role: Role,
    batch_rows: int,
    piece_rows: int,
    cluster: DaskCompute | None,
) -> Iterator[tuple[CheckedBatch, bool]]:
    """The file's rows typed and checked in file order, and whether a batch ends with them:
    here a piece at a time, or on the Dask cluster a range at a time, the rows sent back here
    (where the key that pseudonymises them and finds erased ids stays)."""
    if cluster is not None:
        from tabml.compute.distributed import checked_on_cluster

        yield from checked_on_cluster(str(path), schema, role, batch_rows, cluster)
        return
    for frame, batch_ends in io.iter_grouped(path, batch_rows, piece_rows):
        yield check_batch(frame, schema, role), batch_ends


# `_stream` with the schema, batch size, key and ledger bound (see `run`)
Stream = Callable[..., tuple[BatchChecks, "pd.DataFrame"]]


def _development(
    sources: SourcesConfig, sources_dir: Path, output: Path, stream: Stream
) -> tuple[int, pd.DataFrame]:
    """The development rows, then `tabml append`'s additions, into one file: the row count,
    and an empty frame with the file's columns."""
    dev_path = datasets.resolve(sources.development, sources_dir)
    info(f"ingest: reading development data {dev_path.name}")
    dev_sink = io.ParquetSink(output, grouped=True)
    dev, empty_dev = stream(dev_path, role="development", sink=dev_sink)
    info(f"ingest: {dev.rows:,} development rows meet the schema")
    dev_rows = dev.rows
    if sources.additions:
        add_path = sources_dir / sources.additions
        if add_path.is_file():
            added, _ = stream(add_path, role="development", sink=dev_sink, pseudonymised=True)
            dev_rows += added.rows
            info(
                f"ingest: + {added.rows:,} labelled production rows from {add_path.name} "
                "(tabml append)"
            )
        else:
            info(f"ingest: no {add_path.name} yet ('tabml append' writes it when retraining)")
    dev_sink.close()
    return dev_rows, empty_dev


def _production(
    production: str,
    production_labels: str | None,
    sources_dir: Path,
    schema: SchemaConfig,
    prod_sink: io.ParquetSink,
    labels_sink: io.ParquetSink,
    stream: Stream,
) -> None:
    """The production batch and its labels, which must join it on the id."""
    prod_path = datasets.resolve(production, sources_dir)
    prod, _ = stream(prod_path, role="production", sink=prod_sink)
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
    if not production_labels:
        return
    lab_path = datasets.resolve(production_labels, sources_dir)
    labels, _ = stream(lab_path, role="labels", sink=labels_sink)
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
