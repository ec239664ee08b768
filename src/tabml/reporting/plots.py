"""PNG charts drawn with matplotlib (plotly's image export can hang; plotly is kept for HTML).

Each function takes plain data (a monitoring `Summary`, or plot rows) and writes one PNG. The
files carry no timestamp or version metadata, so the same data gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabml.core import io

if TYPE_CHECKING:
    import numpy as np

    from tabml.learning.tune import Trial
    from tabml.monitoring.monitor import Summary

_PNG_METADATA = {"Software": None}
ALERT = "#d62728"
OK = "#2ca02c"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    plt = _pyplot()
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata=_PNG_METADATA, bbox_inches="tight")
    plt.close(fig)


def _chunk_axis(ax: Any, n: int, first: int) -> None:
    """Chunk numbers on the x axis, at most about 20 of them, counted from `first`."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(nbins=min(n, 20), integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{int(v) + first}"))
    ax.set_xlabel("chunk")


def _no_data(path: Path, title: str, why: str = "the batch had no rows") -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 1.5))
    ax.axis("off")
    ax.text(0.5, 0.5, f"{title}: {why}", ha="center", va="center")
    _save(fig, path)


def drift_heatmap(summary: Summary, path: Path) -> None:
    """Chunks by columns: which (column, chunk) cells raised a drift alert."""
    import numpy as np
    from matplotlib.colors import ListedColormap

    plt = _pyplot()
    chunks = summary.chunks
    if not chunks:
        _no_data(path, "Drift alerts")
        return
    columns = list(chunks[0].drift)
    rows = columns + [f"multivariate: {n}" for n in chunks[0].multivariate]
    grid = np.zeros((len(rows), len(chunks)))
    for j, chunk in enumerate(chunks):
        for i, col in enumerate(columns):
            grid[i, j] = any(c.alert for c in chunk.drift[col].values())
        for k, cell in enumerate(chunk.multivariate.values()):
            grid[len(columns) + k, j] = cell.alert
    width = min(max(5.0, 0.55 * len(chunks) + 3), 16.0)
    fig, ax = plt.subplots(figsize=(width, 0.42 * len(rows) + 1.6))
    ax.imshow(grid, cmap=ListedColormap(["#e8f4ea", ALERT]), vmin=0, vmax=1, aspect="auto")
    _chunk_axis(ax, len(chunks), first=1)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_title(f"Drift alerts ({int(grid.sum())} of {grid.size} cells)")
    if len(chunks) <= 40:  # cell borders, where cells are wide enough to see them
        ax.set_xticks(np.arange(-0.5, len(chunks)), minor=True)
        ax.set_yticks(np.arange(-0.5, len(rows)), minor=True)
        ax.grid(which="minor", color="white", linewidth=1.5)
        ax.tick_params(which="minor", length=0)
    _save(fig, path)


def performance_chart(summary: Summary, path: Path) -> None:
    """Estimated (CBPE) against realized performance per chunk, one panel per metric."""
    plt = _pyplot()
    if not summary.chunks:
        _no_data(path, "Performance")
        return
    metrics = summary.methods.performance
    x = list(range(1, len(summary.chunks) + 1))
    fig, axes = plt.subplots(len(metrics), 1, figsize=(7, 2.8 * len(metrics)), squeeze=False)
    marker = {"marker": "o"} if len(x) <= 40 else {}
    for ax, metric in zip(axes[:, 0], metrics, strict=True):
        est = [c.estimated[metric] for c in summary.chunks]
        ax.plot(x, [c.value for c in est], label="estimated (CBPE)", **marker)
        real = [c.realized.get(metric) for c in summary.chunks]
        if any(r is not None and r.value is not None for r in real):
            ax.plot(
                x,
                [r.value if r else None for r in real],
                linestyle="--",
                label="realized",
            )
        for key in ("lower_threshold", "upper_threshold"):
            values = [getattr(c, key) for c in est]
            if any(v is not None for v in values):
                label = "thresholds" if key == "lower_threshold" else None
                ax.plot(x, values, color="grey", linewidth=0.8, linestyle=":", label=label)
        alerts = [(xi, c.value) for xi, c in zip(x, est, strict=True) if c.alert]
        if alerts:
            ax.scatter(*zip(*alerts, strict=True), color=ALERT, zorder=3, label="alert")
        ax.set_title(metric)
        _chunk_axis(ax, len(x), first=0)
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    _save(fig, path)


def data_quality_chart(summary: Summary, path: Path) -> None:
    """Alerts per column for each data-quality check, over all chunks."""
    import numpy as np

    plt = _pyplot()
    if not summary.chunks:
        _no_data(path, "Data-quality alerts")
        return
    by_check = summary.totals.data_quality_alerts_by_column
    checks = [c for c in ("missing", "unseen", "out_of_range") if c in by_check]
    columns = sorted({col for c in checks for col in by_check[c]})
    fig, ax = plt.subplots(figsize=(7, 0.45 * max(len(columns), 1) + 1.6))
    y = np.arange(len(columns))
    height = 0.8 / max(len(checks), 1)
    labels = {
        "missing": "missing values",
        "unseen": "unseen values",
        "out_of_range": "out of range",
    }
    for k, check in enumerate(checks):
        ax.barh(
            y + k * height,
            [by_check[check].get(col, 0) for col in columns],
            height=height,
            label=labels[check],
        )
    ax.set_yticks(y + height * (len(checks) - 1) / 2, columns)
    ax.set_xlim(0, max(len(summary.chunks), 1))
    ax.set_xlabel(f"chunks with an alert (of {len(summary.chunks)})")
    ax.set_title("Data-quality alerts")
    ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)


# --- pull-request report: base against this change -------------------------------------------

BASE_STYLE = {"color": "#7f7f7f", "linestyle": "--", "linewidth": 1.4}
HEAD_STYLE = {"color": "#1f77b4", "linestyle": "-", "linewidth": 1.8}


def overlay(
    series: dict[str, list[dict[str, Any]] | None],
    x: str,
    y: str,
    path: Path,
    title: str,
    labels: tuple[str, str],
    diagonal: bool = False,
) -> None:
    """One line chart with the base (dashed grey) and this change (solid blue) on it.

    `series` maps "base" and "head" to rows of a DVC plot file (either may be None).
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4.2))
    if diagonal:
        ax.plot([0, 1], [0, 1], color="#bbbbbb", linewidth=0.8, linestyle=":")
    # this change first, so that where the two coincide the dashed base stays visible on top
    for side, style in (("head", HEAD_STYLE), ("base", BASE_STYLE)):
        rows = series.get(side)
        if rows:
            ax.plot(
                [r[x] for r in rows],
                [r[y] for r in rows],
                label="base" if side == "base" else "this change",
                marker="o" if len(rows) <= 20 else None,
                markersize=3,
                **style,
            )
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.legend(loc="best", fontsize=9)
    ax.grid(alpha=0.3)
    _save(fig, path)


def confusion_grid(rows: list[dict[str, Any]], classes: list[str]) -> np.ndarray:
    """Counts by (actual, predicted) from confusion.json's rows: a row per cell with its
    `count`, or, from a base written before counts, a row per sample."""
    import numpy as np

    grid = np.zeros((len(classes), len(classes)), dtype=int)
    for r in rows:
        grid[classes.index(str(r["actual"])), classes.index(str(r["predicted"]))] += int(
            r.get("count", 1)
        )
    return grid


def confusion_pair(series: dict[str, list[dict[str, Any]] | None], path: Path) -> None:
    """The confusion matrices of the base and of this change, side by side, with counts."""
    import numpy as np

    plt = _pyplot()
    sides = [(s, rows) for s, rows in series.items() if rows]
    classes = sorted(
        {str(r[k]) for _, rows in sides for r in rows for k in ("actual", "predicted")}
    )
    fig, axes = plt.subplots(1, max(len(sides), 1), figsize=(4.2 * max(len(sides), 1), 3.8))
    for ax, (side, rows) in zip(np.atleast_1d(axes), sides, strict=False):
        grid = confusion_grid(rows, classes)
        ax.imshow(grid, cmap="Blues")
        for i in range(len(classes)):
            for j in range(len(classes)):
                dark = grid[i, j] > grid.max() / 2
                ax.text(
                    j,
                    i,
                    f"{grid[i, j]:,}",
                    ha="center",
                    va="center",
                    color="white" if dark else "black",
                )
        ax.set_xticks(range(len(classes)), classes)
        ax.set_yticks(range(len(classes)), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("actual")
        ax.set_title("base" if side == "base" else "this change")
    fig.suptitle("Confusion matrix (test, at each revision's threshold)")
    fig.tight_layout()
    _save(fig, path)


def tuning_history(trials: list[Trial], path: Path) -> None:
    """Each trial's ROC AUC (grey: pruned, at its last report), and the best so far."""
    if not [t for t in trials if t.value is not None]:
        _no_data(path, "Tuning", "no trial finished")
        return
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    done = [t for t in trials if t.state == "complete" and t.value is not None]
    pruned = [t for t in trials if t.state == "pruned" and t.value is not None]
    ax.scatter([t.number + 1 for t in done], [t.value for t in done], s=16, color="#1f77b4",
               label="trial")  # fmt: skip
    ax.scatter([t.number + 1 for t in pruned], [t.value for t in pruned], s=12, color="#bbbbbb",
               label="pruned (last report)")  # fmt: skip
    best, xs, ys = None, [], []
    for t in trials:
        if t.state == "complete" and t.value is not None and (best is None or t.value > best):
            best = t.value
        if best is not None:
            xs.append(t.number + 1)
            ys.append(best)
    ax.step(xs, ys, where="post", color="#d62728", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("ROC AUC")
    ax.set_title("Tuning: optimisation history")
    values = [float(t.value) for t in trials if t.value is not None]
    ax.set_ylim(min(values) - 0.002, max(values) + 0.002)
    ax.legend(loc="lower right")
    _save(fig, path)


def tuning_importance(importances: dict[str, float], path: Path) -> None:
    """Each setting's share of the variation in ROC AUC across trials (fANOVA)."""
    if not importances:
        _no_data(path, "Tuning", "too few finished trials to say what mattered")
        return
    plt = _pyplot()
    names = list(importances)[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(names) + 1.2))
    ax.barh(names, [importances[n] for n in names], color="#1f77b4")
    ax.set_xlabel("share of the variation in ROC AUC")
    ax.set_title("Tuning: what mattered")
    _save(fig, path)
