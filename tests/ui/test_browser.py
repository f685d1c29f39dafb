"""Real-browser tests: Playwright driving Debian's chromium against uvicorn on a free port.

Needs ``pip install playwright`` and ``apt-get install chromium`` (no ``playwright
install``: the system browser is used). Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lookalike.store import Store
from lookalike.ui.app import create_app, listen_socket

from .conftest import Scanned

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = pytest.mark.browser


@pytest.fixture()
def browser_page(tmp_path: Path) -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright)")
    profile = tmp_path / "chromium-profile"
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=ARGS,
            viewport={"width": 1360, "height": 900},
        )
        try:
            page = context.new_page()
            errors: list[str] = []
            dialogs: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))

            def answer(dialog: Any) -> None:  # accepts, unless a test sets page.accept
                dialogs.append(dialog.message)
                if getattr(page, "accept", True):
                    dialog.accept()
                else:
                    dialog.dismiss()

            page.on("dialog", answer)
            page.errors = errors  # type: ignore[attr-defined]
            page.dialogs = dialogs  # type: ignore[attr-defined]
            yield page
            assert errors == [], errors
        finally:
            context.close()


@pytest.fixture()
def server(scanned: Scanned) -> Iterator[str]:
    import uvicorn

    app = create_app(scanned.db, allowed_hosts=["127.0.0.1", "localhost"])
    sock = listen_socket("127.0.0.1", 0)  # the socket `lookalike serve` listens on
    port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(timeout=20)
        sock.close()
        app.state.review.close()


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _images_loaded(page: Any, selector: str = "img") -> bool:
    """Every image matching ``selector`` that is displayed has loaded (waits up to 10 s)."""
    script = (
        "sel => Array.from(document.querySelectorAll(sel)).filter(i => i.offsetParent !== null)"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    page.wait_for_function(script, arg=selector, timeout=10_000)
    return True


def test_review_mark_a_group_and_quarantine(
    scanned: Scanned, server: str, browser_page: Any
) -> None:
    page = browser_page
    page.goto(f"{server}/")
    assert page.locator("h1").inner_text() == "Overview"
    _shot(page, "overview")

    page.goto(f"{server}/groups")
    page.wait_for_load_state("networkidle")
    assert page.locator(".group-card").count() == len(scanned.result.groups)
    assert _images_loaded(page)
    _shot(page, "groups")

    page.keyboard.press("j")  # select the second card, then open it
    assert "selected" in (page.locator(".group-card").nth(1).get_attribute("class") or "")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/groups/\d+"))
    page.wait_for_load_state("networkidle")
    gid = int(page.url.split("/groups/")[1].split("?")[0].split("#")[0])
    group = next(g for g in scanned.result.groups if g.id == gid)
    assert _images_loaded(page, ".file-card img")
    _shot(page, "group")

    page.keyboard.press("d")  # compare: overlay, then difference
    assert "mode-overlay" in (page.locator("[data-stage]").get_attribute("class") or "")
    page.keyboard.press("d")
    assert "mode-diff" in (page.locator("[data-stage]").get_attribute("class") or "")
    page.locator("#compare").scroll_into_view_if_needed()
    assert _images_loaded(page, "[data-diff]")
    _shot(page, "group-difference")

    page.keyboard.press("?")
    assert page.locator("#help").is_visible()
    page.keyboard.press("Escape")
    assert not page.locator("#help").is_visible()

    with page.expect_navigation():
        page.keyboard.press("g")  # exclude the whole group except its keeper
    with Store(scanned.db, readonly=True) as store:
        assert store.marks() == {m.path: "exclude" for m in group.members}
    assert page.locator(".file-card.action-remove").count() == len(group.members)

    page.goto(f"{server}/export")
    dest = scanned.base / "quarantine"
    page.fill("#quarantine-form input[name=dest]", str(dest))
    with page.expect_navigation():
        page.click("#quarantine-form button[type=submit]")
    page.wait_for_selector("#result")
    _shot(page, "export-result")
    text = page.locator("#result").inner_text()
    assert "Manifest" in text and "lookalike undo" in text

    members = {m.path for g in scanned.result.groups for m in g.members}
    assert all(not os.path.exists(p) for p in members)
    [manifest] = dest.glob("lookalike-manifest-*.json")
    doc = json.loads(manifest.read_text())
    assert {e["original"] for e in doc["entries"]} == members
    for entry in doc["entries"]:
        assert entry["status"] == "moved" and os.path.isfile(entry["new"])
        assert entry["new"].startswith(str(dest) + os.sep)
    keepers = {g.keeper for g in scanned.result.groups}
    assert all(os.path.exists(p) for p in keepers)


def test_groups_filters_and_bulk_exclude_in_the_browser(
    scanned: Scanned, server: str, browser_page: Any
) -> None:
    page = browser_page
    page.goto(f"{server}/groups")
    page.select_option("select[name=sort]", "score")
    page.wait_for_url(re.compile(r".*sort=score"))
    slider = page.locator("form.filters input[name=min_score]")
    slider.fill("0.9")  # moves the slider and fires change: the list reloads filtered
    page.wait_for_url(re.compile(r".*min_score=0\.9"))
    shown = page.locator(".group-card").count()
    expected = [g for g in scanned.result.groups if min(m.score for m in g.members) >= 0.9]
    assert shown == len(expected)
    with page.expect_navigation():
        page.click("form.bulk button")  # confirm() is accepted by the fixture
    with Store(scanned.db, readonly=True) as store:
        assert set(store.marks()) == {m.path for g in expected for m in g.members}
    _shot(page, "groups-filtered")
    shutil.rmtree(scanned.base / "quarantine", ignore_errors=True)


def _no_error_page(page: Any, what: str) -> None:
    assert page.locator("section.error").count() == 0, (what, page.locator("main").inner_text())


def _store_is_free(db: Path) -> None:
    """Another connection can take the write lock at once: the UI holds nothing."""
    import sqlite3

    other = sqlite3.connect(db, timeout=0.5)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.rollback()
    finally:
        other.close()


def _splittable(scanned: Scanned) -> Any:
    return next(
        g
        for g in scanned.result.groups
        if len(g.members) >= 2 and all(m.relation != "exact" for m in g.members)
    )


def _press(page: Any, key: str) -> None:
    with page.expect_navigation():
        page.keyboard.press(key)
    page.wait_for_load_state("domcontentloaded")


def test_several_actions_in_a_row_in_the_browser(
    scanned: Scanned, server: str, browser_page: Any
) -> None:
    """Issue #12 item 1: after "Make keeper" or "Not a duplicate" every later write
    answered 400 and the store stayed locked."""
    page = browser_page
    group = _splittable(scanned)
    page.goto(f"{server}/groups/{group.id}")
    selected = page.locator(".file-card.selected")
    chosen = selected.get_attribute("data-file")
    _press(page, "m")  # make the selected member the keeper
    _no_error_page(page, "keeper")
    with Store(scanned.db, readonly=True) as store:
        keeper = store.conn.execute(
            "SELECT keeper FROM groups WHERE id = ?", (group.id,)
        ).fetchone()
        assert store.marks().get(os.fsdecode(keeper[0])) == "keeper"
    assert page.locator(".file-card.is-keeper").get_attribute("data-file") == chosen
    _store_is_free(scanned.db)

    _press(page, "n")  # the selected member is not a duplicate of the new keeper
    _no_error_page(page, "not-duplicate")
    with Store(scanned.db, readonly=True) as store:
        assert len(store.not_duplicate_pairs()) == 2
    _store_is_free(scanned.db)

    page.keyboard.press("l")
    _press(page, "x")  # exclude one file
    _no_error_page(page, "exclude")
    _press(page, "g")  # exclude the whole group but its keeper
    _no_error_page(page, "exclude group")
    with Store(scanned.db, readonly=True) as store:
        marks = store.marks()
    assert list(marks.values()).count("exclude") >= 1
    _store_is_free(scanned.db)

    page.goto(f"{server}/groups?min_score=0.9")
    with page.expect_navigation():
        page.click("form.bulk button")  # the confirm is accepted by the fixture
    _no_error_page(page, "bulk")
    assert page.dialogs and page.dialogs[-1].startswith("Mark ")

    other = next(g for g in scanned.result.groups if g.id != group.id and g.members)
    page.goto(f"{server}/groups/{other.id}")
    _press(page, "m")  # and a keeper change after all that still works
    _no_error_page(page, "second keeper")
    _store_is_free(scanned.db)
    _shot(page, "after-several-actions")


def test_a_scan_right_after_ui_actions_on_the_same_store(
    scanned: Scanned, server: str, browser_page: Any
) -> None:
    page = browser_page
    group = _splittable(scanned)
    page.goto(f"{server}/groups/{group.id}")
    for key in ("m", "n", "x"):  # keeper, not a duplicate, exclude: checked after the scan
        _press(page, key)
    started = time.monotonic()
    result = scanned.rescan()  # before the fix: "database is locked" after 30 s
    took = time.monotonic() - started
    assert result.groups and took < 25, took
    _no_error_page(page, "the actions before the scan")
    with Store(scanned.db, readonly=True) as store:
        assert "keeper" in store.marks().values() and "exclude" in store.marks().values()
        assert len(store.not_duplicate_pairs()) == 2
    page.goto(f"{server}/groups")
    assert page.locator(".group-card").count() == len(result.groups)
    page.locator(".group-card a.thumbs").first.click()
    page.wait_for_url(re.compile(r".*/groups/\d+"))
    _press(page, "g")  # the UI still writes after the scan
    _no_error_page(page, "exclude group after the scan")


def test_bulk_exclude_defaults_to_a_safe_similarity_and_confirms_the_count(
    scanned: Scanned, server: str, browser_page: Any
) -> None:
    """Issue #12 item 16: the bulk action defaulted to similarity >= 0.00 (every group)."""
    from lookalike import review

    page = browser_page
    page.goto(f"{server}/groups")
    score = page.locator("form.bulk input[name=min_score]")
    button = page.locator("form.bulk button")
    assert score.input_value() == "1.00"  # the filter slider's 0.00 is not the default
    with Store(scanned.db) as store:
        safe = review.bulk_exclude(store, min_score=1.0, dry_run=True)
        near = review.bulk_exclude(store, min_score=0.95, dry_run=True)
    assert len(near.files) > len(safe.files)
    assert f"Exclude {len(safe.files)} file" in button.inner_text()
    # the bulk form sits below the groups, not above them
    assert page.locator("form.bulk").bounding_box()["y"] > page.locator(".grid").bounding_box()["y"]
    _shot(page, "groups-bulk-default")

    if not safe.files:  # no exact copy in this dataset: the click only explains that
        with page.expect_event("dialog"):
            button.click()
        assert page.dialogs[-1].startswith("No file to mark")
    score.fill("0.95")
    expected = f"Exclude {len(near.files)} files in {near.groups} groups"
    page.wait_for_function(
        "t => document.querySelector('form.bulk button').textContent === t", arg=expected
    )
    page.accept = False  # type: ignore[attr-defined]
    with page.expect_event("dialog"):
        button.click()
    assert page.dialogs[-1].startswith(f"Mark {len(near.files)} files excluded")
    assert f"in {near.groups} groups with similarity ≥ 0.95" in page.dialogs[-1]
    with Store(scanned.db, readonly=True) as store:
        assert store.marks() == {}  # dismissed: nothing marked
    page.accept = True  # type: ignore[attr-defined]
    with page.expect_navigation():
        button.click()
    _no_error_page(page, "bulk")
    with Store(scanned.db, readonly=True) as store:
        assert store.marks() == {p: "exclude" for p in near.files}
    _shot(page, "groups-bulk-done")
