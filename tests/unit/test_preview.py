"""The pull-request comment previewed offline (tabml.reporting.preview): the Mermaid charts tabml
writes
drawn as SVG, no script and nothing fetched."""

from __future__ import annotations

import re

from tabml.reporting import mermaid, preview
from tests.conftest import ROOT


def test_each_chart_tabml_writes_is_drawn_with_its_data() -> None:
    block = mermaid.block(
        "Alerts per chunk", '"chunk" ["1", "2", "3"]', "alerts",
        lines=[(mermaid.HEAD, [0.5, 0.75, 1.0])], bars=[(mermaid.BASE, [0, 1, 2])],
        y_range=(0.0, 2.0),
    )  # fmt: skip
    chart = preview.parse(block.split("\n", 1)[1].rsplit("```", 1)[0])
    assert chart is not None
    assert chart.title == "Alerts per chunk" and chart.x_ticks == ["1", "2", "3"]
    assert chart.series == [("bar", [0, 1, 2]), ("line", [0.5, 0.75, 1.0])]
    assert chart.palette == [mermaid.BASE, mermaid.HEAD]
    drawn = preview.svg(chart)
    assert drawn.count("<rect") == 3 and drawn.count("<polyline") == 1
    assert f'fill="{mermaid.BASE}"' in drawn and f'stroke="{mermaid.HEAD}"' in drawn
    # the bar of 2 reaches the top of the 0..2 axis, the bar of 0 has no height
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([\d.]+)"', drawn)]
    assert heights[0] == 0 and heights[2] == max(heights) > 0


def test_the_example_report_previews_offline_with_every_chart_drawn() -> None:
    markdown = (ROOT / "docs/pr-example/report.md").read_text(encoding="utf-8")
    page = preview.html_page(markdown, "preview")
    assert page.count("<svg") == markdown.count("```mermaid") > 0
    assert "```mermaid" not in page and "<table>" in page
    assert "<script" not in page and not re.search(r'(src|href)="https?://', page)
    assert page == preview.html_page(markdown, "preview")  # deterministic


def test_a_mermaid_block_it_cannot_draw_stays_as_its_source() -> None:
    markdown = "```mermaid\ngraph TD\n  A --> B\n```\n"
    page = preview.html_page(markdown, "p")
    assert "graph TD" in page and "<svg" not in page
