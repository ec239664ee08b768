"""Erasure finishes whatever order it is run in, whatever the ids look like, and whatever
interrupts it (issue 27, items 1-7 and forget --id ""): each test failed before the fix."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tabml.adapters import dvc_adapter
from tabml.core.errors import ConfigError, DataError
from tabml.governance import erasure
from tabml.stages import forget, ingest
from tests.conftest import make_frame, schema_dict, write_params

KEY = b"k" * 32


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A dataset with a phone column too: subject 18 shares an email with 2600, which shares a
    phone with 2700 (links of three hops)."""
    ext = tmp_path / "ext"
    ext.mkdir()
    frame = make_frame(60).assign(id=lambda f: f["id"] + 2590)
    frame["phone"] = [f"+44 7700 900{i:03d}" for i in range(60)]
    frame.loc[0, "id"] = 18
    frame.loc[10, "email"] = frame.loc[0, "email"]  # id 2600: 18's email
    frame.loc[20, "phone"] = frame.loc[10, "phone"]  # id 2610: 2600's phone
    frame.loc[20, "id"] = 2700
    frame.to_csv(ext / "dev.csv", index=False)
    schema = schema_dict(pii={"email": "pseudonymise", "phone": "pseudonymise"})
    params = write_params(tmp_path / "params.yaml", schema)
    monkeypatch.setenv("TABML_PII_KEY", KEY.decode())
    monkeypatch.chdir(tmp_path)
    return {"root": tmp_path, "ext": ext, "params": params, "ledger": tmp_path / "ledger.txt"}


def _forget(site: dict[str, Path], ids: list[str], **kw: object) -> forget.Outcome:
    options = {"rebuild": False, "purge": False, "remote": None, **kw}
    return forget.run(
        site["root"], site["params"], ids, site["ledger"], site["ext"],
        site["root"] / "logs", site["root"] / "labels", **options,  # type: ignore[arg-type]
    )  # fmt: skip


def test_links_are_followed_to_a_fixed_point_and_every_id_removed_is_ledgered(
    site: dict[str, Path],
) -> None:
    out = _forget(site, ["18"])
    assert out.removed == {str(site["ext"] / "dev.csv"): 3}
    left = pd.read_csv(site["ext"] / "dev.csv")
    assert not left["id"].isin([18, 2600, 2700]).any() and len(left) == 57
    assert erasure.read(site["ledger"]) == {erasure.entry(i, KEY) for i in (18, 2600, 2700)}
    # a re-delivered extract brings none of them back: ingest drops all three
    book = erasure.load(site["ledger"])
    assert len(book.values) == 4  # one shared email, 18's phone, one shared phone, 2700's email
    assert book.key == erasure.fingerprint(KEY) and len(book.objects) == 1


def test_a_later_purge_knows_every_linked_subject_from_the_ledger(site: dict[str, Path]) -> None:
    """The documented two steps: forget, then forget --purge. The second run finds no row (the
    first removed them) and must still know every linked id and value, and the objects."""
    before = (site["ext"] / "dev.csv").read_bytes()
    _forget(site, ["18"])
    seen: dict[str, object] = {}

    def purge(root: Path, subjects: erasure.Subjects, id_column: str, remote: object,
              objects: frozenset[str]) -> dvc_adapter.Purged:  # fmt: skip
        seen.update(subjects=subjects, objects=objects)
        return dvc_adapter.Purged(0, 0, [])

    mp = pytest.MonkeyPatch()
    mp.setattr(dvc_adapter, "purge", purge)
    mp.setattr(dvc_adapter, "check_remote", lambda root, remote: None)
    mp.setattr(dvc_adapter, "repro", lambda root, pull: None)
    try:
        out = _forget(site, ["18"], purge=True)
    finally:
        mp.undo()
    assert sum(out.removed.values()) == 0
    subjects = seen["subjects"]
    assert isinstance(subjects, erasure.Subjects)
    # the old version of the file (what DVC's cache holds) is matched in full, and named
    old = pd.read_csv(__import__("io").BytesIO(before), dtype=str, keep_default_na=False)
    assert subjects.match_frame(old, "id").sum() == 3
    import hashlib

    assert seen["objects"] == {hashlib.md5(before, usedforsecurity=False).hexdigest()}


@pytest.mark.parametrize("odd", ["x" * 64, "ab" * 32])
def test_an_id_of_any_shape_is_keyed_before_it_is_written(site: dict[str, Path], odd: str) -> None:
    _forget(site, [odd])
    text = site["ledger"].read_text()
    assert odd not in text and erasure.entry(odd, KEY) in text
    # later runs and ingest still read the ledger
    _forget(site, ["18"])
    assert erasure.entry(odd, KEY) in erasure.read(site["ledger"])
    with pytest.raises(ValueError, match="not keyed hashes"):
        erasure.append(site["ledger"], ["x" * 64])


@pytest.mark.parametrize("bad", ["", "   ", "a\x00b", "x" * 300])
def test_ids_that_cannot_be_ids_are_refused_before_anything_is_written(
    site: dict[str, Path], bad: str
) -> None:
    with pytest.raises(DataError, match="id"):
        _forget(site, [bad])
    assert not site["ledger"].exists()


def test_an_ids_file_is_decoded_as_the_data_is(site: dict[str, Path]) -> None:
    ids = site["root"] / "ids.txt"
    ids.write_bytes("\ufeff18\n# a comment\n999999\n".encode())
    assert forget.read_ids(ids) == ["18", "999999"]
    out = _forget(site, forget.read_ids(ids))
    assert sum(out.removed.values()) == 3 and out.unmatched == ["999999"]
    ids.write_bytes(b"19\nJos\xe9\n")
    with pytest.raises(DataError, match=r"line 2: byte 0xe9 is not UTF-8"):
        forget.read_ids(ids)


def test_the_cli_names_ids_that_matched_nothing(site: dict[str, Path]) -> None:
    from typer.testing import CliRunner

    from tabml.cli import app

    result = CliRunner().invoke(
        app, ["forget", "--id", "18", "--id", "424242", "--no-rebuild", "--ledger",
              str(site["ledger"]), "--sources-dir", str(site["ext"]), "--params",
              str(site["params"])],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 id(s) matched no row" in result.output and "'424242'" in result.output


def test_a_run_killed_after_rewriting_is_finished_by_the_next(
    site: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed between the rewrite and `dvc add`: the rerun finds no row (they are gone) but
    must still add the tracked files, rebuild, and say that it finished the job."""
    logs = site["root"] / "logs/date=2026-11-30"
    logs.mkdir(parents=True)
    pd.DataFrame({"id": [18, 5], "score": [0.1, 0.2]}).to_parquet(logs / "p.parquet")
    (site["root"] / "logs.dvc").write_text("outs:\n- path: logs\n")
    added: list[Path] = []

    def crash(path: Path) -> None:
        raise KeyboardInterrupt  # what a kill leaves: the files rewritten, nothing added

    monkeypatch.setattr(dvc_adapter, "add", crash)
    with pytest.raises(KeyboardInterrupt):
        _forget(site, ["18"])
    assert (site["root"] / "ledger.txt.pending").is_file()
    assert 18 not in set(pd.read_parquet(logs / "p.parquet")["id"])
    monkeypatch.setattr(dvc_adapter, "add", added.append)
    rebuilt: list[Path] = []
    monkeypatch.setattr(dvc_adapter, "repro", lambda root, pull: rebuilt.append(root))
    out = _forget(site, [], rebuild=True)
    assert out.resumed and added == [(site["root"] / "logs").resolve()] and rebuilt
    assert not (site["root"] / "ledger.txt.pending").exists()


def test_another_key_is_refused_where_it_would_let_the_erased_back(
    site: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _forget(site, ["18"])
    monkeypatch.setenv("TABML_PII_KEY", "z" * 32)
    with pytest.raises(ConfigError, match="another TABML_PII_KEY"):
        ingest.run(site["params"], site["ext"], site["root"] / "raw", ledger_file=site["ledger"])
    with pytest.raises(ConfigError, match="another TABML_PII_KEY"):
        _forget(site, ["19"])
    assert not (site["root"] / "raw").exists()


def test_the_no_key_message_says_why_and_keys_are_32_bytes(
    site: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _forget(site, ["18"])
    plain = write_params(site["root"] / "plain.yaml", schema_dict(pii={}))
    monkeypatch.delenv("TABML_PII_KEY")
    with pytest.raises(ConfigError) as err:
        ingest.run(plain, site["ext"], site["root"] / "raw", ledger_file=site["ledger"])
    assert "erasure ledger" in str(err.value)
    assert "pseudonymises personal data" not in str(err.value)
    monkeypatch.setenv("TABML_PII_KEY", "k" * 16)
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        _forget(site, ["19"])


def test_a_purge_that_cannot_reach_the_remote_changes_nothing(
    site: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = site["root"]
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    dvc = str(Path(__import__("sys").executable).parent / "dvc")
    subprocess.run([dvc, "init", "-q"], cwd=root, check=True)
    subprocess.run(
        [dvc, "remote", "add", "-d", "storage", "s3://tabml-nowhere/x"], cwd=root, check=True
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(root / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(root / "none"))
    before = (site["ext"] / "dev.csv").read_bytes()
    with pytest.raises(ConfigError, match=r"'storage' cannot be read.*nothing was changed"):
        _forget(site, ["18"], purge=True)
    assert (site["ext"] / "dev.csv").read_bytes() == before
    assert not site["ledger"].exists() and not (root / "ledger.txt.pending").exists()
