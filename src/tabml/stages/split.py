"""split: train, valid and test Parquet files and the split report."""

from __future__ import annotations

from pathlib import Path

from tabml import io
from tabml.catalog import Splits
from tabml.config import SplitParams
from tabml.log import info
from tabml.split import split

PARAMS = SplitParams.param_keys()


def run(params_file: Path, input_file: Path, output_dir: Path, report: Path) -> None:
    params = SplitParams.load(params_file)
    result = split(io.read_parquet(input_file), params.dataset_schema, params.split, params.seed)
    with io.atomic_dir(output_dir) as tmp:
        for name in Splits.NAMES:
            io.write_parquet(tmp / Splits.file(name), getattr(result, name))
    io.write_json(report, result.summary)
    sizes = ", ".join(f"{n} {result.summary[n]['rows']:,}" for n in Splits.NAMES)
    info(f"split ({result.summary['method']}): {sizes}; wrote {output_dir}/ and {report}")
