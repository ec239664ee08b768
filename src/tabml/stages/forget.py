"""forget: erase data subjects (`tabml forget --id X` / `--ids FILE`).

1. Finds their rows in every file the team controls: the dataset's own sources under
   data/external (development, production, labels, and `additions`, what `tabml append`
   collected), the prediction logs and the labels. A subject is found by its id, and then by
   its personal values (an email on another row is the same person).
2. Rewrites each of those files without the rows; DVC-tracked ones are `dvc add`-ed again.
3. Appends the subjects' keyed hashes to the erasure ledger, which ingest applies: no rebuild
   brings the rows back, even from a source that still holds them (a bundled file, a
   re-delivered extract).
4. Rebuilds (`dvc repro`), so every output is computed without them.
5. With `purge`: pushes the new state, then deletes every object in the DVC cache and on the
   remote that still holds a subject, and names the commits that can no longer be checked out
   whole because of it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tabml import datasets, erasure, io, privacy
from tabml.config import DatasetParams, SchemaConfig, SourcesConfig
from tabml.errors import DataError
from tabml.log import info

PARAMS = DatasetParams.param_keys()
TABLES = (".csv", ".parquet", ".pq")


@dataclass
class Outcome:
    removed: dict[str, int] = field(default_factory=dict)  # file -> rows removed
    ledger_added: int = 0
    purged_local: int = 0
    purged_remote: int = 0
    broken_commits: list[str] = field(default_factory=list)


def _controlled(sources: SourcesConfig, sources_dir: Path, logs: Path, labels: Path) -> list[Path]:
    """The files erasure rewrites: the team's own sources, logs and labels (not bundled sets,
    which the ledger covers at ingest)."""
    files: list[Path] = []
    for ref in (sources.development, sources.production, sources.production_labels):
        if ref and not datasets.is_bundled(ref):
            files.append(datasets.resolve(ref, sources_dir))
    if sources.additions:
        files.append(sources_dir / sources.additions)
    for folder in (logs, labels):
        if folder.is_dir():
            files += sorted(
                p for p in folder.rglob("*")
                if p.is_file() and p.suffix.lower() in TABLES and not p.name.startswith(".")
            )  # fmt: skip
        elif folder.is_file():
            files.append(folder)
    return [f for f in files if f.is_file()]


def _read(path: Path) -> Any:
    """A table with every value as it is stored: CSV as text (so that rewriting it changes no
    other row), Parquet as Arrow."""
    import pandas as pd

    if path.suffix.lower() == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    import pyarrow.parquet as pq

    return pq.read_table(path)


def _frame(table: Any) -> Any:
    return table if hasattr(table, "iloc") else table.to_pandas()


def _write(path: Path, table: Any, keep: Any) -> None:
    if path.suffix.lower() == ".csv":
        with io.atomic_path(path) as tmp:
            table[keep.to_numpy()].to_csv(tmp, index=False)
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    with io.atomic_path(path) as tmp:
        pq.write_table(table.filter(pa.array(keep.to_numpy())), tmp)


def find_subjects(
    files: list[Path], schema: SchemaConfig, ids: list[str], key: bytes
) -> erasure.Subjects:
    """The subjects' ids and personal values, in every form the files may hold them."""
    subjects = erasure.Subjects(
        ids={erasure.canonical(i) for i in ids} | {erasure.entry(i, key) for i in ids}
    )
    personal = list(schema.pii)
    for _ in range(2):  # values found on one row can lead to another row (and its id)
        for path in files:
            frame = _frame(_read(path))
            hit = subjects.match_frame(frame, schema.id)
            if not hit.any():
                continue
            rows = frame[hit]
            if schema.id in rows:
                for v in rows[schema.id].dropna():
                    subjects.ids |= {erasure.canonical(v), erasure.entry(v, key)}
            for column in personal:
                if column in rows:
                    for v in rows[column].dropna():
                        text = erasure.canonical(v)
                        if text:
                            subjects.values |= {text, erasure.entry(text, key)}
    return subjects


def run(
    root: Path,
    params_file: Path,
    ids: list[str],
    ledger: Path,
    sources_dir: Path,
    logs: Path,
    labels: Path,
    rebuild: bool,
    purge: bool,
    remote: str | None,
) -> Outcome:
    from tabml import dvc_adapter

    if not ids:
        raise DataError("no ids given: --id ID (repeatable) or --ids FILE, one id per line")
    params = DatasetParams.load(params_file)
    sources, schema = params.sources, params.dataset_schema
    # the ledger holds keyed hashes, never ids: the key is needed whatever the dataset does
    key = privacy.require_key(os.environ, "the erasure ledger holds keyed hashes of ids")
    erasure.read(ledger)  # a damaged ledger fails before anything is changed

    files = _controlled(sources, sources_dir, logs, labels)
    info(f"forget: looking for {len(ids)} subject(s) in {len(files)} file(s)")
    subjects = find_subjects(files, schema, ids, key)
    out = Outcome()
    tracked = []
    for path in files:
        table = _read(path)
        frame = _frame(table)
        hit = subjects.match_frame(frame, schema.id)
        if hit.any():
            _write(path, table, ~hit)
            out.removed[str(path)] = int(hit.sum())
            info(f"forget: {path}: removed {int(hit.sum()):,} row(s)")
            tracked.append(path)
    entries = {e for e in subjects.ids if len(e) == 64}
    out.ledger_added = erasure.append(ledger, entries)
    info(f"forget: {ledger}: {out.ledger_added} new entr{'y' if out.ledger_added == 1 else 'ies'}")
    for path in dvc_adapter.tracked_roots(root, tracked):
        dvc_adapter.add(path)
    if rebuild or purge:
        info("forget: dvc repro (every output without the erased rows)")
        dvc_adapter.repro(root, pull=False)
    if purge:
        purged = dvc_adapter.purge(root, subjects, schema.id, remote)
        out.purged_local, out.purged_remote = purged.local, purged.remote
        out.broken_commits = purged.commits
    return out
