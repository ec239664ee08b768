"""`tabml synth`: bigger data that keeps the shape of the original."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tabml.core.config import SchemaConfig, parse
from tabml.core.schema import validate
from tabml.data.synth import synthesize
from tests.conftest import make_frame, run_cli, schema_dict


def test_synthesized_rows_keep_types_missing_rates_ranges_and_time_order() -> None:
    source = make_frame(400)
    schema = parse(SchemaConfig, schema_dict())
    out = synthesize(source, schema, rows=20_000, seed=1)
    assert len(out) == 20_000 and list(out.columns) == list(source.columns)
    assert out.dtypes.to_dict() == source.dtypes.to_dict()
    assert out["id"].is_unique
    assert pd.to_datetime(out["ts"]).is_monotonic_increasing
    assert abs(out["ratio"].isna().mean() - source["ratio"].isna().mean()) < 0.01
    assert out["ratio"].dropna().between(0, 1).all() and (out["amount"] >= 0).all()
    assert set(out["income"]) <= set(source["income"])
    assert abs(out["y"].mean() - source["y"].mean()) < 0.03
    # noise: not just copies of the source rows
    assert out["amount"].nunique() > source["amount"].nunique()
    # and it is still valid development data for the same schema
    validate(out, schema, "development", "synth")  # raises on any failure
    assert synthesize(source, schema, 500, seed=1).equals(synthesize(source, schema, 500, seed=1))


def test_synth_command_writes_a_bundled_lookalike(tmp_path: Path) -> None:
    from tests.conftest import ROOT

    proc = run_cli(
        "synth",
        "--rows",
        "3000",
        "--output",
        str(tmp_path),
        "--params",
        str(ROOT / "params.yaml"),
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    out = pd.read_parquet(tmp_path / "development.parquet")
    assert len(out) == 3000 and "car_value" in out.columns


def test_synth_works_a_batch_at_a_time_and_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    from tabml.data.synth import batches

    source = make_frame(400)
    schema = parse(SchemaConfig, schema_dict())
    parts = list(batches(source, schema, 2_500, seed=3, batch_rows=1_000))
    assert [len(p) for p in parts] == [1_000, 1_000, 500]
    whole = pd.concat(parts, ignore_index=True)
    assert whole["id"].tolist() == list(range(2_500))
    assert pd.to_datetime(whole["ts"]).is_monotonic_increasing  # across batches too
    for bad in (["--seed", "-1"], ["--rows", "0"], ["--rows", str(10**11)]):
        proc = run_cli("synth", "--rows", "10", "--output", str(tmp_path), *bad)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
