"""compute=dask: a scheduler that does not answer is an error naming it, in seconds."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tabml.core.config import DaskCompute
from tabml.core.errors import ConfigError


def test_an_unreachable_scheduler_fails_within_seconds_naming_its_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tabml.compute.distributed import client

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", address)
    start = time.monotonic()
    refused = rf"scheduler at {address} \(DASK_SCHEDULER_ADDRESS\) did not answer within 2 s"
    with (
        pytest.raises(ConfigError, match=refused),
        client(DaskCompute(backend="dask", workers=2, connect_timeout_seconds=2)),
    ):
        pass
    assert time.monotonic() - start < 15


@pytest.mark.parametrize(
    ("model", "compute", "refused"),
    [
        ({"name": "lightgbm_dask"}, {"backend": "local"}, "model=lightgbm compute=dask"),
        ({"name": "logreg"}, {"backend": "dask", "workers": 2}, "trains LightGBM only"),
        ({"clip_quantiles": [0.01, 0.99]}, {"backend": "dask", "workers": 2}, "clip_quantiles"),
        ({}, {"backend": "dask", "workers": 0}, "greater than or equal to 1"),
    ],
)
def test_compute_settings_a_cluster_cannot_honour_are_refused_before_training(
    model: dict[str, object], compute: dict[str, object], refused: str
) -> None:
    import yaml

    from tabml.core.config import TrainParams
    from tests.conftest import ROOT

    tree = yaml.safe_load((ROOT / "params.yaml").read_text())
    base = {"name": "logreg", "C": 1.0, "max_iter": 100, "impute": "median"}
    tree["model"] = base | model if model.get("name") == "logreg" else tree["model"] | model
    tree["compute"] = compute
    with pytest.raises(ConfigError, match=refused):
        TrainParams.from_tree(tree, "params.yaml")


def test_one_rank_with_clip_bounds_is_allowed_it_is_single_machine_training() -> None:
    import yaml

    from tabml.core.config import TrainParams
    from tests.conftest import ROOT

    tree = yaml.safe_load((ROOT / "params.yaml").read_text())
    tree["model"]["clip_quantiles"] = [0.01, 0.99]
    tree["compute"] = {"backend": "dask", "workers": 1}
    assert TrainParams.from_tree(tree, "params.yaml").compute.workers == 1  # type: ignore[union-attr]


def test_row_ranges_cut_row_groups_where_batches_end() -> None:
    """Ranges come from the data alone: each lies in one row group and in one batch, and
    together they tile the file in order."""
    from tabml.compute.distributed import RowRange, row_ranges

    spans = row_ranges([500, 500, 500, 403], batch_rows=1_200)
    assert [(s.group, s.start, s.stop) for s in spans] == [
        (0, 0, 500), (1, 500, 1_000), (2, 1_000, 1_200), (2, 1_200, 1_500), (3, 1_500, 1_903),
    ]  # fmt: skip
    assert spans[3] == RowRange(group=2, first=1_000, start=1_200, stop=1_500)
    assert row_ranges([], 10) == []
    assert [(s.start, s.stop) for s in row_ranges([25], 10)] == [(0, 10), (10, 20), (20, 25)]


@pytest.mark.parametrize(
    ("address", "private"),
    [
        ("tls://scheduler:8786", True),
        ("tcp://127.0.0.1:8786", True),
        ("tcp://localhost:8786", True),
        ("tcp://[::1]:8786", True),
        ("127.0.0.1:8786", True),
        ("tcp://10.0.0.5:8786", False),
        ("tcp://scheduler:8786", False),
        ("10.1.1.1:8786", False),
    ],
)
def test_only_tls_or_this_machine_counts_as_private(address: str, private: bool) -> None:
    """Where ingest may send raw personal data from the workers (a host name could be
    anywhere, so only TLS makes it private)."""
    from tabml.compute.distributed import encrypted_or_local

    assert encrypted_or_local(address) is private


def test_a_rank_reads_its_rows_in_blocks_as_the_dealt_frame_holds_them(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A rank's train rows reach LightGBM a row group at a time (`rank_blocks`), never as a
    frame: the blocks are the rows `deal` gives the rank, in file order, encoded and
    labelled as the whole dealt frame would be; and the categories it never sees are named."""
    import numpy as np

    from tabml.compute.distributed import deal, positives, rank_blocks, rows_kept
    from tabml.core.config import SchemaConfig, parse
    from tabml.learning import features
    from tests.conftest import make_frame, schema_dict, write_groups

    schema = parse(SchemaConfig, schema_dict(), "dataset.schema")
    frame = make_frame(1_000, seed=5).drop(columns=["email"])
    path = write_groups(frame, tmp_path / "train.parquet", 128)
    prep = features.fit(frame, schema, impute=True, clip_quantiles=None)
    target = schema.target.column
    for rank in range(3):
        seen = [0, 0]

        def mine(part, _start, rank=rank, seen=seen):  # type: ignore[no-untyped-def]
            return deal(positives(part, target), 3, seen) == rank

        (kept,), present = rows_kept(path, [mine], target, list(prep.categorical))
        blocks = rank_blocks(path, kept, prep, target)
        whole = deal(positives(frame, target), 3, [0, 0]) == rank
        expected = frame[whole]
        assert len(blocks) == int(whole.sum())
        encoded = np.concatenate(list(blocks.matrices()))
        assert np.array_equal(encoded, prep.transform(expected, "codes"), equal_nan=True)
        assert np.array_equal(blocks.labels(), expected[target].to_numpy(dtype="float32"))
        # the sample LightGBM bins from: only those rows, encoded alone
        some = np.array([0, 3, 7])
        assert np.array_equal(
            blocks.encode(1, some), prep.transform(expected.iloc[blocks.sizes[0] + some], "codes"),
            equal_nan=True,
        )  # fmt: skip
        assert present["income"] == set(expected["income"].dropna().astype("string"))


def test_without_a_store_the_workers_get_the_files_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tabml.compute.distributed import for_workers

    monkeypatch.delenv("TABML_CLUSTER_STORAGE", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.parquet").write_bytes(b"x")
    with for_workers("clean", ["a.parquet", "s3://bucket/b.parquet"]) as there:
        assert there == [str(tmp_path / "a.parquet"), "s3://bucket/b.parquet"]


def test_the_store_holds_the_workers_copies_only_while_the_stage_works_on_the_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Copies under <store>/<stage>-<random>/, readable by the URL the workers get, and gone
    afterwards: when the work ends, and when it fails."""
    from tabml.compute.distributed import for_workers, local_file

    store = tmp_path / "store"
    store.mkdir()
    monkeypatch.setenv("TABML_CLUSTER_STORAGE", store.as_uri() + "/")
    # a local cluster's workers read this machine's files: nothing to copy
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    with for_workers("train", [str(tmp_path)]) as there:
        assert there == [str(tmp_path)] and list(store.iterdir()) == []
    # a cluster elsewhere (nothing connects to it here)
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://10.0.0.5:8786")
    files = []
    for name, body in (("train.parquet", b"rows"), ("batch.csv", b"a,b\n1,2\n")):
        (tmp_path / name).write_bytes(body)
        files.append(str(tmp_path / name))
    with for_workers("train", files) as there:
        assert all(url.startswith(store.as_uri() + "/train-") for url in there)
        (run,) = store.iterdir()
        assert sorted(p.name for p in run.iterdir()) == ["0-train.parquet", "1-batch.csv"]
        # a reader that needs a file name (a CSV on a worker) gets a local copy, with its suffix
        with local_file(there[1]) as local:
            assert Path(local).suffix == ".csv" and Path(local).read_bytes() == b"a,b\n1,2\n"
        assert not Path(local).exists()
    assert list(store.iterdir()) == []
    assert "train: copied 2 file(s)" in capsys.readouterr().err
    with pytest.raises(RuntimeError, match="a task failed"), for_workers("split", files[:1]):
        assert len(list(store.iterdir())) == 1
        raise RuntimeError("a task failed")
    assert list(store.iterdir()) == []


def test_a_store_that_cannot_be_written_is_an_error_naming_it_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tabml.compute.distributed import for_workers

    (tmp_path / "train.parquet").write_bytes(b"rows")
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the store's folder should be")
    monkeypatch.setenv("TABML_CLUSTER_STORAGE", blocked.as_uri())
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://10.0.0.5:8786")
    named = r"could not copy .*train\.parquet to file://.*not-a-folder \(TABML_CLUSTER_STORAGE\)"
    with (
        pytest.raises(ConfigError, match=named),
        for_workers("train", [str(tmp_path / "train.parquet")]),
    ):
        pytest.fail("the stage went on without its files in the store")
    assert blocked.read_text() == "a file where the store's folder should be"
    # a store that refuses every call (no credentials, say): the same error, not the clean-up's
    import fsspec.implementations.local as local

    def refused(*args: object, **kwargs: object) -> None:
        raise PermissionError("access denied")

    for method in ("makedirs", "exists", "rm"):
        monkeypatch.setattr(local.LocalFileSystem, method, refused)
    monkeypatch.setenv("TABML_CLUSTER_STORAGE", (tmp_path / "store").as_uri())
    with (
        pytest.raises(ConfigError, match=r"could not copy .*PermissionError: access denied"),
        for_workers("train", [str(tmp_path / "train.parquet")]),
    ):
        pytest.fail("the stage went on without its files in the store")


def test_forget_purge_removes_the_copies_a_killed_run_left_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run killed mid-stage leaves its copies (pseudonymised rows): `tabml forget --purge`
    removes every such folder from the store, and leaves what else the prefix holds."""
    from tabml.compute.distributed import for_workers, remove_copies

    store = tmp_path / "store"
    monkeypatch.delenv("TABML_CLUSTER_STORAGE", raising=False)
    assert remove_copies() == 0
    monkeypatch.setenv("TABML_CLUSTER_STORAGE", store.as_uri())
    assert remove_copies() == 0  # nothing there yet
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://10.0.0.5:8786")
    (tmp_path / "raw.parquet").write_bytes(b"rows")
    killed = [for_workers(stage, [str(tmp_path / "raw.parquet")]) for stage in ("clean", "monitor")]
    for run in killed:
        run.__enter__()  # and never left: the process was killed
    (store / "notes.txt").write_text("not tabml's")
    (store / "clean-not-a-run").mkdir()
    assert remove_copies() == 2
    assert sorted(p.name for p in store.iterdir()) == ["clean-not-a-run", "notes.txt"]
