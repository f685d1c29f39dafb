"""Where per-file work runs: in this process, a local pool, or a Dask cluster.

An executor maps a top-level, picklable function over tasks and yields results as they
finish (order not guaranteed). Tasks travel in shards (lists of tasks), so scheduling costs
are paid per shard and memory stays bounded: only a few shards per worker are in flight.
``shard_size`` overrides the executor's shard size for one map (1 for tasks that are
batches already).

A shard whose worker dies is retried. A shard that still cannot be run is not allowed to
abort the run or to vanish: each of its tasks is handed to the ``lost(task, exc)`` callback,
which turns it into a result (a failure row for a scan); without the callback the executor
raises :class:`~lookalike.errors.ExecutorError`. The serial executor is the reference:
every executor gives the same results on the same tasks, only in another order.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol, TypeVar

from .errors import ConfigError, ExecutorError

T = TypeVar("T")
R = TypeVar("R")

LostFn = Callable[[T, BaseException], R]
"""``lost(task, exc)``: the result to report for a task whose shard could not be run."""

logger = logging.getLogger(__name__)

ENGINES = ("local", "threads", "processes", "serial", "dask")
LOCAL_PROCESSES_FROM = 2000
"""``local`` runs this many tasks or more in a process pool, fewer in a thread pool.

Threads start at once but share the GIL with the client (unpickling nothing, but writing
the store and running Python around the decoders): on 100,000 small JPEGs two threads
reached 1,355 images/s and two processes 2,063 (``benchmarks/bench_engines.py``). A
process pool costs about half a second to start, which pays off from a few thousand files.
"""
SHARD_RETRIES = 1
"""How many times a shard whose worker died is submitted again before its tasks are lost."""


class Executor(Protocol):
    """Runs ``fn`` over ``tasks`` and yields results as they complete."""

    def map_unordered(
        self,
        fn: Callable[[T], R],
        tasks: Iterable[T],
        *,
        lost: LostFn[T, R] | None = None,
        shard_size: int | None = None,
    ) -> Iterator[R]: ...

    def close(self) -> None: ...


class SerialExecutor:
    """Runs everything in the calling process: the reference implementation."""

    def map_unordered(
        self,
        fn: Callable[[T], R],
        tasks: Iterable[T],
        *,
        lost: LostFn[T, R] | None = None,
        shard_size: int | None = None,
    ) -> Iterator[R]:
        """Yield ``fn(task)`` for each task, in order (nothing can be lost here)."""
        for task in tasks:
            yield fn(task)

    def close(self) -> None:
        """Nothing to release."""


class ThreadExecutor:
    """A pool of threads in this process.

    Pillow, OpenCV, hashlib and SQLite release the GIL while they work, so threads scale
    over cores for decoding without the cost of starting processes or pickling results.
    """

    def __init__(self, workers: int, *, chunk_size: int = 16) -> None:
        self.workers = workers
        self.chunk_size = chunk_size
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lookalike")

    def map_unordered(
        self,
        fn: Callable[[T], R],
        tasks: Iterable[T],
        *,
        lost: LostFn[T, R] | None = None,
        shard_size: int | None = None,
    ) -> Iterator[R]:
        """Yield ``fn(task)`` for each task as shards finish (threads never die alone)."""
        return _map_bounded(self, fn, tasks, lost, shard_size or self.chunk_size)

    def _submit(self, fn: Callable[[T], R], chunk: list[T]) -> Future[list[R]]:
        return self._pool.submit(run_shard, fn, chunk)

    def _recover(self) -> None:
        raise AssertionError("a thread pool does not break")  # pragma: no cover

    def close(self) -> None:
        """Stop the worker threads."""
        self._pool.shutdown(wait=True, cancel_futures=True)


class ProcessExecutor:
    """A local pool of worker processes, fed in chunks so memory stays bounded.

    When a worker process dies (killed, out of memory, a crash in a decoder) the pool is
    rebuilt and the shards that were in flight are submitted again, up to
    :data:`SHARD_RETRIES` times each.
    """

    def __init__(self, workers: int, *, chunk_size: int = 16) -> None:
        self.workers = workers
        self.chunk_size = chunk_size
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        if os.name == "nt":
            context = multiprocessing.get_context("spawn")
        else:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["lookalike.extraction"])
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=context)

    def map_unordered(
        self,
        fn: Callable[[T], R],
        tasks: Iterable[T],
        *,
        lost: LostFn[T, R] | None = None,
        shard_size: int | None = None,
    ) -> Iterator[R]:
        """Yield ``fn(task)`` for each task as shards finish; see the class docstring."""
        return _map_bounded(self, fn, tasks, lost, shard_size or self.chunk_size)

    def _submit(self, fn: Callable[[T], R], chunk: list[T]) -> Future[list[R]]:
        return self._pool.submit(run_shard, fn, chunk)

    def _recover(self) -> None:
        """Replace a broken pool (a worker died); shards in flight are resubmitted."""
        logger.warning("A worker process died; restarting the pool and retrying its shards.")
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()

    def close(self) -> None:
        """Stop the worker processes."""
        self._pool.shutdown(wait=True, cancel_futures=True)


_LocalPool = ThreadExecutor | ProcessExecutor


def _map_bounded(
    executor: _LocalPool,
    fn: Callable[[T], R],
    tasks: Iterable[T],
    lost: LostFn[T, R] | None,
    shard_size: int,
) -> Iterator[R]:
    """Submit chunks of tasks, keeping at most a few chunks per worker in flight.

    When a worker process dies, every shard in flight fails with the pool. They are queued
    again and re-run one at a time, alone in a fresh pool, so a shard that breaks the pool
    on its own is known to be the culprit: it is lost once it has had its retries, and the
    shards that merely shared the pool with it are not.
    """
    chunks = _chunks(tasks, shard_size)
    pending: dict[Future[list[R]], tuple[list[T], int]] = {}
    retry: deque[tuple[list[T], int]] = deque()

    def top_up() -> None:
        if retry:
            if not pending:
                chunk, attempt = retry.popleft()
                pending[executor._submit(fn, chunk)] = (chunk, attempt)
            return
        while len(pending) < executor.workers * 4:
            chunk = next(chunks, None)
            if chunk is None:
                return
            pending[executor._submit(fn, chunk)] = (chunk, 0)

    top_up()
    while pending:
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        alone = len(pending) == 1
        broken: BrokenProcessPool | None = None
        for fut in done:
            chunk, attempt = pending.pop(fut)
            try:
                results = fut.result()
            except BrokenProcessPool as exc:
                broken = exc
                if alone and attempt >= SHARD_RETRIES:
                    yield from lost_results(chunk, exc, lost, attempts=attempt + 1)
                else:
                    retry.append((chunk, attempt + 1))
                continue
            yield from results
        if broken is not None:
            retry.extend((chunk, attempt + 1) for chunk, attempt in pending.values())
            pending.clear()
            executor._recover()
        top_up()


def run_shard(fn: Callable[[T], R], shard: list[T]) -> list[R]:
    """Run ``fn`` over one shard of tasks (the unit every executor ships to a worker)."""
    return [fn(task) for task in shard]


def lost_results(
    shard: list[T], exc: BaseException, lost: LostFn[T, R] | None, *, attempts: int
) -> list[R]:
    """Turn every task of a shard that could not be run into a result, or raise.

    Raises:
        ExecutorError: no ``lost`` callback was given.
    """
    logger.warning(
        "A shard of %d tasks failed %d time(s) (%s: %s); reporting its tasks as failed.",
        len(shard), attempts, type(exc).__name__, exc,
    )  # fmt: skip
    if lost is None:
        raise ExecutorError(
            f"A shard of {len(shard)} tasks failed {attempts} time(s): {type(exc).__name__}: {exc}"
        ) from exc
    return [lost(task, exc) for task in shard]


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def default_workers() -> int:
    """Worker processes to use when none is asked for: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def check_engine(engine: str, *, workers: int | None = None, scheduler: str | None = None) -> None:
    """Validate an engine and its options before any work starts.

    Raises:
        ConfigError: unknown engine, ``workers < 1``, ``scheduler`` without ``dask``, or
            both ``scheduler`` and ``workers`` (a running cluster has its own workers).
    """
    if engine not in ENGINES:
        raise ConfigError(f"Unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}.")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}.")
    if scheduler is not None and engine != "dask":
        raise ConfigError(
            f"--scheduler only applies to --engine dask (got --engine {engine}). "
            "Add --engine dask or drop --scheduler."
        )
    if scheduler is not None and workers is not None:
        raise ConfigError(
            "--workers sets the size of a local Dask cluster; with --scheduler the "
            "cluster's own workers are used. Drop --workers or --scheduler."
        )


def local_pool(engine: str, *, tasks: int, workers: int, in_process: bool = False) -> str:
    """The pool that ``local`` means for a run: ``processes`` or ``threads``.

    ``local`` is a process pool for :data:`LOCAL_PROCESSES_FROM` tasks or more on more
    than one worker, and a thread pool otherwise, or whenever the tasks read data that
    lives in this process only (``in_process``: an fsspec ``memory://`` root), or when
    worker processes could not start (the main script is not a file, e.g. ``python -``).
    Other engines name their pool themselves.
    """
    if engine != "local":
        return engine
    if in_process or workers < 2 or tasks < LOCAL_PROCESSES_FROM or not _can_start_processes():
        return "threads"
    return "processes"


def _can_start_processes() -> bool:
    """False when the main module names a file that does not exist (``python -`` reads
    ``<stdin>``): forkserver and spawn workers re-import the main script and would die."""
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    return main_file is None or os.path.exists(main_file)


def get_executor(
    engine: str,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    tasks: int = 0,
    in_process: bool = False,
) -> Executor:
    """Build the executor named ``engine``.

    ``local`` (default) is a local process pool for large runs and a thread pool for small
    ones (:func:`local_pool`; ``tasks`` is the number of tasks to come); ``threads`` a
    thread pool; ``processes`` a local process pool; ``serial`` runs in the calling
    thread; ``dask`` runs on a Dask cluster: the one at ``scheduler``
    (``tcp://HOST:8786``), or a local cluster of ``workers`` processes. Local engines use
    ``workers`` (default: the usable CPUs).

    Raises:
        ConfigError: see :func:`check_engine`.
        MissingDependencyError: ``dask`` without the ``dask`` extra installed.
        ExecutorError: the Dask scheduler cannot be reached, or its workers cannot run
            this version of lookalike.
    """
    check_engine(engine, workers=workers, scheduler=scheduler)
    if engine == "dask":
        from .distributed import DaskExecutor

        return DaskExecutor(scheduler=scheduler, workers=workers)
    n = workers if workers is not None else default_workers()
    if engine == "serial":
        return SerialExecutor()
    if local_pool(engine, tasks=tasks, workers=n, in_process=in_process) == "threads":
        return ThreadExecutor(n)
    return ProcessExecutor(n)
