"""A person's review of the groups: marks, keeper changes, "not a duplicate", decisions.

This is the library the web UI (:mod:`lookalike.ui`) and the CLI (``lookalike export``)
share. Everything a person decides is written to the store, in two tables that a re-scan
never clears:

* ``marks`` (by path): ``exclude`` (remove this file), ``keep`` (never remove it) and
  ``keeper`` (prefer it as its group's keeper; the next scan honours it).
* ``pair_marks`` (by content digest): two contents that are *not* duplicates; the next
  scan never groups them again.

Decisions (:func:`decide`) turn groups plus marks into one ``keep``/``remove`` action per
file. A file is removed when it is a group member that is not the keeper, not in a
reference root and not marked ``keep``/``keeper``, or when it is marked ``exclude``
(anywhere, keeper included). Marks always override the automatic decision.

Changes that alter groups (:func:`change_keeper`, :func:`mark_not_duplicate`) also
update the ``groups``/``members`` tables at once, so a reader sees the result without a
re-scan. Every write runs in one short ``BEGIN IMMEDIATE`` transaction, so a scan
running at the same time (another connection, another process) never interleaves.

Example:
    >>> from lookalike.store import Store
    >>> with Store("photos.db") as store:                          # doctest: +SKIP
    ...     exclude_group(store, 3)
    ...     plan = decide(store)
    ...     [d.path for d in plan if d.action == "remove"]
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .errors import (
    ConfigError,
    InputNotFoundError,
    StaleGroupError,
    StoreError,
)
from .records import RELATIONS
from .store import Store, from_blob, refresh_group, to_blob

FILE_MARKS = ("exclude", "keep")
"""Marks a person sets on one file (``keeper`` goes through :func:`change_keeper`)."""


@dataclass(frozen=True)
class FileRef:
    """One file row of the store, as review and export need it."""

    id: int
    path: str
    root: str
    size: int
    mtime_ns: int
    digest: str | None
    status: str


@dataclass(frozen=True)
class Decision:
    """What happens to one file on export, and why.

    ``role`` is ``keeper``, ``member`` or ``ungrouped`` (a file in no group that is
    marked ``exclude``). ``action`` is ``keep`` or ``remove``.
    """

    file_id: int
    path: str
    root: str
    size: int
    digest: str | None
    group: int | None
    role: str
    action: str
    reason: str


@dataclass(frozen=True)
class BulkResult:
    """What a bulk action did (or would do with ``dry_run``)."""

    groups: int
    files: list[str]
    dry_run: bool


# -- transactions and lookups --------------------------------------------------------------


@contextmanager
def write_transaction(store: Store) -> Iterator[sqlite3.Connection]:
    """One short ``BEGIN IMMEDIATE`` transaction: takes the write lock before reading, so
    what is read cannot change under a concurrent scan before the writes land.

    The transaction always ends: committed when the block finishes, rolled back when it
    raises (or when the commit fails), so the connection never stays inside a
    transaction and never keeps the store's write lock after the call.

    Raises:
        StoreError: the connection is already inside a transaction (a caller left one
            open; nothing is started, so nothing is locked), another connection holds
            the write lock for longer than the busy timeout, or the write fails.
    """
    conn = store.conn
    if conn.in_transaction:
        # ``BEGIN IMMEDIATE`` inside a transaction fails only after taking the write lock,
        # which the open transaction would then keep: refuse before executing it.
        raise StoreError(
            f"Cannot write the store {str(store.path)!r}: this connection is still inside "
            "an earlier transaction that was neither committed nor rolled back (a bug in "
            "the caller; please report it). Nothing was written."
        )
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        _end(conn)
        raise StoreError(_write_error(store, exc)) from exc
    try:
        yield conn
    except BaseException:
        _end(conn)
        raise
    try:
        conn.commit()
    except sqlite3.Error as exc:
        _end(conn)
        raise StoreError(_write_error(store, exc)) from exc


@contextmanager
def read_transaction(store: Store) -> Iterator[sqlite3.Connection]:
    """One consistent snapshot for several reads, without the write lock; always ended."""
    conn = store.conn
    if conn.in_transaction:  # already inside one: its snapshot is the one to read
        yield conn
        return
    try:
        conn.execute("BEGIN DEFERRED")
    except sqlite3.Error as exc:
        _end(conn)
        raise StoreError(_write_error(store, exc)) from exc
    try:
        yield conn
    finally:
        _end(conn)


def _end(conn: sqlite3.Connection) -> None:
    """Roll back whatever transaction is open on ``conn`` (none is fine)."""
    if conn.in_transaction:
        try:
            conn.rollback()
        except sqlite3.Error:  # pragma: no cover - the connection is unusable anyway
            pass


def _write_error(store: Store, exc: sqlite3.Error) -> str:
    """Why a write failed, blaming another connection only when SQLite says it is busy."""
    where = f"Cannot write the store {str(store.path)!r}: {exc}."
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # the primary code of an extended one
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return (
            f"{where} Another connection (a scan, or another lookalike process on this "
            "store) kept the write lock for longer than the busy timeout; try again when "
            "it has finished."
        )
    return where


_FILE_COLS = "id, path, root, size, mtime_ns, digest, status"


def _file_ref(row: Sequence[Any]) -> FileRef:
    return FileRef(row[0], from_blob(row[1]), from_blob(row[2]), row[3], row[4], row[5], row[6])


def file_by_id(store: Store, file_id: int) -> FileRef:
    """The file row with this id.

    Raises:
        InputNotFoundError: no file has this id.
    """
    row = store.conn.execute(f"SELECT {_FILE_COLS} FROM files WHERE id = ?", (file_id,)).fetchone()
    if row is None:
        raise InputNotFoundError(
            f"No file with id {file_id!r} in the store; it may have been removed by a re-scan. "
            "Reload the page."
        )
    return _file_ref(row)


def file_by_path(store: Store, path: str) -> FileRef:
    """The file row of ``path`` (absolute, as the scan listed it).

    Raises:
        InputNotFoundError: the scan did not list this path.
    """
    row = store.conn.execute(
        f"SELECT {_FILE_COLS} FROM files WHERE path = ?", (to_blob(os.path.abspath(path)),)
    ).fetchone()
    if row is None:
        raise InputNotFoundError(
            f"{path!r} is not in the store. Give a path the scan listed (see `lookalike scan "
            "--json`), or re-scan its folder."
        )
    return _file_ref(row)


def _group_row(conn: sqlite3.Connection, group_id: int) -> tuple[str, str]:
    row = conn.execute("SELECT keeper, roots FROM groups WHERE id = ?", (group_id,)).fetchone()
    if row is None:
        raise StaleGroupError(
            f"Group {group_id!r} is not in the store; a scan has probably renumbered the "
            "groups since the page was loaded. Reload the page."
        )
    return from_blob(row[0]), row[1]


def _member_rows(conn: sqlite3.Connection, group_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT m.rowid, m.path, m.relation, m.score, m.reference, m.evidence, f.digest "
        "FROM members m LEFT JOIN files f ON f.path = m.path WHERE m.group_id = ? "
        "ORDER BY m.path",
        (group_id,),
    ).fetchall()
    keys = ("rowid", "path", "relation", "score", "reference", "evidence", "digest")
    out = []
    for row in rows:
        item = dict(zip(keys, row, strict=True))
        item["path"] = from_blob(item["path"])
        item["evidence"] = json.loads(item["evidence"])
        out.append(item)
    return out


def _digest_of(conn: sqlite3.Connection, path: str) -> str | None:
    row = conn.execute("SELECT digest FROM files WHERE path = ?", (to_blob(path),)).fetchone()
    return row[0] if row else None


def _put_mark(conn: sqlite3.Connection, path: str, mark: str | None, digest: str | None) -> None:
    import time

    if mark is None:
        conn.execute("DELETE FROM marks WHERE path = ?", (to_blob(path),))
    else:
        conn.execute(
            "INSERT OR REPLACE INTO marks VALUES (?, ?, ?, ?)",
            (to_blob(path), digest, mark, time.time()),
        )


# -- marks ---------------------------------------------------------------------------------


def set_mark(store: Store, path: str, mark: str | None) -> None:
    """Mark one file ``exclude`` or ``keep``, or clear its mark with ``None``.

    Raises:
        ConfigError: ``mark`` is not one of :data:`FILE_MARKS` or ``None``.
        InputNotFoundError: the store does not list ``path``.
    """
    if mark is not None and mark not in FILE_MARKS:
        raise ConfigError(
            f"Unknown mark {mark!r}; choose from: {', '.join(FILE_MARKS)} (or none to clear). "
            "To make a file its group's keeper use change_keeper()."
        )
    ref = file_by_path(store, path)
    with write_transaction(store) as conn:
        _put_mark(conn, ref.path, mark, ref.digest)


def marks(store: Store) -> dict[str, str]:
    """Path -> mark, for every marked file."""
    return store.marks()


def mark_counts(store: Store) -> dict[str, int]:
    """How many files carry each mark, and how many pairs are marked not-duplicate."""
    counts = {m: 0 for m in (*FILE_MARKS, "keeper")}
    for mark, n in store.conn.execute("SELECT mark, COUNT(*) FROM marks GROUP BY mark"):
        counts[mark] = n
    counts["not_duplicate_pairs"] = store.conn.execute(
        "SELECT COUNT(*) FROM pair_marks"
    ).fetchone()[0]
    return counts


def exclude_group(store: Store, group_id: int) -> list[str]:
    """Mark every member of a group ``exclude``, except the keeper and reference files.

    This is an explicit decision about the whole group, so it replaces earlier ``keep``
    marks on its members. Returns the paths marked.

    Raises:
        StaleGroupError: the group does not exist (any more).
    """
    with write_transaction(store) as conn:
        _group_row(conn, group_id)
        marked = []
        for m in _member_rows(conn, group_id):
            if not m["reference"]:
                _put_mark(conn, m["path"], "exclude", m["digest"])
                marked.append(m["path"])
    return marked


_GROUP_SCORE_SQL = "SELECT group_id, MIN(score) AS score FROM members GROUP BY group_id"
"""Each group's score: the similarity of its least similar member."""


def bulk_exclude(
    store: Store,
    *,
    min_score: float,
    relation: str | None = None,
    root: str | None = None,
    dry_run: bool = False,
    expect_files: int | None = None,
) -> BulkResult:
    """Exclude every non-keeper in every group whose score is at least ``min_score``.

    A group's score is its least similar member's (1.0 for exact and pixel copies).
    Reference files and files marked ``keep``/``keeper`` are left alone: a bulk action
    never overrides a decision made one file at a time. ``relation`` and ``root`` narrow
    the groups like the groups page filters do. With ``expect_files`` (the count the
    person confirmed), nothing is marked unless exactly that many files would be.

    Raises:
        ConfigError: ``min_score`` outside [0, 1] or an unknown ``relation``.
        StaleGroupError: ``expect_files`` is given and another number of files matches.
    """
    if not 0.0 <= min_score <= 1.0:
        raise ConfigError(f"min_score must be within [0, 1], got {min_score!r}.")
    if relation is not None and relation not in RELATIONS:
        raise ConfigError(f"Unknown relation {relation!r}; choose from: {', '.join(RELATIONS)}.")
    # A dry run only reads: one snapshot, without the write lock a scan may be holding.
    with (read_transaction if dry_run else write_transaction)(store) as conn:
        groups = _bulk_groups(conn, min_score, relation, root)
        protected = {
            from_blob(p) for (p,) in conn.execute("SELECT path FROM marks WHERE mark != 'exclude'")
        }
        files: list[str] = []
        for gid in groups:
            for m in _member_rows(conn, gid):
                if not m["reference"] and m["path"] not in protected:
                    files.append(m["path"])
                    if not dry_run:
                        _put_mark(conn, m["path"], "exclude", m["digest"])
        if expect_files is not None and len(files) != expect_files:
            raise StaleGroupError(  # raised inside the transaction: nothing is marked
                f"This bulk exclude would now mark {len(files)} files, not the "
                f"{expect_files} you confirmed (the groups or marks changed since the page "
                "was loaded). Nothing was marked; reload the page to see the new count."
            )
    return BulkResult(len(groups), files, dry_run)


def _bulk_groups(
    conn: sqlite3.Connection, min_score: float, relation: str | None, root: str | None
) -> list[int]:
    sql = (
        f"SELECT g.id, g.roots FROM groups g JOIN ({_GROUP_SCORE_SQL}) s "
        "ON s.group_id = g.id WHERE s.score >= ?"
    )
    args: list[Any] = [min_score]
    if relation is not None:
        sql += " AND g.relation = ?"
        args.append(relation)
    out = []
    for gid, roots in conn.execute(sql + " ORDER BY g.id", args):
        if root is None or root in json.loads(roots):
            out.append(gid)
    return out


# -- keeper change and not-a-duplicate -----------------------------------------------------


def change_keeper(store: Store, group_id: int, path: str) -> None:
    """Make ``path`` the keeper of its group, now and after every re-scan.

    Marks ``path`` as ``keeper`` (clearing other keeper marks in the group) and updates
    the stored group at once: the old keeper becomes a member with the relation the new
    keeper had to it. The relation of every other member to the new keeper is ``exact``
    for the same bytes, ``pixel`` for the same decoded pixels, a cached verdict when the
    scan verified that pair, and otherwise ``near`` with the member's old score (the
    evidence says so; the next scan verifies it).

    Raises:
        StaleGroupError: the group does not exist, or ``path`` is not one of its files.
    """
    path = os.path.abspath(path)
    with write_transaction(store) as conn:
        keeper, _ = _group_row(conn, group_id)
        members = _member_rows(conn, group_id)
        if path == keeper:
            _put_mark(conn, path, "keeper", _digest_of(conn, path))
            return
        chosen = next((m for m in members if m["path"] == path), None)
        if chosen is None:
            raise StaleGroupError(
                f"{path!r} is not in group {group_id}; reload the page to see the current group."
            )
        for m in members:
            if (
                m is not chosen
                and conn.execute(
                    "SELECT 1 FROM marks WHERE path = ? AND mark = 'keeper'", (to_blob(m["path"]),)
                ).fetchone()
            ):
                _put_mark(conn, m["path"], None, None)
        old = {
            "path": keeper,
            "digest": _digest_of(conn, keeper),
            "reference": _is_reference(conn, keeper),
        }
        if conn.execute("SELECT mark FROM marks WHERE path = ?", (to_blob(keeper),)).fetchone() == (
            "keeper",
        ):
            _put_mark(conn, keeper, None, None)
        _put_mark(conn, path, "keeper", chosen["digest"])
        rows = _members_for_new_keeper(conn, chosen, old, [m for m in members if m is not chosen])
        _replace_members(conn, group_id, path, rows, [m["rowid"] for m in members])


def _is_reference(conn: sqlite3.Connection, path: str) -> bool:
    row = conn.execute(
        "SELECT settings FROM runs WHERE status = 'done' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    roots = json.loads(row[0]).get("reference_roots", []) if row else []
    return any(path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _members_for_new_keeper(
    conn: sqlite3.Connection,
    new: dict[str, Any],
    old: dict[str, Any],
    others: list[dict[str, Any]],
) -> list[tuple[str, str, float, bool, dict[str, Any]]]:
    rows = [
        (
            old["path"],
            new["relation"],
            new["score"],
            old["reference"],
            {**new["evidence"], "note": "former keeper"},
        )
    ]
    for m in others:
        if m["digest"] is not None and m["digest"] == old["digest"]:
            relation, score, evidence = new["relation"], new["score"], dict(new["evidence"])
        else:
            relation, score, evidence = _relation(conn, new["digest"], m)
        rows.append((m["path"], relation, score, bool(m["reference"]), evidence))
    return rows


def _relation(
    conn: sqlite3.Connection, keeper_digest: str | None, m: dict[str, Any]
) -> tuple[str, float, dict[str, Any]]:
    digest = m["digest"]
    if digest is None or keeper_digest is None:
        return _estimated(m)
    if digest == keeper_digest:
        return "exact", 1.0, {"method": "content digest"}
    a, b = sorted((digest, keeper_digest))
    facts = dict(
        conn.execute(
            "SELECT digest, COALESCE(pixel_digest, '') || '|' || COALESCE(stream_digest, '') "
            "FROM images WHERE digest IN (?, ?)",
            (a, b),
        ).fetchall()
    )
    fa, fb = (facts.get(a, "|").split("|"), facts.get(b, "|").split("|"))
    if fa[0] and fa[0] == fb[0]:
        return "pixel", 1.0, {"method": "pixel digest"}
    if fa[1] and fa[1] == fb[1]:
        return "pixel", 1.0, {"method": "JPEG stream digest"}
    verdict = conn.execute(
        "SELECT score, evidence FROM verdicts WHERE a = ? AND b = ? AND accepted = 1 LIMIT 1",
        (a, b),
    ).fetchone()
    if verdict is not None:
        return "near", round(verdict[0], 4), {**json.loads(verdict[1]), "source": "cached verdict"}
    return _estimated(m)


def _estimated(m: dict[str, Any]) -> tuple[str, float, dict[str, Any]]:
    relation = m["relation"] if m["relation"] == "mirror" else "near"
    evidence = {
        **m["evidence"],
        "note": "estimated after a keeper change (score against the former keeper); "
        "the next scan verifies it",
    }
    return relation, m["score"], evidence


def _replace_members(
    conn: sqlite3.Connection,
    group_id: int,
    keeper: str,
    rows: list[tuple[str, str, float, bool, dict[str, Any]]],
    old_rowids: list[int],
) -> None:
    # Insert before deleting: new rows get fresh rowids, which readers use to notice.
    conn.executemany(
        "INSERT INTO members VALUES (?, ?, ?, ?, ?, ?)",
        [
            (group_id, to_blob(p), rel, score, int(ref), json.dumps(ev, sort_keys=True))
            for p, rel, score, ref, ev in sorted(rows)
        ],
    )
    conn.executemany("DELETE FROM members WHERE rowid = ?", [(r,) for r in old_rowids])
    refresh_group(conn, group_id, keeper)


def mark_not_duplicate(
    store: Store, group_id: int, path: str, *, other: str | None = None
) -> list[str]:
    """Record that ``path`` is not a duplicate of ``other`` (default: the group's keeper).

    The digest pair goes to ``pair_marks``, so no scan groups the two again, and every
    file with ``path``'s content leaves the group now (the group goes away when no member
    is left). Their ``exclude`` marks are cleared: they were excluded as duplicates.
    Returns the paths removed from the group.

    Raises:
        StaleGroupError: the group does not exist or does not hold both files.
        ConfigError: both files have the same bytes (a byte-exact copy is a duplicate).
    """
    path = os.path.abspath(path)
    with write_transaction(store) as conn:
        keeper, _ = _group_row(conn, group_id)
        members = _member_rows(conn, group_id)
        other = keeper if other is None else os.path.abspath(other)
        in_group = {keeper, *(m["path"] for m in members)}
        for p in (path, other):
            if p not in in_group:
                raise StaleGroupError(
                    f"{p!r} is not in group {group_id}; reload the page to see the current group."
                )
        da, db = _digest_of(conn, path), _digest_of(conn, other)
        if da is None or db is None or da == db:
            raise ConfigError(
                f"{path!r} and {other!r} have the same bytes, so they are duplicates by "
                "definition. Mark one 'keep' instead if both should stay."
            )
        if path == keeper:  # keep the keeper; the other file is the one that leaves
            path, da, db = other, db, da
        import time

        a, b = sorted((da, db))
        conn.execute(
            "INSERT OR REPLACE INTO pair_marks VALUES (?, ?, 'not-duplicate', ?)",
            (a, b, time.time()),
        )
        leaving = [m for m in members if m["digest"] == da]
        for m in leaving:
            conn.execute("DELETE FROM members WHERE rowid = ?", (m["rowid"],))
            conn.execute(
                "DELETE FROM marks WHERE path = ? AND mark = 'exclude'", (to_blob(m["path"]),)
            )
        refresh_group(conn, group_id)
    return [m["path"] for m in leaving]


# -- decisions -----------------------------------------------------------------------------


def scanned_roots(store: Store) -> list[str]:
    """Roots of the latest finished scan (empty when the store has none)."""
    run = store.last_run()
    return list(run["roots"]) if run else []


_DECISIONS_SQL = """
WITH grouped AS (
    SELECT keeper AS path, id AS gid, 'keeper' AS role, 0 AS reference FROM groups
    UNION ALL
    SELECT path, group_id, 'member', reference FROM members
), candidates AS (
    SELECT path, gid, role, reference FROM grouped
    UNION ALL
    SELECT path, NULL, 'ungrouped', 0 FROM marks
    WHERE mark = 'exclude' AND path NOT IN (SELECT path FROM grouped)
)
SELECT f.id, f.path, f.root, f.size, f.mtime_ns, f.digest, f.status, c.gid, c.role,
       c.reference, k.mark,
       CASE WHEN k.mark = 'exclude' THEN 1 WHEN k.mark IN ('keep', 'keeper') THEN 0
            WHEN c.role = 'member' AND NOT c.reference THEN 1 ELSE 0 END AS remove
FROM (SELECT * FROM candidates ORDER BY path) c
JOIN files f ON f.path = c.path LEFT JOIN marks k ON k.path = c.path
WHERE f.status = 'ok' AND f.root IN ({roots})
"""
"""One row per grouped or excluded file; ``remove`` is :func:`decide_one` in SQL (the
tests hold the two equal), so counts and pages need no Python pass over every file.
Candidates are visited in path order so the file lookups walk the index in order."""


def _fs_decode(blob: bytes) -> str:
    return bytes(blob).decode(_FS_ENCODING, _FS_ERRORS)


_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()


def _decisions_query(
    store: Store, tail: str = "", args: Sequence[Any] = ()
) -> list[tuple[Any, ...]]:
    roots = [to_blob(r) for r in scanned_roots(store)]
    if not roots:
        return []
    sql = _DECISIONS_SQL.format(roots=",".join("?" * len(roots)))
    return store.conn.execute(f"SELECT * FROM ({sql}) {tail}", [*roots, *args]).fetchall()


def _decision(row: Sequence[Any]) -> Decision:
    action, reason = decide_one(row[8], bool(row[9]), row[10])
    path, root = _fs_decode(row[1]), _fs_decode(row[2])
    return Decision(row[0], path, root, row[3], row[5], row[7], row[8], action, reason)


def decide(store: Store) -> list[Decision]:
    """One decision per grouped or marked file of the latest scan, sorted by path.

    Files in no group and not marked are kept and not listed here; :func:`kept_files`
    lists every kept file. Marks on paths the store no longer lists are ignored.
    """
    seen: dict[str, Decision] = {}
    for row in _decisions_query(store, "ORDER BY path"):
        d = _decision(row)
        seen.setdefault(d.path, d)
    return list(seen.values())


def removals(store: Store, *, limit: int, offset: int = 0) -> list[Decision]:
    """One page of the files an export removes, sorted by path."""
    rows = _decisions_query(
        store, "WHERE remove = 1 ORDER BY path LIMIT ? OFFSET ?", (limit, offset)
    )
    return [_decision(r) for r in rows]


def decision_counts(store: Store) -> dict[str, Any]:
    """What an export would keep and remove, counted in SQL (fast on large stores).

    Keys: ``keep`` / ``remove`` (grouped or marked files by action), ``remove_bytes``,
    ``kept_files`` (every readable file not removed) and ``groups_with_nothing_kept``.
    """
    roots = [to_blob(r) for r in scanned_roots(store)]
    if not roots:
        return {
            "keep": 0,
            "remove": 0,
            "remove_bytes": 0,
            "kept_files": 0,
            "groups_with_nothing_kept": [],
        }
    sql = _DECISIONS_SQL.format(roots=",".join("?" * len(roots)))
    paths: set[bytes] = set()
    removed = removed_bytes = 0
    kept_in_group: dict[int, bool] = {}
    for path, gid, size, remove in store.conn.execute(
        f"SELECT path, gid, size, remove FROM ({sql})", roots
    ):
        if path in paths:
            continue
        paths.add(path)
        removed += remove
        removed_bytes += remove * size
        if gid is not None:
            kept_in_group[gid] = kept_in_group.get(gid, False) or not remove
    total = len(paths)
    emptied = sorted(g for g, kept in kept_in_group.items() if not kept)
    qs = ",".join("?" * len(roots))
    ok = store.conn.execute(
        f"SELECT COUNT(*) FROM files WHERE status = 'ok' AND root IN ({qs})", roots
    ).fetchone()[0]
    return {
        "keep": total - int(removed),
        "remove": int(removed),
        "remove_bytes": int(removed_bytes),
        "kept_files": ok - int(removed),
        "groups_with_nothing_kept": emptied,
    }


def decide_one(role: str, reference: bool, mark: str | None) -> tuple[str, str]:
    """``(action, reason)`` for one file from its role in a group, reference flag and mark."""
    if mark == "exclude":
        return "remove", "marked exclude"
    if mark in ("keep", "keeper"):
        return "keep", f"marked {mark}"
    if role == "keeper":
        return "keep", "keeper"
    if reference:
        return "keep", "in a reference root"
    if role == "member":
        return "remove", "duplicate of the keeper"
    return "keep", "not a duplicate"


def kept_files(store: Store, decisions: Sequence[Decision] | None = None) -> list[FileRef]:
    """Every readable file of the latest scan that the decisions keep, sorted by path."""
    roots = [to_blob(r) for r in scanned_roots(store)]
    if not roots:
        return []
    if decisions is None:
        decisions = decide(store)
    removed = {to_blob(d.path) for d in decisions if d.action == "remove"}
    qs = ",".join("?" * len(roots))
    rows = store.conn.execute(
        f"SELECT {_FILE_COLS} FROM files WHERE status = 'ok' AND root IN ({qs}) ORDER BY path",
        roots,
    ).fetchall()
    return [
        FileRef(r[0], _fs_decode(r[1]), _fs_decode(r[2]), r[3], r[4], r[5], r[6])
        for r in rows
        if bytes(r[1]) not in removed
    ]


def decision_summary(decisions: Sequence[Decision]) -> dict[str, Any]:
    """Counts and bytes of the decisions, plus groups where every copy would go."""
    removed = [d for d in decisions if d.action == "remove"]
    by_group: dict[int, list[Decision]] = {}
    for d in decisions:
        if d.group is not None:
            by_group.setdefault(d.group, []).append(d)
    emptied = sorted(g for g, ds in by_group.items() if all(d.action == "remove" for d in ds))
    return {
        "keep": sum(d.action == "keep" for d in decisions),
        "remove": len(removed),
        "remove_bytes": sum(d.size for d in removed),
        "groups_with_nothing_kept": emptied,
    }


def decision_to_dict(d: Decision) -> dict[str, Any]:
    """JSON form of a decision."""
    return {
        "file_id": d.file_id,
        "path": d.path,
        "root": d.root,
        "size": d.size,
        "digest": d.digest,
        "group": d.group,
        "role": d.role,
        "action": d.action,
        "reason": d.reason,
    }
