"""`tabml tune`: a seeded study that gives the same best trial twice, reads only train and
valid, prints its progress, and proposes a model option that composes (tabml.learning.tune)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tabml.core.config import SchemaConfig, TuneConfig, parse
from tabml.data.clean import clean_development
from tests.conftest import ROOT, make_frame, run_cli, schema_dict, write_params

SCHEMA = parse(SchemaConfig, {**schema_dict(), "pii": {}})
TUNE = {
    "objective": "valid",
    "trials": 6,
    "prune_after_trials": 2,
    "space": {
        "learning_rate": {"low": 0.05, "high": 0.3, "log": True},
        "num_leaves": {"low": 4, "high": 32, "log": True},
    },
}


def _splits(tmp: Path) -> Path:
    frame = clean_development(make_frame(900).drop(columns=["email"]), SCHEMA).clean
    folder = tmp / "processed"
    folder.mkdir()
    frame.iloc[:600].to_parquet(folder / "train.parquet")
    frame.iloc[600:750].to_parquet(folder / "valid.parquet")
    # tuning must never read these: not even valid Parquet any more
    (folder / "test.parquet").write_bytes(b"not parquet: tuning must not read the test split")
    (tmp / "production_labels.parquet").write_bytes(b"nor the production labels")
    return folder


def test_the_same_study_gives_the_same_best_trial_and_never_reads_test(tmp_path: Path) -> None:
    folder = _splits(tmp_path)
    params = write_params(tmp_path / "params.yaml", {**schema_dict(), "pii": {}}, tune=TUNE)
    (tmp_path / "conf/model").mkdir(parents=True)
    runs = []
    for k in range(2):
        out = run_cli(
            "tune", "--params", str(params), "--input-dir", str(folder),
            "--output-dir", str(tmp_path / f"tuning{k}"), "--config-dir", str(tmp_path / "conf"),
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        runs.append(out)
    first, second = (tmp_path / "tuning0/trials.csv").read_text(), (tmp_path / "tuning1/trials.csv")
    strip = [
        ",".join(r.split(",")[:4] + r.split(",")[5:]) for r in first.splitlines()
    ]  # no seconds
    again = [",".join(r.split(",")[:4] + r.split(",")[5:]) for r in second.read_text().splitlines()]
    assert strip == again and len(strip) == 1 + TUNE["trials"]
    summary = yaml.safe_load((tmp_path / "tuning0/summary.json").read_text())
    assert summary["trials"] == 6 and 0.5 < summary["best"]["roc_auc"] <= 1
    # progress: one line per trial, with the best so far and the time left
    lines = [line for line in runs[0].stderr.splitlines() if line.startswith("tune: trial ")]
    assert len(lines) == 6 and "best" in lines[-1] and "left" in lines[-1]
    for chart in ("history.png", "importance.png"):
        assert (tmp_path / "tuning0" / chart).stat().st_size > 1000
    # the proposal: the base option with the best settings
    proposed = yaml.safe_load((tmp_path / "conf/model/mini_tuned.yaml").read_text())
    assert proposed["defaults"] == ["lightgbm", "_self_"]
    best = summary["best"]["params"]["learning_rate"]
    assert proposed["learning_rate"] == pytest.approx(best, rel=1e-9)


def test_the_proposal_composes_as_a_model_option(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    (tmp_path / "conf/model/car_loan_tuned.yaml").write_text(
        "defaults:\n  - lightgbm\n  - _self_\nlearning_rate: 0.0731\nnum_leaves: 57\n"
    )
    out = run_cli("params", "model=car_loan_tuned", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    model = yaml.safe_load((tmp_path / "params.yaml").read_text())["model"]
    assert (model["name"], model["learning_rate"], model["num_leaves"]) == ("lightgbm", 0.0731, 57)


def test_time_ordered_folds_validate_on_later_rows() -> None:
    from tabml.learning.tune import folds

    frame = clean_development(make_frame(500).drop(columns=["email"]), SCHEMA).clean
    cfg = parse(TuneConfig, {**TUNE, "objective": "cv", "cv_folds": 4})
    pairs = folds(frame.iloc[:400], frame.iloc[400:], cfg, SCHEMA)
    assert len(pairs) == 4
    for fit_rows, eval_rows in pairs:
        assert fit_rows["ts"].max() < eval_rows["ts"].min()  # no validation on the past
    assert len(pairs[-1][0]) + len(pairs[-1][1]) == 500
