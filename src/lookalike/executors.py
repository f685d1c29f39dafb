"""Where per-file work runs: in this process, or in a local process pool.

An executor maps a top-level function over tasks and yields results as they finish
(order not guaranteed). Distributed engines plug in behind the same interface.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from typing import Protocol, TypeVar

from .errors import ConfigError

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    """Runs ``fn`` over ``tasks`` and yields results as they complete."""

    def map_unordered(self, fn: Callable[[T], R], tasks: Iterable[T]) -> Iterator[R]: ...

    def close(self) -> None: ...


class SerialExecutor:
    """Runs everything in the calling process: the reference implementation."""

    def map_unordered(self, fn: Callable[[T], R], tasks: Iterable[T]) -> Iterator[R]:
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

    def map_unordered(self, fn: Callable[[T], R], tasks: Iterable[T]) -> Iterator[R]:
        return _map_bounded(self._pool, self.workers, self.chunk_size, fn, tasks)

    def close(self) -> None:
        """Stop the worker threads."""
        self._pool.shutdown(wait=True, cancel_futures=True)


class ProcessExecutor:
    """A local pool of worker processes, fed in chunks so memory stays bounded."""

    def __init__(self, workers: int, *, chunk_size: int = 16) -> None:
        self.workers = workers
        self.chunk_size = chunk_size
        if os.name == "nt":
            context = multiprocessing.get_context("spawn")
        else:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["lookalike.extraction"])
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)

    def map_unordered(self, fn: Callable[[T], R], tasks: Iterable[T]) -> Iterator[R]:
        return _map_bounded(self._pool, self.workers, self.chunk_size, fn, tasks)

    def close(self) -> None:
        """Stop the worker processes."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def _map_bounded(
    pool: ThreadPoolExecutor | ProcessPoolExecutor,
    workers: int,
    chunk_size: int,
    fn: Callable[[T], R],
    tasks: Iterable[T],
) -> Iterator[R]:
    """Submit chunks of tasks, keeping at most a few chunks per worker in flight."""
    pending: set[Future[list[R]]] = set()
    for chunk in _chunks(tasks, chunk_size):
        pending.add(pool.submit(_run_chunk, fn, chunk))
        if len(pending) >= workers * 4:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield from fut.result()
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for fut in done:
            yield from fut.result()


def _run_chunk(fn: Callable[[T], R], chunk: list[T]) -> list[R]:
    return [fn(task) for task in chunk]


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


ENGINES = ("local", "threads", "processes", "serial")


def get_executor(engine: str, *, workers: int | None = None) -> Executor:
    """Build the executor named ``engine``.

    ``local`` (default) is a thread pool; ``processes`` a local process pool; ``serial``
    runs in the calling thread. Each uses ``workers`` (default: the usable CPUs).
    """
    n = workers if workers is not None else default_workers()
    if n < 1:
        raise ConfigError(f"--workers must be at least 1, got {n}.")
    if engine == "serial":
        return SerialExecutor()
    if engine in ("local", "threads"):
        return ThreadExecutor(n)
    if engine == "processes":
        return ProcessExecutor(n)
    raise ConfigError(f"Unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}.")
