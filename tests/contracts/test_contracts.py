"""dvc.yaml, params.yaml, conf/, the CLI and the repository settings agree with each other."""

from __future__ import annotations

import configparser
import importlib
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tabml.adapters.dvc_adapter import compose_params
from tabml.cli import app
from tests.conftest import ROOT

DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())
STAGES = DVC["stages"]


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_params_equal_what_its_module_declares(stage: str) -> None:
    module = importlib.import_module(f"tabml.stages.{stage}")
    assert sorted(STAGES[stage].get("params", [])) == sorted(module.PARAMS)


def _tabml_imports(module: Path) -> set[str]:
    """The tabml modules a source file imports, at its top or inside functions (lazily), as
    paths under tabml (`core/io`, `stages/compare`)."""
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "tabml":
            base = str(node.module).removeprefix("tabml").lstrip(".").replace(".", "/")
            if (ROOT / "src/tabml" / base / "__init__.py").is_file() or not base:
                # `from tabml.core import io`: the names are modules of the package
                found |= {f"{base}/{a.name}".lstrip("/") for a in node.names}
            else:
                found.add(base)
        elif isinstance(node, ast.Import):
            found |= {
                a.name.removeprefix("tabml.").replace(".", "/")
                for a in node.names
                if a.name.startswith("tabml.")
            }
    return found


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_stage_depends_on_every_module_its_command_imports(stage: str) -> None:
    """A module the stage's code calls can change its outputs (io.py writes the Parquet files),
    so DVC must rerun the stage when it changes. Messages, errors, file names and params
    parsing are left out: the check stage's stamp stands for the config."""
    deps = STAGES[stage]["deps"]
    if "src/tabml" in deps:  # the whole package
        return
    imported = _tabml_imports(ROOT / f"src/tabml/stages/{stage}.py")
    infrastructure = {"core/log", "core/errors", "core/catalog", "core/config"}
    wanted = {f"src/tabml/{m}.py" for m in imported - infrastructure}
    assert sorted(wanted - set(deps)) == []


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_runs_its_own_tabml_command_and_depends_on_its_module(stage: str) -> None:
    argv = shlex.split(STAGES[stage]["cmd"])
    assert argv[:2] == ["tabml", stage]
    assert f"src/tabml/stages/{stage}.py" in STAGES[stage]["deps"]
    commands = {c.name or c.callback.__name__ for c in app.registered_commands}  # type: ignore[union-attr]
    groups = {g.name for g in app.registered_groups}
    assert stage in commands | groups


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_output_path_is_on_the_command_line(stage: str) -> None:
    cmd = STAGES[stage]["cmd"]
    outs = [
        next(iter(o)) if isinstance(o, dict) else o
        for key in ("outs", "metrics", "plots")
        for o in STAGES[stage].get(key, [])
    ]
    for out in outs:
        # an output is named on the command line, or lives in a folder that is
        assert any(out == a or out.startswith(a.rstrip("/") + "/") for a in shlex.split(cmd)), out


def test_params_yaml_is_what_conf_composes(tmp_path: Path) -> None:
    out = tmp_path / "params.yaml"
    compose_params(ROOT / "conf", out, [])
    assert out.read_text() == (ROOT / "params.yaml").read_text(), (
        "params.yaml is stale: run 'make params' and commit it"
    )


@pytest.mark.parametrize("override", ["model=logreg", "dataset=employment", "split=stratified"])
def test_every_conf_option_composes_into_valid_typed_config(override: str, tmp_path: Path) -> None:
    from tabml.core.config import ALL_PARAMS, read_params

    out = tmp_path / "params.yaml"
    compose_params(ROOT / "conf", out, [override])
    tree = read_params(out)
    for kind in ALL_PARAMS:
        kind.from_tree(tree, str(out))


def test_every_stage_params_model_is_validated_by_tabml_params() -> None:
    """`tabml params` checks a new params.yaml with ALL_PARAMS: a stage's model left out of it
    would let a bad config through to the middle of `dvc repro`."""
    from tabml.core.config import ALL_PARAMS

    for stage in STAGES:
        module = importlib.import_module(f"tabml.stages.{stage}")
        if module.PARAMS and stage != "check":  # check's are the sections of them all
            assert any(kind.param_keys() == module.PARAMS for kind in ALL_PARAMS), stage


def test_every_stage_that_reads_params_runs_after_the_check() -> None:
    """DVC deletes a stage's outputs before running it: the check stage must fail first, so
    every stage that reads params.yaml depends on its stamp, and it tracks every section they
    read."""
    from tabml.core.catalog import Repo

    sections = set(STAGES["check"]["params"])
    for name, stage in STAGES.items():
        if name == "check" or not stage.get("params"):
            continue
        assert Repo.PARAMS_CHECKED in stage["deps"], name
        for key in stage["params"]:  # its section, or (a command's section) the key itself
            assert key.split(".")[0] in sections or key in sections, (name, key)


def test_dvc_config_turns_telemetry_off_and_enables_hydra() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / ".dvc/config")
    assert cfg["core"]["analytics"] == "false"
    assert cfg["core"]["check_update"] == "false"
    assert cfg["hydra"]["enabled"] == "true"


TELEMETRY = ("NML_DISABLE_USAGE_LOGGING", "ITERATIVE_DO_NOT_TRACK")


def _without_telemetry_settings() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in TELEMETRY}


def test_every_make_target_runs_with_telemetry_off() -> None:
    """What a recipe of the Makefile sees, with neither variable set by the caller."""
    probe = 'telemetry-probe: ; @echo "$$NML_DISABLE_USAGE_LOGGING $$ITERATIVE_DO_NOT_TRACK"'
    proc = subprocess.run(
        ["make", "-s", "--no-print-directory", "--eval", probe, "telemetry-probe"],
        cwd=ROOT,
        env=_without_telemetry_settings(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.split() == ["1", "1"]


def test_every_tabml_command_runs_with_telemetry_off() -> None:
    """The `tabml` entry point (cli.main) turns both off before any command runs, so the
    NannyML and DVC a command imports never see them unset."""
    code = (
        "import os, tabml.cli as cli\n"
        "cli.app = lambda: print(*(os.environ.get(k) for k in "
        f"{TELEMETRY!r}))\n"
        "cli.main()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=_without_telemetry_settings(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.split() == ["1", "1"]


def test_data_and_models_are_ignored_by_git() -> None:
    for path in [
        "data/raw/x.parquet",
        "data/interim/clean.parquet",
        "models/package/model.txt",
        "models/reference.parquet",
        "data/external/loans.csv",
        "data/external/synth/part-0.parquet",
        "data/serving/predictions/2024-05-01/part-0.parquet",
        "reports/monitoring/report.html",
        "dvc_plots/index.html",
        "reports/.metrics.json.abc123.tmp",
        "reports/monitoring/drift_alerts.png",
    ]:
        proc = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=ROOT)
        assert proc.returncode == 0, f"{path} is not git-ignored"
    # small metrics and summaries are committed, DVC-style, so base revisions can be compared
    for path in ["reports/metrics.json", "reports/monitoring/metrics.json"]:
        proc = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=ROOT)
        assert proc.returncode == 1, f"{path} is git-ignored"
    cached = [
        next(iter(o)) if isinstance(o, dict) else o
        for stage in STAGES.values()
        for o in stage.get("outs", []) + stage.get("metrics", [])
        if not (isinstance(o, dict) and next(iter(o.values())).get("cache") is False)
    ]
    for path in cached:  # every output DVC caches is kept out of git
        proc = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=ROOT)
        assert proc.returncode == 0, f"{path} is cached by DVC but not git-ignored"
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    # in git, beside the data: the folder's README and the erasure ledger (keyed hashes only,
    # so that every revision carries it: docs/privacy.md)
    in_git = {"data/external/README.md", "data/erasure/ledger.txt"}
    assert not [t for t in tracked if t.startswith(("data/", "models/")) and t not in in_git]


@pytest.mark.parametrize(
    "folder", ["data", "data/external", "data/serving", "data/serving/predictions"]
)
def test_dvc_walks_the_folders_that_hold_dvc_files(folder: str) -> None:
    """DVC's own ignore check (not git's) must not skip these folders: a folder it takes as
    ignored is never searched for `.dvc` files, and `dvc checkout` then deletes `dvc add`-ed
    data as an unused link (this failed with a `/data/*` pattern, which git reads differently)."""
    from scmrepo.git import Git

    scm = Git(str(ROOT))
    try:
        assert not scm.is_ignored(str(ROOT / folder) + "/"), f"DVC would not look in {folder}/"
        assert not scm.is_ignored(str(ROOT / folder / "loans.csv.dvc"))
    finally:
        scm.close()


def _keys(tree: object, prefix: str = "") -> list[str]:
    out: list[str] = []
    if isinstance(tree, dict):
        for k, v in tree.items():
            out += [f"{prefix}{k}", *_keys(v, f"{prefix}{k}.")]
    elif isinstance(tree, list):
        for v in tree:
            out += _keys(v, prefix)
    return out


@pytest.mark.parametrize(
    "path",
    ["params.yaml", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "conf").rglob("*.yaml"))],
)
def test_no_params_key_is_one_dvcs_run_cache_ignores(path: str) -> None:
    """DVC leaves keys named `size` or `nfiles` out of its run-cache key (DVC issue #10296):
    a changed value would restore the old outputs. No key at any depth may have those names."""
    keys = _keys(yaml.safe_load((ROOT / path).read_text()))
    assert keys, path
    assert [k for k in keys if k.rsplit(".", 1)[-1] in {"size", "nfiles"}] == []


def test_params_loader_refuses_a_key_the_run_cache_ignores(tmp_path: Path) -> None:
    from tabml.core.config import read_params
    from tabml.core.errors import ConfigError

    tree = yaml.safe_load((ROOT / "params.yaml").read_text())
    tree["monitor"]["chunking"] = {"method": "rows", "rows": 100, "size": 100}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tree))
    with pytest.raises(ConfigError, match=r"monitor\.chunking\.size: DVC's run-cache ignores"):
        read_params(path)


def test_every_plot_file_evaluate_writes_is_drawn_with_its_title() -> None:
    """Each plot is declared once, by the stage that writes it (a top-level definition of the
    same file would draw it twice), with the axes and title that make it readable."""
    from tabml.core import catalog

    plots = {next(iter(p)): next(iter(p.values())) for p in DVC["stages"]["evaluate"]["plots"]}
    names = {v for k, v in vars(catalog.Plots).items() if k.isupper()}
    assert set(plots) == {f"reports/plots/{name}" for name in names}
    assert all({"x", "y", "title", "template"} <= set(props) for props in plots.values())
    assert "plots" not in DVC


def test_every_stage_keeps_its_run_cache() -> None:
    """DVC saves no run-cache for a stage with a persistent output or with an uncached output
    that is neither a metric nor a plot (dvc/stage/__init__.py, `Stage.run`), and then reruns
    it whenever its inputs come back to an earlier state: in `dvc exp run`, in a sweep, and
    after `dvc pull --run-cache` in CI. Only ingest (persist, so that a bad file keeps the last
    good data/raw/) and check (a second) may go without."""

    def flags(entry: Any) -> dict[str, Any]:
        return next(iter(entry.values())) if isinstance(entry, dict) else {}

    without = {
        name: [next(iter(o)) if isinstance(o, dict) else o for o in stage.get("outs", [])
               if flags(o).get("cache") is False or flags(o).get("persist")]
        for name, stage in DVC["stages"].items()
    }  # fmt: skip
    assert {name: outs for name, outs in without.items() if outs} == {
        "check": ["reports/params_checked.txt"],
        "ingest": ["data/raw"],
    }


def test_importing_tabml_modules_has_no_side_effects(tmp_path: Path) -> None:
    """Nothing happens at import: no files, and the heavy libraries stay unloaded."""
    code = (
        "import sys, tabml.cli, tabml.core.config, tabml.core.schema, tabml.data.clean, "
        "tabml.data.split, tabml.learning.features, tabml.learning.model, "
        "tabml.learning.evaluate, tabml.learning.package, tabml.learning.predict, "
        "tabml.monitoring.monitor, tabml.adapters.nannyml_adapter, tabml.reporting.plots, "
        "tabml.stages.monitor, tabml.stages.train\n"
        "heavy = [m for m in ('lightgbm', 'nannyml', 'sklearn', 'dvc', 'pandas') "
        "if m in sys.modules]\n"
        "print(heavy)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert proc.stdout.strip() == "[]"
    assert list(tmp_path.iterdir()) == []


def test_tabml_params_checks_what_the_config_alone_can_tell(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    out = tmp_path / "params.yaml"
    ok = run_cli("params", "--output", str(out), "--config-dir", str(ROOT / "conf"))
    assert ok.returncode == 0 and "dataset car_loan" in ok.stderr, ok.stderr
    # employment has no timestamp column: period chunking cannot work, and says why now
    bad = run_cli(
        "params",
        "--output",
        str(out),
        "--config-dir",
        str(ROOT / "conf"),
        "dataset=employment",
        "monitor.chunking.method=period",
        "monitor.chunking.period=M",
    )
    assert bad.returncode == 2, bad.stderr
    assert "'period' but the dataset has no timestamp column" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_mypy_catches_a_misspelt_params_attribute(tmp_path: Path) -> None:
    """A stage's params are one typed model: a typo in a key it reads is a type error, not a
    silent None at run time (the config boundary keeps its types)."""
    code = tmp_path / "stage_with_typos.py"
    code.write_text(
        "from pathlib import Path\n"
        "from tabml.core.config import TrainParams\n"
        "params = TrainParams.load(Path('params.yaml'))\n"
        "rows: int = params.reference.max_rows\n"
        "print(params.reference.max_rowz, params.modle)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), str(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 2, proc.stdout
    assert '"ReferenceConfig" has no attribute "max_rowz"' in errors[0]
    assert '"TrainParams" has no attribute "modle"' in errors[1]
