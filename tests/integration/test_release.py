"""Releases end to end, in a temporary clone of the recorded run with real GTO tags."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tabml.governance.release import write_tarball
from tests.conftest import BIN, git, run_cli, run_dvc, tool_env

TAG = "tabml-model@v1.0.0"
TARBALL = "tabml-model-v1.0.0.tar.gz"


@pytest.fixture(scope="module")
def repo(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone with the run recorded (dvc.lock and reports committed), its outputs checked out
    from the project's cache, and the release v1.0.0 registered on HEAD."""
    repo = tmp_path_factory.mktemp("release") / "repo"
    git(repo.parent, "clone", "-q", str(project), str(repo))
    shutil.copy2(project / "dvc.lock", repo / "dvc.lock")
    shutil.copytree(project / "reports", repo / "reports", dirs_exist_ok=True)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", "record the run")
    run_dvc("cache", "dir", "--local", str(project / ".dvc/cache"), cwd=repo)
    run_dvc("checkout", "-q", cwd=repo)
    proc = run_cli("release", "register", "--version", "v1.0.0", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    return repo


def test_register_tags_head_with_a_gto_registration(repo: Path) -> None:
    assert git(repo, "tag", "--list").split() == [TAG]
    assert git(repo, "rev-parse", f"{TAG}^{{commit}}") == git(repo, "rev-parse", "HEAD")
    proc = subprocess.run(
        [str(BIN / "gto"), "check-ref", TAG, "--json"],
        cwd=repo,
        env=tool_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert "tabml-model" in proc.stdout and "v1.0.0" in proc.stdout


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("v1.0.0", "not greater than the latest release v1.0.0"),
        ("v0.9.9", "not greater"),
        ("1.1.0", "not semantic versioning"),
    ],
)
def test_register_refuses_a_version_not_above_the_latest(
    repo: Path, version: str, message: str
) -> None:
    proc = run_cli("release", "register", "--version", version, cwd=repo)
    assert proc.returncode == 2 and message in proc.stderr
    assert git(repo, "tag", "--list").split() == [TAG]


def test_register_refuses_a_dirty_workspace(repo: Path) -> None:
    readme = repo / "README.md"
    original = readme.read_text()
    readme.write_text(original + "\nedit\n")
    try:
        proc = run_cli("release", "register", "--version", "v1.1.0", cwd=repo)
    finally:
        readme.write_text(original)
    assert proc.returncode == 2
    assert "uncommitted changes" in proc.stderr and "README.md" in proc.stderr
    assert git(repo, "tag", "--list").split() == [TAG]


def test_register_refuses_a_failing_gate_and_says_which(repo: Path) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["release"]["min_test_roc_auc"] = 0.999
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git(repo, "commit", "-qam", "an impossible gate")
    try:
        proc = run_cli("release", "register", "--version", "v1.1.0", cwd=repo)
        gate = run_cli("gate", cwd=repo)
    finally:
        git(repo, "reset", "-q", "--hard", "HEAD~1")
    assert proc.returncode == 11, proc.stderr
    assert "quality gates failed" in proc.stderr
    # the gate, its key and the file that sets it
    assert (
        "test ROC AUC: 0.9682 against the limit 0.9990 (release.min_test_roc_auc, set in "
        "conf/release/default.yaml)" in proc.stderr
    )
    assert "| test ROC AUC |" in proc.stdout and "❌ FAIL" in proc.stdout
    assert gate.returncode == 11
    # the drop is measured against the release just made
    assert f"{TAG}: " in gate.stdout
    assert git(repo, "tag", "--list").split() == [TAG]


def test_build_is_byte_reproducible_and_complete(repo: Path, tmp_path: Path) -> None:
    first = run_cli("release", "build", "--tag", TAG, "--output-dir", str(tmp_path / "a"), cwd=repo)
    assert first.returncode == 0, first.stderr
    second = run_cli(
        "release", "build", "--tag", TAG, "--output-dir", str(tmp_path / "b"), cwd=repo
    )
    assert second.returncode == 0, second.stderr
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(
        [TARBALL, f"{TARBALL}.sha256", "MODEL_CARD.md", "RELEASE_NOTES.md"]
    )
    assert (tmp_path / "a" / TARBALL).read_bytes() == (tmp_path / "b" / TARBALL).read_bytes()
    subprocess.run(["sha256sum", "-c", f"{TARBALL}.sha256"], cwd=tmp_path / "a", check=True)
    notes = (tmp_path / "a/RELEASE_NOTES.md").read_text()
    assert "### Quality gates" in notes and "✅ pass" in notes and "| test |" in notes


def test_a_release_tarball_verifies_and_scores_like_the_package(repo: Path, tmp_path: Path) -> None:
    proc = run_cli("release", "build", "--tag", TAG, "--output-dir", str(tmp_path), cwd=repo)
    assert proc.returncode == 0, proc.stderr
    tarball = tmp_path / TARBALL
    verified = run_cli("package", "verify", str(tarball), cwd=repo)
    assert verified.returncode == 0 and "OK (checksum and manifest match" in verified.stdout
    test = repo / "data/processed/test.parquet"
    for package, out in ((tarball, "from_tarball.csv"), (repo / "models/package", "from_dir.csv")):
        scored = run_cli(
            "predict",
            "--package",
            str(package),
            "--input",
            str(test),
            "--output",
            str(tmp_path / out),
            cwd=repo,
        )
        assert scored.returncode == 0, scored.stderr
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "from_tarball.csv"), pd.read_csv(tmp_path / "from_dir.csv")
    )
    assert not list(Path("/tmp").glob("tabml-package-*/MANIFEST.sha256"))


@pytest.mark.parametrize(
    ("tag", "message"),
    [
        ("tabml-model-v1.0.0", "is malformed"),
        ("other@v1.0.0", "names the artefact 'other'"),
        ("tabml-model@v1.0", "is not semantic versioning"),
        ("tabml-model@v9.9.9", "no tag tabml-model@v9.9.9"),
    ],
)
def test_build_refuses_bad_tags(repo: Path, tmp_path: Path, tag: str, message: str) -> None:
    proc = run_cli("release", "build", "--tag", tag, "--output-dir", str(tmp_path), cwd=repo)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not list(tmp_path.iterdir())


def test_build_refuses_a_workspace_not_at_the_tag(repo: Path, tmp_path: Path) -> None:
    git(repo, "commit", "-q", "--allow-empty", "-m", "later work")
    try:
        proc = run_cli("release", "build", "--tag", TAG, "--output-dir", str(tmp_path), cwd=repo)
    finally:
        git(repo, "reset", "-q", "--hard", "HEAD~1")
    assert proc.returncode == 2 and f"not at {TAG}" in proc.stderr
    assert not list(tmp_path.iterdir())


def _rebuilt(repo: Path, tmp_path: Path, edit: str) -> Path:
    """The v1.0.0 tarball with metadata.json edited, re-tarred with a matching checksum."""
    from tabml.learning.package import sha256

    folder = tmp_path / "pkg"
    shutil.copytree(repo / "models/package", folder)
    meta = json.loads((folder / "metadata.json").read_text())
    meta["threshold"] = edit
    (folder / "metadata.json").write_text(json.dumps(meta))
    tarball = tmp_path / TARBALL
    write_tarball(folder, tarball, "tabml-model-v1.0.0", 0)
    tarball.with_name(f"{TARBALL}.sha256").write_text(f"{sha256(tarball)}  {TARBALL}\n")
    return tarball


def test_verify_and_predict_refuse_a_changed_tarball(repo: Path, tmp_path: Path) -> None:
    built = run_cli("release", "build", "--tag", TAG, "--output-dir", str(tmp_path / "d"), cwd=repo)
    assert built.returncode == 0, built.stderr
    corrupt = tmp_path / "d" / TARBALL
    data = bytearray(corrupt.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    proc = run_cli("package", "verify", str(corrupt), cwd=repo)
    assert proc.returncode == 4 and "checksum mismatch" in proc.stderr
    proc = run_cli(
        "predict", "--package", str(corrupt), "--input", "x.csv", "--output", "y.csv", cwd=repo
    )
    assert proc.returncode == 4 and "checksum mismatch" in proc.stderr

    # a consistent checksum over changed contents: the manifest catches it
    edited = _rebuilt(repo, tmp_path / "e", "0.01")
    proc = run_cli("package", "verify", str(edited), cwd=repo)
    assert proc.returncode == 4
    assert "checksum mismatch (changed or truncated): metadata.json" in proc.stderr


def test_a_tarball_reaching_outside_its_folder_is_refused(repo: Path, tmp_path: Path) -> None:
    evil = tmp_path / TARBALL
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../outside.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    proc = run_cli("package", "verify", "--no-checksum", str(evil), cwd=repo)
    assert proc.returncode == 4 and "not a readable release tarball" in proc.stderr
    assert not (tmp_path.parent / "outside.txt").exists()
    proc = run_cli("package", "verify", str(evil), cwd=repo)
    assert proc.returncode == 4 and f"no {TARBALL}.sha256 beside it" in proc.stderr


def test_promotion_is_a_gto_stage_tag_that_releases_ignore(repo: Path) -> None:
    subprocess.run(
        [str(BIN / "gto"), "assign", "tabml-model", "--version", "v1.0.0", "--stage", "prod"],
        cwd=repo,
        env=tool_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert "tabml-model#prod#1" in git(repo, "tag", "--list").split()
    shown = subprocess.run(
        [str(BIN / "gto"), "show", "tabml-model", "--json"],
        cwd=repo,
        env=tool_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "prod" in shown and "v1.0.0" in shown
    # the next release is still measured against v1.0.0, the highest version
    proc = run_cli("release", "register", "--version", "v1.0.0", cwd=repo)
    assert proc.returncode == 2 and "latest release v1.0.0" in proc.stderr


def test_the_gate_compares_with_the_release_in_prod_on_the_same_rows(
    repo: Path, project: Path
) -> None:
    """After promotion, `tabml gate` scores the prod release's package (resolved through GTO,
    read through DVC) and this run's on this run's test split."""
    if "tabml-model#prod#1" not in git(repo, "tag", "--list").split():
        subprocess.run(
            [str(BIN / "gto"), "assign", "tabml-model", "--version", "v1.0.0", "--stage", "prod"],
            cwd=repo, env=tool_env(), capture_output=True, text=True, check=True,
        )  # fmt: skip
    proc = run_cli("gate", cwd=repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    row = next(line for line in proc.stdout.splitlines() if "against prod, same rows" in line)
    # the same model: no drop at all, on the 7,500 test rows
    assert "| 0.0000 |" in row and "7,500 rows" in row and "pass" in row, row
    # with the prod release's package out of reach, the gate fails and says why
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params["release"]["max_roc_auc_drop_vs_prod"] == 0.01
    run_dvc("cache", "dir", "--local", str(repo / "no-cache"), cwd=repo)
    try:
        blocked = run_cli("gate", cwd=repo)
    finally:
        run_dvc("cache", "dir", "--local", str(project / ".dvc/cache"), cwd=repo)
    assert blocked.returncode == 11, blocked.stdout
    assert "null turns this gate off" in blocked.stdout
