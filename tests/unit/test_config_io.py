"""Config is typed once and refuses surprises; outputs are written atomically."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tabml import io
from tabml.config import Params, parse
from tabml.errors import ConfigError
from tests.conftest import ROOT, schema_dict


def test_unknown_and_missing_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match="learning_rat"):
        parse(
            "model",
            {
                **yaml.safe_load((ROOT / "conf/model/lightgbm.yaml").read_text()),
                "learning_rat": 0.1,
            },
        )
    cfg = yaml.safe_load((ROOT / "conf/model/lightgbm.yaml").read_text())
    del cfg["num_leaves"]
    with pytest.raises(ConfigError, match="num_leaves"):
        parse("model", cfg)


def test_bad_values_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"split\.valid_fraction"):
        parse("split", {"method": "time", "valid_fraction": 0.9, "test_fraction": 0.1})
    with pytest.raises(ConfigError, match="personal-data columns cannot be model features"):
        parse("dataset.schema", schema_dict(pii={"amount": "drop"}))


def test_a_stage_cannot_read_a_key_it_did_not_declare(tmp_path: Path) -> None:
    params = Params.load(ROOT / "params.yaml", ["split"])
    assert params.section("split").method in {"time", "stratified"}
    with pytest.raises(ConfigError, match="does not declare it"):
        params.section("model")


def test_missing_params_file_says_how_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="make params"):
        Params.load(tmp_path / "params.yaml", ["seed"])


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
