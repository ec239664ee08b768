"""append: the shell of `tabml append` (a command, not a dvc.yaml stage).

Reads the prediction logs, the labels and the additions collected so far; writes the new
additions file that `dataset.sources.additions` names, atomically; tracks it with `dvc add`.
"""

from __future__ import annotations

from pathlib import Path

from tabml.core import io
from tabml.core.config import DatasetParams
from tabml.core.errors import ConfigError
from tabml.core.log import info
from tabml.data.retrain import labelled_rows, merge, within_schema
from tabml.service.predlog import with_received_time

PARAMS = DatasetParams.param_keys()


def run(params_file: Path, logs: Path, labels: Path, sources_dir: Path, dvc_add: bool) -> Path:
    params = DatasetParams.load(params_file)
    sources, schema = params.sources, params.dataset_schema
    if not sources.additions:
        raise ConfigError(
            "dataset.sources.additions is not set: name the file that collects labelled "
            "production rows (e.g. additions: additions.parquet) in conf/dataset/, then "
            "'make params'"
        )
    output = sources_dir / sources.additions
    # the additions file is read and rewritten on purpose (one row per id); the logs and labels
    # are never written over
    io.guard_outputs([logs, labels], files=[output])
    logged, received = with_received_time(io.read_batch(logs), schema.timestamp)
    if received:
        info(
            f"append: {received:,} logged rows came without '{schema.timestamp}': the time the "
            "service received them (logged_at, UTC) stands in for it"
        )
    rows, seen = labelled_rows(logged, io.read_batch(labels), schema)
    info(
        f"append: {seen['records']:,} logged records ({seen['logged']:,} log rows), "
        f"{seen['labelled']:,} with a label, {seen['unlabelled']:,} still without"
    )
    rows, outside = within_schema(rows, schema)
    for column, what in outside.items():
        info(
            f"append: {what['rows']:,} rows left out: '{column}' values the development schema "
            f"does not allow, e.g. {what['examples']}; allow them in conf/dataset/ to train on them"
        )
    existing = io.read_parquet(output) if output.is_file() else None
    merged, counts = merge(existing, rows, schema)
    io.write_parquet(output, merged)
    info(
        f"append: {output} now holds {counts['after']:,} rows ({counts['added']:,} new, "
        f"{counts['replaced']:,} replaced by newer ones)"
    )
    if dvc_add:
        from tabml.adapters.dvc_adapter import add

        add(output)
        info(f"append: tracked with DVC: commit {output}.dvc, then 'dvc repro' retrains on it")
    return output
