"""Parquet files joined without decoding: the row groups of several files, each written on its
own with the same schema and writer settings, appended into one file.

A Parquet file is `PAR1`, its row groups' pages, then a footer (Thrift compact protocol) that
lists each row group with the byte offsets of its pages. A row group's pages do not depend on
where in the file they sit: only the footer holds offsets. So a file written by a single
writer one row group at a time is, byte for byte, the row groups of one-at-a-time files laid
end to end under a footer whose offsets are shifted (`Joiner`). That lets a Dask worker encode
and compress the row groups of its part of an output, and the stage only copy bytes
(docs/scale.md). `io.ParquetSink` writes through it too, so there is one writer.

Pure: bytes in, bytes out. The Thrift codec reads and writes only what pyarrow writes, and
re-encodes a footer it read to the same bytes (tests/unit/test_parquet_join.py); a footer
with what it cannot move (page indexes, bloom filters, encryption) is refused, never
silently copied wrong.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import IO, Any

MAGIC = b"PAR1"

# Thrift compact protocol types
_STOP, _TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(
    13
)
_INTS = (_I16, _I32, _I64)

# (field id, compact type, value): a struct keeps its fields in the order they were read, so it
# is written back to the same bytes
Field = tuple[int, int, Any]


@dataclass
class ThriftList:
    elem: int  # the element type as written (a bool list's type nibble kept as read)
    items: list[Any]


@dataclass
class ThriftMap:
    key: int
    value: int
    items: list[tuple[Any, Any]]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def byte(self) -> int:
        b = self.data[self.at]
        self.at += 1
        return b

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def value(self, kind: int) -> Any:
        if kind in (_TRUE, _FALSE):  # a bool inside a list or map: one byte
            return self.byte()
        if kind == _BYTE:
            return self.byte()
        if kind in _INTS:
            return self.zigzag()
        if kind == _DOUBLE:
            (v,) = struct.unpack_from("<d", self.data, self.at)
            self.at += 8
            return v
        if kind == _BINARY:
            n = self.varint()
            v = self.data[self.at : self.at + n]
            self.at += n
            return v
        if kind in (_LIST, _SET):
            head = self.byte()
            size, elem = head >> 4, head & 0x0F
            if size == 15:
                size = self.varint()
            return ThriftList(elem, [self.value(elem) for _ in range(size)])
        if kind == _MAP:
            size = self.varint()
            if not size:
                return ThriftMap(0, 0, [])
            types = self.byte()
            k, v = types >> 4, types & 0x0F
            return ThriftMap(k, v, [(self.value(k), self.value(v)) for _ in range(size)])
        if kind == _STRUCT:
            return self.struct()
        raise ValueError(f"Parquet footer: Thrift type {kind} is not one pyarrow writes")

    def struct(self) -> list[Field]:
        fields: list[Field] = []
        last = 0
        while True:
            head = self.byte()
            kind = head & 0x0F
            if kind == _STOP:
                return fields
            delta = head >> 4
            fid = last + delta if delta else self.zigzag()
            if kind in (_TRUE, _FALSE):
                fields.append((fid, kind, kind == _TRUE))
            else:
                fields.append((fid, kind, self.value(kind)))
            last = fid


class _Writer:
    def __init__(self) -> None:
        self.out = bytearray()

    def varint(self, n: int) -> None:
        while n > 0x7F:
            self.out.append((n & 0x7F) | 0x80)
            n >>= 7
        self.out.append(n)

    def zigzag(self, n: int) -> None:
        self.varint((n << 1) ^ (n >> 63))

    def value(self, kind: int, v: Any) -> None:
        if kind in (_TRUE, _FALSE, _BYTE):
            self.out.append(v)
        elif kind in _INTS:
            self.zigzag(v)
        elif kind == _DOUBLE:
            self.out += struct.pack("<d", v)
        elif kind == _BINARY:
            self.varint(len(v))
            self.out += v
        elif kind in (_LIST, _SET):
            size = len(v.items)
            if size < 15:
                self.out.append((size << 4) | v.elem)
            else:
                self.out.append(0xF0 | v.elem)
                self.varint(size)
            for item in v.items:
                self.value(v.elem, item)
        elif kind == _MAP:
            self.varint(len(v.items))
            if v.items:
                self.out.append((v.key << 4) | v.value)
                for k, item in v.items:
                    self.value(v.key, k)
                    self.value(v.value, item)
        elif kind == _STRUCT:
            self.struct(v)
        else:
            raise ValueError(f"Parquet footer: Thrift type {kind} is not one pyarrow writes")

    def struct(self, fields: list[Field]) -> None:
        last = 0
        for fid, kind, v in fields:
            if kind in (_TRUE, _FALSE):
                kind = _TRUE if v else _FALSE
            delta = fid - last
            if 0 < delta <= 15:
                self.out.append((delta << 4) | kind)
            else:
                self.out.append(kind)
                self.zigzag(fid)
            if kind not in (_TRUE, _FALSE):
                self.value(kind, v)
            last = fid
        self.out.append(_STOP)


def decode(data: bytes) -> list[Field]:
    """A Thrift compact struct (a Parquet footer), as (field id, type, value) in file order."""
    return _Reader(data).struct()


def encode(fields: list[Field]) -> bytes:
    w = _Writer()
    w.struct(fields)
    return bytes(w.out)


# Parquet's field ids (parquet.thrift)
_FILE_NUM_ROWS, _FILE_ROW_GROUPS = 3, 4
_RG_COLUMNS, _RG_FILE_OFFSET, _RG_ORDINAL = 1, 5, 7
_CC_FILE_OFFSET, _CC_META = 2, 3
# a column chunk's page index and encryption live outside its pages: not moved here
_CC_REFUSED = {4: "an offset index", 6: "a column index", 8: "encryption", 9: "encryption"}
_CM_TOTAL_COMPRESSED = 7
_CM_DATA_PAGE, _CM_INDEX_PAGE, _CM_DICT_PAGE, _CM_BLOOM = 9, 10, 11, 14
_CM_OFFSETS = (_CM_DATA_PAGE, _CM_INDEX_PAGE, _CM_DICT_PAGE)


def _get(fields: list[Field], fid: int, default: Any = None) -> Any:
    return next((v for f, _, v in fields if f == fid), default)


def _set(fields: list[Field], fid: int, kind: int, value: Any) -> list[Field]:
    """The struct with field `fid` set, in field order (added if absent)."""
    out = [f for f in fields if f[0] != fid] + [(fid, kind, value)]
    return sorted(out, key=lambda f: f[0])


@dataclass(frozen=True)
class Part:
    """One Parquet file taken apart: its row groups' bytes and its footer."""

    pages: memoryview  # a view of the file's bytes: no copy
    footer: list[Field]

    @property
    def rows(self) -> int:
        return int(_get(self.footer, _FILE_NUM_ROWS, 0))

    def groups(self) -> list[list[Field]]:
        groups = _get(self.footer, _FILE_ROW_GROUPS)
        return list(groups.items) if groups is not None else []

    def template(self) -> list[Field]:
        """The footer without its row groups and row count: what every file of the same
        schema and writer settings shares."""
        return [f for f in self.footer if f[0] not in (_FILE_NUM_ROWS, _FILE_ROW_GROUPS)]


def split(data: bytes | memoryview) -> Part:
    """A whole Parquet file (as bytes) taken apart; its row groups' pages must lie end to end
    from the magic to the footer, as pyarrow writes them without page indexes or bloom
    filters."""
    if len(data) < 12 or data[:4] != MAGIC or data[-4:] != MAGIC:
        raise ValueError("not a Parquet file (no PAR1 at both ends)")
    (size,) = struct.unpack("<I", data[-8:-4])
    start = len(data) - 8 - size
    part = Part(memoryview(data)[4:start], decode(bytes(data[start:-8])))
    at = 4
    for group in part.groups():
        for chunk in _get(group, _RG_COLUMNS).items:
            refused = [what for fid, what in _CC_REFUSED.items() if _get(chunk, fid) is not None]
            meta = _get(chunk, _CC_META)
            if meta is not None and _get(meta, _CM_BLOOM) is not None:
                refused.append("a bloom filter")
            if refused or meta is None:
                raise ValueError(
                    f"Parquet part: a column chunk has {', '.join(refused) or 'no metadata'}, "
                    "which joining cannot move"
                )
            first = min(v for f, _, v in meta if f in _CM_OFFSETS and v)
            if first != at:
                raise ValueError(f"Parquet part: a column chunk starts at {first}, not {at}")
            at += _get(meta, _CM_TOTAL_COMPRESSED)
    if at != start:
        raise ValueError(f"Parquet part: the pages end at {at}, the footer starts at {start}")
    return part


def _moved(group: list[Field], shift: int, ordinal: int) -> list[Field]:
    """A row group's footer entry with its byte offsets moved by `shift` and its ordinal set."""

    def chunk(fields: list[Field]) -> list[Field]:
        out = []
        for fid, kind, v in fields:
            if fid == _CC_FILE_OFFSET and v:
                v += shift
            elif fid == _CC_META:
                v = [(f, k, x + shift if f in _CM_OFFSETS and x else x) for f, k, x in v]
            out.append((fid, kind, v))
        return out

    out = []
    for fid, kind, v in group:
        if fid == _RG_COLUMNS:
            v = ThriftList(v.elem, [chunk(c) for c in v.items])
        elif fid == _RG_FILE_OFFSET and v:
            v += shift
        out.append((fid, kind, v))
    if _get(group, _RG_ORDINAL) is not None:
        out = _set(out, _RG_ORDINAL, _I16, ordinal)
    return out


class Joiner:
    """Row groups appended to one Parquet file: `add` each part (a whole Parquet file's bytes
    with this file's schema and writer settings), then `close`. The result is the file one
    writer would have written with the parts' row groups in the order added.

    `template`: the footer of a file of the same schema and settings with no rows (a writer
    closed with nothing written): a part whose footer differs from it in anything but its row
    groups has another schema, and is refused."""

    def __init__(self, out: IO[bytes], template: bytes | memoryview) -> None:
        self._out = out
        self._template = split(template).template()
        self._groups: list[list[Field]] = []
        self._rows = 0
        self._at = len(MAGIC)
        out.write(MAGIC)

    def add(self, data: bytes | memoryview) -> int:
        """Append a part's row groups; its row count."""
        part = split(data)
        if part.template() != self._template:
            raise ValueError("Parquet part: its schema or writer settings differ from the file's")
        shift = self._at - len(MAGIC)
        for group in part.groups():
            self._groups.append(_moved(group, shift, len(self._groups)))
        self._out.write(part.pages)
        self._at += len(part.pages)
        self._rows += part.rows
        return part.rows

    @property
    def rows(self) -> int:
        return self._rows

    def close(self) -> None:
        """Write the footer."""
        groups = ThriftList(_STRUCT, self._groups)
        fields = _set(self._template, _FILE_NUM_ROWS, _I64, self._rows)
        footer = encode(_set(fields, _FILE_ROW_GROUPS, _LIST, groups))
        self._out.write(footer + struct.pack("<I", len(footer)) + MAGIC)
