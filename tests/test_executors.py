"""Executors give the serial answers, survive dying worker processes, and never drop a task."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import lookalike
from lookalike import pipeline
from lookalike.errors import ConfigError, ExecutorError, MissingDependencyError
from lookalike.executors import (
    ProcessExecutor,
    SerialExecutor,
    ThreadExecutor,
    LOCAL_PROCESSES_FROM,
    check_engine,
    get_executor,
    local_pool,
)
from lookalike.extraction import ExtractTask, extract_file
from lookalike.testing import write_dataset

# -- top-level task functions (worker processes import them by name) ---------------------


def square(x: int) -> int:
    return x * x


def square_or_die_once(task: tuple[int, str]) -> int:
    """Kill the worker process the first time any worker runs value 7."""
    value, marker = task
    if value == 7 and _first_time(marker):
        os._exit(1)
    return value * value


def square_or_die(task: tuple[int, str]) -> int:
    """Kill the worker process whenever it runs value 7 (a poison input)."""
    value, _ = task
    if value == 7:
        os._exit(1)
    return value * value


def extract_or_die_once(task: ExtractTask) -> object:
    """extract_file, except that the first worker to take a task dies on it."""
    if _first_time(os.path.join(os.path.dirname(task.root), "worker-died")):
        os._exit(1)
    return extract_file(task)


def _first_time(marker: str) -> bool:
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def lost_marker(task: tuple[int, str], exc: BaseException) -> int:
    return -task[0]


def canonical_groups(result: lookalike.ScanResult, root: str) -> list[tuple[str, ...]]:
    """Groups as sorted tuples of root-relative paths, keeper first: engine-independent."""

    def rel(path: str) -> str:
        return os.path.relpath(path, root) if "://" not in path else path[len(root) + 1 :]

    return sorted((rel(g.keeper), *sorted(rel(m.path) for m in g.members)) for g in result.groups)


# -- options ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("engine", "kwargs", "message"),
    [
        ("gpu", {}, "Unknown engine 'gpu'; choose one of: local, threads, processes, serial"),
        ("local", {"workers": 0}, "--workers must be at least 1, got 0."),
        ("processes", {"scheduler": "tcp://h:8786"}, "--scheduler only applies to --engine dask"),
        ("dask", {"scheduler": "tcp://h:8786", "workers": 2}, "--workers sets the size of a local"),
    ],
)
def test_bad_engine_options_are_refused_up_front(engine, kwargs, message, tmp_path) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_engine(engine, **kwargs)
    with pytest.raises(ConfigError):  # before any discovery or store is touched
        lookalike.scan([tmp_path / "missing"], db=tmp_path / "s.db", engine=engine, **kwargs)
    assert not (tmp_path / "s.db").exists()


def test_dask_engine_without_the_extra_names_it(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'lookalike\[dask\]'") as err:
        get_executor("dask", workers=1)
    assert err.value.extra == "dask"


# -- same answers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        SerialExecutor,
        lambda: ThreadExecutor(2, chunk_size=3),
        lambda: ProcessExecutor(2, chunk_size=3),
    ],
    ids=["serial", "threads", "processes"],
)
def test_every_task_gives_exactly_one_result(make) -> None:
    executor = make()
    try:
        assert sorted(executor.map_unordered(square, range(50))) == [x * x for x in range(50)]
        assert list(executor.map_unordered(square, [])) == []
    finally:
        executor.close()


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_local_engines_find_the_same_groups(seed, tmp_path) -> None:
    root = tmp_path / "images"
    write_dataset(root, n_originals=5, variants_per_original=2, n_distractors=3, rng=seed)
    found = {}
    for engine, workers in [("serial", 1), ("threads", 2), ("processes", 2)]:
        db = tmp_path / f"{engine}.db"
        result = lookalike.scan([root], db=db, engine=engine, workers=workers)
        assert not result.failures
        found[engine] = canonical_groups(result, str(root))
    assert found["serial"], "the dataset has duplicate groups"
    assert found["threads"] == found["serial"]
    assert found["processes"] == found["serial"]


# -- faults ----------------------------------------------------------------------------------


def test_process_pool_retries_the_shards_of_a_dead_worker(tmp_path) -> None:
    marker = str(tmp_path / "died")
    executor = ProcessExecutor(2, chunk_size=2)
    try:
        out = sorted(executor.map_unordered(square_or_die_once, [(x, marker) for x in range(20)]))
    finally:
        executor.close()
    assert Path(marker).exists(), "a worker really died"
    assert out == [x * x for x in range(20)]


def test_a_poison_shard_is_lost_alone_and_reported(tmp_path) -> None:
    executor = ProcessExecutor(2, chunk_size=2)
    tasks = [(x, "") for x in range(12)]
    try:
        out = sorted(executor.map_unordered(square_or_die, tasks, lost=lost_marker))
    finally:
        executor.close()
    # Value 7 shares its shard with 6: both come back through lost(); no other task does.
    assert out == sorted([-6, -7] + [x * x for x in range(12) if x not in (6, 7)])


def test_a_lost_shard_without_a_lost_callback_raises(tmp_path) -> None:
    executor = ProcessExecutor(1, chunk_size=4)
    try:
        with pytest.raises(ExecutorError, match="A shard of 4 tasks failed 2 time"):
            list(executor.map_unordered(square_or_die, [(x, "") for x in range(8)]))
    finally:
        executor.close()


def test_scan_survives_a_dying_worker_process(tmp_path, monkeypatch) -> None:
    root = tmp_path / "images"
    truth = write_dataset(root, n_originals=4, n_distractors=2, rng=5)
    reference = lookalike.scan([root], db=tmp_path / "ref.db", engine="serial")
    monkeypatch.setattr(pipeline, "extract_file", extract_or_die_once)
    result = lookalike.scan([root], db=tmp_path / "p.db", engine="processes", workers=2)
    assert (tmp_path / "worker-died").exists()
    assert not result.failures
    assert result.images == len(truth.images)
    assert canonical_groups(result, str(root)) == canonical_groups(reference, str(root))


def test_local_engine_uses_threads_for_small_runs_and_processes_for_large_ones() -> None:
    many = LOCAL_PROCESSES_FROM
    assert local_pool("local", tasks=many - 1, workers=2) == "threads"
    assert local_pool("local", tasks=many, workers=2) == "processes"
    assert local_pool("local", tasks=many, workers=1) == "threads"
    assert local_pool("local", tasks=many, workers=2, in_process=True) == "threads"
    assert local_pool("threads", tasks=many, workers=2) == "threads"
    small = get_executor("local", workers=2, tasks=10)
    large = get_executor("local", workers=2, tasks=many)
    try:
        assert isinstance(small, ThreadExecutor) and isinstance(large, ProcessExecutor)
    finally:
        small.close()
        large.close()
