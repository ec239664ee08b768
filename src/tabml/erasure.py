"""The right to erasure: who was erased (the ledger), and which rows and files hold them.

The ledger is a text file of keyed hashes, one per erased data subject: HMAC-SHA256 of the
subject's id under `TABML_PII_KEY`, the same function that pseudonymises personal data. It
never holds an id itself, so it can live in git beside the code, and every later revision
carries it. `ingest` drops the rows of every subject in it, from every source, so that no
rebuild brings them back, even from a source that still holds them (a re-delivered extract, a
bundled file). `tabml forget` (stages/forget.py) appends to it, removes the rows from the files
the team controls and, with --purge, deletes every stored object that still holds them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabml import io
from tabml.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

HEADER = (
    "# tabml erasure ledger: one line per erased data subject, the HMAC-SHA256 of its id under\n"
    "# TABML_PII_KEY (never the id). 'tabml forget' appends; ingest drops these subjects' rows.\n"
)


def canonical(value: Any) -> str:
    """An id as text, the same whichever way it was read: 17, 17.0 and "17" are all "17"."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "item"):  # NumPy scalars
        return canonical(value.item())
    return str(value)


def entry(value: Any, key: bytes) -> str:
    """The ledger's line for one id: the keyed hash `privacy.pseudonymise` would give it."""
    return hmac.new(key, canonical(value).encode("utf-8"), hashlib.sha256).hexdigest()


def read(path: Path | None) -> frozenset[str]:
    """The ledger's entries; an absent file is an empty ledger."""
    if path is None or not path.is_file():
        return frozenset()
    lines = path.read_text(encoding="utf-8").splitlines()
    entries = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    bad = [e for e in entries if len(e) != 64 or any(c not in "0123456789abcdef" for c in e)]
    if bad:
        raise DataError(
            f"{path}: {len(bad)} line(s) are not keyed hashes (64 hex digits), e.g. "
            f"{bad[0][:20]!r}: the ledger holds hashes only; restore it from git"
        )
    return frozenset(entries)


def append(path: Path, entries: Iterable[str]) -> int:
    """Add entries (sorted, each once); returns how many were new. Written atomically."""
    old = read(path)
    new = set(entries) - old
    if new or not path.is_file():
        lines = "".join(f"{e}\n" for e in sorted(old | new))
        io.write_text(path, HEADER + lines)
    return len(new)


def erased(ids: pd.Series, ledger: frozenset[str], key: bytes | None) -> pd.Series:
    """Which rows belong to an erased subject: a boolean Series, aligned with `ids`.

    An id matches when its keyed hash is in the ledger, or when it is itself an entry (ids that
    were pseudonymised already, as in the prediction logs of a dataset whose id is personal)."""
    import pandas as pd

    if not ledger:
        return pd.Series(False, index=ids.index)
    if key is None:
        raise DataError(
            "the erasure ledger is not empty, and its entries are keyed hashes: set "
            "TABML_PII_KEY (or TABML_PII_KEY_FILE) to the key they were made with"
        )
    values = ids.astype("object")
    present = values.notna()
    hashed = values[present].map(lambda v: entry(v, key))
    as_text = values[present].map(canonical)
    hit = hashed.isin(ledger) | as_text.isin(ledger)
    return hit.reindex(ids.index, fill_value=False).astype(bool)


@dataclass
class Subjects:
    """What identifies the subjects being erased, in every form a stored file may hold it."""

    ids: set[str] = field(default_factory=set)  # canonical ids, and their keyed hashes
    values: set[str] = field(default_factory=set)  # their personal values, raw and hashed

    def match_frame(self, frame: pd.DataFrame, id_column: str | None) -> pd.Series:
        """Rows of `frame` that hold a subject: its id in the id column, or one of its personal
        values in any text column."""
        import pandas as pd

        hit = pd.Series(False, index=frame.index)
        for name in frame.columns:
            column = frame[name]
            if name == id_column:
                hit |= column.map(lambda v: canonical(v) in self.ids if pd.notna(v) else False)
            elif column.dtype == object or pd.api.types.is_string_dtype(column):
                hit |= column.astype("object").isin(self.values)
        return hit.astype(bool)

    def in_bytes(self, data: bytes) -> bool:
        """For files that are not tables: a personal value, or a keyed hash, as text. Short
        ids are not searched as bytes (17 is in every file); a table finds them by column."""
        needles = {v for v in self.values | self.ids if len(v) >= 12}
        return any(n.encode("utf-8") in data for n in needles)
