"""split: train, valid and test Parquet files and the split report.

The logic is `tabml.split.plan`, decided from the key columns alone (id, timestamp, target);
this shell reads those, then streams the clean file a batch at a time into the three split
files. So it never holds the development set: its peak is the key columns, one batch, and a
row group's worth of rows buffered per split file, which are written exactly as writing each
split whole would write them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from tabml import io
from tabml.catalog import Splits
from tabml.config import ComputeConfig, DaskCompute, SplitParams
from tabml.log import info
from tabml.split import key_columns, plan

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

PARAMS = SplitParams.param_keys()
# rows read at a time: a quarter of ingest's and clean's batch, because up to a row group of
# rows (io.ROW_GROUP_ROWS) also waits in each of the three files' buffers
BATCH_ROWS = 262_144


def run(
    params_file: Path,
    input_file: Path,
    output_dir: Path,
    report: Path,
    batch_rows: int = BATCH_ROWS,
    row_group_rows: int = io.ROW_GROUP_ROWS,
) -> None:
    params = SplitParams.load(params_file)
    schema = params.dataset_schema
    keys = io.read_parquet(input_file, columns=key_columns(schema))
    decided = plan(keys, schema, params.split, params.seed)
    which = decided.assignment(len(keys))
    del keys
    with io.atomic_dir(output_dir) as tmp:
        sinks = [io.ParquetSink(tmp / Splits.file(n), row_group_rows) for n in Splits.NAMES]
        done = 0
        for read, dealt in _dealt(input_file, which, len(sinks), params.compute, batch_rows):
            for sink, rows in zip(sinks, dealt, strict=True):
                sink.write(rows)
            done += read
            if done < len(which):
                info(f"split: {done:,} of {len(which):,} rows written")
        for sink in sinks:
            sink.close()
    io.write_json(report, decided.summary)
    sizes = ", ".join(f"{n} {decided.summary[n]['rows']:,}" for n in Splits.NAMES)
    info(f"split ({decided.summary['method']}): {sizes}; wrote {output_dir}/ and {report}")


def _dealt(
    input_file: Path, which: np.ndarray, parts: int, compute: ComputeConfig, batch_rows: int
) -> Iterator[tuple[int, list[pd.DataFrame]]]:
    """The input's rows dealt to the `parts` files by `which`, in file order (with the rows
    read for them): read here
    `batch_rows` at a time, or a row group at a time on the Dask cluster (compute=dask).
    The files are the same bytes either way: the sinks cut their own row groups."""
    if isinstance(compute, DaskCompute) and len(which):
        from tabml.distributed import dealt_on_cluster

        yield from dealt_on_cluster(str(input_file), which, parts, compute)
        return
    start = 0
    for batch in io.iter_table(input_file, batch_rows):
        mine = which[start : start + len(batch)]
        yield len(batch), [batch[mine == i].reset_index(drop=True) for i in range(parts)]
        start += len(batch)
