"""The module layering of docs/pipeline.md ("Architecture"), read from the imports themselves.

- the core (`tabml/*.py` but the CLI) never imports a stage module or the CLI: the logic does
  not depend on the shells that read and write around it;
- a stage module never imports another stage module, but for `stages.compare` (the champion
  against the challenger, shared by `tabml report` and the release gate): shared names live in
  the core (the catalog for file names, config for params);
- only the adapters import NannyML and DVC's Python API.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

SRC = ROOT / "src/tabml"
CORE = sorted(p for p in SRC.glob("*.py") if p.name not in {"cli.py", "__init__.py"})
STAGES = sorted(p for p in (SRC / "stages").glob("*.py") if p.name != "__init__.py")
ADAPTERS = {"nannyml": "nannyml_adapter.py", "dvc": "dvc_adapter.py"}


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, at any depth (functions, TYPE_CHECKING blocks)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            # `from tabml.stages import compare` imports the module tabml.stages.compare
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.name)
def test_the_core_never_imports_a_stage_or_the_cli(path: Path) -> None:
    bad = sorted(m for m in _imports(path) if m.startswith(("tabml.stages", "tabml.cli")))
    assert bad == [], f"{path.name} imports {bad}"


@pytest.mark.parametrize("path", STAGES, ids=lambda p: p.name)
def test_a_stage_imports_no_other_stage_but_the_shared_comparison(path: Path) -> None:
    stages = {f"tabml.stages.{p.stem}" for p in STAGES}
    bad = sorted((_imports(path) & stages) - {"tabml.stages.compare", f"tabml.stages.{path.stem}"})
    assert bad == [], f"stages/{path.name} imports {bad}"


@pytest.mark.parametrize("library", sorted(ADAPTERS))
def test_one_adapter_per_volatile_library(library: str) -> None:
    users = sorted(
        str(p.relative_to(SRC))
        for p in [*CORE, *STAGES, SRC / "cli.py"]
        if any(m == library or m.startswith(f"{library}.") for m in _imports(p))
    )
    assert users == [ADAPTERS[library]]


STAGE_INFRASTRUCTURE = {"config", "io", "log", "catalog", "errors"}


def test_every_module_a_stage_shell_imports_is_one_of_its_deps() -> None:
    """A change to code a stage runs must rerun the stage: every tabml module its shell
    imports (at any depth of the file, lazily too), but the infrastructure (config, io, log,
    catalog, errors), is among its dvc.yaml deps, or the whole of src/tabml is. (train once
    missed distributed.py, which compute=dask runs.)"""
    import yaml

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        shell = SRC / "stages" / f"{name}.py"
        deps = set(stage.get("deps", []))
        if not shell.is_file() or "src/tabml" in deps:
            continue
        used = {
            m.split(".")[1]
            for m in _imports(shell)
            if m.startswith("tabml.") and not m.startswith("tabml.stages")
        }
        missing = sorted(
            m
            for m in used - STAGE_INFRASTRUCTURE
            if (SRC / f"{m}.py").is_file() and f"src/tabml/{m}.py" not in deps
        )
        assert missing == [], f"{name}: add to its deps: {missing}"
