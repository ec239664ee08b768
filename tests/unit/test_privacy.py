"""Personal data is handled at the door: ingest, the first stage that writes anything,
pseudonymises or drops every `schema.pii` column, so no raw value reaches data/raw (which
`dvc push` uploads) or anything after it."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pandas as pd
import pytest

from tabml.core.errors import ConfigError
from tabml.stages import clean, ingest
from tests.conftest import make_frame, schema_dict, write_params

KEY = "k" * 32


def _hmac(value: str, key: str = KEY) -> str:
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


def _run(tmp_path: Path, schema: dict, frame: pd.DataFrame, **sources: str) -> Path:
    ext = tmp_path / "ext"
    ext.mkdir(exist_ok=True)
    frame.to_csv(ext / "dev.csv", index=False)
    params = write_params(tmp_path / "params.yaml", schema)
    if sources:
        import yaml

        tree = yaml.safe_load(params.read_text())
        tree["dataset"]["sources"].update(sources)
        params.write_text(yaml.safe_dump(tree, allow_unicode=True))
    ingest.run(params, ext, tmp_path / "raw")
    return params


def test_ingest_writes_no_raw_personal_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TABML_PII_KEY", KEY)
    frame = make_frame(300).assign(phone=[f"+1 555 {i:04d}" for i in range(300)])
    schema = schema_dict(pii={"email": "pseudonymise", "phone": "drop"})
    params = _run(tmp_path, schema, frame)
    raw = pd.read_parquet(tmp_path / "raw/development.parquet")
    assert "phone" not in raw.columns
    assert not set(raw["email"]) & set(frame["email"])
    assert raw.loc[raw["id"] == 0, "email"].item() == _hmac("user0@example.com")
    # clean passes the pseudonyms on unchanged (they are not hashed a second time)
    clean.run(params, tmp_path / "raw", tmp_path / "interim", tmp_path / "q.json")
    interim = pd.read_parquet(tmp_path / "interim/clean.parquet")
    assert set(interim["email"]) <= set(raw["email"])


def test_a_personal_id_is_pseudonymised_in_every_raw_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TABML_PII_KEY", KEY)
    frame = make_frame(300)
    frame["id"] = [f"cust-{i}" for i in range(300)]
    ext = tmp_path / "ext"
    ext.mkdir()
    prod = make_frame(100, seed=3)
    prod["id"] = [f"new-{i}" for i in range(100)]
    prod.drop(columns=["y"]).to_csv(ext / "prod.csv", index=False)
    prod[["id", "y"]].to_csv(ext / "labels.csv", index=False)
    schema = schema_dict(pii={"email": "drop", "id": "pseudonymise"})
    _run(tmp_path, schema, frame, production="prod.csv", production_labels="labels.csv")
    for name, raw_ids in [
        ("development", frame["id"]),
        ("production", prod["id"]),
        ("production_labels", prod["id"]),
    ]:
        ids = pd.read_parquet(tmp_path / f"raw/{name}.parquet")["id"]
        assert not set(ids) & set(raw_ids), name
        assert set(ids) == {_hmac(v) for v in raw_ids}, name


def test_additions_from_tabml_logs_are_not_hashed_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tabml append` writes rows from prediction logs, pseudonymised by the server already."""
    monkeypatch.setenv("TABML_PII_KEY", KEY)
    schema = schema_dict(pii={"email": "drop", "id": "pseudonymise"})
    frame = make_frame(300)
    added = make_frame(20, seed=5).drop(columns=["email"])
    added["id"] = [_hmac(f"logged-{i}") for i in range(20)]
    (tmp_path / "ext").mkdir()
    added.to_parquet(tmp_path / "ext/additions.parquet", index=False)
    _run(tmp_path, schema, frame, additions="additions.parquet")
    ids = set(pd.read_parquet(tmp_path / "raw/development.parquet")["id"])
    assert set(added["id"]) <= ids


def test_the_key_is_checked_before_any_file_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TABML_PII_KEY", raising=False)
    params = write_params(tmp_path / "params.yaml", schema_dict(), source="nowhere.csv")
    (tmp_path / "ext").mkdir()
    # the source does not exist: the key error comes first, so nothing was read
    with pytest.raises(ConfigError, match="TABML_PII_KEY is not set"):
        ingest.run(params, tmp_path / "ext", tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


def test_the_key_is_needed_only_where_ingest_runs_again_on_personal_data(tmp_path: Path) -> None:
    """What the pull-request workflow asks before a run gets TABML_PII_KEY."""
    import yaml

    from tests.conftest import copy_project, git, run_cli

    repo = copy_project(tmp_path / "repo")
    params = repo / "params.yaml"

    def ask() -> str:
        proc = run_cli("needs-key", "--base", "HEAD", cwd=repo)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    plain = yaml.safe_load(params.read_text())
    if "pseudonymise" not in plain["dataset"]["schema"].get("pii", {}).values():
        assert ask() == "no"  # the default data: nothing personal, whatever changes
    tree = yaml.safe_load(write_params(params, schema_dict()).read_text())
    git(repo, "commit", "-qam", "a dataset that pseudonymises")
    assert ask() == "no"  # unchanged: ingest's outputs are the base's
    tree["model"]["num_leaves"] = 7
    params.write_text(yaml.safe_dump(tree))
    assert ask() == "no"  # a model change reruns train onwards, not ingest
    tree["dataset"]["schema"]["ignore"] = ["ratio"]
    params.write_text(yaml.safe_dump(tree))
    assert ask() == "yes"
    git(repo, "checkout", "-q", "--", "params.yaml")
    schema_py = repo / "src/tabml/core/schema.py"
    schema_py.write_text(schema_py.read_text() + "\n# changed\n")
    assert ask() == "yes"
