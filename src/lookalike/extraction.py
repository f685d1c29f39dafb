"""Per-file work of a scan: read bytes, digest them, decode and compute features.

:func:`extract_file` is a top-level, picklable function so any executor (serial, a process
pool, Dask workers) can run it. It never raises for a bad file: the outcome says what
happened.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import dataclass

from .decoding import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    content_digest,
    decode_image,
    jpeg_stream_digest,
)
from .errors import DecodeError
from .features import FEATURE_VERSION, compute_features
from .remote import read_bytes
from .store import ImageRow

_local = threading.local()  # one read-only store connection per worker thread/process
_opened: list[sqlite3.Connection] = []
_opened_lock = threading.Lock()
_generation = [0]  # bumped when connections are released, so threads reconnect


@dataclass(frozen=True)
class ExtractTask:
    """One file to extract, with what the worker needs to know."""

    path: str
    root: str
    size: int
    mtime_ns: int
    max_pixels: int = DEFAULT_MAX_PIXELS
    store_path: str | None = None  # read-only look-up of already featured digests


@dataclass(frozen=True)
class ExtractOutcome:
    """What happened to one file: featured (``image`` set or already stored), failed or skipped."""

    task: ExtractTask
    status: str  # ok | failed | skipped
    digest: str | None = None
    image: ImageRow | None = None  # None when the digest was already in the store
    stage: str | None = None
    error: str | None = None


def extract_file(task: ExtractTask) -> ExtractOutcome:
    """Read, digest, decode and feature one file; never raises for a bad file."""
    try:
        data = read_bytes(task.path)  # a local path or an fsspec URL
    except OSError as exc:
        return ExtractOutcome(task, "failed", stage="read", error=_os_message(exc))
    digest = content_digest(data)
    if task.store_path and _is_featured(task.store_path, digest):
        return ExtractOutcome(task, "ok", digest=digest)
    try:
        decoded = decode_image(data, max_pixels=task.max_pixels)
    except DecodeError as exc:
        if exc.stage == "identify" and not _named_like_image(task.path):
            return ExtractOutcome(task, "skipped", digest, stage="identify", error=str(exc))
        return ExtractOutcome(task, "failed", digest, stage=exc.stage, error=str(exc))
    image = ImageRow(
        digest=digest,
        width=decoded.width,
        height=decoded.height,
        format=decoded.format,
        lossless=decoded.lossless,
        pixel_digest=decoded.pixel_digest,
        orientation=decoded.orientation,
        features=compute_features(decoded.gray),
        stream_digest=(
            jpeg_stream_digest(data, decoded.orientation)
            if decoded.format in ("JPEG", "MPO")
            else None
        ),
        richness=decoded.richness,
    )
    return ExtractOutcome(task, "ok", digest, image=image)


def worker_failure(task: ExtractTask, exc: BaseException) -> ExtractOutcome:
    """The outcome of a file whose shard still failed after retries (its worker died)."""
    reason = (str(exc).strip().splitlines() or [""])[0]
    error = f"its shard failed on the workers after retries ({type(exc).__name__}: {reason})"
    return ExtractOutcome(task, "failed", stage="worker", error=error)


def _named_like_image(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS


def _is_featured(store_path: str, digest: str) -> bool:
    """Ask the store (read-only, one connection per process) whether a digest is featured."""
    conn = getattr(_local, "conn", None)
    key = (store_path, _generation[0])
    if conn is None or getattr(_local, "key", None) != key:
        if not os.path.exists(store_path):
            return False
        try:
            conn = sqlite3.connect(
                f"file:{os.path.abspath(store_path)}?mode=ro",
                uri=True,
                timeout=30,
                check_same_thread=False,
            )
        except sqlite3.Error:
            return False
        _local.conn, _local.key = conn, key
        with _opened_lock:
            _opened.append(conn)
    try:
        row = conn.execute(
            "SELECT 1 FROM images WHERE digest = ? AND feature_version = ?",
            (digest, FEATURE_VERSION),
        ).fetchone()
    except sqlite3.Error:
        return False
    return row is not None


def release_store_lookups() -> None:
    """Close the read-only store connections opened by worker threads of this process."""
    with _opened_lock:
        while _opened:
            _opened.pop().close()
        _generation[0] += 1


def _os_message(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    return f"cannot read file: {reason}"
