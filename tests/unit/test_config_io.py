"""Config is typed once and refuses surprises; outputs are written atomically."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tabml.core import io
from tabml.core.config import (
    IngestParams,
    ModelConfig,
    SchemaConfig,
    SplitConfig,
    SplitParams,
    parse,
)
from tabml.core.errors import ConfigError
from tests.conftest import ROOT, schema_dict


def test_unknown_and_missing_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match="learning_rat"):
        parse(
            ModelConfig,
            {
                **yaml.safe_load((ROOT / "conf/model/lightgbm.yaml").read_text()),
                "learning_rat": 0.1,
            },
        )
    cfg = yaml.safe_load((ROOT / "conf/model/lightgbm.yaml").read_text())
    del cfg["num_leaves"]
    with pytest.raises(ConfigError, match="num_leaves"):
        parse(ModelConfig, cfg)


def test_bad_values_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"split\.valid_fraction"):
        parse(SplitConfig, {"method": "time", "valid_fraction": 0.9, "test_fraction": 0.1}, "split")
    with pytest.raises(ConfigError, match="personal-data columns cannot be model features"):
        parse(SchemaConfig, schema_dict(pii={"amount": "drop"}))


def test_a_stage_reads_exactly_the_keys_its_model_declares(tmp_path: Path) -> None:
    params = SplitParams.load(ROOT / "params.yaml")
    assert SplitParams.param_keys() == ("seed", "dataset.schema", "split", "compute")
    assert (
        params.split.method == yaml.safe_load((ROOT / "params.yaml").read_text())["split"]["method"]
    )
    # nothing else of params.yaml is there to read
    assert not hasattr(params, "model")
    with pytest.raises(AttributeError):
        params.model  # type: ignore[attr-defined]  # noqa: B018


def test_a_bad_value_names_the_dotted_key_and_the_file(tmp_path: Path) -> None:
    tree = yaml.safe_load((ROOT / "params.yaml").read_text())
    tree["monitor"]["min_reference_chunks"] = 1
    del tree["dataset"]["schema"]["target"]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tree))
    with pytest.raises(ConfigError) as err:
        IngestParams.load(path)
    assert str(path) in str(err.value)
    assert "monitor.min_reference_chunks: Input should be greater than or equal to 2" in str(
        err.value
    )
    assert "dataset.schema.target: Field required" in str(err.value)
    del tree["monitor"]["reference"]
    path.write_text(yaml.safe_dump(tree))
    with pytest.raises(ConfigError, match=r"key 'monitor.reference.max_rows' is missing"):
        IngestParams.load(path)


def test_missing_params_file_says_how_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="make params"):
        SplitParams.load(tmp_path / "params.yaml")


def test_atomic_write_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), io.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_atomic_dir_swaps_whole_folders(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "a").write_text("old")
    with pytest.raises(RuntimeError), io.atomic_dir(folder) as tmp:
        (tmp / "a").write_text("new")
        raise RuntimeError("killed")
    assert (folder / "a").read_text() == "old"
    with io.atomic_dir(folder) as tmp:
        (tmp / "b").write_text("new")
    assert sorted(p.name for p in folder.iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_json_is_deterministic() -> None:
    a = io.to_json_text({"b": 1 / 3, "a": [float("nan"), 2.0]})
    assert a == io.to_json_text({"a": [float("nan"), 2.0], "b": 1 / 3})
    assert '"a"' in a.splitlines()[1] and "null" in a


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"num_leaves": 1_000_000_000}, "num_leaves.*131072"),
        ({"num_boost_round": 10**9}, "num_boost_round.*100000"),
        ({"early_stopping_rounds": 10**9}, "early_stopping_rounds.*100000"),
        ({"learning_rate": 5.0}, "learning_rate"),
    ],
)
def test_lightgbm_params_beyond_its_limits_are_config_errors(
    change: dict[str, object], why: str
) -> None:
    base = yaml.safe_load((ROOT / "conf/model/lightgbm.yaml").read_text())
    parse(ModelConfig, base, "model")
    with pytest.raises(ConfigError, match=why):
        parse(ModelConfig, {**base, **change}, "model")


def test_tabml_params_never_discards_an_applied_experiment(tmp_path: Path) -> None:
    """`dvc exp apply` leaves an experiment's values in params.yaml: composing conf/ again
    would silently put the conf values back. `tabml params` refuses, names each key, and
    writes only with --force; what it wrote itself, or git holds, it replaces freely."""
    import shutil
    import subprocess

    from tests.conftest import run_cli

    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "conf", repo / "conf")
    (repo / ".dvc").mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    assert run_cli("params", cwd=repo).returncode == 0
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c"],
                   cwd=repo, check=True)  # fmt: skip
    params = repo / "params.yaml"
    # an override, then the defaults again: both written by tabml params, so both replaced
    assert run_cli("params", "model.num_leaves=15", cwd=repo).returncode == 0
    assert run_cli("params", cwd=repo).returncode == 0
    # an applied experiment
    applied = params.read_text().replace("num_leaves: 31", "num_leaves: 63")
    params.write_text(applied)
    refused = run_cli("params", cwd=repo)
    assert refused.returncode == 2 and "model.num_leaves: 63 -> 31" in refused.stderr
    assert "--force" in refused.stderr and params.read_text() == applied
    # a composition that fails validation is never written either
    bad = run_cli("params", "--force", "model.num_leaves=1000000", cwd=repo)
    assert bad.returncode == 2 and params.read_text() == applied
    assert run_cli("params", "--force", cwd=repo).returncode == 0
    assert "num_leaves: 31" in params.read_text()


def _baseline(tmp_path: Path) -> Path:
    """A repository holding conf/ and the params.yaml it composes, committed."""
    import shutil

    from tests.conftest import git, run_cli

    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "conf", repo / "conf")
    (repo / ".dvc").mkdir()
    git(repo, "init", "-q")
    assert run_cli("params", cwd=repo).returncode == 0
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "baseline")
    return repo


def _experiment(repo: Path, name: str, *overrides: str) -> None:
    """An experiment as DVC stores one: a commit whose params.yaml is conf/ composed with the
    `-S` overrides, under refs/exps/<baseline[:2]>/<baseline[2:]>/<name>."""
    import subprocess

    from tests.conftest import git, run_cli

    baseline = git(repo, "rev-parse", "HEAD").strip()
    assert run_cli("params", "--force", *overrides, cwd=repo).returncode == 0
    git(repo, "commit", "-qam", f"exp {name}")
    commit = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "reset", "-q", "--hard", baseline)
    ref = f"refs/exps/{baseline[:2]}/{baseline[2:]}/{name}"
    subprocess.run(["git", "update-ref", ref, commit], cwd=repo, check=True)


def test_promote_carries_an_experiment_into_conf_and_params_then_reproduces_it(
    tmp_path: Path,
) -> None:

    import yaml

    from tests.conftest import git, run_cli

    repo = _baseline(tmp_path)
    _experiment(repo, "lr05", "model.learning_rate=0.05", "seed=7", "monitor.chunking.rows=4000")
    _experiment(repo, "baseline-model", "model=logreg")
    refs = git(repo, "for-each-ref", "--format=%(refname)", "refs/exps").split()
    lr05 = next(r for r in refs if r.endswith("/lr05"))
    wanted = yaml.safe_load(git(repo, "show", f"{lr05}:params.yaml"))

    out = run_cli("promote", "lr05", cwd=repo)
    assert out.returncode == 0, out.stderr
    lightgbm = (repo / "conf/model/lightgbm.yaml").read_text()
    assert "learning_rate: 0.05" in lightgbm and lightgbm.startswith("# LightGBM")  # comments kept
    assert "seed: 7" in (repo / "conf/config.yaml").read_text()
    assert "rows: 4000" in (repo / "conf/monitor/default.yaml").read_text()
    assert "conf/model/lightgbm.yaml: learning_rate: 0.05" in out.stderr
    promoted = yaml.safe_load((repo / "params.yaml").read_text())
    assert promoted == wanted and promoted["model"]["learning_rate"] == 0.05
    # conf/ now composes into the experiment's params: `tabml params` changes nothing
    before = (repo / "params.yaml").read_text()
    assert run_cli("params", cwd=repo).returncode == 0
    assert (repo / "params.yaml").read_text() == before

    git(repo, "checkout", "-q", "--", "conf", "params.yaml")
    out = run_cli("promote", "baseline-model", cwd=repo)
    assert out.returncode == 0, out.stderr
    assert "- model: logreg" in (repo / "conf/config.yaml").read_text()
    assert yaml.safe_load((repo / "params.yaml").read_text())["model"]["name"] == "logreg"

    missing = run_cli("promote", "no-such-exp", cwd=repo)
    assert missing.returncode == 2 and "dvc exp show" in missing.stderr


def test_a_promotion_that_would_not_reproduce_the_experiment_leaves_conf_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    from tabml.core.errors import ConfigError
    from tabml.governance import promote as plan
    from tabml.stages import promote as stage

    repo = _baseline(tmp_path)
    _experiment(repo, "nl63", "model.num_leaves=63", "seed=7")
    before = {p: p.read_text() for p in (repo / "conf").rglob("*.yaml")}
    # an edit that lands in the wrong place: conf/ would not give the experiment's params
    monkeypatch.setattr(plan, "value_edits", lambda *a: {"model/lightgbm.yaml": {"num_leaves": 99}})
    with pytest.raises(ConfigError, match="conf/ was left as it was"):
        stage.run(repo, "nl63", repo / "conf", repo / "params.yaml")
    assert {p: p.read_text() for p in (repo / "conf").rglob("*.yaml")} == before
