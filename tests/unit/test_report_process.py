"""The HTML page drawn in its own process equals the one drawn inline; failures are reported."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tabml.adapters.nannyml_adapter import Chart
from tabml.core.errors import TabmlError
from tabml.monitoring import report_process
from tabml.monitoring.report_process import HtmlPage
from tests.unit.test_monitor import summary

forking = pytest.mark.skipif(not report_process.can_fork(), reason="needs Linux and 2 cores")


class Line:
    """Stands in for a NannyML result: something with plot()."""

    def __init__(self, values: list[float], fail: bool = False, slow: float = 0.0) -> None:
        self.values, self.fail, self.slow = values, fail, slow

    def plot(self, kind: str | None = None) -> Any:
        import plotly.graph_objects as go

        time.sleep(self.slow)
        if self.fail:
            raise ValueError("this chart cannot be drawn")
        return go.Figure(go.Scatter(y=self.values, name=kind or "line"))


def _page(path: Path, charts: list[Chart], in_process: bool) -> None:
    with HtmlPage(path, "Monitoring report: t", in_process=in_process) as page:
        for chart in charts:
            page.add(chart)
        page.finish(summary())
        page.wait()


@forking
def test_page_drawn_in_its_own_process_is_byte_identical_to_inline(tmp_path: Path) -> None:
    charts = [Chart("Drift", Line([1, 2, 3]), "drift"), Chart("Quality", Line([3, 1]))]
    _page(tmp_path / "forked.html", charts, in_process=False)
    _page(tmp_path / "inline.html", charts, in_process=True)
    forked = (tmp_path / "forked.html").read_text()
    assert forked == (tmp_path / "inline.html").read_text()
    # plotly's JavaScript once, with the first chart; every chart in order
    assert forked.count('<div id="chart-') == 2 and forked.index("Drift") < forked.index("Quality")
    assert forked.count("<script src=") == 0 and len(forked) > 1_000_000


@forking
def test_a_chart_that_fails_in_the_drawing_process_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TabmlError, match=r"drawing the HTML report .*page\.html failed"):
        _page(tmp_path / "page.html", [Chart("Broken", Line([1], fail=True))], in_process=False)
    assert not (tmp_path / "page.html").exists()


@forking
def test_a_failing_caller_stops_the_drawing_process_at_once(tmp_path: Path) -> None:
    with (
        pytest.raises(RuntimeError, match="calculator failed"),
        HtmlPage(tmp_path / "page.html", "t", in_process=False) as page,
    ):
        drawing = page._proc
        page.add(Chart("Slow", Line([1], slow=30)))  # 30 s of drawing it will not finish
        raise RuntimeError("calculator failed")
    # killed, not waited for: the failure surfaces now, not after the slow chart
    assert drawing.exitcode == -signal.SIGKILL
    assert not (tmp_path / "page.html").exists()
