"""Draw the example report as GitHub shows it, in a real browser, and save a screenshot.

    npm install --prefix /tmp/mermaid mermaid@12.3.0      # Mermaid's own JavaScript
    apt-get install chromium                              # a headless browser
    uv run python docs/pr-example/render.py \
        --mermaid-js /tmp/mermaid/node_modules/mermaid/dist/mermaid.min.js

The Markdown becomes HTML (markdown-it, GitHub's table syntax), each ```mermaid block a
`<pre class="mermaid">` that Mermaid's script draws, as GitHub's Markdown renderer does; then
headless Chromium, with no network (the script is a local file), loads the page and saves
docs/pr-example/rendered.png. The script fails if a chart did not draw (Mermaid then writes its
error into the page instead of an SVG).
"""

from __future__ import annotations

import argparse
import html
import re
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>tabml pull-request report</title>
<style>
body {{ font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; font-size: 14px;
       max-width: 880px; margin: 24px auto; color: #1f2328; }}
table {{ border-collapse: collapse; margin: 8px 0; }}
td, th {{ border: 1px solid #d0d7de; padding: 4px 10px; }}
code {{ background: #eff1f3; padding: 1px 4px; border-radius: 4px; }}
pre.mermaid {{ background: none; }}
</style></head><body>
{body}
<script src="{script}"></script>
<script>
mermaid.initialize({{ startOnLoad: false, theme: "default" }});
mermaid.run({{ querySelector: "pre.mermaid" }}).then(() => {{
  const drawn = document.querySelectorAll("pre.mermaid svg").length;
  const asked = document.querySelectorAll("pre.mermaid").length;
  document.title = drawn === asked ? "drawn " + drawn : "failed " + drawn + "/" + asked;
}});
</script></body></html>
"""


def to_html(markdown: str, script: Path) -> str:
    from markdown_it import MarkdownIt

    blocks: list[str] = []

    def keep(m: re.Match[str]) -> str:
        blocks.append(m.group(1))
        return f"\n\nMERMAID{len(blocks) - 1}\n\n"

    text = re.sub(r"```mermaid\n(.*?)```", keep, markdown, flags=re.S)
    body = MarkdownIt("commonmark").enable("table").render(text)
    for i, block in enumerate(blocks):
        body = body.replace(
            f"<p>MERMAID{i}</p>", f'<pre class="mermaid">{html.escape(block)}</pre>'
        )
    return PAGE.format(body=body, script=script.as_uri())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mermaid-js", type=Path, required=True)
    parser.add_argument("--report", type=Path, default=HERE / "report.md")
    parser.add_argument("--output", type=Path, default=HERE / "rendered.png")
    parser.add_argument("--chromium", default="chromium")
    parser.add_argument("--height", type=int, default=5300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(to_html(args.report.read_text(), args.mermaid_js.resolve()))
        common = [
            args.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={tmp}/profile", "--virtual-time-budget=15000",
        ]  # fmt: skip
        dom = subprocess.run(
            [*common, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=180
        ).stdout
        title = re.search(r"<title>(.*?)</title>", dom)
        if not title or not title.group(1).startswith("drawn"):
            raise SystemExit(f"the charts did not draw: {title.group(1) if title else dom[:300]}")
        subprocess.run(
            [*common, f"--window-size=1000,{args.height}", f"--screenshot={args.output}",
             page.as_uri()],
            capture_output=True, check=True, timeout=180,
        )  # fmt: skip
    print(f"{args.output}: {title.group(1)} Mermaid charts")


if __name__ == "__main__":
    main()
