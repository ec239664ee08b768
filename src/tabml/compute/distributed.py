"""Training past one machine: LightGBM's data-parallel learner on a Dask cluster, pinned so that
the model depends on the rank count N alone (`compute=dask`, `compute.workers: N`).

LightGBM's own Dask interface (`lightgbm.dask`) places rows wherever Dask's partitions happen
to sit, so the same data on the same cluster gave a different model from run to run, and it
has no early stopping. This driver decides everything itself:

- **Ranks.** The cluster's first N workers, sorted by name, are LightGBM's ranks 0..N-1, listed
  in that order in `machines`, each with a fresh port (`tree_learner=data`, `pre_partition`).
- **Rows.** Rank r trains on the train rows whose position within their class is r mod N, so
  every rank sees both classes in the share they have (LightGBM #5025). Each rank reads the
  split's Parquet file itself, a row group at a time, and keeps only its rows.
- **Early stopping.** Every rank scores the same evenly spaced sample of valid, so all ranks
  stop at the same round. The refit on train + valid deals valid's rows like train's and
  reuses the driver, for the best number of rounds.
- **Preprocessing** is fitted from exact global statistics reduced in row-group order:
  category counts, and medians selected exactly from histograms of the values' bits
  (`tabml.learning.stats`). Clip bounds (`model.clip_quantiles`) are not supported for N > 1.
- **N=1** runs exactly single-machine training on the one worker, from the files a row group
  at a time as the train stage does: the model is byte-identical to `compute=local`.

LightGBM cannot give the same model for different N: each feature's bins are built on the
rank that owns the feature, from that rank's rows (LightGBM #5798, #3835). Production ROC AUC
stays close (docs/scale.md). The saved model leaves out the run's addresses and ports, so two
runs at the same N write the same bytes.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabml.core.config import DaskCompute, LightGBMConfig, SchemaConfig
from tabml.core.errors import ConfigError, TabmlError
from tabml.core.log import info

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from tabml.core.io import Encoded
    from tabml.core.schema import CheckedBatch, Role
    from tabml.data.clean import Repeats, Tally
    from tabml.learning.features import Preprocessor
    from tabml.learning.model import History, Model

# Dask's own variable for the scheduler (dask.config's `scheduler-address`): where, not what
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"
# where the workers read a stage's files when they cannot see this workspace (no shared
# volume): a URL prefix fsspec knows, e.g. s3://bucket/tabml-cluster. Where, not what.
STORAGE_ENV = "TABML_CLUSTER_STORAGE"
# model-file parameters that name the run's hosts and ports, left out of the saved model
RUN_PARAMS = ("machines", "local_listen_port")


def scheduler_address() -> str:
    return os.environ.get(SCHEDULER_ENV, "").strip()


@contextlib.contextmanager
def client(cfg: DaskCompute, stage: str = "train", threads: int | None = None) -> Iterator[Any]:
    """A client of $DASK_SCHEDULER_ADDRESS's scheduler with at least `cfg.workers` workers,
    or of a LocalCluster of `cfg.workers` processes on 127.0.0.1 when it is unset. `stage`
    names the stage in what it prints; `threads` is each task's OpenMP threads (None:
    OpenMP's default, every core, as LightGBM's predict uses)."""
    from dask.distributed import Client, LocalCluster

    address = scheduler_address()
    if not address:
        cores = os.cpu_count() or 1
        if cfg.workers * (threads or cores) > cores:
            # more threads than cores: LightGBM's OpenMP threads would spin after each
            # parallel region and starve the other ranks (two ranks of two threads on 2
            # cores: 0.55 s a round, for the default data). The workers inherit it; no
            # result changes. Not otherwise: waiting passively makes each wake a futex call
            # (one rank of two threads on 2 cores: 25 s for train's fit, against 15 s).
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        with (
            LocalCluster(
                n_workers=cfg.workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            ) as cluster,
            Client(cluster, direct_to_workers=True) as c,
        ):
            info(
                f"{stage}: {SCHEDULER_ENV} is not set: started a local Dask cluster of "
                f"{cfg.workers} worker processes"
            )
            yield c
        return
    info(f"{stage}: connecting to the Dask scheduler at {address} ({SCHEDULER_ENV})")
    try:
        # results come straight from the workers (Dask's default for a client outside the
        # cluster sends them through the scheduler: twice the transfer, and its CPU)
        connected = Client(
            address, timeout=f"{cfg.connect_timeout_seconds}s", direct_to_workers=True
        )
    except (OSError, TimeoutError) as err:
        raise ConfigError(
            f"the Dask scheduler at {address} ({SCHEDULER_ENV}) did not answer within "
            f"{cfg.connect_timeout_seconds} s ({type(err).__name__}). Check the address and that "
            "the scheduler runs and is reachable from here; unset it to start a local cluster"
        ) from None
    with connected as c:
        try:
            c.wait_for_workers(cfg.workers, timeout=cfg.connect_timeout_seconds)
        except TimeoutError:
            have = len(workers(c))
            raise ConfigError(
                f"the Dask cluster at {address} has {have} worker(s) after "
                f"{cfg.connect_timeout_seconds} s; compute.workers is {cfg.workers}. Scale the "
                "cluster up, or lower compute.workers (a different N trains a different model)"
            ) from None
        yield c


def workers(dask_client: Any) -> dict[str, Any]:
    """The scheduler's workers now, by address, asked of the scheduler itself.

    Not `Client.scheduler_info()`: the client's periodic refresh (every 2 s, without the
    workers) can replace the answer between the fetch and the return, and the workers then
    read as gone."""
    identity = dask_client.sync(dask_client.scheduler.identity, n_workers=-1)
    return dict(identity["workers"])


def rank_workers(dask_client: Any, n: int) -> list[str]:
    """The addresses of LightGBM's ranks 0..n-1: the first n workers sorted by name."""
    known = workers(dask_client)
    ordered = sorted(known, key=lambda a: (str(known[a].get("name", a)), a))
    if len(ordered) > n:
        info(f"train: {len(ordered)} workers; ranks use the first {n} by name, the rest idle")
    return ordered[:n]


# --- the pure parts: which rows a rank holds ------------------------------------------------


def deal(positive: np.ndarray, n: int, seen: list[int]) -> np.ndarray:
    """The rank of each row: its position within its class (counting on from `seen`, the
    rows of each class in earlier batches, which this updates) mod n."""
    import numpy as np

    ranks = np.empty(len(positive), dtype="int64")
    for cls, mask in enumerate((~positive, positive)):
        k = int(mask.sum())
        ranks[mask] = (seen[cls] + np.arange(k)) % n
        seen[cls] += k
    return ranks


def evenly_spaced(rows: int, k: int) -> np.ndarray:
    """Row numbers of an evenly spaced sample of at most k of `rows` rows, in order."""
    import numpy as np

    if rows <= k:
        return np.arange(rows)
    return (np.arange(k, dtype="int64") * rows) // k


def positives(frame: pd.DataFrame, target: str) -> np.ndarray:
    return frame[target].to_numpy(dtype="float64") > 0.5


@contextlib.contextmanager
def _open(path: str) -> Iterator[Any]:
    """A local path, or a URL fsspec knows (s3:// with s3fs) that every worker can reach."""
    import fsspec

    with fsspec.open(path, "rb") as handle:
        yield handle


def storage_url() -> str:
    return os.environ.get(STORAGE_ENV, "").strip().rstrip("/")


def is_url(path: str) -> bool:
    return "://" in path


@contextlib.contextmanager
def for_workers(stage: str, paths: list[str]) -> Iterator[list[str]]:
    """The stage's input files as the workers open them.

    With $TABML_CLUSTER_STORAGE unset: their absolute paths, which a shared volume mounts at
    the same place on every worker. With it set: copies under `<storage>/<stage>-<random>/`,
    put there from this process and removed when the stage's work on the cluster ends (also
    on an error), so the workers need no shared volume, only read access to the store. The
    stage's outputs are still written here, into the workspace, as DVC's outputs. A local
    cluster (no $DASK_SCHEDULER_ADDRESS) reads this machine's files: nothing is copied."""
    base = storage_url()
    if not base or not scheduler_address():
        yield [p if is_url(p) else str(Path(p).resolve()) for p in paths]
        return
    import uuid

    fs, root = _store()
    run = f"{root}/{stage}-{uuid.uuid4().hex[:12]}"
    urls: list[str] = []
    try:
        for i, path in enumerate(paths):
            target = f"{run}/{i}-{Path(path).name}"
            try:
                fs.makedirs(run, exist_ok=True)  # a folder on a disk; nothing on S3
                fs.put_file(path, target)
            except Exception as err:
                raise ConfigError(
                    f"{stage}: could not copy {path} to {base} ({STORAGE_ENV}), where the "
                    f"workers read it: {type(err).__name__}: {err}. Check the URL and this "
                    "process's credentials for it, or unset it where the workers share this "
                    "workspace's volume"
                ) from None
            urls.append(fs.unstrip_protocol(target))
        size = sum(Path(p).stat().st_size for p in paths) / 2**20
        info(
            f"{stage}: copied {len(paths)} file(s), {size:,.1f} MiB, to "
            f"{fs.unstrip_protocol(run)}/ for the workers ({STORAGE_ENV})"
        )
        yield urls
    finally:
        try:  # never in place of the error that brought us here
            if urls or fs.exists(run):
                fs.rm(run, recursive=True)
        except Exception as err:
            if urls:  # the outputs are good; the copies are not gone
                info(
                    f"warning: {stage}: could not remove the workers' copies at "
                    f"{fs.unstrip_protocol(run)}/ ({type(err).__name__}: {err}); remove "
                    "them, or let the store's lifecycle rule expire them (docs/scale.md)"
                )


def _store() -> tuple[Any, str]:
    """The filesystem and root of $TABML_CLUSTER_STORAGE (set)."""
    import fsspec

    base = storage_url()
    # S3 objects encrypted at rest, as the DVC remote's (.dvc/config: sse = AES256)
    options = {"s3_additional_kwargs": {"ServerSideEncryption": "AES256"}}
    protocol = fsspec.core.split_protocol(base)[0]
    return fsspec.core.url_to_fs(base, **(options if protocol in ("s3", "s3a") else {}))


# a stage's folder of copies: `<stage>-<12 hex digits>` (for_workers)
COPIES = re.compile(r"[a-z]+-[0-9a-f]{12}")


def remove_copies() -> int:
    """Remove every folder of copies a stage left in $TABML_CLUSTER_STORAGE (a run killed
    mid-stage; `tabml forget --purge`: they hold pseudonymised rows), and count them. 0 when it
    is unset. A stage running meanwhile loses its copies and fails, naming the file."""
    if not storage_url():
        return 0
    fs, root = _store()
    if not fs.exists(root):
        return 0
    folders = [
        p for p in fs.ls(root, detail=False) if COPIES.fullmatch(p.rstrip("/").rsplit("/", 1)[-1])
    ]
    for folder in folders:
        fs.rm(folder, recursive=True)
    return len(folders)


@contextlib.contextmanager
def local_file(path: str) -> Iterator[str]:
    """A local path for `path`: itself, or a URL's file copied into a temporary folder (a
    reader that needs a file name, on a worker); the copy is removed afterwards."""
    if not is_url(path):
        yield path
        return
    import tempfile

    import fsspec

    fs, remote = fsspec.core.url_to_fs(path)
    with tempfile.TemporaryDirectory(prefix="tabml-") as tmp:
        local = str(Path(tmp) / Path(remote).name)
        fs.get_file(remote, local)
        yield local


def _rows_of(path: str) -> int:
    import pyarrow.parquet as pq

    with _open(path) as handle:
        return int(pq.ParquetFile(handle).metadata.num_rows)


# --- what runs on the workers -----------------------------------------------------------------


@dataclass(frozen=True)
class RankJob:
    """Everything one rank needs; rank 0 of N=1 trains exactly as a single machine does."""

    rank: int
    n: int
    train_path: str
    valid_path: str
    schema: SchemaConfig
    cfg: LightGBMConfig
    seed: int
    prep: Preprocessor | None = None
    valid_sample_rows: int = 0
    # LightGBM's network: "host:port,..." in rank order, for the fit and for the refit
    machines: tuple[str, str] = ("", "")
    time_out_minutes: int = 10


@dataclass(frozen=True)
class RankResult:
    model: Model
    history: History
    # the early-stopped booster's text (before any refit): the driver scores valid with it
    early: str | None
    categories_missing: dict[str, list[str]]


def run_rank(job: RankJob) -> RankResult:
    """One LightGBM rank: read this rank's rows, fit with early stopping, then refit."""

    from tabml.learning.model import fit_lightgbm_rank

    if job.n == 1:
        model, history = _fit_alone(job)
        return RankResult(model, history, None, {})
    if job.prep is None:
        raise ValueError("run_rank: N > 1 needs the preprocessor fitted from global statistics")
    target = job.schema.target.column
    seen_train, seen_valid = [0, 0], [0, 0]

    def mine(seen: list[int]) -> Callable[[pd.DataFrame, int], np.ndarray]:
        return lambda frame, _: deal(positives(frame, target), job.n, seen) == job.rank

    sample = evenly_spaced(_rows_of(job.valid_path), job.valid_sample_rows)

    def sampled(frame: pd.DataFrame, start: int) -> np.ndarray:
        import numpy as np

        return np.isin(np.arange(start, start + len(frame)), sample)

    # which rows this rank keeps, in one pass over the target (and the categorical columns,
    # for the categories it never sees); LightGBM then reads them a row group at a time
    categorical = list(job.prep.categorical)
    (train_rows,), present = rows_kept(job.train_path, [mine(seen_train)], target, categorical)
    (sample_rows, valid_rows), _ = rows_kept(
        job.valid_path, [sampled, mine(seen_valid)], target, []
    )
    network = {
        "tree_learner": "data",
        "pre_partition": True,
        "num_machines": job.n,
        "time_out": job.time_out_minutes,
    }
    model, history, early = fit_lightgbm_rank(
        job.prep,
        rank_blocks(job.train_path, train_rows, job.prep, target),
        rank_blocks(job.valid_path, sample_rows, job.prep, target),
        rank_blocks(job.valid_path, valid_rows, job.prep, target),
        job.cfg,
        job.seed,
        [_network(network, machines, job.rank) for machines in job.machines],
        progress=job.rank == 0,  # the ranks train in step: one prints the rounds
    )
    missing = {
        column: absent
        for column in categorical
        if (absent := [v for v in job.prep.vocab[column] if v not in present[column]])
    }
    return RankResult(model, history, early, missing)


def _fit_alone(job: RankJob) -> tuple[Model, History]:
    """N=1: single-machine training on the files, as the train stage's compute=local fits
    them (the same bytes): the preprocessor fitted a column of train at a time, then LightGBM
    reads every row a row group at a time, so the worker never holds the splits as frames."""
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    from tabml.learning.features import fit_columns
    from tabml.learning.model import fit_lightgbm_blocks

    def column(name: str) -> pd.Series:
        with _open(job.train_path) as handle:
            return pd.read_parquet(handle, columns=[name])[name]

    def every_row(path: str) -> dict[int, np.ndarray]:
        with _open(path) as handle:
            meta = pq.ParquetFile(handle).metadata
        sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
        return {g: np.arange(n) for g, n in enumerate(sizes) if n}

    cfg, target = job.cfg, job.schema.target.column
    prep = fit_columns(column, job.schema, cfg.impute == "median", cfg.clip_quantiles)
    train, valid = (
        rank_blocks(path, every_row(path), prep, target)
        for path in (job.train_path, job.valid_path)
    )
    return fit_lightgbm_blocks(prep, train, valid, cfg, job.seed)


def rows_kept(
    path: str,
    keepers: list[Callable[[pd.DataFrame, int], np.ndarray]],
    target: str,
    categorical: list[str],
) -> tuple[list[dict[int, np.ndarray]], dict[str, set[str]]]:
    """One pass over a Parquet file's target (and `categorical`) columns, a row group at a
    time: for each keeper (frame, first row number -> boolean mask), the positions it keeps
    in each row group (groups where it keeps none left out); and the values each categorical
    column takes in the first keeper's rows."""
    import numpy as np
    import pyarrow.parquet as pq

    kept: list[dict[int, np.ndarray]] = [{} for _ in keepers]
    present: dict[str, set[str]] = {c: set() for c in categorical}
    with _open(path) as handle:
        file = pq.ParquetFile(handle)
        start = 0
        for group in range(file.num_row_groups):
            frame = file.read_row_group(group, columns=[target, *categorical]).to_pandas()
            for out, keep in zip(kept, keepers, strict=True):
                at = np.flatnonzero(keep(frame, start))
                if len(at):
                    out[group] = at
            for column in categorical:
                mine = frame[column].iloc[kept[0].get(group, [])]
                present[column].update(mine.dropna().astype("string"))
            start += len(frame)
    return kept, present


def rank_blocks(path: str, rows: dict[int, np.ndarray], prep: Preprocessor, target: str) -> Any:
    """A rank's rows of a Parquet file (`rows`: its positions in each row group) as LightGBM's
    blocks (`tabml.learning.lgbm_data`): a row group's rows read and encoded when LightGBM asks for
    them, so the rank never holds its rows as a frame or a whole matrix."""
    import numpy as np

    from tabml.learning.lgbm_data import Blocks

    groups = sorted(rows)

    def read(i: int, columns: list[str], at: np.ndarray | None = None) -> pd.DataFrame:
        import pyarrow.parquet as pq

        mine = rows[groups[i]] if at is None else rows[groups[i]][at]
        with _open(path) as handle:
            table = pq.ParquetFile(handle).read_row_group(groups[i], columns=columns)
        # a rank's positions are distinct and ascending: as many as the rows are all of them
        whole = at is None and len(mine) == table.num_rows
        return (table if whole else table.take(mine)).to_pandas()

    def encode(i: int, at: np.ndarray | None) -> np.ndarray:
        return prep.transform(read(i, prep.features, at), "codes")

    def labels() -> np.ndarray:
        parts = [read(i, [target])[target].to_numpy(dtype="float32") for i in range(len(groups))]
        return np.concatenate(parts) if parts else np.empty(0, dtype="float32")

    return Blocks(tuple(len(rows[g]) for g in groups), encode, labels)


def _network(base: dict[str, Any], machines: str, rank: int) -> dict[str, Any]:
    port = int(machines.split(",")[rank].rsplit(":", 1)[1])
    return {**base, "machines": machines, "local_listen_port": port}


def free_ports(count: int) -> list[int]:
    """`count` ports free on this worker now (a run binds them moments later)."""
    import socket

    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def group_stats(path: str, group: int, schema: SchemaConfig, prefixes: Any) -> Any:
    """One row group's share of the preprocessor's statistics
    (tabml.learning.features.column_stats)."""
    import pyarrow.parquet as pq

    from tabml.learning.stats import column_stats

    with _open(path) as handle:
        frame = pq.ParquetFile(handle).read_row_group(group, columns=list(schema.features))
    return column_stats(frame.to_pandas(), schema, prefixes)


# --- scoring on the workers (evaluate) ----------------------------------------------------------


def score_group(path: str, group: int, model: Model) -> np.ndarray:
    """One row group's scores: its feature columns only, read by the worker itself."""
    import pyarrow.parquet as pq

    with _open(path) as handle:
        table = pq.ParquetFile(handle).read_row_group(group, columns=model.preprocessor.features)
    return model.predict(table.to_pandas())


def _same(value: Any) -> Any:
    return value


def shared(dask_client: Any, value: Any) -> Any:
    """A future of `value` for every task to use, that Dask can make again when the worker
    holding it is lost: the result of a task that returns it (the scheduler keeps the task).

    Not `scatter(broadcast=True)`: Dask's memory manager keeps one copy of what it sends
    (dask/dask#11148), and scattered data lost with its worker cannot be made again
    (dask/distributed#3149), so a lost worker failed the run ("lost scattered data")."""
    import warnings

    with warnings.catch_warnings():
        # a model or fitted calculators are megabytes: sent once, as this one task
        warnings.filterwarnings("ignore", message="Sending large graph")
        return dask_client.submit(_same, value, pure=False)


def score_files(model: Model, paths: dict[str, str], compute: DaskCompute) -> dict[str, Any]:
    """Each Parquet file's scores, in its row order, computed on the cluster's workers a row
    group a task. A task whose worker dies is run again on another (scoring a row group has
    no other effect), so a lost worker costs time, not the run."""
    import numpy as np
    import pyarrow.parquet as pq

    scores: dict[str, Any] = {}
    with (
        for_workers("evaluate", list(paths.values())) as there,
        client(compute, "evaluate") as dask_client,
    ):
        held = shared(dask_client, model)
        for (name, path), url in zip(paths.items(), there, strict=True):
            with _open(path) as handle:
                groups = pq.ParquetFile(handle).num_row_groups
            futures = dask_client.map(
                score_group, [url] * groups, range(groups), model=held, pure=False
            )
            parts = _gather(dask_client, futures, f"evaluate: scoring {path} on the cluster")
            scores[name] = np.concatenate(parts) if parts else np.empty(0)
            info(f"evaluate: scored {name} on the cluster, {groups} row group(s)")
    return scores


# --- data stages on the workers (clean) --------------------------------------------------------


@dataclass(frozen=True)
class RowRange:
    """Rows [start, stop) of a file, all in row group `group`, which starts at row `first`."""

    group: int
    first: int
    start: int
    stop: int


def row_ranges(group_rows: list[int], batch_rows: int) -> list[RowRange]:
    """The file's row groups, each cut where a batch of `batch_rows` rows ends: so a range
    lies in one row group (a task reads that group alone) and in one of the stage's batches
    (whose rows the stage writes as one row group). They come from the data, not the
    workers: the same ranges on any cluster."""
    ranges, first = [], 0
    for group, rows in enumerate(group_rows):
        start, end = first, first + rows
        while start < end:
            stop = min(end, (start // batch_rows + 1) * batch_rows)
            ranges.append(RowRange(group, first, start, stop))
            start = stop
        first = end
    return ranges


def file_ranges(path: str, batch_rows: int | None) -> list[RowRange]:
    """`row_ranges` of a Parquet file (a local path or a URL every worker can reach); with
    `batch_rows` None, its row groups whole."""
    import pyarrow.parquet as pq

    with _open(path) as handle:
        meta = pq.ParquetFile(handle).metadata
    groups = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
    return row_ranges(groups, batch_rows or max(sum(groups), 1))


def read_range(path: str, span: RowRange) -> pd.DataFrame:
    """One range's rows of a Parquet file, as pandas reads them (on a worker)."""
    import pyarrow.parquet as pq

    with _open(path) as handle:
        table = pq.ParquetFile(handle).read_row_group(span.group)
    return table.slice(span.start - span.first, span.stop - span.start).to_pandas()


def read_rows(path: str, spans: list[RowRange]) -> Iterator[tuple[RowRange, pd.DataFrame]]:
    """Each range's rows of a Parquet file, as `read_range` reads them (on a worker)."""
    import pyarrow.parquet as pq

    with _open(path) as handle:
        parquet = pq.ParquetFile(handle)
        for span in spans:
            table = parquet.read_row_group(span.group)
            yield span, table.slice(span.start - span.first, span.stop - span.start).to_pandas()
            del table


def batches_of(spans: list[RowRange], batch_rows: int) -> list[list[RowRange]]:
    """The ranges grouped by the batch of `batch_rows` rows they lie in (`row_ranges` cuts
    them there): a batch is one row group of the stage's output."""
    out: list[list[RowRange]] = []
    for span in spans:
        if out and out[-1][0].start // batch_rows == span.start // batch_rows:
            out[-1].append(span)
        else:
            out.append([span])
    return out


@dataclass(frozen=True)
class CleanedBatch:
    """One batch cleaned on a worker: its row group of the clean and rejected files, encoded
    there (`io.Encoded`), the report's counts, and both files' columns with no rows."""

    kept: Encoded
    rejected: Encoded
    tally: Tally
    empty_kept: pd.DataFrame
    empty_rejected: pd.DataFrame


def clean_batch(
    path: str, spans: list[RowRange], schema: SchemaConfig, repeats: Repeats, types: Any
) -> CleanedBatch:
    """One batch of a development file typed, sorted and encoded by the worker, range by
    range as the stage sorts pieces (`tabml.data.clean`); `types`: the two files' Arrow types,
    where the stage knows them."""
    from tabml.core.io import encode_frames
    from tabml.data.clean import Tally, sort_development, type_development

    kept, rejected, tally = [], [], Tally()
    for span, raw in read_rows(path, spans):
        good, bad = sort_development(type_development(raw, schema), schema, span.start, repeats)
        tally = tally + Tally.of(good, bad, len(raw), schema)
        kept.append(good)
        rejected.append(bad)
    return CleanedBatch(
        encode_frames([k for k in kept if len(k)], types[0]),
        encode_frames([r for r in rejected if len(r)], types[1]),
        tally,
        kept[0].iloc[:0],
        rejected[0].iloc[:0],
    )


def deal_group(
    path: str, span: RowRange, which: np.ndarray, parts: int, types: list[Any]
) -> list[Encoded]:
    """One row group of a file dealt to `parts` files by `which` (each row's part), each
    part's rows encoded as that file's row group (`types`: the files' Arrow types, where the
    stage knows them): read, dealt and encoded by the worker."""
    from tabml.core.io import encode_frames

    [(_, rows)] = read_rows(path, [span])
    return [
        encode_frames([rows[which == i].reset_index(drop=True)], types[i]) for i in range(parts)
    ]


@dataclass(frozen=True)
class IngestedBatch:
    """One batch of a source ingested on a worker: each range's checks (`check_batch`, its
    typed frame cut to the id column, all `BatchChecks` keeps), the batch's row group of the
    output encoded there (`io.Encoded`), and the output's columns with no rows."""

    checked: list[CheckedBatch]
    part: Encoded
    empty: pd.DataFrame


def ingest_batch(
    path: str,
    spans: list[RowRange],
    schema: SchemaConfig,
    role: Role,
    pseudonymised: bool,
    types: Any,
) -> IngestedBatch:
    """One batch of a source typed, checked, stripped of personal data (`privacy.apply`
    with no key: columns dropped; pseudonymising needs the key, which stays with the stage)
    and encoded by the worker, range by range as the stage takes pieces."""
    from dataclasses import replace

    from tabml.core.io import encode_frames
    from tabml.core.schema import check_batch
    from tabml.governance import privacy

    checked, frames = [], []
    for _, raw in read_rows(path, spans):
        batch = check_batch(raw, schema, role)
        typed = batch.coerced.frame
        ids = typed[[schema.id]] if schema.id in typed.columns else typed.iloc[:, :0]
        checked.append(replace(batch, coerced=replace(batch.coerced, frame=ids)))
        frames.append(typed if pseudonymised else privacy.apply(typed, schema.pii, None))
    part = encode_frames([f for f in frames if len(f)], types)
    return IngestedBatch(checked, part, frames[0].iloc[:0])


def check_range(path: str, span: RowRange, schema: SchemaConfig, role: Role) -> CheckedBatch:
    """One range of a source file typed and checked by the schema (`check_batch`): read and
    checked by the worker."""
    from tabml.core.schema import check_batch

    return check_batch(read_range(path, span), schema, role)


def in_file_order(
    compute: DaskCompute,
    stage: str,
    batches: list[list[RowRange]],
    task: Callable[[list[RowRange]], tuple[Any, ...]],
    doing: str,
) -> Iterator[tuple[list[RowRange], Any]]:
    """Each batch's result, computed on the workers and taken in file order: `task(batch)`
    is the function to run and its arguments, made as the batch is sent (so it can carry what
    earlier results taught). At most two batches per worker are out at a time, so neither the
    workers nor this process hold the whole file. A task whose worker dies runs again on
    another (a task only reads), so a lost worker costs time, not the run. `doing` says what a
    task does, for progress and errors."""
    from collections import deque
    from itertools import islice

    with client(compute, stage) as dask_client:
        window = 2 * max(len(workers(dask_client)), 1)
        info(f"{stage}: {doing} {len(batches)} batch(es) on the cluster, {window} at a time")
        todo = iter(batches)
        out: deque[tuple[list[RowRange], Any]] = deque()

        def submit(batch: list[RowRange]) -> None:
            fn, *args = task(batch)
            out.append((batch, dask_client.submit(fn, *args, pure=False)))

        for batch in islice(todo, window):
            submit(batch)
        while out:
            batch, future = out.popleft()
            where = f"rows {batch[0].start:,} to {batch[-1].stop:,}"
            [result] = _gather(dask_client, [future], f"{stage}: {doing} {where} on the cluster")
            del future
            nxt = next(todo, None)
            if nxt is not None:
                submit(nxt)
            yield batch, result


def cleaned_on_cluster(
    path: str,
    schema: SchemaConfig,
    repeats: Repeats,
    batch_rows: int,
    compute: DaskCompute,
    types: Callable[[], tuple[Any, Any]],
) -> Iterator[CleanedBatch]:
    """Each batch of `batch_rows` rows of a development file cleaned on the workers, in file
    order (`clean_batch`); `types()`: the clean and rejected files' Arrow types as known so
    far, sent with each task."""
    spans = file_ranges(path, batch_rows)
    with for_workers("clean", [path]) as [there]:
        for _, cleaned in in_file_order(
            compute, "clean", batches_of(spans, batch_rows),
            lambda b: (clean_batch, there, b, schema, repeats, types()), "cleaning",
        ):  # fmt: skip
            yield cleaned


def ingested_on_cluster(
    path: str,
    schema: SchemaConfig,
    role: Role,
    pseudonymised: bool,
    batch_rows: int,
    compute: DaskCompute,
    types: Callable[[], Any],
) -> Iterator[IngestedBatch]:
    """Each batch of `batch_rows` rows of a Parquet source ingested on the workers, in file
    order (`ingest_batch`); `types()`: the output's Arrow types as known so far."""
    spans = file_ranges(path, batch_rows)
    with for_workers("ingest", [path]) as [there]:
        for _, batch in in_file_order(
            compute, "ingest", batches_of(spans, batch_rows),
            lambda b: (ingest_batch, there, b, schema, role, pseudonymised, types()), "ingesting",
        ):  # fmt: skip
            yield batch


def checked_on_cluster(
    path: str, schema: SchemaConfig, role: Role, batch_rows: int, compute: DaskCompute
) -> Iterator[tuple[CheckedBatch, bool]]:
    """Each range of a Parquet source typed and checked on the workers, in file order, and
    whether a batch of `batch_rows` ends there (the stage writes a row group per batch)."""
    spans = file_ranges(path, batch_rows)
    with for_workers("ingest", [path]) as [there]:
        for [span], checked in in_file_order(
            compute, "ingest", [[s] for s in spans],
            lambda b: (check_range, there, b[0], schema, role), "checking",
        ):  # fmt: skip
            yield checked, span.stop % batch_rows == 0 or span is spans[-1]


def dealt_on_cluster(
    path: str, which: np.ndarray, parts: int, compute: DaskCompute, types: Callable[[], list[Any]]
) -> Iterator[tuple[int, list[Encoded]]]:
    """Each row group of a file dealt to `parts` files by `which` (each row's part) on the
    workers, in file order: the group's rows, and its row group of each file, encoded there
    (`deal_group`; `types()`: the files' Arrow types as known so far). A task carries its
    group's slice of `which` (a byte a row), never the rows, and sends back compressed
    Parquet."""
    spans = file_ranges(path, None)
    with for_workers("split", [path]) as [there]:
        for [span], dealt in in_file_order(
            compute, "split", [[s] for s in spans],
            lambda b: (deal_group, there, b[0], which[b[0].start : b[0].stop], parts, types()),
            "dealing",
        ):  # fmt: skip
            yield span.stop - span.start, dealt


# --- the driver ---------------------------------------------------------------------------------


def fit_dask(
    train_path: str,
    valid_path: str,
    valid: pd.DataFrame,
    schema: SchemaConfig,
    cfg: LightGBMConfig,
    compute: DaskCompute,
    seed: int,
) -> tuple[Model, History]:
    """Train LightGBM across `compute.workers` ranks of a Dask cluster (see the module's doc).

    `valid` is the valid split as this process holds it: with a refit, its held-out scores
    come from the early-stopped booster, as on one machine."""
    from dataclasses import replace

    import numpy as np

    from tabml.learning.model import booster_from_text

    n = compute.workers
    with (
        for_workers("train", [train_path, valid_path]) as [train_path, valid_path],
        client(compute, threads=cfg.num_threads) as dask_client,
    ):
        ranks = rank_workers(dask_client, n)
        info(f"train: LightGBM on {n} Dask worker(s) as ranks 0..{n - 1}: {', '.join(ranks)}")
        job = RankJob(0, n, train_path, valid_path, schema, cfg, seed)
        if n > 1:
            prep = _fit_preprocessor(dask_client, train_path, schema, cfg)
            ports = dask_client.run(free_ports, 2, workers=ranks)
            machines = tuple(
                ",".join(f"{_host(a)}:{ports[a][phase]}" for a in ranks) for phase in (0, 1)
            )
            job = replace(
                job,
                prep=prep,
                valid_sample_rows=compute.valid_sample_rows,
                machines=(machines[0], machines[1]),
                time_out_minutes=compute.network_timeout_minutes,
            )
        futures = [
            dask_client.submit(
                run_rank,
                replace(job, rank=r),
                key=f"tabml-train-rank-{r}-of-{n}-{time.time_ns()}",
                workers=[address],
                allow_other_workers=False,
                pure=False,
                retries=0,
            )
            for r, address in enumerate(ranks)
        ]
        results = gather_ranks(dask_client, futures, ranks)
    first = results[0]
    for r, result in enumerate(results):
        for column, levels in result.categories_missing.items():
            info(
                f"train: rank {r} has no rows of {column} = {', '.join(levels[:5])}"
                f"{' ...' if len(levels) > 5 else ''}; LightGBM's bins for {column} may miss "
                "them (more rows per rank, or fewer ranks, fix it)"
            )
    model, history = first.model, first.history
    # every rank refits on its share: the refit saw all of them
    history = replace(history, refit_rows=sum(r.history.refit_rows for r in results))
    if first.early is not None:
        early = booster_from_text(first.early)
        x_valid = model.preprocessor.transform(valid, "codes")
        scores = np.asarray(early.predict(x_valid, num_iteration=history.best_iteration))
        history = replace(history, valid_scores=scores)
    if n > 1:  # the saved model leaves out this run's hosts and ports
        booster = booster_from_text(model.booster.model_to_string(), drop=RUN_PARAMS)
        model = replace(model, booster=booster)
    return model, replace(history, workers=n)


WHERE_DATA = (
    "; the workers read the stage's files at this same path: mount the workspace there on "
    f"every worker (a shared volume), or set {STORAGE_ENV} to an object store they can read "
    "(docs/scale.md), or run with compute=local"
)


def _failed(what: str, err: BaseException) -> TabmlError:
    """An error for a task that failed on a worker, saying where the data must be when the
    worker could not open a file."""
    hint = WHERE_DATA if isinstance(err, (FileNotFoundError, PermissionError)) else ""
    return TabmlError(f"{what} failed: {type(err).__name__}: {err}{hint}")


def _gather(dask_client: Any, futures: list[Any], what: str) -> list[Any]:
    """The futures' results (Dask retries a lost worker's tasks), or an error for people."""
    try:
        return list(dask_client.gather(futures))
    except TabmlError:
        raise  # tabml's own error from the task (bad data, say): already written for people
    except Exception as err:
        raise _failed(what, err) from None


def encrypted_or_local(address: str) -> bool:
    """Whether what crosses to the scheduler's cluster at `address` stays private: TLS, or a
    loopback host (the workers on this machine)."""
    import ipaddress

    if address.startswith("tls://"):
        return True
    host = _host(address) if "://" in address else address.rsplit(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it could be anywhere
        return False


def _host(address: str) -> str:
    """The host of a Dask address, e.g. tcp://10.0.0.5:38491 -> 10.0.0.5."""
    from distributed.comm import get_address_host

    return str(get_address_host(address))


def gather_ranks(dask_client: Any, futures: list[Any], ranks: list[str]) -> list[Any]:
    """Every rank's result, or an error naming the rank that failed or left the cluster.

    A rank whose worker dies cannot be rerun elsewhere (the others wait for it on LightGBM's
    network), so the run fails: at once when the scheduler sees the worker go, and otherwise
    when the other ranks give up on it after LightGBM's `time_out` (network_timeout_minutes).
    There is no deadline on training itself: a long fit is not a fault."""
    from dask.distributed import wait

    try:
        while True:
            with contextlib.suppress(TimeoutError):
                wait(futures, timeout=1)
            failed = [r for r, f in enumerate(futures) if f.status == "error"]
            if failed:
                # a rank's socket error is usually another rank's death: name that one
                err = futures[failed[0]].exception()
                cause = f"rank {failed[0]} then failed: {type(err).__name__}: {err}"
                _raise_if_gone(dask_client, futures, ranks, cause, wait_seconds=5)
                raise _failed(f"train: LightGBM rank {failed[0]} on {ranks[failed[0]]}", err)
            if all(f.status == "finished" for f in futures):
                return [f.result() for f in futures]
            _raise_if_gone(dask_client, futures, ranks, "", wait_seconds=0)
    finally:
        for future in futures:
            future.cancel()


def _raise_if_gone(
    dask_client: Any, futures: list[Any], ranks: list[str], cause: str, wait_seconds: float
) -> None:
    """Raise naming the first rank whose worker has left the cluster (waiting up to
    `wait_seconds` for the scheduler to notice)."""
    until = time.monotonic() + wait_seconds
    while True:
        alive = set(workers(dask_client))
        for r, address in enumerate(ranks):
            if address not in alive and futures[r].status != "finished":
                raise TabmlError(
                    f"train: LightGBM rank {r}'s worker {address} left the cluster during "
                    f"training{f' ({cause})' if cause else ''}; nothing was written. Rerun "
                    "once the cluster is whole"
                )
        if time.monotonic() >= until:
            return
        time.sleep(0.25)


def _fit_preprocessor(
    dask_client: Any, train_path: str, schema: SchemaConfig, cfg: LightGBMConfig
) -> Preprocessor:
    """The preprocessor from exact global statistics: a pass over train's row groups on the
    workers, reduced in row-group order (so the result does not depend on N), then one more
    pass per 16 bits of the medians' values."""
    import pyarrow.parquet as pq

    from tabml.learning.features import fit_from_stats
    from tabml.learning.stats import OrderSelect, merge_stats

    with _open(train_path) as handle:
        groups = pq.ParquetFile(handle).num_row_groups
    select: OrderSelect | None = None
    while True:
        prefixes = None if select is None else select.prefixes()
        futures = dask_client.map(
            group_stats,
            [train_path] * groups,
            range(groups),
            schema=schema,
            prefixes=prefixes,
            pure=False,
        )
        parts = _gather(dask_client, futures, f"train: statistics of {train_path}")
        stats = merge_stats(parts)
        select = OrderSelect.start(stats) if select is None else select.narrow(stats)
        if select.done:
            break
    info(f"train: preprocessing fitted from {stats.rows:,} train rows in {groups} row group(s)")
    return fit_from_stats(stats, select, schema, cfg.impute == "median")
