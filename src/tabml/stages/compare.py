"""The champion (the base revision's package) against the challenger (this change's), scored
on the same labelled rows: the shell around `tabml.governance.compare`.

Used by `tabml report` (the pull-request verdict) and by the release gate against the release
promoted to `prod`. The champion's package is read through DVC at its git revision (local cache,
else the remote) and verified as `predict` verifies any package; when it cannot be had, the
reason is returned instead, and callers fall back to comparing each run's own metrics.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from tabml.core import io
from tabml.core.errors import TabmlError
from tabml.core.log import info
from tabml.core.schema import validate
from tabml.governance.compare import Paired, SameRows, paired_auc
from tabml.learning import package as pkg


def _scores(model: pkg.Package, frame: Any, source: str) -> Any:
    typed = validate(frame.drop(columns=[model.schema.target.column]), model.schema,
                     "production", source).frame  # fmt: skip
    return model.model.predict(typed)


def score_both(champion: pkg.Package, challenger: pkg.Package, frame: Any, source: str) -> Paired:
    """The paired comparison on `frame` (features and the target, as written by the pipeline)."""
    target = challenger.schema.target.column
    y = frame[target].to_numpy(dtype="float64")
    return paired_auc(y, _scores(champion, frame, source), _scores(challenger, frame, source))


def labelled_production(features: Path, labels: Path, schema: Any) -> Any:
    """The production batch with its labels joined on the id (only the labelled rows)."""
    if not (features.is_file() and labels.is_file()):
        return None
    batch, known = io.read_parquet(features), io.read_parquet(labels)
    if not len(batch) or not len(known):
        return None
    target = schema.target.column
    joined = batch.merge(known[[schema.id, target]], on=schema.id, how="inner")
    return joined[joined[target].notna()].reset_index(drop=True)


def against(
    root: Path,
    rev: str,
    label: str,
    challenger_dir: Path,
    test: Path,
    production: Path,
    production_labels: Path,
    additions: Path | None = None,
    trained_on: tuple[Path, ...] = (),
    time_rounds: int = 0,
) -> SameRows | str:
    """Score the package at `rev` and the one in `challenger_dir` on the same rows: the test
    split of this change, and the labelled production batch where there is one, less the rows
    the challenger was trained or early-stopped on (`trained_on`: its train and valid splits;
    after `tabml append`, production rows are part of the development data). Returns the
    reason as text when the champion's package cannot be had."""
    from tabml.adapters.dvc_adapter import get_output

    challenger = pkg.load(root / challenger_dir)
    with tempfile.TemporaryDirectory(prefix="tabml-champion-") as tmp:
        dest = Path(tmp) / "package"
        try:
            get_output(root, rev, challenger_dir.as_posix(), dest)
            champion = pkg.load(dest)
        except TabmlError as err:
            return str(err)
        info(f"compare: champion {label} against this change, on the same rows")
        out = SameRows(champion=label)
        frame = io.read_parquet(test)
        held = ""
        if additions is not None and additions.is_file():
            added = set(io.read_parquet(additions)[challenger.schema.id])
            n = int(frame[challenger.schema.id].isin(added).sum())
            held = f"; {n:,} of them are labelled production rows added by `tabml append`"
        try:
            out.results["test"] = score_both(champion, challenger, frame, str(test))
            out.rows["test"] = f"this change's test split ({len(frame):,} rows{held})"
            prod = labelled_production(production, production_labels, challenger.schema)
            if prod is not None and len(prod):
                used: set[Any] = set()
                for split in trained_on:
                    if split.is_file():
                        used |= set(io.read_parquet(split)[challenger.schema.id])
                seen = prod[challenger.schema.id].isin(used)
                prod = prod[~seen].reset_index(drop=True)
                left_out = (
                    f"; {int(seen.sum()):,} rows left out: this change trained on them"
                    if seen.any()
                    else "; none of them used for training"
                )
                if len(prod) and prod[challenger.schema.target.column].nunique() == 2:
                    out.results["production"] = score_both(
                        champion, challenger, prod, str(production)
                    )
                    out.rows["production"] = (
                        f"the labelled production batch ({len(prod):,} rows{left_out})"
                    )
            if time_rounds:
                timed = paired_latency(champion, challenger, frame, time_rounds)
                out = dataclasses.replace(out, latency=timed)
        except (TabmlError, ValueError) as err:
            return f"the champion cannot score this change's rows: {err}"
        return out


def paired_latency(champion: pkg.Package, challenger: pkg.Package, frame: Any, rounds: int) -> Any:
    """Both packages' one-record response time through the serving path, on the same records,
    in `rounds` interleaved rounds in this process (tabml.reporting.latency)."""
    from tabml.reporting import latency
    from tabml.service.serving import Scorer

    schema = challenger.schema
    records = latency.records_of(frame, [schema.id, *schema.features], 1_000)
    info(f"compare: timing both packages, {rounds} interleaved rounds of one-record requests")
    single, _ = latency.interleaved(
        [Scorer(champion).score, Scorer(challenger).score], records, rounds
    )
    return latency.ratio(single[0], single[1])
