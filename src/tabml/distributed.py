"""Training past one machine: LightGBM's own Dask interface on a `dask.distributed` cluster.

The data are read with `dask.dataframe` from Parquet (a local path or `s3://`), each partition
is encoded by the same `Preprocessor` single-machine training uses, and `lightgbm.dask` trains
across the workers. The result is an ordinary `Booster`, saved exactly like single-machine
training saves it, so package, predict, serve and monitor do not know the difference.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from tabml.config import ClusterConfig, LightGBMDaskConfig, SchemaConfig
from tabml.errors import ConfigError
from tabml.features import Preprocessor, vocabulary
from tabml.features import fit as fit_preprocessor
from tabml.log import info
from tabml.model import History, Model, _lgb_columns, _lgb_params

if TYPE_CHECKING:
    import pandas as pd

# rows the preprocessor's medians and clip bounds are estimated from; vocabularies are exact
SAMPLE_ROWS = 1_000_000


@contextlib.contextmanager
def client(cfg: ClusterConfig) -> Iterator[Any]:
    """A client of the configured scheduler, or of a LocalCluster on 127.0.0.1 when none."""
    from dask.distributed import Client, LocalCluster

    if cfg.address:
        info(f"train: connecting to the Dask scheduler at {cfg.address}")
        try:
            connected = Client(cfg.address, timeout=f"{cfg.connect_timeout_seconds}s")
        except (OSError, TimeoutError) as err:
            raise ConfigError(
                f"the Dask scheduler at {cfg.address} did not answer within "
                f"{cfg.connect_timeout_seconds} s ({type(err).__name__}). Check the address "
                "(model.cluster.address) and that the scheduler runs and is reachable from "
                "here; empty starts a local cluster instead"
            ) from None
        with connected as c:
            yield c
        return
    with (
        LocalCluster(
            n_workers=cfg.n_workers,
            threads_per_worker=cfg.threads_per_worker,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as c,
    ):
        info(f"train: started a local Dask cluster, {len(cluster.workers)} workers")
        yield c


def _fit_preprocessor(train: Any, schema: SchemaConfig, cfg: LightGBMDaskConfig) -> Preprocessor:
    """Medians and clip bounds from a sample of train; category vocabularies from all of it."""
    from dataclasses import replace

    rows = len(train)
    sample = train.sample(frac=min(1.0, SAMPLE_ROWS / max(rows, 1)), random_state=0)
    prep = fit_preprocessor(sample.compute(), schema, cfg.impute == "median", cfg.clip_quantiles)
    vocab = {
        c: vocabulary(train[c].astype("string").value_counts().compute(), schema.features[c])
        for c in prep.categorical
    }
    return replace(prep, vocab=vocab)


def _encode(frame: Any, prep: Preprocessor, names: list[str]) -> Any:
    import pandas as pd

    def encode(part: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(prep.transform(part, "codes"), columns=names, index=part.index)

    meta = pd.DataFrame({n: pd.Series(dtype="float64") for n in names})
    return frame.map_partitions(encode, meta=meta)


def fit_dask(
    train_path: str, valid_path: str, schema: SchemaConfig, cfg: LightGBMDaskConfig, seed: int
) -> tuple[Model, History]:
    """Train LightGBM across a Dask cluster on the train split; score valid every round."""
    import dask.dataframe as dd
    import lightgbm as lgb

    target = schema.target.column
    with client(cfg.cluster) as dask_client:
        train = dd.read_parquet(train_path)
        valid = dd.read_parquet(valid_path)
        prep = _fit_preprocessor(train, schema, cfg)
        names, cats = _lgb_columns(prep)
        params = _lgb_params(cfg, seed)
        # the Dask interface is scikit-learn style: trees and seed have their own names there
        rounds = cfg.num_boost_round
        for key in ("metric", "seed"):
            params.pop(key)
        # minutes, not LightGBM's 120: a lost worker fails the run in reasonable time
        params["time_out"] = cfg.cluster.network_timeout_minutes
        model = lgb.DaskLGBMClassifier(
            client=dask_client,
            n_estimators=rounds,
            random_state=seed,
            **params,
        )
        workers = {
            address: int(w["nthreads"])
            for address, w in sorted(dask_client.scheduler_info()["workers"].items())
        }
        if cfg.num_threads != 1:
            info(
                f"train: model.num_threads ({cfg.num_threads}) does not apply on Dask: LightGBM "
                "runs each worker with that worker's own threads "
                f"({', '.join(str(n) for n in workers.values())}); set them on the cluster"
            )
        info(
            f"train: {len(workers)} Dask workers, {sum(workers.values())} threads (recorded in "
            "reports/train/metrics.json: a different cluster gives a different model)"
        )
        # read once, then split: X and y from separately computed graphs can come out with
        # different partitions, and `fit` then fails in zip() (LightGBM #6920)
        train, valid = train.persist(), valid.persist()
        x_train, x_valid = _encode(train, prep, names), _encode(valid, prep, names)
        y_train, y_valid = train[target].astype("float64"), valid[target].astype("float64")
        info(f"train: fitting lightgbm_dask on {len(train):,} rows, {rounds} rounds")
        model.fit(
            x_train,
            y_train,
            eval_set=[(x_valid, y_valid)],
            eval_names=["valid"],
            eval_metric=["binary_logloss", "auc"],
            feature_name=names,
            categorical_feature=cats,
        )
        local = model.to_local()
    booster = local.booster_
    curves = {
        split: {m: [float(v) for v in vals] for m, vals in metrics.items()}
        for split, metrics in local.evals_result_.items()
    }
    fitted = Model("lightgbm", prep, booster=booster, best_iteration=rounds)
    return fitted, History(curves, rounds, workers=workers)
