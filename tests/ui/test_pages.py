"""Every page and its JSON twin, in process; the JSON carries the CLI's --json data."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest
from click.testing import CliRunner

from lookalike.cli_review import serve_command
from lookalike.report import group_to_dict, summary
from lookalike.store import Store, to_blob

from .conftest import Client, Scanned, file_id

PAGES = ["/", "/groups", "/groups/1", "/failures", "/failures?kind=skipped", "/objects", "/export"]
TWINS = {"/": "/index.json"}


@pytest.mark.parametrize("page", PAGES)
def test_every_page_and_its_json_twin_answer(reader: Client, page: str) -> None:
    html = reader.get(page)
    assert html.status_code == 200, html.text
    assert html.headers["content-type"].startswith("text/html")
    assert "<main>" in html.text and "This page as JSON" in html.text
    path, _, query = page.partition("?")
    twin = TWINS.get(path, path + ".json") + (f"?{query}" if query else "")
    doc = reader.get(twin)
    assert doc.status_code == 200, doc.text
    assert doc.headers["content-type"] == "application/json"
    assert doc.json()["schema"].startswith("lookalike.")


def test_overview_json_has_the_scan_summary(shared: Scanned, reader: Client) -> None:
    doc = reader.get("/index.json").json()
    assert doc["summary"] == summary(shared.result.groups)
    assert doc["images"] == shared.result.images
    assert doc["failures"] == len(shared.result.failures) >= 1
    assert doc["roots"] == shared.roots
    leak = doc["summary"]["leakage"]
    assert leak and leak[0]["roots"] == sorted(shared.roots)
    assert doc["plan"]["remove"] == doc["summary"]["duplicates"]


def test_groups_json_entries_are_the_cli_json_groups(shared: Scanned, reader: Client) -> None:
    doc = reader.get("/groups.json?sort=id&order=asc&per_page=200").json()
    expected = [group_to_dict(g) for g in shared.result.groups]
    assert doc["total"] == len(expected)
    got = [{k: g[k] for k in expected[0]} for g in doc["groups"]]
    assert got == expected
    for g in doc["groups"]:
        assert set(g["files"]) == {g["keeper"], *(m["path"] for m in g["members"])}
        assert g["score"] == min(m["score"] for m in g["members"])


def test_group_page_shows_members_side_by_side_with_evidence(
    shared: Scanned, reader: Client
) -> None:
    group = shared.result.groups[0]
    page = reader.get(f"/groups/{group.id}")
    assert page.status_code == 200
    text = page.text
    assert "★ keeper" in text and "Evidence of the match" in text
    for m in group.members:
        assert f"/thumb/{file_id(shared, m.path)}?size=512" in text
        for key in m.evidence:
            assert f"<th>{key}</th>" in text
    assert 'data-mode="diff"' in text and "/diff/" in text
    for key in ("j / k", "x", "s", "n", "m", "g", "d", "?"):  # shortcuts documented on the page
        assert f"<kbd>{key}</kbd>" in text
    doc = reader.get(f"/groups/{group.id}.json").json()
    assert {k: doc["group"][k] for k in group_to_dict(group)} == group_to_dict(group)
    keeper = doc["group"]["files"][group.keeper]
    assert keeper["width"] and keeper["format"] and keeper["action"] == "keep"


def test_groups_sort_filter_and_pagination(shared: Scanned, reader: Client) -> None:
    all_groups = reader.get("/groups.json?per_page=200").json()["groups"]
    by_bytes = [g["reclaimable_bytes"] for g in all_groups]
    assert by_bytes == sorted(by_bytes, reverse=True)
    by_score = [
        g["score"]
        for g in reader.get("/groups.json?sort=score&order=asc&per_page=200").json()["groups"]
    ]
    assert by_score == sorted(by_score)
    sizes = [
        g["file_count"] for g in reader.get("/groups.json?sort=size&per_page=200").json()["groups"]
    ]
    assert sizes == sorted(sizes, reverse=True)
    cut = sorted(by_score)[len(by_score) // 2]
    high = reader.get(f"/groups.json?min_score={cut}&per_page=200").json()
    assert high["total"] == sum(s >= cut for s in by_score)
    assert all(g["score"] >= cut for g in high["groups"])
    val = shared.roots[1]
    in_val = reader.get("/groups.json", params={"root": val, "per_page": 200}).json()
    assert in_val["total"] >= 1 and all(val in g["roots"] for g in in_val["groups"])
    spans = reader.get("/groups.json?spans=1").json()
    assert spans["total"] == summary(shared.result.groups)["leakage"][0]["groups"]
    assert all(g["roots"] == sorted(shared.roots) for g in spans["groups"])
    near = reader.get("/groups.json?relation=exact").json()
    assert all(g["relation"] == "exact" for g in near["groups"])
    page2 = reader.get("/groups.json?per_page=24&page=2").json()
    assert page2["page"] == 2 and page2["groups"] == all_groups[24:48]


@pytest.mark.parametrize(
    "query",
    [
        "sort=evil",
        "order=sideways",
        "relation=cousin",
        "min_score=2",
        "min_score=nan",
        "page=0",
        "per_page=7",
        "page=x",
    ],
)
def test_bad_listing_parameters_are_400_with_a_reason(reader: Client, query: str) -> None:
    response = reader.get(f"/groups.json?{query}")
    assert response.status_code == 400
    name = query.split("=")[0]
    assert name in response.json()["error"]
    assert reader.get(f"/groups?{query}").status_code == 400


def test_unknown_group_and_page_are_404_with_next_steps(reader: Client) -> None:
    missing = reader.get("/groups/9999.json")
    assert missing.status_code == 404
    assert "renumbers" in missing.json()["error"]
    page = reader.get("/no/such/page")
    assert page.status_code == 404 and "overview" in page.text


def test_failures_page_lists_every_unreadable_file_with_its_reason(
    shared: Scanned, reader: Client
) -> None:
    doc = reader.get("/failures.json").json()
    expected = [(f.path, f.error) for f in shared.result.failures]
    assert [(f["path"], f["error"]) for f in doc["failures"]] == expected
    assert any(path.endswith("broken.jpg") for path, _ in expected)
    html = reader.get("/failures").text
    assert "broken.jpg" in html
    skipped = reader.get("/failures.json?kind=skipped").json()["skipped"]
    assert any(
        s["path"].endswith("link-out.jpg") and "symbolic link" in s["error"] for s in skipped
    )


def test_objects_page_shows_an_empty_state_without_object_results(reader: Client) -> None:
    doc = reader.get("/objects.json").json()
    assert doc["available"] is False and doc["images"] == []
    assert "no object results yet" in reader.get("/objects").text


def test_objects_page_draws_boxes_from_an_objects_table(scanned: Scanned, client: Client) -> None:
    image = scanned.result.groups[0].keeper
    with sqlite3.connect(scanned.db) as conn:  # stands in for the objects feature's table
        conn.execute(
            "CREATE TABLE objects (path TEXT, label TEXT, x0 REAL, y0 REAL, x1 REAL, "
            "y1 REAL, kind TEXT, group_id INTEGER, action TEXT, iou REAL)"
        )
        conn.executemany(
            "INSERT INTO objects VALUES (?, 'cat', ?, 10, ?, 40, 'duplicate', 1, ?, 0.97)",
            [(image, 5, 50, "keep"), (image, 6, 51, "remove")],
        )
    conn.close()
    doc = client.get("/objects.json").json()
    assert doc["available"] and doc["readable"] and doc["total_objects"] == 2
    [entry] = doc["images"]
    assert entry["file_id"] == file_id(scanned, image)
    assert [o["box"] for o in entry["objects"]] == [[5, 10, 50, 40], [6, 10, 51, 40]]
    html = client.get("/objects").text
    assert html.count('<rect class="box') == 2 and 'class="box remove"' in html


def test_export_page_previews_without_touching_anything(shared: Scanned, reader: Client) -> None:
    doc = reader.get("/export.json").json()
    assert doc["dry_run"] is True
    removed = {m.path for g in shared.result.groups for m in g.members}
    assert {d["path"] for d in doc["remove"]} == removed
    assert doc["summary"]["remove"] == len(removed)
    assert all(os.path.isfile(path) for path in removed)
    text = reader.get("/export/list.txt?list=remove").text
    assert sorted(text.splitlines()) == sorted(removed)
    html = reader.get("/export").text
    assert (
        f'value="{shared.roots[0]}-quarantine"' in html
        and f'value="{shared.roots[0]}-clean"' in html
    )
    csv_text = reader.get("/export/list.csv").text
    assert csv_text.splitlines()[0].startswith("group,role,action,")


def test_images_are_served_by_id(shared: Scanned, reader: Client) -> None:
    keeper = shared.result.groups[0].keeper
    fid = file_id(shared, keeper)
    image = reader.get(f"/image/{fid}")
    with open(keeper, "rb") as fh:
        assert image.status_code == 200 and image.content == fh.read()
    thumb = reader.get(f"/thumb/{fid}?size=128")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    again = reader.get(f"/thumb/{fid}?size=128", headers={"if-none-match": thumb.headers["etag"]})
    assert again.status_code == 304
    member = file_id(shared, shared.result.groups[0].members[0].path)
    diff = reader.get(f"/diff/{fid}/{member}")
    assert diff.status_code == 200 and diff.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert reader.get(f"/thumb/{fid}?size=77").status_code == 400


def test_serve_get_prints_json_and_exits_1_on_non_200(shared: Scanned) -> None:
    runner = CliRunner()
    ok = runner.invoke(serve_command, ["--db", str(shared.db), "--get", "/groups.json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["total"] == len(shared.result.groups)
    missing = runner.invoke(serve_command, ["--db", str(shared.db), "--get", "/groups/9999.json"])
    assert missing.exit_code == 1
    assert "answered 404" in missing.stderr


def test_serve_finds_the_store_of_the_roots_like_scan(
    shared: Scanned, monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("LOOKALIKE_DB", str(shared.db))
    runner = CliRunner()
    by_env = runner.invoke(serve_command, ["--get", "/index.json"])
    assert by_env.exit_code == 0, by_env.output
    assert json.loads(by_env.stdout)["store"] == str(shared.db.resolve())
    monkeypatch.delenv("LOOKALIKE_DB")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    none = runner.invoke(serve_command, [*shared.roots, "--get", "/"])
    assert none.exit_code == 1
    assert "Error: No store at" in none.stderr and "lookalike scan" in none.stderr
    nothing = runner.invoke(serve_command, ["--get", "/"])
    assert nothing.exit_code == 1 and "--db" in nothing.stderr


def test_pages_show_paths_that_are_not_utf8(tmp_path) -> None:
    from lookalike import scan
    from lookalike.testing import make_photo, save_image
    from lookalike.ui.app import create_app

    root = tmp_path / "data"
    root.mkdir()
    photo = make_photo(3, size=(64, 48))[0]
    save_image(photo, root / "a.png")
    name = os.fsdecode(b"caf\xe9.png")  # Latin-1 byte: not valid UTF-8
    save_image(photo, root / name)
    scan([root], db=tmp_path / "s.db")
    app = create_app(tmp_path / "s.db")
    try:
        client = Client(app)
        page = client.get("/groups/1")
        assert page.status_code == 200 and "caf\\udce9.png" in page.text
        doc = client.get("/groups/1.json")
        assert doc.status_code == 200
        group = doc.json()["group"]
        assert str(root / name) in {group["keeper"], *(m["path"] for m in group["members"])}
        assert client.get(f"/thumb/{group['files'][str(root / name)]['id']}").status_code == 200
    finally:
        app.state.review.close()


def test_serve_binds_loopback_on_a_free_port_and_prints_the_url(shared: Scanned) -> None:
    import subprocess
    import sys

    import httpx

    code = "from lookalike.cli import main; main()"
    cmd = [sys.executable, "-c", code, "serve", "--db", str(shared.db), "--port", "0"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            url = proc.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:") and not url.endswith(":0/"), url
            with httpx.Client(base_url=url, timeout=10) as http:
                assert http.get("/index.json").json()["images"] == shared.result.images
                assert http.get("/", headers={"host": "attacker.example"}).status_code == 400
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def test_objects_page_reads_the_objects_view_of_the_objects_feature(
    scanned: Scanned, client: Client
) -> None:
    objects = pytest.importorskip("lookalike.objects")
    if not hasattr(objects, "create_tables"):
        pytest.skip("this lookalike.objects writes no tables")
    image = scanned.result.groups[0].keeper
    with Store(scanned.db) as store:
        objects.create_tables(store)
        with store.transaction() as conn:
            conn.execute(
                "INSERT INTO object_runs (id, annotations, format, started, status) "
                "VALUES (1, 'ann.json', 'coco', 0, 'done')"
            )
            conn.execute(
                "INSERT INTO object_findings (run_id, kind, reason, set_id, path_a, annotation_a, "
                "label_a, box_a, action_a, path_b, annotation_b, label_b, box_b, action_b, "
                "score, evidence) VALUES (1, 'duplicate', 'iou', 1, ?, '1', 'dog', "
                "'[1, 2, 30, 20]', 'keep', ?, '2', 'dog', '[2, 2, 31, 21]', 'remove', 0.93, '{}')",
                (to_blob(image), to_blob(image)),
            )
    doc = client.get("/objects.json").json()
    assert doc["readable"] and doc["total_objects"] == 2
    [entry] = doc["images"]
    assert entry["path"] == image and entry["file_id"] == file_id(scanned, image)
    assert sorted((o["box"], o["action"]) for o in entry["objects"]) == [
        ([1, 2, 30, 20], "keep"),
        ([2, 2, 31, 21], "remove"),
    ]
    assert 'class="box remove"' in client.get("/objects").text


def test_a_store_without_a_finished_scan_still_answers(tmp_path) -> None:
    from lookalike.ui.app import create_app

    Store(tmp_path / "empty.db").close()
    app = create_app(tmp_path / "empty.db")
    try:
        client = Client(app)
        for url in ("/", "/groups", "/groups.json", "/failures", "/objects", "/export.json"):
            assert client.get(url).status_code == 200, url
        assert "no finished scan" in client.get("/").text
        assert client.get("/groups.json").json()["total"] == 0
    finally:
        app.state.review.close()


HUGE = ["9" * 400, "9" * 5000, str(2**63), "99999999999999999999999", "-" + "9" * 400]
ODD = ["1_0", "\u0661", " 1", "1e3", "0x10", "+1", ""]


def _short(value: str) -> str:
    return value if len(value) < 24 else f"{value[:3]}..{len(value)}digits"


QUERY_INTS = [
    "/groups?page={}",
    "/groups.json?page={}",
    "/groups.json?per_page={}",
    "/failures?page={}",
    "/failures.json?kind=skipped&page={}",
    "/objects.json?page={}",
    "/export?page={}",
    "/export.json?page={}",
    "/thumb/1?size={}",
]


def _int_routes(app) -> list[tuple[str, str]]:
    """(method, path template) of every route with a whole-number path parameter."""
    from starlette.routing import Route

    from lookalike.ui.views import IdConvertor

    out = []
    for route in app.routes:
        if isinstance(route, Route) and any(
            isinstance(c, IdConvertor) for c in route.param_convertors.values()
        ):
            for method in sorted(route.methods or {"GET"}):
                if method != "HEAD":
                    out.append((method, route.path))
    return out


def test_every_whole_number_in_a_path_is_an_id_segment(reader: Client) -> None:
    """No route uses Starlette's ``int`` convertor (any number of digits): a new route
    with a number in its path is then covered by the test below automatically."""
    from starlette.convertors import IntegerConvertor
    from starlette.routing import Route

    for route in reader.app.routes:
        if isinstance(route, Route):
            assert not any(
                isinstance(c, IntegerConvertor) for c in route.param_convertors.values()
            ), route.path
    paths = {p for _, p in _int_routes(reader.app)}
    assert {"/image/{fid:id}", "/groups/{gid:id}.json", "/diff/{a:id}/{b:id}"} <= paths
    assert len(paths) == 8


@pytest.mark.parametrize("value", HUGE, ids=_short)
def test_huge_ids_in_any_path_are_404_not_500(reader: Client, value: str) -> None:
    token = reader.token()
    for method, template in _int_routes(reader.app):
        url = template
        for name in ("fid", "gid", "a", "b"):
            url = url.replace(f"{{{name}:id}}", value)
        if method == "POST":
            response = reader.post(url, data={"csrf_token": token, "file": "1"})
        else:
            response = reader.get(url)
        assert response.status_code == 404, (method, url[:60], response.status_code)
        assert "Traceback" not in response.text and len(response.text) < 20_000


@pytest.mark.parametrize("value", HUGE + ODD, ids=_short)
@pytest.mark.parametrize("template", QUERY_INTS)
def test_out_of_range_or_odd_numbers_in_the_query_are_400(
    reader: Client, template: str, value: str
) -> None:
    response = reader.get(template.format(value))
    assert response.status_code == 400, (template, value[:20], response.status_code)
    name = template.split("?")[1].split("=")[-2].split("&")[-1]
    assert name in response.text and "Traceback" not in response.text


@pytest.mark.parametrize("value", HUGE + ["1_0", "\u0661"], ids=_short)
def test_out_of_range_numbers_in_forms_are_400(
    scanned: Scanned, client: Client, value: str
) -> None:
    group = scanned.result.groups[0]
    fid = str(file_id(scanned, group.members[0].path))
    posts = [
        ("/marks", {"file": value, "mark": "keep"}),
        (f"/groups/{group.id}/keeper", {"file": value}),
        (f"/groups/{group.id}/not-duplicate", {"file": value}),
        (f"/groups/{group.id}/not-duplicate", {"file": fid, "other": value}),
        ("/bulk-exclude", {"min_score": "1", "expect_files": value}),
    ]
    for url, form in posts:
        response = client.act(url, form)
        assert response.status_code == 400, (url, form)
        assert "whole number" in response.json()["error"] or "between" in response.json()["error"]
    with Store(scanned.db, readonly=True) as store:
        assert store.marks() == {}
