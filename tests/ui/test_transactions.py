"""Every UI write ends its transaction: actions in a row, and a scan right after them.

Issue #12 item 1: after "Make keeper" or "Not a duplicate", the UI's connection stayed
inside a transaction (the group index's TEMP table update), so the next write failed
("cannot start a transaction within a transaction") while taking the store's write
lock, and kept it: every later write and every scan then failed with "database is
locked" until ``serve`` restarted.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lookalike import review, scan
from lookalike.errors import StoreError
from lookalike.records import Group
from lookalike.store import Store

from .conftest import Client, Scanned, file_id

Action = Callable[[Scanned, Client, Group], Any]


def _splittable(scanned: Scanned) -> Group:
    """A group with two members whose bytes differ from the keeper's."""
    return next(
        g
        for g in scanned.result.groups
        if len(g.members) >= 2 and all(m.relation != "exact" for m in g.members)
    )


def _keeper(s: Scanned, c: Client, g: Group) -> Any:
    return c.act(f"/groups/{g.id}/keeper", {"file": file_id(s, g.members[0].path)})


def _not_duplicate(s: Scanned, c: Client, g: Group) -> Any:
    return c.act(f"/groups/{g.id}/not-duplicate", {"file": file_id(s, g.members[-1].path)})


def _exclude_group(s: Scanned, c: Client, g: Group) -> Any:
    return c.act(f"/groups/{g.id}/exclude")


def _exclude_file(s: Scanned, c: Client, g: Group) -> Any:
    return c.act("/marks", {"file": file_id(s, g.keeper), "mark": "exclude"})


def _bulk(s: Scanned, c: Client, g: Group) -> Any:
    return c.act("/bulk-exclude", {"min_score": "0.5"})


ACTIONS: dict[str, Action] = {
    "keeper": _keeper,
    "not-duplicate": _not_duplicate,
    "exclude-group": _exclude_group,
    "exclude-file": _exclude_file,
    "bulk": _bulk,
}
SEQUENCES = [
    ("keeper", "exclude-group"),
    ("keeper", "exclude-file"),
    ("keeper", "not-duplicate"),
    ("keeper", "bulk"),
    ("not-duplicate", "bulk"),
    ("not-duplicate", "exclude-group"),
    ("not-duplicate", "exclude-file"),
    ("keeper", "keeper"),
    ("not-duplicate", "keeper"),
]


def _store_is_free(db: Path) -> None:
    """Another connection can take the write lock at once: nothing of the UI holds it."""
    other = sqlite3.connect(db, timeout=0.5)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.rollback()
    finally:
        other.close()


@pytest.mark.parametrize(
    ("first", "second"), SEQUENCES, ids=[f"{a}-then-{b}" for a, b in SEQUENCES]
)
def test_two_actions_in_a_row_both_succeed_and_leave_the_store_free(
    scanned: Scanned, client: Client, first: str, second: str
) -> None:
    group = _splittable(scanned)
    conn = client.app.state.review.store.conn
    for name in (first, second):
        response = ACTIONS[name](scanned, client, group)
        assert response.status_code == 200, (name, response.text)
        assert not conn.in_transaction, name
        _store_is_free(scanned.db)
    assert client.app.state.review.leaked_transactions == 0  # no path relied on the guard
    assert client.get(f"/groups/{group.id}.json").status_code in (200, 404)


def test_a_scan_right_after_ui_actions_runs_at_once(scanned: Scanned, client: Client) -> None:
    group = _splittable(scanned)
    for name in ("keeper", "not-duplicate", "exclude-group", "bulk"):
        assert ACTIONS[name](scanned, client, group).status_code == 200, name
    _store_is_free(scanned.db)  # fails at once (not after the scan's 30 s) if still held
    result = scan(scanned.roots, db=scanned.db)
    assert result.groups
    assert client.act("/bulk-exclude", {"min_score": "0.9"}).status_code == 200
    assert client.get("/groups.json").json()["total"] == len(result.groups)


def test_a_unit_of_work_left_inside_a_transaction_is_rolled_back(
    scanned: Scanned, client: Client
) -> None:
    state = client.app.state.review
    with state.db() as store:
        store.conn.execute("DELETE FROM temp.review_groups")  # opens an implicit transaction
        assert store.conn.in_transaction
    assert not state.store.conn.in_transaction and state.leaked_transactions == 1
    _store_is_free(scanned.db)
    total = client.get("/groups.json").json()["total"]
    assert total == len(scanned.result.groups)  # the rolled-back index is rebuilt


def test_write_transaction_refuses_to_nest_without_locking(scanned: Scanned) -> None:
    with Store(scanned.db) as store:
        store.conn.execute("CREATE TEMP TABLE t (x)")
        store.conn.execute("INSERT INTO temp.t VALUES (1)")  # an implicit transaction
        with pytest.raises(StoreError) as err:
            with review.write_transaction(store):
                pass  # pragma: no cover - not reached
        assert "earlier transaction" in str(err.value)
        assert "Another" not in str(err.value)  # nobody else is to blame
        _store_is_free(scanned.db)  # the failed attempt took no lock
        store.conn.rollback()


def test_write_transaction_ends_on_every_path(scanned: Scanned) -> None:
    with Store(scanned.db) as store:
        with pytest.raises(ZeroDivisionError):
            with review.write_transaction(store) as conn:
                conn.execute("DELETE FROM marks")
                raise ZeroDivisionError
        assert not store.conn.in_transaction
        with review.write_transaction(store):
            pass
        assert not store.conn.in_transaction
        with review.read_transaction(store) as conn:
            conn.execute("SELECT COUNT(*) FROM groups").fetchone()
        assert not store.conn.in_transaction
        _store_is_free(scanned.db)


def test_only_a_busy_store_blames_another_connection(scanned: Scanned) -> None:
    holder = sqlite3.connect(scanned.db)
    with Store(scanned.db) as store:
        store.conn.execute("PRAGMA busy_timeout = 50")
        holder.execute("BEGIN IMMEDIATE")  # a scan writing
        try:
            with pytest.raises(StoreError) as err:
                review.set_mark(store, scanned.result.groups[0].keeper, "keep")
            assert "Another connection" in str(err.value)
            assert not store.conn.in_transaction
        finally:
            holder.rollback()
            holder.close()


def test_a_dry_run_bulk_exclude_takes_no_write_lock(scanned: Scanned) -> None:
    holder = sqlite3.connect(scanned.db)
    with Store(scanned.db) as store:
        store.conn.execute("PRAGMA busy_timeout = 50")
        holder.execute("BEGIN IMMEDIATE")  # a scan writing
        try:
            result = review.bulk_exclude(store, min_score=0.0, dry_run=True)
            assert result.dry_run and result.files
            assert not store.conn.in_transaction
        finally:
            holder.rollback()
            holder.close()
