"""Reading input tables and writing every output atomically.

A stage writes each output to a temporary file in the destination folder and renames it into
place only once it is complete, so a crash or kill never leaves a half-written file that looks
valid (DVC does not roll back a failed stage).
"""

from __future__ import annotations

import contextlib
import functools
import glob
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabml.core.errors import DataError, WriteError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
# the rows the streaming stages (ingest, clean) hold in memory at a time
BATCH_ROWS = 1_000_000


def _remove_stale(path: Path) -> None:
    """Remove what a killed earlier write of `path` left: its hidden `.NAME.*.tmp` (and the
    `.NAME.old` of an interrupted folder swap). Only this output's own names are touched."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
    old = path.with_name(f".{path.name}.old")
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success, rename it onto `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        tmp.chmod(0o644)
        tmp.replace(path)
    except OSError as err:
        if not _about_writing(err, tmp):
            raise
        raise _cannot_write(path, err) from None
    finally:
        tmp.unlink(missing_ok=True)


def _about_writing(err: OSError, tmp: Path) -> bool:
    """Whether an error inside an atomic write is the output's own (a full or read-only disk,
    the temporary file itself), not an input's that the same block read."""
    import errno

    if isinstance(err, WriteError) or err.errno in (
        errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO
    ):  # fmt: skip
        return True
    if err.filename is not None:
        return str(err.filename).startswith(str(tmp))
    return "No space left" in str(err) or "Disk quota" in str(err)


def _cannot_write(path: Path, err: OSError) -> WriteError:
    """The error of an output that could not be written, naming it (a pyarrow or json write
    that fails on a full disk names no file)."""
    if isinstance(err, WriteError):
        return err
    why = err.strerror or str(err) or type(err).__name__
    return WriteError(f"{path}: cannot be written ({why}); nothing was replaced there")


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; on success, swap it in place of `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        tmp.chmod(0o755)
        old = path.with_name(f".{path.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if path.exists():
            path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as err:
        if not _about_writing(err, tmp):
            raise
        raise _cannot_write(path, err) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _real(path: Path) -> Path:
    """The path with every symlink and `..` resolved, as the system will open it."""
    return Path(os.path.realpath(path))


def _same_file(a: Path, b: Path) -> bool:
    if _real(a) == _real(b):
        return True
    try:  # hard links, bind mounts
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def _within(inner: Path, outer: Path) -> bool:
    inner, outer = _real(inner), _real(outer)
    return inner == outer or outer in inner.parents


def guard_outputs(
    inputs: list[Path | None],
    files: list[Path] | None = None,
    dirs: list[Path] | None = None,
) -> None:
    """Before any work: every output can be written, and none is, or holds, an input.

    A command never writes over its input: an output file that resolves to an input (through
    symlinks, `..` or a hard link) is refused, and so is an output folder that is, holds or
    lies inside an input. An output file must not be a folder, nor an output folder a file.
    """
    given = [i for i in inputs if i is not None]
    for out in files or []:
        if out.is_dir():
            raise DataError(f"{out}: is a folder; give the path of a file to write")
        for src in given:
            if _same_file(out, src) or (src.is_dir() and _within(out, src)):
                raise DataError(
                    f"{out}: this is the input {src}, or inside it; write the output elsewhere "
                    "(a command never writes over what it reads)"
                )
        _writable_parent(out)
    for out in dirs or []:
        if out.exists() and not out.is_dir():
            raise DataError(f"{out}: is a file; give a folder to write the outputs into")
        for src in given:
            if _within(src, out) or _within(out, src):
                raise DataError(
                    f"{out}: this folder is, holds or lies inside the input {src}; write the "
                    "outputs into a folder of their own (a command never writes over what it "
                    "reads)"
                )
        _writable_parent(out / "x")


def _writable_parent(path: Path) -> None:
    """The nearest existing folder above `path` is a folder we may write in."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise DataError(f"{path}: cannot be created: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DataError(f"{path}: no permission to write in {parent}")


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def to_json_text(data: Any, digits: int | None = 10) -> str:
    """Deterministic JSON: sorted keys, floats to `digits` significant digits (None: exact)."""
    clean = _round_floats(data, digits)
    return json.dumps(clean, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _round_floats(data: Any, digits: int | None) -> Any:
    if isinstance(data, float):
        if data != data:  # NaN is not JSON
            return None
        return float(f"{data:.{digits}g}") if digits else data
    if isinstance(data, dict):
        return {str(k): _round_floats(v, digits) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_round_floats(v, digits) for v in data]
    return data


def write_json(path: Path, data: Any, digits: int | None = 10) -> None:
    """Write deterministic JSON; reports round floats, model files keep them exact."""
    write_text(path, to_json_text(data, digits))


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: not found. Run the stage that writes it first.") from None


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    """Write a frame to Parquet deterministically (no pandas index, fixed compression)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    # drop pandas' metadata blob: it is not needed to read the file back
    table = table.replace_schema_metadata(None)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", write_statistics=True)


def read_parquet(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """A Parquet file written by a stage (only `columns` when given)."""
    import pandas as pd

    if not path.exists():
        raise DataError(f"{path}: not found. Run the stage that writes it first.")
    frame = pd.read_parquet(path, columns=columns)
    release_unused()  # the Arrow buffers it was read into
    return frame


def _checked_suffix(path: Path) -> str:
    """The file's type, after the checks every reader makes, with messages that say what to do."""
    if not path.exists():
        raise DataError(f"{path}: file not found. Check the path, or run 'dvc pull'.")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a .csv or .parquet file")
    if not os.access(path, os.R_OK):
        raise DataError(f"{path}: no permission to read it. Check its owner and mode (ls -l).")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty (0 bytes)")
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataError(
            f"{path}: unsupported file type '{suffix}'; use one of {', '.join(TABLE_SUFFIXES)}"
        )
    _check_header(path, suffix)
    return suffix


def _check_header(path: Path, suffix: str) -> None:
    """Refuse a header that names a column twice: pandas would read the second one as
    'NAME.1' and drop it without a word."""
    from collections import Counter

    if suffix == ".csv":
        import csv

        try:
            with path.open(encoding="utf-8", newline="") as fh:
                names = next(csv.reader(fh), [])
        except UnicodeDecodeError:
            return  # the reader reports where the bad byte is
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            names = pq.read_schema(path).names
        except (pa.ArrowInvalid, OSError):
            return  # the reader says the file is not Parquet
    twice = sorted(n for n, k in Counter(names).items() if k > 1)
    if twice:
        from tabml.core.schema import shorten

        raise DataError(
            f"{path}: the header names {len(twice)} column(s) more than once: "
            f"{[shorten(n) for n in twice[:10]]}. Each column needs its own name: fix the export."
        )


@contextlib.contextmanager
def _reading(path: Path, suffix: str) -> Iterator[None]:
    """Turn a reader's errors into messages that say what is wrong with the file."""
    import pandas as pd
    import pyarrow as pa

    try:
        yield
    except UnicodeDecodeError:
        # a chunked reader reports offsets within its chunk: find the byte in the file
        data = path.read_bytes()
        try:
            data.decode("utf-8")
            start = 0
        except UnicodeDecodeError as whole:
            start = whole.start
        line = data[:start].count(b"\n") + 1
        raise DataError(
            f"{path}: not valid UTF-8: byte 0x{data[start]:02x} at offset "
            f"{start} (line {line}). Re-export the file as UTF-8."
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file has no header and no rows") from None
    except pd.errors.ParserError as err:
        raise DataError(f"{path}: malformed CSV: {err}") from None
    except PermissionError:
        raise DataError(f"{path}: no permission to read it. Check its owner and mode.") from None
    except (pa.ArrowInvalid, OSError) as err:
        if suffix == ".csv":
            raise
        raise DataError(f"{path}: not a readable Parquet file: {err}") from None


def read_table(path: Path, allow_empty: bool = False) -> pd.DataFrame:
    """Read a user's CSV or Parquet file, with errors that say what to fix.

    A file with a header and no rows is an error unless `allow_empty`.
    """
    import pandas as pd

    suffix = _checked_suffix(path)
    with _reading(path, suffix):
        if suffix == ".csv":
            frame = pd.read_csv(path, encoding="utf-8", encoding_errors="strict")
        else:
            frame = pd.read_parquet(path)
    if len(frame) == 0 and not allow_empty:
        raise DataError(f"{path}: file has a header but no rows")
    return frame


def iter_table(
    path: Path, batch_rows: int, columns: list[str] | None = None
) -> Iterator[pd.DataFrame]:
    """`read_table` in frames of exactly `batch_rows` rows (the last one shorter; same checks
    and messages), only `columns` when given; a file with a header and no rows yields one
    empty frame. Parquet is read a page at a time, not a row group at a time (pyarrow's
    pre-buffering held about 4 times a batch's size)."""
    import pandas as pd

    suffix = _checked_suffix(path)
    with _reading(path, suffix):
        if suffix == ".csv":
            with pd.read_csv(
                path, encoding="utf-8", encoding_errors="strict", chunksize=batch_rows,
                usecols=columns,
            ) as reader:  # fmt: skip
                empty = True
                for chunk in reader:
                    empty = False
                    yield chunk
                if empty:  # a header and no rows
                    yield pd.read_csv(path, encoding="utf-8", nrows=0, usecols=columns)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=_READ_BUFFER)
            if parquet.metadata.num_rows == 0:
                empty_table = parquet.schema_arrow.empty_table()
                yield (empty_table.select(columns) if columns else empty_table).to_pandas()
                return
            for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
                yield pa.Table.from_batches([batch]).to_pandas()


# bytes pyarrow reads from a Parquet file at a time (iter_table)
_READ_BUFFER = 4 * 1024 * 1024
# rows a streaming stage holds at once: a quarter of a batch (BATCH_ROWS), whose row groups
# they still write (iter_grouped)
PIECE_ROWS = 250_000


def map_row_groups(
    path: Path, fn: Callable[[pd.DataFrame], Any], columns: list[str] | None = None
) -> list[Any]:
    """`fn` of each row group of a Parquet file in order (only `columns` when given): memory
    holds one row group, not the file."""
    import pyarrow.parquet as pq

    with _reading(path, ".parquet"):
        parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=_READ_BUFFER)
        return [
            fn(parquet.read_row_group(group, columns=columns).to_pandas())
            for group in range(parquet.num_row_groups)
        ]


def iter_row_groups(path: Path) -> Iterator[pd.DataFrame]:
    """Each row group of a Parquet file, in order; a file with none yields one empty frame
    with its columns."""
    import pyarrow.parquet as pq

    with _reading(path, ".parquet"):
        parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=_READ_BUFFER)
        if parquet.num_row_groups == 0:
            yield parquet.schema_arrow.empty_table().to_pandas()
        for group in range(parquet.num_row_groups):
            table = parquet.read_row_group(group)
            yield table.to_pandas()
            del table
            release_unused()


def row_group_sizes(path: Path) -> tuple[int, ...]:
    """The rows of each row group of a Parquet file, from its footer."""
    import pyarrow.parquet as pq

    with _reading(path, ".parquet"):
        meta = pq.ParquetFile(path).metadata
        return tuple(meta.row_group(g).num_rows for g in range(meta.num_row_groups))


def read_row_group(
    path: Path, group: int, columns: list[str], rows: np.ndarray | None = None
) -> pd.DataFrame:
    """One row group of a Parquet file (only `columns`; only the positions `rows` within
    it, when given)."""
    import pyarrow.parquet as pq

    with _reading(path, ".parquet"):
        parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=_READ_BUFFER)
        table = parquet.read_row_group(group, columns=columns)
        frame = (table if rows is None else table.take(rows)).to_pandas()
    del table
    release_unused()  # a block's Arrow buffers, which the next block would not reuse whole
    return frame


def release_unused() -> None:
    """Give back the memory pyarrow's pool keeps for reuse after its tables are gone (a whole
    column read for a statistic leaves hundreds of MiB resident): between the phases of a stage
    whose peak matters, so that the next phase's peak does not stand on it."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    _trim_malloc()


@functools.cache
def _libc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, where the C library has it (not musl, macOS or Windows)."""
    import ctypes

    try:
        linked = ctypes.CDLL(None)  # the symbols this process has loaded, the C library's too
    except (OSError, TypeError):  # Windows has no such handle
        return None
    return getattr(linked, "malloc_trim", None)


def _trim_malloc() -> None:
    """Hand the C heap's free pages back (numpy and LightGBM allocate there)."""
    trim = _libc_trim()
    if trim is not None:
        trim(0)


def rows_hint(path: Path) -> int:
    """A table file's rows when its footer says (Parquet), 0 when only reading it can (CSV);
    the same checks and messages as reading it."""
    return 0 if _checked_suffix(path) == ".csv" else parquet_rows(path)


def parquet_rows(path: Path) -> int:
    """The rows of a Parquet file, from its footer."""
    import pyarrow.parquet as pq

    with _reading(path, ".parquet"):
        return int(pq.ParquetFile(path).metadata.num_rows)


def iter_grouped(
    path: Path, batch_rows: int = BATCH_ROWS, piece_rows: int = PIECE_ROWS
) -> Iterator[tuple[pd.DataFrame, bool]]:
    """`iter_table(path, batch_rows)`'s rows, read `piece_rows` at a time: each piece, and
    whether it ends one of those batches (the last piece always does). A stage that writes a
    row group per batch (`ParquetSink(grouped=True)`, `end_group` where a batch ends) writes
    the same file as before while holding a piece, not a batch."""
    if batch_rows % piece_rows:
        piece_rows = batch_rows  # pieces must tile a batch exactly
    pieces = iter_table(path, piece_rows)
    previous = next(pieces)  # iter_table yields at least one frame
    read = 0
    for piece in pieces:
        read += len(previous)
        yield previous, read % batch_rows == 0
        previous = piece
    yield previous, True


# pyarrow's rows per row group when a whole table is written at once (`write_parquet`)
ROW_GROUP_ROWS = 1024 * 1024


def encode_parquet(table: Any, schema: Any) -> memoryview:
    """A whole Parquet file of `table` (None: no rows) with `schema`, as every tabml Parquet
    output is written (zstd, statistics): the unit `ParquetSink` joins, and what a Dask worker
    sends back for its part of an output (`tabml.core.parquet_join`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = pa.BufferOutputStream()  # in Arrow's memory: no Python call per page
    with pq.ParquetWriter(buffer, schema, compression="zstd", write_statistics=True) as writer:
        if table is not None:
            writer.write_table(table)
    return memoryview(buffer.getvalue())


def frame_table(frame: pd.DataFrame, schema: Any = None) -> Any:
    """A frame as the Arrow table a tabml Parquet output stores: no pandas index or metadata;
    with `schema` (a later frame of the same file), its columns and types, a column the frame
    lacks (an optional one: appended rows carry no personal data) all null."""
    import pyarrow as pa

    if schema is None:
        return pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata()
    missing = [c for c in schema.names if c not in frame.columns]
    if missing:
        frame = frame.assign(**dict.fromkeys(missing))
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    return table.replace_schema_metadata()


@dataclass(frozen=True)
class Encoded:
    """Frames encoded as one row group elsewhere (a Dask worker), for `ParquetSink.add_part`:
    the Parquet file's bytes (None: no rows), the frames' Arrow types (None: no frame) and
    their rows."""

    data: bytes | None
    schema: Any
    rows: int


def encode_frames(frames: list[pd.DataFrame], schema: Any = None) -> Encoded:
    """`frames` as a grouped `ParquetSink` writes them between two `end_group`s: typed as
    `schema` (the file's, when known) or else as the first frame."""
    import pyarrow as pa

    tables = []
    for frame in frames:
        tables.append(frame_table(frame, schema))
        schema = tables[0].schema
    rows = sum(len(t) for t in tables)
    if not rows:
        return Encoded(None, schema, 0)
    # contiguous, as ParquetSink.end_group's
    data = encode_parquet(pa.concat_tables(tables).combine_chunks(), schema)
    return Encoded(bytes(data), schema, rows)  # bytes: it travels


class ParquetSink:
    """Frames appended to one Parquet file as they come, with the first frame's columns and
    types, written as `write_parquet` writes (zstd, statistics, no pandas metadata).

    `row_group_rows`: buffer the rows and write row groups of exactly that many (the last one
    shorter), so the file is byte for byte what `write_parquet` writes of all the frames
    concatenated (with ROW_GROUP_ROWS). `grouped`: buffer the rows and write them as one row
    group at each `end_group` (and at `close`), byte for byte what writing each group's frames
    joined would give. Without either, each frame is a row group of its own.

    Each row group is encoded on its own (`encode_parquet`) and joined into the file
    (`tabml.core.parquet_join`), so a row group a Dask worker encoded (`add_part`) lands as the
    same bytes as one written here."""

    def __init__(
        self, path: Path, row_group_rows: int | None = None, grouped: bool = False
    ) -> None:
        self.path = path
        self.rows = 0
        self._file: Any = None
        self._joiner: Any = None
        self._schema: Any = None
        self._group = row_group_rows
        self._grouped = grouped
        self._pending: list[Any] = []
        self._pending_rows = 0

    def _start(self, schema: Any) -> None:
        from tabml.core.parquet_join import Joiner

        self._schema = schema
        self._file = self.path.open("wb")
        self._joiner = Joiner(self._file, encode_parquet(None, schema))

    def _put(self, table: Any) -> None:
        self._joiner.add(encode_parquet(table, self._schema))

    def write(self, frame: pd.DataFrame) -> None:
        table = frame_table(frame, self._schema)
        if self._schema is None:
            self._start(table.schema)
        self.rows += len(frame)
        if self._group is None and not self._grouped:
            self._put(table)
            return
        self._pending.append(table)
        self._pending_rows += len(table)
        if self._group is not None and self._pending_rows >= self._group:
            self._flush(final=False)

    @property
    def schema(self) -> Any:
        """The file's Arrow types: the first frame's (None before it)."""
        return self._schema

    def add_part(self, data: bytes | memoryview | None, schema: Any) -> None:
        """Append a row group encoded elsewhere: `data` is `encode_parquet` of its rows with
        `schema`, the types they had there (`Encoded`; None and None: no frame; None and a
        schema: frames with no rows, which type the file as a first frame does). Only between
        groups (nothing buffered). A part whose types differ from the file's (a column all
        null in the first frame, say) is decoded and written as `write` would write it."""
        if self._pending_rows:
            raise ValueError("ParquetSink.add_part with rows buffered: end the group first")
        if schema is None:
            return
        if self._schema is None:
            self._start(schema)
        if data is None:
            return
        if schema.equals(self._schema):
            self.rows += self._joiner.add(data)
            return
        import io as bytes_io

        import pyarrow.parquet as pq

        rows = pq.read_table(bytes_io.BytesIO(data)).to_pandas()
        self.write(rows)
        if self._grouped:
            self.end_group()
        elif self._group is not None:
            raise ValueError("ParquetSink.add_part is for grouped sinks or one group a frame")

    def end_group(self) -> None:
        """Write the rows buffered since the last group as one row group (`grouped`)."""
        import pyarrow as pa

        if not self._grouped:
            raise ValueError("end_group is for a ParquetSink made with grouped=True")
        if self._pending_rows:
            # contiguous, as one frame's table is (see _flush)
            self._put(pa.concat_tables(self._pending).combine_chunks())
        self._pending, self._pending_rows = [], 0
        release_unused()  # the group's buffers, before the next group's rows come in

    def _flush(self, final: bool) -> None:
        import pyarrow as pa

        group = self._group or ROW_GROUP_ROWS
        buffered = pa.concat_tables(self._pending)
        full = len(buffered) if final else len(buffered) - len(buffered) % group
        for start in range(0, full, group):
            # contiguous, as a whole table's row group is: where the writer cuts pages can
            # depend on where the chunks of its input end
            rows = buffered.slice(start, min(group, full - start)).combine_chunks()
            self._put(rows)
            del rows
        rest = buffered.slice(full)
        self._pending, self._pending_rows = ([rest], len(rest)) if len(rest) else ([], 0)
        if full:
            del buffered
            release_unused()  # the written groups' buffers

    def close(self, empty_like: pd.DataFrame | None = None) -> None:
        """Finish the file; with no frame written, write `empty_like`'s columns and no rows."""
        if self._joiner is None:
            write_parquet(self.path, empty_like if empty_like is not None else _empty())
            return
        try:
            if self._grouped:
                self.end_group()
            elif self._pending:
                self._flush(final=True)
            self._joiner.close()
        finally:
            self._file.close()


def _empty() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame()


def table_files(folder: Path) -> list[Path]:
    """The CSV and Parquet files under `folder`, sorted; hidden (in-progress) files skipped."""
    if not os.access(folder, os.R_OK | os.X_OK):
        raise DataError(f"{folder}: no permission to list this folder. Check its mode.")
    try:
        return sorted(
            p
            for p in folder.rglob("*")
            if p.is_file()
            and p.suffix.lower() in TABLE_SUFFIXES
            and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        )
    except PermissionError as err:
        raise DataError(
            f"{err.filename}: no permission to list this folder (inside {folder})."
        ) from None


def _partition_day(path: Path) -> date | None:
    """The day of the `date=YYYY-MM-DD` folder a file is in, if any."""
    for part in reversed(path.parts):
        if part.startswith("date=") and len(part) == 15:
            with contextlib.suppress(ValueError):
                return date.fromisoformat(part[5:])
    return None


def read_batch(path: Path, allow_empty: bool = False, since: date | None = None) -> pd.DataFrame:
    """Read one table file, or every table file under a folder (e.g. daily prediction logs);
    with `since`, only the `date=` partitions of that day and later (compared as dates; files
    outside a partition are always read)."""
    import pandas as pd

    if not path.is_dir():
        return read_table(path, allow_empty)
    files = batch_files(path, since)
    if not files:
        return pd.DataFrame()
    return pd.concat([read_table(f, allow_empty=True) for f in files], ignore_index=True)


def batch_files(path: Path, since: date | None = None) -> list[Path]:
    """The table files `read_batch` reads, in its order: `path` itself, or the folder's files
    (from `since` on: none when the window holds no partition)."""
    if not path.is_dir():
        return [path]
    files = table_files(path)
    if since is not None:
        return [f for f in files if (_partition_day(f) or date.max) >= since]
    if not files:
        raise DataError(
            f"{path}: folder has no {', '.join(TABLE_SUFFIXES)} files "
            "(hidden files, which are still being written, are skipped)"
        )
    return files
