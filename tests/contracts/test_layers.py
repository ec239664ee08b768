"""The layering of docs/pipeline.md ("Architecture"), read from the imports themselves.

A subpackage of tabml may import only the layers below it in LAYERS (and itself), so no cycle
can form between layers; inside a layer, no module imports another in a cycle. Imports are
counted at any depth of a file: at its top, inside functions (lazily) and for type checking.
Besides:

- a stage module never imports another stage module, but for `stages.compare` (the champion
  against the challenger, shared by `tabml report` and the release gate);
- only the adapters import NannyML and DVC's Python API.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

SRC = ROOT / "src/tabml"

# low to high: each layer may import those before it, never one after it
LAYERS = (
    "core",  # config, schema, io, catalog, errors, log: what everything stands on
    "adapters",  # the one module per volatile library (DVC, NannyML)
    "governance",  # privacy, erasure, retention, fairness, comparison, releases
    "data",  # sources, cleaning, splitting, synthetic and retraining data
    "monitoring",  # the reference, the monitored batch, NannyML's findings
    "learning",  # features, models, metrics, evaluation, packages, tuning
    "service",  # the prediction service and its log
    "compute",  # the stages' work on a Dask cluster
    "reporting",  # the pull-request report, charts, experiments side by side
    "stages",  # the shells: read, call the layers above, write
    "cli",  # the `tabml` command
)
ADAPTERS = {"nannyml": "adapters/nannyml_adapter.py", "dvc": "adapters/dvc_adapter.py"}
MODULES = sorted(p for p in SRC.rglob("*.py") if p.name != "__init__.py")


def module_name(path: Path) -> str:
    """`core.io` for src/tabml/core/io.py, `cli` for src/tabml/cli.py."""
    return ".".join(path.relative_to(SRC).with_suffix("").parts)


def layer(module: str) -> str:
    return module.split(".")[0]


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, at any depth (functions, TYPE_CHECKING blocks)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            # `from tabml.core import io` imports the module tabml.core.io
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def import_graph() -> dict[str, set[str]]:
    """Each tabml module (`core.io`) and the tabml modules it imports."""
    known = {module_name(p) for p in MODULES}
    graph = {}
    for path in MODULES:
        imported = {m.removeprefix("tabml.") for m in _imports(path) if m.startswith("tabml.")}
        graph[module_name(path)] = {m for m in imported if m in known} - {module_name(path)}
    return graph


def upward(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a layer above the importer's, as 'importer -> imported'."""
    rank = {name: i for i, name in enumerate(LAYERS)}
    return sorted(
        f"{m} -> {dep}"
        for m, deps in graph.items()
        for dep in deps
        if rank[layer(dep)] > rank[layer(m)]
    )


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(m: str) -> None:
        index[m] = low[m] = len(index)
        stack.append(m)
        for dep in sorted(graph.get(m, ())):
            if dep not in index:
                visit(dep)
                low[m] = min(low[m], low[dep])
            elif dep in stack:
                low[m] = min(low[m], index[dep])
        if low[m] == index[m]:
            group = []
            while True:
                top = stack.pop()
                group.append(top)
                if top == m:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for m in sorted(graph):
        if m not in index:
            visit(m)
    return found


def test_every_module_lives_in_a_layer() -> None:
    outside = sorted(m for m in map(module_name, MODULES) if layer(m) not in LAYERS)
    assert outside == [], (
        f"put these in a layer of LAYERS (tests/contracts/test_layers.py): {outside}"
    )


def test_a_layer_imports_only_the_layers_below_it() -> None:
    assert upward(import_graph()) == []


def test_no_module_imports_another_in_a_cycle() -> None:
    assert cycles(import_graph()) == []


def test_the_rules_catch_an_upward_import_and_the_cycle_the_move_removed() -> None:
    """The checks themselves: an import added upward (the core reaching for the report) is
    named, and the cycle the layout's move broke (model took its metrics from evaluate, which
    imports predict, package and model) is found again if it comes back."""
    graph = import_graph()
    graph["core.io"] = {*graph["core.io"], "reporting.report"}
    assert upward(graph) == ["core.io -> reporting.report"]
    graph = import_graph()
    graph["learning.model"] = {*graph["learning.model"], "learning.evaluate"}
    found = cycles(graph)
    assert len(found) == 1
    assert {"learning.evaluate", "learning.model"} <= set(found[0])


@pytest.mark.parametrize(
    "path", [p for p in MODULES if layer(module_name(p)) == "stages"], ids=lambda p: p.name
)
def test_a_stage_imports_no_other_stage_but_the_shared_comparison(path: Path) -> None:
    stages = {f"tabml.stages.{p.stem}" for p in (SRC / "stages").glob("*.py")}
    bad = sorted((_imports(path) & stages) - {"tabml.stages.compare", f"tabml.stages.{path.stem}"})
    assert bad == [], f"stages/{path.name} imports {bad}"


@pytest.mark.parametrize("library", sorted(ADAPTERS))
def test_one_adapter_per_volatile_library(library: str) -> None:
    users = sorted(
        str(p.relative_to(SRC))
        for p in MODULES
        if any(m == library or m.startswith(f"{library}.") for m in _imports(p))
    )
    assert users == [ADAPTERS[library]]


def test_the_docs_and_build_files_name_modules_that_exist() -> None:
    """A module named in prose or in a build step (`tabml.learning.model.train`,
    src/tabml/core/io.py, the Dockerfile's import check) exists where it says: a layout change
    that misses one is caught here, not in a slow image build or by a reader."""
    import re

    files = [
        ROOT / "README.md", ROOT / "Dockerfile", ROOT / "dvc.yaml",
        *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / ".github/workflows").glob("*.yml")),
    ]  # fmt: skip
    dotted = re.compile(r"(?<![\w.\-/])tabml((?:\.[A-Za-z_]\w*)+)")
    paths = re.compile(r"(?<![\w.])src/tabml/([\w/]+\.py)")
    stale = []
    for path in files:
        text = path.read_text()
        for m in dotted.finditer(text):
            here, found = SRC, False
            for part in m.group(1).lstrip(".").split("."):
                if (here / part).is_dir():
                    here = here / part
                    continue
                found = (here / f"{part}.py").is_file() or part == "__version__"
                break
            if not found:
                stale.append(f"{path.relative_to(ROOT)}: {m.group(0)}")
        for m in paths.finditer(text):
            if not (SRC / m.group(1)).is_file() and "NAME" not in m.group(1):
                stale.append(f"{path.relative_to(ROOT)}: {m.group(0)}")
    assert sorted(set(stale)) == []
