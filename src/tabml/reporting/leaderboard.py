"""Experiments side by side (`tabml exp compare`): accuracy with its interval, response time,
size, and which are on the Pareto front of accuracy against response time. Pure: the shell
(`tabml.stages.leaderboard`) loads the packages, scores and times them.

Response time is measured, never stored: absolute times are noisy, so every package is timed
in the same run, on the same rows, in interleaved rounds (each round times every package once,
in an order that rotates), and the table shows each one's median and 99th percentile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any


@dataclass
class Entry:
    """One experiment (or the workspace): what it is, how accurate, how fast, how big."""

    name: str
    rev: str
    params: dict[str, Any]
    auc: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # split: auc, lo, hi
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    records_per_s: float = 0.0
    size_bytes: int = 0
    trees: int | None = None
    pareto: bool = False
    speed_rank: int = 0  # 1 = fastest; packages that cannot be told apart share a rank


def auc_interval(y: Any, scores: Any) -> tuple[float, float, float]:
    """ROC AUC with its 95% interval (DeLong's variance)."""
    import math

    from tabml.governance.compare import Z95, delong

    aucs, cov, _, _ = delong(y, scores)
    auc, se = float(aucs[0]), math.sqrt(max(float(cov[0, 0]), 0.0))
    return auc, max(0.0, auc - Z95 * se), min(1.0, auc + Z95 * se)


def mark_pareto(entries: list[Entry], split: str = "test") -> None:
    """On the front: no other entry is at least as accurate and at least as fast, and better
    in one of the two (accuracy: ROC AUC on `split`; speed: the one-record median, which is
    stable from run to run where the p99 of a sub-millisecond call is the machine's noise)."""
    for e in entries:
        e.pareto = not any(
            o is not e
            and o.auc[split][0] >= e.auc[split][0]
            and o.p50_ms <= e.p50_ms
            and (o.auc[split][0] > e.auc[split][0] or o.p50_ms < e.p50_ms)
            for o in entries
        )


def differing(entries: Sequence[Entry]) -> list[str]:
    """The params keys whose values are not the same in every entry."""
    keys = sorted({k for e in entries for k in e.params})
    return [k for k in keys if len({repr(e.params.get(k)) for e in entries}) > 1]


def _auc_text(value: tuple[float, float, float] | None) -> str:
    return "n/a" if value is None else f"{value[0]:.4f} [{value[1]:.4f}, {value[2]:.4f}]"


def rows(entries: Sequence[Entry], splits: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """The table's header and rows: name, differing params, AUCs, times, size, trees, Pareto."""
    keys = differing(entries)
    header = ["experiment", *keys, *(f"{s} ROC AUC [95% CI]" for s in splits),
              "p50 ms (1 record)", "p99 ms (1 record)", "speed rank", "records/s (1,000)",
              "size KiB", "trees", "Pareto"]  # fmt: skip
    out = []
    for e in entries:
        out.append(
            [
                e.name,
                *(_short(e.params.get(k)) for k in keys),
                *(_auc_text(e.auc.get(s)) for s in splits),
                f"{e.p50_ms:.3f}",
                f"{e.p99_ms:.3f}",
                str(e.speed_rank) if e.speed_rank else "",
                f"{e.records_per_s:,.0f}",
                f"{e.size_bytes / 1024:,.0f}",
                "" if e.trees is None else str(e.trees),
                "★" if e.pareto else "",
            ]
        )
    return header, out


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def markdown(entries: Sequence[Entry], splits: Sequence[str], note: str) -> str:
    header, body = rows(entries, splits)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    promote = [e.name for e in entries if e.rev != "workspace"]
    how = (
        f"\nPromote one into conf/ with `tabml promote NAME` (e.g. `tabml promote {promote[0]}`)."
        if promote
        else ""
    )
    return (
        "# Experiments side by side\n\n" + note + "\n\n" + "\n".join(lines) + "\n\n"
        "★: on the Pareto front of test ROC AUC against the one-record p50 (nothing else is "
        "both at least as accurate and at least as fast). Speed rank: 1 + the packages faster "
        "beyond doubt (paired by round, 95%); packages that cannot be told apart share one."
        + how
        + "\n"
    )


def scatter_svg(entries: Sequence[Entry], split: str = "test") -> str:
    """Accuracy (y) against the one-record p50 (x), one labelled point per entry."""
    width, height, left, bottom, top, right = 640, 380, 70, 50, 30, 30
    xs = [e.p50_ms for e in entries]
    ys = [e.auc[split][0] for e in entries]
    x0, x1 = 0.0, max(xs) * 1.15 or 1.0
    y0, y1 = min(ys) - 0.002, max(ys) + 0.002

    def px(x: float) -> float:
        return left + (width - left - right) * (x - x0) / (x1 - x0)

    def py(y: float) -> float:
        return top + (height - top - bottom) * (1 - (y - y0) / (y1 - y0))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="system-ui,sans-serif" font-size="11">',
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="13">{split} ROC AUC '
        "against response time (p50, one record)</text>",
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" '
        'stroke="#333"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#333"/>',
        f'<text x="{(left + width - right) / 2}" y="{height - 12}" text-anchor="middle">'
        "p50 ms, one record (lower is faster)</text>",
    ]
    for k in range(5):
        xv, yv = x0 + (x1 - x0) * k / 4, y0 + (y1 - y0) * k / 4
        parts.append(
            f'<text x="{px(xv):.1f}" y="{height - bottom + 14}" text-anchor="middle">'
            f"{xv:.3g}</text>"
            f'<text x="{left - 6}" y="{py(yv) + 4:.1f}" text-anchor="end">{yv:.4f}</text>'
        )
    for e, x, y in zip(entries, xs, ys, strict=True):
        colour = "#d62728" if e.pareto else "#1f77b4"
        parts.append(
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="5" fill="{colour}"/>'
            f'<text x="{px(x) + 8:.1f}" y="{py(y) - 6:.1f}">{escape(e.name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def html(entries: Sequence[Entry], splits: Sequence[str], note: str) -> str:
    header, body = rows(entries, splits)
    table = "<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>"
    table += "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in body)
    table += "</table>"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Experiments side '
        "by side</title><style>body{font-family:system-ui,sans-serif;margin:2em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}"
        "</style></head><body><h1>Experiments side by side</h1>"
        f"<p>{escape(note)}</p>{table}<p>Red: on the Pareto front of test ROC AUC against "
        f"the one-record p50.</p>{scatter_svg(entries)}</body></html>\n"
    )


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out
