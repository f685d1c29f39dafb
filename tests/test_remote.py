"""Scanning fsspec URLs (memory:// and file://): same groups as on disk, URLs kept as paths."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

fsspec = pytest.importorskip("fsspec")

import lookalike  # noqa: E402
from lookalike.discovery import DiscoveryOptions, FileEntry, Skipped, discover_files  # noqa: E402
from lookalike.errors import ConfigError, InputNotFoundError, MissingDependencyError  # noqa: E402
from lookalike.remote import is_url, read_bytes  # noqa: E402
from lookalike.testing import write_dataset  # noqa: E402


def canonical_groups(result: lookalike.ScanResult, root: str) -> list[tuple[str, ...]]:
    """Groups as sorted tuples of root-relative paths, keeper first: engine-independent."""

    def rel(path: str) -> str:
        return os.path.relpath(path, root) if "://" not in path else path[len(root) + 1 :]

    return sorted((rel(g.keeper), *sorted(rel(m.path) for m in g.members)) for g in result.groups)


@pytest.fixture(scope="module")
def local_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("remote") / "images"
    write_dataset(root, n_originals=4, variants_per_original=2, n_distractors=2, rng=31)
    return root


@pytest.fixture
def bucket(local_images: Path) -> Iterator[str]:
    """The generated dataset copied into fsspec's in-memory file system (this process only)."""
    url = f"memory://lookalike-{uuid.uuid4().hex[:8]}/images"
    fs = fsspec.filesystem("memory")
    for path in sorted(local_images.rglob("*")):
        if path.is_file():
            fs.pipe_file(f"{url}/{path.relative_to(local_images).as_posix()}", path.read_bytes())
    yield url
    fs.rm(url.split("/images")[0], recursive=True)


def test_urls_are_told_from_local_paths() -> None:
    assert is_url("s3://bucket/key") and is_url("memory://b/x") and is_url("file:///tmp")
    assert not is_url("/tmp/photos") and not is_url("photos/a.jpg") and not is_url(r"C:\photos")


def test_memory_bucket_gives_the_groups_of_the_same_files_on_disk(
    bucket: str, local_images: Path, tmp_path: Path
) -> None:
    on_disk = lookalike.scan([local_images], db=tmp_path / "disk.db", engine="serial")
    in_memory = lookalike.scan([bucket], db=tmp_path / "mem.db", engine="local", workers=2)
    assert not in_memory.failures
    assert in_memory.images == on_disk.images
    assert canonical_groups(in_memory, bucket) == canonical_groups(on_disk, str(local_images))
    assert in_memory.roots == (bucket,)
    assert all(p.startswith(bucket + "/") for g in in_memory.groups for p in _paths(g))


def test_a_rescan_of_an_unchanged_bucket_reads_nothing(bucket: str, tmp_path: Path) -> None:
    first = lookalike.scan([bucket], db=tmp_path / "m.db", engine="serial")
    again = lookalike.scan([bucket], db=tmp_path / "m.db", engine="serial")
    assert again.stats["files_extracted"] == 0
    assert again.stats["files_unchanged"] == first.images
    assert canonical_groups(again, bucket) == canonical_groups(first, bucket)


def test_a_corrupt_object_is_a_failure_row_with_its_url(bucket: str, tmp_path: Path) -> None:
    fs = fsspec.filesystem("memory")
    good = next(p for p in sorted(fs.find(bucket)) if p.endswith(".jpg"))
    broken = f"{bucket}/broken/truncated.jpg"
    fs.pipe_file(broken, fs.cat_file(good)[:300])
    result = lookalike.scan([bucket], db=tmp_path / "c.db", engine="serial")
    assert [(f.path, f.stage) for f in result.failures] == [(broken, "decode")]


def test_discovery_policy_applies_to_urls(bucket: str) -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe_file(f"{bucket}/.cache/thumb.jpg", b"x")
    fs.pipe_file(f"{bucket}/notes.txt", b"x")
    items = list(discover_files([bucket], DiscoveryOptions(exclude=("*.txt",))))
    skipped = [i for i in items if isinstance(i, Skipped)]
    assert [(s.path, s.reason.split(" ")[0]) for s in skipped] == [(f"{bucket}/.cache", "hidden")]
    files = [i for i in items if isinstance(i, FileEntry)]
    assert files and all(f.root == bucket and f.path == f"{bucket}/{f.relpath}" for f in files)
    assert not any(f.relpath.endswith(".txt") for f in files)
    assert all(f.size > 0 and f.mtime_ns > 0 for f in files)
    with_hidden = list(discover_files([bucket], DiscoveryOptions(include_hidden=True)))
    assert f"{bucket}/.cache/thumb.jpg" in {i.path for i in with_hidden}


def test_file_urls_and_local_paths_read_the_same_bytes(local_images: Path) -> None:
    path = next(p for p in sorted(local_images.rglob("*")) if p.is_file())
    assert read_bytes(f"file://{path}") == read_bytes(str(path)) == path.read_bytes()
    with pytest.raises(FileNotFoundError):
        read_bytes(f"file://{path}.missing")


def test_file_url_root_scan_keeps_urls(local_images: Path, tmp_path: Path) -> None:
    url = f"file://{local_images}/"  # a trailing slash is dropped
    result = lookalike.scan([url], db=tmp_path / "f.db", engine="processes", workers=2)
    assert result.roots == (url.rstrip("/"),)
    reference = lookalike.scan([local_images], db=tmp_path / "d.db", engine="serial")
    assert canonical_groups(result, url.rstrip("/")) == canonical_groups(
        reference, str(local_images)
    )


def test_bad_url_roots_are_clear_errors(bucket: str, tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match=r"Folder 'memory://no-such-bucket' does not"):
        lookalike.scan(["memory://no-such-bucket"], db=tmp_path / "x.db")
    one_file = next(p for p in sorted(fsspec.filesystem("memory").find(bucket)))
    with pytest.raises(ConfigError, match="is not a folder"):
        lookalike.scan([f"memory://{one_file.lstrip('/')}"], db=tmp_path / "x.db")
    with pytest.raises(ConfigError, match="Protocol not known"):
        lookalike.scan(["nosuchprotocol://bucket/x"], db=tmp_path / "x.db")


def test_missing_cloud_packages_name_the_extra(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)  # as if s3fs were not installed
    with pytest.raises(MissingDependencyError, match=r"'s3fs'.*lookalike\[cloud\]"):
        lookalike.scan(["s3://bucket/photos"], db=tmp_path / "x.db")
    monkeypatch.setitem(sys.modules, "fsspec.core", None)
    with pytest.raises(MissingDependencyError, match=r"'fsspec'.*lookalike\[cloud\]"):
        lookalike.scan(["s3://bucket/photos"], db=tmp_path / "x.db")


def _paths(group) -> list[str]:
    return [group.keeper, *(m.path for m in group.members)]
