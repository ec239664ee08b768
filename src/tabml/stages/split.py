"""split: train, valid and test Parquet files and the split report."""

from __future__ import annotations

from pathlib import Path

from tabml import io
from tabml.config import Params
from tabml.log import info
from tabml.split import SPLITS, split

PARAMS = ("seed", "dataset.schema", "split")


def run(params_file: Path, input_file: Path, output_dir: Path, report: Path) -> None:
    params = Params.load(params_file, PARAMS)
    result = split(
        io.read_parquet(input_file),
        params.section("dataset.schema"),
        params.section("split"),
        params.section("seed"),
    )
    with io.atomic_dir(output_dir) as tmp:
        for name in SPLITS:
            io.write_parquet(tmp / f"{name}.parquet", getattr(result, name))
    io.write_json(report, result.summary)
    sizes = ", ".join(f"{n} {result.summary[n]['rows']:,}" for n in SPLITS)
    info(f"split ({result.summary['method']}): {sizes}; wrote {output_dir}/ and {report}")
