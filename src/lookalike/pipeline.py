"""The scan: discover -> extract (decode + features) -> match -> group -> store.

:func:`scan` is the library entry point behind ``lookalike scan``. It is incremental: a
file whose path, size and mtime are unchanged is not read again, a file whose content is
already featured (a rename, a copy) is read and digested but not decoded, and pair verdicts
are cached. Results are committed in small batches, so an interrupted scan resumes.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .decoding import DEFAULT_MAX_PIXELS, decode_full_pixels, richness_of
from .discovery import (
    DiscoveryOptions,
    FileEntry,
    IncludeTally,
    Skipped,
    discover_files,
    normalise_roots,
)
from .embeddings import EmbeddingSettings
from .errors import ConfigError, DecodeError
from .executors import Executor, SerialExecutor, ThreadExecutor, check_engine, get_executor
from .extraction import (
    ExtractOutcome,
    ExtractTask,
    extract_file,
    release_store_lookups,
    worker_failure,
)
from .features import corner_fill_share
from .grouping import FileInfo, KeeperPolicy, build_groups
from .matching import MatchSettings, PairJudge, find_pairs
from .records import Failure, Group, Pair
from .remote import lives_in_this_process, read_bytes
from .store import Store, default_store_path, scan_lock

_BATCH = 32
_BATCH_SECONDS = 1.0


@dataclass(frozen=True)
class ScanSettings:
    """Everything that shapes a scan's result (stored with each run)."""

    discovery: DiscoveryOptions = DiscoveryOptions()
    match: MatchSettings = MatchSettings()
    keeper_rules: tuple[str, ...] = KeeperPolicy().rules
    reference_roots: tuple[str, ...] = ()
    max_pixels: int = DEFAULT_MAX_PIXELS
    embeddings: EmbeddingSettings | None = None  # learned embeddings: extra candidates


@dataclass(frozen=True)
class ScanResult:
    """What a scan found; :func:`lookalike.report.to_dict` turns it into the JSON schema."""

    roots: tuple[str, ...]
    store_path: str
    images: int
    failures: tuple[Failure, ...]
    skipped: tuple[Failure, ...]
    groups: tuple[Group, ...]
    pairs: tuple[Pair, ...]
    stats: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # one line each, e.g. an --include that selected nothing


class Stage:
    """Names of the scan steps reported to a progress callback."""

    DISCOVER = "discover"
    EXTRACT = "extract"
    MATCH = "match"


def scan(
    roots: Sequence[str | os.PathLike[str]],
    *,
    db: str | os.PathLike[str] | None = None,
    settings: ScanSettings = ScanSettings(),
    engine: str = "local",
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Any = None,
    wait: bool = False,
) -> ScanResult:
    """Scan folders for duplicate images and return groups with a keeper each.

    One scan at a time runs on a store (:func:`lookalike.store.scan_lock`); the review
    UI and ``export`` can still write a person's marks meanwhile.

    Args:
        roots: folders to scan; several roots are several datasets (leakage is reported).
        db: SQLite store path; default :func:`lookalike.store.default_store_path`.
        settings: discovery, matching and keeper options.
        engine: ``local`` (threads), ``processes``, ``serial`` or ``dask``.
        workers: parallel workers (default: usable CPUs); for ``dask`` without
            ``scheduler``, the processes of a local cluster.
        scheduler: address of a Dask scheduler (``tcp://HOST:8786``) for ``dask``. Its
            workers never open the store, so content already featured under another
            path is decoded again there; they must be able to read the paths (URLs or a
            shared folder).
        progress: optional ``progress(stage, done, total)`` callback; ``total`` is
            ``None`` while unknown. Returning ``False`` cancels the scan.
        wait: when another scan is using the store, wait for it to finish instead of
            raising :class:`~lookalike.errors.StoreBusyError`.

    Raises:
        InputNotFoundError: a root does not exist.
        ConfigError: bad options.
        StoreBusyError: another scan is using the store (and ``wait`` is false).
        StoreError: the store cannot be opened or written.
    """
    check_engine(engine, workers=workers, scheduler=scheduler)
    abs_roots = normalise_roots(roots)
    reference = tuple(normalise_roots(settings.reference_roots)) if settings.reference_roots else ()
    unknown = [r for r in reference if r not in abs_roots]
    if unknown:
        raise ConfigError(
            f"--reference {unknown[0]!r} is not one of the scanned roots; pass it as a root too."
        )
    settings = _with_reference(settings, reference)
    store_path = os.fspath(db) if db is not None else os.fspath(default_store_path(abs_roots))
    started = time.perf_counter()
    pool = _Pool(engine, workers, scheduler, any(lives_in_this_process(r) for r in abs_roots))
    with scan_lock(store_path, wait=wait), Store(store_path) as store, pool:
        run_id = store.start_run(abs_roots, _settings_dict(settings))
        counts, warnings = _extract_all(store, abs_roots, run_id, settings, pool, progress)
        store.forget_unseen(abs_roots, run_id)
        extracted = time.perf_counter()
        result = _match_and_group(store, abs_roots, run_id, settings, pool, progress)
        store.finish_run(run_id)
    stats = {
        **counts,
        "extract_seconds": round(extracted - started, 3),
        "match_seconds": round(time.perf_counter() - extracted, 3),
    }
    return ScanResult(
        roots=tuple(abs_roots),
        store_path=store_path,
        images=result["images"],
        failures=result["failures"],
        skipped=result["skipped"],
        groups=result["groups"],
        pairs=result["pairs"],
        stats=stats,
        warnings=tuple(warnings),
    )


def _with_reference(settings: ScanSettings, reference: tuple[str, ...]) -> ScanSettings:
    from dataclasses import replace

    return replace(settings, reference_roots=reference)


def _settings_dict(settings: ScanSettings) -> dict[str, Any]:
    return asdict(settings)


def _report(progress: Any, stage: str, done: int, total: int | None) -> None:
    if progress is not None and progress(stage, done, total) is False:
        raise KeyboardInterrupt("scan cancelled by the progress callback")


class _Pool:
    """The scan's executor, started on first use and shared by extraction and matching
    (a process pool or a Dask cluster starts once); closed with the scan."""

    def __init__(
        self, engine: str, workers: int | None, scheduler: str | None, in_process: bool
    ) -> None:
        self.engine, self.workers, self.scheduler = engine, workers, scheduler
        self.in_process = in_process
        self._executor: Executor | None = None

    def get(self, tasks: int) -> Executor:
        """The executor (``tasks``, the work to come, picks ``local``'s pool)."""
        if self._executor is None:
            self._executor = get_executor(
                self.engine,
                workers=self.workers,
                scheduler=self.scheduler,
                tasks=tasks,
                in_process=self.in_process,
            )
        return self._executor

    def for_matching(self, images: int) -> Executor | None:
        """The executor to verify pairs on, when it has worker processes (a process pool,
        Dask); ``None`` for threads or serial: pair checks are many small NumPy and
        OpenCV calls, which threads slow down (GIL hand-offs)."""
        if isinstance(self._executor, ThreadExecutor) and self.engine == "local":
            self._executor.close()  # few files changed, many to match: ``local`` decides again
            self._executor = None
        executor = self.get(images)
        return None if isinstance(executor, (ThreadExecutor, SerialExecutor)) else executor

    def __enter__(self) -> _Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._executor is not None:
            self._executor.close()
            self._executor = None


def _extract_all(
    store: Store,
    roots: list[str],
    run_id: int,
    settings: ScanSettings,
    pool: _Pool,
    progress: Any,
) -> tuple[dict[str, int], list[str]]:
    """Discover files and extract the new or changed ones, committing in batches.

    Returns counts and warnings (``--include`` patterns that selected no file)."""
    known = store.known_files(roots)
    includes = IncludeTally(settings.discovery.include)
    unchanged: list[str] = []
    tasks: list[ExtractTask] = []
    skipped_rows: list[tuple[Any, ...]] = []
    for item in discover_files(roots, settings.discovery):
        if isinstance(item, Skipped):
            root = _root_of(item.path, roots)
            skipped_rows.append(
                (item.path, root, 0, 0, None, "skipped", "discover", item.reason, run_id)
            )
            continue
        includes.see(item.relpath)
        if _is_unchanged(item, known.get(item.path)):
            unchanged.append(item.path)
        else:
            tasks.append(_task(item, settings, None if pool.scheduler else store))
        _report(progress, Stage.DISCOVER, len(unchanged) + len(tasks), None)
    found = len(unchanged) + len(tasks)
    _report(progress, Stage.DISCOVER, found, found)  # discovery over: the count is the total
    store.touch_files(unchanged, run_id)
    store.save_files(skipped_rows, [])
    done = 0
    _report(progress, Stage.EXTRACT, 0, len(tasks))
    if tasks:
        executor = pool.get(len(tasks))
        try:
            outcomes = executor.map_unordered(extract_file, tasks, lost=worker_failure)
            for batch in _batches(outcomes):
                _save_outcomes(store, batch, run_id)
                done += len(batch)
                _report(progress, Stage.EXTRACT, done, len(tasks))
        finally:
            release_store_lookups()
    counts = {"files_unchanged": len(unchanged), "files_extracted": len(tasks)}
    return counts, includes.warnings()


def _root_of(path: str, roots: list[str]) -> str:
    for root in roots:
        if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
            return root
    return roots[0]


def _is_unchanged(entry: FileEntry, known: tuple[int, int, str | None, str] | None) -> bool:
    return known is not None and known[0] == entry.size and known[1] == entry.mtime_ns


def _task(entry: FileEntry, settings: ScanSettings, store: Store | None) -> ExtractTask:
    return ExtractTask(
        path=entry.path,
        root=entry.root,
        size=entry.size,
        mtime_ns=entry.mtime_ns,
        max_pixels=settings.max_pixels,
        store_path=os.fspath(store.path) if store is not None else None,
    )


def _batches(outcomes: Iterator[ExtractOutcome]) -> Iterator[list[ExtractOutcome]]:
    batch: list[ExtractOutcome] = []
    last = time.monotonic()
    for outcome in outcomes:
        batch.append(outcome)
        if len(batch) >= _BATCH or time.monotonic() - last > _BATCH_SECONDS:
            yield batch
            batch, last = [], time.monotonic()
    if batch:
        yield batch


def _save_outcomes(store: Store, batch: list[ExtractOutcome], run_id: int) -> None:
    rows = [
        (
            o.task.path,
            o.task.root,
            o.task.size,
            o.task.mtime_ns,
            o.digest,
            o.status,
            o.stage,
            o.error,
            run_id,
        )
        for o in batch
    ]
    store.save_files(rows, [o.image for o in batch if o.image is not None])


def _match_and_group(
    store: Store,
    roots: list[str],
    run_id: int,
    settings: ScanSettings,
    pool: _Pool,
    progress: Any,
) -> dict[str, Any]:
    files = store.files_of_run(run_id)
    ok = [f for f in files if f["status"] == "ok"]
    failures = tuple(
        Failure(f["path"], f["stage"] or "read", f["error"] or "")
        for f in files
        if f["status"] == "failed"
    )
    skipped = tuple(
        Failure(f["path"], f["stage"] or "discover", f["error"] or "")
        for f in files
        if f["status"] == "skipped"
    )
    fingerprint = _inputs_fingerprint(ok, settings, store)
    if store.get_meta("groups_fingerprint") == fingerprint:  # nothing changed: reuse results
        _report(progress, Stage.MATCH, 0, 0)  # no pair to check
        return {
            "images": len(ok),
            "failures": failures,
            "skipped": skipped,
            "groups": tuple(store.load_groups()),
            "pairs": tuple(store.load_pairs()),
        }
    digests = sorted({f["digest"] for f in ok})
    rows = store.load_images(digests)
    paths_by_digest: dict[str, str] = {}
    for f in ok:
        paths_by_digest.setdefault(f["digest"], f["path"])
    key = settings.match.cache_key()
    workers = pool.workers
    match_workers = 1 if pool.engine == "serial" else workers
    pixel_digests = _PixelDigests(rows, paths_by_digest)
    blocked = store.not_duplicate_pairs()
    checks = _MatchProgress(progress)
    with store.verdict_writer(key) as verdicts:  # committed as they come: a kill keeps them
        judge = PairJudge(
            rows,
            settings.match,
            store.load_verdicts(key),
            pixel_digests,
            workers=match_workers,
            store_path=None if pool.scheduler else os.fspath(store.path),
            on_verdict=verdicts.add,
        )
        checks.update(0, 0)
        extra = _embedding_candidates(rows, ok, settings, workers)
        found = find_pairs(
            rows,
            settings.match,
            judge,
            workers=match_workers,
            extra=extra,
            executor=pool.for_matching(len(rows)),
            progress=checks.update,
        )
        pairs = [p for p in found if (p.a, p.b) not in blocked]
        groups = _group(store, ok, pairs, judge, blocked, settings, checks.grouping(len(pairs)))
    pixel_digests.save(store)
    file_pairs = _file_pairs(pairs, ok)
    store.replace_groups(run_id, groups, file_pairs, fingerprint=fingerprint)
    checks.finish()
    return {
        "images": len(ok),
        "failures": failures,
        "skipped": skipped,
        "groups": tuple(groups),
        "pairs": file_pairs,
    }


def _group(
    store: Store,
    ok: list[dict[str, Any]],
    pairs: list[Any],
    judge: PairJudge,
    blocked: set[tuple[str, str]],
    settings: ScanSettings,
    tick: Callable[[], None],
) -> list[Group]:
    """Groups with a keeper each, from the accepted digest pairs and a person's marks;
    ``tick`` is called after each check of a member against a keeper."""
    paired = {d for p in pairs for d in (p.a, p.b)}  # the keeper is chosen among these only
    richness = _richness(store, ok, paired, settings.max_pixels)
    infos = [
        FileInfo(
            f["path"],
            f["root"],
            f["digest"],
            f["size"],
            f["width"],
            f["height"],
            bool(f["lossless"]),
            _picture_pixels(judge, f["digest"], f["width"], f["height"])
            if f["digest"] in paired
            else 0,
            richness.get(f["digest"], 0),
        )
        for f in ok
    ]
    marks = store.marks()
    policy = KeeperPolicy(
        rules=settings.keeper_rules,
        reference_roots=settings.reference_roots,
        keeper_marks=frozenset(p for p, m in marks.items() if m == "keeper"),
    )

    def judge_fn(a: str, b: str) -> Any:
        if (a, b) in blocked:
            return None
        pair = judge.judge(a, b)
        tick()
        return pair

    return build_groups(infos, [(p.a, p.b) for p in pairs], judge_fn, policy, blocked)


class _MatchProgress:
    """Matching progress for the scan's ``progress`` callback, in pair checks: those of
    the searches (:func:`find_pairs`), then grouping's checks of members against their
    keepers, counted as one a pair found. Sent whenever the total changes or the checks
    known so far are done, else at most every 0.1 s."""

    def __init__(self, progress: Any) -> None:
        self.progress = progress
        self.done = self.total = 0
        self.sent: tuple[int, int] | None = None
        self.last = 0.0

    def update(self, done: int, total: int) -> None:
        """``done`` checks of the ``total`` known so far."""
        self.done, self.total = done, total
        now = time.monotonic()
        if self.sent == (done, total):
            return
        if self.sent is None or total != self.sent[1] or done == total or now - self.last >= 0.1:
            self.sent, self.last = (done, total), now
            _report(self.progress, Stage.MATCH, done, total)

    def grouping(self, pairs: int) -> Callable[[], None]:
        """Count grouping's checks in the total; returns what to call after each."""
        end = self.total + pairs
        self.update(self.total, end)
        return lambda: self.update(min(self.done + 1, end), end)

    def finish(self) -> None:
        self.update(self.total, self.total)


def _richness(
    store: Store, ok: list[dict[str, Any]], grouped: set[str], max_pixels: int
) -> dict[str, int]:
    """Picture richness per digest. Digests in a pair that were featured before stores
    kept it (schema 1) are decoded once more, and the values stored."""
    known = {f["digest"]: f["richness"] for f in ok if f["richness"] is not None}
    missing = {f["digest"]: f["path"] for f in ok if f["digest"] in grouped - known.keys()}
    found: dict[str, int] = {}
    for digest, path in missing.items():
        try:
            found[digest] = richness_of(read_bytes(path), max_pixels=max_pixels)
        except (OSError, DecodeError):
            continue  # changed or gone since: ranks as the poorest picture
    if found:
        store.set_richness(found)
    return {**known, **found}


def _picture_pixels(judge: PairJudge, digest: str, width: int, height: int) -> int:
    """Pixels of picture in an image: all of them, less the filled corners of a picture
    rotated onto a larger canvas."""
    if judge.fill_angle(digest) is None:
        return width * height
    share = corner_fill_share(judge.rows[digest].features.thumb)
    return round(width * height * (1.0 - share))


def _inputs_fingerprint(ok: list[dict[str, Any]], settings: ScanSettings, store: Store) -> str:
    """Identify what groups depend on: featured files, settings and a person's marks."""
    import hashlib
    import json

    h = hashlib.sha256(json.dumps(_settings_dict(settings), sort_keys=True, default=str).encode())
    h.update(settings.match.cache_key().encode())
    h.update(store.marks_fingerprint().encode())
    for f in sorted(ok, key=lambda f: f["path"]):
        h.update(
            f"{f['path']}\0{f['root']}\0{f['digest']}\0{f['size']}\n".encode(
                "utf-8", "surrogateescape"
            )
        )
    return h.hexdigest()


def _embedding_candidates(
    rows: Sequence[Any], ok: list[dict[str, Any]], settings: ScanSettings, workers: int | None
) -> Any:
    """Candidate pairs from learned embeddings (``--model`` / ``--embeddings``), if any."""
    if settings.embeddings is None:
        return None
    from .embeddings import embedding_candidates, embedding_vectors

    paths: dict[str, list[str]] = {}
    for f in ok:
        paths.setdefault(f["digest"], []).append(f["path"])
    digests = [r.digest for r in rows]
    vectors = embedding_vectors(digests, paths, settings.embeddings)
    return embedding_candidates(digests, vectors, settings.embeddings, workers=workers)


class _PixelDigests:
    """Full-resolution pixel digests computed on demand (thread-safe).

    New digests are kept in memory and written to the store by :meth:`save`, from the
    thread that owns the store connection.
    """

    def __init__(self, rows: Sequence[Any], paths: dict[str, str]) -> None:
        self.known: dict[str, str] = {r.digest: r.pixel_digest for r in rows if r.pixel_digest}
        self.new: dict[str, str] = {}
        self.paths = paths
        self._lock = threading.Lock()

    def __call__(self, digest: str) -> str | None:
        with self._lock:
            if digest in self.known:
                return self.known[digest]
            try:
                value = decode_full_pixels(read_bytes(self.paths[digest]))
            except (OSError, DecodeError):
                return None
            self.known[digest] = self.new[digest] = value
            return value

    def save(self, store: Store) -> None:
        for digest, value in self.new.items():
            store.set_pixel_digest(digest, value)
        self.new.clear()


def _file_pairs(pairs: Sequence[Any], ok: list[dict[str, Any]]) -> tuple[Pair, ...]:
    """Expand digest pairs to one representative file pair each (plus exact copies)."""
    by_digest: dict[str, list[str]] = {}
    for f in ok:
        by_digest.setdefault(f["digest"], []).append(f["path"])
    out = []
    for paths in by_digest.values():
        paths.sort()
        out.extend(
            Pair(paths[0], other, "exact", 1.0, {"method": "content digest"}) for other in paths[1:]
        )
    for p in pairs:
        a, b = sorted((by_digest[p.a][0], by_digest[p.b][0]))
        out.append(Pair(a, b, p.relation, p.score, p.evidence))
    return tuple(sorted(out, key=lambda p: (p.a, p.b)))
