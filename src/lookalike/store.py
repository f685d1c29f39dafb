"""The persistent store: one SQLite file (stdlib ``sqlite3``, WAL mode).

Tables (schema version in ``PRAGMA user_version``):

* ``files``: every path seen under the scanned roots with its identity (size, mtime,
  content digest) and status ``ok`` / ``failed`` / ``skipped`` with stage and reason.
* ``images``: features keyed by content digest, so a renamed or copied file costs no decode.
* ``verdicts``: cached pair verifications keyed by the two digests and the settings.
* ``groups`` / ``members``: the duplicate groups of the latest scan.
* ``runs``: one row per scan (roots, settings, start and end time, status).
* ``marks`` / ``pair_marks``: a person's decisions (exclude, keep, keeper, not-a-duplicate);
  they are keyed by content digest and path so they survive re-scans.

Writes happen in short transactions, so a scan killed at any point leaves a consistent
store and the next scan resumes from what was committed. One scan at a time writes a
store: :func:`scan_lock` (``<db>.lock`` beside it); readers and a person's marks do not
take that lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import StoreBusyError, StoreError, StoreVersionError
from .features import DESCRIPTOR_DIM, THUMB_PX, Features

SCHEMA_VERSION = 2  # 2: images.richness (a keeper criterion)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    path BLOB NOT NULL UNIQUE,
    root BLOB NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    digest TEXT,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'skipped')),
    stage TEXT,
    error TEXT,
    run_id INTEGER
);
CREATE INDEX IF NOT EXISTS files_digest ON files(digest);
CREATE INDEX IF NOT EXISTS files_root ON files(root);
CREATE TABLE IF NOT EXISTS images (
    digest TEXT PRIMARY KEY,
    feature_version INTEGER NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    format TEXT NOT NULL,
    lossless INTEGER NOT NULL,
    pixel_digest TEXT,
    stream_digest TEXT,
    orientation INTEGER NOT NULL,
    phash BLOB NOT NULL,
    descriptor BLOB NOT NULL,
    thumb BLOB NOT NULL,
    richness INTEGER
);
CREATE TABLE IF NOT EXISTS verdicts (
    a TEXT NOT NULL,
    b TEXT NOT NULL,
    settings TEXT NOT NULL,
    accepted INTEGER NOT NULL,
    score REAL NOT NULL,
    evidence TEXT NOT NULL,
    PRIMARY KEY (a, b, settings)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started REAL NOT NULL,
    finished REAL,
    roots TEXT NOT NULL,
    settings TEXT NOT NULL,
    status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS groups (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL,
    keeper BLOB NOT NULL,
    relation TEXT NOT NULL,
    roots TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    path BLOB NOT NULL,
    relation TEXT NOT NULL,
    score REAL NOT NULL,
    reference INTEGER NOT NULL,
    evidence TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS members_group ON members(group_id);
CREATE TABLE IF NOT EXISTS pairs (
    a BLOB NOT NULL,
    b BLOB NOT NULL,
    relation TEXT NOT NULL,
    score REAL NOT NULL,
    evidence TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS marks (
    path BLOB NOT NULL PRIMARY KEY,
    digest TEXT,
    mark TEXT NOT NULL CHECK (mark IN ('exclude', 'keep', 'keeper')),
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS pair_marks (
    a TEXT NOT NULL,
    b TEXT NOT NULL,
    mark TEXT NOT NULL CHECK (mark IN ('not-duplicate')),
    created REAL NOT NULL,
    PRIMARY KEY (a, b)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class ImageRow:
    """Facts and features of one content digest, as stored."""

    digest: str
    width: int
    height: int
    format: str
    lossless: bool
    pixel_digest: str | None
    orientation: int
    features: Features
    stream_digest: str | None = None
    richness: int | None = None  # decoding.picture_richness; None in stores older than it


def default_store_path(roots: Sequence[str]) -> Path:
    """Where a scan of ``roots`` keeps its store unless ``--db`` or ``LOOKALIKE_DB`` says.

    ``$XDG_CACHE_HOME/lookalike/stores/<hash of the sorted absolute roots>.db``
    (``~/.cache`` when ``XDG_CACHE_HOME`` is unset), so read-only datasets work.
    """
    env = os.environ.get("LOOKALIKE_DB")
    if env:
        return Path(env)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    key = hashlib.sha1("\0".join(sorted(roots)).encode("utf-8", "surrogateescape")).hexdigest()
    return cache / "lookalike" / "stores" / f"{key[:16]}.db"


def scan_lock_path(store_path: str | os.PathLike[str]) -> Path:
    """The scan lock file of a store: ``<db>.lock`` beside the store file (links resolved)."""
    return Path(os.path.realpath(store_path) + ".lock")


@contextmanager
def scan_lock(store_path: str | os.PathLike[str], *, wait: bool = False) -> Iterator[None]:
    """Hold the store's scan lock while the block runs, so one scan at a time writes it.

    The lock is an exclusive ``flock`` on :func:`scan_lock_path`, whose text is the pid of
    the holder. The kernel drops it when that process ends, however it ends (``kill -9``
    too), so a killed scan never leaves a lock behind. Readers and the short transactions
    of the review UI and ``export`` do not take it. ``wait=True`` blocks until it is free.

    Raises:
        StoreBusyError: another scan holds the lock and ``wait`` is false.
        StoreError: the lock file cannot be created.
    """
    path = scan_lock_path(store_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(
            f"Cannot open the store {os.fspath(store_path)!r}: cannot create its lock file "
            f"{str(path)!r}: {exc.strerror or exc}. Check the path or pass another --db."
        ) from exc
    try:
        if not _lock_file(fd, wait=wait):
            raise _busy(store_path, _holder(fd))
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock


def _lock_file(fd: int, *, wait: bool) -> bool:
    """Take an exclusive lock on an open file; ``False`` when another process holds it."""
    try:
        import fcntl
    except ImportError:  # Windows: lock one byte far past the pid
        return _lock_file_windows(fd, wait=wait)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def _lock_file_windows(fd: int, *, wait: bool) -> bool:
    import msvcrt

    os.lseek(fd, 1 << 20, os.SEEK_SET)
    while True:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
            return True
        except OSError:
            if not wait:
                return False
            time.sleep(0.2)


def _holder(fd: int) -> int | None:
    """The pid written in a lock file, if any."""
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 32).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None


def _busy(store_path: str | os.PathLike[str], pid: int | None) -> StoreBusyError:
    holder = f" (pid {pid})" if pid is not None else ""
    store = os.fspath(store_path)
    return StoreBusyError(
        f"Another lookalike scan{holder} is using the store {store!r}; wait for it "
        "(--wait) or use another --db.",
        path=store,
        pid=pid,
    )


def to_blob(path: str) -> bytes:
    """Encode a path losslessly (names that are not valid UTF-8 included)."""
    return os.fsencode(path)


def from_blob(blob: bytes) -> str:
    """Decode a path stored by :func:`to_blob`."""
    return os.fsdecode(bytes(blob))


class Store:
    """A lookalike store backed by one SQLite file."""

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self.conn = _connect(self.path, readonly=readonly)
        if not readonly:
            self._migrate()

    def close(self) -> None:
        """Close the connection (committing nothing further)."""
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run statements in one short write transaction."""
        try:
            with self.conn:
                yield self.conn
        except sqlite3.Error as exc:
            raise StoreError(f"Cannot write the store {str(self.path)!r}: {exc}") from exc

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreVersionError(
                f"The store {str(self.path)!r} was written by a newer lookalike (schema "
                f"{version} > {SCHEMA_VERSION}). Upgrade lookalike or use another --db."
            )
        with self.transaction() as conn:
            conn.executescript(_SCHEMA)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(images)")}
            if "richness" not in columns:  # schema 1: filled in when a scan needs it
                conn.execute("ALTER TABLE images ADD COLUMN richness INTEGER")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- runs -------------------------------------------------------------------------
    def start_run(self, roots: Sequence[str], settings: dict[str, Any]) -> int:
        """Record the start of a scan and return its id."""
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO runs (started, roots, settings, status) VALUES (?, ?, ?, 'running')",
                (time.time(), json.dumps(list(roots)), json.dumps(settings, sort_keys=True)),
            )
        return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, status: str = "done") -> None:
        """Mark a scan as finished."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE runs SET finished = ?, status = ? WHERE id = ?",
                (time.time(), status, run_id),
            )

    def last_run(self) -> dict[str, Any] | None:
        """The latest finished scan, or ``None``."""
        row = self.conn.execute(
            "SELECT id, started, finished, roots, settings FROM runs WHERE status = 'done' "
            "ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        return {
            "id": row[0],
            "started": row[1],
            "finished": row[2],
            "roots": json.loads(row[3]),
            "settings": json.loads(row[4]),
        }

    # -- files ------------------------------------------------------------------------
    def known_files(self, roots: Sequence[str]) -> dict[str, tuple[int, int, str | None, str]]:
        """Map path -> (size, mtime_ns, digest, status) for files stored under ``roots``."""
        out: dict[str, tuple[int, int, str | None, str]] = {}
        for root in roots:
            for path, size, mtime, digest, status in self.conn.execute(
                "SELECT path, size, mtime_ns, digest, status FROM files WHERE root = ?",
                (to_blob(root),),
            ):
                out[from_blob(path)] = (size, mtime, digest, status)
        return out

    def has_image(self, digest: str) -> bool:
        """True when features for this content digest are stored."""
        return (
            self.conn.execute("SELECT 1 FROM images WHERE digest = ?", (digest,)).fetchone()
            is not None
        )

    def save_files(self, rows: Iterable[tuple[Any, ...]], images: Iterable[ImageRow]) -> None:
        """Store file rows ``(path, root, size, mtime_ns, digest, status, stage, error, run)``
        and new image features in one transaction."""
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO images VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [_image_values(img) for img in images],
            )
            conn.executemany(
                "INSERT INTO files (path, root, size, mtime_ns, digest, status, stage, error, "
                "run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET "
                "root = excluded.root, size = excluded.size, mtime_ns = excluded.mtime_ns, "
                "digest = excluded.digest, status = excluded.status, stage = excluded.stage, "
                "error = excluded.error, run_id = excluded.run_id",
                [(to_blob(r[0]), to_blob(r[1]), *r[2:]) for r in rows],
            )

    def touch_files(self, paths: Sequence[str], run_id: int) -> None:
        """Mark unchanged files as seen by this run."""
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE files SET run_id = ? WHERE path = ?", [(run_id, to_blob(p)) for p in paths]
            )

    def forget_unseen(self, roots: Sequence[str], run_id: int) -> int:
        """Drop file rows under ``roots`` that this run did not see (deleted files)."""
        with self.transaction() as conn:
            removed = 0
            for root in roots:
                cur = conn.execute(
                    "DELETE FROM files WHERE root = ? AND (run_id IS NULL OR run_id != ?)",
                    (to_blob(root), run_id),
                )
                removed += cur.rowcount
        return removed

    def files_of_run(self, run_id: int) -> list[dict[str, Any]]:
        """Every file row seen by a run, joined with its image facts when featured."""
        rows = self.conn.execute(
            "SELECT f.path, f.root, f.size, f.mtime_ns, f.digest, f.status, f.stage, f.error, "
            f"i.width, i.height, i.format, i.lossless, {self._richness_column()} FROM files f "
            "LEFT JOIN images i ON i.digest = f.digest WHERE f.run_id = ? ORDER BY f.path",
            (run_id,),
        ).fetchall()
        keys = (
            "path root size mtime_ns digest status stage error width height format lossless "
            "richness"
        ).split()
        out = []
        for row in rows:
            item = dict(zip(keys, row, strict=True))
            item["path"] = from_blob(item["path"])
            item["root"] = from_blob(item["root"])
            out.append(item)
        return out

    def _richness_column(self) -> str:
        """``i.richness``, or NULL in a schema-1 store opened read-only (not migrated)."""
        columns = {row[1] for row in self.conn.execute("PRAGMA table_info(images)")}
        return "i.richness" if "richness" in columns else "NULL"

    # -- images -----------------------------------------------------------------------
    def load_images(self, digests: Sequence[str], *, with_thumbs: bool = True) -> list[ImageRow]:
        """Load stored image rows for ``digests`` (in that order)."""
        out: list[ImageRow] = []
        cols = (
            "digest, width, height, format, lossless, pixel_digest, orientation, phash, "
            "descriptor, stream_digest"
        )
        cols += ", thumb" if with_thumbs else ", NULL"
        for start in range(0, len(digests), 500):
            chunk = list(digests[start : start + 500])
            marks = ",".join("?" * len(chunk))
            found = {
                row[0]: row
                for row in self.conn.execute(
                    f"SELECT {cols} FROM images WHERE digest IN ({marks})", chunk
                )
            }
            out.extend(_image_row(found[d]) for d in chunk)
        return out

    def set_richness(self, values: dict[str, int]) -> None:
        """Store picture richness computed for digests featured before it was kept."""
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE images SET richness = ? WHERE digest = ?",
                [(r, d) for d, r in values.items()],
            )

    def set_pixel_digest(self, digest: str, pixel_digest: str) -> None:
        """Cache a full-resolution pixel digest computed on demand."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE images SET pixel_digest = ? WHERE digest = ?", (pixel_digest, digest)
            )

    # -- verdicts ---------------------------------------------------------------------
    def load_verdicts(self, settings_key: str) -> dict[tuple[str, str], tuple[bool, float, str]]:
        """All cached verdicts computed with these settings."""
        return {
            (a, b): (bool(acc), score, ev)
            for a, b, acc, score, ev in self.conn.execute(
                "SELECT a, b, accepted, score, evidence FROM verdicts WHERE settings = ?",
                (settings_key,),
            )
        }

    def save_verdicts(
        self, settings_key: str, rows: Iterable[tuple[str, str, bool, float, str]]
    ) -> None:
        """Cache pair verdicts ``(a, b, accepted, score, evidence_json)``."""
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?, ?)",
                [(a, b, settings_key, int(acc), s, ev) for a, b, acc, s, ev in rows],
            )

    @contextmanager
    def verdict_writer(
        self,
        settings_key: str,
        *,
        rows: int | None = None,
        seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> Iterator[VerdictWriter]:
        """A :class:`VerdictWriter` for these settings; what it holds is written on leaving
        (an error or Ctrl-C included, so a resumed scan keeps that work too)."""
        writer = VerdictWriter(
            self,
            settings_key,
            rows=VERDICT_BATCH_ROWS if rows is None else rows,
            seconds=VERDICT_BATCH_SECONDS if seconds is None else seconds,
            clock=clock,
        )
        try:
            yield writer
        finally:
            writer.flush()

    # -- marks ------------------------------------------------------------------------
    def not_duplicate_pairs(self) -> set[tuple[str, str]]:
        """Digest pairs a person marked as not duplicates (both orders)."""
        out: set[tuple[str, str]] = set()
        for a, b in self.conn.execute("SELECT a, b FROM pair_marks WHERE mark = 'not-duplicate'"):
            out.update({(a, b), (b, a)})
        return out

    def marks(self) -> dict[str, str]:
        """Path -> mark (``exclude``, ``keep`` or ``keeper``)."""
        return {from_blob(p): m for p, m in self.conn.execute("SELECT path, mark FROM marks")}

    def set_mark(self, path: str, mark: str | None, digest: str | None = None) -> None:
        """Set or clear (``mark=None``) a person's mark on a file."""
        with self.transaction() as conn:
            if mark is None:
                conn.execute("DELETE FROM marks WHERE path = ?", (to_blob(path),))
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO marks VALUES (?, ?, ?, ?)",
                    (to_blob(path), digest, mark, time.time()),
                )

    def marks_fingerprint(self) -> str:
        """A digest of every mark, so results can tell when a person changed something."""
        h = hashlib.sha256()
        for row in self.conn.execute("SELECT path, mark FROM marks ORDER BY path"):
            h.update(repr(row).encode())
        for row in self.conn.execute("SELECT a, b, mark FROM pair_marks ORDER BY a, b"):
            h.update(repr(row).encode())
        return h.hexdigest()

    def mark_not_duplicate(self, digest_a: str, digest_b: str) -> None:
        """Remember that two images are not duplicates, so the pair never comes back."""
        a, b = sorted((digest_a, digest_b))
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO pair_marks VALUES (?, ?, 'not-duplicate', ?)",
                (a, b, time.time()),
            )

    # -- groups -----------------------------------------------------------------------
    def load_groups(self) -> list[Any]:
        """The stored groups of the latest scan as :class:`lookalike.records.Group`."""
        from .records import Group, Member

        sizes = {from_blob(p): s for p, s in self.conn.execute("SELECT path, size FROM files")}
        roots = {
            from_blob(p): from_blob(r) for p, r in self.conn.execute("SELECT path, root FROM files")
        }
        members: dict[int, list[Member]] = {}
        for gid, path, relation, score, reference, evidence in self.conn.execute(
            "SELECT group_id, path, relation, score, reference, evidence FROM members "
            "ORDER BY group_id, path"
        ):
            p = from_blob(path)
            members.setdefault(gid, []).append(
                Member(
                    p,
                    relation,
                    score,
                    roots.get(p, ""),
                    sizes.get(p, 0),
                    bool(reference),
                    json.loads(evidence),
                )
            )
        out = []
        for gid, keeper, group_roots in self.conn.execute(
            "SELECT id, keeper, roots FROM groups ORDER BY id"
        ):
            k = from_blob(keeper)
            out.append(
                Group(
                    gid,
                    k,
                    roots.get(k, ""),
                    sizes.get(k, 0),
                    tuple(members.get(gid, [])),
                    tuple(json.loads(group_roots)),
                )
            )
        return out

    def file_rows(self, status: str | None = None) -> list[dict[str, Any]]:
        """File rows of the latest scan (optionally only one status), with image facts."""
        run = self.last_run()
        if run is None:
            return []
        rows = self.files_of_run(run["id"])
        return [r for r in rows if status is None or r["status"] == status]

    def get_meta(self, key: str) -> str | None:
        """A value from the key-value ``meta`` table."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def load_pairs(self) -> list[Any]:
        """The duplicate pairs of the latest scan as :class:`lookalike.records.Pair`."""
        from .records import Pair

        return [
            Pair(from_blob(a), from_blob(b), relation, score, json.loads(evidence))
            for a, b, relation, score, evidence in self.conn.execute(
                "SELECT a, b, relation, score, evidence FROM pairs ORDER BY rowid"
            )
        ]

    def replace_groups(
        self,
        run_id: int,
        groups: Sequence[Any],
        pairs: Sequence[Any] = (),
        *,
        fingerprint: str | None = None,
    ) -> None:
        """Replace the stored groups and pairs with those of ``run_id``.

        ``fingerprint`` identifies the inputs they were computed from (files, settings,
        marks), so an unchanged re-scan can reuse them.
        """
        with self.transaction() as conn:
            conn.execute("DELETE FROM members")
            conn.execute("DELETE FROM groups")
            conn.execute("DELETE FROM pairs")
            conn.executemany(
                "INSERT INTO pairs VALUES (?, ?, ?, ?, ?)",
                [
                    (
                        to_blob(p.a),
                        to_blob(p.b),
                        p.relation,
                        p.score,
                        json.dumps(p.evidence, sort_keys=True),
                    )
                    for p in pairs
                ],
            )
            conn.execute(
                "INSERT OR REPLACE INTO meta VALUES ('groups_fingerprint', ?)", (fingerprint or "",)
            )
            for g in groups:
                conn.execute(
                    "INSERT INTO groups (id, run_id, keeper, relation, roots) VALUES (?, ?, ?, ?, ?)",
                    (g.id, run_id, to_blob(g.keeper), g.relation, json.dumps(list(g.roots))),
                )
                conn.executemany(
                    "INSERT INTO members VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (
                            g.id,
                            to_blob(m.path),
                            m.relation,
                            m.score,
                            int(m.reference),
                            json.dumps(m.evidence, sort_keys=True),
                        )
                        for m in g.members
                    ],
                )

    # -- export bookkeeping -----------------------------------------------------------
    # Used by lookalike.export only: a quarantine takes the files it moved out of the
    # store (as a re-scan would) and undo puts them back, so lists, dry runs and the UI
    # follow without a re-scan. A snapshot (moved_rows) travels in the manifest.

    def moved_rows(self, paths: Sequence[str]) -> dict[str, dict[str, Any]]:
        """What the store knows about each of ``paths``: its ``files`` row and the groups
        it is a member of, as JSON-ready dictionaries for :meth:`restore_moved`."""
        out: dict[str, dict[str, Any]] = {}
        for path in paths:
            row = self.conn.execute(
                "SELECT id, root, size, mtime_ns, digest, status, stage, error FROM files "
                "WHERE path = ?",
                (to_blob(path),),
            ).fetchone()
            if row is None:
                continue
            groups = [
                {
                    "group": gid,
                    "keeper": from_blob(keeper),
                    "relation": relation,
                    "score": score,
                    "reference": bool(reference),
                    "evidence": json.loads(evidence),
                }
                for gid, keeper, relation, score, reference, evidence in self.conn.execute(
                    "SELECT m.group_id, g.keeper, m.relation, m.score, m.reference, m.evidence "
                    "FROM members m JOIN groups g ON g.id = m.group_id WHERE m.path = ? "
                    "ORDER BY m.group_id",
                    (to_blob(path),),
                )
            ]
            out[path] = {
                "id": row[0],
                "root": from_blob(row[1]),
                "size": row[2],
                "mtime_ns": row[3],
                "digest": row[4],
                "status": row[5],
                "stage": row[6],
                "error": row[7],
                "groups": groups,
            }
        return out

    def failed_files(self, roots: Sequence[str]) -> list[dict[str, Any]]:
        """Files under ``roots`` the scan could not read (status ``failed``), by path."""
        out = []
        for root in roots:
            for path, size, mtime_ns, digest, stage, error in self.conn.execute(
                "SELECT path, size, mtime_ns, digest, stage, error FROM files "
                "WHERE root = ? AND status = 'failed'",
                (to_blob(root),),
            ):
                out.append(
                    {
                        "path": from_blob(path),
                        "root": root,
                        "size": size,
                        "mtime_ns": mtime_ns,
                        "digest": digest,
                        "stage": stage,
                        "error": error,
                    }
                )
        return sorted(out, key=lambda f: f["path"])

    def forget_moved(self, paths: Sequence[str]) -> int:
        """Drop the ``files`` rows and group memberships of files moved out of the
        dataset; a group left without members goes. Returns the rows dropped.

        The stored groups no longer match a fresh scan's, so the groups fingerprint is
        cleared: the next scan recomputes them instead of reusing these.
        """
        blobs = [(to_blob(p),) for p in paths]
        if not blobs:
            return 0
        with self.transaction() as conn:
            touched = {
                gid
                for (p,) in blobs
                for (gid,) in conn.execute("SELECT group_id FROM members WHERE path = ?", (p,))
            }
            conn.executemany("DELETE FROM members WHERE path = ?", blobs)
            dropped = sum(
                conn.execute("DELETE FROM files WHERE path = ?", b).rowcount for b in blobs
            )
            for gid in sorted(touched):
                refresh_group(conn, gid)
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('groups_fingerprint', '')")
        return dropped

    def restore_moved(self, rows: dict[str, dict[str, Any]]) -> int:
        """Put back what :meth:`moved_rows` recorded for files an undo restored.

        A ``files`` row is inserted only where the store has none (a re-scan may have
        listed the file again); the file rejoins the group of its former keeper when that
        keeper still leads a group, or a new group when the keeper is a readable file in
        no group; otherwise it stays ungrouped until the next scan. Returns the rows
        inserted.
        """
        if not rows:
            return 0
        with self.transaction() as conn:
            run = conn.execute(
                "SELECT id FROM runs WHERE status = 'done' ORDER BY id DESC LIMIT 1"
            ).fetchone()
            run_id = run[0] if run else None
            inserted = 0
            for path, r in rows.items():
                if conn.execute("SELECT 1 FROM files WHERE path = ?", (to_blob(path),)).fetchone():
                    continue
                taken = (
                    r.get("id") is None
                    or conn.execute("SELECT 1 FROM files WHERE id = ?", (r["id"],)).fetchone()
                )
                conn.execute(
                    "INSERT INTO files (id, path, root, size, mtime_ns, digest, status, stage, "
                    "error, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        None if taken else r["id"],
                        to_blob(path),
                        to_blob(r["root"]),
                        r["size"],
                        r["mtime_ns"],
                        r.get("digest"),
                        r.get("status", "ok"),
                        r.get("stage"),
                        r.get("error"),
                        run_id,
                    ),
                )
                inserted += 1
            touched: set[int] = set()
            for path, r in rows.items():
                for m in r.get("groups", []):
                    if conn.execute(
                        "SELECT 1 FROM members WHERE path = ?1 UNION ALL "
                        "SELECT 1 FROM groups WHERE keeper = ?1",
                        (to_blob(path),),
                    ).fetchone():
                        break  # grouped again already (a scan ran since)
                    gid = _group_for_restored(conn, m, run_id)
                    if gid is None:
                        continue
                    conn.execute(
                        "INSERT INTO members VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            gid,
                            to_blob(path),
                            m["relation"],
                            m["score"],
                            int(m["reference"]),
                            json.dumps(m["evidence"], sort_keys=True),
                        ),
                    )
                    touched.add(gid)
            for gid in sorted(touched):
                refresh_group(conn, gid)
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('groups_fingerprint', '')")
        return inserted


def _group_for_restored(
    conn: sqlite3.Connection, member: dict[str, Any], run_id: int | None
) -> int | None:
    """The group a restored member rejoins: its keeper's, a new one, or ``None``."""
    keeper = to_blob(member["keeper"])
    row = conn.execute("SELECT id FROM groups WHERE keeper = ?", (keeper,)).fetchone()
    if row is not None:
        return int(row[0])
    readable = conn.execute(
        "SELECT 1 FROM files WHERE path = ? AND status = 'ok'", (keeper,)
    ).fetchone()
    if not readable or conn.execute("SELECT 1 FROM members WHERE path = ?", (keeper,)).fetchone():
        return None
    gid = member["group"]
    if conn.execute("SELECT 1 FROM groups WHERE id = ?", (gid,)).fetchone():
        gid = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM groups").fetchone()[0]
    conn.execute(
        "INSERT INTO groups (id, run_id, keeper, relation, roots) VALUES (?, ?, ?, ?, '[]')",
        (gid, run_id or 0, keeper, member["relation"]),
    )
    return int(gid)


def refresh_group(conn: sqlite3.Connection, group_id: int, keeper: str | None = None) -> None:
    """Recompute a group's relation and roots from its members (and set its keeper when
    given); drop it when empty. Runs inside the caller's transaction."""
    from .records import RELATIONS

    rows = conn.execute(
        "SELECT m.relation, f.root FROM members m LEFT JOIN files f ON f.path = m.path "
        "WHERE m.group_id = ?",
        (group_id,),
    ).fetchall()
    if not rows:
        conn.execute("DELETE FROM groups WHERE id = ?", (group_id,))
        return
    if keeper is None:
        keeper = from_blob(
            conn.execute("SELECT keeper FROM groups WHERE id = ?", (group_id,)).fetchone()[0]
        )
    keeper_root = conn.execute(
        "SELECT root FROM files WHERE path = ?", (to_blob(keeper),)
    ).fetchone()
    order = {r: i for i, r in enumerate(RELATIONS)}
    relation = max((r for r, _ in rows), key=lambda r: order.get(r, 0))
    roots = sorted(
        {from_blob(r) for _, r in rows if r is not None}
        | ({from_blob(keeper_root[0])} if keeper_root else set())
    )
    conn.execute(
        "UPDATE groups SET keeper = ?, relation = ?, roots = ? WHERE id = ?",
        (to_blob(keeper), relation, json.dumps(roots), group_id),
    )


VERDICT_BATCH_ROWS = 500
VERDICT_BATCH_SECONDS = 2.0


class VerdictWriter:
    """Pair verdicts committed in batches while matching runs: every ``rows`` verdicts, or
    at the first verdict ``seconds`` after the last commit, so a killed scan keeps nearly
    all its matching work and commits stay cheap. Use from the thread that owns the store.
    """

    def __init__(
        self,
        store: Store,
        settings_key: str,
        *,
        rows: int,
        seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self.store, self.settings_key = store, settings_key
        self.rows, self.seconds, self.clock = rows, seconds, clock
        self.pending: dict[tuple[str, str], tuple[bool, float, str]] = {}
        self.last = clock()

    def add(self, a: str, b: str, hit: tuple[bool, float, str]) -> None:
        """Keep the verdict of a sorted digest pair (a later one replaces an earlier)."""
        self.pending[(a, b)] = hit
        if len(self.pending) >= self.rows or self.clock() - self.last >= self.seconds:
            self.flush()

    def flush(self) -> None:
        """Commit the verdicts held so far in one transaction."""
        if self.pending:
            rows = [(a, b, *hit) for (a, b), hit in self.pending.items()]
            self.store.save_verdicts(self.settings_key, rows)
            self.pending.clear()
        self.last = self.clock()


def _connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    try:
        if readonly:
            uri = f"file:{path.resolve().as_posix()}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 30000")
        return conn
    except (sqlite3.Error, OSError) as exc:
        raise StoreError(
            f"Cannot open the store {str(path)!r}: {exc}. Check the path or pass another --db."
        ) from exc


def _image_values(img: ImageRow) -> tuple[Any, ...]:
    from .features import FEATURE_VERSION

    f = img.features
    return (
        img.digest,
        FEATURE_VERSION,
        img.width,
        img.height,
        img.format,
        int(img.lossless),
        img.pixel_digest,
        img.stream_digest,
        img.orientation,
        f.phash.to_bytes(8, "big"),
        f.descriptor.astype(np.float32).tobytes(),
        np.ascontiguousarray(f.thumb, dtype=np.uint8).tobytes(),
        img.richness,
    )


def _image_row(row: tuple[Any, ...]) -> ImageRow:
    thumb = (
        np.frombuffer(row[10], dtype=np.uint8).reshape(THUMB_PX, THUMB_PX)
        if row[10] is not None
        else np.zeros((0, 0), dtype=np.uint8)
    )
    features = Features(
        thumb=thumb,
        descriptor=np.frombuffer(row[8], dtype=np.float32, count=DESCRIPTOR_DIM),
        phash=int.from_bytes(row[7], "big"),
    )
    return ImageRow(row[0], row[1], row[2], row[3], bool(row[4]), row[5], row[6], features, row[9])
