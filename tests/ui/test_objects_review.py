"""Reviewing objects in the UI: accept or reject a removal, resolve a label conflict, filter
by kind; the decisions reach the cleaned annotations written by ``lookalike objects``."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image

from lookalike.cli_objects import objects_command
from lookalike.objects import find_object_duplicates, stored_decisions
from lookalike.store import Store

from .conftest import Client, Scanned
from .test_browser import _shot, browser_page, server  # noqa: F401 (fixtures)

CATEGORIES = [{"id": 1, "name": "person"}, {"id": 2, "name": "dog"}, {"id": 3, "name": "cup"}]


def annotate(scanned: Scanned) -> Path:
    """A COCO file on a scanned image: two duplicate pairs and a label conflict, stored."""
    image = scanned.result.groups[0].keeper
    root = next(r for r in scanned.roots if image.startswith(r + os.sep))
    with Image.open(image) as picture:
        w, h = picture.size
    boxes = [
        (1, [2, 2, 20, 20]), (1, [3, 2, 20, 20]),  # duplicate: 2 is removed
        (3, [30, 5, 15, 15]), (3, [30, 6, 15, 15]),  # duplicate: 4 is removed
        (1, [5, 26, 18, 18]), (2, [6, 26, 18, 18]),  # label conflict person / dog
    ]  # fmt: skip
    doc = {
        "images": [{"id": 1, "file_name": os.path.relpath(image, root), "width": w, "height": h}],
        "annotations": [
            {"id": n + 1, "image_id": 1, "category_id": c, "bbox": b}
            for n, (c, b) in enumerate(boxes)
        ],
        "categories": CATEGORIES,
    }
    path = scanned.base / "annotations" / "instances.json"
    path.parent.mkdir()
    path.write_text(json.dumps(doc))
    find_object_duplicates(path, images_dir=root, db=scanned.db, cross_image=False)
    return path


def findings(client: Client, **params: str) -> list[dict[str, Any]]:
    doc = client.get("/objects.json", params=params).json()
    return [f for im in doc["images"] for f in im["findings"]]


def test_the_page_lists_findings_by_kind(scanned: Scanned, client: Client) -> None:
    annotate(scanned)
    doc = client.get("/objects.json").json()
    assert doc["kinds"] == {
        "duplicate": 2, "label-conflict": 1, "cross-image-conflict": 0, "repeated-object": 0
    }  # fmt: skip
    assert [f["kind"] for f in findings(client)] == ["duplicate", "duplicate", "label-conflict"]
    assert [f["kind"] for f in findings(client, kind="label-conflict")] == ["label-conflict"]
    boxes = client.get("/objects.json", params={"kind": "label-conflict"}).json()["images"]
    assert {o["kind"] for o in boxes[0]["objects"]} == {"label-conflict"}
    assert client.get("/objects", params={"kind": "nonsense"}).status_code == 400


def test_decisions_are_posts_with_the_csrf_token(scanned: Scanned, client: Client) -> None:
    source = annotate(scanned)
    first, second, conflict = (f["id"] for f in findings(client))
    refused = client.post("/objects/decide", data={"finding": first, "action": "accept"})
    assert refused.status_code == 403
    assert client.get("/objects/decide").status_code == 405
    assert client.act("/objects/decide", {"finding": first, "action": "accept"}).json()["ok"]
    assert client.act("/objects/decide", {"finding": second, "action": "reject"}).status_code == 200
    answer = client.act("/objects/decide", {"finding": conflict, "action": "label", "side": "b"})
    assert {d["label"] for d in answer.json()["decisions"].values()} == {"dog"}
    wrong = client.act("/objects/decide", {"finding": conflict, "action": "accept"})
    assert wrong.status_code == 400 and "label" in wrong.json()["error"]
    assert client.act("/objects/decide", {"finding": 999, "action": "accept"}).status_code == 409
    shown = {f["id"]: f["decision"] for f in findings(client)}
    assert shown == {
        first: {"removal": "accept", "box": 2},
        second: {"removal": "reject", "box": 4},
        conflict: {"label": "dog"},
    }
    with Store(scanned.db) as store:
        assert stored_decisions(store, source).removals == {2: "accept", 4: "reject"}


def test_undo_forgets_a_decision(scanned: Scanned, client: Client) -> None:
    source = annotate(scanned)
    first = findings(client)[0]["id"]
    client.act("/objects/decide", {"finding": first, "action": "accept"})
    client.act("/objects/decide", {"finding": first, "action": "clear"})
    assert findings(client)[0]["decision"] is None
    with Store(scanned.db) as store:
        assert not stored_decisions(store, source)


def cleaned_after_write(scanned: Scanned, source: Path) -> list[tuple[int, int]]:
    """``(id, category_id)`` of the annotations ``lookalike objects --write`` leaves."""
    out = scanned.base / "cleaned"
    args = [str(source), "--db", str(scanned.db), "--no-cross-image", "-q"]
    args += ["--images", scanned.roots[0], "--out", str(out), "--write"]
    result = CliRunner().invoke(objects_command, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    doc = json.loads((out / source.name).read_text())
    return [(a["id"], a["category_id"]) for a in doc["annotations"]]


@pytest.mark.browser
def test_review_objects_in_the_browser(scanned: Scanned, server: str, browser_page: Any) -> None:  # noqa: F811
    source = annotate(scanned)
    page = browser_page
    page.goto(f"{server}/objects")
    assert page.locator("tr.finding").count() == 3
    _shot(page, "objects")

    page.select_option("select[name=kind]", "duplicate")  # the filter applies at once
    page.wait_for_url(re.compile(r".*kind=duplicate"))
    assert page.locator("tr.finding").count() == 2
    rows = page.locator("tr.finding")
    with page.expect_navigation():
        rows.nth(0).locator("[data-action=accept]").click()
    page.wait_for_url(re.compile(r".*kind=duplicate#finding-\d+"))
    assert "removal of #2 accepted" in page.locator("tr.finding").nth(0).inner_text()
    with page.expect_navigation():
        page.locator("tr.finding").nth(1).locator("[data-action=reject]").click()
    assert "removal of #4 rejected: kept" in page.locator("tr.finding").nth(1).inner_text()

    page.select_option("select[name=kind]", "label-conflict")
    page.wait_for_url(re.compile(r".*kind=label-conflict"))
    with page.expect_navigation():
        page.locator("tr.finding [data-action=label-b]").click()
    assert "label: dog" in page.locator("tr.finding").inner_text()
    assert page.locator("tr.finding [data-action=label-b]").is_disabled()
    _shot(page, "objects-decided")

    with Store(scanned.db, readonly=True) as store:
        decisions = stored_decisions(store, source)
    assert decisions.removals == {2: "accept", 4: "reject"}
    assert decisions.labels == {5: 6, 6: 6}
    # accepted removal gone, rejected kept, the conflict's boxes both dogs (the later removed)
    assert cleaned_after_write(scanned, source) == [(1, 1), (3, 3), (4, 3), (5, 2)]
