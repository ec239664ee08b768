"""Response time, measured side by side: never a stored absolute figure.

Absolute times are noisy (another process, a CPU's clock, a CI runner's neighbours), so
models are only ever timed against each other, in the same process, on the same records, in
interleaved rounds: each round times every model once, in an order that rotates, so a change
in the machine's speed falls on all of them alike. `interleaved` collects the times;
`ratio` turns two models' rounds into a ratio with a 95% interval (on the log scale, across
rounds: each round's ratio of medians is one paired observation).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tabml.governance.compare import Z95


def interleaved(
    scorers: Sequence[Callable[[list[dict[str, Any]]], Any]],
    records: list[dict[str, Any]],
    rounds: int,
    per_round: int = 20,
    batch: int = 1_000,
) -> tuple[list[list[list[float]]], list[list[float]]]:
    """Per scorer and round, the seconds to score each of `per_round` single records; and per
    scorer, the seconds to score `batch` records at once, once a round."""
    import gc

    for score in scorers:  # warm-up: first calls pay for caches and lazy imports
        score(records[:1])
        score(records[:batch])
    single: list[list[list[float]]] = [[] for _ in scorers]
    many: list[list[float]] = [[] for _ in scorers]
    # as the service runs (it freezes what start-up allocated): no collection pauses in the
    # timings, which would land on whichever package happened to be scoring
    gc.collect()
    gc.freeze()
    enabled = gc.isenabled()
    gc.disable()
    try:
        _rounds(scorers, records, rounds, per_round, batch, single, many)
    finally:
        if enabled:
            gc.enable()
        gc.unfreeze()
    return single, many


def _rounds(
    scorers: Sequence[Callable[[list[dict[str, Any]]], Any]],
    records: list[dict[str, Any]],
    rounds: int,
    per_round: int,
    batch: int,
    single: list[list[list[float]]],
    many: list[list[float]],
) -> None:
    for r in range(rounds):
        for i in [(j + r) % len(scorers) for j in range(len(scorers))]:
            times = []
            for k in range(per_round):
                record = records[(r * per_round + k) % len(records)]
                start = time.perf_counter()
                scorers[i]([record])
                times.append(time.perf_counter() - start)
            single[i].append(times)
            start = time.perf_counter()
            scorers[i](records[:batch])
            many[i].append(time.perf_counter() - start)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


@dataclass(frozen=True)
class Ratio:
    """The challenger's one-record time over the champion's, paired by round."""

    champion_p50_ms: float
    challenger_p50_ms: float
    champion_p99_ms: float
    challenger_p99_ms: float
    ratio: float  # geometric mean of the rounds' ratios of medians
    low: float
    high: float
    rounds: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ratio(champion: list[list[float]], challenger: list[list[float]]) -> Ratio:
    """Paired by round: log(median challenger / median champion) per round, its mean and a
    normal 95% interval across rounds, back on the ratio scale."""
    logs = [
        math.log(percentile(b, 50) / percentile(a, 50))
        for a, b in zip(champion, challenger, strict=True)
    ]
    n = len(logs)
    mean = sum(logs) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / (n - 1)) if n > 1 else 0.0
    half = Z95 * sd / math.sqrt(n) if n > 1 else 0.0
    flat_a = [t for r in champion for t in r]
    flat_b = [t for r in challenger for t in r]
    return Ratio(
        champion_p50_ms=percentile(flat_a, 50) * 1000,
        challenger_p50_ms=percentile(flat_b, 50) * 1000,
        champion_p99_ms=percentile(flat_a, 99) * 1000,
        challenger_p99_ms=percentile(flat_b, 99) * 1000,
        ratio=math.exp(mean),
        low=math.exp(mean - half),
        high=math.exp(mean + half),
        rounds=n,
    )


def speed_ranks(single: list[list[list[float]]]) -> list[int]:
    """Each scorer's rank by one-record time, ties shared: 1 + the number of others that are
    faster beyond doubt (the 95% interval of their paired ratio lies below 1). Two scorers
    whose times cannot be told apart share a rank, so the ranking does not flip on noise."""
    ranks = []
    for i, mine in enumerate(single):
        faster = sum(
            1 for j, theirs in enumerate(single) if j != i and ratio(mine, theirs).high < 1
        )
        ranks.append(1 + faster)
    return ranks


def records_of(frame: Any, columns: list[str], n: int) -> list[dict[str, Any]]:
    """The first `n` rows as /predict records (JSON types, null for a missing value)."""
    import json

    parsed: list[dict[str, Any]] = json.loads(frame[columns].head(n).to_json(orient="records"))
    return parsed
