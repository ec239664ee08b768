"""Parquet files joined without decoding (tabml.core.parquet_join): the join of one-group files is
the file a single writer writes, byte for byte, and what cannot be moved is refused."""

from __future__ import annotations

import io as bytes_io
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tabml.core import io
from tabml.core.parquet_join import Joiner, decode, encode, split


def _frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """Every kind of column a tabml output holds, nulls included, and more than 15 columns
    (a Thrift list's long header)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "id": np.arange(rows) + 1000 * seed,
            "name": pd.array(rng.choice(["ann", "bo", None], rows), dtype="string"),
            "score": rng.normal(size=rows),
            "kind": pd.Categorical(rng.choice(["x", "y", "z"], rows), categories=["x", "y", "z"]),
            "flag": pd.array(rng.choice([True, False, None], rows), dtype="boolean"),
            "label": pd.array(rng.integers(0, 2, rows), dtype="Int8"),
            "at": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 10**6, rows), "s"),
        }
    )
    for i in range(12):
        frame[f"f{i}"] = rng.integers(-(10**12), 10**12, rows)
    return frame


def _tables(sizes: list[int]) -> tuple[Any, list[Any]]:
    tables = [io.frame_table(_frame(n, seed=i)) for i, n in enumerate(sizes)]
    schema = tables[0].schema
    return schema, [t.cast(schema) for t in tables]


def _one_writer(schema: Any, tables: list[Any]) -> bytes:
    buffer = bytes_io.BytesIO()
    with pq.ParquetWriter(buffer, schema, compression="zstd", write_statistics=True) as writer:
        for table in tables:
            writer.write_table(table)
    return buffer.getvalue()


def _footer(data: bytes | memoryview) -> bytes:
    data = bytes(data)
    (size,) = struct.unpack("<I", data[-8:-4])
    return data[-8 - size : -8]


def test_a_footer_read_and_written_back_is_the_same_bytes() -> None:
    schema, tables = _tables([500, 3, 20_000])
    files = (_one_writer(schema, tables), _one_writer(schema, []), io.encode_parquet(None, schema))
    for data in files:
        assert encode(decode(_footer(data))) == _footer(data)


@pytest.mark.parametrize("sizes", [[1], [700, 1, 5_000], [2_000, 1_100_000]])
def test_joined_parts_are_the_file_one_writer_writes(sizes: list[int]) -> None:
    """Each part is a file of its own (the 1,100,000 rows cut into two row groups by the
    writer, which stops a group at 1Mi rows); joined in order they are byte for byte the file
    one writer writes of the same tables, and pyarrow reads the rows back."""
    if max(sizes) > 10**6:  # narrow, to stay fast
        tables = [io.frame_table(_frame(n, seed=i)[["id", "score"]]) for i, n in enumerate(sizes)]
        schema = tables[0].schema
    else:
        schema, tables = _tables(sizes)
    out = bytes_io.BytesIO()
    joiner = Joiner(out, io.encode_parquet(None, schema))
    for table in tables:
        joiner.add(io.encode_parquet(table, schema))
    joiner.close()
    assert joiner.rows == sum(sizes)
    assert out.getvalue() == _one_writer(schema, tables)
    back = pq.read_table(bytes_io.BytesIO(out.getvalue())).to_pandas()
    pd.testing.assert_frame_equal(back, pa.concat_tables(tables).to_pandas())


def test_no_parts_is_the_file_of_no_rows() -> None:
    schema, _ = _tables([10])
    out = bytes_io.BytesIO()
    joiner = Joiner(out, io.encode_parquet(None, schema))
    joiner.close()
    assert out.getvalue() == _one_writer(schema, [])
    assert pq.read_table(bytes_io.BytesIO(out.getvalue())).num_rows == 0


def test_a_part_of_another_schema_is_refused() -> None:
    schema, tables = _tables([10])
    other = tables[0].drop_columns(["name"])
    joiner = Joiner(bytes_io.BytesIO(), io.encode_parquet(None, schema))
    with pytest.raises(ValueError, match="schema or writer settings differ"):
        joiner.add(io.encode_parquet(other, other.schema))


def test_what_joining_cannot_move_is_refused() -> None:
    """A page index sits after the row groups with offsets of its own: such a part, and bytes
    that are not Parquet, are refused rather than joined wrong."""
    _, [table] = _tables([100])
    buffer = bytes_io.BytesIO()
    pq.write_table(table, buffer, compression="zstd", write_page_index=True)
    with pytest.raises(ValueError, match=r"offset index|column index"):
        split(buffer.getvalue())
    with pytest.raises(ValueError, match="not a Parquet file"):
        split(b"PAR1 not really")


def test_a_sink_lands_a_part_encoded_elsewhere_as_the_rows_written_here(tmp_path: Path) -> None:
    """What a Dask worker encodes (`add_part`) and rows written here, mixed in one file: the
    same bytes as the same rows all written here. A part whose types differ (a column all
    null in it, so typed null there) is written with the file's types."""
    frames = [_frame(300, 0), _frame(50, 1), _frame(80, 2)]
    frames[2]["name"] = pd.array([None] * 80, dtype="object")

    here = io.ParquetSink(tmp_path / "here.parquet", grouped=True)
    for frame in frames:
        here.write(frame)
        here.end_group()
    here.close()

    mixed = io.ParquetSink(tmp_path / "mixed.parquet", grouped=True)
    for i, frame in enumerate(frames):
        if i == 1:
            mixed.write(frame)
            mixed.end_group()
        else:
            table = io.frame_table(frame)
            mixed.add_part(io.encode_parquet(table, table.schema), table.schema)
    mixed.close()
    assert mixed.rows == here.rows == 430
    assert (tmp_path / "mixed.parquet").read_bytes() == (tmp_path / "here.parquet").read_bytes()


def test_a_part_is_refused_while_rows_wait_for_their_group(tmp_path: Path) -> None:
    sink = io.ParquetSink(tmp_path / "x.parquet", grouped=True)
    sink.write(_frame(5))
    table = io.frame_table(_frame(5))
    with pytest.raises(ValueError, match="end the group first"):
        sink.add_part(io.encode_parquet(table, table.schema), table.schema)
