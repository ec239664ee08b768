"""LightGBM datasets built a block of rows at a time, never from one whole matrix.

LightGBM bins a dataset from a sample of its rows (`bin_construct_sample_cnt`, 200,000 by
default), then reads every row once into its binned form (about a byte per feature). From a
numpy matrix that needs every row encoded at once first: 8 bytes per feature per row. Here
LightGBM reads `Blocks` through its `Sequence` input instead: the sampled rows (only those
are encoded for the sample), then each block in order, encoded when it is asked for and let
go after. Memory holds one block's matrix beside the binned data.

The bins are the matrix's, byte for byte. LightGBM's `Sequence` input reads its parameters
through `Dataset.get_params`, which keeps only the dataset's own: it would sample with the
default seed (not the one `seed` derives) and filter bins with the default
`min_data_in_leaf`. The dataset here gives it every parameter, as the matrix input does.
tests/unit/test_lgbm_data.py holds the two models equal where the sample is a real one
(`bin_construct_sample_cnt` 500 of 3,000 rows; by default that is past 200,000 rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import numpy as np


@dataclass(frozen=True)
class Blocks:
    """Rows in blocks: block i holds `sizes[i]` rows; `encode(i, rows)` is its float64 matrix,
    only the positions `rows` within it (sorted) when given; `labels()`: every row's label, in
    order, read when a dataset is built (so that nothing holds them while LightGBM trains)."""

    sizes: tuple[int, ...]
    encode: Callable[[int, np.ndarray | None], np.ndarray]
    labels: Callable[[], np.ndarray]

    def __len__(self) -> int:
        return sum(self.sizes)

    def matrices(self) -> Iterator[np.ndarray]:
        """Each block's whole matrix, in order."""
        for i in range(len(self.sizes)):
            yield self.encode(i, None)


def in_blocks(
    rows: int, block_rows: int, encode: Callable[[int, int, np.ndarray | None], np.ndarray],
    labels: Callable[[], np.ndarray],
) -> Blocks:  # fmt: skip
    """`rows` rows cut into blocks of `block_rows`; `encode(start, stop, rows)` encodes the
    rows start:stop (only the positions `rows` within them when given)."""
    starts = range(0, rows, block_rows)
    sizes = tuple(min(block_rows, rows - s) for s in starts)
    return Blocks(sizes, lambda i, at: encode(starts[i], starts[i] + sizes[i], at), labels)


def dataset(
    parts: list[Blocks],
    params: dict[str, Any] | None = None,
    names: list[str] | None = None,
    categorical: list[str] | None = None,
    reference: Any = None,
) -> Any:
    """A `lightgbm.Dataset` of `parts`' rows in order (not constructed yet), binned as the same
    rows in one matrix would be; with `reference`, binned with its bins (a validation set)."""
    import numpy as np

    dataset_type, rows_type = _types()
    last: list[Any] = [None]  # the block holding a whole-block sample (without a plan)
    seqs = [rows_type(part, i, last) for part in parts for i in range(len(part.sizes))]
    labels = np.concatenate([part.labels() for part in parts])
    data = dataset_type(
        seqs,
        labels,
        reference=reference,
        feature_name=names if names is not None else "auto",
        categorical_feature=categorical if categorical is not None else "auto",
        params=params,
        free_raw_data=True,
    )
    data.blocks = seqs
    return data


def constructed(data: Any) -> Any:
    """`data.construct()`, then the Python side's copy of its labels let go: LightGBM keeps
    its own (`get_label()` reads them back when asked), and training never reads them here."""
    data.construct()
    data.label = None
    return data


@cache
def _types() -> tuple[type, type]:
    """The Dataset and Sequence subclasses (defined at first use: lightgbm imports lazily)."""
    import lightgbm as lgb
    import numpy as np

    class BlockRows(lgb.Sequence):
        """One block of a `Blocks`, as LightGBM's `Sequence`: a row at a time for the sample
        (from the sampled rows only, encoded together), the whole block for reading."""

        def __init__(self, part: Blocks, i: int, last: list[Any]) -> None:
            self.part, self.i, self.last = part, i, last
            self.batch_size = part.sizes[i]  # LightGBM reads the whole block at once
            self.rows: np.ndarray | None = None
            self.sample: np.ndarray | None = None

        def __len__(self) -> int:
            return self.part.sizes[self.i]

        def plan(self, rows: np.ndarray) -> None:
            self.rows, self.sample = rows, None

        def __getitem__(self, idx: Any) -> np.ndarray:
            if isinstance(idx, slice):  # reading: sampling is over
                self.rows = self.sample = self.last[0] = None
                return self.part.encode(self.i, None)[idx]
            sample = self.sample
            if sample is None:
                # without a plan (a LightGBM that picks its sample elsewhere) the whole
                # block, kept until another block is asked for
                sample = self.sample = self.part.encode(self.i, self.rows)
                if self.rows is None:
                    if self.last[0] is not None:
                        self.last[0].sample = None
                    self.last[0] = self
            if self.rows is None:
                return sample[idx]
            at = int(np.searchsorted(self.rows, idx))
            if at == len(self.rows) or self.rows[at] != idx:
                raise IndexError(f"row {idx} of block {self.i} was not in the sample plan")
            return sample[at]

    class BlockDataset(lgb.Dataset):
        blocks: list[BlockRows]

        def get_params(self) -> dict[str, Any]:
            # every parameter, as the matrix input gets them: `seed` derives the sample's
            # seed, `min_data_in_leaf` which bins are kept
            return dict(self.params or {})

        def _create_sample_indices(self, total_nrow: int) -> np.ndarray:
            # LightGBM's own choice of sample rows, told to the blocks before it asks for
            # them, so that each block encodes only its sampled rows
            indices = super()._create_sample_indices(total_nrow=total_nrow)
            start = 0
            for seq in self.blocks:
                stop = start + len(seq)
                lo, hi = np.searchsorted(indices, [start, stop])
                seq.plan(np.asarray(indices[lo:hi], dtype=np.int64) - start)
                start = stop
            return indices

    return BlockDataset, BlockRows
