"""Thumbnails made before the browser asks for them, in background threads.

A cold thumbnail costs a read, a digest check and a decode (10-40 ms of CPU), and a
groups page shows about 190 of them: made on request, the first page took seconds to
fill in. :class:`Prefetcher` makes them ahead of time, most urgent first:

* when ``serve`` starts: the thumbnails of the first groups pages, then of the group
  pages they link to (every size a page shows, from one decode per file);
* while a person browses: the next groups page and the group pages of the page shown,
  and the next group of a group page (the ``j`` key).

Work is a priority queue of *plans* (a callable that returns file jobs, run with the
store's connection) and *file jobs* ``(path, digest, sizes)``. The workers run at a
lower CPU priority than the request threads (``nice`` +10, Linux), so a request never
waits behind them: a thumbnail the browser asks for before a worker made it is made by
the request (at most the one file a worker is on is then decoded twice; both write the
same cache file atomically).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import threading
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .. import review
from ..errors import LookalikeError
from ..thumbnails import ensure_thumbnails
from . import queries
from .queries import GroupQuery

if TYPE_CHECKING:
    from .app import ReviewState

log = logging.getLogger(__name__)

NICE = 10
"""How much lower than the request threads the workers run (Linux thread niceness)."""
WORKERS = 1
"""Worker threads: one, so that on a small machine a core stays free for the pages and
the thumbnails a browser asks for before the prefetcher has made them."""


@dataclass(frozen=True)
class FileJob:
    """Make the thumbnails of one file at these sizes."""

    path: str
    digest: str
    sizes: tuple[int, ...]


Plan = Callable[[], Iterable[FileJob]]
"""Returns the file jobs of one page; called by a worker (it may use the store)."""


@dataclass(order=True)
class _Item:
    priority: int
    seq: int
    work: FileJob | Plan | None = field(compare=False)


class Prefetcher:
    """A small pool of background threads making cached thumbnails ahead of requests.

    Nothing runs until :meth:`start`; before it (and after :meth:`stop`) :meth:`plan`
    and :meth:`want` do nothing, so an app driven without a lifespan (tests,
    ``serve --get``) starts no thread.
    """

    def __init__(self, cache_dir: Path, workers: int | None = None) -> None:
        self.cache_dir = cache_dir
        self.workers = workers or WORKERS
        self._queue: queue.PriorityQueue[_Item] = queue.PriorityQueue()
        self._seq = itertools.count()
        self._wanted: dict[str, set[int]] = {}
        self._planned: set[Hashable] = set()
        self._guard = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._running = False
        self.made = 0  # thumbnails written
        self.failed = 0  # files that could not be read or decoded

    # -- control -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker threads (idempotent)."""
        with self._guard:
            if self._running:
                return
            self._running = True
            for i in range(self.workers):
                thread = threading.Thread(
                    target=self._work, name=f"lookalike-thumbs-{i}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the workers after the file each is making (idempotent)."""
        with self._guard:
            if not self._running:
                return
            self._running = False
            threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(_Item(-1, -1, None))
        for thread in threads:
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._running

    def idle(self) -> bool:
        """True when nothing is queued (the workers may still finish one file each)."""
        return self._queue.unfinished_tasks == 0

    def join(self) -> None:
        """Wait until every queued plan and file job is done."""
        self._queue.join()

    # -- requests ------------------------------------------------------------------------

    def plan(self, priority: int, plan: Plan, key: Hashable | None = None) -> None:
        """Queue a plan; lower ``priority`` runs sooner, equal ones in the order queued.
        A plan with a ``key`` queued before is not queued again (a page viewed twice)."""
        if not self._running:
            return
        if key is not None:
            with self._guard:
                if key in self._planned:
                    return
                self._planned.add(key)
        self._queue.put(_Item(priority, next(self._seq), plan))

    def want(self, priority: int, jobs: Iterable[FileJob]) -> int:
        """Queue file jobs not queued before; returns how many were queued."""
        if not self._running:
            return 0
        queued = 0
        with self._guard:
            for job in jobs:
                seen = self._wanted.setdefault(job.digest, set())
                sizes = tuple(s for s in job.sizes if s not in seen)
                if not sizes:
                    continue
                seen.update(sizes)
                self._queue.put(
                    _Item(priority, next(self._seq), FileJob(job.path, job.digest, sizes))
                )
                queued += 1
        return queued

    # -- workers -------------------------------------------------------------------------

    def _work(self) -> None:
        _lower_priority()
        while True:
            item = self._queue.get()
            try:
                if item.work is None:
                    return
                if isinstance(item.work, FileJob):
                    self._make(item.work)
                else:
                    self.want(item.priority, item.work())
            except Exception:  # noqa: BLE001 - a failed plan must not stop the worker
                log.exception("thumbnail prefetch plan failed")
            finally:
                self._queue.task_done()

    def _make(self, job: FileJob) -> None:
        if not self._running:
            return
        try:
            # Made already (by a request, or for another file with the same bytes): skipped.
            self.made += len(ensure_thumbnails(self.cache_dir, job.path, job.digest, job.sizes))
        except (LookalikeError, OSError, ValueError):
            # Gone, changed, unreadable or a read-only cache: the request path reports it.
            self.failed += 1


def _lower_priority() -> None:
    try:  # on Linux a thread is a task: this lowers this thread only
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
    except (AttributeError, OSError):  # pragma: no cover - other systems
        pass


# -- what the pages show: their plans ------------------------------------------------------

TILE_KEEPER, TILE_MEMBER, TILE_MEMBERS = 256, 128, 3
"""A groups page card: its keeper at 256 px and its first 3 members at 128 px."""
CARD, COMPARE = 512, 1024
"""A group page: every file at 512 px; the keeper and the first member also at 1024 px
(the compare view)."""
EAGER_CARDS, EAGER_FILES = 12, 4
"""Cards of a groups page, and files of a group page, whose images load at once (the
first screen); later ones load lazily, when scrolled near."""
PREFETCH_PAGES = 3
"""Groups pages (of the default listing) whose thumbnails are made when ``serve`` starts,
with the group pages they link to."""


def start_prefetch(state: ReviewState) -> None:
    """Start the prefetcher with the thumbnails of the first pages queued, most urgent
    first: each groups page's cards, then the group pages that page links to."""
    state.prefetch.start()
    groups = (state.index.builds, state.index.generation)
    for page in range(1, PREFETCH_PAGES + 1):
        q = GroupQuery(page=page)
        for priority, tiles in ((10 + 2 * page, True), (11 + 2 * page, False)):
            state.prefetch.plan(
                priority,
                lambda q=q, tiles=tiles: _page_jobs(state, q, tiles=tiles),
                key=(q, tiles, groups),
            )


def after_groups(state: ReviewState, q: GroupQuery) -> None:
    """After a groups page: its cards (if not made yet), its group pages, the next page."""
    if not state.prefetch.running:
        return
    groups = (state.index.builds, state.index.generation)  # a new key when groups change
    after = GroupQuery(**{**q.__dict__, "page": q.page + 1})
    for priority, page, tiles in ((0, q, True), (1, q, False), (2, after, True)):
        state.prefetch.plan(
            priority,
            lambda page=page, tiles=tiles: _page_jobs(state, page, tiles=tiles),
            key=(page, tiles, groups),
        )


def after_group(state: ReviewState, next_id: int | None) -> None:
    """After a group page: the next group's page (the ``j`` key)."""
    if state.prefetch.running and next_id is not None:
        groups = (state.index.builds, state.index.generation)
        state.prefetch.plan(
            0, lambda: _group_jobs(state, [next_id], tiles=False), key=(next_id, groups)
        )


def _page_jobs(state: ReviewState, q: GroupQuery, *, tiles: bool) -> list[FileJob]:
    with state.db():
        _, rows = state.index.page(q)
    return _group_jobs(state, [r["id"] for r in rows], tiles=tiles)


def _group_jobs(state: ReviewState, ids: list[int], *, tiles: bool) -> list[FileJob]:
    """The thumbnails a groups page shows of these groups (``tiles``: each file at its
    card size, plus 512 px from the same decode), or the rest their group pages show."""
    from .app import HttpError  # (app and views import this module)
    from .views import check_servable

    wanted: list[tuple[str, tuple[int, ...]]] = []
    with state.db() as store:
        found = queries.load_groups(store.conn, ids)
        for gid in ids:
            g = found.get(gid)
            if g is None:
                continue
            members = [m.path for m in g.members]
            if tiles:
                wanted.append((g.keeper, (TILE_KEEPER, CARD)))
                wanted.extend((p, (TILE_MEMBER, CARD)) for p in members[:TILE_MEMBERS])
            else:
                wanted.append((g.keeper, (CARD, COMPARE)))
                wanted.extend((p, (CARD, COMPARE)) for p in members[:1])
                wanted.extend((p, (CARD,)) for p in members[1:])
        run = store.last_run()
        refs = {}
        for path, _ in wanted:
            with contextlib.suppress(LookalikeError):
                refs[path] = review.file_by_path(store, path)
    jobs = []
    for path, sizes in wanted:
        ref = refs.get(path)
        if ref is None or not ref.digest:
            continue
        try:
            check_servable(ref, run)  # never read a file the UI would not serve
        except HttpError:
            continue
        jobs.append(FileJob(ref.path, ref.digest, sizes))
    return jobs
