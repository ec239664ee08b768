"""Models round-trip without pickle; packages refuse tampering; predictions survive reloading."""

from __future__ import annotations

import decimal
import json
import pickle
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tabml.core import io
from tabml.core.config import ModelConfig, SchemaConfig, SplitConfig, parse
from tabml.core.errors import PackageError
from tabml.data.clean import clean_development
from tabml.data.split import split
from tabml.learning import package as pkg
from tabml.learning.model import fit, load, save
from tabml.learning.predict import score
from tests.conftest import ROOT, make_frame, schema_dict

SCHEMA = parse(SchemaConfig, schema_dict(pii={}))
BASE_MODELS = {p.stem: yaml.safe_load(p.read_text()) for p in (ROOT / "conf/model").glob("*.yaml")}


def _splits() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    frame = clean_development(make_frame(1500), SCHEMA).clean
    cfg = parse(SplitConfig, {"method": "time", "valid_fraction": 0.2, "test_fraction": 0.2})
    r = split(frame, SCHEMA, cfg, seed=0)
    return r.train, r.valid, r.test


@pytest.mark.parametrize("kind", ["lightgbm", "logreg"])
def test_saved_model_predicts_like_the_fitted_one(kind: str, tmp_path: Path) -> None:
    train, valid, test = _splits()
    cfg = parse(
        ModelConfig,
        {**BASE_MODELS[kind], **({"num_boost_round": 60} if kind == "lightgbm" else {})},
    )
    model, history = fit(train, valid, SCHEMA, cfg, seed=3)
    save(model, tmp_path)
    reloaded = load(tmp_path)
    np.testing.assert_allclose(reloaded.predict(test), model.predict(test), rtol=0, atol=1e-12)
    from tabml.learning.metrics import roc_auc

    assert roc_auc(test["y"].to_numpy(float), model.predict(test)) > 0.7
    assert history.curves["valid"]["auc"]


def test_refit_trains_on_train_and_valid_and_keeps_held_out_valid_scores() -> None:
    train, valid, _ = _splits()
    base = {**BASE_MODELS["lightgbm"], "num_boost_round": 80, "early_stopping_rounds": 10}
    stopped, plain = fit(train, valid, SCHEMA, parse(ModelConfig, {**base, "refit": False}), seed=3)
    refit, history = fit(train, valid, SCHEMA, parse(ModelConfig, {**base, "refit": True}), seed=3)
    # the same early stopping, then a second model on every row of train and valid
    assert history.best_iteration == plain.best_iteration
    assert history.refit_rows == len(train) + len(valid) and plain.refit_rows == 0
    assert refit.booster.num_trees() == history.best_iteration
    # the valid scores kept are the early-stopped model's, not the refit model's own
    assert plain.valid_scores is not None and history.valid_scores is not None
    np.testing.assert_allclose(history.valid_scores, stopped.predict(valid), rtol=0, atol=1e-12)
    np.testing.assert_allclose(plain.valid_scores, stopped.predict(valid), rtol=0, atol=1e-12)
    assert not np.allclose(refit.predict(valid), stopped.predict(valid))
    # preprocessing stays fitted on train only
    assert refit.preprocessor == stopped.preprocessor
    # and the refit is deterministic
    again, _ = fit(train, valid, SCHEMA, parse(ModelConfig, {**base, "refit": True}), seed=3)
    assert again.booster.model_to_string() == refit.booster.model_to_string()


def test_logreg_numpy_scoring_equals_sklearn() -> None:
    from sklearn.linear_model import LogisticRegression

    train, valid, test = _splits()
    cfg = parse(ModelConfig, BASE_MODELS["logreg"])
    model, _ = fit(train, valid, SCHEMA, cfg, seed=0)
    clf = LogisticRegression(C=cfg.C, max_iter=cfg.max_iter, random_state=0)
    clf.fit(model.preprocessor.transform(train, "linear"), train["y"])
    expected = clf.predict_proba(model.preprocessor.transform(test, "linear"))[:, 1]
    np.testing.assert_allclose(model.predict(test), expected, atol=1e-10)


def test_unseen_category_scores_as_missing() -> None:
    train, valid, test = _splits()
    cfg = parse(ModelConfig, {**BASE_MODELS["lightgbm"], "num_boost_round": 30})
    model, _ = fit(train, valid, SCHEMA, cfg, seed=0)
    unseen = test.assign(income="never seen")
    missing = test.assign(income=pd.NA)
    np.testing.assert_allclose(model.predict(unseen), model.predict(missing))


# Python's audit hook sees every global an unpickler looks up (`pickle.find_class`): one hook
# for the session, counting only while a test watches
_UNPICKLED: list[str] = []
_WATCHING: list[bool] = []


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _WATCHING and event == "pickle.find_class":
        _UNPICKLED.append(f"{args[0]}.{args[1]}")


def _unpickled_while(action: Callable[[], object]) -> list[str]:
    if not getattr(_audit, "installed", False):
        sys.addaudithook(_audit)
        _audit.installed = True  # type: ignore[attr-defined]
    _UNPICKLED.clear()
    _WATCHING.append(True)
    try:
        action()
    finally:
        _WATCHING.clear()
    return list(_UNPICKLED)


def test_loading_and_scoring_a_package_never_unpickles(tmp_path: Path) -> None:
    """A package is data (JSON, LightGBM's text format, Parquet), never code: loading it,
    its model and scoring with them runs no unpickler, so a hostile package cannot execute
    anything through pickle."""
    folder = _build_package(tmp_path)
    test = pd.read_parquet(tmp_path / "test.parquet")

    def use() -> None:
        loaded = pkg.load(folder)
        score(loaded, test, "test.parquet")
        load(folder / pkg.MODEL_DIR).predict(test)

    assert _unpickled_while(use) == []
    # the hook does see unpickling: the check above could fail
    seen = _unpickled_while(lambda: pickle.loads(pickle.dumps(decimal.Decimal(1))))
    assert seen == ["decimal.Decimal"]


def _build_package(tmp_path: Path) -> Path:
    train, valid, test = _splits()
    cfg = parse(ModelConfig, {**BASE_MODELS["lightgbm"], "num_boost_round": 40})
    model, _ = fit(train, valid, SCHEMA, cfg, seed=0)
    folder = tmp_path / "package"
    (folder / pkg.MODEL_DIR).mkdir(parents=True)
    save(model, folder / pkg.MODEL_DIR)
    io.write_json(
        folder / pkg.METADATA,
        {"threshold": 0.5, "params": {"dataset": {"schema": SCHEMA.model_dump(mode="json")}}},
    )
    io.write_text(folder / pkg.MANIFEST, pkg.manifest_text(folder))
    test.to_parquet(tmp_path / "test.parquet")
    return folder


def test_package_loads_and_scores_like_the_model(tmp_path: Path) -> None:
    folder = _build_package(tmp_path)
    loaded = pkg.load(folder)
    test = pd.read_parquet(tmp_path / "test.parquet")
    out = score(loaded, test.assign(unknown_column=1), "test.parquet")
    assert list(out.columns) == ["id", "score", "label"]
    np.testing.assert_allclose(out["score"], loaded.model.predict(test))
    assert set(out["label"]) <= {0, 1}


@pytest.mark.parametrize("attack", ["modify", "truncate", "delete", "add", "manifest"])
def test_tampered_package_is_refused(attack: str, tmp_path: Path) -> None:
    folder = _build_package(tmp_path)
    booster = folder / pkg.MODEL_DIR / "model.txt"
    if attack == "modify":
        booster.write_text(booster.read_text().replace("leaf_value=", "leaf_value=9", 1))
    elif attack == "truncate":
        booster.write_bytes(booster.read_bytes()[:100])
    elif attack == "delete":
        booster.unlink()
    elif attack == "add":
        (folder / "evil.py").write_text("print('hi')")
    else:
        (folder / pkg.MANIFEST).write_text("not a manifest\n")
    with pytest.raises(PackageError, match=r"refusing|malformed"):
        pkg.load(folder)


def test_missing_package_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="no such package"):
        pkg.load(tmp_path / "nope")
    shutil.copytree(_build_package(tmp_path), tmp_path / "copy")
    (tmp_path / "copy" / pkg.MANIFEST).unlink()
    with pytest.raises(PackageError, match="unverifiable"):
        pkg.load(tmp_path / "copy")


def test_lightgbm_can_load_without_its_sklearn_wrapper() -> None:
    """train and evaluate skip scikit-learn's import; Boosters and sklearn both still work."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from tabml.learning.model import import_lightgbm_without_sklearn\n"
        "import_lightgbm_without_sklearn()\n"
        "assert 'lightgbm' in sys.modules and 'sklearn' not in sys.modules\n"
        "import numpy as np, lightgbm as lgb\n"
        "X = np.random.default_rng(0).normal(size=(200, 3)); y = (X[:, 0] > 0).astype(float)\n"
        "b = lgb.train({'objective': 'binary', 'verbosity': -1}, lgb.Dataset(X, y), 5)\n"
        "assert b.predict(X).shape == (200,)\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "LogisticRegression().fit(X, y)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"threshold": None}, "threshold"),
        ({"threshold": "high"}, "threshold"),
        ({"threshold": 7}, "threshold"),
        ({"params": {}}, "params.dataset"),
        ({"tabml_version": "99.0.0"}, "newer major version"),
    ],
)
def test_an_older_or_foreign_package_is_refused_with_what_is_wrong(
    tmp_path: Path, change: dict[str, object], why: str
) -> None:
    folder = _build_package(tmp_path)
    meta = json.loads((folder / pkg.METADATA).read_text())
    io.write_json(folder / pkg.METADATA, {**meta, **change})
    io.write_text(folder / pkg.MANIFEST, pkg.manifest_text(folder))  # a consistent package
    with pytest.raises(PackageError, match=why):
        pkg.load(folder)
    del meta["threshold"]
    io.write_json(folder / pkg.METADATA, meta)
    io.write_text(folder / pkg.MANIFEST, pkg.manifest_text(folder))
    with pytest.raises(PackageError, match="threshold: Field required"):
        pkg.load(folder)
