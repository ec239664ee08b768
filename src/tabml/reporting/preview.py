"""An HTML preview of the pull-request comment (`tabml report --html`, `make report`), drawn
offline: the Markdown as GitHub shows it (tables included), and each Mermaid `xychart-beta`
block that tabml.reporting.mermaid writes drawn here as an SVG. GitHub draws those blocks with
Mermaid's
JavaScript; this page needs no script and no network, so it opens anywhere.

Only the subset of xychart-beta that tabml.reporting.mermaid writes is drawn (a title, an x-axis as
a
range or a list of labels, a y-axis with an optional range, `bar` and `line` series, and the
colour palette in the front matter); any other Mermaid block is shown as its source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import escape

_FENCE = re.compile(r"^```mermaid\n(.*?)^```$", re.S | re.M)
_SERIES = re.compile(r"^\s*(bar|line)\s*\[(.*)\]\s*$")
_X_RANGE = re.compile(r'^\s*x-axis\s+"([^"]*)"\s+(-?[\d.]+)\s*-->\s*(-?[\d.]+)\s*$')
_X_LIST = re.compile(r'^\s*x-axis\s+"([^"]*)"\s+\[(.*)\]\s*$')
_Y = re.compile(r'^\s*y-axis\s+"([^"]*)"(?:\s+(-?[\d.]+)\s*-->\s*(-?[\d.]+))?\s*$')
_TITLE = re.compile(r'^\s*title\s+"([^"]*)"\s*$')
_PALETTE = re.compile(r'plotColorPalette:\s*"([^"]*)"')
W, H, LEFT, RIGHT, TOP, BOTTOM = 640, 360, 60, 20, 40, 50


@dataclass
class XYChart:
    title: str = ""
    x_label: str = ""
    x_range: tuple[float, float] | None = None
    x_ticks: list[str] = field(default_factory=list)
    y_label: str = ""
    y_range: tuple[float, float] | None = None
    series: list[tuple[str, list[float]]] = field(default_factory=list)  # (bar|line, values)
    palette: list[str] = field(default_factory=list)


def parse(source: str) -> XYChart | None:
    """The chart of one Mermaid block, or None if it is not the xychart-beta tabml writes."""
    if "xychart-beta" not in source:
        return None
    chart = XYChart()
    if m := _PALETTE.search(source):
        chart.palette = [c.strip() for c in m.group(1).split(",") if c.strip()]
    for line in source.split("xychart-beta", 1)[1].splitlines():
        if not line.strip():
            continue
        if m := _TITLE.match(line):
            chart.title = m.group(1)
        elif m := _X_RANGE.match(line):
            chart.x_label, chart.x_range = m.group(1), (float(m.group(2)), float(m.group(3)))
        elif m := _X_LIST.match(line):
            chart.x_label = m.group(1)
            chart.x_ticks = [t.strip().strip('"') for t in m.group(2).split(",")]
        elif m := _Y.match(line):
            chart.y_label = m.group(1)
            if m.group(2) is not None:
                chart.y_range = (float(m.group(2)), float(m.group(3)))
        elif m := _SERIES.match(line):
            values = [float(v) for v in m.group(2).split(",") if v.strip()]
            chart.series.append((m.group(1), values))
        else:
            return None  # something this renderer does not know: show the source
    return chart if chart.series else None


def svg(chart: XYChart) -> str:
    """The chart as an SVG: bars first, then lines, each in the palette's colour in order."""
    n = max(len(v) for _, v in chart.series)
    values = [x for _, v in chart.series for x in v]
    lo, hi = chart.y_range or (min(0.0, *values), max(values) or 1.0)
    if hi == lo:
        hi = lo + 1
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def x_at(i: int) -> float:
        return LEFT + (pw * (i + 0.5) / n if chart.x_ticks else pw * i / max(n - 1, 1))

    def y_at(v: float) -> float:
        return TOP + ph * (1 - (min(max(v, lo), hi) - lo) / (hi - lo))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'viewBox="0 0 {W} {H}" font-family="system-ui,sans-serif" font-size="11">',
        f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="13">'
        f"{escape(chart.title)}</text>",
        f'<line x1="{LEFT}" y1="{TOP + ph}" x2="{LEFT + pw}" y2="{TOP + ph}" stroke="#333"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + ph}" stroke="#333"/>',
    ]
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        y = y_at(v)
        parts.append(
            f'<line x1="{LEFT - 4}" y1="{y:.1f}" x2="{LEFT + pw}" y2="{y:.1f}" stroke="#eee"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{v:g}</text>'
        )
    if chart.x_ticks:
        for i, tick in enumerate(chart.x_ticks):
            parts.append(
                f'<text x="{x_at(i):.1f}" y="{TOP + ph + 14}" text-anchor="middle">'
                f"{escape(tick)}</text>"
            )
    elif chart.x_range:
        a, b = chart.x_range
        for k in range(5):
            parts.append(
                f'<text x="{LEFT + pw * k / 4:.1f}" y="{TOP + ph + 14}" text-anchor="middle">'
                f"{a + (b - a) * k / 4:g}</text>"
            )
    parts.append(
        f'<text x="{LEFT + pw / 2}" y="{H - 10}" text-anchor="middle">'
        f"{escape(chart.x_label)}</text>"
        f'<text x="14" y="{TOP + ph / 2}" text-anchor="middle" '
        f'transform="rotate(-90 14 {TOP + ph / 2})">{escape(chart.y_label)}</text>'
    )
    order = [s for s in chart.series if s[0] == "bar"] + [s for s in chart.series if s[0] == "line"]
    bars = sum(1 for kind, _ in order if kind == "bar")
    for j, (kind, vals) in enumerate(order):
        colour = chart.palette[j] if j < len(chart.palette) else "#1f77b4"
        if kind == "bar":
            width = pw / n * 0.8 / max(bars, 1)
            for i, v in enumerate(vals):
                x = x_at(i) - pw / n * 0.4 + width * j
                top, base = y_at(v), y_at(max(lo, 0.0))
                parts.append(
                    f'<rect x="{x:.1f}" y="{min(top, base):.1f}" width="{width:.1f}" '
                    f'height="{abs(base - top):.1f}" fill="{escape(colour)}"/>'
                )
        else:
            points = " ".join(f"{x_at(i):.1f},{y_at(v):.1f}" for i, v in enumerate(vals))
            parts.append(
                f'<polyline points="{points}" fill="none" stroke="{escape(colour)}" '
                'stroke-width="2"/>'
            )
    parts.append("</svg>")
    return "".join(parts)


def html_page(markdown: str, title: str) -> str:
    """The Markdown as one self-contained page, Mermaid charts drawn as SVG."""
    from markdown_it import MarkdownIt

    drawn: list[str] = []

    def keep(match: re.Match[str]) -> str:
        chart = parse(match.group(1))
        if chart is None:
            return match.group(0)
        drawn.append(svg(chart))
        return f"\n<!--tabml-chart-{len(drawn) - 1}-->\n"

    text = _FENCE.sub(keep, markdown)
    body = MarkdownIt("commonmark", {"html": True}).enable("table").enable("strikethrough")
    rendered = body.render(text)
    for i, chart_svg in enumerate(drawn):
        rendered = rendered.replace(
            f"<!--tabml-chart-{i}-->", f'<div class="chart">{chart_svg}</div>'
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #d0d7de;"
        "padding:4px 10px}th{background:#f6f8fa}code{background:#f6f8fa;padding:0 3px}"
        "details{margin:1em 0}.chart{margin:1em 0}</style></head><body>\n"
        f"{rendered}</body></html>\n"
    )
