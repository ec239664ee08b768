"""Release rules: tags, versions, gates and byte-reproducible tarballs."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from tabml.core.config import ReleaseConfig, parse
from tabml.governance import release as rel

CFG = parse(
    ReleaseConfig,
    {
        "min_test_roc_auc": 0.9,
        "max_roc_auc_drop": 0.005,
        "max_monitoring_alerts": 10,
        "min_test_rows": 1000,
        "max_demographic_parity_difference": None,
        "max_equalized_odds_difference": None,
    },
)
GOOD = {"test": {"roc_auc": 0.95, "rows": 5000}}


@pytest.mark.parametrize(
    ("tag", "message"),
    [
        ("v1.0.0", "is malformed"),
        ("tabml-model-v1.0.0", "is malformed"),
        ("other-model@v1.0.0", "names the artefact 'other-model', but dvc.yaml declares"),
        ("tabml-model@1.0.0", "is not semantic versioning"),
        ("tabml-model@v1.0", "is not semantic versioning"),
        ("tabml-model@vX.Y.Z", "is not semantic versioning"),
        ("tabml-model#prod#1", "is malformed"),
    ],
)
def test_bad_tags_are_refused_with_the_reason(tag: str, message: str) -> None:
    with pytest.raises(rel.ReleaseError, match=message):
        rel.parse_tag(tag, "tabml-model")


def test_a_registration_tag_gives_its_version() -> None:
    assert rel.parse_tag("tabml-model@v1.2.3", "tabml-model") == "v1.2.3"
    assert rel.parse_tag("tabml-model@v2.0.0-rc.1", "tabml-model") == "v2.0.0-rc.1"


def test_a_version_must_be_semver_and_above_the_latest() -> None:
    rel.check_version("v1.0.0", None)
    rel.check_version("v1.10.0", "v1.9.0")  # numeric, not string, order
    with pytest.raises(rel.ReleaseError, match=r"not greater than the latest release v1\.2\.0"):
        rel.check_version("v1.2.0", "v1.2.0")
    with pytest.raises(rel.ReleaseError, match="not greater"):
        rel.check_version("v1.2.0-rc.1", "v1.2.0")
    with pytest.raises(rel.ReleaseError, match="not semantic versioning"):
        rel.check_version("1.3", "v1.2.0")


def test_gates_pass_and_fail_on_their_limits() -> None:
    ok = rel.gates(CFG, GOOD, {"alerts": 10}, None)
    assert all(g.passed for g in ok)
    assert "no previous release" in rel.gate_table(ok)
    bad = rel.gates(
        CFG,
        {"test": {"roc_auc": 0.89, "rows": 999}},
        {"alerts": 11},
        {"test": {"roc_auc": 0.9}},
        "tabml-model@v1.0.0",
    )
    assert [g.name for g in bad if not g.passed] == [
        "test ROC AUC",
        "test rows",
        "ROC AUC drop against the previous release",
        "monitoring alerts",
    ]
    table = rel.gate_table(bad)
    assert table.count("❌ FAIL") == 4
    assert "| ROC AUC drop against the previous release | 0.0100 | <= 0.0050 |" in table


def test_missing_reports_fail_their_gates_with_a_reason() -> None:
    results = rel.gates(CFG, {}, None, None)
    # with nothing to compare with (no earlier release, none in prod) those two gates pass
    comparisons = {
        "ROC AUC drop against the previous release",
        "ROC AUC drop against prod, same rows",
    }
    assert not any(g.passed for g in results if g.name not in comparisons)
    assert "no monitoring report" in rel.gate_table(results)


def _package(folder: Path) -> Path:
    (folder / "model").mkdir(parents=True)
    (folder / "model/model.txt").write_text("trees")
    (folder / "metadata.json").write_text("{}")
    (folder / "MANIFEST.sha256").write_text("x")
    return folder


def test_tarballs_are_byte_identical_whatever_the_file_times(tmp_path: Path) -> None:
    import os

    one = _package(tmp_path / "a")
    rel.write_tarball(one, tmp_path / "1.tar.gz", "tabml-model-v1.0.0", mtime=1_700_000_000)
    for p in one.rglob("*"):
        os.utime(p, (1, 1))
    (one / "metadata.json").chmod(0o600)
    rel.write_tarball(one, tmp_path / "2.tar.gz", "tabml-model-v1.0.0", mtime=1_700_000_000)
    assert (tmp_path / "1.tar.gz").read_bytes() == (tmp_path / "2.tar.gz").read_bytes()
    with tarfile.open(tmp_path / "1.tar.gz") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert names[0] == "tabml-model-v1.0.0"
    assert "tabml-model-v1.0.0/model/model.txt" in names
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {
        (0, 0, "", "", 1_700_000_000)
    }


@pytest.mark.parametrize("filters", [True, False], ids=["python-filter", "before-3.11.4"])
def test_tarballs_extract_safely_with_or_without_python_extraction_filters(
    filters: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from tabml.learning.package import extract_safely

    if not filters:  # Python 3.11.0-3.11.3 (e.g. Debian 12's 3.11.2) have no filters
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    elif not hasattr(tarfile, "data_filter"):
        pytest.skip("this Python has no extraction filters")

    def tarball(name: str, *members: tarfile.TarInfo) -> Path:
        path = tmp_path / name
        with tarfile.open(path, "w:gz") as tar:
            for m in members:
                tar.addfile(m, io.BytesIO(b"abc") if m.isfile() else None)
        return path

    def file(name: str, mode: int = 0o644) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size, info.mode = 3, mode
        return info

    folder = tarfile.TarInfo("pkg")
    folder.type, folder.mode = tarfile.DIRTYPE, 0o755
    good = tarball("good.tar.gz", folder, file("pkg/model.txt", mode=0o6777))
    with tarfile.open(good) as tar:
        extract_safely(tar, str(tmp_path / "out"))
    extracted = tmp_path / "out/pkg/model.txt"
    assert extracted.read_bytes() == b"abc"
    assert extracted.stat().st_mode & 0o7022 == 0  # no setuid/setgid, no group/other write

    link = tarfile.TarInfo("pkg/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    for name, members in [
        ("up.tar.gz", [file("../outside.txt")]),
        ("link.tar.gz", [folder, link]),
    ]:
        with tarfile.open(tarball(name, *members)) as tar, pytest.raises(tarfile.TarError):
            extract_safely(tar, str(tmp_path / name.replace(".tar.gz", "")))
    assert not (tmp_path / "outside.txt").exists()


def test_a_tarball_that_would_unpack_past_the_cap_is_refused_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small archive of zeros declaring a huge member: refused from the headers, before a
    byte is written (it wrote 8 GiB into /tmp before)."""
    import io

    from tabml.learning import package as pkg

    path = tmp_path / "bomb.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        folder = tarfile.TarInfo("pkg")
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(folder)
        big = tarfile.TarInfo("pkg/model.txt")
        big.size = 50 * 1024**2  # 50 MiB of zeros: about 50 KiB compressed
        tar.addfile(big, io.BytesIO(bytes(big.size)))
    assert path.stat().st_size < 1024**2
    out = tmp_path / "out"
    out.mkdir()
    with tarfile.open(path) as tar, pytest.raises(tarfile.TarError, match="over the limit"):
        pkg.extract_safely(tar, str(out), limit=10 * 1024**2)
    assert list(out.rglob("*")) == []
    # through the commands: a clear package error
    monkeypatch.setenv("TABML_MAX_PACKAGE_BYTES", str(10 * 1024**2))
    with pytest.raises(pkg.PackageError, match="over the limit"), pkg.unpacked(path):
        pass


def test_metrics_that_are_not_numbers_or_not_an_object_are_named(tmp_path: Path) -> None:
    results = rel.gates(CFG, {"test": {"roc_auc": "0.95", "rows": 5000}}, {"alerts": "x"}, None,
                        sources=("given/metrics.json", "given/monitoring.json"))  # fmt: skip
    table = rel.gate_table(results)
    assert "test.roc_auc in given/metrics.json is '0.95', not a number" in table
    assert "alerts in given/monitoring.json is 'x', not a number" in table
    from tabml.core.errors import DataError
    from tabml.stages.release import _json_object

    listed = tmp_path / "metrics.json"
    listed.write_text("[1, 2]")
    with pytest.raises(DataError, match=f"{listed}: a JSON list, not a metrics file"):
        _json_object(listed)


def test_a_tag_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(rel.ReleaseError, match="malformed"):
        rel.parse_tag("tabml-model@v1.0.0\n", "tabml-model")
