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

Safety rules, checked just before each file moves (the store may be out of date):

* A file moves only while its path still resolves inside its root: a folder swapped for
  a symbolic link since the scan (unless the scan followed links) is refused.
* A file moves only with the size and SHA-256 the scan recorded.
* The last copy of a picture never moves as a duplicate: a group's files move only while
  one of the group's kept files (its keeper first) is still on disk, inside its root,
  with the recorded SHA-256; otherwise the whole group is skipped with the reason in the
  manifest. A group where nothing is kept (its keeper marked exclude) only loses the
  files a person marked exclude.

The store follows: a quarantine takes the files it moved out of the store (as a re-scan
would) and undo puts them back, so lists and dry runs are right without a re-scan. Every
operation has ``dry_run``, which checks each file on disk (existence, size, path, the
keeper) without reading whole files and touches nothing. Moves never clobber: a hard
link (or an exclusive create across filesystems) puts the file at its new place before
the old name goes, so a run killed at any point leaves every file at its original path,
in the quarantine, or both; the next run completes such a move and removes temporary
files a killed run left behind.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import os
import re
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, FileChangedError, InputNotFoundError, StoreError
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
_PARTIAL_PREFIX = ".lookalike-"
_PARTIAL_NAME = re.compile(r"^\.lookalike-(?:\d+-[a-z0-9_]{8}\.part|[a-z0-9_]{8})$")
"""Temporary files of a copy across filesystems: ``.lookalike-<pid>-<random>.part`` (and
``.lookalike-<random>`` from earlier versions)."""
_EXCLUDED = "marked exclude"


@dataclass(frozen=True)
class Anchor:
    """A kept file of a group: it must still be on disk, unchanged, inside its root, for
    any other copy of its picture to move."""

    path: str
    root: str
    size: int
    digest: str | None


@dataclass(frozen=True)
class Move:
    """One planned file operation: ``source`` goes (or is linked) to ``target``.

    ``root`` is the scanned root of the dataset side (``source`` for an export, ``target``
    for undo), which that path must resolve inside; ``links`` is true when the scan
    followed symbolic links, so paths may pass through them. ``anchors`` are the kept
    files of the group that must be verified first; ``hold`` is why the move must not
    happen at all; ``row`` is what the store knew about the file (for undo).
    """

    source: str
    target: str
    size: int
    digest: str | None
    group: int | None = None
    reason: str = ""
    root: str = field(default="", compare=False)
    links: bool = field(default=False, compare=False, repr=False)
    anchors: tuple[Anchor, ...] = field(default=(), compare=False, repr=False)
    hold: str | None = field(default=None, compare=False, repr=False)
    row: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the fields of ``lookalike export --json``)."""
        return {
            "source": self.source,
            "target": self.target,
            "size": self.size,
            "digest": self.digest,
            "group": self.group,
            "reason": self.reason,
        }


@dataclass
class ExportResult:
    """What an export did, or would do with ``dry_run``.

    ``skipped`` holds files with nothing to do (already done, gone since the scan);
    ``failed`` the files that were refused or could not be handled, with the reason.
    In a dry run ``planned`` holds only the files that would be handled.
    """

    action: str
    dry_run: bool
    planned: list[Move] = field(default_factory=list)
    done: list[Move] = field(default_factory=list)
    skipped: list[tuple[Move, str]] = field(default_factory=list)
    failed: list[tuple[Move, str]] = field(default_factory=list)
    manifest: str | None = None
    notes: list[str] = field(default_factory=list)

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
            "done": [m.to_dict() for m in self.done],
            "skipped": [{**m.to_dict(), "why": why} for m, why in self.skipped],
            "failed": [{**m.to_dict(), "why": why} for m, why in self.failed],
            "moves": [m.to_dict() for m in self.planned] if self.dry_run else [],
            "notes": list(self.notes),
        }


# -- lists ---------------------------------------------------------------------------------


def list_rows(
    store: Store, which: str = "all", *, include_failed: bool = False
) -> list[dict[str, Any]]:
    """Rows of the keep list, the remove list, or both (``all``), sorted by path.

    The keep list holds every readable file of the latest scan that is not removed
    (files in no group too), so it describes the whole clean dataset. With
    ``include_failed`` the remove list also holds the files the scan could not read, as
    ``quarantine(include_failed=True)`` moves them.

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
        if include_failed:
            rows.extend(_failed_row(f) for f in store.failed_files(scanned_roots(store)))
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


def _failed_row(f: dict[str, Any]) -> dict[str, Any]:
    row = _row("remove", _failed_reason(f), None, f["path"], f["root"], f["size"], f["digest"])
    return {**row, "role": "failed"}


def _failed_reason(f: dict[str, Any]) -> str:
    return f"could not be read by the scan ({f['stage'] or 'read'}: {f['error'] or 'unknown'})"


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


def resolves_inside(path: str, root: str) -> bool:
    """True when ``path`` lies inside ``root`` and no symbolic link below the root leads
    elsewhere: its real path is the root's real path joined with the same relative path.

    The root itself may be reached through a link; a folder (or the file) below it that
    became a link since the scan makes this false, even when the link points back inside.
    """
    norm, base = os.path.normpath(path), os.path.normpath(root)
    rel = os.path.relpath(norm, base)
    if rel in (os.curdir, os.pardir) or rel.startswith(os.pardir + os.sep):
        return False
    return os.path.realpath(norm) == os.path.join(os.path.realpath(base), rel)


def _entry(path: str) -> str:
    """The directory entry a path names (its folder resolved, the name itself not)."""
    return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))


def _follows_links(store: Store) -> bool:
    run = store.last_run()
    return bool(run and run["settings"].get("discovery", {}).get("follow_symlinks"))


# -- file primitives -----------------------------------------------------------------------


def file_digest(path: str) -> str:
    """SHA-256 of a file's bytes (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _lock(fd: int) -> None:
    """Hold an exclusive ``flock`` on a temporary file while it is written, so a cleanup
    by another run can tell it from one a killed run left behind."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return
    fcntl.flock(fd, fcntl.LOCK_EX)


def _in_use(path: str) -> bool:
    """True when a temporary file is still being written by a live process."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: trust age only
        return time.time() - os.lstat(path).st_mtime < 24 * 3600
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def clean_partials(folder: str, *, recursive: bool = True) -> list[str]:
    """Remove the temporary files (``.lookalike-*``) that a killed copy left in ``folder``.

    Safe by construction: a source file is unlinked only after its temporary copy was
    verified and linked at its target under its real name, so a temporary file is never
    the only copy of anything. Files another running export is writing are left alone.
    Returns the paths removed.
    """
    removed: list[str] = []
    if not os.path.isdir(folder):
        return removed
    walk: Iterator[tuple[str, list[str], list[str]]]
    if recursive:
        walk = os.walk(folder)
    else:
        try:
            walk = iter([(folder, [], os.listdir(folder))])
        except OSError:
            return removed
    for base, _dirs, names in walk:
        for name in names:
            path = os.path.join(base, name)
            if not _PARTIAL_NAME.match(name) or os.path.islink(path) or not os.path.isfile(path):
                continue
            if _in_use(path):
                continue
            try:
                os.unlink(path)
            except OSError:
                continue
            removed.append(path)
    return removed


def _copy_verified(source: str, target: str, digest: str | None) -> None:
    """Copy to a temporary name beside ``target``, check the digest, then link it in place
    without overwriting (``FileExistsError`` when ``target`` exists)."""
    folder = os.path.dirname(target)
    fd, tmp = tempfile.mkstemp(
        dir=folder, prefix=f"{_PARTIAL_PREFIX}{os.getpid()}-", suffix=".part"
    )
    lock = os.dup(fd)
    try:
        _lock(lock)
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
        os.close(lock)


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
        if os.path.islink(source):  # only when the scan followed links: move the link
            os.link(source, target, follow_symlinks=False)
        else:
            os.link(source, target)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            raise FileExistsError(errno.EEXIST, "exists", target) from exc
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        _copy_verified(source, target, digest)
    os.unlink(source)


def _complete_move(source: str, target: str, digest: str | None, *, dry_run: bool) -> None:
    """Finish a move a killed run left half done: both names exist. When they are the
    same file (killed between link and unlink) or ``target`` holds the same verified
    bytes (killed after a copy across filesystems), drop ``source``.

    Raises:
        FileChangedError: ``source`` no longer has the recorded bytes.
        FileExistsError: ``target`` is another file.
    """
    same = _same_file(source, target)
    if digest is not None and file_digest(source) != digest:
        raise FileChangedError(
            f"{source!r} changed since the scan (digest mismatch); not moved. Re-scan first."
        )
    if not same and not (digest is not None and _holds(target, digest, None, thorough=True)):
        raise FileExistsError(errno.EEXIST, "exists", target)
    if not dry_run:
        os.unlink(source)


def _same_file(a: str, b: str) -> bool:
    try:
        sa, sb = os.lstat(a), os.lstat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _holds(path: str, digest: str | None, size: int | None, *, thorough: bool) -> bool:
    """True when ``path`` is a regular file with this size and (``thorough``) SHA-256."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if not os.path.isfile(path) or os.path.islink(path):
        return False
    if size is not None and st.st_size != size:
        return False
    if not thorough or digest is None:
        return True
    return file_digest(path) == digest


class _Refused(Exception):
    """This file must not be handled (its path or bytes differ from what the scan saw)."""


class _Held(Exception):
    """This file's group must not lose it (no verified copy of the picture would stay)."""


class _Guard:
    """The checks before a file leaves its place; ``thorough`` reads whole files (SHA-256),
    otherwise only metadata (dry runs). Each group's keeper is checked once per run."""

    def __init__(self, *, thorough: bool) -> None:
        self.thorough = thorough
        self._groups: dict[int, str | None] = {}

    def path(self, path: str, root: str, links: bool, what: str = "") -> None:
        """Refuse a path that leaves its root through a symbolic link."""
        if not root or links:
            return
        if not resolves_inside(path, root):
            raise _Refused(
                f"{what or repr(path)} is reached through a symbolic link since the scan (or lies "
                f"outside its root {root!r}); lookalike only moves files inside the scanned "
                "roots. Re-scan first."
            )

    def source(self, m: Move) -> None:
        """The file about to move: inside its root, a regular file, the scanned size."""
        self.path(m.source, m.root, m.links)
        if not m.links and os.path.islink(m.source):
            raise _Refused(f"{m.source!r} is a symbolic link now; not moved. Re-scan first.")
        try:
            st = os.stat(m.source)
        except OSError as exc:
            raise _Refused(f"{m.source!r} cannot be read: {exc.strerror or exc}") from exc
        if not os.path.isfile(m.source):
            raise _Refused(f"{m.source!r} is not a regular file now; not moved. Re-scan first.")
        if st.st_size != m.size:
            raise FileChangedError(
                f"{m.source!r} changed since the scan (size {st.st_size} instead of {m.size}); "
                "not moved. Re-scan first."
            )

    def group(self, m: Move) -> None:
        """The move's group keeps a verified copy of the picture."""
        if m.hold:
            raise _Held(m.hold)
        if m.group is None or not m.anchors:
            return
        if any(_entry(m.source) == _entry(a.path) for a in m.anchors):
            raise _Refused(
                f"{m.source!r} is the same file as a kept file of group {m.group} now (a "
                "folder was replaced by a link?); not moved. Re-scan first."
            )
        if m.group not in self._groups:
            self._groups[m.group] = self._verify(m)
        why = self._groups[m.group]
        if why:
            raise _Held(why)

    def _verify(self, m: Move) -> str | None:
        first = None
        for a in m.anchors:
            why = self._anchor(a, m.links)
            if why is None:
                return None
            first = first or f"{a.path!r} {why}"
        return (
            f"group {m.group} skipped: its keeper {first}, so moving its copies could leave "
            "no copy of the picture. Re-scan, then export again."
        )

    def _anchor(self, a: Anchor, links: bool) -> str | None:
        if not os.path.lexists(a.path):
            return "is gone since the scan"
        if not links and not resolves_inside(a.path, a.root):
            return "is reached through a symbolic link since the scan"
        try:
            st = os.stat(a.path)
        except OSError as exc:
            return f"cannot be read ({exc.strerror or exc})"
        if not os.path.isfile(a.path):
            return "is not a regular file any more"
        if st.st_size != a.size:
            return "changed since the scan (its size differs)"
        if self.thorough:
            try:
                if a.digest is None or file_digest(a.path) != a.digest:
                    return "changed since the scan (its SHA-256 differs)"
            except OSError as exc:
                return f"cannot be read ({exc.strerror or exc})"
        return None


# -- running moves -------------------------------------------------------------------------

_EXISTS = "{target!r} exists with other content; not overwritten"


def _run_one(
    result: ExportResult,
    move: Move,
    action: Callable[[Move], str | None],
    exists: str = _EXISTS,
) -> tuple[str, str | None]:
    """Run one action; file the move under done, skipped or failed. Returns the status
    (``done``, ``skipped``, ``failed`` or ``held``) and the reason."""
    try:
        skipped = action(move)
    except (_Refused, FileChangedError) as exc:
        why, status = str(exc), "failed"
    except _Held as exc:
        why, status = str(exc), "held"
    except FileExistsError:
        why, status = exists.format(target=move.target), "failed"
    except OSError as exc:
        why, status = _os_message(exc, move), "failed"
    else:
        if skipped:
            result.skipped.append((move, skipped))
            return "skipped", skipped
        result.done.append(move)
        return "done", None
    result.failed.append((move, why))
    return status, why


def _os_message(exc: OSError, move: Move) -> str:
    if exc.errno == errno.EXDEV:
        return "hard links cannot cross filesystems; use --mode copy or symlink"
    if exc.errno == errno.ENOENT and not os.path.exists(move.source):
        return f"{move.source!r} is gone since the scan; re-scan to refresh the store"
    return f"{exc.strerror or exc} ({exc.filename or move.target})"


def _dry(result: ExportResult, moves: Sequence[Move], action: Callable[[Move], str | None]) -> None:
    """A dry run: check every move without touching anything; ``planned`` keeps the
    moves that would be handled."""
    for move in moves:
        _run_one(result, move, action)
    result.planned, result.done = result.done, []


# -- clean copy ----------------------------------------------------------------------------


def plan_copy(store: Store, dest: str) -> list[Move]:
    """Every kept file and where it goes under ``dest``."""
    roots = scanned_roots(store)
    dest = check_destination(dest, roots, "--copy-to")
    prefixes = root_prefixes(roots)
    links = _follows_links(store)
    return [
        Move(
            f.path,
            target_for(dest, f.root, f.path, prefixes),
            f.size,
            f.digest,
            None,
            "kept",
            root=f.root,
            links=links,
        )
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
    result = ExportResult(f"copy ({mode})", dry_run, list(moves))
    guard = _Guard(thorough=not dry_run)
    place = {"copy": _place_copy, "hardlink": _place_hardlink, "symlink": _place_symlink}[mode]

    def one(m: Move) -> str | None:
        if not os.path.lexists(m.source):
            raise OSError(errno.ENOENT, "gone since the scan", m.source)
        guard.source(m)
        return None if dry_run else place(m)

    if dry_run:
        _dry(result, moves, one)
        return result
    if moves:
        _clean_into(result, os.path.commonpath([os.path.dirname(m.target) for m in moves]))
    for move in moves:
        _run_one(result, move, one)
    return result


def _clean_into(result: ExportResult, folder: str, *, recursive: bool = True) -> None:
    removed = clean_partials(folder, recursive=recursive)
    if removed:
        result.notes.append(
            f"Removed {len(removed)} temporary file(s) an interrupted run left behind."
        )


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
    os.makedirs(os.path.dirname(m.target), exist_ok=True)
    os.link(m.source, m.target)
    return None


def _place_symlink(m: Move) -> str | None:
    if os.path.lexists(m.target):
        if os.path.islink(m.target) and os.readlink(m.target) == m.source:
            return "already there"
        raise FileExistsError(errno.EEXIST, "exists", m.target)
    os.makedirs(os.path.dirname(m.target), exist_ok=True)
    os.symlink(m.source, m.target)
    return None


# -- quarantine ----------------------------------------------------------------------------


def plan_quarantine(store: Store, dest: str, *, include_failed: bool = False) -> list[Move]:
    """Every removed file and where it goes under ``dest`` (a free name when taken).

    Each move carries the kept files of its group (see :class:`Anchor`), which the run
    verifies before any copy of the picture moves. With ``include_failed`` the files the
    scan could not read (corrupt, empty, not an image) move too.

    Raises:
        ConfigError: ``dest`` overlaps a scanned root.
    """
    roots = scanned_roots(store)
    dest = check_destination(dest, roots, "--quarantine")
    prefixes = root_prefixes(roots)
    links = _follows_links(store)
    decisions = decide(store)
    anchors: dict[int, list[Anchor]] = {}
    for d in sorted(decisions, key=lambda d: d.role != "keeper"):
        if d.group is not None and d.action == "keep":
            anchors.setdefault(d.group, []).append(Anchor(d.path, d.root, d.size, d.digest))
    wanted: list[tuple[str, str, int, str | None, int | None, str, str | None]] = []
    for d in decisions:
        if d.action != "remove":
            continue
        hold = None
        if d.group is not None and not anchors.get(d.group) and d.reason != _EXCLUDED:
            hold = (
                f"not moved: no file of group {d.group} is kept (its keeper is marked exclude "
                "or unreadable), so this would move the last copy of the picture. Mark a copy "
                "keep, or mark this file exclude too."
            )
        wanted.append((d.path, d.root, d.size, d.digest, d.group, d.reason, hold))
    if include_failed:
        for f in store.failed_files(roots):
            digest = f["digest"] or _digest_or_none(f["path"])
            wanted.append((f["path"], f["root"], f["size"], digest, None, _failed_reason(f), None))
    rows = store.moved_rows([w[0] for w in wanted])
    taken: set[str] = set()
    out = []
    for path, root, size, digest, group, reason, hold in sorted(wanted, key=lambda w: w[0]):
        natural = target_for(dest, root, path, prefixes)
        if natural not in taken and _left_by_earlier_run(path, natural, size, digest):
            target = natural  # an interrupted run's copy: this run completes that move
        else:
            target = _free_name(natural, taken)
        taken.add(target)
        out.append(
            Move(
                path,
                target,
                size,
                digest,
                group,
                reason,
                root=root,
                links=links,
                anchors=tuple(anchors.get(group, ())) if group is not None else (),
                hold=hold,
                row=rows.get(path),
            )
        )
    return out


def _digest_or_none(path: str) -> str | None:
    try:
        return file_digest(path)
    except OSError:
        return None


def _left_by_earlier_run(source: str, target: str, size: int, digest: str | None) -> bool:
    """True when ``target`` is this file's quarantined copy from an earlier run: the same
    file (a run killed between link and unlink) or the same bytes."""
    if not os.path.lexists(target):
        return False
    if _same_file(source, target):
        return True
    return digest is not None and _holds(target, digest, size, thorough=True)


def _free_name(target: str, taken: set[str]) -> str:
    stem, ext = os.path.splitext(target)
    candidate, n = target, 0
    while candidate in taken or os.path.lexists(candidate):
        n += 1
        candidate = f"{stem}~{n}{ext}"
    return candidate


def quarantine(
    store: Store, dest: str, *, dry_run: bool = False, include_failed: bool = False
) -> ExportResult:
    """Move every removed file into ``dest`` and write a manifest that :func:`undo` reads.

    The manifest is written before the first move (entries ``pending``) and rewritten at
    the end (``moved``, ``skipped`` or ``failed`` with the reason), so even an interrupted
    quarantine can be undone. Each file is checked against its recorded size and digest,
    its path against its root, and its group's keeper, before it moves (see the module
    docstring). The moved files then leave the store.

    Raises:
        ConfigError: ``dest`` overlaps a scanned root.
    """
    moves = plan_quarantine(store, dest, include_failed=include_failed)
    return run_quarantine(moves, dest, manifest_context(store), dry_run=dry_run)


def manifest_context(store: Store) -> dict[str, Any]:
    """What a manifest records about the store an export came from."""
    return {
        "store": os.path.abspath(store.path),
        "roots": scanned_roots(store),
        "follow_symlinks": _follows_links(store),
    }


def run_quarantine(
    moves: list[Move], dest: str, context: dict[str, Any], *, dry_run: bool = False
) -> ExportResult:
    """Carry out a planned quarantine (see :func:`quarantine`); the store named in
    ``context`` (if any) is updated afterwards, from its own connection."""
    result = ExportResult("quarantine", dry_run, list(moves))
    guard = _Guard(thorough=not dry_run)

    def one(m: Move) -> str | None:
        return _quarantine_one(m, guard, dry_run=dry_run)

    if dry_run:
        _dry(result, moves, one)
        return result
    dest = os.path.abspath(dest)
    _clean_into(result, dest)
    if not moves:
        return result
    os.makedirs(dest, exist_ok=True)
    manifest = _new_manifest_path(dest)
    doc = _manifest_doc(context, dest, moves)
    write_manifest(manifest, doc)
    result.manifest = manifest
    gone: list[Move] = []
    try:
        for move, entry in zip(moves, doc["entries"], strict=True):
            status, why = _run_one(result, move, one)
            entry["timestamp"] = _now()
            entry["status"] = {"done": "moved", "held": "skipped"}.get(status, status)
            if why:
                entry["why"] = why
            if status == "done" or why == _ALREADY_QUARANTINED:
                gone.append(move)
    finally:
        write_manifest(manifest, doc)
        _record(
            result,
            context.get("store"),
            lambda store: store.forget_moved([m.source for m in gone]),
            "Updated the store {store!r}: it no longer lists the {n} file(s) in quarantine.",
        )
    return result


_ALREADY_QUARANTINED = "already in quarantine"


def _quarantine_one(m: Move, guard: _Guard, *, dry_run: bool) -> str | None:
    if not os.path.lexists(m.source):
        if _holds(m.target, m.digest, m.size, thorough=guard.thorough):
            return _ALREADY_QUARANTINED
        return "not there any more (moved or deleted since the scan); re-scan to refresh the store"
    guard.source(m)
    guard.group(m)
    if os.path.lexists(m.target):
        _complete_move(m.source, m.target, m.digest, dry_run=dry_run)
    elif not dry_run:
        move_no_clobber(m.source, m.target, m.digest)
    return None


def _record(
    result: ExportResult, store_path: str | None, update: Callable[[Store], int], note: str
) -> None:
    """Apply ``update`` to the store an export came from; a store that cannot be written
    leaves a note (the files are where the manifest says either way)."""
    if not store_path:
        return
    if not os.path.isfile(store_path):
        result.notes.append(f"The store {store_path!r} is gone; re-scan to make a new one.")
        return
    try:
        with Store(store_path) as store:
            n = update(store)
    except (StoreError, sqlite3.Error, OSError) as exc:
        result.notes.append(
            f"Could not update the store {store_path!r} ({exc}); re-scan to refresh it."
        )
        return
    if n:
        result.notes.append(note.format(store=store_path, n=n))


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
        "follow_symlinks": bool(context.get("follow_symlinks", False)),
        "quarantine": dest,
        "entries": [
            {
                "original": m.source,
                "new": m.target,
                "root": m.root or None,
                "size": m.size,
                "sha256": m.digest,
                "group": m.group,
                "reason": m.reason,
                "timestamp": None,
                "status": "pending",
                "store_row": m.row,
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

    An entry is restored only when its quarantined file still has the recorded SHA-256,
    nothing else exists at the original path and that path still resolves inside its
    root; otherwise it fails with the reason and stays where it is. An undo killed
    half-way (the file at both places, or a temporary copy left in the dataset) is
    completed or cleaned up by the next run. Restored entries are marked in the manifest,
    so running undo again only retries the rest, and they return to the store.

    Raises:
        InputNotFoundError, ConfigError: see :func:`read_manifest`.
    """
    doc = read_manifest(manifest_path)
    result = ExportResult("undo", dry_run)
    links = bool(doc.get("follow_symlinks", False))
    quarantine_dir = doc.get("quarantine") or ""
    roots = list(doc.get("roots") or [])
    pending = []
    for entry in doc["entries"]:
        move = Move(
            entry["new"],
            entry["original"],
            entry["size"],
            entry["sha256"],
            entry.get("group"),
            entry.get("reason", ""),
            root=entry.get("root") or _root_of(entry["original"], roots),
            links=links,
        )
        if entry.get("status") == "restored":
            result.skipped.append((move, "already restored"))
        elif entry.get("status") in ("failed", "skipped") and not os.path.lexists(move.source):
            result.skipped.append((move, "was never moved"))
        else:
            result.planned.append(move)
            pending.append(entry)
    guard = _Guard(thorough=not dry_run)

    def one(m: Move) -> str | None:
        return _restore(m, guard, quarantine_dir, dry_run=dry_run)

    if dry_run:
        _dry(result, list(result.planned), one)
        return result
    folders = {os.path.dirname(m.target): m.root for m in result.planned}
    for folder, root in sorted(folders.items()):
        if root and (links or resolves_inside(folder, root)):
            _clean_into(result, folder, recursive=False)  # a killed copy back into the dataset
    back: dict[str, dict[str, Any]] = {}
    try:
        for move, entry in zip(result.planned, pending, strict=True):
            status, why = _run_one(result, move, one, _REAPPEARED)
            if status in ("done", "skipped"):
                entry["status"], entry["restored"] = "restored", _now()
                entry.pop("why", None)
                row = entry.get("store_row") or _row_from_entry(move)
                if row:
                    back[move.target] = row
            elif why:
                entry["undo_failed"] = why
    finally:
        write_manifest(manifest_path, doc)
        _record(
            result,
            doc.get("store"),
            lambda store: store.restore_moved(back),
            "Updated the store {store!r}: it lists the {n} restored file(s) again.",
        )
    return result


def _root_of(path: str, roots: Sequence[str]) -> str:
    for root in sorted(roots, key=len, reverse=True):
        if path.startswith(root.rstrip(os.sep) + os.sep):
            return root
    return ""


def _row_from_entry(m: Move) -> dict[str, Any] | None:
    """A ``files`` row for an entry of a manifest without a store snapshot."""
    if not m.root:
        return None
    try:
        st = os.stat(m.target)
    except OSError:
        return None
    return {
        "root": m.root,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "digest": m.digest,
        "status": "ok",
        "groups": [],
    }


_REAPPEARED = (
    "a file reappeared at the original path {target!r}; not overwritten. Move it away and "
    "run undo again"
)


def _restore(m: Move, guard: _Guard, quarantine_dir: str, *, dry_run: bool) -> str | None:
    guard.path(m.target, m.root, m.links, f"The original path {m.target!r}")
    if quarantine_dir:
        guard.path(m.source, quarantine_dir, False, f"The quarantined file {m.source!r}")
    if os.path.lexists(m.target):
        if not os.path.lexists(m.source):
            if _holds(m.target, m.digest, m.size, thorough=guard.thorough):
                return "already in place"
            raise FileExistsError(errno.EEXIST, "exists", m.target)
        _complete_move(m.source, m.target, m.digest, dry_run=dry_run)  # a killed undo
        return None
    if not os.path.lexists(m.source):
        raise OSError(errno.ENOENT, "the quarantined file is missing", m.source)
    if dry_run:
        if os.path.getsize(m.source) != m.size:
            raise FileChangedError(f"{m.source!r} changed since the quarantine (size).")
        return None
    move_no_clobber(m.source, m.target, m.digest)
    return None


def plan_summary(store: Store) -> dict[str, Any]:
    """Counts and bytes of what an export would keep and remove (no filesystem access)."""
    return decision_counts(store)
