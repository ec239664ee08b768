"""`dvc plots show` draws offline: .dvc/config names a page with Vega, Vega-Lite and
vega-embed inlined (.dvc/plots-offline.html, written by deploy/vega/build from pinned npm
packages), so DVC adds none of its CDN tags."""

from __future__ import annotations

import configparser
import hashlib
import re

from tests.conftest import ROOT

PAGE = ROOT / ".dvc/plots-offline.html"


def test_dvc_config_names_the_offline_page() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / ".dvc/config")
    assert (ROOT / ".dvc" / cfg["plots"]["html_template"]) == PAGE


def test_the_page_loads_nothing_and_holds_the_pinned_builds() -> None:
    html = PAGE.read_text(encoding="utf-8")
    assert "{plot_divs}" in html and "{scripts}" not in html  # DVC adds no CDN tags
    assert not re.search(r"<script[^>]*\bsrc=", html) and "<link" not in html
    build = (ROOT / "deploy/vega/build").read_text()
    one = r"<!-- ([\w-]+)@([\d.]+) \(\S+, sha256 (\w+)\) -->\n<script>(.*?)</script>"
    inlined = re.findall(one, html, flags=re.S)
    assert [name for name, *_ in inlined] == ["vega", "vega-lite", "vega-embed"]
    for name, version, sha256, js in inlined:
        assert f'("{name}", "{version}",' in build, name  # the pinned version
        assert hashlib.sha256(js.encode()).hexdigest() == sha256, name
