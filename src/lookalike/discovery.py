"""Find candidate image files under one or more roots.

Policy (documented in the README):

* Directories are walked recursively; entries are visited in sorted order.
* Hidden files and folders (name starting with ``.``) are skipped unless ``include_hidden``
  (a hidden folder is reported once as skipped, its content is not walked).
* Symbolic links are skipped unless ``follow_symlinks``; when followed, a directory already
  visited (same device and inode) is never entered twice, so link loops end, and a file
  reached twice through links is listed once.
* ``include`` / ``exclude`` are glob patterns matched against the path relative to its root
  (``*`` does not cross ``/``; ``**`` does). A file is kept when it matches some include
  pattern (default: everything) and no exclude pattern.
* Whether a file is an image is decided later, by its content (see :mod:`lookalike.decoding`),
  never by its extension.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import ConfigError, InputNotFoundError
from .remote import discover_url, is_url, normalise_url_root


@dataclass(frozen=True)
class FileEntry:
    """A regular file found under a root, with the ``stat`` fields that identify it."""

    path: str
    root: str
    relpath: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Skipped:
    """A path that discovery did not list, and why (``symlink``, ``hidden``, ``unreadable``...)."""

    path: str
    reason: str


@dataclass(frozen=True)
class DiscoveryOptions:
    """How roots are walked; see the module docstring for the policy."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    include_hidden: bool = False
    follow_symlinks: bool = False


def normalise_roots(roots: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Return absolute, de-duplicated root paths; raise if one does not exist.

    Raises:
        InputNotFoundError: a root does not exist.
        ConfigError: no root given, or one root lies inside another.
    """
    if not roots:
        raise ConfigError("No folder given. Name at least one folder to scan.")
    out: list[str] = []
    for root in roots:
        if is_url(root):  # s3://, gs://, file://...: see lookalike.remote
            out.append(normalise_url_root(os.fspath(root)))
            continue
        path = os.path.abspath(os.fspath(root))
        if not os.path.exists(path):
            raise InputNotFoundError(f"Folder {os.fspath(root)!r} does not exist.")
        if not os.path.isdir(path):
            raise ConfigError(f"{os.fspath(root)!r} is not a folder. Name a folder to scan.")
        if path not in out:
            out.append(path)
    for a in out:
        for b in out:
            if a != b and b.startswith(a.rstrip(os.sep) + os.sep):
                raise ConfigError(
                    f"Root {b!r} lies inside root {a!r}. Give each dataset folder only once."
                )
    return out


def discover_files(
    roots: Sequence[str], options: DiscoveryOptions = DiscoveryOptions()
) -> Iterator[FileEntry | Skipped]:
    """Yield every regular file under ``roots`` (or why a path was skipped), sorted per folder."""
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()
    for root in roots:
        if is_url(root):
            yield from discover_url(root, options)
            continue
        yield from _walk(root, root, options, seen_dirs, seen_files)


def _walk(
    root: str,
    folder: str,
    options: DiscoveryOptions,
    seen_dirs: set[tuple[int, int]],
    seen_files: set[tuple[int, int]],
) -> Iterator[FileEntry | Skipped]:
    try:
        st = os.stat(folder)
        entries = sorted(os.scandir(folder), key=lambda e: os.fsencode(e.name))
    except OSError as exc:
        yield Skipped(folder, f"unreadable folder: {exc.strerror or exc}")
        return
    if (st.st_dev, st.st_ino) in seen_dirs:
        yield Skipped(folder, "folder already visited (symlink loop or repeated link)")
        return
    seen_dirs.add((st.st_dev, st.st_ino))
    for entry in entries:
        yield from _visit(root, entry, options, seen_dirs, seen_files)


def _visit(
    root: str,
    entry: os.DirEntry[str],
    options: DiscoveryOptions,
    seen_dirs: set[tuple[int, int]],
    seen_files: set[tuple[int, int]],
) -> Iterator[FileEntry | Skipped]:
    if entry.name.startswith(".") and not options.include_hidden:
        yield Skipped(entry.path, "hidden (use --include-hidden to scan it)")
        return
    if entry.is_symlink() and not options.follow_symlinks:
        yield Skipped(entry.path, "symbolic link (use --follow-symlinks to follow links)")
        return
    try:
        st = entry.stat(follow_symlinks=True)
    except OSError as exc:
        yield Skipped(entry.path, f"cannot stat: {exc.strerror or exc}")
        return
    if stat.S_ISDIR(st.st_mode):
        yield from _walk(root, entry.path, options, seen_dirs, seen_files)
        return
    if not stat.S_ISREG(st.st_mode):
        yield Skipped(entry.path, "not a regular file")
        return
    relpath = os.path.relpath(entry.path, root)
    if not _is_selected(relpath, options):
        return
    if (st.st_dev, st.st_ino) in seen_files:
        yield Skipped(entry.path, "same file already listed through another link")
        return
    seen_files.add((st.st_dev, st.st_ino))
    yield FileEntry(entry.path, root, relpath, st.st_size, st.st_mtime_ns)


class IncludeTally:
    """Which ``include`` patterns selected no file yet (to warn about a typo)."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.unmatched = list(dict.fromkeys(patterns))

    def see(self, relpath: str) -> None:
        """Count a selected file (cheap once every pattern has selected one)."""
        if self.unmatched:
            rel = Path(relpath).as_posix()
            self.unmatched = [p for p in self.unmatched if not _glob_regex(p).match(rel)]

    def warnings(self) -> list[str]:
        """One line per pattern that selected nothing."""
        return [
            f"--include {p!r} selected no file under the scanned folders (patterns are "
            "case-sensitive and relative to each folder)."
            for p in self.unmatched
        ]


def _is_selected(relpath: str, options: DiscoveryOptions) -> bool:
    rel = Path(relpath).as_posix()
    if options.include and not any(_glob_regex(p).match(rel) for p in options.include):
        return False
    return not any(_glob_regex(p).match(rel) for p in options.exclude)


@lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob where ``*``/``?`` stay inside one path segment and ``**`` spans many.

    A pattern without ``/`` matches the file name at any depth (like ``.gitignore``).
    """
    if "/" not in pattern:
        pattern = "**/" + pattern
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")
