"""Model releases: quality gates, GTO tags and reproducible release tarballs.

Pure functions only; `stages/release.py` is the shell (git, DVC, GTO, files).

- `gates` checks a run's metrics against the release gates (`conf/release/<name>.yaml`) and
  returns one `Gate`
  per rule; `gate_table` prints them.
- `parse_tag` accepts exactly a GTO registration tag of the declared artefact with a semantic
  version (`tabml-model@v1.2.3`) and says what is wrong with anything else.
- `write_tarball` writes a package folder as a gzip'd tar whose bytes depend only on the files:
  entries sorted, one fixed mtime, owner 0/0 with no names, normalised modes, no gzip
  timestamp or file name.
"""

from __future__ import annotations

import gzip
import io as _io
import re
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabml.core.catalog import Repo
from tabml.core.config import ReleaseConfig
from tabml.core.errors import TabmlError

if TYPE_CHECKING:
    from tabml.governance.compare import Paired

GATES_FAILED_EXIT_CODE = 11
_TAG = re.compile(r"^(?P<name>[^@#\s]+)@(?P<version>\S+)$")
_SEMVER = re.compile(
    r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)


class ReleaseError(TabmlError):
    """A release cannot be made: a bad tag or version, a dirty workspace."""

    exit_code = 2


class GatesFailed(ReleaseError):
    """The run does not meet the quality gates of conf/release/."""

    exit_code = GATES_FAILED_EXIT_CODE


@dataclass(frozen=True)
class Gate:
    name: str
    value: float | None
    limit: float
    passed: bool
    note: str = ""
    # the params.yaml key that sets the limit, and the conf file it comes from
    key: str = ""
    source: str = ""
    # False where nothing could be measured (no protected attribute declared): shown as such,
    # not as a pass
    measured: bool = True


def conf_file(cfg: ReleaseConfig) -> str:
    """The file of conf/ the gates of `cfg` come from."""
    return f"conf/release/{cfg.name}.yaml"


def failures(results: list[Gate]) -> str:
    """One line per failed gate: the gate, its key and the file that sets it."""
    return "\n".join(
        f"  {g.name}: {_num(g.value)} against the limit {_num(g.limit)} "
        f"({g.key}, set in {g.source}){f'; {g.note}' if g.note else ''}"
        for g in results
        if not g.passed
    )


def _get(metrics: Mapping[str, Any], dotted: str) -> float | None:
    node: Any = metrics
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return float(node) if isinstance(node, int | float) and not isinstance(node, bool) else None


def _absent(metrics: Mapping[str, Any], dotted: str, source: str) -> str:
    """Why `_get` found no number: the key is not there, or its value is not a number."""
    node: Any = metrics
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return f"no {dotted} in {source}"
        node = node[part]
    return f"{dotted} in {source} is {str(node)[:40]!r}, not a number"


def fairness_gates(
    cfg: ReleaseConfig, metrics: Mapping[str, Any], protected: tuple[str, ...]
) -> list[Gate]:
    """The largest demographic-parity and equalised-odds differences over the protected
    attributes (`dataset.schema.protected`): the segments whose groups must be treated alike.
    Other segments are measured and reported, not gated (income bands, say, may well differ)."""
    from tabml.governance.fairness import worst

    fair = {k: v for k, v in (metrics.get("fairness") or {}).items() if k in protected}
    out = []
    for measure, limit in (
        ("demographic_parity_difference", cfg.max_demographic_parity_difference),
        ("equalized_odds_difference", cfg.max_equalized_odds_difference),
    ):
        if limit is None:
            continue
        label = measure.replace("_", " ").replace("equalized", "equalised")
        key, source = f"release.max_{measure}", conf_file(cfg)
        found = worst(fair, measure)
        if found is None:
            note = (
                "no protected attribute declared: list them in dataset.schema.protected"
                if not protected
                else "no protected attribute with two groups of enough rows"
            )
            out.append(Gate(label, None, limit, True, note, key, source, measured=False))
            continue
        segment, value = found
        out.append(Gate(label, value, limit, value <= limit, f"largest: {segment}", key, source))
    return out


def gates(
    cfg: ReleaseConfig,
    metrics: Mapping[str, Any],
    monitoring: Mapping[str, Any] | None,
    previous: Mapping[str, Any] | None,
    previous_name: str | None = None,
    vs_prod: tuple[str, Paired, Any] | str | None = None,
    protected: tuple[str, ...] = (),
    sources: tuple[str, str] = (Repo.METRICS, Repo.MONITORING_METRICS),
) -> list[Gate]:
    """Every gate of `cfg` against this run's metrics (and the previous release's), and
    against the release in prod scored on the same rows (`vs_prod`: its tag and the paired
    comparison, the reason there is none, or None when no release is in prod)."""

    from dataclasses import replace

    def at_least(name: str, key: str, limit: float) -> Gate:
        value = _get(metrics, key)
        return Gate(
            name,
            value,
            limit,
            value is not None and value >= limit,
            "" if value is not None else _absent(metrics, key, sources[0]),
        )

    def set_by(gate: Gate, field: str) -> Gate:
        return replace(gate, key=f"release.{field}", source=conf_file(cfg))

    out = [
        set_by(at_least("test ROC AUC", "test.roc_auc", cfg.min_test_roc_auc), "min_test_roc_auc"),
        set_by(at_least("test rows", "test.rows", cfg.min_test_rows), "min_test_rows"),
        set_by(
            _previous_gate(cfg, _get(metrics, "test.roc_auc"), previous, previous_name),
            "max_roc_auc_drop",
        ),
    ]
    if cfg.max_roc_auc_drop_vs_prod is not None:
        out.append(
            set_by(_prod_gate(cfg.max_roc_auc_drop_vs_prod, vs_prod), "max_roc_auc_drop_vs_prod")
        )
    if cfg.max_p99_ratio_vs_prod is not None:
        out.append(set_by(_p99_gate(cfg.max_p99_ratio_vs_prod, vs_prod), "max_p99_ratio_vs_prod"))
    out += fairness_gates(cfg, metrics, protected)
    alerts = _get(monitoring or {}, "alerts")
    out.append(
        set_by(
            Gate(
                "monitoring alerts",
                alerts,
                cfg.max_monitoring_alerts,
                alerts is not None and alerts <= cfg.max_monitoring_alerts,
                ""
                if alerts is not None
                else (
                    f"no monitoring report ({sources[1]})"
                    if monitoring is None
                    else _absent(monitoring, "alerts", sources[1])
                ),
            ),
            "max_monitoring_alerts",
        )
    )
    return out


def _previous_gate(
    cfg: ReleaseConfig,
    auc: float | None,
    previous: Mapping[str, Any] | None,
    previous_name: str | None,
) -> Gate:
    """This run's test ROC AUC against the latest earlier release's (passes with none)."""
    name = "ROC AUC drop against the previous release"
    before = _get(previous, "test.roc_auc") if previous is not None else None
    if previous is None or before is None:
        why = "no previous release" if previous is None else f"{previous_name} has no test.roc_auc"
        return Gate(name, None, cfg.max_roc_auc_drop, True, why)
    drop = before - auc if auc is not None else None
    return Gate(
        name,
        drop,
        cfg.max_roc_auc_drop,
        drop is not None and drop <= cfg.max_roc_auc_drop,
        f"{previous_name}: {before:.4f}",
    )


def _p99_gate(limit: float, vs_prod: tuple[str, Paired, Any] | str | None) -> Gate:
    """This run's one-record p99 over the prod release's, both timed side by side on this
    run's test rows (passes when no release is in prod; fails when it cannot be timed)."""
    name = "p99 response time against prod (ratio)"
    if vs_prod is None:
        return Gate(name, None, limit, True, "no release is in prod")
    if isinstance(vs_prod, str) or vs_prod[2] is None:
        why = vs_prod if isinstance(vs_prod, str) else "not timed"
        return Gate(name, None, limit, False, f"{why}; release.max_p99_ratio_vs_prod: null "
                    "turns this gate off")  # fmt: skip
    tag, _, timed = vs_prod
    value = timed.challenger_p99_ms / timed.champion_p99_ms
    return Gate(
        name, value, limit, value <= limit,
        f"{tag}: p99 {timed.champion_p99_ms:.3f} ms, this run {timed.challenger_p99_ms:.3f} ms "
        f"({timed.rounds} interleaved rounds, same rows)",
    )  # fmt: skip


def _prod_gate(margin: float, vs_prod: tuple[str, Paired, Any] | str | None) -> Gate:
    """This run against the release in prod, on the same rows (passes when none is in prod;
    fails when it is but cannot be scored)."""
    name = "ROC AUC drop against prod, same rows"
    if vs_prod is None:
        return Gate(name, None, margin, True, "no release is in prod")
    if isinstance(vs_prod, str):
        why = f"{vs_prod}; release.max_roc_auc_drop_vs_prod: null turns this gate off"
        return Gate(name, None, margin, False, why)
    tag, paired, _ = vs_prod
    drop = 0.0 - paired.delta  # not -0.0 when they are equal
    return Gate(
        name,
        drop,
        margin,
        drop <= margin,
        f"{tag}: {paired.champion_auc:.4f}, this run {paired.challenger_auc:.4f} on "
        f"{paired.rows:,} rows; 95% CI of the difference {paired.low:+.4f} to "
        f"{paired.high:+.4f}",
    )


def _num(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:,.0f}" if float(v).is_integer() and abs(v) >= 1 else f"{v:.4f}"


def gate_table(results: list[Gate]) -> str:
    """A Markdown table: gate, value, limit, pass/fail (and why)."""
    num = _num
    bound = {
        "test ROC AUC": ">=",
        "test rows": ">=",
        "ROC AUC drop against the previous release": "<=",
        "ROC AUC drop against prod, same rows": "<=",
        "p99 response time against prod (ratio)": "<=",
        "monitoring alerts": "<=",
        "demographic parity difference": "<=",
        "equalised odds difference": "<=",
    }
    lines = ["| gate | value | limit | result |", "|---|---:|---:|---|"]
    for g in results:
        verdict = "➖ not measured" if not g.measured else "✅ pass" if g.passed else "❌ FAIL"
        note = f" ({g.note})" if g.note else ""
        lines.append(
            f"| {g.name} | {num(g.value)} | {bound.get(g.name, '')} {num(g.limit)} | "
            f"{verdict}{note} |"
        )
    return "\n".join(lines)


def parse_tag(tag: str, artifact: str) -> str:
    """The version of a registration tag `<artifact>@vX.Y.Z`, or a ReleaseError saying why not."""
    from gto.api import parse_tag_name
    from gto.exceptions import InvalidTagName

    if "!" in tag:
        raise ReleaseError(
            f"tag {tag!r} is a GTO deregistration, deprecation or unassignment, not a release"
        )
    match = _TAG.fullmatch(tag)  # fullmatch: `$` would let a trailing newline through
    if not match:
        raise ReleaseError(
            f"tag {tag!r} is malformed: a release tag is <artifact>@v<MAJOR>.<MINOR>.<PATCH>, "
            f"e.g. {artifact}@v1.0.0"
        )
    if match["name"] != artifact:
        raise ReleaseError(
            f"tag {tag!r} names the artefact {match['name']!r}, but dvc.yaml declares "
            f"{artifact!r} (artifacts:); tag {artifact}@{match['version']} instead"
        )
    version = match["version"]
    if not _SEMVER.fullmatch(version):
        raise ReleaseError(
            f"tag {tag!r}: version {version!r} is not semantic versioning; use "
            "v<MAJOR>.<MINOR>.<PATCH>, e.g. v1.0.0 or v1.2.3-rc.1"
        )
    try:
        parsed = parse_tag_name(tag)
    except InvalidTagName:
        raise ReleaseError(f"tag {tag!r}: GTO cannot parse it as a registration") from None
    if parsed.get("version") != version:
        raise ReleaseError(f"tag {tag!r} is not a version registration (GTO: {parsed})")
    return version


def check_version(version: str, latest: str | None) -> None:
    """Refuse a version that is not semver or not greater than the latest release."""
    import semver

    if not _SEMVER.fullmatch(version):
        raise ReleaseError(
            f"version {version!r} is not semantic versioning: use v<MAJOR>.<MINOR>.<PATCH>, "
            "e.g. VERSION=v1.0.0"
        )
    if latest is not None and semver.Version.parse(version[1:]) <= semver.Version.parse(
        latest.lstrip("v")
    ):
        raise ReleaseError(
            f"version {version} is not greater than the latest release {latest}; "
            "choose a higher one"
        )


def write_tarball(folder: Path, dest: Path, root: str, mtime: int) -> None:
    """`folder` as `dest` (.tar.gz) under the top-level directory `root`, byte-reproducibly."""
    files = {
        f"{root}/{p.relative_to(folder).as_posix()}": p for p in folder.rglob("*") if p.is_file()
    }
    dirs = {root} | {name.rsplit("/", 1)[0] for name in files}
    dirs |= {d.rsplit("/", i)[0] for d in list(dirs) for i in range(1, d.count("/") + 1)}
    raw = _io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(dirs | set(files)):
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = mtime, 0, 0, "", ""
            if name in files:
                info.size, info.mode = files[name].stat().st_size, 0o644
                with files[name].open("rb") as fh:
                    tar.addfile(info, fh)
            else:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with (
        dest.open("wb") as out,
        gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz,
    ):
        gz.write(raw.getvalue())


def release_notes(tag: str, metrics: Mapping[str, Any], results: list[Gate], sha: str) -> str:
    """The GitHub release's notes: the metrics table, the gate table, how to verify."""
    rows = []
    for split in ("test", "production"):
        m = metrics.get(split)
        if isinstance(m, Mapping):
            rows.append(
                f"| {split} | {int(m.get('rows', 0)):,} | {m.get('roc_auc', float('nan')):.4f} | "
                f"{m.get('average_precision', float('nan')):.4f} | "
                f"{m.get('log_loss', float('nan')):.4f} | {m.get('f1', float('nan')):.4f} |"
            )
    return "\n".join(
        [
            f"## {tag}",
            "",
            "### Metrics",
            "",
            "| set | rows | ROC AUC | avg precision | log loss | F1 |",
            "|---|---:|---:|---:|---:|---:|",
            *rows,
            "",
            "### Quality gates",
            "",
            gate_table(results),
            "",
            "### Use it",
            "",
            "```bash",
            f"sha256sum -c {sha}",
            f"tabml package verify {sha.removesuffix('.sha256')}",
            f"tabml predict --package {sha.removesuffix('.sha256')} --input new.csv "
            "--output scores.csv",
            "```",
            "",
        ]
    )
