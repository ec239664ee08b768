"""clean: typed, deduplicated data; quarantined rows; the data-quality report.

Streams data/raw in pieces of a quarter batch (`io.iter_grouped`): each piece is cleaned and
appended to the clean and quarantine files, a row group per batch of `batch_rows` raw rows,
and the report's counts are summed. A first pass reads only the id column and finds the ids
that repeat and the row where each first occurs (`tabml.data.clean.Repeats`), so any piece is
sorted alone, and memory holds a piece, 8 bytes a row during that pass, and the repeated
ids, not the whole data several times over nor every id. With compute=dask the workers clean
and encode a batch each, and this process appends their row groups.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabml.core import io
from tabml.core.catalog import Interim, Raw
from tabml.core.config import CleanParams, ComputeConfig, DaskCompute, SchemaConfig
from tabml.core.errors import DataError
from tabml.core.log import info
from tabml.data.clean import DevelopmentCleaner, ProductionCleaner, Repeats, find_repeats

if TYPE_CHECKING:
    import pandas as pd


PARAMS = CleanParams.param_keys()


def run(
    params_file: Path,
    input_dir: Path,
    output_dir: Path,
    report: Path,
    batch_rows: int = io.BATCH_ROWS,
    piece_rows: int = io.PIECE_ROWS,
) -> None:
    params = CleanParams.load(params_file)
    schema = params.dataset_schema
    rows = (batch_rows, piece_rows)
    with io.atomic_dir(output_dir) as tmp:
        development, empty = _development(
            input_dir / Raw.DEVELOPMENT, tmp, schema, rows, params.compute
        )
        production = _production(input_dir, tmp, schema, rows, empty)
    io.write_json(report, {"development": development, "production": production})
    info(f"clean: wrote {output_dir}/ and {report}")


def _development(
    path: Path, out: Path, schema: SchemaConfig, rows: tuple[int, int], compute: ComputeConfig
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Clean the development rows into clean and rejected files; their quality report, and an
    empty frame with the clean file's columns. On this machine a piece at a time; on the Dask
    cluster (compute=dask) a batch a task, each worker encoding its batch's row group of both
    files, which land here unchanged (`io.ParquetSink.add_part`): the same bytes."""
    repeats = _repeats(_existing(path), schema.id)
    dev = DevelopmentCleaner(schema, repeats)
    kept_sink = io.ParquetSink(out / Interim.CLEAN, grouped=True)
    rejected_sink = io.ParquetSink(out / Interim.REJECTED, grouped=True)
    empty_kept = empty_rejected = None
    batch_rows = rows[0]
    if isinstance(compute, DaskCompute) and io.parquet_rows(path):
        from tabml.compute.distributed import cleaned_on_cluster

        schemas = lambda: (kept_sink.schema, rejected_sink.schema)  # noqa: E731
        for batch in cleaned_on_cluster(str(path), schema, repeats, batch_rows, compute, schemas):
            dev.take(batch.tally)
            if empty_kept is None:
                empty_kept, empty_rejected = batch.empty_kept, batch.empty_rejected
            kept_sink.add_part(batch.kept.data, batch.kept.schema)
            rejected_sink.add_part(batch.rejected.data, batch.rejected.schema)
            _progress(dev.rows_read, batch_rows)
    else:
        for raw, batch_ends in io.iter_grouped(path, *rows):
            kept, rejected = dev.add(raw)
            if empty_kept is None:
                empty_kept, empty_rejected = kept.iloc[:0], rejected.iloc[:0]
            if len(kept):
                kept_sink.write(kept)
            if len(rejected):
                rejected_sink.write(rejected)
            if batch_ends:
                kept_sink.end_group()
                rejected_sink.end_group()
                _progress(dev.rows_read, batch_rows)
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


def _progress(rows_read: int, batch_rows: int) -> None:
    if rows_read % batch_rows == 0:
        info(f"clean: {rows_read:,} development rows cleaned")


def _production(
    input_dir: Path, out: Path, schema: SchemaConfig, rows: tuple[int, int], empty: pd.DataFrame
) -> dict[str, Any] | None:
    """Clean the production batch and its labels; their quality report (None without a batch)."""
    prod = ProductionCleaner(schema)
    quality = None
    features_sink = io.ParquetSink(out / Interim.PRODUCTION, grouped=True)
    for raw, batch_ends in io.iter_grouped(_existing(input_dir / Raw.PRODUCTION), *rows):
        if len(raw):
            features_sink.write(prod.add(raw))
        if batch_ends:
            features_sink.end_group()
    if features_sink.rows:
        raw_labels = io.read_parquet(input_dir / Raw.LABELS)
        labels, quality = prod.finish(raw_labels if len(raw_labels) else None)
    else:
        # no production batch: empty files with the right columns keep the DAG the same
        labels = empty[[schema.id, schema.target.column]]
    features_sink.close(empty_like=empty.drop(columns=[schema.target.column]))
    io.write_parquet(out / Interim.LABELS, labels)
    return quality


def _repeats(path: Path, id_column: str) -> Repeats:
    """The ids that repeat in the file, and where each occurs first (a first pass over the id
    column, twice when some id repeats)."""
    repeats = find_repeats(
        lambda: (piece[id_column] for piece in io.iter_table(path, io.PIECE_ROWS, [id_column]))
    )
    if len(repeats.first):
        info(f"clean: {len(repeats.first):,} ids may occur more than once (first pass, the ids)")
    return repeats


def _existing(path: Path) -> Path:
    if not path.exists():
        raise DataError(f"{path}: not found. Run the stage that writes it first.")
    return path
