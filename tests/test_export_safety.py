"""Export on a store that is out of date (issue #12, items 3, 4 and 15).

The dataset changes after the scan: a keeper is deleted or replaced, a folder becomes a
symbolic link, files move. The export must never take the last copy of a picture, never
touch a file outside the scanned roots, and the store must follow what moved.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from export_cases import Case, members, write_template
from lookalike import export as exporting
from lookalike import scan
from lookalike.cli_review import export_command, undo_command
from lookalike.review import decide, set_mark


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_template(tmp_path_factory.mktemp("export-template"))


@pytest.fixture()
def case(template: Path, tmp_path: Path) -> Iterator[Case]:
    c = Case.copy_of(template, tmp_path / "data")
    yield c
    c.store.close()


def _entries(manifest: str) -> dict[str, dict]:
    return {e["original"]: e for e in json.loads(Path(manifest).read_text())["entries"]}


def _sha(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# -- item 3: the keeper must still be there before its copies move -------------------------


@pytest.mark.parametrize("change", ["deleted", "replaced"])
def test_a_group_whose_keeper_changed_since_the_scan_is_skipped(case: Case, change: str) -> None:
    group = case.result.groups[0]
    copies = {m.path for m in group.members}
    other_picture = case.result.groups[1].keeper
    if change == "deleted":
        os.unlink(group.keeper)
    else:  # another picture under the keeper's name
        shutil.copyfile(other_picture, group.keeper)
    dry = exporting.quarantine(case.store, str(case.base / "q"), dry_run=True)
    assert not copies & {m.source for m in dry.planned}
    assert copies <= {m.source for m, _ in dry.failed}
    result = exporting.quarantine(case.store, str(case.base / "q"))
    assert all(os.path.isfile(p) for p in copies)  # the dataset keeps a copy of the picture
    assert {m.source for m in result.done} == members(case) - copies
    entries = _entries(result.manifest)
    for path in copies:
        assert entries[path]["status"] == "skipped"
        assert f"group {group.id} skipped: its keeper" in entries[path]["why"]
        assert ("gone" if change == "deleted" else "changed since the scan") in entries[path]["why"]
    reasons = {m.source: why for m, why in result.failed}
    assert set(reasons) == copies and all("Re-scan" in why for why in reasons.values())


def test_a_kept_copy_stands_in_for_a_missing_keeper(case: Case) -> None:
    group = case.result.groups[0]
    spare, *others = (m.path for m in group.members)
    set_mark(case.store, spare, "keep")
    os.unlink(group.keeper)
    result = exporting.quarantine(case.store, str(case.base / "q"))
    assert result.ok and os.path.isfile(spare)
    assert set(others) <= {m.source for m in result.done}


def test_a_copy_that_changed_since_the_scan_is_not_moved(case: Case) -> None:
    group = case.result.groups[0]
    member = group.members[0].path
    shutil.copyfile(case.result.groups[1].keeper, member)  # now another picture
    result = exporting.quarantine(case.store, str(case.base / "q"))
    [(move, why)] = result.failed
    assert move.source == member and "changed since the scan" in why
    assert _sha(member) == _sha(case.result.groups[1].keeper)


def test_in_a_group_with_nothing_kept_only_excluded_files_move(case: Case) -> None:
    group = case.result.groups[0]
    copies = [m.path for m in group.members]
    set_mark(case.store, group.keeper, "exclude")
    result = exporting.quarantine(case.store, str(case.base / "q"))
    assert group.keeper in {m.source for m in result.done}  # the person said so
    assert all(os.path.isfile(p) for p in copies)  # the picture stays in the dataset
    entries = _entries(result.manifest)
    assert all("last copy of the picture" in entries[p]["why"] for p in copies)
    for p in copies:
        set_mark(case.store, p, "exclude")
    again = exporting.quarantine(case.store, str(case.base / "q"))
    assert again.ok and set(copies) <= {m.source for m in again.done}


# -- item 4: paths resolve inside their root -----------------------------------------------


def _link_album_outside(case: Case) -> tuple[Path, list[str]]:
    """Replace train/images/album (duplicates only, their keepers elsewhere) by a link to
    the same files outside the roots, as someone reorganising the disk would."""
    album = Path(case.roots[0]) / "album"
    inside = sorted(str(p) for p in album.iterdir())
    outside = case.base / "elsewhere" / "album"
    outside.parent.mkdir()
    album.rename(outside)
    album.symlink_to(outside, target_is_directory=True)
    return outside, inside


def test_a_folder_replaced_by_a_symlink_is_not_followed(case: Case) -> None:
    outside, inside = _link_album_outside(case)
    before = {p.name: _sha(p) for p in outside.iterdir()}
    linked = members(case) & set(inside)
    assert linked
    dry = exporting.quarantine(case.store, str(case.base / "q"), dry_run=True)
    assert not linked & {m.source for m in dry.planned}
    result = exporting.quarantine(case.store, str(case.base / "q"))
    assert {p.name: _sha(p) for p in outside.iterdir()} == before  # nothing left outside
    reasons = {m.source: why for m, why in result.failed}
    assert set(reasons) == linked and all("symbolic link" in w for w in reasons.values())
    assert {m.source for m in result.done} == members(case) - linked
    copy = exporting.copy_kept(case.store, str(case.base / "clean"))
    assert {m.source for m, _ in copy.failed} == set(inside) - linked


def test_a_file_replaced_by_a_symlink_is_not_moved(case: Case) -> None:
    member = case.result.groups[0].members[0].path
    outside = case.base / "outside.bin"
    os.rename(member, outside)  # same bytes, so the digest matches
    os.symlink(outside, member)
    result = exporting.quarantine(case.store, str(case.base / "q"))
    assert member in {m.source for m, _ in result.failed} and outside.is_file()


def test_undo_does_not_write_through_a_folder_replaced_by_a_symlink(case: Case) -> None:
    result = exporting.quarantine(case.store, str(case.base / "q"))
    album = Path(case.roots[0]) / "album"
    outside = case.base / "elsewhere"
    outside.mkdir()
    album.rename(outside / "album")
    album.symlink_to(outside / "album", target_is_directory=True)
    names_before = sorted(p.name for p in (outside / "album").iterdir())
    back = exporting.undo(result.manifest)
    refused = {m.target for m, _ in back.failed}
    assert refused == {m.source for m in result.done if m.source.startswith(str(album) + os.sep)}
    assert all("symbolic link" in why for _, why in back.failed)
    assert sorted(p.name for p in (outside / "album").iterdir()) == names_before
    assert all(os.path.isfile(m.target) for m in result.done if m.source in refused)


# -- item 15: the store follows quarantine and undo ----------------------------------------


def _txt(case: Case, *extra: str) -> list[str]:
    out = CliRunner().invoke(export_command, ["--db", str(case.db), "--format", "txt", *extra])
    assert out.exit_code == 0, out.output
    return sorted(out.stdout.splitlines())


def test_the_store_follows_quarantine_and_undo(case: Case) -> None:
    runner = CliRunner()
    removed = sorted(members(case))
    decisions = {d.path: (d.action, d.reason) for d in decide(case.store)}
    dest = str(case.base / "q")
    done = runner.invoke(export_command, ["--db", str(case.db), "--quarantine", dest])
    assert done.exit_code == 0, done.output
    manifest = done.stdout.strip().splitlines()[-1]
    assert _txt(case) == []  # nothing left to remove
    assert "no longer lists the" in done.stderr
    dry = runner.invoke(export_command, ["--db", str(case.db), "--quarantine", dest, "--dry-run"])
    assert dry.exit_code == 0 and "quarantine of 0 file(s)" in dry.stderr
    back = runner.invoke(undo_command, [manifest])
    assert back.exit_code == 0, back.output
    assert _txt(case) == removed  # no re-scan needed
    assert "lists the" in back.stderr
    assert {d.path: (d.action, d.reason) for d in decide(case.store)} == decisions
    rescan = scan(case.roots, db=case.db)
    assert sorted(m.path for g in rescan.groups for m in g.members) == removed


def test_undo_after_a_rescan_lists_the_files_again(case: Case) -> None:
    removed = sorted(members(case))
    result = exporting.quarantine(case.store, str(case.base / "q"))
    scan(case.roots, db=case.db)  # the store forgets the moved files, groups dissolve
    assert _txt(case) == []
    assert exporting.undo(result.manifest).ok
    assert _txt(case) == removed
    assert exporting.quarantine(case.store, str(case.base / "q2"), dry_run=True).planned


def test_a_dry_run_checks_that_files_exist(case: Case) -> None:
    gone = sorted(members(case))[0]
    os.unlink(gone)
    dry = exporting.quarantine(case.store, str(case.base / "q"), dry_run=True)
    assert gone not in {m.source for m in dry.planned}
    assert [(m.source, "not there any more") for m, why in dry.skipped if m.source == gone] == [
        (gone, "not there any more")
    ]
    assert {m.source for m in dry.planned} == members(case) - {gone}
    out = CliRunner().invoke(
        export_command, ["--db", str(case.db), "--quarantine", str(case.base / "q"), "--dry-run"]
    )
    assert f"Would skip: {gone}: not there any more" in out.stderr


def test_failed_files_are_quarantined_only_when_asked(tmp_path: Path, template: Path) -> None:
    shutil.copytree(template, tmp_path / "data")
    root = tmp_path / "data" / "train" / "images"
    bad = {
        root / "corrupt.jpg": b"\xff\xd8\xff\xe0 truncated",
        root / "empty.png": b"",
        root / "notes.jpg": b"this is not an image\n",
    }
    for path, data in bad.items():
        path.write_bytes(data)
    c = Case(tmp_path / "data")
    try:
        failed = {f.path for f in c.result.failures}
        assert {str(p) for p in bad} <= failed
        plain = exporting.quarantine(c.store, str(tmp_path / "q"))
        assert all(p.exists() for p in bad)
        assert not failed & {m.source for m in plain.done}
        assert set(_txt(c, "--include-failed")) == failed
        runner = CliRunner()
        done = runner.invoke(
            export_command,
            ["--db", str(c.db), "--quarantine", str(tmp_path / "q"), "--include-failed"],
        )
        assert done.exit_code == 0, done.output
        assert not any(p.exists() for p in bad)
        manifest = done.stdout.strip().splitlines()[-1]
        entries = _entries(manifest)
        assert {e["original"] for e in entries.values()} == failed
        assert all(
            e["reason"].startswith("could not be read by the scan") for e in entries.values()
        )
        assert entries[str(root / "empty.png")]["sha256"] == hashlib.sha256(b"").hexdigest()
        count = "SELECT COUNT(*) FROM files WHERE status = 'failed'"
        assert c.store.conn.execute(count).fetchone()[0] == 0  # the failures page follows
        assert exporting.undo(manifest).ok
        assert all(p.read_bytes() == data for p, data in bad.items())
        assert c.store.conn.execute(count).fetchone()[0] == len(failed)
    finally:
        c.store.close()
