"""Act on the review: keep/remove lists, a clean copy, quarantine with a manifest, undo.

lookalike never deletes a file outright. The three ways to act on the decisions of
:func:`lookalike.review.decide`:

* :func:`list_rows` / :func:`format_rows`: keep and remove lists (CSV, JSON, plain text).
* :func:`copy_kept`: a clean copy of the dataset (``copy``, ``hardlink`` or ``symlink``
  of each kept file), with the layout preserved relative to each root; with several
  roots each root's folder name becomes a top folder.
* :func:`quarantine`: moves every removed file into a folder, same layout, and writes a
  JSON manifest (original path, new path, size, SHA-256, group, reason, timestamp)
  *before* moving anything. :func:`undo` reads the manifest and puts the files back,
  refusing to overwrite a file that reappeared at the original path and refusing a file
  whose bytes do not match the recorded digest.

Every operation has ``dry_run``, which plans and returns the same :class:`ExportResult`
without touching the filesystem. Moves never clobber: a hard link (or an exclusive
create across filesystems) puts the file at its new place before the old name goes.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, FileChangedError, InputNotFoundError
from .review import (
    Decision,
    decide,
    decision_counts,
    kept_files,
    scanned_roots,
)
from .store import Store, from_blob

LIST_FORMATS = ("csv", "json", "txt")
LISTS = ("all", "keep", "remove")
COPY_MODES = ("copy", "hardlink", "symlink")
MANIFEST_SCHEMA = "lookalike.quarantine/1"
LIST_FIELDS = (
    *("group", "role", "action", "path", "root", "relation", "score", "size", "reference"),
    *("reason", "digest"),
)
"""Columns of a keep/remove list: those of ``lookalike scan --csv`` in the same order, then
why (``reason``) and the content digest."""
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Move:
    """One planned file operation: ``source`` goes (or is linked) to ``target``."""

    source: str
    target: str
    size: int
    digest: str | None
    group: int | None = None
    reason: str = ""


@dataclass
class ExportResult:
    """What an export did, or would do with ``dry_run``."""

    action: str
    dry_run: bool
    planned: list[Move] = field(default_factory=list)
    done: list[Move] = field(default_factory=list)
    skipped: list[tuple[Move, str]] = field(default_factory=list)
    failed: list[tuple[Move, str]] = field(default_factory=list)
    manifest: str | None = None

    @property
    def ok(self) -> bool:
        """True when no file failed."""
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``lookalike export --json``)."""
        return {
            "action": self.action,
            "dry_run": self.dry_run,
            "manifest": self.manifest,
            "planned": len(self.planned),
            "bytes": sum(m.size for m in self.planned),
            "done": [asdict(m) for m in self.done],
            "skipped": [{**asdict(m), "why": why} for m, why in self.skipped],
            "failed": [{**asdict(m), "why": why} for m, why in self.failed],
            "moves": [asdict(m) for m in self.planned] if self.dry_run else [],
        }


# -- lists ---------------------------------------------------------------------------------


def list_rows(store: Store, which: str = "all") -> list[dict[str, Any]]:
    """Rows of the keep list, the remove list, or both (``all``), sorted by path.

    The keep list holds every readable file of the latest scan that is not removed
    (files in no group too), so it describes the whole clean dataset.

    Raises:
        ConfigError: ``which`` is not one of :data:`LISTS`.
    """
    if which not in LISTS:
        raise ConfigError(f"Unknown list {which!r}; choose from: {', '.join(LISTS)}.")
    decisions = decide(store)
    by_path = {d.path: d for d in decisions}
    rows: list[dict[str, Any]] = []
    if which in ("all", "keep"):
        for f in kept_files(store, decisions):
            d = by_path.get(f.path)
            rows.append(
                _row(
                    "keep",
                    d.reason if d else "not a duplicate",
                    d,
                    f.path,
                    f.root,
                    f.size,
                    f.digest,
                )
            )
    if which in ("all", "remove"):
        rows.extend(
            _row("remove", d.reason, d, d.path, d.root, d.size, d.digest)
            for d in decisions
            if d.action == "remove"
        )
    return sorted(_with_relations(store, rows), key=lambda r: r["path"])


def _with_relations(store: Store, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add each group member's relation to its keeper, score and reference flag (empty
    for keepers and files in no group, as in ``lookalike scan --csv``)."""
    members = {
        from_blob(path): (relation, score, int(reference))
        for path, relation, score, reference in store.conn.execute(
            "SELECT path, relation, score, reference FROM members"
        )
    }
    for row in rows:
        found = members.get(row["path"]) if row["role"] == "member" else None
        row["relation"], row["score"], row["reference"] = found or (None, None, None)
    return rows


def _row(
    action: str,
    reason: str,
    d: Decision | None,
    path: str,
    root: str,
    size: int,
    digest: str | None,
) -> dict[str, Any]:
    return {
        "action": action,
        "reason": reason,
        "group": d.group if d else None,
        "role": d.role if d else "ungrouped",
        "path": path,
        "root": root,
        "size": size,
        "digest": digest,
    }


def format_rows(rows: Sequence[dict[str, Any]], fmt: str) -> str:
    """Text of a list in ``csv``, ``json`` or ``txt`` (one path per line).

    Raises:
        ConfigError: unknown format.
    """
    if fmt == "json":
        return json.dumps({"schema": "lookalike.export-list/1", "files": list(rows)}, indent=2)
    if fmt == "txt":
        return "".join(f"{_printable(r['path'])}\n" for r in rows)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=LIST_FIELDS, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: _printable(v) if isinstance(v, str) else v for k, v in r.items()})
        return buf.getvalue()
    raise ConfigError(f"Unknown list format {fmt!r}; choose from: {', '.join(LIST_FORMATS)}.")


def _printable(text: str) -> str:
    """Paths that are not valid UTF-8 keep their undecodable bytes as ``\\xNN`` escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# -- layout --------------------------------------------------------------------------------


def root_prefixes(roots: Sequence[str]) -> dict[str, str]:
    """Top folder per root in an export: none for one root, else the root's folder name
    (``name-2``, ``name-3``... when two roots share a name)."""
    if len(roots) <= 1:
        return {r: "" for r in roots}
    out: dict[str, str] = {}
    used: set[str] = set()
    for root in sorted(roots):
        base = os.path.basename(root.rstrip(os.sep)) or "root"
        name, n = base, 1
        while name in used:
            n += 1
            name = f"{base}-{n}"
        used.add(name)
        out[root] = name
    return out


def target_for(dest: str, root: str, path: str, prefixes: dict[str, str]) -> str:
    """Where ``path`` (under ``root``) goes inside ``dest``."""
    rel = os.path.relpath(path, root)
    if rel.startswith(os.pardir):
        raise ConfigError(f"{path!r} is not inside its root {root!r}; re-scan the folder.")
    return os.path.join(dest, prefixes.get(root, ""), rel)


def check_destination(dest: str, roots: Sequence[str], flag: str) -> str:
    """Absolute ``dest``, refusing a folder inside a scanned root or containing one (the
    next scan would find the exported files as new duplicates).

    Raises:
        ConfigError: ``dest`` overlaps a root.
    """
    real = os.path.realpath(dest)
    for root in roots:
        r = os.path.realpath(root)
        if real == r or real.startswith(r.rstrip(os.sep) + os.sep):
            raise ConfigError(
                f"{flag} {dest!r} lies inside the scanned root {root!r}; the next scan would "
                "find the files again. Choose a folder outside the dataset."
            )
        if r.startswith(real.rstrip(os.sep) + os.sep):
            raise ConfigError(
                f"{flag} {dest!r} contains the scanned root {root!r}. Choose a folder outside "
                "the dataset."
            )
    return os.path.abspath(dest)


# -- file primitives -----------------------------------------------------------------------


def file_digest(path: str) -> str:
    """SHA-256 of a file's bytes (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _copy_verified(source: str, target: str, digest: str | None) -> None:
    """Copy to a temporary name beside ``target``, check the digest, then link it in place
    without overwriting (``FileExistsError`` when ``target`` exists)."""
    folder = os.path.dirname(target)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".lookalike-")
    try:
        h = hashlib.sha256()
        with open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
            while chunk := src.read(_CHUNK):
                h.update(chunk)
                dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        if digest is not None and h.hexdigest() != digest:
            raise FileChangedError(
                f"{source!r} changed since the scan (digest mismatch); not exported. Re-scan first."
            )
        os.utime(tmp, ns=(os.stat(source).st_atime_ns, os.stat(source).st_mtime_ns))
        _link_no_clobber(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _link_no_clobber(source: str, target: str) -> None:
    """Give ``source`` the extra name ``target``; never replaces an existing file."""
    try:
        os.link(source, target)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            raise FileExistsError(errno.EEXIST, "exists", target) from exc
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        # No hard links on this filesystem: exclusive rename as well as we can.
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "exists", target) from exc
        os.rename(source, target)


def move_no_clobber(source: str, target: str, digest: str | None) -> None:
    """Move a file without ever overwriting and without a window where it is lost.

    Same filesystem: hard-link at ``target``, then drop the old name. Across filesystems:
    copy with digest check and fsync, link in place, then drop the old name.

    Raises:
        FileExistsError: ``target`` exists.
        FileChangedError: the bytes do not match ``digest``.
    """
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if digest is not None and file_digest(source) != digest:
        raise FileChangedError(
            f"{source!r} changed since the scan (digest mismatch); not moved. Re-scan first."
        )
    try:
        os.link(source, target)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            raise FileExistsError(errno.EEXIST, "exists", target) from exc
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        _copy_verified(source, target, digest)
    os.unlink(source)


# -- clean copy ----------------------------------------------------------------------------


def plan_copy(store: Store, dest: str) -> list[Move]:
    """Every kept file and where it goes under ``dest``."""
    roots = scanned_roots(store)
    dest = check_destination(dest, roots, "--copy-to")
    prefixes = root_prefixes(roots)
    return [
        Move(f.path, target_for(dest, f.root, f.path, prefixes), f.size, f.digest, None, "kept")
        for f in kept_files(store)
    ]


def copy_kept(
    store: Store, dest: str, *, mode: str = "copy", dry_run: bool = False
) -> ExportResult:
    """Write a clean copy of the dataset: each kept file copied, hard-linked or symlinked.

    Files already present with the same content are skipped, so a second run completes
    an interrupted one; a different file at a target is never overwritten (it fails).

    Raises:
        ConfigError: unknown ``mode``, or ``dest`` overlaps a scanned root.
    """
    if mode not in COPY_MODES:
        raise ConfigError(f"Unknown --mode {mode!r}; choose from: {', '.join(COPY_MODES)}.")
    return run_copy(plan_copy(store, dest), mode, dry_run=dry_run)


def run_copy(moves: list[Move], mode: str, *, dry_run: bool = False) -> ExportResult:
    """Carry out a planned clean copy (see :func:`copy_kept`); needs no store."""
    if mode not in COPY_MODES:
        raise ConfigError(f"Unknown --mode {mode!r}; choose from: {', '.join(COPY_MODES)}.")
    result = ExportResult(f"copy ({mode})", dry_run, moves)
    if dry_run:
        return result
    place = {"copy": _place_copy, "hardlink": _place_hardlink, "symlink": _place_symlink}[mode]
    for move in moves:
        _run_one(result, move, place)
    return result


_EXISTS = "{target!r} exists with other content; not overwritten"


def _run_one(
    result: ExportResult,
    move: Move,
    action: Callable[[Move], str | None],
    exists: str = _EXISTS,
) -> None:
    try:
        skipped = action(move)
    except FileChangedError as exc:
        result.failed.append((move, str(exc)))
    except FileExistsError:
        result.failed.append((move, exists.format(target=move.target)))
    except OSError as exc:
        result.failed.append((move, _os_message(exc, move)))
    else:
        if skipped:
            result.skipped.append((move, skipped))
        else:
            result.done.append(move)


def _os_message(exc: OSError, move: Move) -> str:
    if exc.errno == errno.EXDEV:
        return "hard links cannot cross filesystems; use --mode copy or symlink"
    if exc.errno == errno.ENOENT and not os.path.exists(move.source):
        return f"{move.source!r} is gone since the scan; re-scan to refresh the store"
    return f"{exc.strerror or exc} ({exc.filename or move.target})"


def _place_copy(m: Move) -> str | None:
    if os.path.lexists(m.target):
        if (
            os.path.isfile(m.target)
            and not os.path.islink(m.target)
            and file_digest(m.target) == m.digest
        ):
            return "already there"
        raise FileExistsError(errno.EEXIST, "exists", m.target)
    os.makedirs(os.path.dirname(m.target), exist_ok=True)
    _copy_verified(m.source, m.target, m.digest)
    return None


def _place_hardlink(m: Move) -> str | None:
    if os.path.lexists(m.target):
        if os.path.samefile(m.source, m.target):
            return "already there"
        raise FileExistsError(errno.EEXIST, "exists", m.target)
    if os.path.getsize(m.source) != m.size:
        raise FileChangedError(f"{m.source!r} changed since the scan (size); re-scan first.")
    os.makedirs(os.path.dirname(m.target), exist_ok=True)
    os.link(m.source, m.target)
    return None


def _place_symlink(m: Move) -> str | None:
    if os.path.lexists(m.target):
        if os.path.islink(m.target) and os.readlink(m.target) == m.source:
            return "already there"
        raise FileExistsError(errno.EEXIST, "exists", m.target)
    if not os.path.isfile(m.source):
        raise OSError(errno.ENOENT, "gone since the scan", m.source)
    os.makedirs(os.path.dirname(m.target), exist_ok=True)
    os.symlink(m.source, m.target)
    return None


# -- quarantine ----------------------------------------------------------------------------


def plan_quarantine(store: Store, dest: str) -> list[Move]:
    """Every removed file and where it goes under ``dest`` (a free name when taken)."""
    roots = scanned_roots(store)
    dest = check_destination(dest, roots, "--quarantine")
    prefixes = root_prefixes(roots)
    taken: set[str] = set()
    out = []
    for d in decide(store):
        if d.action != "remove":
            continue
        target = _free_name(target_for(dest, d.root, d.path, prefixes), taken)
        taken.add(target)
        out.append(Move(d.path, target, d.size, d.digest, d.group, d.reason))
    return out


def _free_name(target: str, taken: set[str]) -> str:
    stem, ext = os.path.splitext(target)
    candidate, n = target, 0
    while candidate in taken or os.path.lexists(candidate):
        n += 1
        candidate = f"{stem}~{n}{ext}"
    return candidate


def quarantine(store: Store, dest: str, *, dry_run: bool = False) -> ExportResult:
    """Move every removed file into ``dest`` and write a manifest that :func:`undo` reads.

    The manifest is written before the first move (entries ``pending``) and rewritten at
    the end (``moved`` or ``failed`` with the reason), so even an interrupted quarantine
    can be undone. Each file is checked against its recorded digest before it moves.

    Raises:
        ConfigError: ``dest`` overlaps a scanned root.
    """
    moves = plan_quarantine(store, dest)
    return run_quarantine(moves, dest, manifest_context(store), dry_run=dry_run)


def manifest_context(store: Store) -> dict[str, Any]:
    """What a manifest records about the store an export came from."""
    return {"store": os.fspath(store.path), "roots": scanned_roots(store)}


def run_quarantine(
    moves: list[Move], dest: str, context: dict[str, Any], *, dry_run: bool = False
) -> ExportResult:
    """Carry out a planned quarantine (see :func:`quarantine`); needs no store."""
    result = ExportResult("quarantine", dry_run, moves)
    if dry_run or not moves:
        return result
    dest = os.path.abspath(dest)
    os.makedirs(dest, exist_ok=True)
    manifest = _new_manifest_path(dest)
    doc = _manifest_doc(context, dest, moves)
    write_manifest(manifest, doc)
    result.manifest = manifest
    for move, entry in zip(moves, doc["entries"], strict=True):
        failed = len(result.failed)
        _run_one(result, move, _quarantine_one)
        entry["timestamp"] = _now()
        if len(result.failed) > failed:
            entry["status"], entry["why"] = "failed", result.failed[-1][1]
        elif result.done and result.done[-1] is move:
            entry["status"] = "moved"
        else:
            entry["status"], entry["why"] = "skipped", result.skipped[-1][1]
    write_manifest(manifest, doc)
    return result


def _quarantine_one(m: Move) -> str | None:
    if not os.path.lexists(m.source):
        if os.path.isfile(m.target) and file_digest(m.target) == m.digest:
            return "already in quarantine"
        return "not there any more (moved or deleted since the scan; re-scan to refresh)"
    move_no_clobber(m.source, m.target, m.digest)
    return None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _new_manifest_path(dest: str) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    base = os.path.join(dest, f"lookalike-manifest-{stamp}")
    path, n = base + ".json", 1
    while os.path.lexists(path):
        n += 1
        path = f"{base}-{n}.json"
    return path


def _manifest_doc(context: dict[str, Any], dest: str, moves: Sequence[Move]) -> dict[str, Any]:
    return {
        "schema": MANIFEST_SCHEMA,
        "created": _now(),
        "store": context.get("store"),
        "roots": context.get("roots", []),
        "quarantine": dest,
        "entries": [
            {
                "original": m.source,
                "new": m.target,
                "size": m.size,
                "sha256": m.digest,
                "group": m.group,
                "reason": m.reason,
                "timestamp": None,
                "status": "pending",
            }
            for m in moves
        ],
    }


def write_manifest(path: str, doc: dict[str, Any]) -> None:
    """Write a manifest atomically (temporary file, fsync, rename)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".manifest-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def read_manifest(path: str) -> dict[str, Any]:
    """Load and check a quarantine manifest.

    Raises:
        InputNotFoundError: no such file.
        ConfigError: not a lookalike quarantine manifest.
    """
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputNotFoundError(f"Manifest {path!r} does not exist.") from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Cannot read manifest {path!r}: {exc}.") from exc
    if not isinstance(doc, dict) or doc.get("schema") != MANIFEST_SCHEMA:
        raise ConfigError(
            f"{path!r} is not a lookalike quarantine manifest (expected schema "
            f"{MANIFEST_SCHEMA!r}). Pass the lookalike-manifest-*.json file written by "
            "`lookalike export --quarantine`."
        )
    return doc


# -- undo ----------------------------------------------------------------------------------


def undo(manifest_path: str, *, dry_run: bool = False) -> ExportResult:
    """Put quarantined files back where they were.

    An entry is restored only when its quarantined file still has the recorded SHA-256
    and nothing exists at the original path; otherwise it fails with the reason and stays
    where it is. Restored entries are marked in the manifest, so running undo again only
    retries the rest.

    Raises:
        InputNotFoundError, ConfigError: see :func:`read_manifest`.
    """
    doc = read_manifest(manifest_path)
    result = ExportResult("undo", dry_run)
    pending = []
    for entry in doc["entries"]:
        move = Move(
            entry["new"],
            entry["original"],
            entry["size"],
            entry["sha256"],
            entry.get("group"),
            entry.get("reason", ""),
        )
        if entry.get("status") == "restored":
            result.skipped.append((move, "already restored"))
        elif entry.get("status") in ("failed", "skipped") and not os.path.lexists(move.source):
            result.skipped.append((move, "was never moved"))
        else:
            result.planned.append(move)
            pending.append(entry)
    if dry_run:
        return result
    for move, entry in zip(result.planned, pending, strict=True):
        _run_one(result, move, _restore, _REAPPEARED)
        if result.done and result.done[-1] is move:
            entry["status"], entry["restored"] = "restored", _now()
        elif result.skipped and result.skipped[-1][0] is move:
            entry["status"], entry["restored"] = "restored", _now()
    write_manifest(manifest_path, doc)
    return result


_REAPPEARED = (
    "a file reappeared at the original path {target!r}; not overwritten. Move it away and "
    "run undo again"
)


def _restore(m: Move) -> str | None:
    if os.path.lexists(m.target):
        if (
            not os.path.lexists(m.source)
            and os.path.isfile(m.target)
            and file_digest(m.target) == m.digest
        ):
            return "already in place"
        raise FileExistsError(errno.EEXIST, "exists", m.target)
    if not os.path.lexists(m.source):
        raise OSError(errno.ENOENT, "the quarantined file is missing", m.source)
    move_no_clobber(m.source, m.target, m.digest)
    return None


def plan_summary(store: Store) -> dict[str, Any]:
    """Counts and bytes of what an export would keep and remove (no filesystem access)."""
    return decision_counts(store)
