"""report: the shell of `tabml report` (a command, not a dvc.yaml stage).

Reads the base revision and the workspace through DVC, draws the overlay charts, copies the
monitoring charts beside them, and writes the Markdown `tabml.report.build` returns. Images are
referenced relative to the Markdown file, which is how `cml comment update --publish` finds and
uploads them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from tabml import io, plots
from tabml import report as rep
from tabml.dvc_adapter import Revision, read_revisions
from tabml.log import info

# caption -> (plot kind, image file)
OVERLAYS = {
    "ROC curve": "roc",
    "Precision-recall curve": "precision_recall",
    "Calibration": "calibration",
    "Confusion matrices": "confusion",
}
MONITORING_CHARTS = {
    "Drift alerts per feature and chunk": "reports/monitoring/drift_alerts.png",
    "Estimated and realized performance per chunk": "reports/monitoring/performance.png",
    "Data-quality alerts": "reports/monitoring/data_quality.png",
}


def _rows(rev: Revision, kind: str) -> list[dict[str, Any]] | None:
    """The rows of one DVC plot file (`{"roc": [...]}` -> `[...]`), or None if absent."""
    content = rev.plots.get(rep.PLOTS[kind])
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


def run(root: Path, base: str, output: Path, images_dir: Path) -> str:
    """Write the report for the workspace at `root` against `base`; return its Markdown."""
    info(f"report: reading metrics, params and plots at {base} and in the workspace (DVC)")
    before, now = read_revisions(root, base, rep.JSON_REPORTS)

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
    text = rep.build(before, now, charts, monitoring)
    io.write_text(output, text)
    info(
        f"report: wrote {output} ({len(text):,} characters) and "
        f"{len(charts) + len(monitoring)} images in {images_dir}"
    )
    return text
