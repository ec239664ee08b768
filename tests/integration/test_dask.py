"""`compute=dask`: LightGBM's ranks on a Dask cluster of worker processes on 127.0.0.1.

What a team relies on: N=1 is single-machine training, byte for byte; at a fixed N two runs
write the same model, whichever workers and however the file is cut into row groups (the
file here has 12, LightGBM #6920's failure was many partitions); a rank that dies fails the
run naming it; a cluster too small for N is refused before training."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from distributed.diagnostics.plugin import WorkerPlugin

from tabml.core.config import DaskCompute, LightGBMConfig, SchemaConfig, parse
from tabml.core.errors import ConfigError, TabmlError
from tests.conftest import make_frame, schema_dict, write_groups, write_params

CFG = LightGBMConfig(
    name="lightgbm",
    learning_rate=0.1,
    num_boost_round=300,
    early_stopping_rounds=20,
    refit=True,
    num_leaves=15,
    min_child_samples=20,
    feature_fraction=0.9,
    bagging_fraction=0.8,
    bagging_freq=1,
    lambda_l2=1.0,
    num_threads=1,
    impute="median",
)
SCHEMA = parse(SchemaConfig, schema_dict(), "dataset.schema")


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("splits")
    frame = make_frame(7_500, seed=11).drop(columns=["email"])
    train, valid = frame.iloc[:6_000], frame.iloc[6_000:].reset_index(drop=True)
    return {
        "train": write_groups(train, folder / "train.parquet", 500),
        "valid": write_groups(valid, folder / "valid.parquet", 500),
        "valid_frame": valid,
        "train_frame": train,
    }


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """Four worker processes; DASK_SCHEDULER_ADDRESS points the driver at them."""
    from dask.distributed import LocalCluster

    with LocalCluster(
        n_workers=4, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    ) as c:
        yield c


@contextlib.contextmanager
def own_cluster(monkeypatch: pytest.MonkeyPatch, n: int = 2) -> Iterator[Any]:
    """A LocalCluster of its own, for a test that harms its workers; the driver pointed at it
    through DASK_SCHEDULER_ADDRESS. Yields a client of it."""
    from dask.distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=n, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
        ) as c,
        Client(c) as client,
    ):
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", c.scheduler_address)
        yield client


def _fit(splits: dict[str, Any], workers: int, model: LightGBMConfig = CFG, **compute: Any) -> Any:
    from tabml.compute.distributed import fit_dask

    cfg = DaskCompute(backend="dask", workers=workers, **{"connect_timeout_seconds": 5, **compute})
    return fit_dask(
        splits["train"], splits["valid"], splits["valid_frame"], SCHEMA, model, cfg, seed=7
    )


@pytest.fixture
def scheduler(cluster: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
    return str(cluster.scheduler_address)


def test_the_ranks_train_in_step_and_one_of_them_prints_the_rounds(
    splits: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Every rank would print the same progress line (interleaved on a shared terminal)."""
    slow = CFG.model_copy(update={"learning_rate": 0.02, "early_stopping_rounds": 300})
    with own_cluster(monkeypatch):  # started here, its workers write to the captured stderr
        _fit(splits, 2, slow)
    lines = [line for line in capfd.readouterr().err.splitlines() if "round 100 of" in line]
    assert len(lines) == 1, lines


def test_one_rank_is_single_machine_training_byte_for_byte(
    splits: dict[str, Any], scheduler: str
) -> None:
    from tabml.learning.model import fit

    model, history = _fit(splits, 1)
    local, local_history = fit(splits["train_frame"], splits["valid_frame"], SCHEMA, CFG, 7)
    assert model.booster.model_to_string() == local.booster.model_to_string()
    assert model.preprocessor == local.preprocessor
    assert history.best_iteration == local_history.best_iteration
    assert (history.valid_scores == local_history.valid_scores).all()
    assert history.workers == 1


def test_a_fixed_rank_count_gives_the_same_model_every_run(
    splits: dict[str, Any], scheduler: str
) -> None:
    from tabml.learning.metrics import roc_auc

    texts = {}
    for n in (2, 4):
        first, history = _fit(splits, n)
        again, _ = _fit(splits, n)
        text = first.booster.model_to_string()
        assert text == again.booster.model_to_string(), f"N={n}: two runs, two models"
        assert first.preprocessor == again.preprocessor
        # the run's hosts and ports are not part of the model
        assert "[machines: " not in text and "[local_listen_port: " not in text
        assert "[num_machines: " + str(n) + "]" in text
        assert history.workers == n and history.refit_rows == 7_500
        # with a refit the threshold's scores come from the early-stopped booster, on all of
        # valid, not from the refitted model that saw valid
        assert history.valid_scores is not None
        assert len(history.valid_scores) == len(splits["valid_frame"])
        texts[n] = (text, first)
    assert texts[2][0] != texts[4][0]  # LightGBM's bins depend on N (docs/scale.md)
    valid = splits["valid_frame"]
    y = valid["y"].to_numpy("float64")
    aucs = {n: roc_auc(y, m.predict(valid)) for n, (_, m) in texts.items()}
    assert abs(aucs[2] - aucs[4]) < 0.01, aucs


def test_a_cluster_smaller_than_the_rank_count_is_refused_naming_both(
    splits: dict[str, Any], scheduler: str
) -> None:
    start = time.monotonic()
    with pytest.raises(ConfigError, match=r"has 4 worker\(s\) after 2 s; compute.workers is 5"):
        _fit(splits, 5, connect_timeout_seconds=2)
    assert time.monotonic() - start < 20


def test_a_rank_that_dies_fails_the_run_naming_it(
    splits: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:

    from tabml.compute.distributed import workers

    # training that runs until the rank is killed: slow learning, patient early stopping
    endless = CFG.model_copy(
        update={
            "learning_rate": 0.0001,
            "num_boost_round": 100_000,
            "early_stopping_rounds": 100_000,
        }
    )
    with own_cluster(monkeypatch) as client:
        info = workers(client)
        victim = sorted(info, key=lambda a: str(info[a]["name"]))[1]
        pid = client.run(os.getpid, workers=[victim])[victim]

        def kill_once_training() -> None:
            def ranks_running(dask_scheduler: Any) -> int:
                return sum(
                    ts.state == "processing"
                    for key, ts in dask_scheduler.tasks.items()
                    if str(key).startswith("tabml-train-rank")
                )

            while client.run_on_scheduler(ranks_running) < 2:
                time.sleep(0.2)
            time.sleep(2)
            os.kill(pid, signal.SIGKILL)

        threading.Thread(target=kill_once_training, daemon=True).start()
        start = time.monotonic()
        with pytest.raises(TabmlError, match=r"rank 1") as err:
            _fit(splits, 2, model=endless)
        assert time.monotonic() - start < 60
    assert victim in str(err.value)


def _evaluate_stage(tmp: Path, splits: dict[str, Any], compute: dict[str, Any]) -> Path:
    """Train once on the small splits (locally), then run the evaluate stage with `compute`."""
    from tabml.stages import evaluate as evaluate_stage
    from tabml.stages import train as train_stage

    data = tmp / "data"
    if not data.exists():
        data.mkdir()
        valid = splits["valid_frame"]
        for name, part in (("train", splits["train_frame"]), ("valid", valid), ("test", valid)):
            write_groups(part, data / f"{name}.parquet", 250)
        write_groups(valid.iloc[:1_000], data / "production.parquet", 100)
        write_groups(valid.iloc[:800][["id", "y"]], data / "production_labels.parquet", 100)
        params = write_params(tmp / "params.yaml")
        tree = yaml.safe_load(params.read_text())
        tree["monitor"]["reference"]["max_rows"] = 1_000
        params.write_text(yaml.safe_dump(tree, sort_keys=False))
        train_stage.run(
            params,
            data,
            tmp / "model",
            tmp / "live",
            tmp / "reference.parquet",
            tmp / "valid_scores.parquet",
        )
    tree = yaml.safe_load((tmp / "params.yaml").read_text())
    tree["compute"] = compute
    params = tmp / f"params-{compute['backend']}.yaml"
    params.write_text(yaml.safe_dump(tree, sort_keys=False))
    out = tmp / f"evaluated-{compute['backend']}"
    evaluate_stage.run(
        params,
        tmp / "model",
        tmp / "valid_scores.parquet",
        data,
        data,
        out / "predictions",
        out / "metrics.json",
        out / "slices.json",
        out / "plots",
    )
    return out


def _same_files(a: Path, b: Path) -> None:
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_evaluate_scored_on_the_workers_writes_what_local_scoring_writes(
    tmp_path: Path, splits: dict[str, Any], scheduler: str
) -> None:
    local = _evaluate_stage(tmp_path, splits, {"backend": "local"})
    dask = _evaluate_stage(tmp_path, splits, {"backend": "dask", "workers": 4})
    _same_files(local, dask)
    assert "production" in json.loads((dask / "metrics.json").read_text())


class DieWhenScoring(WorkerPlugin):
    """A worker plugin: the worker at `victim` dies (as a killed process would) the moment it
    starts a task of `task` (scoring a row group, by default)."""

    def __init__(self, victim: str, task: str = "score_group") -> None:
        self.name = f"die-when-{task}"  # one plugin per task: two can be registered
        self.victim = victim
        self.task = task
        self.worker: Any = None

    def setup(self, worker: Any) -> None:
        self.worker = worker

    def teardown(self, worker: Any) -> None:
        pass

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        mine = self.worker.address == self.victim
        if mine and finish == "executing" and self.task in str(key):
            os._exit(1)


def test_a_worker_lost_while_scoring_costs_time_not_the_run(
    tmp_path: Path, splits: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scoring a row group has no other effect, so Dask runs a lost worker's tasks again
    elsewhere: the stage completes, with the same files."""

    from tabml.compute.distributed import workers

    local = _evaluate_stage(tmp_path, splits, {"backend": "local"})
    with own_cluster(monkeypatch) as client:
        victim = sorted(workers(client))[0]
        client.register_plugin(DieWhenScoring(victim))
        dask = _evaluate_stage(tmp_path, splits, {"backend": "dask", "workers": 1})
        # the victim did die scoring (its nanny started a new worker in its place)
        assert victim not in workers(client)
    _same_files(local, dask)


class NoSharedFiles(WorkerPlugin):
    """A worker plugin: the worker sees none of the driver's files (no shared volume)."""

    name = "no-shared-files"

    def setup(self, worker: Any) -> None:
        import tabml.compute.distributed

        def missing(path: str) -> Any:
            raise FileNotFoundError(2, "No such file or directory", path)

        tabml.compute.distributed._open = missing  # type: ignore[assignment]


def test_workers_that_cannot_see_the_files_fail_the_run_saying_where_data_must_be(
    splits: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:

    with own_cluster(monkeypatch) as client:
        client.register_plugin(NoSharedFiles())
        with pytest.raises(TabmlError, match="mount the workspace there") as err:
            _fit(splits, 2)
        assert splits["train"] in str(err.value)


# --- clean: the development rows typed on the workers ------------------------------------------


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data/raw as ingest writes it, in row groups of 500 rows: 2,400 development rows with
    re-deliveries across row groups, missing targets, and a production batch."""
    from tabml.stages import ingest

    folder = tmp_path_factory.mktemp("raw")
    frame = make_frame(2_400, seed=5).drop(columns=["email"])
    frame = pd.concat([frame, frame.iloc[[7, 480, 1_333]]], ignore_index=True)
    frame.loc[[30, 999, 2_000], "y"] = None
    (folder / "ext").mkdir()
    frame.to_csv(folder / "ext/dev.csv", index=False)
    make_frame(300, seed=6).drop(columns=["email", "y"]).to_csv(folder / "ext/prod.csv",
                                                                 index=False)  # fmt: skip
    schema = schema_dict()
    schema["pii"] = {}
    params = write_params(folder / "params.yaml", schema=schema)
    tree = yaml.safe_load(params.read_text())
    tree["dataset"]["sources"]["production"] = "prod.csv"
    params.write_text(yaml.safe_dump(tree, sort_keys=False))
    ingest.run(params, folder / "ext", folder / "data", batch_rows=500)
    return folder


def _clean(raw: Path, out: Path, compute: dict[str, Any]) -> Path:
    from tabml.stages import clean

    tree = yaml.safe_load((raw / "params.yaml").read_text())
    tree["compute"] = compute
    params = out.with_suffix(".yaml")
    params.write_text(yaml.safe_dump(tree, sort_keys=False))
    # batches of 1,200 rows cut the 500-row groups: ranges end at both kinds of boundary
    data = Path("data") if Path.cwd() == raw else raw / "data"
    clean.run(params, data, out, out / "quality.json", batch_rows=1_200, piece_rows=300)
    return out


def test_clean_on_the_workers_writes_what_local_clean_writes_for_any_worker_count(
    raw: Path, tmp_path: Path, scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # relative paths, as dvc.yaml gives them, from a folder the workers did not start in
    monkeypatch.chdir(raw)
    local = _clean(raw, tmp_path / "local", {"backend": "local"})
    for n in (1, 2, 4):
        _same_files(local, _clean(raw, tmp_path / f"dask-{n}", {"backend": "dask", "workers": n}))
    quality = json.loads((local / "quality.json").read_text())["development"]
    assert quality["rejected_by_reason"] == {"duplicate_id": 3, "missing_target": 3}


KEY = "k" * 40  # the pseudonymisation key (TABML_PII_KEY) of the ingest tests


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Parquet sources in row groups of 500 (development, with e-mail addresses to pseudonymise
    and re-deliveries across row groups) and 128 (production), and their params."""
    folder = tmp_path_factory.mktemp("sources")
    frame = make_frame(2_400, seed=5)
    frame = pd.concat([frame, frame.iloc[[7, 480, 1_333]]], ignore_index=True)
    (folder / "ext").mkdir()
    write_groups(frame, folder / "ext/dev.parquet", 500)
    write_groups(make_frame(300, seed=6).drop(columns=["y"]), folder / "ext/prod.parquet", 128)
    params = write_params(folder / "params.yaml", schema=schema_dict(), source="dev.parquet")
    tree = yaml.safe_load(params.read_text())
    tree["dataset"]["sources"]["production"] = "prod.parquet"
    params.write_text(yaml.safe_dump(tree, sort_keys=False))
    return folder


def _ingest(
    sources: Path, out: Path, compute: dict[str, Any], ext: str = "ext", email: str = "pseudonymise"
) -> Path:
    """ingest.run on the sources; `email`: what schema.pii does with the e-mail column."""
    from tabml.stages import ingest

    tree = yaml.safe_load((sources / "params.yaml").read_text())
    tree["compute"] = compute
    tree["dataset"]["schema"]["pii"] = {"email": email}
    params = out.with_suffix(".yaml")
    params.write_text(yaml.safe_dump(tree, sort_keys=False))
    # batches of 1,200 rows cut the 500-row groups: ranges end at both kinds of boundary
    ingest.run(params, sources / ext, out, batch_rows=1_200, piece_rows=300)
    return out


# pseudonymise: the key stays here, so the rows come back to be hashed and written; drop: no
# key, so each worker drops the column and encodes its batch's row group itself
BY_KEY = pytest.mark.parametrize("email", ["pseudonymise", "drop"])


@BY_KEY
def test_ingest_on_the_workers_writes_what_local_ingest_writes_for_any_worker_count(
    sources: Path, tmp_path: Path, scheduler: str, monkeypatch: pytest.MonkeyPatch, email: str
) -> None:
    import pyarrow.parquet as pq

    if email == "pseudonymise":
        monkeypatch.setenv("TABML_PII_KEY", KEY)
    local = _ingest(sources, tmp_path / "local", {"backend": "local"}, email=email)
    assert pq.ParquetFile(local / "development.parquet").metadata.num_row_groups == 3
    assert "user7@example.com" not in (local / "development.parquet").read_bytes().decode("latin-1")
    for n in (1, 2, 4):
        compute = {"backend": "dask", "workers": n}
        _same_files(local, _ingest(sources, tmp_path / f"dask-{n}", compute, email=email))


@BY_KEY
def test_a_bad_source_is_refused_on_the_workers_as_it_is_here(
    sources: Path, tmp_path: Path, scheduler: str, monkeypatch: pytest.MonkeyPatch, email: str
) -> None:
    """The same failures, counts, examples and file row numbers, whichever reads the rows:
    bad values in two row groups, and an id repeated with different values."""
    from tabml.core.schema import ValidationError

    if email == "pseudonymise":
        monkeypatch.setenv("TABML_PII_KEY", KEY)
    frame = pd.read_parquet(sources / "ext/dev.parquet")
    frame["amount"] = frame["amount"].astype(str)
    frame.loc[[3, 1_700], "amount"] = "lots"
    frame.loc[2_000, "ratio"] = 7.0  # above its max of 1
    frame.loc[2_100, "id"] = frame.loc[12, "id"]
    (tmp_path / "bad").mkdir()
    write_groups(frame, tmp_path / "bad/dev.parquet", 500)
    (tmp_path / "bad/prod.parquet").write_bytes((sources / "ext/prod.parquet").read_bytes())
    errors = []
    for compute in ({"backend": "local"}, {"backend": "dask", "workers": 2}):
        with pytest.raises(ValidationError) as caught:
            out = tmp_path / compute["backend"]
            _ingest(sources, out, compute, ext=str(tmp_path / "bad"), email=email)
        errors.append(str(caught.value))
    assert errors[0] == errors[1]
    assert "lots" in errors[0] and "duplicate id with different values" in errors[0]


def test_raw_personal_data_never_crosses_an_unencrypted_network(
    sources: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workers send the rows they read before ingest pseudonymises them: a remote
    scheduler must be tls://. Refused before anything is read or written (no connection)."""
    from tabml.core.errors import ConfigError

    monkeypatch.setenv("TABML_PII_KEY", KEY)
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://10.0.0.5:8786")
    with pytest.raises(ConfigError, match=r"\(email\).*tcp://10\.0\.0\.5:8786.*tls://"):
        _ingest(sources, tmp_path / "out", {"backend": "dask", "workers": 2})
    assert not (tmp_path / "out").exists()


def test_raw_personal_data_is_never_copied_to_the_object_store(
    sources: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With TABML_CLUSTER_STORAGE set, a source with personal data still raw is read by ingest
    itself: a copy in the store would be beyond `tabml forget`'s reach. The files are those of
    compute=local, and nothing reaches the store (nor the scheduler, which does not exist)."""
    monkeypatch.setenv("TABML_PII_KEY", KEY)
    store = tmp_path / "store"
    store.mkdir()
    monkeypatch.setenv("TABML_CLUSTER_STORAGE", store.as_uri())
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://10.0.0.5:8786")
    dask = _ingest(sources, tmp_path / "dask", {"backend": "dask", "workers": 2})
    assert "holds personal data (email) not yet pseudonymised" in capsys.readouterr().err
    assert list(store.iterdir()) == []
    monkeypatch.delenv("TABML_CLUSTER_STORAGE")
    _same_files(_ingest(sources, tmp_path / "local", {"backend": "local"}), dask)


def _split(clean_dir: Path, out: Path, compute: dict[str, Any], method: str) -> Path:
    from tabml.stages import split

    tree = yaml.safe_load(clean_dir.with_suffix(".yaml").read_text())
    tree["compute"] = compute
    tree["split"]["method"] = method
    params = out.with_suffix(".yaml")
    params.write_text(yaml.safe_dump(tree, sort_keys=False))
    split.run(params, clean_dir / "clean.parquet", out, out / "split.json")
    return out


@pytest.mark.parametrize("method", ["time", "stratified"])
def test_split_on_the_workers_writes_what_local_split_writes_for_any_worker_count(
    raw: Path, tmp_path: Path, scheduler: str, method: str
) -> None:
    """Workers read and deal the rows a row group at a time; this process writes them in file
    order. With the time method the first row groups hold no test row at all."""
    import pyarrow.parquet as pq

    cleaned = _clean(raw, tmp_path / "clean", {"backend": "local"})
    local = _split(cleaned, tmp_path / "local", {"backend": "local"}, method)
    assert pq.ParquetFile(cleaned / "clean.parquet").metadata.num_row_groups > 1
    assert pq.ParquetFile(local / "train.parquet").metadata.num_row_groups > 1
    for n in (1, 2, 4):
        dask = _split(cleaned, tmp_path / f"dask-{n}", {"backend": "dask", "workers": n}, method)
        _same_files(local, dask)


def _data_stage(
    stage: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Callable[[Path, dict[str, Any]], Path]:
    """The stage on the tests' data, as `run(out, compute)`."""
    if stage == "ingest":
        sources = request.getfixturevalue("sources")
        return lambda out, compute: _ingest(sources, out, compute)
    raw = request.getfixturevalue("raw")
    if stage == "clean":
        return lambda out, compute: _clean(raw, out, compute)
    cleaned = _clean(raw, tmp_path / "clean", {"backend": "local"})
    return lambda out, compute: _split(cleaned, out, compute, "time")


@pytest.mark.parametrize(
    ("stage", "task"),
    [("ingest", "check_range"), ("clean", "clean_batch"), ("split", "deal_group")],
)
def test_a_worker_lost_mid_task_in_a_data_stage_costs_time_not_the_run(
    stage: str, task: str, request: pytest.FixtureRequest, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The worker dies as it starts the stage's task; Dask runs the task again elsewhere and
    the files are those of one machine."""
    from tabml.compute.distributed import workers

    monkeypatch.setenv("TABML_PII_KEY", KEY)
    run = _data_stage(stage, request, tmp_path)
    local = run(tmp_path / "local", {"backend": "local"})
    with own_cluster(monkeypatch) as client:
        victim = sorted(workers(client))[0]
        client.register_plugin(DieWhenScoring(victim, task=task))
        dask = run(tmp_path / "dask", {"backend": "dask", "workers": 1})
        assert victim not in workers(client)
    _same_files(local, dask)


def _die() -> None:
    os._exit(1)


@pytest.mark.parametrize("held_by", ["shared", "scatter"])
def test_what_every_task_shares_outlives_the_worker_that_holds_it(
    monkeypatch: pytest.MonkeyPatch, held_by: str
) -> None:
    """The model (evaluate) and the scoring context and fitted calculators (monitor) reach the
    workers through `shared`: when the worker holding them dies, Dask makes them again. What
    `scatter(broadcast=True)` sends is kept in one copy by Dask's memory manager and is lost
    with it (dask/dask#11148), which failed a monitor run in make test; this shows both."""
    from tabml.compute.distributed import shared, workers

    with own_cluster(monkeypatch) as client:
        if held_by == "shared":
            held = shared(client, {"rows": 41})
        else:
            [held] = client.scatter([{"rows": 41}], broadcast=True)
        client.gather(held)
        time.sleep(2.5)  # the memory manager's round (every 2 s) drops the extra copies
        holders = client.who_has([held])[held.key]
        with contextlib.suppress(Exception):
            client.run(_die, workers=list(holders))
        deadline = time.monotonic() + 20
        while set(holders) & set(workers(client)) and time.monotonic() < deadline:
            time.sleep(0.1)
        client.wait_for_workers(2, timeout=20)  # the nannies start new workers

        def use(value: dict[str, int]) -> int:
            return value["rows"] + 1

        future = client.submit(use, held, pure=False)
        if held_by == "shared":
            assert future.result(timeout=30) == 42
        else:
            with pytest.raises(Exception):  # noqa: B017 (Dask's own cancellation types)
                future.result(timeout=30)


def _wait_policy() -> str | None:
    return os.environ.get("OMP_WAIT_POLICY")


def test_a_local_cluster_lets_lightgbm_threads_wait_passively_when_they_outnumber_the_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A local cluster's workers share this machine's cores: where their threads outnumber
    the cores, spinning OpenMP threads starved the other ranks (two ranks of two threads on 2
    cores took 0.55 s a boosting round on the default data, 6 minutes for train; 24 s
    passive, the same model), so its workers wait passively. Where they do not (one rank of
    two threads on 2 cores), waiting passively only slows each rank (25 s against 15 s)."""
    from tabml.compute.distributed import client

    cores = os.cpu_count() or 1
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    for workers, threads, passive in ((2, cores, True), (1, cores, False)):
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
        cfg = DaskCompute(backend="dask", workers=workers, connect_timeout_seconds=5)
        with client(cfg, threads=threads) as c:
            policies = c.run(_wait_policy)
        assert len(policies) == workers
        assert set(policies.values()) == ({"PASSIVE"} if passive else {None}), (workers, policies)
