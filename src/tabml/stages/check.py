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

from tabml.core import io
from tabml.core.config import (
    ALL_PARAMS,
    CleanParams,
    EvaluateParams,
    IngestParams,
    PackageParams,
    SplitParams,
    StageParams,
    TrainParams,
    read_params,
)
from tabml.core.errors import ConfigError
from tabml.monitoring.monitor import check_chunking

# what the stages of dvc.yaml read; the sections only commands read (release, privacy) are
# theirs to check, so that changing a release gate leaves the pipeline up to date
STAGES: tuple[type[StageParams], ...] = (
    IngestParams, CleanParams, SplitParams, TrainParams, EvaluateParams, PackageParams
)  # fmt: skip
# every section of params.yaml that a stage reads: the top-level key, or the keys themselves
# where a stage reads a few keys of a command's section (the package's model card reads the
# release's fairness limits; the other gates are the release command's, and changing one
# leaves the pipeline up to date)
_COMMAND_SECTIONS = {"release", "privacy"}
PARAMS = sorted(
    {
        key if key.split(".")[0] in _COMMAND_SECTIONS else key.split(".")[0]
        for kind in STAGES
        for key in kind.param_keys()
    }
)
STAMP = "params.yaml: every section the stages read is valid\n"


def validate(params_file: Path, kinds: tuple[type[StageParams], ...] = ALL_PARAMS) -> PackageParams:
    """Every section of `params_file` as each stage (and, by default, each command) will read
    it, and what the config alone can tell (chunking against the dataset's timestamp); a
    ConfigError names the key and the file."""
    tree = read_params(params_file)
    for kind in kinds:
        kind.from_tree(tree, str(params_file))
    loaded = PackageParams.from_tree(tree, str(params_file))
    check_chunking(
        loaded.monitor.chunking,
        loaded.monitor.min_reference_chunks,
        loaded.dataset_schema.timestamp,
    )
    return loaded


def run(params_file: Path, stamp: Path) -> None:
    validate(params_file, STAGES)
    io.write_text(stamp, STAMP)


def in_conf_terms(
    err: ConfigError, composed: Path, config_dir: Path, choices: dict[str, str]
) -> ConfigError:
    """`err`, found in a params.yaml just composed from conf/, told as the files the user
    edits: one line per problem, naming the conf/ file that sets the key (`choices`: the
    option each group selected) and the fix."""
    if not err.problems:
        return ConfigError(
            str(err).replace(str(composed), "the params.yaml composed from conf/")
            + "\nNothing was written."
        )
    lines = []
    for key, message in err.problems:
        group, _, rest = key.partition(".")
        if group in choices:
            where, key = config_dir / group / f"{choices[group]}.yaml", rest or key
        else:
            where = config_dir / "config.yaml"
        lines.append(f"  {where}: {key}: {message}")
    return ConfigError(
        "conf/ composes into an invalid params.yaml, so nothing was written. Fix these in "
        "the files named (a value the file does not set comes from the default.yaml it "
        "extends):\n" + "\n".join(lines),
        err.problems,
    )
