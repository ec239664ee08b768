"""The pull-request report's Markdown: verdicts, directions, first pull requests, size limit."""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path
from typing import Any

from tabml.adapters.dvc_adapter import Revision
from tabml.reporting import report as rep
from tests.conftest import BIN, git, run_cli, tool_env

METRICS = {
    "test": {"roc_auc": 0.9673, "log_loss": 0.1975, "rows": 7500},
    "production": {"roc_auc": 0.9640, "log_loss": 0.2282, "rows": 50000},
    "threshold": 0.49,
}
PARAMS = {"dataset": {"name": "car_loan"}, "model": {"name": "lightgbm", "num_leaves": 31}}


def _summary() -> dict[str, Any]:
    """A monitoring summary as `tabml monitor` writes it: three chunks, `car_value` drifting
    from the second, the estimated ROC AUC alerting in the third."""
    from tabml.adapters.nannyml_adapter import Results
    from tabml.monitoring.monitor import summarize
    from tests.unit.test_monitor import CFG

    def c(value: float, alert: bool = False) -> dict[str, Any]:
        return {"value": value, "lower_threshold": None, "upper_threshold": None, "alert": alert}

    results = Results(
        chunks=[
            {"index": i, "key": f"[{i}]", "start": f"2019-0{i + 1}-01", "end": None, "rows": 10}
            for i in range(3)
        ],
        drift={
            "car_value": {"jensen_shannon": [c(0.1), c(0.9, True), c(0.9, True)]},
            "loan_length": {"jensen_shannon": [c(0.1)] * 3},
        },
        estimated={"roc_auc": [c(0.97, i > 1) for i in range(3)]},
        realized={"roc_auc": [c(0.96)] * 3},
        missing={"car_value": [c(0.0), c(0.2, True), c(0.0)]},
    )
    model = {"name": "car_loan", "kind": "lightgbm", "threshold": 0.5}
    return summarize(results, CFG, CFG.chunking, model, 100, [10] * 10, 30, 30).to_json()


SUMMARY = _summary()
MONITORING = {"alerts": 5, "chunks": 3, "chunks_with_alerts": 2, "estimated_roc_auc_mean": 0.97}


def revision(name: str = "workspace", **changes: Any) -> Revision:
    metrics = copy.deepcopy(METRICS)
    params = copy.deepcopy(PARAMS)
    for key, value in changes.items():
        section, field = key.split("__")
        target = metrics if section in metrics else params
        target[section][field] = value
    return Revision(
        name=name,
        commit="0123456789abcdef",
        metrics={rep.METRICS: metrics, rep.MONITORING_METRICS: MONITORING},
        params=params,
        reports={rep.SUMMARY: SUMMARY},
    )


def build(base: Revision, head: Revision, **kw: Any) -> str:
    return rep.build(base, head, {"ROC curve": "images/roc.png"}, {}, **kw)


def tables_are_well_formed(markdown: str) -> None:
    """Every row of every table has as many cells as its header."""
    rows: list[str] = []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            rows.append(line)
            continue
        if rows:
            widths = {len(re.split(r"(?<!\\)\|", r)) for r in rows}
            assert len(widths) == 1, rows
            assert re.fullmatch(r"\|(---:?\|)+", rows[1].replace("---:", "---")), rows[1]
            rows = []


def test_direction_knows_which_way_is_good() -> None:
    assert rep.direction("test.roc_auc") == 1
    assert rep.direction("production.log_loss") == -1
    assert rep.direction("brier") == -1
    assert rep.direction("drift_alerts") == -1
    assert rep.direction("estimated_roc_auc_mean") == 1
    assert rep.direction("test.rows") == 0


def test_headline_says_better_worse_or_unchanged() -> None:
    better = build(revision("main"), revision(test__roc_auc=0.9700)).splitlines()[0]
    assert better.startswith("## 🟢 Better") and "0.9700 against 0.9673 (+0.0027)" in better
    worse = build(revision("main"), revision(test__roc_auc=0.9600)).splitlines()[0]
    assert worse.startswith("## 🔴 Worse") and "(-0.0073)" in worse
    same = build(revision("main"), revision(test__roc_auc=0.9674)).splitlines()[0]
    assert same.startswith("## ⚪ Unchanged")


def test_lower_log_loss_is_green_and_higher_is_red() -> None:
    text = build(revision("main"), revision(test__log_loss=0.1500, production__log_loss=0.3))
    assert re.search(r"^\| `test\.log_loss` .*-0\.0475 \| 🟢 ↓ \|$", text, re.MULTILINE)
    assert re.search(r"^\| `production\.log_loss` .*\+0\.0718 \| 🔴 ↑ \|$", text, re.MULTILINE)


def test_changed_params_list_base_and_new_values_only() -> None:
    text = build(revision("main"), revision(model__num_leaves=63))
    assert "| `model.num_leaves` | 31 | 63 |" in text
    section = text.split("### Params that changed", 1)[1].split("###", 1)[0]
    assert "model.name" not in section


def test_a_first_pull_request_has_no_base_and_still_reports() -> None:
    text = build(Revision(name="origin/main", commit="abc"), revision())
    assert "the base has no metrics to compare with" in text.splitlines()[0]
    assert "The base has no `reports/metrics.json`" in text
    assert "No monitoring summary could be read at the base (a DVC output" in text
    assert "| `test.roc_auc` | — | 0.9673 |  |  |" in text
    tables_are_well_formed(text)


def test_a_base_without_its_json_reports_says_why_and_shows_this_change() -> None:
    """The JSON reports are DVC outputs: a fork's pull request cannot read the base's."""
    quality = {"development": {"rows_read": 120, "rows_kept": 118, "rows_rejected": 2}}
    head = revision()
    head.reports[rep.DATA_QUALITY] = quality
    text = build(revision("main"), head)
    section = text.split("### Data quality", 1)[1].split("###", 1)[0]
    assert "No data-quality report could be read at the base (a DVC output" in section
    assert "fork's pull request" in section
    assert re.search(r"\| development rows kept \| — \| 118 \|", section), section
    tables_are_well_formed(text)


def test_no_monitoring_in_this_change_is_said_not_crashed() -> None:
    head = Revision(name="workspace", commit=None, metrics={rep.METRICS: METRICS}, params=PARAMS)
    text = build(revision("main"), head)
    assert "Monitoring: no report" in text
    assert "No monitoring summary in this change" in text


def test_tables_survive_pipes_and_line_breaks_in_values() -> None:
    head = revision(model__note="a | b\nc")
    text = build(revision("main"), head)
    assert "`a \\| b c`" in text
    tables_are_well_formed(text)


def test_the_details_table_is_cut_to_fit_githubs_limit() -> None:
    head = revision()
    head.params["many"] = {f"key_{i:05d}": "x" * 40 for i in range(3000)}
    text = build(revision("main"), head)
    assert len(text) <= rep.GITHUB_COMMENT_LIMIT - rep.HEADROOM
    assert "more rows cut to stay under GitHub's comment limit" in text
    assert text.rstrip().endswith("</details>")
    assert text.count("<details>") == 1
    tables_are_well_formed(text)


def test_monitoring_shows_alerts_per_feature_and_estimated_against_realized() -> None:
    text = build(revision("main"), revision())
    assert "| `car_value` | 2 | 2 | 2 | 1 |" in text  # first drifting chunk counted from 1
    assert "| 1 | 2019-01-01 | 0.9700 | 0.9600 | +0.0100 |  |" in text
    assert "| 3 | 2019-03-01 | 0.9700 | 0.9600 | +0.0100 | ⚠️ |" in text


def test_report_names_an_unknown_base_revision(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    subprocess.run([str(BIN / "dvc"), "init", "-q"], cwd=tmp_path, env=tool_env(), check=True)
    git(tmp_path, "commit", "-qm", "init")
    proc = run_cli("report", "--base", "origin/nope", "--output", "r.md", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "--base origin/nope: no such git revision" in proc.stderr
    assert "fetch-depth: 0" in proc.stderr
    assert not (tmp_path / "r.md").exists()


def test_it_renders_as_github_flavoured_markdown() -> None:
    """Every table renders as a table (none falls apart into a paragraph of pipes), every
    image as an image, and the details section stays collapsed."""
    from markdown_it import MarkdownIt

    text = build(revision("main"), revision(test__roc_auc=0.9700, model__num_leaves=63))
    html = MarkdownIt("commonmark").enable("table").render(text)
    separators = [line for line in text.splitlines() if line.startswith("|---")]
    assert html.count("<table>") == len(separators) >= 5
    assert not [p for p in re.findall(r"<p>(.*?)</p>", html, re.DOTALL) if "|" in p]
    assert html.count("<img ") == text.count("![") == 1
    assert "<details>" in html and "<summary>" in html


def _paired(delta: float, low: float, high: float, verdict: str) -> Any:
    from tabml.governance.compare import Paired

    return Paired(7500, 3700, 0.95, 0.95 + delta, delta, 0.002, low, high, 0.01, verdict)  # type: ignore[arg-type]


def test_the_verdict_comes_from_the_same_rows_when_there_are_some() -> None:
    from tabml.governance.compare import SameRows

    # per run, the change looks worse (its own split is harder); on the same rows it is better
    base, head = revision("origin/main"), revision(test__roc_auc=0.9)
    same = SameRows(
        "`origin/main` (`01234567`)",
        {"test": _paired(0.012, 0.008, 0.016, "better")},
        {"test": "this change's test split (7,500 rows)"},
    )
    text = build(base, head, same_rows=same)
    assert text.startswith("## 🟢 Better on the same rows: test ROC AUC 0.9620 against the")
    assert "95% CI +0.0080 to +0.0160" in text
    assert "### The base model against this change, on the same rows" in text
    assert "### Metrics of each run, on its own test split" in text
    tables_are_well_formed(text)
    undecided = SameRows("x", {"test": _paired(0.001, -0.002, 0.004, "not distinguishable")})
    assert build(base, head, same_rows=undecided).startswith("## ⚪ Not distinguishable")


def test_without_the_champion_the_fallback_is_marked_and_says_why() -> None:
    base, head = revision("origin/main"), revision(test__roc_auc=0.99)
    text = build(base, head, same_rows="models/package at origin/main is not in the cache")
    first, _, why = text.splitlines()[:3]
    assert first.startswith("## 🟢 Better: test ROC AUC") and first.endswith("not on the same rows")
    assert why.startswith("_The base model could not be scored") and "not in the cache" in why
    assert "### The base model against this change" not in text
