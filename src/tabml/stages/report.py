"""report: the shell of `tabml report` (a command, not a dvc.yaml stage).

Reads the base revision and the workspace through DVC, draws the overlay charts, copies the
monitoring charts beside them, and writes the Markdown `tabml.reporting.report.build` returns. By
default
the Markdown carries the charts as Mermaid blocks (GitHub draws them; nothing is uploaded) and
the PNGs are for the workflow's artifact; with `mermaid=False` it links the PNGs relative to
the Markdown file, which is how `cml comment update --publish` finds and uploads them (the
opt-in of docs/pull-request-report.md).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabml.adapters.dvc_adapter import Revision, read_revisions
from tabml.core import io
from tabml.core.catalog import Monitoring, Repo
from tabml.core.log import info
from tabml.governance.compare import SameRows
from tabml.reporting import plots
from tabml.reporting import report as rep

# caption -> plot kind (the image is `<kind>.png`, its data `Repo.PLOT_FILES[kind]`)
OVERLAYS = {
    "ROC curve": "roc",
    "Precision-recall curve": "precision_recall",
    "Calibration": "calibration",
    "Confusion matrices": "confusion",
}
# caption -> the monitoring chart copied beside the report
MONITORING_CHARTS = {
    "Drift alerts per feature and chunk": f"{Repo.MONITORING}/{Monitoring.DRIFT_CHART}",
    "Estimated and realized performance per chunk": (
        f"{Repo.MONITORING}/{Monitoring.PERFORMANCE_CHART}"
    ),
    "Data-quality alerts": f"{Repo.MONITORING}/{Monitoring.QUALITY_CHART}",
}


def _rows(rev: Revision, kind: str) -> list[dict[str, Any]] | None:
    """The rows of one DVC plot file (`{"roc": [...]}` -> `[...]`), or None if absent."""
    content = rev.plots.get(Repo.PLOT_FILES[kind])
    if not isinstance(content, dict) or not content:
        return None
    rows = next(iter(content.values()))
    return rows if isinstance(rows, list) and rows else None


def _draw(kind: str, series: dict[str, Any], path: Path) -> None:
    if kind == "roc":
        plots.overlay(
            series,
            "fpr",
            "tpr",
            path,
            "ROC (test)",
            ("false positive rate", "true positive rate"),
            diagonal=True,
        )
    elif kind == "precision_recall":
        plots.overlay(
            series, "recall", "precision", path, "Precision-recall (test)", ("recall", "precision")
        )
    elif kind == "calibration":
        plots.overlay(
            series,
            "mean_predicted",
            "fraction_positive",
            path,
            "Calibration (test)",
            ("mean predicted probability", "fraction positive"),
            diagonal=True,
        )
    else:
        plots.confusion_pair(series, path)


@dataclass(frozen=True)
class SameRowsInputs:
    """This change's package and the rows both models are scored on (paths under the root)."""

    package: Path
    test: Path
    production: Path
    production_labels: Path
    additions: Path
    # this change's train and valid splits: production rows in them are not compared on
    trained_on: tuple[Path, ...] = ()


def run(
    root: Path,
    base: str,
    output: Path,
    images_dir: Path,
    same_rows: SameRowsInputs | None = None,
    mermaid: bool = True,
    html: Path | None = None,
    time_rounds: int = 30,
) -> str:
    """Write the report for the workspace at `root` against `base`; return its Markdown.
    With `html`, also an offline HTML preview of it (tabml.reporting.preview)."""
    from tabml.stages import compare

    info(f"report: reading metrics, params and plots at {base} and in the workspace (DVC)")
    before, now = read_revisions(root, base, rep.JSON_REPORTS)
    paired: SameRows | str | None = None
    if same_rows is not None:
        label = f"`{base}`" + (f" (`{before.commit[:8]}`)" if before.commit else "")
        if not (root / same_rows.package).is_dir() or not (root / same_rows.test).is_file():
            paired = "this change has no package or test split: run 'dvc repro' first"
        else:
            paired = compare.against(
                root, base, label, same_rows.package, root / same_rows.test,
                root / same_rows.production, root / same_rows.production_labels,
                root / same_rows.additions, tuple(root / p for p in same_rows.trained_on),
                time_rounds=time_rounds,
            )  # fmt: skip
        if isinstance(paired, str):
            info(f"report: not on the same rows: {paired}")

    def link(path: Path) -> str:
        return Path(os.path.relpath(path.resolve(), output.resolve().parent)).as_posix()

    charts: dict[str, str] = {}
    for caption, kind in OVERLAYS.items():
        series = {"base": _rows(before, kind), "head": _rows(now, kind)}
        if series["head"] is None:
            continue
        path = images_dir / f"{kind}.png"
        _draw(kind, series, path)
        charts[caption] = link(path)
    monitoring: dict[str, str] = {}
    for caption, source in MONITORING_CHARTS.items():
        if (root / source).is_file():
            path = images_dir / Path(source).name
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / source, path)
            monitoring[caption] = link(path)
    text = rep.build(before, now, charts, monitoring, same_rows=paired, mermaid=mermaid)
    io.write_text(output, text)
    info(
        f"report: wrote {output} ({len(text):,} characters) and "
        f"{len(charts) + len(monitoring)} images in {images_dir}"
    )
    if html is not None:
        from tabml.reporting.preview import html_page

        io.write_text(html, html_page(text, f"Pull-request report against {base}"))
        info(f"report: wrote {html}, the comment as GitHub shows it (open it in a browser)")
    return text
