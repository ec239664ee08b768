"""The monitoring HTML page, drawn in a second process while NannyML's calculators run.

NannyML's calculators keep one core busy; drawing its interactive charts (plotly figures, then
HTML) does not have to wait for them. `HtmlPage` forks a drawing process just before the
calculators start. Each chart is sent to it as soon as its result exists (without data rows,
see `nannyml_adapter.Chart`) and drawn there while the next calculator runs; the summary comes
last, and the drawing process writes the page. The caller meanwhile draws the PNGs and writes
the JSON files, then waits for the page.

The process is forked, not spawned: it starts in milliseconds with NannyML and plotly already
imported (the caller imports them first), and it never re-runs the caller's script. It never
outlives the caller: the kernel kills it when the caller dies, however (SIGKILL, SIGTERM,
Ctrl-C), and it lets go of the caller's stdout at once, so a pipe reading it ends with the
caller. It only draws and writes one file, and touches neither LightGBM nor the caller's
threads. Where fork is
not the platform's safe default (anything but Linux), or with a single core, the charts are
drawn inline instead, with byte-identical output.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabml.core import io
from tabml.core.errors import TabmlError
from tabml.monitoring import monitor as mon

if TYPE_CHECKING:
    from types import TracebackType

    from tabml.adapters.nannyml_adapter import Chart


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def can_fork() -> bool:
    return sys.platform == "linux" and _usable_cores() >= 2


def _die_with_parent(parent: int) -> None:
    """Never outlive the caller: the kernel kills this process when the caller dies (SIGKILL
    included), and the inherited stdout is let go, so a pipe reading the caller's output
    (`dvc repro | cat`, a CI runner) ends when the caller does."""
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the caller died before the line above took effect
        os._exit(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # stderr stays: a drawing error is printed there
    os.close(devnull)


def _draw_page(inbox: Any, path: Path, title: str, parent: int) -> None:
    """The drawing process: charts until the summary arrives, then the page."""
    from tabml.adapters.nannyml_adapter import Chart, render

    _die_with_parent(parent)

    fragments: list[tuple[str, str]] = []
    while isinstance(item := inbox.get(), Chart):
        fragments.append((item.title, render(item, f"chart-{len(fragments)}", not fragments)))
    io.write_text(path, mon.html_report(item, fragments, title))


class HtmlPage:
    """`add` each chart, `finish` with the summary, `wait` for the page; a context manager."""

    def __init__(self, path: Path, title: str, in_process: bool | None = None) -> None:
        self.path, self.title = path, title
        self._fragments: list[tuple[str, str]] = []
        self._proc: Any = None
        self._inbox: Any = None
        if in_process if in_process is not None else not can_fork():
            return
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        # a Queue pickles and sends from its own thread: `add` never waits for the drawing
        self._inbox = ctx.Queue()
        self._proc = ctx.Process(
            target=_draw_page,
            args=(self._inbox, path, title, os.getpid()),
            name="tabml-html-report",
        )
        self._proc.start()

    def add(self, chart: Chart) -> None:
        if self._proc is not None:
            self._inbox.put(chart)
            return
        from tabml.adapters.nannyml_adapter import render

        i = len(self._fragments)
        self._fragments.append((chart.title, render(chart, f"chart-{i}", i == 0)))

    def finish(self, summary: mon.Summary) -> None:
        """The last message: the page is written with this summary (in the drawing process)."""
        if self._proc is not None:
            self._inbox.put(summary)
            self._inbox.close()
            return
        io.write_text(self.path, mon.html_report(summary, self._fragments, self.title))

    def wait(self) -> None:
        """Block until the page is written; raise if the drawing process failed."""
        if self._proc is None:
            return
        self._inbox.join_thread()
        self._proc.join()
        code, self._proc = self._proc.exitcode, None
        if code != 0:
            raise TabmlError(
                f"monitoring: drawing the HTML report {self.path} failed (exit code {code}; "
                "the error is printed above), so summary.json was not written either. Run the "
                "command again; if it fails the same way, report it with that error."
            )

    def __enter__(self) -> HtmlPage:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        err: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._proc is None:
            return
        if err is not None:  # the caller failed: the page is not needed
            self._inbox.cancel_join_thread()
            self._proc.kill()
            self._proc.join()
            self._proc = None
            return
        self.wait()
