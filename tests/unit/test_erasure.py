"""Erasure: the ledger holds keyed hashes only, ingest drops the subjects' rows from every
source, and `tabml forget` rewrites the team's own files without them."""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import pandas as pd
import pytest

from tabml.core.errors import ConfigError, DataError
from tabml.governance import erasure
from tabml.stages import forget, ingest
from tests.conftest import make_frame, write_params

KEY = b"k" * 32


def test_an_entry_is_the_keyed_hash_of_the_id_however_it_was_read() -> None:
    want = hmac.new(KEY, b"17", hashlib.sha256).hexdigest()
    assert {erasure.entry(v, KEY) for v in (17, 17.0, "17")} == {want}
    ids = pd.Series([16, 17, None, 18.0], dtype="object")
    ledger = frozenset({want, erasure.entry(18, KEY)})
    assert erasure.erased(ids, ledger, KEY).tolist() == [False, True, False, True]
    # ids that were pseudonymised already (a dataset whose id is personal) match as they are
    assert erasure.erased(pd.Series([want, "x"]), ledger, KEY).tolist() == [True, False]
    with pytest.raises(DataError, match="TABML_PII_KEY"):
        erasure.erased(ids, ledger, None)


def test_the_ledger_is_sorted_unique_hashes_and_refuses_anything_else(tmp_path: Path) -> None:
    path = tmp_path / "ledger.txt"
    assert erasure.read(path) == frozenset()
    a, b = erasure.entry(1, KEY), erasure.entry(2, KEY)
    assert erasure.append(path, [b, a]) == 2
    assert erasure.append(path, [a]) == 0
    text = path.read_text()
    body = [ln for ln in text.splitlines() if not ln.startswith("#")]
    assert text.startswith("#") and body == sorted([a, b])
    assert "1\n" not in text.replace(a, "").replace(b, "")  # no raw id
    path.write_text(text + "17\n")
    with pytest.raises(DataError, match="not keyed hashes"):
        erasure.read(path)


def test_ingest_drops_the_rows_of_every_subject_in_the_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ext").mkdir()
    frame = make_frame(400)
    frame.to_csv(tmp_path / "ext/dev.csv", index=False)
    params = write_params(tmp_path / "params.yaml")
    ledger = tmp_path / "ledger.txt"
    gone = [int(frame["id"].iloc[3]), int(frame["id"].iloc[250])]
    erasure.append(ledger, [erasure.entry(i, KEY) for i in gone])
    monkeypatch.setenv("TABML_PII_KEY", KEY.decode())
    ingest.run(params, tmp_path / "ext", tmp_path / "raw", ledger_file=ledger)
    raw = pd.read_parquet(tmp_path / "raw/development.parquet")
    assert len(raw) == 398 and not raw["id"].isin(gone).any()
    # without the key the ledger cannot be applied: a clear error, nothing written
    monkeypatch.delenv("TABML_PII_KEY")
    with pytest.raises(ConfigError, match="TABML_PII_KEY"):
        ingest.run(params, tmp_path / "ext", tmp_path / "raw2", ledger_file=ledger)
    assert not (tmp_path / "raw2").exists()


def test_forget_finds_a_subject_by_id_then_by_its_personal_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same email under another id is the same person: both rows go, from the source CSV
    (every other line kept as it was) and from a prediction log that holds pseudonyms."""
    ext, logs = tmp_path / "ext", tmp_path / "logs/date=2026-11-30"
    ext.mkdir()
    logs.mkdir(parents=True)
    frame = make_frame(50)
    frame.loc[40, "email"] = frame.loc[7, "email"]  # one person, two rows
    frame.to_csv(ext / "dev.csv", index=False)
    subject_id, other_id = int(frame["id"].iloc[7]), int(frame["id"].iloc[40])
    pseudonym = erasure.entry(frame.loc[7, "email"], KEY)
    log = frame[["id"]].assign(email=[erasure.entry(e, KEY) for e in frame["email"]], score=0.5)
    log.to_parquet(logs / "predictions-1.parquet")
    params = write_params(tmp_path / "params.yaml")
    original = (ext / "dev.csv").read_text().splitlines()
    monkeypatch.setenv("TABML_PII_KEY", KEY.decode())
    monkeypatch.chdir(tmp_path)
    out = forget.run(
        tmp_path, params, [str(subject_id)], tmp_path / "ledger.txt", ext, tmp_path / "logs",
        tmp_path / "labels", rebuild=False, purge=False, remote=None,
    )  # fmt: skip
    assert out.removed == {str(ext / "dev.csv"): 2, str(logs / "predictions-1.parquet"): 2}
    kept = pd.read_csv(ext / "dev.csv")
    assert not kept["id"].isin([subject_id, other_id]).any() and len(kept) == 48
    # every other line exactly as it was
    assert (ext / "dev.csv").read_text().splitlines() == [
        line for i, line in enumerate(original) if i - 1 not in (7, 40)
    ]
    logged = pd.read_parquet(logs / "predictions-1.parquet")
    assert pseudonym not in set(logged["email"]) and len(logged) == 48
    assert erasure.read(tmp_path / "ledger.txt") == {
        erasure.entry(subject_id, KEY),
        erasure.entry(other_id, KEY),
    }
    assert os.environ["TABML_PII_KEY"] == KEY.decode()
