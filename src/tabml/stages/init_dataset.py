"""init-dataset: the shell of `tabml init-dataset FILE`: read a development file, propose its
config (tabml.data.profile) and write it to conf/ as three files:

- `conf/dataset/NAME.yaml`: sources, schema (every column's kind; personal data and leaks
  flagged), segments and the protected-attribute question; it selects the next two;
- `conf/monitor/NAME.yaml`: the chunk size for this data's size;
- `conf/release/NAME.yaml`: release gates the data's size can meet.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tabml.core import io
from tabml.core.errors import ConfigError
from tabml.core.log import info
from tabml.data.datasets import is_bundled, resolve
from tabml.data.profile import Column, Proposal, propose

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_DEFAULT_DATASET = re.compile(r"^(\s*-\s*dataset:\s*)(\S+)(.*)$", re.MULTILINE)


def dataset_name(source: str) -> str:
    """A config name from a file name: `Fair Survey-2024.csv` -> `fair_survey_2024`."""
    stem = Path(source.removeprefix("nannyml://")).name.split(".")[0]
    name = re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_")
    return name if name and name[0].isalpha() else f"d_{name}"


def run(
    source: str,
    sources_dir: Path,
    config_dir: Path,
    name: str | None,
    target: str | None,
    id_column: str | None,
    timestamp: str | None,
    production: str | None,
    production_labels: str | None,
    make_default: bool,
    force: bool,
) -> Proposal:
    name = name or dataset_name(source)
    if not _NAME.match(name):
        raise ConfigError(
            f"--name {name}: use lower-case letters, digits and _, starting with a letter"
        )
    if not (config_dir / "config.yaml").is_file():
        raise ConfigError(f"{config_dir}: no config.yaml; run this in a tabml clone's root")
    files = {
        group: config_dir / group / f"{name}.yaml" for group in ("dataset", "monitor", "release")
    }
    existing = [str(p) for p in files.values() if p.exists()]
    if existing and not force:
        raise ConfigError(
            f"{', '.join(existing)} already exist; choose another --name, or --force to "
            "overwrite them"
        )
    named = _source(source, sources_dir, "development")
    path = resolve(named, sources_dir)
    info(f"init-dataset: reading {path}")
    frame = io.read_table(path)
    defaults = _defaults(config_dir)
    proposal = propose(
        frame,
        target,
        id_column,
        timestamp,
        test_fraction=defaults["test_fraction"],
        reference_max_rows=defaults["reference_max_rows"],
        min_reference_chunks=defaults["min_reference_chunks"],
        default_chunk_rows=defaults["chunk_rows"],
    )
    sources = {
        "development": named,
        "production": production and _source(production, sources_dir, "production"),
        "production_labels": production_labels
        and _source(production_labels, sources_dir, "production labels"),
        "additions": "additions.parquet",
    }
    texts = {
        "dataset": dataset_yaml(name, source, sources, proposal),
        "monitor": monitor_yaml(name, proposal),
        "release": release_yaml(name, proposal),
    }
    for group, file in files.items():
        file.parent.mkdir(parents=True, exist_ok=True)
        io.write_text(file, texts[group])
    was = set_default(config_dir / "config.yaml", name) if make_default else None
    _report(name, files, proposal, was, make_default)
    return proposal


def _source(source: str, sources_dir: Path, what: str) -> str:
    """How params name a source file: a bundled one as given; the team's own by its path
    under `sources_dir`, whether given from the project's root (data/external/x.csv) or by
    its name there (x.csv). One that lies elsewhere is refused, naming the fix."""
    if is_bundled(source):
        return source
    given = Path(source)
    path = given if given.exists() or _within(given, sources_dir) else sources_dir / source
    if not _within(path, sources_dir):
        raise ConfigError(
            f"{source}: ingest reads {what} files from {sources_dir}/, so put it there "
            f"first (cp {source} {sources_dir}/ && dvc add {sources_dir}/{given.name}) "
            "and name it from there"
        )
    return path.resolve().relative_to(sources_dir.resolve()).as_posix()


def _within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _defaults(config_dir: Path) -> dict[str, Any]:
    """The shared defaults the proposal starts from (conf/split, conf/monitor)."""
    import yaml

    def load(rel: str) -> dict[str, Any]:
        data = yaml.safe_load((config_dir / rel).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}

    monitor = load("monitor/default.yaml")
    split = load("split/time.yaml")
    return {
        "test_fraction": float(split.get("test_fraction", 0.15)),
        "reference_max_rows": int(monitor.get("reference", {}).get("max_rows", 100_000)),
        "min_reference_chunks": int(monitor.get("min_reference_chunks", 6)),
        "chunk_rows": int(monitor.get("chunking", {}).get("rows", 5_000)),
    }


def set_default(config_file: Path, name: str) -> str | None:
    """Make `name` the default dataset of conf/config.yaml; return the one it replaces."""
    text = config_file.read_text(encoding="utf-8")
    found = _DEFAULT_DATASET.search(text)
    if found is None:
        raise ConfigError(f"{config_file}: no '- dataset: NAME' line in its defaults to change")
    if found.group(2) == name:
        return None
    io.write_text(config_file, _DEFAULT_DATASET.sub(rf"\g<1>{name}\g<3>", text, count=1))
    return found.group(2)


def _flow(value: Any) -> str:
    """One value as YAML on one line (categories quoted as strings: "5", not 5)."""
    import yaml

    text = str(yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False))
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _comment(text: str, indent: str) -> list[str]:
    import textwrap

    return [f"{indent}# {line}" for line in textwrap.wrap(text, 96 - len(indent))]


def dataset_yaml(name: str, path: str, sources: dict[str, Any], p: Proposal) -> str:
    features = [c for c in p.columns if c.role == "feature"]
    ignored = [c for c in p.columns if c.role == "ignore"]
    pii = [c for c in p.columns if c.role == "pii"]
    lines = [
        f"# {name}: proposed by `tabml init-dataset` from {path} ({p.rows:,} rows). Review it:",
        "# every guess is stated in a comment, and each FLAG needs your decision.",
        *[f"#   {s}" for s in p.roles_stated],
        "defaults:",
        "  # this data set's monitoring and release settings",
        f"  - override /monitor@_global_.monitor: {name}",
        f"  - override /release@_global_.release: {name}",
        f"name: {name}",
        "sources:",
        *[f"  {k}: {_flow(v)}" for k, v in sources.items()],
        "schema:",
        f"  id: {_flow(p.id)}",
        f"  timestamp: {_flow(p.timestamp)}",
        "  target:",
        f"    column: {_flow(p.target)}",
        f"    # {p.positive_rate:.1%} of the rows have this value",
        f"    positive: {_flow(p.positive)}",
        "  features:",
    ]
    for c in features:
        lines += _comment(_why(c), "    ")
        lines.append(f"    {_flow(c.name)}: {_flow(c.spec)}")
    lines.append("  ignore:" + ("" if ignored else " []"))
    for c in ignored:
        lines += _comment((f"FLAG: {c.flag}" if c.flag else c.why), "    ")
        lines.append(f"    - {_flow(c.name)}")
    lines.append("  extra_columns: reject")
    lines += [
        "  # personal data: dropped by ingest (never leaves the source file) until you decide;",
        "  # `pseudonymise` keeps a keyed hash (TABML_PII_KEY) instead",
        "  pii:" + ("" if pii else " {}"),
    ]
    for c in pii:
        lines += _comment(f"FLAG: {c.flag}", "    ")
        lines.append(f"    {_flow(c.name)}: drop")
    question = (
        "Which columns must the model treat alike (sex, race, age band...)? List them: the "
        "release's fairness gates then hold their groups' gaps; until you do, the gates say "
        "'not measured'."
    )
    if p.protected_candidates:
        question += f" Candidates by name: {', '.join(p.protected_candidates)}."
    lines += _comment(question, "  ")
    lines.append("  protected: []")
    lines += _comment(
        "slice the metrics and fairness figures by these columns (the candidates above, to "
        "start with)",
        "",
    )
    lines.append(f"segments: {_flow(p.protected_candidates)}")
    return "\n".join(lines) + "\n"


def _why(c: Column) -> str:
    auc = f"; alone: ROC AUC {c.auc:.3f}" if c.auc is not None else ""
    return f"{c.why}{auc}"


def monitor_yaml(name: str, p: Proposal) -> str:
    return (
        f"# Monitoring for {name} (selected by conf/dataset/{name}.yaml), over conf/monitor/"
        "default.yaml.\n"
        f"# {p.rows:,} development rows: chunks of {p.chunk_rows:,} make {p.reference_chunks} "
        "reference chunks, none short\n"
        "# (NannyML's thresholds come from how each measure varies across them).\n"
        "defaults:\n  - default\n  - _self_\n"
        "chunking:\n  method: rows\n"
        f"  rows: {p.chunk_rows}\n"
    )


def release_yaml(name: str, p: Proposal) -> str:
    best = (
        f"the best single feature ({p.best_single[0]}) reaches {p.best_single[1]:.3f} alone on "
        "held-out rows: the model should beat it"
        if p.best_single
        else "no single feature could be scored"
    )
    return (
        f"# Release gates for {name} (selected by conf/dataset/{name}.yaml), over conf/release/"
        "default.yaml.\n"
        "# Proposed from the data's size by `tabml init-dataset`; raise them as you learn what "
        "the model reaches.\n"
        "defaults:\n  - default\n  - _self_\n"
        f"name: {name}\n"
        f"# {best}\n"
        f"min_test_roc_auc: {p.min_test_roc_auc}\n"
        f"# the test split holds about {int(p.rows * 0.15):,} rows\n"
        f"min_test_rows: {p.min_test_rows}\n"
    )


def _report(
    name: str, files: dict[str, Path], p: Proposal, was: str | None, make_default: bool
) -> None:
    kinds: dict[str, int] = {}
    for c in p.columns:
        key = c.spec.get("kind", c.role) if c.role == "feature" else c.role
        kinds[key] = kinds.get(key, 0) + 1
    info(
        f"init-dataset: {p.rows:,} rows; target {p.target} (positive {p.positive!r}, "
        f"{p.positive_rate:.1%}); id {p.id}; timestamp {p.timestamp or 'none'}; "
        + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    )
    for line in p.roles_stated:
        info(f"init-dataset:   {line}")
    for c in p.flags:
        info(f"init-dataset: FLAG {c.name}: {c.flag}")
    if p.protected_candidates:
        info(
            "init-dataset: which columns must the model treat alike? Candidates: "
            f"{', '.join(p.protected_candidates)} (dataset.schema.protected)"
        )
    info(f"init-dataset: wrote {', '.join(str(f) for f in files.values())}")
    if was:
        info(f"init-dataset: {name} is now the default dataset of conf/config.yaml (was {was})")
    dataset = "" if make_default else f" dataset={name}"
    print(
        f"Next: review {files['dataset']} (each FLAG needs a decision), then\n"
        f"  tabml params{dataset}\n"
        f'  git add conf params.yaml && git commit -m "{name}: dataset config"\n'
        "  dvc repro"
    )
