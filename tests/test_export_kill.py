"""Exports and undos killed at their most dangerous point (issue #12, item 7).

Each test runs the real command in a subprocess that SIGKILLs itself at one exact step
(by wrapping ``os.unlink`` or ``os.fsync`` there; no test hook in the library), checks
that the state left behind is the dangerous one, then shows that the next run completes
the work or cleans up: every file ends at exactly one place with its bytes, and no
temporary ``.lookalike-*`` file remains.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from export_cases import Case, members, write_template
from lookalike import export as exporting

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL and hard links")

SRC = Path(__file__).resolve().parents[1] / "src"

# argv: MODE DIR lookalike-args... ; MODE is what to die on, DIR where.
_KILLER = r"""
import errno, os, signal, sys

mode, where, args = sys.argv[1], sys.argv[2], sys.argv[3:]
real_link, real_unlink, real_fsync = os.link, os.unlink, os.fsync


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def under(path):
    path = os.fspath(path)
    return path.startswith(where + os.sep) and not os.path.basename(path).startswith(".")


if mode == "unlink":  # die as the old name goes, after the new name was linked
    def unlink(path, *a, **kw):
        if under(path):
            die()
        return real_unlink(path, *a, **kw)
    os.unlink = unlink

if mode == "copy":  # another filesystem: no hard links; die before the copy is synced
    def link(src, dst, *a, **kw):
        if not os.path.basename(os.fspath(src)).startswith(".lookalike-"):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_link(src, dst, *a, **kw)

    def fsync(fd):
        st = os.fstat(fd)
        for base, _, names in os.walk(where):
            for name in names:
                if name.startswith(".lookalike-"):
                    if os.lstat(os.path.join(base, name)).st_ino == st.st_ino:
                        die()
        return real_fsync(fd)
    os.link, os.fsync = link, fsync

from lookalike.cli import main

sys.argv = ["lookalike", *args]
main()
"""


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_template(tmp_path_factory.mktemp("export-template"))


@pytest.fixture()
def case(template: Path, tmp_path: Path) -> Iterator[Case]:
    c = Case.copy_of(template, tmp_path / "data")
    yield c
    c.store.close()


def _killed(mode: str, where: Path, *args: str) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, "-c", _KILLER, mode, str(where), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stdout, proc.stderr)


def _partials(case: Case) -> list[Path]:
    return sorted(p for p in case.base.rglob(".lookalike-*"))


def _cross_device(monkeypatch: pytest.MonkeyPatch) -> None:
    real_link = os.link

    def link(src, dst, *a, **kw):  # type: ignore[no-untyped-def]
        if ".lookalike-" not in os.fspath(src):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_link(src, dst, *a, **kw)

    monkeypatch.setattr(os, "link", link)


def _manifests(q: Path) -> list[str]:
    return sorted(str(p) for p in q.glob("lookalike-manifest-*.json"))


def test_export_killed_between_link_and_unlink_completes(case: Case) -> None:
    before = case.digests()
    q = case.base / "q"
    first = sorted(members(case))[0]
    _killed("unlink", Path(case.roots[0]), "export", "--db", str(case.db), "--quarantine", str(q))
    [manifest] = _manifests(q)
    entry = next(
        e for e in json.loads(Path(manifest).read_text())["entries"] if e["original"] == first
    )
    assert os.path.samefile(first, entry["new"])  # one file, two names: the dangerous state
    again = exporting.quarantine(case.store, str(q))
    assert again.ok and {m.source for m in again.done} == members(case)
    assert entry["new"] in {m.target for m in again.done}  # completed in place, no ~1 copy
    assert not any(os.path.exists(p) for p in members(case))
    assert sorted(case.digests().values()) == sorted(before.values())  # each file once
    for m in _manifests(q):
        assert exporting.undo(m).ok
    assert case.digests() == before


def test_export_killed_during_a_copy_across_filesystems_cleans_up(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = case.digests()
    q = case.base / "q"
    _killed("copy", q, "export", "--db", str(case.db), "--quarantine", str(q))
    [partial] = _partials(case)  # the killed copy
    assert partial.parent.is_relative_to(q)
    assert all(os.path.isfile(p) for p in members(case))  # nothing lost
    _cross_device(monkeypatch)
    again = exporting.quarantine(case.store, str(q))
    assert again.ok and {m.source for m in again.done} == members(case)
    assert _partials(case) == [] and any("temporary file" in n for n in again.notes)
    assert sorted(case.digests().values()) == sorted(before.values())
    for m in _manifests(q):
        assert exporting.undo(m).ok
    assert case.digests() == before


def test_undo_killed_between_link_and_unlink_completes(case: Case) -> None:
    before = case.digests()
    q = case.base / "q"
    result = exporting.quarantine(case.store, str(q))
    _killed("unlink", q, "undo", result.manifest)
    both = [m for m in result.done if os.path.exists(m.source) and os.path.exists(m.target)]
    assert len(both) == 1 and os.path.samefile(both[0].source, both[0].target)
    again = exporting.undo(result.manifest)
    assert again.ok, again.failed
    assert {m.target for m in again.done} == members(case)
    assert case.digests() == before  # every file back, nothing left in quarantine
    entries = json.loads(Path(result.manifest).read_text())["entries"]
    assert all(e["status"] == "restored" for e in entries)
    assert exporting.list_rows(case.store, "remove")  # the store lists them again


def test_undo_killed_during_a_copy_across_filesystems_cleans_up(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = case.digests()
    result = exporting.quarantine(case.store, str(case.base / "q"))
    _killed("copy", case.base, "undo", result.manifest)
    [partial] = _partials(case)
    assert partial.parent.is_relative_to(case.roots[0]) or partial.parent.is_relative_to(
        case.roots[1]
    )  # left inside the dataset, where the next scan would find it
    _cross_device(monkeypatch)
    again = exporting.undo(result.manifest)
    assert again.ok, again.failed
    assert _partials(case) == []
    assert case.digests() == before
