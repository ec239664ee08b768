"""A team's own data, through the README's "Use your own data" steps, with real DVC.

A small loan set the project has never seen: a pseudonymised column (email), a dropped one
(phone), a many-level string (ticket), a development file, a later production batch and its
labels, all `dvc add`-ed under data/external/. The steps are the README's: `dvc add`, a dataset
config, the dataset made the default, `tabml params`, `dvc repro` (following each error's
advice to the letter), `dvc exp run`, `dvc push` to an S3 server on loopback, a fresh clone and
`dvc pull`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import BIN, copy_project, git, tool_env
from tests.integration.conftest import STAGES, ran
from tests.integration.test_remote import S3Server, point_at

KEY = "0123456789abcdef" * 4  # what `openssl rand -hex 32` gives, for the test only
DATASET = """\
name: loans
sources:
  development: loans.csv
  production: loans_new.csv
  production_labels: loans_new_labels.csv
schema:
  id: loan_id
  timestamp: applied_at
  target: {column: defaulted, positive: 1}
  features:
    amount: {kind: numeric, min: 0}
    term_months: {kind: numeric, min: 1, max: 480}
    purpose: {kind: categorical, categories: [car, home, other]}
    has_guarantor: {kind: boolean}
    ticket: {kind: categorical, max_levels: 20, min_frequency: 5}
  ignore: []
  extra_columns: reject
  pii:
    email: pseudonymise
    phone: drop
segments: [purpose]
"""


def loans(n: int, start: int, seed: int, new_tickets: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.uniform(1_000, 60_000, n).round(0)
    term = rng.choice([12, 24, 36, 48, 60], n)
    purpose = rng.choice(["car", "home", "other"], n)
    guarantor = rng.choice([True, False], n)
    # a few frequent tickets and a long tail of one-offs (the tail is new in production)
    frequent = [f"T-{i:03d}" for i in range(10)]
    tail = [f"{'N' if new_tickets else 'T'}-{start + i:06d}" for i in range(n)]
    ticket = np.where(rng.uniform(size=n) < 0.5, rng.choice(frequent, n), tail)
    logit = amount / 30_000 - 1 + np.where(guarantor, -1.0, 0.5) + (term > 36) * 0.5
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-2 * logit))).astype(int)
    ids = np.arange(start, start + n)
    return pd.DataFrame(
        {
            "loan_id": ids,
            "applied_at": pd.date_range("2024-01-01", periods=n, freq="h")
            + pd.Timedelta(hours=start),
            "amount": amount,
            "term_months": term,
            "purpose": purpose,
            "has_guarantor": guarantor,
            "ticket": ticket,
            "email": [f"person{i}@loans.example" for i in ids],
            "phone": [f"+44 7700 {i:06d}" for i in ids],
            "defaulted": y,
        }
    )


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in tool_env().items() if k != "TABML_PII_KEY"}
    return {**out, **extra}


def sh(repo: Path, tool: str, *args: str, check: bool = True, **extra: str) -> str:
    proc = subprocess.run(
        [str(BIN / tool), *args], cwd=repo, env=env(**extra), capture_output=True, text=True
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{tool} {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout + proc.stderr


def failing(repo: Path, *args: str, **extra: str) -> str:
    proc = subprocess.run(
        [str(BIN / "dvc"), *args], cwd=repo, env=env(**extra), capture_output=True, text=True
    )
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The README's steps, run once; each test checks one promise of the result."""
    repo = copy_project(tmp_path_factory.mktemp("own") / "repo")
    ext = repo / "data/external"
    dev = loans(3_000, 0, 1)
    prod = loans(1_200, 3_000, 2, new_tickets=True)
    dev.to_csv(ext / "loans.csv", index=False)
    prod.drop(columns=["defaulted"]).to_csv(ext / "loans_new.csv", index=False)
    prod[["loan_id", "defaulted"]].to_csv(ext / "loans_new_labels.csv", index=False)
    # 1. track the files with DVC, not git
    files = ["loans.csv", "loans_new.csv", "loans_new_labels.csv"]
    sh(repo, "dvc", "add", *[f"data/external/{f}" for f in files])
    git(repo, "add", *[f"data/external/{f}.dvc" for f in files])
    # 2. describe it, and make it the default dataset
    (repo / "conf/dataset/loans.yaml").write_text(DATASET)
    config = repo / "conf/config.yaml"
    config.write_text(config.read_text().replace("- dataset: car_loan", "- dataset: loans"))
    # 3. compose and run
    sh(repo, "tabml", "params")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "loans dataset")
    advice: dict[str, str] = {}
    advice["key"] = failing(repo, "repro")
    advice["chunks"] = failing(repo, "repro", TABML_PII_KEY=KEY)
    # follow the advice to the letter: the value it names, in the file it names, selected
    # by the data set's file as it says
    rows = int(re.search(r"Set `rows: (\d+)` under `chunking:`", advice["chunks"]).group(1))
    assert "defaults: [default, _self_]" in advice["chunks"]
    (repo / "conf/monitor/loans.yaml").write_text(
        f"defaults: [default, _self_]\nchunking:\n  rows: {rows}\n"
    )
    assert "- override /monitor@_global_.monitor: <dataset>" in advice["chunks"]
    dataset = repo / "conf/dataset/loans.yaml"
    dataset.write_text(
        "defaults:\n  - override /monitor@_global_.monitor: loans\n" + dataset.read_text()
    )
    sh(repo, "tabml", "params")
    first = sh(repo, "dvc", "repro", TABML_PII_KEY=KEY)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "run")
    return {"path": repo, "advice": advice, "rows": rows, "first": first, "dev": dev, "prod": prod}


def test_each_error_names_the_fix_and_the_fix_works(repo: dict[str, object]) -> None:
    advice = repo["advice"]
    assert isinstance(advice, dict)
    # fails in the first stage, before anything is trained
    assert (
        "Running stage 'ingest'" in advice["key"] and "Running stage 'clean'" not in advice["key"]
    )
    assert "TABML_PII_KEY is not set" in advice["key"] and "openssl rand" in advice["key"]
    assert "Running stage 'train'" not in advice["chunks"]
    assert "conf/monitor/<dataset>.yaml" in advice["chunks"] and "tabml params" in advice["chunks"]
    assert repo["rows"] == 500  # 3,000 rows / 6 reference chunks
    assert ran(str(repo["first"])) == STAGES


def test_no_output_holds_a_raw_personal_value(repo: dict[str, object]) -> None:
    path, dev, prod = repo["path"], repo["dev"], repo["prod"]
    assert isinstance(path, Path)
    assert isinstance(dev, pd.DataFrame) and isinstance(prod, pd.DataFrame)
    raw = set(dev["email"]) | set(dev["phone"]) | set(prod["email"]) | set(prod["phone"])
    scanned = 0
    for top in ["data/raw", "data/interim", "data/processed", "data/predictions", "models"]:
        for f in sorted((path / top).rglob("*")):
            if f.is_file() and f.suffix == ".parquet":
                table = pd.read_parquet(f)
                assert "phone" not in table.columns, f
                for col in table.columns:
                    values = set(table[col].dropna().astype(str))
                    assert not values & raw, f"{f}: raw personal data in '{col}'"
                scanned += 1
            elif f.is_file():
                text = f.read_bytes().decode("utf-8", errors="replace")
                assert not any(v in text for v in list(raw)[:200]), f
    for f in sorted((path / "reports").rglob("*")):
        if f.is_file():
            text = f.read_bytes().decode("utf-8", errors="replace")
            assert "@loans.example" not in text and "+44 7700" not in text, f
    assert scanned >= 8
    emails = pd.read_parquet(path / "data/raw/development.parquet")["email"]
    assert emails.str.fullmatch(r"[0-9a-f]{64}").all()  # pseudonymised, not dropped


def test_many_level_string_gets_an_other_level_and_no_unseen_alerts(
    repo: dict[str, object],
) -> None:
    path = repo["path"]
    assert isinstance(path, Path)
    model = json.loads((path / "models/package/model/model.json").read_text())
    pre = model["preprocessor"]
    assert pre["other"] == ["ticket"]
    assert pre["vocab"]["ticket"] == [f"T-{i:03d}" for i in range(10)]
    summary = json.loads((path / "reports/monitoring/summary.json").read_text())
    # every production ticket of the long tail is new: still no unseen-value alert for it
    assert all(
        "ticket" not in c["data_quality"]["unseen"]
        or not c["data_quality"]["unseen"]["ticket"]["alert"]
        for c in summary["chunks"]
    )
    assert "ticket" in summary["chunks"][0]["drift"]


def test_checkout_restores_an_added_file_and_a_changed_one_reruns_ingest(
    repo: dict[str, object],
) -> None:
    path = repo["path"]
    assert isinstance(path, Path)
    data = path / "data/external/loans.csv"
    before = data.read_bytes()
    # a new version of the file, `dvc add`-ed: ingest (and so everything after it) is stale
    loans(3_000, 0, 9).to_csv(data, index=False)
    sh(path, "dvc", "add", "data/external/loans.csv")
    status = sh(path, "dvc", "status", "ingest")
    assert "ingest:" in status and "data/external" in status, status
    git(path, "checkout", "--", "data/external/loans.csv.dvc")
    data.unlink()
    assert "loans.csv" in sh(path, "dvc", "status")
    sh(path, "dvc", "checkout")
    assert data.read_bytes() == before


def test_a_monitoring_parameter_change_reaches_package_and_report(
    repo: dict[str, object], tmp_path: Path
) -> None:
    """DVC's run-cache ignores keys named `size`: with `rows` a change is a real rerun."""
    path = repo["path"]
    assert isinstance(path, Path)
    work = tmp_path / "work"
    shutil.copytree(path, work, symlinks=True)
    sh(work, "tabml", "params", "monitor.chunking.rows=400")
    out = sh(work, "dvc", "repro", TABML_PII_KEY=KEY)
    assert {"package", "monitor"} <= set(ran(out)) and "train" not in ran(out), out
    meta = json.loads((work / "models/package/metadata.json").read_text())
    chunking = meta["params"]["monitor"]["chunking"]
    assert (chunking["method"], chunking["rows"]) == ("rows", 400)
    summary = json.loads((work / "reports/monitoring/summary.json").read_text())
    assert summary["chunking"] == {"method": "rows", "rows": 400, "short_chunks": "merge"}
    assert {c["rows"] for c in summary["chunks"]} == {400}


def test_push_then_a_fresh_clone_pulls_the_added_data(
    repo: dict[str, object], server: S3Server, tmp_path: Path
) -> None:
    path = repo["path"]
    assert isinstance(path, Path)
    point_at(path, server, "own")
    out = subprocess.run(
        [str(BIN / "dvc"), "push"],
        cwd=path,
        env={**server.env(), **{"TABML_PII_KEY": KEY}},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(path), str(clone)], check=True)
    point_at(clone, server, "own")
    pulled = subprocess.run(
        [str(BIN / "dvc"), "pull"], cwd=clone, env=server.env(), capture_output=True, text=True
    )
    assert pulled.returncode == 0, pulled.stderr
    for name in ["loans.csv", "loans_new.csv", "loans_new_labels.csv"]:
        assert (clone / "data/external" / name).read_bytes() == (
            path / "data/external" / name
        ).read_bytes()
    assert (clone / "models/package/MANIFEST.sha256").is_file()
    status = subprocess.run(
        [str(BIN / "dvc"), "status"], cwd=clone, env=server.env(), capture_output=True, text=True
    )
    assert "up to date" in status.stdout, status.stdout
    assert os.environ.get("TABML_PII_KEY") != KEY
    assert yaml.safe_load((clone / "params.yaml").read_text())["dataset"]["name"] == "loans"


def test_exp_run_keeps_added_data_and_records_the_experiment(repo: dict[str, object]) -> None:
    """`dvc exp run` on `dvc add`-ed data: the data stays, the experiment is recorded."""
    path = repo["path"]
    assert isinstance(path, Path)
    before = (path / "data/external/loans.csv").read_bytes()
    # a config group switched through Hydra, as `dvc exp run -S model=logreg` does
    sh(path, "dvc", "exp", "run", "-n", "baseline", "-S", "model=logreg", TABML_PII_KEY=KEY)
    assert "name: logreg" in (path / "params.yaml").read_text()
    assert (path / "data/external/loans.csv").read_bytes() == before
    shown = json.loads(
        subprocess.run(
            [str(BIN / "dvc"), "exp", "show", "--json"],
            cwd=path,
            env=env(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    names = [e.get("name") for rev in shown for e in (rev.get("experiments") or [])]
    assert "baseline" in names, names
    assert "roc_auc" in json.dumps(shown)


def _holds(data: bytes, needles: set[str]) -> bool:
    """The test's own reading of a stored object: a table's id column and text columns, or its
    bytes."""
    import io as stdio

    frame = None
    if data[:4] == b"PAR1":
        frame = pd.read_parquet(stdio.BytesIO(data))
    elif data[:7] == b"loan_id":  # a CSV with the id column first, as the test writes it
        frame = pd.read_csv(stdio.BytesIO(data), dtype=str, keep_default_na=False)
    if frame is None:
        return any(n.encode() in data for n in needles if len(n) > 8)
    for col in frame.columns:
        values = set(frame[col].dropna().astype(str))
        if col == "loan_id" and values & {"17", "17.0"}:
            return True
        if values & needles:
            return True
    return False


def test_forget_purge_leaves_no_trace_in_the_cache_or_on_the_remote(
    repo: dict[str, object], server: S3Server
) -> None:
    """Last in this module: it erases a subject from the repository the others share."""
    import hashlib
    import hmac

    path, dev = repo["path"], repo["dev"]
    assert isinstance(path, Path) and isinstance(dev, pd.DataFrame)
    git(path, "reset", "-q", "--hard")  # undo the experiment's workspace
    # 3,000 rows in chunks of 500 are exactly the 6 reference chunks the monitor needs: one row
    # fewer fails ingest's early check (clearly). Smaller chunks, as its message advises
    conf = path / "conf/monitor/loans.yaml"
    conf.write_text(re.sub(r"(?m)^  rows: \d+$", "  rows: 400", conf.read_text()))
    sh(path, "tabml", "params")
    git(path, "commit", "-qam", "chunks of 400 rows")
    aws = {k: v for k, v in server.env().items() if k.startswith("AWS_")}
    point_at(path, server, "own")
    sh(path, "dvc", "checkout", "--force", TABML_PII_KEY=KEY, **aws)
    sh(path, "dvc", "push", TABML_PII_KEY=KEY, **aws)
    row = dev[dev["loan_id"] == 17].iloc[0]
    needles = {row["email"], row["phone"]}
    needles |= {hmac.new(KEY.encode(), v.encode(), hashlib.sha256).hexdigest() for v in needles}
    # the two steps docs/privacy.md shows: the second finds no row (the first removed them),
    # and must still purge every object that held the subject or a row linked to them
    out = sh(path, "tabml", "forget", "--id", "17", TABML_PII_KEY=KEY, **aws)
    assert "1 row(s) removed from 1 file(s)" in out, out
    # a cluster run killed mid-stage left its workers' copy of data/raw in the store
    leftover = "own-cluster/clean-0123456789ab/0-development.parquet"
    server.s3().put_object(  # type: ignore[attr-defined]
        Bucket="tabml-test", Key=leftover, Body=(path / "data/raw/development.parquet").read_bytes()
    )
    cluster = {"TABML_CLUSTER_STORAGE": "s3://tabml-test/own-cluster",
               "AWS_ENDPOINT_URL": server.endpoint}  # fmt: skip
    out = sh(path, "tabml", "forget", "--id", "17", "--purge", TABML_PII_KEY=KEY, **aws, **cluster)
    assert "0 row(s) removed" in out, out
    assert "removed 1 folder(s) of copies a killed cluster run had left" in out, out
    assert re.search(r"purged [1-9]\d* object\(s\) from the local cache and [1-9]", out), out
    assert re.search(r"[1-9]\d* commit\(s\) can no longer be checked out whole", out), out
    # nothing in the local cache, nothing on the remote
    cache = [p for p in (path / ".dvc/cache/files").rglob("*") if p.is_file()]
    assert cache and not [p for p in cache if _holds(p.read_bytes(), needles)]
    s3 = server.s3()
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="tabml-test", Prefix="own/")  # type: ignore[attr-defined]
        for o in page.get("Contents", [])
    ]
    held = [
        k for k in keys
        if _holds(s3.get_object(Bucket="tabml-test", Key=k)["Body"].read(), needles)  # type: ignore[attr-defined]
    ]  # fmt: skip
    assert keys and not held, held
    assert (
        not server.s3()
        .list_objects_v2(Bucket="tabml-test", Prefix="own-cluster/")
        .get(  # type: ignore[attr-defined]
            "Contents"
        )
    )
    # the ledger holds the keyed hash, not the id; the pipeline reproduces without the subject
    ledger = (path / "data/erasure/ledger.txt").read_text()
    entry = hmac.new(KEY.encode(), b"17", hashlib.sha256).hexdigest()
    assert entry in ledger and "\n17\n" not in ledger
    status = sh(path, "dvc", "status", TABML_PII_KEY=KEY)
    assert "up to date" in status, status
    assert 17 not in set(pd.read_parquet(path / "data/raw/development.parquet")["loan_id"])
