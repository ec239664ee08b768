"""`tabml init-dataset`: a config proposed from the data, every guess stated, each decision that
is the user's flagged (tabml.data.profile, tabml.stages.init_dataset)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tabml.core.errors import DataError
from tabml.data.profile import propose
from tests.conftest import ROOT, run_cli


def survey(n: int, seed: int = 0, shift: bool = False) -> pd.DataFrame:
    """A survey-like set: number-coded categories, an e-mail, a leak, a constant column."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n) + (15 if shift else 0)
    hours = rng.normal(38, 9, n).round(1) + (10 if shift else 0)
    occupation = rng.integers(1, 7, n)  # codes 1-6
    sex = rng.integers(1, 3, n)
    region = rng.choice(["north", "south", "east", "west"], n)
    # as strong as a census survey's (ROC AUC about 0.9): a weaker signal stops a model after a
    # few boosting rounds, whose lumpy scores then differ from the reference's by chance
    logit = 0.12 * (age - 45) + 0.18 * (hours - 38) + 1.5 * (occupation <= 2) - 0.9 * (sex == 2)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "person_id": np.arange(n) + seed * 100_000,
            "interviewed": pd.date_range("2023-01-01", periods=n, freq="2h").strftime(
                "%Y-%m-%d %H:%M"
            ),
            "age": age,
            "hours": hours,
            "occupation": occupation,
            "sex": sex,
            "region": region,
            "contact": [f"p{i}@survey.example" for i in range(n)],
            "wave": 3,
            # known only after the outcome: the income bracket that defines the target
            "bracket_after": y * 2 + rng.integers(0, 2, n) * 0,
            "high_income": y,
        }
    )


def test_the_proposal_states_each_guess_and_flags_each_decision() -> None:
    p = propose(survey(4_400), target="high_income")
    by = {c.name: c for c in p.columns}
    assert (p.id, p.timestamp, p.positive) == ("person_id", "interviewed", 1)
    assert any("person_id (guessed" in s for s in p.roles_stated)
    assert any("interviewed (guessed" in s for s in p.roles_stated)
    # number-coded categories as strings
    assert by["occupation"].spec == {
        "kind": "categorical",
        "categories": ["1", "2", "3", "4", "5", "6"],
    }
    assert by["sex"].spec["categories"] == ["1", "2"]
    assert by["region"].spec["kind"] == "categorical"
    # numbers with their range and a margin, never below 0 when the data is not
    assert by["age"].spec["kind"] == "numeric" and by["age"].spec["min"] == 11
    assert by["hours"].spec["min"] < survey(4_400)["hours"].min()
    # decisions left to the user
    assert by["contact"].role == "pii" and "e-mail" in by["contact"].flag
    assert by["bracket_after"].role == "ignore" and "ROC AUC 1.000" in by["bracket_after"].flag
    assert by["wave"].role == "ignore"
    assert "sex" in p.protected_candidates and "age" in p.protected_candidates
    # monitoring and release sized for 4,400 rows
    assert (p.chunk_rows, p.reference_chunks) == (733, 6)
    assert p.min_test_rows == int(4_400 * 0.15 * 0.8)
    assert p.best_single is not None and p.min_test_roc_auc <= p.best_single[1]


def test_roles_that_cannot_be_guessed_are_asked_for() -> None:
    frame = survey(300).drop(columns=["person_id"]).rename(columns={"high_income": "rich"})
    with pytest.raises(DataError, match=r"which column is the target.*--target"):
        propose(frame)
    frame = frame.assign(age=frame["age"] % 3)  # no column unique in every row any more
    frame = frame.drop(columns=["contact", "hours", "interviewed"])
    with pytest.raises(DataError, match=r"no column is unique in every row.*--id"):
        propose(frame, target="rich")
    with pytest.raises(DataError, match="exactly two"):
        propose(survey(300), target="occupation")
    with pytest.raises(DataError, match="--id sex: not unique"):
        propose(survey(300), target="high_income", id_column="sex")


def test_init_dataset_writes_three_files_that_compose_and_validate(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    (tmp_path / "data/external").mkdir(parents=True)
    survey(4_400).to_csv(tmp_path / "data/external/fair.csv", index=False)
    out = run_cli("init-dataset", "data/external/fair.csv", "--target", "high_income", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "tabml params\n" in out.stdout and "dvc repro" in out.stdout
    assert "FLAG contact" in out.stderr and "FLAG bracket_after" in out.stderr
    assert "- dataset: fair" in (tmp_path / "conf/config.yaml").read_text()
    text = (tmp_path / "conf/dataset/fair.yaml").read_text()
    assert "occupation: {kind: categorical, categories: ['1', '2', '3', '4', '5', '6']}" in text
    # a second run does not overwrite the user's edits
    again = run_cli(
        "init-dataset", "data/external/fair.csv", "--target", "high_income", cwd=tmp_path
    )
    assert again.returncode == 2 and "--force" in again.stderr
    composed = run_cli("params", cwd=tmp_path)
    assert composed.returncode == 0, composed.stderr
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    assert params["dataset"]["sources"]["development"] == "fair.csv"
    assert params["monitor"]["chunking"]["rows"] == 733  # the data set's own monitoring option
    assert params["release"]["name"] == "fair" and params["release"]["min_test_rows"] == 528
    assert params["dataset"]["schema"]["pii"] == {"contact": "drop"}


def test_production_files_are_named_like_the_development_file(tmp_path: Path) -> None:
    """--production and --production-labels, given from the project's root as the development
    file is (or by their name in data/external), are named from data/external in params; one
    outside it is refused, naming the fix."""
    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    (tmp_path / "data/external").mkdir(parents=True)
    survey(4_400).to_csv(tmp_path / "data/external/fair.csv", index=False)
    survey(100).to_parquet(tmp_path / "data/external/later.parquet")
    out = run_cli("init-dataset", "data/external/fair.csv", "--target", "high_income",
                  "--production", "data/external/later.parquet",
                  "--production-labels", "later_labels.parquet", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert run_cli("params", cwd=tmp_path).returncode == 0
    sources = yaml.safe_load((tmp_path / "params.yaml").read_text())["dataset"]["sources"]
    assert sources["production"] == "later.parquet"
    assert sources["production_labels"] == "later_labels.parquet"  # may come later
    elsewhere = run_cli("init-dataset", "data/external/fair.csv", "--target", "high_income",
                        "--production", str(tmp_path / "later.parquet"), "--force",
                        cwd=tmp_path)  # fmt: skip
    assert elsewhere.returncode == 2
    assert "ingest reads production files from data/external/" in elsewhere.stderr


def test_config_errors_name_the_file_the_user_edited(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    (tmp_path / "data/external").mkdir(parents=True)
    survey(4_400).to_csv(tmp_path / "data/external/fair.csv", index=False)
    run_cli("init-dataset", "data/external/fair.csv", "--target", "high_income", cwd=tmp_path)
    conf = tmp_path / "conf/dataset/fair.yaml"
    conf.write_text(
        conf.read_text().replace(
            "categories: ['1', '2', '3', '4', '5', '6']",
            "categories: [1, 2, 3, 4, 5, 6], colour: red",
        )
    )
    monitor = tmp_path / "conf/monitor/fair.yaml"
    monitor.write_text(monitor.read_text().replace("rows: 733", "rows: 1"))
    out = run_cli("params", cwd=tmp_path)
    assert out.returncode == 2 and not (tmp_path / "params.yaml").exists()
    lines = [line.strip() for line in out.stderr.splitlines() if line.startswith("  conf/")]
    assert lines == [
        "conf/dataset/fair.yaml: schema.features.occupation.categories: Input should be a valid "
        'string: categories are text, and YAML reads 1 or 2.5 as numbers; quote them (["1", '
        '"2"], not [1, 2]) (6 values)',
        "conf/dataset/fair.yaml: schema.features.occupation.colour: Extra inputs are not "
        "permitted: a misspelt or unknown key; remove it or check its spelling",
        "conf/monitor/fair.yaml: chunking.rows: Input should be greater than or equal to 2",
    ]


def test_identical_redeliveries_do_not_stop_an_id_from_being_one() -> None:
    """The pipeline keeps the first of rows that repeat another exactly (clean), so the id is
    still an id; a repeated id with other values is refused, and says so."""
    frame = survey(600)
    frame = pd.concat([frame, frame.iloc[[3, 300, 500]]], ignore_index=True)
    for given in (None, "person_id"):
        proposal = propose(frame, target="high_income", id_column=given)
        assert proposal.id == "person_id"
        assert any("3 rows repeat another row exactly" in s for s in proposal.roles_stated)
    frame.loc[len(frame) - 1, "age"] += 1  # a re-delivery that changed: not the same record
    with pytest.raises(DataError, match=r"--id person_id: not unique .*1 repeated with other"):
        propose(frame, target="high_income", id_column="person_id")
