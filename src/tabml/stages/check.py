"""check: every section of params.yaml valid, before any stage that reads it runs.

DVC deletes a stage's outputs before it runs the stage's command, and only then does the
command read its params: a value the stage refuses (`num_leaves: 1000000000`, a misspelt
option) would leave `models/` and `reports/train` deleted, and `dvc exp run -S` would leave
params.yaml changed. This stage runs first, whenever params.yaml changes, and validates every
section as the stages and commands will read it (what `tabml params` checks). Every stage that
reads params depends on its stamp, whose content never changes: passing reruns nothing else,
failing stops `dvc repro` before any output is touched.
"""

from __future__ import annotations

from pathlib import Path

from tabml import io
from tabml.config import ALL_PARAMS, PackageParams, read_params
from tabml.monitor import check_chunking

# every top-level section of params.yaml that a stage or command reads
PARAMS = sorted({key.split(".")[0] for kind in ALL_PARAMS for key in kind.param_keys()})
STAMP = "params.yaml: every section is valid for the stages and commands that read it\n"


def validate(params_file: Path) -> PackageParams:
    """Every section of `params_file` as each stage and command will read it, and what the
    config alone can tell (chunking against the dataset's timestamp); a ConfigError names the
    key and the file."""
    tree = read_params(params_file)
    for kind in ALL_PARAMS:
        kind.from_tree(tree, str(params_file))
    loaded = PackageParams.from_tree(tree, str(params_file))
    check_chunking(
        loaded.monitor.chunking,
        loaded.monitor.min_reference_chunks,
        loaded.dataset_schema.timestamp,
    )
    return loaded


def run(params_file: Path, stamp: Path) -> None:
    validate(params_file)
    io.write_text(stamp, STAMP)
