"""forget: erase data subjects (`tabml forget --id X` / `--ids FILE`).

1. Finds their rows in every file the team controls: the dataset's own sources under
   data/external (development, production, labels, and `additions`, what `tabml append`
   collected), the prediction logs and the labels. A subject is found by its id, and then by
   its personal values (an email on another row is the same person).
2. Rewrites each of those files without the rows; DVC-tracked ones are `dvc add`-ed again.
3. Appends the subjects' keyed hashes (every linked id and personal value, the objects the
   files were before, the key's fingerprint) to the erasure ledger, which ingest applies: no rebuild
   brings the rows back, even from a source that still holds them (a bundled file, a
   re-delivered extract).
   Before any file changes, the ledger and a journal (`ledger.txt.pending`) are written: a
   run killed at any point is finished by running `tabml forget` again.
4. Rebuilds (`dvc repro`), so every output is computed without them.
5. With `purge`: pushes the new state, then deletes every object in the DVC cache and on the
   remote that still holds a subject, and names the commits that can no longer be checked out
   whole because of it; and every copy a killed cluster run left in $TABML_CLUSTER_STORAGE.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tabml.compute import distributed
from tabml.core import io
from tabml.core.config import DatasetParams, SchemaConfig, SourcesConfig
from tabml.core.errors import DataError
from tabml.core.log import info
from tabml.data import datasets
from tabml.governance import erasure, privacy

PARAMS = DatasetParams.param_keys()
TABLES = (".csv", ".parquet", ".pq")


@dataclass
class Outcome:
    removed: dict[str, int] = field(default_factory=dict)  # file -> rows removed
    ledger_added: int = 0
    purged_local: int = 0
    purged_remote: int = 0
    purged_cluster_copies: int = 0  # folders a killed run left in $TABML_CLUSTER_STORAGE
    broken_commits: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)  # given ids that matched no row
    resumed: bool = False  # this run finished an interrupted one


def read_ids(path: Path) -> list[str]:
    """The ids in a file, one per line ('#' starts a comment), decoded as the CSV reader
    decodes: UTF-8 (a byte-order mark is dropped), and an error naming the byte otherwise."""
    if not path.is_file():
        raise DataError(f"{path}: no such file of ids")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DataError(
            f"{path}: line {line}: byte {data[err.start]:#04x} is not UTF-8; save the file as "
            "UTF-8 (as the data files are read)"
        ) from None
    lines = (ln.strip() for ln in text.splitlines())
    return [ln for ln in lines if ln and not ln.startswith("#")]


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
    files: list[Path], schema: SchemaConfig, subjects: erasure.Subjects, logs: Path
) -> tuple[set[str], list[Path]]:
    """Grow `subjects` to a fixed point: values found on one row lead to other rows (and their
    ids and values), however many hops the links take. Returns the keyed hashes of the ids
    seen on the subjects' rows, and the files that hold a subject (from the last pass, which
    learnt nothing new: its matches are the final ones)."""
    personal = list(schema.pii)
    hashed_ids = schema.pii.get(schema.id) == "pseudonymise" if schema.id else False
    seen: set[str] = set()
    holding: list[Path] = []
    changed = True
    while changed:
        changed = False
        holding = []
        for path in files:
            frame = _frame(_read(path))
            hit = subjects.match_frame(frame, schema.id)
            if not hit.any():
                continue
            holding.append(path)
            rows = frame[hit]
            in_logs = hashed_ids and logs in path.parents
            changed |= subjects.learn(rows, schema.id, personal, hashed_ids=in_logs)
            if schema.id in rows:
                seen |= {
                    erasure.canonical(v) if in_logs else erasure.entry(v, subjects.key)
                    for v in rows[schema.id].dropna()
                }
    return seen, holding


def _journal(ledger: Path) -> Path:
    """Beside the ledger while an erasure is under way: a rerun finishes what it started."""
    return ledger.with_name(ledger.name + ".pending")


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
    """Erase `ids` (and every subject already in the ledger) everywhere; safe to run again
    after a crash or kill at any point: the ledger and a journal are written before any file
    changes, and a rerun completes the rewrite, `dvc add`, rebuild and purge."""
    import hashlib
    import json

    from tabml.adapters import dvc_adapter

    ids = [erasure.check_id(i) for i in ids]
    journal = _journal(ledger)
    pending: dict[str, Any] = {}
    if journal.is_file():
        pending = json.loads(journal.read_text(encoding="utf-8"))
        info(f"forget: {journal}: finishing the erasure an interrupted run started")
    if not ids and not pending:
        raise DataError("no ids given: --id ID (repeatable) or --ids FILE, one id per line")
    purge = purge or bool(pending.get("purge"))
    rebuild = rebuild or bool(pending.get("rebuild"))
    params = DatasetParams.load(params_file)
    sources, schema = params.sources, params.dataset_schema
    # the ledger holds keyed hashes, never ids: the key is needed whatever the dataset does
    key = privacy.require_key(os.environ, "the erasure ledger holds keyed hashes of ids")
    book = erasure.load(ledger)  # a damaged ledger fails before anything is changed
    book.check_key(key, ledger)
    if purge:  # a remote that cannot be read fails now, not half-way
        dvc_adapter.check_remote(root, remote)

    files = _controlled(sources, sources_dir, logs, labels)
    info(f"forget: looking for {len(ids)} subject(s) in {len(files)} file(s)")
    subjects = erasure.Subjects.of(book, key, ids)
    subjects.ids |= set(pending.get("ids", []))
    seen, holding = find_subjects(files, schema, subjects, logs)
    out = Outcome(unmatched=[i for i in ids if erasure.entry(i, key) not in seen])
    objects = {hashlib.md5(p.read_bytes(), usedforsecurity=False).hexdigest() for p in holding}
    # first the journal and the ledger: a run killed after this point is finished by a rerun,
    # and no rebuild in between brings anyone back
    io.write_text(
        journal,
        json.dumps({"ids": sorted(subjects.ids), "purge": purge, "rebuild": rebuild}) + "\n",
    )
    out.ledger_added = erasure.append(ledger, subjects.ids, subjects.values, objects, key)
    info(f"forget: {ledger}: {out.ledger_added} new entr{'y' if out.ledger_added == 1 else 'ies'}")
    for path in holding:
        table = _read(path)
        hit = subjects.match_frame(_frame(table), schema.id)
        _write(path, table, ~hit)
        out.removed[str(path)] = int(hit.sum())
        info(f"forget: {path}: removed {int(hit.sum()):,} row(s)")
    # every tracked file a previous, interrupted run may have rewritten is added too
    for path in dvc_adapter.tracked_roots(root, files if pending else holding):
        dvc_adapter.add(path)
    if rebuild or purge:
        info("forget: dvc repro (every output without the erased rows)")
        dvc_adapter.repro(root, pull=False)
    if purge:
        book = erasure.load(ledger)
        purged = dvc_adapter.purge(root, subjects, schema.id, remote, book.objects)
        out.purged_local, out.purged_remote = purged.local, purged.remote
        out.broken_commits = purged.commits
        out.purged_cluster_copies = distributed.remove_copies()
    journal.unlink()
    out.resumed = bool(pending)
    return out
