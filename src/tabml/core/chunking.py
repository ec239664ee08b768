"""Chunks: the rule for short chunks, and the chunk size to advise (pure; no NannyML here).

NannyML cuts a frame into chunks of `rows` rows, into `count` chunks, or one per period, and
keeps whatever is left over as a chunk of its own. A short chunk harms twice:

- in the reference, its distance from the rest is large by chance alone, and NannyML's
  thresholds (the mean of the reference chunks, plus or minus three standard deviations)
  widen until no drift can alert: a 4-row seventh chunk put the `age` threshold at 0.935,
  where 700-row chunks put it at 0.062;
- in a batch, the same chance distance raises false alerts (a 46-row last month alerted on
  every feature).

So, under `short_chunks: merge` (the default), a chunk shorter than the frame's minimum joins
the chunk before it (a short first chunk joins the next): every chunk has at least the
minimum, and the last one of `rows` chunking holds the left-over rows. A whole batch shorter
than one chunk stays one chunk, reported without alerts. `short_chunks: keep` is NannyML's own
way, for a user who asks for it.

The minimum is the chunk size for `rows`, the frame's rows divided by `count` for `count`,
and for `period` the configured `min_rows` or half the reference's median period.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tabml.core.config import ChunkingConfig

if TYPE_CHECKING:
    import pandas as pd


def merge_plan(sizes: Sequence[int], min_rows: int) -> list[range]:
    """Group consecutive chunks of `sizes` rows so that every group holds at least `min_rows`
    (but where all of them together hold fewer): a short chunk joins the group before it, and
    short chunks at the start join the first that completes them. Returns each group as a range
    of chunk positions, in order."""
    groups: list[list[int]] = []
    total: list[int] = []
    for i, size in enumerate(sizes):
        if groups and (size < min_rows or total[-1] < min_rows):
            groups[-1].append(i)
            total[-1] += size
        else:
            groups.append([i])
            total.append(size)
    return [range(g[0], g[-1] + 1) for g in groups]


def min_rows(chunking: ChunkingConfig, frame_rows: int, reference_period_rows: int | None) -> int:
    """The fewest rows a chunk of a frame of `frame_rows` rows may hold under `chunking`.

    `reference_period_rows` is the reference's median rows per period (period chunking only).
    """
    if chunking.method == "rows":
        return chunking.rows or 1
    if chunking.method == "count":
        return max(1, frame_rows // (chunking.count or 1))
    if chunking.min_rows is not None:
        return chunking.min_rows
    return max(1, (reference_period_rows or 0) // 2)


def floor(chunking: ChunkingConfig, frame_rows: int, reference_stamps: pd.Series | None) -> int:
    """`min_rows` for a frame of `frame_rows` rows, with period chunking's default drawn from
    the reference's time stamps."""
    median_rows = None
    if chunking.method == "period" and chunking.min_rows is None:
        if reference_stamps is None or chunking.period is None:
            raise ValueError("period chunking needs the reference's time stamps")
        median_rows = median(period_sizes(reference_stamps.dropna(), chunking.period))
    return min_rows(chunking, frame_rows, median_rows)


def period_sizes(stamps: pd.Series, period: str) -> list[int]:
    """Rows per period of `stamps`, in time order (the periods that hold rows)."""
    import pandas as pd

    counts = pd.to_datetime(stamps).dt.to_period(period).value_counts(sort=False)
    return [int(n) for n in counts.sort_index().tolist()]


def median(values: Sequence[int]) -> int:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0


def chunk_count(
    chunking: ChunkingConfig, rows: int, stamps: pd.Series | None = None
) -> tuple[int, int]:
    """How many chunks a frame of `rows` rows (time stamps `stamps`, for period chunking) makes,
    and how many rows its shortest chunk holds, with short chunks treated as configured."""
    if chunking.method == "period":
        if stamps is None:
            raise ValueError("period chunking needs the time stamps")
        assert chunking.period is not None
        sizes = period_sizes(stamps, chunking.period)
    else:
        step = min_rows(chunking, rows, None)
        sizes = [step] * (rows // step) + ([rows % step] if rows % step else [])
    if chunking.short_chunks == "merge":
        floor = min_rows(chunking, rows, median(sizes))
        sizes = [sum(sizes[i] for i in group) for group in merge_plan(sizes, floor)]
    return len(sizes), min(sizes, default=0)


def advised_rows(rows: int, chunks: int) -> int:
    """The chunk size that cuts `rows` into exactly `chunks` chunks: the left-over rows (fewer
    than `chunks`) join the last one, so no chunk is short."""
    return rows // chunks
