"""Model packages: the model, its input schema, metadata, a model card and a SHA-256 manifest.

`load` verifies the manifest before it reads anything else, and refuses a package in which any
file is missing, added, truncated or changed. `unpacked` lets every command take a release
tarball (`tabml-model-v1.0.0.tar.gz`) wherever it takes a package folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabml.core import io
from tabml.core.catalog import Package as Files
from tabml.core.config import SchemaConfig, parse
from tabml.core.errors import PackageError
from tabml.learning.model import Model
from tabml.learning.model import load as load_model

# a package's files (the catalog's names); the reference holds the development features,
# target and out-of-fold scores
MANIFEST = Files.MANIFEST
SCHEMA = Files.SCHEMA
METADATA = Files.METADATA
CARD = Files.CARD
MODEL_DIR = Files.MODEL_DIR
REFERENCE = Files.REFERENCE


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest_text(folder: Path) -> str:
    """`sha256sum`-compatible lines for every file in folder, sorted by path."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)
    return "".join(f"{sha256(p)}  {p.relative_to(folder).as_posix()}\n" for p in files)


def verify(folder: Path) -> None:
    """Raise PackageError unless every file matches the manifest and none is unlisted."""
    manifest = folder / MANIFEST
    if not folder.is_dir():
        raise PackageError(f"{folder}: no such package folder")
    if not manifest.is_file():
        raise PackageError(f"{folder}: no {MANIFEST}; refusing to load an unverifiable package")
    listed: dict[str, str] = {}
    for n, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or not name or ".." in Path(name).parts:
            raise PackageError(f"{manifest}: line {n} is malformed: {line!r}")
        listed[name] = digest
    present = {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.name != MANIFEST
    }
    problems = [f"missing: {n}" for n in sorted(set(listed) - present)]
    problems += [f"not in the manifest: {n}" for n in sorted(present - set(listed))]
    problems += [
        f"checksum mismatch (changed or truncated): {n}"
        for n in sorted(set(listed) & present)
        if sha256(folder / n) != listed[n]
    ]
    if problems:
        raise PackageError(
            f"{folder}: package failed verification, refusing to load it:\n  - "
            + "\n  - ".join(problems)
            + "\nRebuild it with 'dvc repro package' or fetch it again."
        )


TARBALL_SUFFIXES = (".tar.gz", ".tgz")


def is_tarball(path: Path) -> bool:
    return path.name.endswith(TARBALL_SUFFIXES)


def checksum_file(tarball: Path) -> Path:
    return tarball.with_name(tarball.name + ".sha256")


def verify_checksum(tarball: Path, required: bool) -> bool:
    """Check `<tarball>.sha256` (sha256sum format); False when absent and not required."""
    listed = checksum_file(tarball)
    if not listed.is_file():
        if required:
            raise PackageError(
                f"{tarball}: no {listed.name} beside it; download it with the release "
                "(or pass --no-checksum to check the manifest only)"
            )
        return False
    expected = listed.read_text(encoding="utf-8").split()
    if not expected or len(expected[0]) != 64:
        raise PackageError(f"{listed}: not a sha256sum line ('<64 hex digits>  <file>')")
    actual = sha256(tarball)
    if actual != expected[0].lower():
        raise PackageError(
            f"{tarball}: checksum mismatch: {listed.name} says {expected[0][:16]}..., the file "
            f"is {actual[:16]}...; it is corrupt or was changed. Download it again."
        )
    return True


@contextlib.contextmanager
def unpacked(path: Path, checksum_required: bool = False) -> Iterator[Path]:
    """A package folder: `path` itself, or a release tarball unpacked into a temporary folder.

    A tarball is checked against the `.sha256` beside it (when there is one, or always with
    `checksum_required`), then extracted by `extract_safely` (Python's `data` filter), which
    refuses `..`, links pointing outside and device files. The folder is removed afterwards.
    """
    import tarfile

    if not is_tarball(path):
        yield path
        return
    if not path.is_file():
        raise PackageError(f"{path}: no such release tarball")
    verify_checksum(path, checksum_required)
    with tempfile.TemporaryDirectory(prefix="tabml-package-") as tmp:
        try:
            with tarfile.open(path, "r:gz") as tar:
                extract_safely(tar, tmp)
        except (tarfile.TarError, OSError, EOFError) as err:
            raise PackageError(f"{path}: not a readable release tarball: {err}") from None
        tops = list(Path(tmp).iterdir())
        if len(tops) != 1 or not tops[0].is_dir():
            raise PackageError(
                f"{path}: a release tarball holds one top-level folder, this one holds "
                f"{sorted(p.name for p in tops)}"
            )
        yield tops[0]


# a release tarball unpacks to at most this much (a package is tens of MB: the model and a
# reference of at most monitor.reference.max_rows rows); TABML_MAX_PACKAGE_BYTES raises it
MAX_UNPACKED_BYTES = 2 * 1024**3
MAX_MEMBERS = 10_000


def _unpack_limit() -> int:
    raw = os.environ.get("TABML_MAX_PACKAGE_BYTES", "")
    return int(raw) if raw.isdigit() else MAX_UNPACKED_BYTES


def extract_safely(tar: Any, dest: str, limit: int | None = None) -> None:
    """Extract a tarball with Python's `data` filter, or its checks where Python lacks it.

    Before anything is written, the members' declared sizes are added up and a tarball that
    would unpack to more than `limit` bytes (default MAX_UNPACKED_BYTES) or hold more than
    MAX_MEMBERS entries is refused: a small archive of zeros cannot fill the disk. While
    extracting, the running total is checked again.

    Extraction filters arrived in Python 3.11.4; on 3.11.0-3.11.3 (Debian 12's python3 is
    3.11.2) the same refusals are made here: only regular files and folders, no absolute
    name, nothing that resolves outside `dest`; modes lose setuid/setgid/sticky and
    group/other write, and owners are not restored.
    """
    import tarfile

    limit = _unpack_limit() if limit is None else limit
    members = tar.getmembers()
    declared = sum(m.size for m in members if m.isfile())
    if len(members) > MAX_MEMBERS or declared > limit:
        raise tarfile.TarError(
            f"it would unpack to {declared:,} bytes in {len(members):,} entries, over the limit "
            f"of {limit:,} bytes and {MAX_MEMBERS:,} entries for a package (set "
            "TABML_MAX_PACKAGE_BYTES to raise it, if this package is really that large)"
        )
    root = Path(dest).resolve()
    if not hasattr(tarfile, "data_filter"):
        for m in members:
            if Path(m.name).is_absolute() or not (root / m.name).resolve().is_relative_to(root):
                raise tarfile.TarError(f"{m.name!r} would be extracted outside the folder")
            if not (m.isfile() or m.isdir()):
                raise tarfile.TarError(f"{m.name!r} is a link or a special file")
            m.mode &= 0o755
            m.uid = m.gid = 0
            m.uname = m.gname = ""
    written = 0
    with _no_chown(tar):
        for m in members:
            written += m.size if m.isfile() else 0
            if written > limit:
                raise tarfile.TarError(f"unpacking passed the limit of {limit:,} bytes")
            if hasattr(tarfile, "data_filter"):
                tar.extract(m, dest, filter="data")
            else:
                tar.extract(m, dest)  # every member checked above


@contextlib.contextmanager
def _no_chown(tar: Any) -> Iterator[None]:
    """tarfile restores owners when run as root; a downloaded release must not choose them."""
    original = tar.chown
    tar.chown = lambda *args, **kwargs: None
    try:
        yield
    finally:
        tar.chown = original


@dataclass(frozen=True)
class Package:
    folder: Path
    model: Model
    schema: SchemaConfig
    metadata: dict[str, Any]
    threshold: float

    @property
    def reference(self) -> Path:
        return self.folder / REFERENCE

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", "model"))


def check_metadata(metadata: Any, source: str) -> None:
    """A package's metadata.json as this tabml reads it: a PackageError that names what is
    missing or wrong (a package from an older tabml, another tool, or a newer major version
    whose format this one cannot know)."""
    from pydantic import BaseModel, ConfigDict, Field
    from pydantic import ValidationError as PydanticError

    class Dataset(BaseModel):
        model_config = ConfigDict(extra="allow")
        schema_: dict[str, Any] = Field(alias="schema")

    class Params(BaseModel):
        model_config = ConfigDict(extra="allow")
        dataset: Dataset

    class Metadata(BaseModel):
        model_config = ConfigDict(extra="allow", strict=True)
        threshold: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)
        params: Params
        name: str = "model"
        tabml_version: str | None = None

    if not isinstance(metadata, dict):
        raise PackageError(f"{source}: not a tabml package's metadata (a JSON object)")
    try:
        Metadata.model_validate(metadata)
    except PydanticError as err:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'metadata'}: {e['msg']}" for e in err.errors()
        )
        raise PackageError(
            f"{source}: not a package this tabml can read ({problems}); rebuild it with "
            "'dvc repro package'"
        ) from None
    made_by = metadata.get("tabml_version")
    import tabml

    ours = tabml.__version__
    if made_by and _major(made_by) > _major(ours):
        raise PackageError(
            f"{source}: made by tabml {made_by}, a newer major version than this one ({ours}): "
            "its format may differ. Serve it with that tabml, or upgrade this one"
        )


def _major(text: str) -> int:
    head = text.strip().split(".")[0]
    return int(head) if head.isdigit() else 0


def load(folder: Path) -> Package:
    """Verify, then load, a package folder."""
    verify(folder)
    metadata = io.read_json(folder / METADATA)
    check_metadata(metadata, str(folder / METADATA))
    schema = parse(SchemaConfig, metadata["params"]["dataset"]["schema"], "dataset.schema")
    return Package(
        folder=folder,
        model=load_model(folder / MODEL_DIR),
        schema=schema,
        metadata=metadata,
        threshold=float(metadata["threshold"]),
    )


def model_card(metadata: dict[str, Any], slices: dict[str, Any], quality: dict[str, Any]) -> str:
    """The model card: intended use, data, metrics with slices, fairness, limitations.

    The prose is `templates/MODEL_CARD.md`; the figures are filled in here.
    """
    from importlib.resources import files
    from string import Template

    p = metadata["params"]
    schema = p["dataset"]["schema"]
    m = metadata["metrics"]
    text = (files("tabml") / "templates" / "MODEL_CARD.md").read_text(encoding="utf-8")
    dev = quality["development"]
    return Template(text).substitute(
        name=metadata["name"],
        model=p["model"]["name"],
        tabml_version=metadata["tabml_version"],
        git_commit=metadata["git_commit"],
        dirty=", with uncommitted changes" if metadata.get("git_dirty") else "",
        dataset=p["dataset"]["name"],
        target=schema["target"]["column"],
        positive=schema["target"]["positive"],
        threshold=f"{metadata['threshold']:.4f}",
        refit=(
            ", early-stopped on the validation split, then refit on both"
            if p["model"].get("refit")
            else ""
        ),
        rows_read=f"{dev['rows_read']:,}",
        rows_kept=f"{dev['rows_kept']:,}",
        rows_rejected=f"{dev['rows_rejected']:,}",
        rejected_by_reason=dev["rejected_by_reason"] or "",
        n_features=len(schema["features"]),
        features=", ".join(f"`{k}` ({v['kind']})" for k, v in schema["features"].items()),
        personal_data=_card_personal_data(schema),
        metrics="\n".join(_card_metrics(m)),
        slices="".join(f"\n{line}" for line in _card_slices(slices)),
        fairness="".join(
            f"\n{line}"
            for line in _card_fairness(
                m.get("fairness") or {},
                tuple(schema.get("protected") or ()),
                p.get("fairness_limits") or {},
            )
        ),
    )


def _card_personal_data(schema: dict[str, Any]) -> str:
    if not schema.get("pii"):
        return ""
    return (
        "\n- Personal data: "
        + ", ".join(f"`{k}` ({v})" for k, v in schema["pii"].items())
        + "; pseudonymised with a keyed HMAC-SHA256 or dropped before training"
    )


def _card_metrics(m: dict[str, Any]) -> list[str]:
    lines = []
    for name in ("test", "production"):
        if name in m:
            s = m[name]
            lines.append(
                f"| {name} | {s['rows']:,} | {s['roc_auc']:.4f} | {s['average_precision']:.4f} "
                f"| {s['log_loss']:.4f} | {s['brier']:.4f} | {s['ece']:.4f} | {s['f1']:.4f} |"
            )
    return lines


def _card_slices(slices: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for col, values in slices.get("test", {}).items():
        lines += [
            "",
            f"### Test slices by `{col}`",
            "",
            "| value | rows | positive rate | ROC AUC | F1 |",
            "|---|---:|---:|---:|---:|",
        ]
        for v, s in values.items():
            auc = f"{s['roc_auc']:.4f}" if "roc_auc" in s else "n/a"
            f1 = f"{s['f1']:.4f}" if "f1" in s else "n/a"
            lines.append(f"| {v} | {s['rows']:,} | {s['positive_rate']:.3f} | {auc} | {f1} |")
    return lines


def _card_fairness(
    fair: dict[str, Any], protected: tuple[str, ...], limits: dict[str, float | None]
) -> list[str]:
    if not fair:
        return []
    lines = [
        "",
        "## Fairness (test split, at the decision threshold)",
        "",
        "fairlearn's measures on each segment of `dataset.segments`; groups with too",
        "few test rows are left out. 0 means the groups are treated alike by that measure",
        "(for the ratio: 1).",
        "",
        "| segment | groups | demographic parity diff. | ratio | equal opportunity diff. "
        "| equalised odds diff. |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for col, f in fair.items():
        if "demographic_parity_difference" not in f:
            lines.append(f"| {col} | {f.get('groups', 0)} | n/a | n/a | n/a | n/a |")
            continue
        lines.append(
            f"| {col} | {f['groups']} | {f['demographic_parity_difference']:.3f} "
            f"| {f['demographic_parity_ratio']:.3f} | {f['equal_opportunity_difference']:.3f} "
            f"| {f['equalized_odds_difference']:.3f} |"
        )
    lines += ["", *_card_fairness_findings(fair, protected, limits)]
    return lines


def _card_fairness_findings(
    fair: dict[str, Any], protected: tuple[str, ...], limits: dict[str, float | None]
) -> list[str]:
    """What the release's fairness gates measured, and every segment above their limits,
    declared protected or not."""
    lines = []
    if protected:
        lines.append(
            "Protected attributes (`dataset.schema.protected`, held by the release's fairness "
            f"gates): {', '.join(f'`{c}`' for c in protected)}."
        )
    else:
        lines.append(
            "**No protected attribute is declared** (`dataset.schema.protected`), so the "
            "release's fairness gates measured nothing. Decide which of these segments must "
            "be treated alike, and list them."
        )
    for measure, label in (
        ("equalized_odds_difference", "equalised odds"),
        ("demographic_parity_difference", "demographic parity"),
    ):
        limit = limits.get(measure)
        if limit is None:
            continue
        above = [
            (col, float(f[measure]))
            for col, f in fair.items()
            if measure in f and float(f[measure]) > limit
        ]
        for col, value in above:
            status = (
                "protected: the release gate fails"
                if col in protected
                else "not declared protected, so no gate holds it"
            )
            lines.append(
                f"- **`{col}`: {label} difference {value:.3f}, above the limit {limit:.3f}** "
                f"(release.max_{measure}; {status})."
            )
    return lines
