"""The right to erasure: who was erased (the ledger), and which rows and files hold them.

The ledger is a text file of keyed hashes: HMAC-SHA256 under `TABML_PII_KEY`, the same function
that pseudonymises personal data. It never holds an id or a personal value itself, so it can
live in git beside the code, and every later revision carries it. Its lines:

- `key:<hex>`: the key's fingerprint (a keyed hash of a constant). A run under another key
  would compute other hashes and quietly let the erased back in: it is refused instead.
- `<hex>`: one erased data subject's id, as a keyed hash (every id removed, linked ones too).
- `value:<hex>`: a personal value of an erased subject (an email, a phone), as a keyed hash, so
  that a later `--purge` finds the rows it linked even after they are gone from the files.
- `object:<md5>`: a stored object (a DVC cache entry, named by its content's MD5) that held an
  erased subject before `forget` rewrote the file: a later `--purge` deletes it by name.

`ingest` drops the rows of every subject in it, from every source, so that no rebuild brings
them back, even from a source that still holds them (a re-delivered extract, a bundled file).
`tabml forget` (stages/forget.py) appends to it, removes the rows from the files the team
controls and, with --purge, deletes every stored object that still holds them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabml.core import io
from tabml.core.errors import ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd

HEADER = (
    "# tabml erasure ledger: keyed hashes (HMAC-SHA256 under TABML_PII_KEY), never an id or a\n"
    "# value. 'key:' the key's fingerprint; a bare hash an erased id; 'value:' a personal value\n"
    "# of theirs; 'object:' a stored object that held them. 'tabml forget' appends; ingest\n"
    "# drops these subjects' rows.\n"
)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_MD5 = re.compile(r"^[0-9a-f]{32}$")
# what the key's fingerprint is the keyed hash of
_FINGERPRINT_OF = b"tabml erasure ledger key check"
# an id as a person types it: no control characters, not empty, not a page long
MAX_ID_CHARS = 256


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


def fingerprint(key: bytes) -> str:
    """What identifies a key without revealing it: its keyed hash of a fixed constant."""
    return hmac.new(key, _FINGERPRINT_OF, hashlib.sha256).hexdigest()


def check_id(value: str) -> str:
    """An id given to `forget`, stripped; a DataError for one that cannot be an id."""
    text = value.strip()
    if not text:
        raise DataError("an empty id was given: every id must have at least one character")
    if len(text) > MAX_ID_CHARS:
        raise DataError(f"an id of {len(text):,} characters was given (at most {MAX_ID_CHARS})")
    bad = [c for c in text if not c.isprintable()]
    if bad:
        raise DataError(
            f"id {text[:40].encode('unicode_escape').decode()!r} holds a control character "
            f"({bad[0].encode('unicode_escape').decode()}): check the file of ids"
        )
    return text


@dataclass(frozen=True)
class Ledger:
    """What the ledger holds (see the module's docstring)."""

    ids: frozenset[str] = frozenset()
    values: frozenset[str] = frozenset()
    objects: frozenset[str] = frozenset()
    key: str | None = None  # the fingerprint of the key its hashes were made with

    def check_key(self, key: bytes, path: Path | None) -> None:
        """Refuse a key other than the one the ledger's hashes were made with."""
        if self.key is not None and fingerprint(key) != self.key:
            raise ConfigError(
                f"{path}: the erasure ledger was written under another TABML_PII_KEY: with this "
                "one its entries match nobody, and erased subjects would come back. Set the key "
                "the ledger was made with (to rotate keys, see docs/privacy.md)"
            )

    def lines(self) -> str:
        out = [f"key:{self.key}\n"] if self.key else []
        out += [f"{e}\n" for e in sorted(self.ids)]
        out += [f"value:{e}\n" for e in sorted(self.values)]
        out += [f"object:{e}\n" for e in sorted(self.objects)]
        return HEADER + "".join(out)


def load(path: Path | None) -> Ledger:
    """The whole ledger; an absent file is an empty ledger. A line that is not a keyed hash is
    an error that names it (by number: it could be an id written in clear)."""
    if path is None or not path.is_file():
        return Ledger()
    ids: set[str] = set()
    values: set[str] = set()
    objects: set[str] = set()
    keys: set[str] = set()
    bad: list[int] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        kind, _, rest = line.rpartition(":")
        target = {"": ids, "value": values, "object": objects, "key": keys}.get(kind)
        pattern = _MD5 if kind == "object" else _HEX64
        if target is None or not pattern.match(rest):
            bad.append(number)
            continue
        target.add(rest)
    if bad:
        raise DataError(
            f"{path}: {len(bad)} line(s) are not keyed hashes (line(s) {bad[:5]}): the ledger "
            "holds hashes only; restore it from git"
        )
    if len(keys) > 1:
        raise DataError(f"{path}: {len(keys)} key fingerprints: the ledger mixes two keys")
    return Ledger(frozenset(ids), frozenset(values), frozenset(objects), next(iter(keys), None))


def read(path: Path | None) -> frozenset[str]:
    """The erased ids' keyed hashes (what ingest applies)."""
    return load(path).ids


def append(
    path: Path,
    entries: Iterable[str],
    values: Iterable[str] = (),
    objects: Iterable[str] = (),
    key: bytes | None = None,
) -> int:
    """Add id hashes (and values' hashes, objects, the key's fingerprint); returns how many ids
    were new. Sorted, each once, written atomically. Every entry is checked first: nothing that
    is not a keyed hash is ever written."""
    old = load(path)
    if key is not None:
        old.check_key(key, path)
    ids, vals, objs = set(entries), set(values), set(objects)
    wrong = [e for e in ids | vals if not _HEX64.match(e)] + [o for o in objs if not _MD5.match(o)]
    if wrong:  # a raw id must never reach the file, whatever its shape
        raise ValueError(f"{len(wrong)} ledger entries are not keyed hashes")
    new = Ledger(
        old.ids | ids,
        old.values | vals,
        old.objects | objs,
        old.key or (fingerprint(key) if key is not None else None),
    )
    if new != old or not path.is_file():
        io.write_text(path, new.lines())
    return len(ids - old.ids)


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
    """What identifies the subjects being erased: their ids and personal values as keyed hashes
    (from the ledger and from the rows found), and in clear where this run saw them."""

    key: bytes
    ids: set[str] = field(default_factory=set)  # keyed hashes of ids
    values: set[str] = field(default_factory=set)  # keyed hashes of personal values
    raw: set[str] = field(default_factory=set)  # personal values in clear (this run only)

    @classmethod
    def of(cls, ledger: Ledger, key: bytes, ids: Iterable[str] = ()) -> Subjects:
        return cls(key, set(ledger.ids) | {entry(i, key) for i in ids}, set(ledger.values))

    def _known(self, column: pd.Series, hashes: set[str], raw: set[str]) -> pd.Series:
        """Rows whose value is a known hash, or hashes to one, or is a known value in clear;
        each distinct value is hashed once."""
        import pandas as pd

        values = column.astype("object")
        present = values[values.notna()]
        if present.empty:
            return pd.Series(False, index=column.index)
        texts = {v: canonical(v) for v in present.unique()}
        hits = {
            v for v, t in texts.items() if t in hashes or t in raw or entry(t, self.key) in hashes
        }
        return values.map(lambda v: v in hits if v is not None else False).astype(bool)

    def match_frame(self, frame: pd.DataFrame, id_column: str | None) -> pd.Series:
        """Rows of `frame` that hold a subject: its id in the id column, or one of its personal
        values in any text column."""
        import pandas as pd

        hit = pd.Series(False, index=frame.index)
        for name in frame.columns:
            column = frame[name]
            if name == id_column:
                hit |= self._known(column, self.ids, set())
            elif column.dtype == object or pd.api.types.is_string_dtype(column):
                hit |= self._known(column, self.values, self.raw)
        return hit.astype(bool)

    def learn(
        self,
        rows: pd.DataFrame,
        id_column: str | None,
        personal: list[str],
        hashed_ids: bool = False,
    ) -> bool:
        """Take the ids and personal values of `rows` (rows of the subjects); True when that
        taught anything new (another row may then be found by it). `hashed_ids`: the rows
        come from a file whose ids are pseudonymised already (the service's logs of a dataset
        whose id is personal data)."""
        before = (len(self.ids), len(self.values))
        if id_column in rows:
            for v in rows[id_column].dropna():
                text = canonical(v)
                if text in self.ids:
                    continue
                self.ids.add(text if hashed_ids and _HEX64.match(text) else entry(text, self.key))
        for column in personal:
            if column in rows:
                for v in rows[column].dropna():
                    text = canonical(v)
                    if not text:
                        continue
                    if text in self.values:
                        continue
                    hashed = entry(text, self.key)
                    if hashed not in self.values:
                        self.values.add(hashed)
                        self.raw.add(text)
        return (len(self.ids), len(self.values)) != before

    def in_bytes(self, data: bytes) -> bool:
        """For files that are not tables: a personal value in clear, or a keyed hash, as text.
        Short ids are not searched as bytes (17 is in every file); a table finds them by
        column."""
        needles = {v for v in self.values | self.ids | self.raw if len(v) >= 12}
        return any(n.encode("utf-8") in data for n in needles)
