"""exp compare: the shell of `tabml exp compare`: the workspace's package and each chosen
experiment's (read through DVC at its commit), scored on the same rows and timed in the same
run, in interleaved rounds (tabml.reporting.leaderboard)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from tabml.core import io
from tabml.core.catalog import Repo, Splits
from tabml.core.errors import ConfigError
from tabml.core.log import info
from tabml.core.schema import validate
from tabml.learning import package as pkg
from tabml.reporting import latency
from tabml.reporting import leaderboard as lb

MARKDOWN, HTML, JSON = "leaderboard.md", "leaderboard.html", "leaderboard.json"
SPLITS = ("valid", "test")


def run(
    root: Path,
    experiments: list[str],
    package: Path,
    splits_dir: Path,
    output_dir: Path,
    rounds: int,
    batch: int = 1_000,
    valid_scores: Path = Path(Repo.VALID_SCORES),
) -> list[lb.Entry]:
    import yaml

    from tabml.adapters.dvc_adapter import experiment_params, get_output, resolve_experiment

    with tempfile.TemporaryDirectory(prefix="tabml-compare-") as tmp:
        loaded: list[tuple[lb.Entry, pkg.Package, Path]] = []
        if not (root / package).is_dir():
            raise ConfigError(f"{package}: no package in the workspace; run 'dvc repro' first")
        here = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
        loaded.append(_entry("workspace", "workspace", here, root / package))
        held_out: list[Path | None] = [root / valid_scores]
        for name in experiments:
            sha = resolve_experiment(root, name)
            dest = Path(tmp) / f"{len(loaded)}"
            info(f"exp compare: {name} ({sha[:8]}): its package through DVC")
            get_output(root, sha, package.as_posix(), dest / "package")
            try:
                get_output(root, sha, valid_scores.as_posix(), dest / valid_scores.name)
                held_out.append(dest / valid_scores.name)
            except ConfigError:
                held_out.append(None)
            params = yaml.safe_load(experiment_params(root, name))
            loaded.append(_entry(name, sha, params, dest / "package"))
        frames = {
            s: io.read_parquet(root / splits_dir / getattr(Splits, s.upper())) for s in SPLITS
        }
        for (entry, model, _), scores in zip(loaded, held_out, strict=True):
            target = model.schema.target.column
            for split, frame in frames.items():
                y = (frame[target] == model.schema.target.positive).to_numpy()
                if split == "valid" and scores is not None and scores.is_file():
                    # the early-stopped model's held-out scores: a refit model has seen valid
                    joined = frame[[model.schema.id]].merge(
                        io.read_parquet(scores), on=model.schema.id, how="left"
                    )
                    if joined["score"].notna().all():
                        entry.auc[split] = lb.auc_interval(y, joined["score"].to_numpy())
                        continue
                typed = validate(frame.drop(columns=[target]), model.schema, "production",
                                 split).frame  # fmt: skip
                entry.auc[split] = lb.auc_interval(y, model.model.predict(typed))
        _time(loaded, frames["test"], rounds, batch)
    entries = [e for e, _, _ in loaded]
    lb.mark_pareto(entries)
    note = (
        f"Every package scored on the workspace's valid ({len(frames['valid']):,} rows, by "
        "the held-out scores train wrote before any refit on them) and "
        f"test ({len(frames['test']):,} rows) splits; response time through the serving path "
        f"(tabml.service.serving.Scorer), in process, {rounds} interleaved rounds on this machine: "
        "compare the rows with each other, not with another run."
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    text = lb.markdown(entries, SPLITS, note)
    io.write_text(output_dir / MARKDOWN, text)
    io.write_text(output_dir / HTML, lb.html(entries, SPLITS, note))
    io.write_json(
        output_dir / JSON,
        [
            {
                "name": e.name,
                "rev": e.rev,
                "auc": {k: list(v) for k, v in e.auc.items()},
                "p50_ms": e.p50_ms,
                "p99_ms": e.p99_ms,
                "records_per_s": e.records_per_s,
                "size_bytes": e.size_bytes,
                "trees": e.trees,
                "pareto": e.pareto,
                "speed_rank": e.speed_rank,
            }
            for e in entries
        ],
    )
    print(text)
    info(f"exp compare: wrote {output_dir}/{MARKDOWN}, {HTML} and {JSON}")
    return entries


def _entry(
    name: str, rev: str, params: dict[str, Any], folder: Path
) -> tuple[lb.Entry, pkg.Package, Path]:
    model = pkg.load(folder)
    size = sum(f.stat().st_size for f in (folder / pkg.MODEL_DIR).rglob("*") if f.is_file())
    trees = None
    if model.model.booster is not None:
        trees = int(model.model.best_iteration or model.model.booster.num_trees())
    entry = lb.Entry(name, rev, lb.flatten(params), size_bytes=size, trees=trees)
    return entry, model, folder


def _time(
    loaded: list[tuple[lb.Entry, pkg.Package, Path]], test: Any, rounds: int, batch: int
) -> None:
    """One-record times and 1,000-record throughput, in interleaved rounds
    (tabml.reporting.latency)."""
    from tabml.service.serving import Scorer

    schema = loaded[0][1].schema
    records = latency.records_of(test, [schema.id, *schema.features], max(batch, 200))
    scorers = [Scorer(model).score for _, model, _ in loaded]
    single, many = latency.interleaved(scorers, records, rounds, batch=batch)
    for (entry, _, _), rank in zip(loaded, latency.speed_ranks(single), strict=True):
        entry.speed_rank = rank
    for (entry, _, _), one, lots in zip(loaded, single, many, strict=True):
        flat = [t for r in one for t in r]
        entry.p50_ms = latency.percentile(flat, 50) * 1000
        entry.p99_ms = latency.percentile(flat, 99) * 1000
        entry.records_per_s = min(batch, len(records)) / latency.percentile(lots, 50)
