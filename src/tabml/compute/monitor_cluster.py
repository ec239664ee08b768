"""Monitor on a Dask cluster (`compute=dask`): the batch is scored and its chunks monitored on
the workers, so a batch need not fit in this process's memory. The summary, metrics, charts
and report are the same bytes as compute=local, for any worker count.

1. **Pieces.** Each worker reads a piece of the batch (a row range of a Parquet file, or a
   whole CSV file), types and checks it (`schema.check_batch`), scores it and prepares it as
   monitoring reads it (`prepare_piece`). The piece stays in the worker's memory. Only its
   checks, ids and time stamps come back.
2. **Plan.** Here, the checks are merged in file order (the same refusal as a batch read
   whole) and the rows are put in time order from their keys alone (timestamp, then id, then
   position: what compute=local sorts by). The chunks are planned on that order
   (`nannyml_adapter.plan_chunks`), and consecutive chunks grouped into parts: about two a
   worker, of at most `PART_ROWS` rows (a longer chunk is a part alone). How the chunks are
   grouped changes no result: each chunk is measured against the reference alone.
3. **Parts.** Each piece deals its rows to the parts (`deal_piece`); each part's task puts its
   rows in time order and runs the calculators fitted here, once, on the reference
   (`monitor_part`). Only the per-chunk values come back.
4. **Join.** Here, each calculator's parts are joined in chunk order (`nannyml_adapter.join`)
   into the results compute=local has.

The cluster holds the prepared batch about twice while the pieces are dealt. A task whose
worker dies runs again elsewhere (tasks only read), so a lost worker costs time, not the run.
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabml.compute.distributed import (
    RowRange,
    _gather,
    client,
    file_ranges,
    for_workers,
    local_file,
    read_range,
    shared,
    workers,
)
from tabml.core.config import DaskCompute, SchemaConfig
from tabml.core.io import release_unused
from tabml.core.log import info

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from tabml.adapters.nannyml_adapter import Fitted, PlannedChunk, Spec
    from tabml.core.schema import CheckedBatch
    from tabml.learning.model import Model

# rows a worker reads and scores in one task
PIECE_ROWS = 250_000
# rows of consecutive chunks one task monitors (a chunk is never split: a part holds at least
# one)
PART_ROWS = 500_000
# the column that carries a row's place in the batch's time order from the pieces to the parts
_POSITION = "__tabml_position"


@dataclass(frozen=True)
class Piece:
    """A piece of the batch: rows `span` of a Parquet file, or a whole file (`span` None)."""

    path: str
    span: RowRange | None


@dataclass(frozen=True)
class Scoring:
    """What every piece needs: sent to each worker once."""

    schema: SchemaConfig
    model: Model
    labels: pd.DataFrame | None
    threshold: float
    open_vocabularies: dict[str, list[str]]


@dataclass(frozen=True)
class Prepared:
    """A piece scored and prepared on its worker (`frame` None when its checks failed)."""

    frame: pd.DataFrame | None
    checked: CheckedBatch
    received: int


@dataclass(frozen=True)
class Report:
    """What comes back of a piece: its checks (typed frame cut to the id and timestamp), how
    many rows took the received time, and how many have a label."""

    checked: CheckedBatch
    received: int
    labelled: int


@dataclass(frozen=True)
class Monitored:
    """The batch monitored on the cluster: each calculator's joined result, and the counts."""

    fitted: Fitted
    results: dict[str, Any]
    rows: int
    labelled: int
    received: int


def pieces(files: list[Path], there: list[str]) -> list[Piece]:
    """The batch's pieces, in `read_batch`'s row order: Parquet files a row range at a time,
    other files whole. A Parquet file with no rows is one piece, so its columns are checked.
    `there` is each file as the workers open it (`for_workers`)."""
    out = []
    for file, path in zip(files, there, strict=True):
        parquet = file.suffix.lower() in (".parquet", ".pq")
        spans = file_ranges(str(file), PIECE_ROWS) if parquet else []
        out += [Piece(path, span) for span in spans] or [Piece(path, None)]
    return out


# --- on the workers -----------------------------------------------------------------------------


def prepare_piece(piece: Piece, scoring: Scoring) -> Prepared:
    """Read, type, check, score and prepare one piece (on a worker)."""
    from tabml.core import io
    from tabml.core.schema import check_batch
    from tabml.monitoring import monitor as mon
    from tabml.service.predlog import with_received_time

    schema = scoring.schema
    if piece.span is None:
        with local_file(piece.path) as path:
            raw = io.read_table(Path(path), allow_empty=True)
    else:
        raw = read_range(piece.path, piece.span)
    raw, received = with_received_time(raw, schema.timestamp)
    checked = check_batch(raw, schema, "production")
    typed = checked.coerced.frame
    keys = [c for c in mon.time_keys(schema) if c in typed.columns]
    light = replace(checked, coerced=replace(checked.coerced, frame=typed[keys]))
    if checked.coerced.failures:
        return Prepared(None, light, received)
    scores = scoring.model.predict(typed)
    rows = mon.analysis_rows(typed, scores, schema, scoring.labels)
    frame = mon.as_monitored(rows, scoring.threshold, scoring.open_vocabularies)
    return Prepared(frame, light, received)


def report(prepared: Prepared, schema: SchemaConfig) -> Report:
    """The piece's checks and counts, to send back (on a worker)."""
    from tabml.monitoring import monitor as mon

    frame = prepared.frame
    labelled = 0 if frame is None else mon.labelled_rows(frame, schema)
    return Report(prepared.checked, prepared.received, labelled)


def deal_piece(prepared: Prepared, positions: np.ndarray, bounds: np.ndarray) -> dict[int, Any]:
    """The piece's rows dealt to the parts (part p holds time positions bounds[p] up to
    bounds[p+1]), each with its time position (on a worker)."""
    import numpy as np

    assert prepared.frame is not None
    frame = prepared.frame.assign(**{_POSITION: positions})
    part = np.searchsorted(bounds, positions, side="right") - 1
    return {int(p): frame[part == p] for p in np.unique(part)}


def monitor_part(
    plan: list[PlannedChunk],
    rows: list[pd.DataFrame],
    fitted: Fitted,
    spec: Spec,
    known: dict[str, pd.Series],
) -> dict[str, Any]:
    """Each calculator's result on one part's chunks (on a worker): the rows in time order,
    the fitted calculators a fresh copy for this task (`calculate` changes them)."""
    import pandas as pd

    from tabml.adapters.nannyml_adapter import calculate, without_rows
    from tabml.monitoring import monitor as mon

    frame = pd.concat(rows).sort_values(_POSITION).drop(columns=_POSITION)
    out: dict[str, Any] = {}

    def keep(name: str, result: Any) -> None:
        out[name] = without_rows(result)

    drift = mon.blank_unseen(frame, known, spec.categorical)
    calculate(copy.deepcopy(fitted), plan, frame, drift, spec, keep)
    return out


# --- here ---------------------------------------------------------------------------------------


def parts_of(plan: list[PlannedChunk], part_rows: int) -> list[list[PlannedChunk]]:
    """Consecutive chunks grouped into parts of at most `part_rows` rows (a longer chunk is a
    part of its own)."""
    parts: list[list[PlannedChunk]] = []
    rows = 0
    for chunk in plan:
        size = chunk.end - chunk.start + 1
        if parts and rows + size <= part_rows:
            parts[-1].append(chunk)
            rows += size
        else:
            parts.append([chunk])
            rows = size
    return parts


def time_positions(keys: pd.DataFrame, schema: SchemaConfig) -> np.ndarray:
    """Each row's place in the batch's time order (a stable sort by the time keys: ties keep
    the batch's order), as compute=local orders the whole batch."""
    import numpy as np

    from tabml.monitoring import monitor as mon

    order = keys.sort_values(mon.time_keys(schema), kind="stable").index.to_numpy()
    positions = np.empty(len(order), dtype=np.int64)
    positions[order] = np.arange(len(order), dtype=np.int64)
    return positions


def monitor_on_cluster(
    files: list[Path],
    input_name: str,
    scoring: Scoring,
    reference: pd.DataFrame,
    spec: Spec,
    fit: Callable[[bool], Fitted],
    compute: DaskCompute,
) -> Monitored | None:
    """Monitor the batch in `files` on the cluster; None when it has no rows (the caller
    reports that as compute=local does). `fit(labelled)` fits the calculators on the
    reference here, once the batch's labels are counted (and may refuse them);
    `input_name` names the batch in a refusal."""
    import numpy as np
    import pandas as pd

    from tabml.adapters.nannyml_adapter import join, plan_chunks
    from tabml.core.schema import BatchChecks, Coerced
    from tabml.monitoring import monitor as mon

    schema = scoring.schema
    with (
        for_workers("monitor", [str(f) for f in files]) as there,
        client(compute, "monitor") as dask_client,
    ):
        todo = pieces(files, there)
        info(
            f"monitor: scoring {len(todo)} piece(s) of the batch on {len(workers(dask_client))} "
            "worker(s)"
        )
        prepared = dask_client.map(
            prepare_piece, todo, scoring=shared(dask_client, scoring), pure=False
        )
        reports = _gather(
            dask_client,
            dask_client.map(report, prepared, schema=schema, pure=False),
            "monitor: scoring the batch on the cluster",
        )
        # the same checks, merged in file order, as a batch read whole
        checks = BatchChecks(schema, "production")
        keys = pd.concat([checks.take(r.checked) for r in reports], ignore_index=True)
        Coerced(keys, checks.finish(), checks.unseen(), dict(checks.out_of_range)).raise_if_failed(
            input_name
        )
        # from here on, this process holds a time position a row (and the plan's time stamps)
        sizes = [len(r.checked.coerced.frame) for r in reports]
        labelled = sum(r.labelled for r in reports)
        received = sum(r.received for r in reports)
        rows = len(keys)
        del reports, checks
        release_unused()
        if not rows:
            return None
        fitted = fit(labelled > 0)
        positions = time_positions(keys, schema)
        stamps = None
        if schema.timestamp:
            stamps = pd.Series(keys[schema.timestamp].to_numpy()[np.argsort(positions)])
        del keys
        release_unused()
        plan = plan_chunks(reference, spec, rows, stamps)
        del stamps
        # about two parts a worker, for balance (the results do not depend on the cut)
        per_part = -(-rows // (2 * len(workers(dask_client))))
        parts = parts_of(plan, min(PART_ROWS, per_part))
        bounds = np.array([p[0].start for p in parts], dtype=np.int64)
        info(
            f"monitor: {rows:,} rows in {len(plan)} chunks; monitoring them on the "
            f"cluster in {len(parts)} part(s)"
        )
        shared_fit = shared(dask_client, fitted)
        known = mon.known_values(reference, spec.categorical)
        # each piece's rows dealt to the parts they fall in; a part gathers its rows
        part_rows: list[list[Any]] = [[] for _ in parts]
        start = 0
        for future, n in zip(prepared, sizes, strict=True):
            if not n:
                continue
            mine = positions[start : start + n]
            start += n
            dealt = dask_client.submit(deal_piece, future, mine, bounds, pure=False)
            for p in np.unique(np.searchsorted(bounds, mine, side="right") - 1):
                part_rows[p].append(dask_client.submit(operator.getitem, dealt, int(p)))
        del prepared
        monitored = [
            dask_client.submit(monitor_part, part, its_rows, shared_fit, spec, known, pure=False)
            for part, its_rows in zip(parts, part_rows, strict=True)
        ]
        results = _gather(dask_client, monitored, "monitor: monitoring chunks on the cluster")
    joined = {name: join([r[name] for r in results]) for name in fitted.calculators}
    return Monitored(fitted, joined, rows, labelled, received)
