"""Discovery: globs, hidden files, symlinks, odd names, roots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lookalike.discovery import (
    DiscoveryOptions,
    FileEntry,
    Skipped,
    discover_files,
    normalise_roots,
)
from lookalike.errors import ConfigError, InputNotFoundError


def _tree(root: Path) -> None:
    for rel in ["a.jpg", "sub/b.png", "sub/deep/c.jpg", "sub/deep/notes.txt", ".hidden/d.jpg"]:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def _listed(root: Path, options: DiscoveryOptions = DiscoveryOptions()) -> list[str]:
    return [e.relpath for e in discover_files([str(root)], options) if isinstance(e, FileEntry)]


@pytest.mark.parametrize(
    ("include", "exclude", "expected"),
    [
        ((), (), ["a.jpg", "sub/b.png", "sub/deep/c.jpg", "sub/deep/notes.txt"]),
        (("*.jpg",), (), ["a.jpg", "sub/deep/c.jpg"]),
        (("sub/*",), (), ["sub/b.png"]),
        (("sub/**",), ("*.txt",), ["sub/b.png", "sub/deep/c.jpg"]),
        ((), ("sub/deep/**",), ["a.jpg", "sub/b.png"]),
    ],
)
def test_globs_select_paths_relative_to_the_root(tmp_path, include, exclude, expected) -> None:
    _tree(tmp_path)
    assert _listed(tmp_path, DiscoveryOptions(include=include, exclude=exclude)) == expected


def test_hidden_entries_are_reported_and_can_be_included(tmp_path) -> None:
    _tree(tmp_path)
    skipped = [e for e in discover_files([str(tmp_path)]) if isinstance(e, Skipped)]
    assert [Path(s.path).name for s in skipped] == [".hidden"]
    assert ".hidden/d.jpg" in _listed(tmp_path, DiscoveryOptions(include_hidden=True))


def test_symlink_loop_terminates_when_following(tmp_path) -> None:
    _tree(tmp_path)
    os.symlink(tmp_path, tmp_path / "sub" / "loop")
    listed = _listed(tmp_path, DiscoveryOptions(follow_symlinks=True))
    assert len(listed) == len(set(listed)) == 4


def test_non_utf8_names_are_kept_exactly(tmp_path) -> None:
    name = os.fsdecode(b"caf\xe9.jpg")
    try:
        (tmp_path / name).write_bytes(b"x")
    except (OSError, UnicodeEncodeError):
        pytest.skip("file system refuses non-UTF-8 names")
    (entry,) = [e for e in discover_files([str(tmp_path)]) if isinstance(e, FileEntry)]
    assert os.fsencode(entry.path).endswith(b"caf\xe9.jpg")


def test_roots_are_checked(tmp_path) -> None:
    with pytest.raises(InputNotFoundError):
        normalise_roots([tmp_path / "missing"])
    with pytest.raises(ConfigError, match="lies inside"):
        (tmp_path / "inner").mkdir()
        normalise_roots([tmp_path, tmp_path / "inner"])
    with pytest.raises(ConfigError, match="No folder given"):
        normalise_roots([])
