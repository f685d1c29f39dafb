"""POST actions of the UI: marks, group exclude, keeper change, not-a-duplicate, bulk, export;
and marks kept and honoured across a re-scan, also while a scan runs."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path

from lookalike import scan
from lookalike.store import Store
from lookalike.ui.queries import GroupQuery

from .conftest import Client, Scanned, file_id


def _marks(db: Path) -> dict[str, str]:
    with Store(db, readonly=True) as store:
        return store.marks()


def test_mark_keep_and_clear_from_the_group_page(scanned: Scanned, client: Client) -> None:
    group = scanned.result.groups[0]
    member = group.members[0].path
    fid = file_id(scanned, member)
    assert client.act("/marks", {"file": fid, "mark": "exclude"}).json()["mark"] == "exclude"
    assert _marks(scanned.db) == {member: "exclude"}
    page = client.get(f"/groups/{group.id}.json").json()["group"]
    assert (
        page["files"][member]["mark"] == "exclude" and page["files"][member]["action"] == "remove"
    )
    client.act("/marks", {"file": fid, "mark": "keep"})
    after = client.get(f"/groups/{group.id}.json").json()["group"]["files"][member]
    assert after["mark"] == "keep" and after["action"] == "keep"
    client.act("/marks", {"file": fid, "mark": "none"})
    assert _marks(scanned.db) == {}
    bad = client.act("/marks", {"file": fid, "mark": "delete"})
    assert bad.status_code == 400 and "Unknown mark 'delete'" in bad.json()["error"]
    assert client.act("/marks", {"file": "abc", "mark": "keep"}).status_code == 400
    assert client.act("/marks", {"file": 99999, "mark": "keep"}).status_code == 404


def test_exclude_a_group_except_its_keeper(scanned: Scanned, client: Client) -> None:
    group = scanned.result.groups[0]
    response = client.act(f"/groups/{group.id}/exclude")
    assert sorted(response.json()["excluded"]) == sorted(m.path for m in group.members)
    assert _marks(scanned.db) == {m.path: "exclude" for m in group.members}
    listing = client.get("/groups.json?per_page=200").json()["groups"]
    [entry] = [g for g in listing if g["id"] == group.id]
    assert entry["marked"] == {"exclude": len(group.members)}


def test_change_keeper_shows_at_once_and_survives_a_rescan(
    scanned: Scanned, client: Client
) -> None:
    group = next(g for g in scanned.result.groups if g.members)
    new = group.members[0]
    index = client.app.state.review.index
    builds = index.builds
    response = client.act(f"/groups/{group.id}/keeper", {"file": file_id(scanned, new.path)})
    assert response.json()["keeper"] == new.path
    now = client.get(f"/groups/{group.id}.json").json()["group"]
    assert now["keeper"] == new.path
    members = {m["path"]: m for m in now["members"]}
    assert group.keeper in members and new.path not in members
    assert members[group.keeper]["relation"] == new.relation
    assert members[group.keeper]["score"] == new.score
    listing = client.get("/groups.json?per_page=200").json()["groups"]
    [entry] = [g for g in listing if g["id"] == group.id]
    assert entry["keeper"] == new.path
    rows = {r["id"]: r for r in index.page(GroupQuery(per_page=200))[1]}
    assert rows[group.id]["bytes"] == now["reclaimable_bytes"]  # the index row is current
    assert index.builds == builds  # ... updated in place, not rebuilt
    by_bytes = client.get("/groups.json?per_page=200&sort=bytes").json()["groups"]
    assert [g["reclaimable_bytes"] for g in by_bytes] == sorted(
        (g["reclaimable_bytes"] for g in by_bytes), reverse=True
    )
    assert _marks(scanned.db)[new.path] == "keeper"
    result = scanned.rescan()
    [regrouped] = [g for g in result.groups if new.path in {g.keeper, *(m.path for m in g.members)}]
    assert regrouped.keeper == new.path


def test_not_a_duplicate_removes_the_member_now_and_after_rescans(
    scanned: Scanned, client: Client
) -> None:
    group = next(g for g in scanned.result.groups if len(g.members) >= 2)
    member = group.members[0]
    response = client.act(
        f"/groups/{group.id}/not-duplicate", {"file": file_id(scanned, member.path)}
    )
    assert response.json()["removed"] == [member.path] and response.json()["group_left"]
    now = client.get(f"/groups/{group.id}.json").json()["group"]
    assert member.path not in {m["path"] for m in now["members"]}
    with Store(scanned.db, readonly=True) as store:
        assert len(store.not_duplicate_pairs()) == 2  # both orders
    result = scanned.rescan()
    for g in result.groups:
        paths = {g.keeper, *(m.path for m in g.members)}
        assert not {group.keeper, member.path} <= paths


def test_not_a_duplicate_of_the_only_member_removes_the_group(
    scanned: Scanned, client: Client
) -> None:
    group = next(g for g in scanned.result.groups if len(g.members) == 1)
    client.act(
        f"/groups/{group.id}/not-duplicate", {"file": file_id(scanned, group.members[0].path)}
    )
    assert client.get(f"/groups/{group.id}.json").status_code == 404
    assert client.get("/groups.json?per_page=200").json()["total"] == len(scanned.result.groups) - 1


def test_actions_on_a_group_a_scan_renumbered_are_409(scanned: Scanned, client: Client) -> None:
    group = scanned.result.groups[0]
    other = scanned.result.groups[1].members[0].path
    response = client.act(f"/groups/{group.id}/keeper", {"file": file_id(scanned, other)})
    assert response.status_code == 409 and "reload" in response.json()["error"].lower()
    assert client.act("/groups/9999/exclude").status_code == 409


def test_bulk_exclude_by_similarity(scanned: Scanned, client: Client) -> None:
    groups = scanned.result.groups
    scores = sorted(min(m.score for m in g.members) for g in groups)
    cut = scores[len(scores) // 2]
    keep_me = next(
        m.path for g in groups if min(x.score for x in g.members) >= cut for m in g.members
    )
    client.act("/marks", {"file": file_id(scanned, keep_me), "mark": "keep"})
    dry = client.act("/bulk-exclude", {"min_score": cut, "dry_run": "1"}).json()
    assert dry["dry_run"] and _marks(scanned.db) == {keep_me: "keep"}
    done = client.act("/bulk-exclude", {"min_score": cut}).json()
    expected = {
        m.path for g in groups if min(x.score for x in g.members) >= cut for m in g.members
    } - {keep_me}
    assert set(done["files"]) == expected
    assert _marks(scanned.db) == {**{p: "exclude" for p in expected}, keep_me: "keep"}


def test_export_button_quarantines_and_undo_restores(scanned: Scanned, client: Client) -> None:
    from lookalike.export import undo

    group = scanned.result.groups[0]
    client.act(f"/groups/{group.id}/exclude")
    dest = scanned.base / "quarantine"
    members = {m.path for g in scanned.result.groups for m in g.members}
    preview = client.act(
        "/export", {"action": "quarantine", "dest": str(dest), "dry_run": "1"}
    ).json()
    assert preview["dry_run"] and preview["planned"] == len(members)
    assert {m["source"] for m in preview["moves"]} == members
    assert not dest.exists()
    result = client.act("/export", {"action": "quarantine", "dest": str(dest)})
    assert result.status_code == 200, result.text
    doc = result.json()
    moved = {m["source"] for m in doc["done"]}
    assert moved == members
    assert all(not os.path.exists(p) for p in moved)
    manifest = json.loads(Path(doc["manifest"]).read_text())
    assert {e["original"] for e in manifest["entries"]} == moved
    again = client.post(
        "/export", data={"csrf_token": client.token(), "action": "quarantine", "dest": str(dest)}
    )
    assert again.status_code == 200  # the result page: everything is already gone
    assert "0 done, 0 already done, 0 failed" in again.text  # the store follows the move
    assert undo(doc["manifest"]).ok
    assert all(os.path.exists(p) for p in moved)


def test_export_refuses_a_destination_inside_the_dataset(scanned: Scanned, client: Client) -> None:
    inside = os.path.join(scanned.roots[0], "quarantine")
    response = client.act("/export", {"action": "quarantine", "dest": inside})
    assert response.status_code == 400 and "inside the scanned root" in response.json()["error"]
    assert client.act("/export", {"action": "copy", "dest": "relative/dir"}).status_code == 400
    assert client.act("/export", {"action": "delete", "dest": "/tmp/x"}).status_code == 400


def test_marks_made_while_a_scan_runs_survive_it(scanned: Scanned, client: Client) -> None:
    """A scan writes the store from another connection while the UI marks files."""
    paths = [m.path for g in scanned.result.groups for m in g.members]
    errors: list[BaseException] = []
    stop = threading.Event()
    scans = []

    def rescans() -> None:
        try:
            while not stop.is_set():
                for p in paths[:3]:  # touch files so the scan has real work to commit
                    os.utime(p)
                scans.append(scan(scanned.roots, db=scanned.db, engine="serial"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    worker = threading.Thread(target=rescans)
    worker.start()
    try:
        for i, p in enumerate(paths):
            mark = "exclude" if i % 2 else "keep"
            assert (
                client.act("/marks", {"file": file_id(scanned, p), "mark": mark}).status_code == 200
            )
            assert client.get("/groups.json").status_code == 200
    finally:
        stop.set()
        worker.join()
    assert not errors, errors
    assert len(scans) >= 2  # the marks really were made while scans ran
    expected = {p: ("exclude" if i % 2 else "keep") for i, p in enumerate(paths)}
    assert _marks(scanned.db) == expected
    result = scanned.rescan()
    assert _marks(scanned.db) == expected
    with sqlite3.connect(scanned.db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()
    from lookalike.review import decide

    with Store(scanned.db, readonly=True) as store:
        actions = {d.path: d.action for d in decide(store)}
    assert all(actions[p] == ("remove" if m == "exclude" else "keep") for p, m in expected.items())
    assert result.groups


def test_the_group_index_notices_a_scan_between_two_of_its_own_changes(
    scanned: Scanned, client: Client
) -> None:
    index = client.app.state.review.index
    before = client.get("/groups.json?per_page=200").json()["total"]
    with sqlite3.connect(scanned.db) as other:  # another connection drops a group
        gid = other.execute("SELECT MAX(id) FROM groups").fetchone()[0]
        other.execute("DELETE FROM members WHERE group_id = ?", (gid,))
        other.execute("DELETE FROM groups WHERE id = ?", (gid,))
    other.close()
    group = scanned.result.groups[0]
    client.act(f"/groups/{group.id}/keeper", {"file": file_id(scanned, group.members[0].path)})
    assert client.get("/groups.json?per_page=200").json()["total"] == before - 1
    assert index.page(GroupQuery(per_page=200))[0] == before - 1
