"""split: train, valid and test Parquet files and the split report.

The logic is `tabml.split.plan`, decided from the key columns alone (id, timestamp, target);
this shell reads those, then streams the clean file a batch at a time into the three split
files. So it never holds the development set: its peak is the key columns, one batch, and a
row group's worth of rows buffered per split file, which are written exactly as writing each
split whole would write them.
"""

from __future__ import annotations

from pathlib import Path

from tabml import io
from tabml.catalog import Splits
from tabml.config import SplitParams
from tabml.log import info
from tabml.split import key_columns, plan

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
        start = 0
        for batch in io.iter_table(input_file, batch_rows):
            mine = which[start : start + len(batch)]
            for i, sink in enumerate(sinks):
                sink.write(batch[mine == i].reset_index(drop=True))
            start += len(batch)
            if len(batch) == batch_rows:
                info(f"split: {start:,} of {len(which):,} rows written")
        for sink in sinks:
            sink.close()
    io.write_json(report, decided.summary)
    sizes = ", ".join(f"{n} {decided.summary[n]['rows']:,}" for n in Splits.NAMES)
    info(f"split ({decided.summary['method']}): {sizes}; wrote {output_dir}/ and {report}")
