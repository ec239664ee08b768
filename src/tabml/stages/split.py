"""split: train, valid and test Parquet files and the split report.

The logic is `tabml.data.split.plan`, decided from the key columns alone (id, timestamp, target);
this shell reads those, then deals the clean file a row group at a time into the three split
files, each input row group's rows of a file written as one row group of it. So it never
holds the development set: its peak is the key columns and one row group with its rows dealt.
On the Dask cluster (compute=dask) a worker reads, deals and encodes each row group, and the
encoded row groups land here unchanged: the files are the same bytes.
"""

from __future__ import annotations

from pathlib import Path

from tabml.core import io
from tabml.core.catalog import Splits
from tabml.core.config import DaskCompute, SplitParams
from tabml.core.log import info
from tabml.data.split import key_columns, plan

PARAMS = SplitParams.param_keys()


def run(params_file: Path, input_file: Path, output_dir: Path, report: Path) -> None:
    params = SplitParams.load(params_file)
    schema = params.dataset_schema
    keys = io.read_parquet(input_file, columns=key_columns(schema))
    decided = plan(keys, schema, params.split, params.seed)
    which = decided.assignment(len(keys))
    del keys
    with io.atomic_dir(output_dir) as tmp:
        sinks = [io.ParquetSink(tmp / Splits.file(n), grouped=True) for n in Splits.NAMES]
        done = 0
        if isinstance(params.compute, DaskCompute) and len(which):
            from tabml.compute.distributed import dealt_on_cluster

            types = lambda: [sink.schema for sink in sinks]  # noqa: E731
            for read, parts in dealt_on_cluster(
                str(input_file), which, len(sinks), params.compute, types
            ):
                for sink, part in zip(sinks, parts, strict=True):
                    sink.add_part(part.data, part.schema)
                done = _progress(done, read, len(which))
        else:
            for rows in io.iter_row_groups(input_file):
                mine = which[done : done + len(rows)]
                for i, sink in enumerate(sinks):
                    sink.write(rows[mine == i].reset_index(drop=True))
                    sink.end_group()
                done = _progress(done, len(rows), len(which))
        for sink in sinks:
            sink.close()
    io.write_json(report, decided.summary)
    sizes = ", ".join(f"{n} {decided.summary[n]['rows']:,}" for n in Splits.NAMES)
    info(f"split ({decided.summary['method']}): {sizes}; wrote {output_dir}/ and {report}")


def _progress(done: int, read: int, total: int) -> int:
    done += read
    if done < total:
        info(f"split: {done:,} of {total:,} rows written")
    return done
