"""The Dask engine: same groups as the serial reference, and faults cost at most a shard."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

import dask  # noqa: E402  (after the skip: the dask extra may be missing)

import lookalike  # noqa: E402
from lookalike import distributed as lk_distributed  # noqa: E402
from lookalike import matching, pipeline  # noqa: E402
from lookalike.errors import ExecutorError  # noqa: E402
from lookalike.extraction import ExtractOutcome, ExtractTask, extract_file  # noqa: E402
from lookalike.matching import JudgeTask, judge_batch  # noqa: E402
from lookalike.testing import write_dataset  # noqa: E402

pytestmark = pytest.mark.dask

POISON = "poison.jpg"

# -- top-level task functions (Dask workers import this module by name) ------------------------


def extract_or_die_once(task: ExtractTask) -> ExtractOutcome:
    """extract_file, except that the first worker to take a task dies on it."""
    if _first_time(os.path.join(os.path.dirname(task.root), "worker-died")):
        os._exit(1)
    return extract_file(task)


def extract_or_die_on_poison(task: ExtractTask) -> ExtractOutcome:
    """extract_file, except that one file kills its worker every time."""
    if os.path.basename(task.path) == POISON:
        os._exit(1)
    return extract_file(task)


def extract_without_store(task: ExtractTask) -> ExtractOutcome:
    """extract_file, refusing tasks that point a (remote) worker at the client's store."""
    if task.store_path is not None:
        raise AssertionError(f"a remote worker was given the store {task.store_path!r}")
    return extract_file(task)


def judge_without_store(task: JudgeTask) -> list:
    """judge_batch, refusing pair checks that point a (remote) worker at the client's store."""
    if task.store_path is not None or not task.rows:
        raise AssertionError(f"a remote worker was sent to the store {task.store_path!r}")
    REMOTE_JUDGE_TASKS.append(len(task.asks))
    return judge_batch(task)


REMOTE_JUDGE_TASKS: list[int] = []  # the test's cluster runs its workers in this process


def _first_time(marker: str) -> bool:
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def canonical_groups(result: lookalike.ScanResult, root: str) -> list[tuple[str, ...]]:
    """Groups as sorted tuples of root-relative paths, keeper first: engine-independent."""

    def rel(path: str) -> str:
        return os.path.relpath(path, root) if "://" not in path else path[len(root) + 1 :]

    return sorted((rel(g.keeper), *sorted(rel(m.path) for m in g.members)) for g in result.groups)


@pytest.fixture
def images(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    write_dataset(root, n_originals=5, variants_per_original=2, n_distractors=3, rng=21)
    return root


def _serial(root: Path | str, db: Path) -> list[tuple[str, ...]]:
    return canonical_groups(lookalike.scan([root], db=db, engine="serial"), str(root))


# -- same answers ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_dask_local_cluster_finds_the_serial_groups(seed: int, tmp_path: Path) -> None:
    root = tmp_path / "images"
    write_dataset(root, n_originals=5, variants_per_original=2, n_distractors=3, rng=seed)
    result = lookalike.scan([root], db=tmp_path / "d.db", engine="dask", workers=2)
    assert not result.failures
    groups = canonical_groups(result, str(root))
    assert groups and groups == _serial(root, tmp_path / "s.db")


def test_remote_scheduler_workers_never_get_the_store(images: Path, tmp_path, monkeypatch) -> None:
    reference = _serial(images, tmp_path / "s.db")
    monkeypatch.setattr(pipeline, "extract_file", extract_without_store)
    monkeypatch.setattr(matching, "judge_batch", judge_without_store)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
    ) as cluster:
        first = lookalike.scan(
            [images], db=tmp_path / "r.db", engine="dask", scheduler=cluster.scheduler_address
        )
        again = lookalike.scan(
            [images], db=tmp_path / "r.db", engine="dask", scheduler=cluster.scheduler_address
        )
    assert not first.failures
    assert canonical_groups(first, str(images)) == reference
    assert REMOTE_JUDGE_TASKS, "pairs were checked on the cluster, with the images shipped"
    assert again.stats["files_unchanged"] == first.images and again.stats["files_extracted"] == 0


def test_file_urls_are_read_on_the_workers(images: Path, tmp_path: Path) -> None:
    pytest.importorskip("fsspec")
    url = f"file://{images}"
    result = lookalike.scan([url], db=tmp_path / "u.db", engine="dask", workers=2)
    assert not result.failures
    assert all(g.keeper.startswith(url + "/") for g in result.groups)
    assert canonical_groups(result, url) == _serial(images, tmp_path / "s.db")


# -- faults ----------------------------------------------------------------------------------


def test_a_worker_killed_mid_scan_costs_nothing(images: Path, tmp_path, monkeypatch) -> None:
    reference = _serial(images, tmp_path / "s.db")
    monkeypatch.setattr(pipeline, "extract_file", extract_or_die_once)
    monkeypatch.setattr(lk_distributed, "SHARD_SIZE", 4)
    result = lookalike.scan([images], db=tmp_path / "k.db", engine="dask", workers=2)
    assert (tmp_path / "worker-died").exists(), "a worker really died"
    assert not result.failures
    assert canonical_groups(result, str(images)) == reference


def test_a_shard_that_keeps_killing_workers_becomes_failure_rows(
    images: Path, tmp_path, monkeypatch
) -> None:
    (images / POISON).write_bytes((images / _first_jpeg(images)).read_bytes())
    monkeypatch.setattr(pipeline, "extract_file", extract_or_die_on_poison)
    monkeypatch.setattr(lk_distributed, "SHARD_SIZE", 4)
    # Fail fast: no re-run of a task whose worker died, one task per worker thread at a time.
    config = {
        "distributed.scheduler.allowed-failures": 0,
        "distributed.scheduler.worker-saturation": 1.0,
    }
    with dask.config.set(config):
        result = lookalike.scan([images], db=tmp_path / "p.db", engine="dask", workers=2)
    lost = [f for f in result.failures if f.stage == "worker"]
    assert str(images / POISON) in {f.path for f in lost}
    assert 1 <= len(lost) <= 4, "only the poison file's shard is lost"
    assert len(result.failures) == len(lost)
    assert all("KilledWorker" in f.error for f in lost)
    assert result.images + len(lost) == len(list(_files(images)))  # nothing else is missing


def test_an_interrupted_dask_scan_resumes_from_the_store(tmp_path: Path) -> None:
    root = tmp_path / "images"
    write_dataset(root, n_originals=14, variants_per_original=2, n_distractors=4, rng=8)
    total = len(list(_files(root)))

    def stop_after_first_batch(stage: str, done: int, total: int | None) -> bool:
        return not (stage == "extract" and done > 0)

    with pytest.raises(KeyboardInterrupt):
        lookalike.scan(
            [root], db=tmp_path / "i.db", engine="dask", workers=2, progress=stop_after_first_batch
        )
    result = lookalike.scan([root], db=tmp_path / "i.db", engine="dask", workers=2)
    assert 0 < result.stats["files_unchanged"] < total
    assert result.stats["files_unchanged"] + result.stats["files_extracted"] == total
    assert not result.failures and result.images == total
    assert canonical_groups(result, str(root)) == _serial(root, tmp_path / "s.db")


def test_an_unreachable_scheduler_is_one_clear_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(lk_distributed, "_CONNECT_TIMEOUT_S", 1)
    with pytest.raises(
        ExecutorError, match=r"Cannot reach the Dask scheduler 'tcp://127\.0\.0\.1:9'"
    ):
        lk_distributed.DaskExecutor(scheduler="tcp://127.0.0.1:9")


def _first_jpeg(root: Path) -> str:
    return next(str(p.relative_to(root)) for p in sorted(root.rglob("*.jpg")))


def _files(root: Path):
    return (p for p in root.rglob("*") if p.is_file())
