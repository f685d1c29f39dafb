"""lookalike.export and the export/undo commands: lists, clean copy, quarantine, undo.

The invariant under test everywhere: no byte of the dataset is ever lost. Every file is
at its original path or in the quarantine with the same SHA-256.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from export_cases import Case, members, write_template
from lookalike import export as exporting
from lookalike.cli_review import export_command, undo_command
from lookalike.errors import ConfigError, InputNotFoundError
from lookalike.review import decide, set_mark


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_template(tmp_path_factory.mktemp("export-template"))


@pytest.fixture()
def case(template: Path, tmp_path: Path) -> Iterator[Case]:
    c = Case.copy_of(template, tmp_path / "data")
    yield c
    c.store.close()


def _members(case: Case) -> set[str]:
    return members(case)


# -- lists ---------------------------------------------------------------------------------


def test_lists_in_every_format(case: Case) -> None:
    removed = _members(case)
    rows = exporting.list_rows(case.store, "all")
    assert {r["path"] for r in rows if r["action"] == "remove"} == removed
    assert len(rows) == case.result.images
    txt = exporting.format_rows(exporting.list_rows(case.store, "remove"), "txt")
    assert sorted(txt.splitlines()) == sorted(removed)
    keep = exporting.list_rows(case.store, "keep")
    assert {r["path"] for r in keep} | removed == {r["path"] for r in rows}
    csv_text = exporting.format_rows(rows, "csv")
    assert csv_text.splitlines()[0] == ",".join(exporting.LIST_FIELDS)
    doc = json.loads(exporting.format_rows(rows, "json"))
    assert doc["schema"] == "lookalike.export-list/1" and len(doc["files"]) == len(rows)
    with pytest.raises(ConfigError, match="choose from: all, keep, remove"):
        exporting.list_rows(case.store, "some")
    with pytest.raises(ConfigError, match="choose from: csv, json, txt"):
        exporting.format_rows(rows, "xml")


# -- clean copy ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["copy", "hardlink", "symlink"])
def test_clean_copy_keeps_the_layout_with_a_folder_per_root(case: Case, mode: str) -> None:
    dest = case.base / "clean"
    result = exporting.copy_kept(case.store, str(dest), mode=mode)
    assert result.ok and not result.skipped
    kept = exporting.kept_files(case.store)
    assert len(result.done) == len(kept) == case.result.images - len(_members(case))
    expected = set()
    for f in kept:
        top = "images" if f.root == case.roots[0] else "images-2"
        target = dest / top / os.path.relpath(f.path, f.root)
        expected.add(target)
        assert target.read_bytes() == Path(f.path).read_bytes()
        if mode == "symlink":
            assert os.readlink(target) == f.path
        if mode == "hardlink":
            assert os.path.samefile(target, f.path)
    assert {p for p in dest.rglob("*") if p.is_file() or p.is_symlink()} == expected
    again = exporting.copy_kept(case.store, str(dest), mode=mode)
    assert again.ok and not again.done and len(again.skipped) == len(kept)


def test_clean_copy_never_overwrites_and_refuses_changed_files(case: Case) -> None:
    dest = case.base / "clean"
    kept = exporting.kept_files(case.store)
    target = Path(
        exporting.target_for(
            str(dest), kept[0].root, kept[0].path, exporting.root_prefixes(case.roots)
        )
    )
    target.parent.mkdir(parents=True)
    target.write_bytes(b"someone else's file")
    with open(kept[1].path, "ab") as fh:
        fh.write(b"edited after the scan")
    result = exporting.copy_kept(case.store, str(dest))
    reasons = {m.source: why for m, why in result.failed}
    assert "not overwritten" in reasons[kept[0].path]
    assert "changed since the scan" in reasons[kept[1].path]
    assert target.read_bytes() == b"someone else's file"
    assert not list(dest.rglob(".lookalike-*"))  # no temporary file left behind


def test_destinations_overlapping_the_dataset_are_refused(case: Case) -> None:
    with pytest.raises(ConfigError, match="inside the scanned root"):
        exporting.copy_kept(case.store, os.path.join(case.roots[0], "clean"))
    with pytest.raises(ConfigError, match="contains the scanned root"):
        exporting.quarantine(case.store, str(case.base))
    with pytest.raises(ConfigError, match="Unknown --mode"):
        exporting.copy_kept(case.store, str(case.base / "c"), mode="move")


# -- quarantine and undo -------------------------------------------------------------------


def test_quarantine_moves_removed_files_with_a_manifest_and_undo_restores(case: Case) -> None:
    before = case.digests()
    dest = case.base / "q"
    dry = exporting.quarantine(case.store, str(dest), dry_run=True)
    assert {m.source for m in dry.planned} == _members(case) and not dest.exists()
    decisions = {d.path: d for d in decide(case.store)}
    result = exporting.quarantine(case.store, str(dest))
    assert result.ok and {m.source for m in result.done} == _members(case)
    doc = json.loads(Path(result.manifest).read_text())
    assert doc["schema"] == exporting.MANIFEST_SCHEMA and doc["roots"] == case.roots
    for entry in doc["entries"]:
        assert set(entry) >= {"original", "new", "size", "sha256", "group", "reason", "timestamp"}
        assert not os.path.exists(entry["original"]) and os.path.isfile(entry["new"])
        assert hashlib.sha256(Path(entry["new"]).read_bytes()).hexdigest() == entry["sha256"]
        assert entry["size"] == os.path.getsize(entry["new"]) and entry["status"] == "moved"
        assert entry["group"] == decisions[entry["original"]].group
        assert entry["reason"] == "duplicate of the keeper"
    assert sorted(case.digests().values()) == sorted(before.values())  # nothing lost
    assert exporting.undo(result.manifest, dry_run=True).planned
    restored = exporting.undo(result.manifest)
    assert restored.ok and len(restored.done) == len(result.done)
    assert case.digests() == before
    again = exporting.undo(result.manifest)
    assert not again.done and all(why == "already restored" for _, why in again.skipped)


def test_quarantine_follows_marks(case: Case) -> None:
    group = case.result.groups[0]
    kept_member, lone = group.members[0].path, exporting.kept_files(case.store)[0].path
    set_mark(case.store, kept_member, "keep")
    set_mark(case.store, lone, "exclude")
    result = exporting.quarantine(case.store, str(case.base / "q"))
    moved = {m.source for m in result.done}
    assert kept_member not in moved and lone in moved
    assert moved == (_members(case) - {kept_member}) | {lone}


def test_undo_refuses_a_file_that_reappeared_and_a_changed_file(case: Case) -> None:
    result = exporting.quarantine(case.store, str(case.base / "q"))
    first, second, *rest = result.done
    Path(first.source).write_bytes(b"a new file took the old name")
    with open(second.target, "ab") as fh:
        fh.write(b"edited in quarantine")
    restored = exporting.undo(result.manifest)
    reasons = {m.target: why for m, why in restored.failed}
    assert "reappeared" in reasons[first.source]
    assert "changed since" in reasons[second.source]
    assert Path(first.source).read_bytes() == b"a new file took the old name"
    assert os.path.isfile(first.target) and os.path.isfile(second.target)
    assert all(os.path.isfile(m.source) for m in rest)
    doc = json.loads(Path(result.manifest).read_text())
    statuses = {e["original"]: e["status"] for e in doc["entries"]}
    assert statuses[first.source] == "moved" and statuses[rest[0].source] == "restored"


def test_quarantine_refuses_a_file_changed_since_the_scan(case: Case) -> None:
    victim = sorted(_members(case))[0]
    with open(victim, "ab") as fh:
        fh.write(b"!")
    result = exporting.quarantine(case.store, str(case.base / "q"))
    [(move, why)] = result.failed
    assert move.source == victim and "changed since the scan" in why and os.path.isfile(victim)
    entry = next(
        e
        for e in json.loads(Path(result.manifest).read_text())["entries"]
        if e["original"] == victim
    )
    assert entry["status"] == "failed" and "changed" in entry["why"]
    assert exporting.undo(result.manifest).ok


def test_moves_across_filesystems_copy_verify_then_unlink(case: Case, monkeypatch) -> None:
    real_link = os.link

    def no_cross_device_links(src, dst, *a, **kw):  # type: ignore[no-untyped-def]
        if ".lookalike-" not in os.fspath(src):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_link(src, dst, *a, **kw)

    before = case.digests()
    monkeypatch.setattr(os, "link", no_cross_device_links)
    result = exporting.quarantine(case.store, str(case.base / "q"))
    assert result.ok and len(result.done) == len(_members(case))
    assert sorted(case.digests().values()) == sorted(before.values())
    assert not list((case.base / "q").rglob(".lookalike-*"))
    assert exporting.undo(result.manifest).ok and case.digests() == before


def test_a_bad_manifest_is_refused_with_a_reason(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError):
        exporting.undo(str(tmp_path / "missing.json"))
    (tmp_path / "m.json").write_text('{"schema": "something else"}')
    with pytest.raises(ConfigError, match="not a lookalike quarantine manifest"):
        exporting.undo(str(tmp_path / "m.json"))


# -- CLI -----------------------------------------------------------------------------------


def test_cli_export_lists_to_stdout_and_files(case: Case) -> None:
    runner = CliRunner()
    txt = runner.invoke(export_command, ["--db", str(case.db), "--format", "txt"])
    assert txt.exit_code == 0, txt.output
    assert sorted(txt.stdout.splitlines()) == sorted(_members(case))
    out = case.base / "lists" / "all.json"
    js = runner.invoke(
        export_command, ["--db", str(case.db), "--format", "json", "--out", str(out)]
    )
    assert js.exit_code == 0 and len(json.loads(out.read_text())["files"]) == case.result.images
    csv = runner.invoke(export_command, ["--db", str(case.db), "--list", "keep"])
    assert csv.stdout.startswith("group,role,action,") and ",remove," not in csv.stdout


def test_cli_quarantine_then_undo(case: Case) -> None:
    runner = CliRunner()
    before = case.digests()
    dest = str(case.base / "q")
    dry = runner.invoke(export_command, ["--db", str(case.db), "--quarantine", dest, "--dry-run"])
    assert (
        dry.exit_code == 0
        and "would quarantine:" in dry.stdout
        and "nothing was touched" in dry.stderr
    )
    assert not os.path.exists(dest)
    done = runner.invoke(export_command, ["--db", str(case.db), "--quarantine", dest])
    assert done.exit_code == 0, done.output
    manifest = done.stdout.strip().splitlines()[-1]
    assert manifest.endswith(".json") and "Undo with: lookalike undo" in done.stderr
    assert all(not os.path.exists(p) for p in _members(case))
    back = runner.invoke(undo_command, [manifest, "--json"])
    assert back.exit_code == 0, back.output
    assert len(json.loads(back.stdout)["done"]) == len(_members(case))
    assert case.digests() == before


def test_cli_copy_to_and_failures_exit_1(case: Case) -> None:
    runner = CliRunner()
    dest = case.base / "clean"
    ok = runner.invoke(
        export_command,
        ["--db", str(case.db), "--copy-to", str(dest), "--mode", "hardlink", "--json"],
    )
    assert ok.exit_code == 0, ok.output
    assert len(json.loads(ok.stdout)["done"]) == case.result.images - len(_members(case))
    victim = exporting.kept_files(case.store)[0].path
    os.unlink(next(dest.rglob(os.path.basename(victim))))
    with open(victim, "ab") as fh:
        fh.write(b"!")
    bad = runner.invoke(export_command, ["--db", str(case.db), "--copy-to", str(dest)])
    assert bad.exit_code == 1
    assert "Failed:" in bad.stderr and "Error: 1 file(s) were not handled" in bad.stderr


def test_cli_errors_name_what_to_do(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("LOOKALIKE_DB", raising=False)
    runner = CliRunner()
    none = runner.invoke(export_command, [])
    assert none.exit_code == 1 and "Give the scanned folders (ROOT...), --db PATH" in none.stderr
    missing = runner.invoke(export_command, ["--db", str(tmp_path / "nope.db")])
    assert missing.exit_code == 1 and "No store at" in missing.stderr
    assert not (tmp_path / "nope.db").exists()
    bad = runner.invoke(undo_command, [str(tmp_path / "nope.json")])
    assert bad.exit_code == 1 and "does not exist" in bad.stderr
