"""compute=dask: a scheduler that does not answer is an error naming it, in seconds."""

from __future__ import annotations

import socket
import time

import pytest

from tabml.config import DaskCompute
from tabml.errors import ConfigError


def test_an_unreachable_scheduler_fails_within_seconds_naming_its_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tabml.distributed import client

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

    from tabml.config import TrainParams
    from tests.conftest import ROOT

    tree = yaml.safe_load((ROOT / "params.yaml").read_text())
    base = {"name": "logreg", "C": 1.0, "max_iter": 100, "impute": "median"}
    tree["model"] = base | model if model.get("name") == "logreg" else tree["model"] | model
    tree["compute"] = compute
    with pytest.raises(ConfigError, match=refused):
        TrainParams.from_tree(tree, "params.yaml")


def test_one_rank_with_clip_bounds_is_allowed_it_is_single_machine_training() -> None:
    import yaml

    from tabml.config import TrainParams
    from tests.conftest import ROOT

    tree = yaml.safe_load((ROOT / "params.yaml").read_text())
    tree["model"]["clip_quantiles"] = [0.01, 0.99]
    tree["compute"] = {"backend": "dask", "workers": 1}
    assert TrainParams.from_tree(tree, "params.yaml").compute.workers == 1  # type: ignore[union-attr]


def test_row_ranges_cut_row_groups_where_batches_end() -> None:
    """Ranges come from the data alone: each lies in one row group and in one batch, and
    together they tile the file in order."""
    from tabml.distributed import RowRange, row_ranges

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
    from tabml.distributed import encrypted_or_local

    assert encrypted_or_local(address) is private
