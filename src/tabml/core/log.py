"""Progress output for people, on stderr so that stdout stays machine-readable."""

from __future__ import annotations

import sys


def info(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
