"""model=lightgbm_dask: a scheduler that does not answer is an error naming it, in seconds."""

from __future__ import annotations

import socket
import time

import pytest

from tabml.config import ClusterConfig
from tabml.errors import ConfigError


def test_an_unreachable_scheduler_fails_within_seconds_naming_its_address() -> None:
    from tabml.distributed import client

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    start = time.monotonic()
    refused = f"scheduler at {address} did not answer within 2 s"
    with (
        pytest.raises(ConfigError, match=refused),
        client(ClusterConfig(address=address, connect_timeout_seconds=2)),
    ):
        pass
    assert time.monotonic() - start < 15
