"""Charts as Mermaid `xychart-beta` blocks, which GitHub draws inside a comment.

Nothing is uploaded anywhere: the chart is text in the comment. Curves are sampled on a fixed
grid (ROC: the true-positive rate at false-positive rates 0, 0.05, ..., 1; precision-recall:
the best precision at recall 0, 0.05, ..., 1), so two runs are drawn on the same x values and
a chart stays a few hundred characters. xychart-beta has no legend: the colours are set in the
block (grey the base, blue this change, red a threshold) and the title says which is which.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tabml.core.catalog import Plots

if TYPE_CHECKING:
    from tabml.monitoring.monitor import Summary

GRID = [round(i / 20, 2) for i in range(21)]
BASE, HEAD, LIMIT, EXTRA = "#9e9e9e", "#1f77b4", "#d62728", "#ff7f0e"


def _values(values: Sequence[float | None]) -> str:
    return "[" + ", ".join("0" if v is None else f"{v:.3f}".rstrip("0").rstrip(".") or "0"
                           for v in values) + "]"  # fmt: skip


def block(
    title: str,
    x_axis: str,
    y_axis: str,
    lines: Sequence[tuple[str, Sequence[float | None]]],
    bars: Sequence[tuple[str, Sequence[float | None]]] = (),
    y_range: tuple[float, float] | None = (0.0, 1.0),
) -> str:
    """One fenced ```mermaid block: `x_axis` is `"name" lo --> hi` or `"name" [a, b, ...]`;
    each series is (colour, values)."""
    palette = ", ".join(colour for colour, _ in [*bars, *lines])
    rng = f" {y_range[0]:g} --> {y_range[1]:g}" if y_range else ""
    out = [
        "```mermaid",
        "---",
        "config:",
        "  themeVariables:",
        "    xyChart:",
        f'      plotColorPalette: "{palette}"',
        "---",
        "xychart-beta",
        f'  title "{title}"',
        f"  x-axis {x_axis}",
        f'  y-axis "{y_axis}"{rng}',
    ]
    out += [f"  bar {_values(v)}" for _, v in bars]
    out += [f"  line {_values(v)}" for _, v in lines]
    out.append("```")
    return "\n".join(out)


def _interp(x: Sequence[float], y: Sequence[float], at: Sequence[float]) -> list[float]:
    import numpy as np

    order = np.argsort(np.asarray(x, dtype="float64"), kind="stable")
    xs, ys = np.asarray(x, dtype="float64")[order], np.asarray(y, dtype="float64")[order]
    return [float(v) for v in np.interp(at, xs, ys)]


def roc_tpr(points: Sequence[Mapping[str, float]]) -> list[float]:
    """The true-positive rate at each false-positive rate of GRID."""
    return _interp([p["fpr"] for p in points], [p["tpr"] for p in points], GRID)


def pr_precision(points: Sequence[Mapping[str, float]]) -> list[float]:
    """At each recall of GRID, the best precision reached at that recall or above (the usual
    interpolated precision-recall curve)."""
    out = []
    for r in GRID:
        reached = [p["precision"] for p in points if p["recall"] >= r - 1e-12]
        out.append(max(reached) if reached else 0.0)
    return out


def _axis(name: str, labels: Sequence[str]) -> str:
    return f'"{name}" [' + ", ".join(f'"{label}"' for label in labels) + "]"


def curves(base: Mapping[str, Any], head: Mapping[str, Any]) -> list[str]:
    """ROC, precision-recall and calibration of the test split: this change, and the base's
    where it has the plot data. `base`/`head` map a plot file to its content."""

    def get(rev: Mapping[str, Any], name: str, key: str) -> list[dict[str, float]] | None:
        for path, content in rev.items():
            if path.endswith(name) and isinstance(content, Mapping) and key in content:
                return list(content[key])
        return None

    with_base = "grey: base, blue: this change"
    out = []
    curves_ = [
        (Plots.ROC, "roc", roc_tpr, "ROC curve", '"false-positive rate" 0 --> 1',
         "true-positive rate"),
        (Plots.PRECISION_RECALL, "pr", pr_precision, "Precision-recall", '"recall" 0 --> 1',
         "precision"),
    ]  # fmt: skip
    for file, key, sample, name, x_axis, y_axis in curves_:
        now, before = get(head, file, key), get(base, file, key)
        if not now:
            continue
        lines = [(BASE, sample(before))] if before else []
        lines.append((HEAD, sample(now)))
        title = f"{name} ({with_base})" if before else name
        out.append(block(title, x_axis, y_axis, lines))
    cal_h = get(head, Plots.CALIBRATION, "calibration")
    if cal_h:
        labels = [f"{b['mean_predicted']:.2f}" for b in cal_h]
        lines = [
            (BASE, [float(b["mean_predicted"]) for b in cal_h]),  # the diagonal: perfect
            (HEAD, [float(b["fraction_positive"]) for b in cal_h]),
        ]
        out.append(
            block(
                "Calibration, this change (blue: observed positive rate; grey: perfect)",
                _axis("mean predicted score, per bin", labels),
                "positive rate",
                lines,
            )
        )
    return out


def monitoring(summary: Summary) -> list[str]:
    """Per chunk of the production batch: drift alerts (bars), and the estimated and realized
    ROC AUC against the reference's band (lines)."""
    chunks = summary.chunks
    if not chunks:
        return []
    # numbered from 1, as the report's chunk table numbers them
    labels = [str(c.index + 1) for c in chunks]
    drift = [float(sum(v.alert for m in c.drift.values() for v in m.values())) for c in chunks]
    out = [
        block(
            "Drift alerts per chunk (univariate, every feature)",
            _axis("chunk", labels),
            "features drifting",
            [],
            bars=[(LIMIT, drift)],
            y_range=(0.0, max(1.0, max(drift))),
        )
    ]
    est = [c.estimated.get("roc_auc") for c in chunks]
    if any(e is not None for e in est):
        lower = [e.lower_threshold if e else None for e in est]
        real = [r.value if (r := c.realized.get("roc_auc")) else None for c in chunks]
        estimated = [e.value if e else None for e in est]
        values = [v for v in [*estimated, *lower, *real] if v is not None]
        lo, hi = min(values), max(values)
        pad = (hi - lo) * 0.1 or 0.01
        lines = [(LIMIT, lower), (HEAD, estimated)]
        title = "ROC AUC per chunk (blue: estimated, red: the alert threshold"
        if any(v is not None for v in real):
            lines.append((EXTRA, real))
            title += ", orange: realized"
        out.append(
            block(
                title + ")",
                _axis("chunk", labels),
                "ROC AUC",
                lines,
                y_range=(round(lo - pad, 3), round(min(1.0, hi + pad), 3)),
            )
        )
    return out
