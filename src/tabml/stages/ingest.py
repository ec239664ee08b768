"""ingest: read the sources, validate them against the schema, write Parquet under data/raw."""

from __future__ import annotations

from pathlib import Path

from tabml import datasets, io
from tabml.config import Params, SchemaConfig, SourcesConfig
from tabml.errors import DataError
from tabml.log import info
from tabml.schema import Failure, ValidationError, validate

PARAMS = ("dataset.sources", "dataset.schema")
DEVELOPMENT = "development.parquet"
PRODUCTION = "production.parquet"
LABELS = "production_labels.parquet"


def run(params_file: Path, sources_dir: Path, output_dir: Path) -> None:
    params = Params.load(params_file, PARAMS)
    sources: SourcesConfig = params.section("dataset.sources")
    schema: SchemaConfig = params.section("dataset.schema")

    # validate everything before writing anything: a bad file leaves earlier outputs untouched
    dev_path = datasets.resolve(sources.development, sources_dir)
    info(f"ingest: reading development data {dev_path.name}")
    dev = io.read_table(dev_path)
    checked = validate(dev, schema, "development", str(dev_path))
    info(f"ingest: {len(dev):,} development rows meet the schema")
    if sources.additions:
        add_path = sources_dir / sources.additions
        if add_path.is_file():
            import pandas as pd

            added = validate(io.read_table(add_path), schema, "development", str(add_path))
            # both typed by the schema, so their columns agree
            dev = pd.concat([checked.frame, added.frame], ignore_index=True)
            info(
                f"ingest: + {len(added.frame):,} labelled production rows from {add_path.name} "
                "(tabml append)"
            )
        else:
            info(f"ingest: no {add_path.name} yet ('tabml append' writes it when retraining)")

    prod = labels = None
    if sources.production:
        prod_path = datasets.resolve(sources.production, sources_dir)
        prod = io.read_table(prod_path)
        checked = validate(prod, schema, "production", str(prod_path))
        for col, d in checked.unseen_categories.items():
            info(
                f"ingest: production '{col}': {d['count']:,} values never seen in development "
                f"{list(d['values'])[:3]} (kept for scoring, reported by clean)"
            )
        for col, d in checked.out_of_range.items():
            info(
                f"ingest: production '{col}': {d['below'] + d['above']:,} values out of range "
                "(kept for scoring)"
            )
        if sources.production_labels:
            lab_path = datasets.resolve(sources.production_labels, sources_dir)
            labels = io.read_table(lab_path)
            validate(labels, schema, "labels", str(lab_path))
            unknown = ~labels[schema.id].isin(prod[schema.id])
            if unknown.any():
                ex = tuple(labels.loc[unknown, schema.id].head(3).tolist())
                raise ValidationError(
                    str(lab_path),
                    [
                        Failure(
                            schema.id,
                            "label ids not in the production batch",
                            int(unknown.sum()),
                            ex,
                            hint="Labels must join the production batch on the id column",
                        )
                    ],
                )
    elif sources.production_labels:
        raise DataError("dataset.sources: production_labels given without production")

    if prod is None:
        # no production batch: empty files with the right columns keep the DAG the same
        prod = dev.drop(columns=[schema.target.column]).iloc[:0]
    if labels is None:
        labels = dev[[schema.id, schema.target.column]].iloc[:0]
    with io.atomic_dir(output_dir) as tmp:
        io.write_parquet(tmp / DEVELOPMENT, dev)
        io.write_parquet(tmp / PRODUCTION, prod)
        io.write_parquet(tmp / LABELS, labels)
    info(f"ingest: wrote {output_dir}/")
