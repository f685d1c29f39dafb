"""Object stores and other fsspec file systems: list a URL root, read a file by URL.

The ``cloud`` extra (``pip install 'lookalike[cloud]'``: fsspec with s3fs and gcsfs) lets a
root be any fsspec URL (``s3://bucket/photos``, ``gs://...``, ``file:///data``,
``memory://...``). Discovery lists the root on the client (``fs.find``, one listing call
per prefix page, no per-file ``stat``); workers read each file by its URL, and records keep
the URL as the file's path. fsspec caches one file-system instance per protocol and
options per process, so reading many files costs one connection set-up per worker.

The policy of :mod:`lookalike.discovery` applies, adapted to stores without inodes: hidden
names (a segment starting with ``.``) are skipped unless ``include_hidden``,
``include``/``exclude`` globs match the path relative to the root, and there are no
symbolic links to follow. A file's change stamp is its modification time when the store
reports one (``mtime``, ``LastModified``, ``updated``, ``created``), else ``0`` -- then only
a size change makes a re-scan read the file again.

Credentials come from fsspec's usual sources (environment, config files, instance roles).
Importing this module does not import fsspec.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, InputNotFoundError, MissingDependencyError, require

if TYPE_CHECKING:
    from .discovery import DiscoveryOptions, FileEntry, Skipped

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+://")
_PROTOCOL_PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs"}
_MTIME_KEYS = ("mtime", "LastModified", "last_modified", "updated", "created", "time")


def is_url(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a URL (``scheme://...``) rather than a local path."""
    return isinstance(path, str) and _URL.match(path) is not None


def lives_in_this_process(path: str) -> bool:
    """True for URLs whose data only this process can read (fsspec ``memory://``)."""
    return str(path).startswith("memory://")


def normalise_url_root(url: str) -> str:
    """Check that a URL root exists and is a folder; return it without a trailing ``/``.

    Raises:
        MissingDependencyError: fsspec (or the package for this protocol) is missing.
        InputNotFoundError: nothing exists at ``url``.
        ConfigError: ``url`` names a file, not a folder (prefix).
    """
    root = url.rstrip("/") if not url.endswith("://") else url
    fs, path = _filesystem(root)
    try:
        exists, is_dir = fs.exists(path), fs.isdir(path)
    except OSError as exc:
        raise InputNotFoundError(f"Cannot open {url!r}: {_one_line(exc)}.") from exc
    if not exists:
        raise InputNotFoundError(f"Folder {url!r} does not exist.")
    if not is_dir:
        raise ConfigError(f"{url!r} is not a folder. Name a folder (prefix) to scan.")
    return root


def discover_url(
    root: str, options: DiscoveryOptions | None = None
) -> Iterator[FileEntry | Skipped]:
    """Yield every file under the URL ``root`` (or why it was skipped), sorted by path."""
    from .discovery import DiscoveryOptions, FileEntry, Skipped, _is_selected

    options = options or DiscoveryOptions()
    fs, base = _filesystem(root)
    try:
        found = fs.find(base, detail=True, withdirs=False)
    except OSError as exc:  # permissions, network: like an unreadable local folder
        yield Skipped(root, f"unreadable folder: {_one_line(exc)}")
        return
    prefix = base.rstrip("/") + "/"
    hidden_reported: set[str] = set()
    for name in sorted(found, key=lambda n: n.encode("utf-8", "surrogateescape")):
        info = found[name]
        if not name.startswith(prefix) or info.get("type", "file") != "file":
            continue
        relpath = name[len(prefix) :]
        url = f"{root.rstrip('/')}/{relpath}"
        hidden = _hidden_prefix(relpath)
        if hidden is not None and not options.include_hidden:
            if hidden not in hidden_reported:
                hidden_reported.add(hidden)
                hidden_url = f"{root.rstrip('/')}/{hidden}"
                yield Skipped(hidden_url, "hidden (use --include-hidden to scan it)")
            continue
        if _is_selected(relpath, options):
            yield FileEntry(url, root, relpath, int(info.get("size") or 0), _mtime_ns(info))


def read_bytes(path: str) -> bytes:
    """Read a whole file, given a local path or an fsspec URL.

    Raises:
        OSError: the file cannot be read (missing, permissions, network); the message says why.
        MissingDependencyError: ``path`` is a URL and fsspec is not installed.
    """
    if not is_url(path):
        with open(path, "rb") as fh:
            return fh.read()
    fs, inner = _filesystem(path)
    try:
        return fs.cat_file(inner)
    except OSError:
        raise
    except Exception as exc:  # SDK errors (botocore, google-auth) become read failures
        raise OSError(f"{type(exc).__name__}: {_one_line(exc)}") from exc


def _filesystem(url: str) -> tuple[Any, str]:
    """The fsspec file system for ``url`` and the path inside it."""
    fsspec_core = require("fsspec.core", extra="cloud")
    try:
        return fsspec_core.url_to_fs(url)
    except ImportError as exc:
        protocol = url.split("://", 1)[0].lower()
        package = _PROTOCOL_PACKAGES.get(protocol)
        if package is not None:
            raise MissingDependencyError(package, extra="cloud") from exc
        raise ConfigError(
            f"Cannot open {url!r}: {exc}. fsspec needs that package for {protocol}:// URLs."
        ) from exc
    except ValueError as exc:
        raise ConfigError(f"Cannot open {url!r}: {exc}.") from exc


def _hidden_prefix(relpath: str) -> str | None:
    """The first hidden segment of ``relpath`` and what leads to it, if any."""
    parts = relpath.split("/")
    for i, part in enumerate(parts):
        if part.startswith("."):
            return "/".join(parts[: i + 1])
    return None


def _mtime_ns(info: dict[str, Any]) -> int:
    """The modification time reported by the store, in integer nanoseconds (0 if none)."""
    for key in _MTIME_KEYS:
        value = info.get(key)
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=dt.UTC)
            return int(round(value.timestamp() * 1e9))
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(round(float(value) * 1e9))
    return 0


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
