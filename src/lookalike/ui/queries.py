"""The read side of the review UI: SQL that answers each page without loading every group.

Listing pages need per-group figures the ``groups`` table does not hold (files, score,
reclaimable bytes). :class:`GroupIndex` computes them once into a ``TEMP`` table of the
UI's connection (about 150 ms for 100,000 images; its 20,000 rows need no index to sort),
so the table lives in memory beside the store and a GET never writes to the store file.
It is rebuilt only when the groups change: ``PRAGMA data_version`` tells when another
connection committed, and a cheap signature of the
``groups``/``members`` tables tells whether that commit touched groups (marks do not).
Every page is then a ``WHERE ... ORDER BY ... LIMIT/OFFSET`` over that table.

The dictionaries returned reuse :func:`lookalike.report.group_to_dict` and
:func:`lookalike.report.summary`'s keys, so ``/….json`` equals the CLI's ``--json``.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import Counter
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from ..errors import ConfigError
from ..records import RELATIONS, Group, Member
from ..report import group_to_dict
from ..store import Store, from_blob, to_blob

SORTS = {"bytes": "bytes", "size": "files", "score": "score", "id": "id"}
"""Sort keys of the groups page -> column of the group index."""

PER_PAGE = (24, 48, 96, 200)

_SIGNATURE_SQL = (
    "SELECT (SELECT COUNT(*) FROM groups), (SELECT MAX(run_id) FROM groups), "
    "(SELECT TOTAL(LENGTH(keeper)) FROM groups), (SELECT COUNT(*) FROM members), "
    "(SELECT MAX(rowid) FROM members), (SELECT TOTAL(score) FROM members)"
)

# Members are visited in path order so the size lookups walk the files index in order
# (twice as fast as in group order on a 100,000-file store).
_BUILD_SQL = """
CREATE TEMP TABLE review_groups AS
SELECT g.id AS id, g.relation AS relation, g.roots AS roots, s.n + 1 AS files,
       s.score AS score, s.bytes AS bytes, json_array_length(g.roots) > 1 AS spans
FROM groups g JOIN (
    SELECT m.group_id AS gid, COUNT(*) AS n, MIN(m.score) AS score,
           TOTAL(CASE WHEN m.reference THEN 0 ELSE COALESCE(f.size, 0) END) AS bytes
    FROM (SELECT group_id, path, score, reference FROM members ORDER BY path) m
    LEFT JOIN files f ON f.path = m.path
    GROUP BY m.group_id
) s ON s.gid = g.id
"""


_BUILD_ONE_SQL = """
INSERT INTO temp.review_groups
SELECT g.id, g.relation, g.roots, s.n + 1, s.score, s.bytes, json_array_length(g.roots) > 1
FROM groups g JOIN (
    SELECT m.group_id AS gid, COUNT(*) AS n, MIN(m.score) AS score,
           TOTAL(CASE WHEN m.reference THEN 0 ELSE COALESCE(f.size, 0) END) AS bytes
    FROM members m LEFT JOIN files f ON f.path = m.path
    WHERE m.group_id = ?
    GROUP BY m.group_id
) s ON s.gid = g.id
"""


@dataclass(frozen=True)
class GroupQuery:
    """Filters, sort and page of the groups listing (the query string of ``/groups``)."""

    sort: str = "bytes"
    order: str = "desc"
    relation: str | None = None
    root: str | None = None
    min_score: float = 0.0
    spans: bool = False
    page: int = 1
    per_page: int = 48

    def validate(self) -> GroupQuery:
        """Return self, or raise ConfigError naming the bad parameter and allowed values."""
        if self.sort not in SORTS:
            raise ConfigError(f"Unknown sort {self.sort!r}; choose from: {', '.join(SORTS)}.")
        if self.order not in ("asc", "desc"):
            raise ConfigError(f"Unknown order {self.order!r}; choose from: asc, desc.")
        if self.relation is not None and self.relation not in RELATIONS:
            raise ConfigError(
                f"Unknown relation {self.relation!r}; choose from: {', '.join(RELATIONS)}."
            )
        if not 0.0 <= self.min_score <= 1.0:
            raise ConfigError(f"min_score must be within [0, 1], got {self.min_score!r}.")
        if self.page < 1 or self.per_page not in PER_PAGE:
            raise ConfigError(
                f"page must be >= 1 and per_page one of {', '.join(map(str, PER_PAGE))}."
            )
        return self

    def params(self, **changes: Any) -> dict[str, Any]:
        """Query-string parameters of this query with ``changes`` applied (defaults left out)."""
        values = {**self.__dict__, **changes}
        defaults = GroupQuery().__dict__
        return {k: v for k, v in values.items() if v != defaults[k] and v is not None}


class GroupIndex:
    """Per-group figures of the store's groups, in a TEMP table of ``conn``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        conn.execute("PRAGMA temp_store = MEMORY")
        self._seen: tuple[Any, ...] | None = None
        self._signature: tuple[Any, ...] | None = None
        self.generation = 0
        self.builds = 0

    def invalidate(self) -> None:
        """Forget the cached figures (call after this connection changed the groups)."""
        self.generation += 1

    def refresh(self, group_id: int) -> None:
        """Recompute one group's row after this connection changed that group only.

        Commits of this connection leave ``data_version`` alone, so after updating the row
        the signature is taken anew and the next :meth:`ensure` finds nothing to rebuild.

        The TEMP table's ``DELETE``/``INSERT`` open a transaction of their own (Python's
        sqlite3 begins one before any DML), which is committed here before returning, or
        rolled back on error: left open, it would hold a read snapshot of the store, and
        the next ``BEGIN IMMEDIATE`` of this connection would fail while taking (and then
        keeping) the store's write lock, locking out every scan.
        """
        version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        if self._seen != (version, self.generation):
            # Not built yet, or another connection (a scan) committed since: rebuild all.
            self.invalidate()
            return
        if self.conn.in_transaction:  # a caller's transaction: not ours to end
            self.invalidate()
            return
        try:
            self.conn.execute("DELETE FROM temp.review_groups WHERE id = ?", (group_id,))
            self.conn.execute(_BUILD_ONE_SQL, (group_id,))
            self._signature = tuple(self.conn.execute(_SIGNATURE_SQL).fetchone())
            self.conn.commit()
        except BaseException:
            if self.conn.in_transaction:
                self.conn.rollback()
            self.invalidate()
            raise

    def ensure(self) -> None:
        """Rebuild the TEMP tables when the groups changed since the last build."""
        version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        seen = (version, self.generation)
        if seen == self._seen:
            return
        signature = tuple(self.conn.execute(_SIGNATURE_SQL).fetchone())
        own_change = self._seen is None or self._seen[1] != self.generation
        if own_change or signature != self._signature:
            self._build()
            self._signature = signature
        self._seen = seen

    def _build(self) -> None:
        conn = self.conn
        conn.execute("DROP TABLE IF EXISTS temp.review_groups")
        conn.execute(_BUILD_SQL)
        self.builds += 1

    def _where(self, q: GroupQuery, table: str = "") -> tuple[str, list[Any]]:
        t = f"{table}." if table else ""
        clauses, args = [f"{t}score >= ?"], [q.min_score]
        if q.relation:
            clauses.append(f"{t}relation = ?")
            args.append(q.relation)
        if q.root:
            clauses.append(f"EXISTS (SELECT 1 FROM json_each({t}roots) WHERE value = ?)")
            args.append(q.root)
        if q.spans:
            clauses.append(f"{t}spans")
        return " AND ".join(clauses), args

    def page(self, q: GroupQuery) -> tuple[int, list[dict[str, Any]]]:
        """Total matching groups and the rows of the requested page."""
        self.ensure()
        where, args = self._where(q)
        total = self.conn.execute(
            f"SELECT COUNT(*) FROM temp.review_groups WHERE {where}", args
        ).fetchone()[0]
        direction = "DESC" if q.order == "desc" else "ASC"
        rows = self.conn.execute(
            f"SELECT id, files, score, bytes FROM temp.review_groups WHERE {where} "
            f"ORDER BY {SORTS[q.sort]} {direction}, id {direction} LIMIT ? OFFSET ?",
            [*args, q.per_page, (q.page - 1) * q.per_page],
        ).fetchall()
        return total, [{"id": r[0], "files": r[1], "score": r[2], "bytes": int(r[3])} for r in rows]

    def bulk_count(
        self, min_score: float, relation: str | None = None, root: str | None = None
    ) -> dict[str, Any]:
        """What :func:`lookalike.review.bulk_exclude` would mark, counted in SQL.

        The same groups (score, relation and root filters) and the same files (members
        that are not in a reference root and not marked ``keep``/``keeper``); about 20 ms
        on a 100,000-image store, so every groups page can show it. ``already`` counts
        those files that are marked ``exclude`` now.
        """
        self.ensure()
        q = GroupQuery(min_score=min_score, relation=relation, root=root)
        where, args = self._where(q, "g")
        groups, files, already = self.conn.execute(
            "SELECT COUNT(DISTINCT g.id), COUNT(m.path), COUNT(k.path) "
            "FROM temp.review_groups g LEFT JOIN members m ON m.group_id = g.id "
            "AND NOT m.reference AND m.path NOT IN "
            "(SELECT path FROM marks WHERE mark != 'exclude') "
            "LEFT JOIN marks k ON k.path = m.path AND k.mark = 'exclude' "
            f"WHERE {where}",
            args,
        ).fetchone()
        return {
            "min_score": min_score,
            "relation": relation,
            "root": root,
            "groups": groups,
            "files": files,
            "already": already,
        }

    def totals(self) -> dict[str, Any]:
        """The scan summary (:func:`lookalike.report.summary`'s keys) computed in SQL."""
        self.ensure()
        by_relation = dict(
            self.conn.execute("SELECT relation, COUNT(*) FROM temp.review_groups GROUP BY relation")
        )
        by_member = dict(
            self.conn.execute("SELECT relation, COUNT(*) FROM members GROUP BY relation")
        )
        groups, files, reclaim = self.conn.execute(
            "SELECT COUNT(*), TOTAL(files), TOTAL(bytes) FROM temp.review_groups"
        ).fetchone()
        counts: Counter[tuple[str, str]] = Counter()
        for (roots,) in self.conn.execute("SELECT roots FROM temp.review_groups WHERE spans"):
            counts.update(combinations(sorted(json.loads(roots)), 2))
        return {
            "groups": groups,
            "duplicates": int(files) - groups,
            "groups_by_relation": {r: by_relation.get(r, 0) for r in RELATIONS},
            "duplicates_by_relation": {r: by_member.get(r, 0) for r in RELATIONS},
            "reclaimable_bytes": int(reclaim),
            "leakage": [{"roots": list(p), "groups": n} for p, n in sorted(counts.items())],
        }

    def neighbours(self, group_id: int) -> tuple[int | None, int | None]:
        """Ids of the previous and next group (by id)."""
        prev = self.conn.execute("SELECT MAX(id) FROM groups WHERE id < ?", (group_id,)).fetchone()[
            0
        ]
        nxt = self.conn.execute("SELECT MIN(id) FROM groups WHERE id > ?", (group_id,)).fetchone()[
            0
        ]
        return prev, nxt


# -- groups with their files ---------------------------------------------------------------


@dataclass(frozen=True)
class FileFacts:
    """What a page shows about one file beside its group membership."""

    id: int | None
    digest: str | None
    width: int | None
    height: int | None
    format: str | None
    lossless: bool | None
    mark: str | None


def _facts(conn: sqlite3.Connection, paths: list[str]) -> dict[str, FileFacts]:
    out: dict[str, FileFacts] = {}
    for start in range(0, len(paths), 500):
        chunk = [to_blob(p) for p in paths[start : start + 500]]
        qs = ",".join("?" * len(chunk))
        for row in conn.execute(
            "SELECT f.path, f.id, f.digest, i.width, i.height, i.format, i.lossless, k.mark "
            "FROM files f LEFT JOIN images i ON i.digest = f.digest "
            f"LEFT JOIN marks k ON k.path = f.path WHERE f.path IN ({qs})",
            chunk,
        ):
            lossless = None if row[6] is None else bool(row[6])
            out[from_blob(row[0])] = FileFacts(
                row[1], row[2], row[3], row[4], row[5], lossless, row[7]
            )
    return out


def load_groups(conn: sqlite3.Connection, ids: list[int]) -> dict[int, Group]:
    """The groups with these ids as :class:`~lookalike.records.Group` (missing ids left out)."""
    if not ids:
        return {}
    qs = ",".join("?" * len(ids))
    members: dict[int, list[Member]] = {}
    for gid, path, relation, score, reference, evidence, root, size in conn.execute(
        "SELECT m.group_id, m.path, m.relation, m.score, m.reference, m.evidence, f.root, f.size "
        f"FROM members m LEFT JOIN files f ON f.path = m.path WHERE m.group_id IN ({qs}) "
        "ORDER BY m.group_id, m.path",
        ids,
    ):
        members.setdefault(gid, []).append(
            Member(
                from_blob(path),
                relation,
                score,
                from_blob(root) if root else "",
                size or 0,
                bool(reference),
                json.loads(evidence),
            )
        )
    out = {}
    for gid, keeper, roots, k_root, k_size in conn.execute(
        "SELECT g.id, g.keeper, g.roots, f.root, f.size FROM groups g "
        f"LEFT JOIN files f ON f.path = g.keeper WHERE g.id IN ({qs})",
        ids,
    ):
        if gid in members:
            out[gid] = Group(
                gid,
                from_blob(keeper),
                from_blob(k_root) if k_root else "",
                k_size or 0,
                tuple(members[gid]),
                tuple(json.loads(roots)),
            )
    return out


def group_view(conn: sqlite3.Connection, group: Group) -> dict[str, Any]:
    """:func:`~lookalike.report.group_to_dict` plus what the UI shows: per path the file
    id, image facts, mark and planned export action; the group score (its least similar
    member's) and mark counts."""
    from ..review import decide_one

    doc = group_to_dict(group)
    paths = [group.keeper, *(m.path for m in group.members)]
    facts = _facts(conn, paths)
    doc["score"] = min((m.score for m in group.members), default=1.0)
    doc["files"] = {p: _facts_dict(facts.get(p)) for p in paths}
    roles = {
        group.keeper: ("keeper", False),
        **{m.path: ("member", m.reference) for m in group.members},
    }
    for p, entry in doc["files"].items():
        entry["action"], entry["reason"] = decide_one(*roles[p], entry["mark"])
    doc["marked"] = dict(
        sorted(Counter(e["mark"] for e in doc["files"].values() if e["mark"]).items())
    )
    return doc


def _facts_dict(f: FileFacts | None) -> dict[str, Any]:
    if f is None:
        return {
            "id": None,
            "digest": None,
            "width": None,
            "height": None,
            "format": None,
            "lossless": None,
            "mark": None,
        }
    return dict(f.__dict__)


# -- overview, failures, objects -----------------------------------------------------------


def last_run(store: Store) -> dict[str, Any] | None:
    """The latest finished scan, plus whether a scan is running now."""
    run = store.last_run()
    running = store.conn.execute("SELECT COUNT(*) FROM runs WHERE status = 'running'").fetchone()[0]
    if run is not None:
        run = {**run, "running": bool(running)}
    return run


def file_counts(store: Store, roots: list[str]) -> dict[str, int]:
    """Files of the scanned roots by status (ok, failed, skipped)."""
    counts = {"ok": 0, "failed": 0, "skipped": 0}
    if not roots:
        return counts
    qs = ",".join("?" * len(roots))
    for status, n in store.conn.execute(
        f"SELECT status, COUNT(*) FROM files WHERE root IN ({qs}) GROUP BY status",
        [to_blob(r) for r in roots],
    ):
        counts[status] = n
    return counts


def failures(
    store: Store, roots: list[str], *, status: str = "failed", limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    """Files that failed (or were skipped), as the ``failures`` entries of ``--json``."""
    if not roots:
        return 0, []
    qs = ",".join("?" * len(roots))
    args: list[Any] = [status, *(to_blob(r) for r in roots)]
    where = f"status = ? AND root IN ({qs})"
    total = store.conn.execute(f"SELECT COUNT(*) FROM files WHERE {where}", args).fetchone()[0]
    rows = store.conn.execute(
        f"SELECT path, stage, error FROM files WHERE {where} ORDER BY path LIMIT ? OFFSET ?",
        [*args, limit, offset],
    ).fetchall()
    default_stage = "read" if status == "failed" else "discover"
    return total, [
        {"path": from_blob(p), "stage": stage or default_stage, "error": error or ""}
        for p, stage, error in rows
    ]


_OBJECT_COLUMNS = {
    "path": ("path", "image_path", "image", "file", "file_path"),
    "file_id": ("file_id",),
    "label": ("label", "class", "category", "class_name"),
    "kind": ("kind", "relation", "problem"),
    "reason": ("reason", "rule"),
    "set": ("group_id", "set_id", "duplicate_set", "pair_id", "dup_group", "group"),
    "action": ("action", "decision"),
    "score": ("iou", "score", "similarity"),
}
_BOX_COLUMNS = (
    ("x0", "y0", "x1", "y1", "xyxy"),
    ("xmin", "ymin", "xmax", "ymax", "xyxy"),
    ("x", "y", "w", "h", "xywh"),
    ("x", "y", "width", "height", "xywh"),
)


def has_objects_table(conn: sqlite3.Connection) -> bool:
    """True when the store holds object results (an ``objects`` table)."""
    return (
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type IN ('table', 'view') AND name = 'objects'"
        ).fetchone()
        is not None
    )


def objects(
    conn: sqlite3.Connection, *, limit: int, offset: int, kind: str | None = None
) -> dict[str, Any]:
    """Duplicate boxes from the ``objects`` table, grouped by image.

    The table is written by the objects feature; its columns are read by name
    (``path``/``file_id``, ``label``, a box as ``x0,y0,x1,y1``, ``xmin..ymax``,
    ``x,y,w,h`` or a JSON ``box`` ``[x0, y0, x1, y1]``, and optional ``kind``,
    ``group_id``, ``action``, ``iou``), so it keeps working as that schema grows.
    ``kind`` keeps only the boxes of that finding kind (when the table has a kind).
    """
    if not has_objects_table(conn):
        return {"available": False, "images": [], "total_images": 0, "columns": []}
    cols = [r[1] for r in conn.execute("PRAGMA table_info(objects)")]
    lower = {c.lower(): c for c in cols}
    pick = {
        k: next((lower[a] for a in names if a in lower), None)
        for k, names in _OBJECT_COLUMNS.items()
    }
    box = next((b for b in _BOX_COLUMNS if all(c in lower for c in b[:4])), None)
    json_box = lower.get("box") or lower.get("bbox")
    if (pick["path"] is None and pick["file_id"] is None) or (box is None and json_box is None):
        return {
            "available": True,
            "readable": False,
            "columns": cols,
            "images": [],
            "total_images": 0,
        }
    rows = [dict(zip(cols, r, strict=True)) for r in conn.execute("SELECT * FROM objects")]
    if kind and pick["kind"]:
        rows = [r for r in rows if r[pick["kind"]] == kind]
    by_image: dict[Any, list[dict[str, Any]]] = {}
    for r in rows:
        key = r[pick["file_id"]] if pick["file_id"] else _as_path(r[pick["path"]])
        by_image.setdefault(key, []).append(_object(r, pick, box, json_box))
    keys = sorted(by_image, key=str)
    page = keys[offset : offset + limit]
    return {
        "available": True,
        "readable": True,
        "columns": cols,
        "total_images": len(keys),
        "total_objects": len(rows),
        "images": [_object_image(conn, k, by_image[k], bool(pick["file_id"])) for k in page],
    }


def _as_path(value: Any) -> str:
    return from_blob(value) if isinstance(value, bytes) else str(value)


def _object(
    r: dict[str, Any], pick: dict[str, str | None], box: Any, json_box: str | None
) -> dict[str, Any]:
    if box is not None:
        a, b, c, d = (float(r[box[0]]), float(r[box[1]]), float(r[box[2]]), float(r[box[3]]))
        xyxy = [a, b, c, d] if box[4] == "xyxy" else [a, b, a + c, b + d]
    else:
        xyxy = [float(v) for v in json.loads(r[json_box])][:4]
    out = {"box": xyxy}
    for key in ("label", "kind", "reason", "set", "action", "score"):
        col = pick[key]
        out[key] = r[col] if col else None
    return out


def _object_image(
    conn: sqlite3.Connection, key: Any, boxes: list[dict[str, Any]], by_id: bool
) -> dict[str, Any]:
    if by_id:
        row = conn.execute(
            "SELECT f.id, f.path, i.width, i.height FROM files f LEFT JOIN images i "
            "ON i.digest = f.digest WHERE f.id = ?",
            (key,),
        ).fetchone()
    else:
        row = conn.execute(
            "SELECT f.id, f.path, i.width, i.height FROM files f LEFT JOIN images i "
            "ON i.digest = f.digest WHERE f.path = ?",
            (to_blob(os.path.abspath(key)),),
        ).fetchone()
    if row is None:
        return {"file_id": None, "path": str(key), "width": None, "height": None, "objects": boxes}
    return {
        "file_id": row[0],
        "path": from_blob(row[1]),
        "width": row[2],
        "height": row[3],
        "objects": boxes,
    }
