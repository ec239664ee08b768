"""The pull-request report: what a change did to the model and the data, as one Markdown comment.

Pure: `build` takes the two revisions DVC read (`dvc_adapter.read_revisions`) and the image
paths the shell drew, and returns GitHub-flavoured Markdown. The layout, top to bottom:

1. a headline a reviewer reads in five seconds: better / worse / not distinguishable, from
   the base's model (the champion) and this change's (the challenger) scored on the same rows
   (a paired comparison, `tabml.governance.compare`), the dataset and model, and monitoring alerts;
   when
   the champion's package cannot be had, one line says why and the verdict falls back to each
   run's own metrics, marked "not on the same rows";
2. the paired comparison's figures; then every metric of `reports/metrics.json` as each run
   measured it on its own test split, base against this change, with an arrow that knows
   which way is good;
3. the params that changed;
4. overlaid base/this-change charts (ROC, precision-recall, calibration, confusion);
5. data quality and monitoring (alerts per feature, CBPE estimated against realized);
6. a collapsed table of every param and metric at both revisions.

The whole comment stays under GitHub's 65,536-character limit: only the last section is
truncated to fit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabml.adapters.dvc_adapter import Revision
from tabml.core.catalog import Repo
from tabml.monitoring.monitor import Summary

if TYPE_CHECKING:
    from tabml.governance.compare import SameRows

# GitHub refuses longer comments; CML adds a watermark and --publish turns each image path into
# a longer URL, so the report keeps this much room for them
GITHUB_COMMENT_LIMIT = 65_536
HEADROOM = 2_000

# what the report reads at each revision (dvc.yaml's paths, from the catalog)
METRICS = Repo.METRICS
MONITORING_METRICS = Repo.MONITORING_METRICS
DATA_QUALITY = Repo.DATA_QUALITY
SUMMARY = Repo.SUMMARY
JSON_REPORTS = (DATA_QUALITY, SUMMARY)

PRIMARY = ("test.roc_auc", "test ROC AUC")
# a change smaller than this on the primary metric is reported as unchanged
UNCHANGED_BELOW = 0.0005
# tables show 4 decimals: a difference that rounds to 0.0000 is no change, not a red arrow
SHOWN_AS_ZERO = 0.00005

# metric name (last part of the dotted key) -> +1 if higher is better, -1 if lower is better
_HIGHER = {"roc_auc", "auc", "average_precision", "accuracy", "precision", "recall", "f1"}
_LOWER = {"log_loss", "binary_logloss", "brier", "ece"}
_MAX_CHUNK_ROWS = 24
_MAX_PARAM_ROWS = 60


def direction(metric: str) -> int:
    """+1 when a larger value is better, -1 when a smaller one is, 0 when neither (counts)."""
    name = metric.rsplit(".", 1)[-1]
    # fairness: a gap between groups is better smaller, a ratio (at most 1) better larger
    if name in _HIGHER or name.startswith(("estimated_", "realized_")) or name.endswith("_ratio"):
        return 1
    if name in _LOWER or name == "alerts" or name.endswith(("_alerts", "_difference")):
        return -1
    return 0


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` -> `{"a.b": 1}`; lists stay values."""
    if not isinstance(data, Mapping):
        return {prefix: data} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)


def fmt(value: Any) -> str:
    """A table cell: numbers to 4 decimals, integers with separators, the rest as JSON."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.4f}"
    text = (
        value
        if isinstance(value, str)
        else json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    )
    if len(text) > 60:
        text = text[:57] + "..."
    return cell(text, code=True)


def cell(text: str, code: bool = False) -> str:
    """Text safe inside a GFM table cell (no pipes or line breaks to break the row)."""
    text = text.replace("\n", " ").replace("|", "\\|")
    if code:
        text = "`" + text.replace("`", "'") + "`"
    return text


@dataclass(frozen=True)
class Change:
    """One metric at both revisions and what the difference means."""

    key: str
    base: Any
    head: Any

    @property
    def delta(self) -> float | None:
        b, h = _number(self.base), _number(self.head)
        return None if b is None or h is None else h - b

    @property
    def verdict(self) -> str:
        """'better', 'worse', 'unchanged' or '' (no direction, or a side missing)."""
        delta = self.delta
        if delta is None:
            return ""
        if abs(delta) < SHOWN_AS_ZERO:
            return "unchanged"
        sign = direction(self.key)
        if sign == 0:
            return ""
        return "better" if delta * sign > 0 else "worse"

    def arrow(self) -> str:
        delta = self.delta
        if delta is None or abs(delta) < SHOWN_AS_ZERO:
            return ""
        arrow = "↑" if delta > 0 else "↓"
        return {"better": f"🟢 {arrow}", "worse": f"🔴 {arrow}"}.get(self.verdict, arrow)

    def delta_text(self) -> str:
        delta = self.delta
        if delta is None:
            return ""
        if isinstance(self.base, int) and isinstance(self.head, int):
            return f"{delta:+,.0f}"
        return "0" if abs(delta) < SHOWN_AS_ZERO else f"{delta:+.4f}"

    def row(self, label: str | None = None) -> str:
        shown = self.delta_text()
        name = cell(label or self.key, code=True)
        return f"| {name} | {fmt(self.base)} | {fmt(self.head)} | {shown} | {self.arrow()} |"


def changes(base: Mapping[str, Any], head: Mapping[str, Any]) -> list[Change]:
    """Every key of either side, in the head's order, then keys only the base has."""
    keys = list(head) + [k for k in base if k not in head]
    return [Change(k, base.get(k), head.get(k)) for k in keys]


def changed_params(base: Revision, head: Revision) -> list[tuple[str, Any, Any]]:
    """(param, base value, new value) for every params.yaml key whose value differs."""
    b, h = flatten(base.params), flatten(head.params)
    keys = list(h) + [k for k in b if k not in h]
    return [(k, b.get(k), h.get(k)) for k in keys if b.get(k) != h.get(k)]


def _table(header: Iterable[str], rows: Iterable[str]) -> list[str]:
    head = list(header)
    return [
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|",
        *rows,
    ]


def _rev_label(rev: Revision) -> str:
    short = f" (`{rev.commit[:8]}`)" if rev.commit else ""
    return f"`{rev.name}`{short}"


_PAIRED_TITLE = {
    "better": ("🟢", "Better"),
    "worse": ("🔴", "Worse"),
    "not distinguishable": ("⚪", "Not distinguishable"),
}


def headline(base: Revision, head: Revision, same_rows: SameRows | str | None = None) -> list[str]:
    """The verdict on the primary metric, what was trained, and monitoring alerts.

    With `same_rows` (the paired comparison) the verdict is its own on the test split; with a
    reason instead (text), that reason is said and the per-run comparison is marked."""
    key, label = PRIMARY
    now = flatten(head.metrics.get(METRICS, {}))
    before = flatten(base.metrics.get(METRICS, {}))
    dataset = head.params.get("dataset", {}).get("name", "?")
    model = head.params.get("model", {}).get("name", "?")
    paired = None if same_rows is None or isinstance(same_rows, str) else same_rows.results
    note: list[str] = []
    if paired and "test" in paired:
        r = paired["test"]
        icon, word = _PAIRED_TITLE[r.verdict]
        title = (
            f"## {icon} {word} on the same rows: {label} {r.challenger_auc:.4f} against the "
            f"base model's {r.champion_auc:.4f} ({r.delta:+.4f}, 95% CI {r.low:+.4f} to "
            f"{r.high:+.4f})"
        )
    elif key not in now:
        title = f"## ⚠️ No {label}: `reports/metrics.json` is missing; did `dvc repro` run?"
    elif key not in before:
        title = f"## 🆕 {label} {now[key]:.4f} (the base has no metrics to compare with)"
    else:
        change = Change(key, before[key], now[key])
        delta = change.delta or 0.0
        if abs(delta) < UNCHANGED_BELOW:
            icon, word = "⚪", f"Unchanged (within {UNCHANGED_BELOW})"
        elif change.verdict == "better":
            icon, word = "🟢", "Better"
        else:
            icon, word = "🔴", "Worse"
        title = f"## {icon} {word}: {label} {now[key]:.4f} against {before[key]:.4f} ({delta:+.4f})"
        if isinstance(same_rows, str):
            title += ", not on the same rows"
            note = [
                f"_The base model could not be scored on this change's rows ({cell(same_rows)}): "
                "each run's figure is on its own test split._",
                "",
            ]
    timed = None if same_rows is None or isinstance(same_rows, str) else same_rows.latency
    limit = _slowdown_limit(head)
    if timed is not None and limit is not None and timed.ratio > limit:
        note.append(
            f"🔴 **Scoring is ×{timed.ratio:.2f} the base's time** (95% CI ×{timed.low:.2f} to "
            f"×{timed.high:.2f}), above the limit ×{limit:g} (release.max_slowdown)."
        )
        note.append("")
    lines = [
        title,
        "",
        *note,
        f"**{cell(str(dataset))}** · **{cell(str(model))}** · this change against base "
        f"{_rev_label(base)}",
        "",
    ]
    monitoring = head.metrics.get(MONITORING_METRICS)
    if monitoring is None:
        lines.append("Monitoring: no report (`reports/monitoring/metrics.json` is missing).")
    else:
        alerts = int(monitoring.get("alerts", 0))
        was = base.metrics.get(MONITORING_METRICS, {}).get("alerts")
        against = "" if was is None else f" (base: {int(was)})"
        icon = "⚠️" if alerts else "✅"
        chunks = monitoring.get("chunks", 0)
        with_alerts = monitoring.get("chunks_with_alerts", 0)
        drifting = _drifting(head)
        lines.append(
            f"{icon} Monitoring: **{alerts} alerts**{against} in {with_alerts} of {chunks} "
            "production chunks"
            + (f"; drift in {', '.join(f'`{c}`' for c in drifting)}" if drifting else "")
            + "."
        )
    return lines


def _summary(rev: Revision) -> Summary | None:
    """The revision's monitoring summary, if it has one this version of tabml can read."""
    return Summary.read(rev.reports.get(SUMMARY))


def _drifting(rev: Revision) -> list[str]:
    summary = _summary(rev)
    by_column = summary.totals.drift_alerts_by_column if summary else {}
    return [c for c, n in sorted(by_column.items(), key=lambda kv: -kv[1]) if n]


def same_rows_section(
    same_rows: SameRows | str | None, slowdown_limit: float | None = None
) -> list[str]:
    """The paired comparison's figures, per set of rows, and the paired response time."""
    if same_rows is None or isinstance(same_rows, str) or not same_rows.results:
        return []
    lines = [
        "### The base model against this change, on the same rows",
        "",
        f"Champion: the package at {same_rows.champion}; challenger: this change's. ROC AUC "
        "difference (challenger - champion) with DeLong's test for correlated ROC curves.",
        "",
    ]
    rows = []
    for name, r in same_rows.results.items():
        icon = _PAIRED_TITLE[r.verdict][0]
        rows.append(
            f"| {cell(same_rows.rows.get(name, name))} | {r.positives:,} | "
            f"{r.champion_auc:.4f} | {r.challenger_auc:.4f} | {r.delta:+.4f} | "
            f"{r.low:+.4f} to {r.high:+.4f} | {r.p_value:.3g} | {icon} {r.verdict} |"
        )
    lines += _table(
        ["rows", "positives", "champion", "challenger", "Δ", "95% CI", "p", "verdict"], rows
    )
    if same_rows.latency is not None:
        lines += ["", latency_line(same_rows.latency, slowdown_limit)]
    return lines


def latency_line(r: Any, limit: float | None) -> str:
    """The paired response-time line: both packages timed on the same rows in this run."""
    slower = limit is not None and r.ratio > limit
    icon = "🔴" if slower else "⏱️"
    flag = f" — **slower than the limit ×{limit:g}** (release.max_slowdown)" if slower else ""
    return (
        f"{icon} Response time, one record through the serving path: p50 "
        f"{r.champion_p50_ms:.3f} ms → {r.challenger_p50_ms:.3f} ms, p99 "
        f"{r.champion_p99_ms:.3f} ms → {r.challenger_p99_ms:.3f} ms; this change takes "
        f"×{r.ratio:.2f} the base's time (95% CI ×{r.low:.2f} to ×{r.high:.2f}; both timed on "
        f"the same runner and records, {r.rounds} interleaved rounds){flag}."
    )


def _slowdown_limit(head: Revision) -> float | None:
    """`release.max_slowdown` of this change's params, when set."""
    value = (head.params.get("release") or {}).get("max_slowdown")
    return float(value) if isinstance(value, int | float) else None


def metrics_section(
    base: Revision, head: Revision, same_rows: SameRows | str | None = None
) -> list[str]:
    now = flatten(head.metrics.get(METRICS, {}))
    before = flatten(base.metrics.get(METRICS, {}))
    title = "### Metrics" if same_rows is None else "### Metrics of each run, on its own test split"
    lines = [title, ""]
    if not before:
        lines += ["_The base has no `reports/metrics.json`: showing this change only._", ""]
    rows = [c.row() for c in changes(before, now)]
    lines += _table(["metric", "base", "this change", "Δ", ""], rows)
    lines += ["", "🟢 better · 🔴 worse, by each metric's own direction (AUC up, log loss down)."]
    return lines


def params_section(base: Revision, head: Revision) -> list[str]:
    lines = ["### Params that changed", ""]
    if not base.params:
        return [*lines, "_The base has no `params.yaml`._"]
    diff = changed_params(base, head)
    if not diff:
        return [*lines, "None."]
    rows = [f"| {cell(k, code=True)} | {fmt(b)} | {fmt(h)} |" for k, b, h in diff]
    lines += _table(["param", "base", "this change"], rows[:_MAX_PARAM_ROWS])
    if len(rows) > _MAX_PARAM_ROWS:
        lines += ["", f"_And {len(rows) - _MAX_PARAM_ROWS} more; `dvc params diff` lists all._"]
    return lines


def images_section(title: str, images: Mapping[str, str], note: str = "") -> list[str]:
    if not images:
        return []
    lines = [f"### {title}", ""]
    if note:
        lines += [note, ""]
    for name, path in images.items():
        lines += [f"![{name}]({path})", ""]
    return lines


# why a base's JSON report can be missing: they are DVC outputs, not committed
_UNREAD = (
    " (a DVC output: it needs the local DVC cache or the remote, which a fork's pull "
    "request has not, or the base predates it): showing this change only"
)


def data_quality_section(base: Revision, head: Revision) -> list[str]:
    now, before = head.reports.get(DATA_QUALITY), base.reports.get(DATA_QUALITY)
    lines = ["### Data quality", ""]
    if now is None:
        return [*lines, "_No `reports/data_quality.json` in this change._"]
    if before is None:
        lines += [
            f"_No data-quality report could be read at the base{_UNREAD}._",
            "",
        ]
    before = before or {}

    def figures(report: Mapping[str, Any]) -> dict[str, Any]:
        dev = report.get("development", {})
        prod = report.get("production", {})
        out: dict[str, Any] = {
            "development rows read": dev.get("rows_read"),
            "development rows kept": dev.get("rows_kept"),
            "development rows rejected": dev.get("rows_rejected"),
        }
        for reason, count in sorted(dev.get("rejected_by_reason", {}).items()):
            out[f"rejected: {reason}"] = count
        for part, section in (("development", dev), ("production", prod)):
            for column, missing in sorted(section.get("missing", {}).items()):
                out[f"missing {column} ({part})"] = missing.get("fraction")
        for column, unseen in sorted(prod.get("unseen_categories", {}).items()):
            out[f"unseen categories in {column} (production)"] = unseen.get("count")
        for column, outside in sorted(prod.get("out_of_range", {}).items()):
            count = outside.get("count") if isinstance(outside, Mapping) else outside
            out[f"out of range {column} (production)"] = count
        return out

    b, h = figures(before), figures(now)
    keys = list(h) + [k for k in b if k not in h]
    # zero missing values on both sides says nothing; keep the table short
    keys = [k for k in keys if not (k.startswith("missing ") and not b.get(k) and not h.get(k))]
    rows = []
    for key in keys:
        shown = Change(key, b.get(key), h.get(key)).delta_text()
        rows.append(f"| {cell(key)} | {fmt(b.get(key))} | {fmt(h.get(key))} | {shown} |")
    return lines + _table(["", "base", "this change", "Δ"], rows)


def monitoring_section(base: Revision, head: Revision) -> list[str]:
    lines = ["### Monitoring (production batch)", ""]
    summary = _summary(head)
    if summary is None:
        return [*lines, f"_No monitoring summary in this change (`{SUMMARY}`)._"]
    before = _summary(base)
    if before is None:
        lines += [f"_No monitoring summary could be read at the base{_UNREAD}._", ""]
    lines += _feature_alerts(summary, before)
    lines += ["", "Estimated (CBPE, no labels needed) against realized ROC AUC:", ""]
    return lines + _performance_rows(summary, base, head)


def _feature_alerts(summary: Summary, before: Summary | None) -> list[str]:
    """Drift and data-quality alerts per feature, with the base's drift alerts; multivariate."""
    totals = summary.totals
    drift = totals.drift_alerts_by_column
    base_drift = before.totals.drift_alerts_by_column if before else {}
    first = totals.first_alert_chunk_by_column
    quality = totals.data_quality_alerts_by_column
    rows = []
    for column in list(drift) + [c for c in base_drift if c not in drift]:
        dq = sum(quality[kind].get(column, 0) for kind in quality)
        start = first.get(column)
        rows.append(
            f"| {cell(column, code=True)} | {fmt(base_drift.get(column))} | "
            f"{fmt(drift.get(column))} | {'—' if start is None else start + 1} | {dq} |"
        )
    lines = [f"Alerts per feature over {len(summary.chunks)} chunks:", ""]
    lines += _table(
        [
            "feature",
            "drift alerts (base)",
            "drift alerts",
            "first drifting chunk",
            "data-quality alerts",
        ],
        rows,
    )
    for name in [c for c in first if c.startswith("multivariate:")]:
        start = first[name]
        lines += [
            "",
            f"Multivariate drift ({name.split(':', 1)[1].replace('_', ' ')}): "
            + ("no alert." if start is None else f"alerts from chunk {start + 1}."),
        ]
    return lines


def _performance_rows(summary: Summary, base: Revision, head: Revision) -> list[str]:
    """Mean estimated and realized ROC AUC at both revisions, then per chunk."""
    now_m = head.metrics.get(MONITORING_METRICS, {})
    base_m = base.metrics.get(MONITORING_METRICS, {})
    mean_rows = [
        Change(k, base_m.get(k), now_m.get(k)).row(label)
        for k, label in (
            ("estimated_roc_auc_mean", "mean estimated ROC AUC"),
            ("realized_roc_auc_mean", "mean realized ROC AUC"),
            ("alerts", "alerts"),
        )
        if k in now_m or k in base_m
    ]
    lines = _table(["", "base", "this change", "Δ", ""], mean_rows)
    per_chunk = []
    for chunk in summary.chunks[:_MAX_CHUNK_ROWS]:
        est, real = chunk.estimated.get("roc_auc"), chunk.realized.get("roc_auc")
        if est is None:
            continue
        real_value = real.value if real else None
        gap = None
        if real_value is not None and est.value is not None:
            gap = est.value - real_value
        alert = "⚠️" if est.alert or (real and real.alert) else ""
        per_chunk.append(
            f"| {chunk.index + 1} | {cell(str(chunk.start or chunk.key))} | "
            f"{fmt(est.value)} | {fmt(real_value)} | "
            f"{'' if gap is None else f'{gap:+.4f}'} | {alert} |"
        )
    if per_chunk:
        lines += [""]
        lines += _table(
            ["chunk", "start", "estimated", "realized", "difference", "alert"], per_chunk
        )
        if len(summary.chunks) > _MAX_CHUNK_ROWS:
            lines += [
                "",
                f"_First {_MAX_CHUNK_ROWS} of {len(summary.chunks)} chunks; the chart shows all._",
            ]
    return lines


def details_section(base: Revision, head: Revision, budget: int) -> list[str]:
    """Every param and metric at both revisions, collapsed; cut to fit `budget` characters."""
    b: dict[str, Any] = {}
    h: dict[str, Any] = {}
    for rev, out in ((base, b), (head, h)):
        out.update({f"params.{k}": v for k, v in flatten(rev.params).items()})
        for path, content in rev.metrics.items():
            out.update({f"{path}:{k}": v for k, v in flatten(content).items()})
    open_lines = [
        "<details>",
        "<summary>Full experiment table: every param and metric at both revisions</summary>",
        "",
    ]
    close_lines = ["", "</details>"]
    rows = [
        f"| {cell(k, code=True)} | {fmt(b.get(k))} | {fmt(h.get(k))} |"
        for k in list(h) + [k for k in b if k not in h]
    ]
    header = _table(["", "base", "this change"], [])
    used = sum(len(x) + 1 for x in open_lines + close_lines + header) + 200
    kept: list[str] = []
    for row in rows:
        if used + len(row) + 1 > budget:
            break
        kept.append(row)
        used += len(row) + 1
    lines = open_lines + header + kept
    if len(kept) < len(rows):
        lines += [
            "",
            f"_{len(rows) - len(kept)} more rows cut to stay under GitHub's comment limit; "
            "`dvc exp show` and `dvc params diff --all` list everything._",
        ]
    return lines + close_lines


def mermaid_section(title: str, blocks: Sequence[str], note: str = "") -> list[str]:
    if not blocks:
        return []
    lines = [f"### {title}", ""]
    if note:
        lines += [note, ""]
    for chart in blocks:
        lines += [chart, ""]
    return lines


def build(
    base: Revision,
    head: Revision,
    charts: Mapping[str, str],
    monitoring_charts: Mapping[str, str],
    limit: int = GITHUB_COMMENT_LIMIT - HEADROOM,
    same_rows: SameRows | str | None = None,
    mermaid: bool = False,
) -> str:
    """The whole comment. `charts`/`monitoring_charts` map a caption to an image path;
    `same_rows` is the paired comparison, or why there is none (see `headline`). With
    `mermaid`, the charts are Mermaid blocks in the text (GitHub draws them; nothing to
    upload), and the images are only named as the artifact's."""
    from tabml.reporting import mermaid as mm

    if mermaid:
        png = "The same charts as PNG: the workflow run's `pr-report` artifact."
        plots_part = mermaid_section("Plots (test split)", mm.curves(base.plots, head.plots), png)
        summary = _summary(head)
        monitoring_part = mermaid_section(
            "Monitoring charts", mm.monitoring(summary) if summary else []
        )
    else:
        plots_part = images_section(
            "Plots (test split)",
            charts,
            "Base dashed, this change solid." if base.plots else "The base has no plot data.",
        )
        monitoring_part = images_section("Monitoring charts", monitoring_charts)
    sections = [
        headline(base, head, same_rows),
        same_rows_section(same_rows, _slowdown_limit(head)),
        metrics_section(base, head, same_rows),
        params_section(base, head),
        plots_part,
        data_quality_section(base, head),
        monitoring_section(base, head),
        monitoring_part,
    ]
    body = "\n\n".join("\n".join(s) for s in sections if s)
    budget = limit - len(body) - 2
    text = body + "\n\n" + "\n".join(details_section(base, head, budget)) + "\n"
    if len(text) > limit:  # only if the sections above are themselves too long
        cut = "\n\n_Report cut to fit GitHub's comment limit._\n"
        text = text[: limit - len(cut)].rsplit("\n", 1)[0] + cut
    return text
