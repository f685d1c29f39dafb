"""The UI serves only scanned files by id, changes state only by POST with the CSRF token,
and never writes on GET."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from lookalike.ui.app import create_app

from .conftest import Client, Scanned, file_id

TRAVERSALS = [
    "/image/../../etc/passwd",
    "/image/..%2F..%2Fetc%2Fpasswd",
    "/image/%2e%2e/%2e%2e/etc/passwd",
    "/image/%2Fetc%2Fpasswd",
    "/image//etc/passwd",
    "/image/1/../../../etc/passwd",
    "/thumb/..%252F..%252Fetc%252Fpasswd",
    "/thumb/-1",
    "/thumb/1e3",
    "/image/99999999",
    "/static/../app.py",
    "/static/..%2Fapp.py",
    "/static/%2e%2e/%2e%2e/store.py",
    "/static//etc/passwd",
    "/diff/1/..%2F..%2Fetc%2Fpasswd",
]


@pytest.mark.parametrize("url", TRAVERSALS)
def test_no_path_reaches_a_file_outside_the_store(reader: Client, url: str) -> None:
    response = reader.get(url)
    assert response.status_code in (400, 404, 405), (url, response.status_code)
    assert b"root:" not in response.content and b"import " not in response.content


def test_image_routes_take_no_path_parameter(shared: Scanned, reader: Client) -> None:
    fid = file_id(shared, shared.result.groups[0].keeper)
    for param in ("path", "file", "name", "src"):
        response = reader.get(f"/image/{fid}", params={param: "/etc/passwd"})
        with open(shared.result.groups[0].keeper, "rb") as fh:
            assert response.content == fh.read()


def _set_path(db: Path, fid: int, path: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE files SET path = ? WHERE id = ?", (os.fsencode(path), fid))
    conn.close()


def test_files_swapped_for_symlinks_out_of_the_root_are_refused(
    scanned: Scanned, client: Client
) -> None:
    keeper = scanned.result.groups[0].keeper
    fid = file_id(scanned, keeper)
    os.replace(keeper, keeper + ".moved")
    os.symlink(scanned.base / "outside" / "secret.jpg", keeper)
    for url in (f"/image/{fid}", f"/thumb/{fid}?size=256", f"/thumb/{fid}?size=128"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "symbolic link" in response.text


def test_a_linked_folder_inside_the_root_is_not_followed(scanned: Scanned, client: Client) -> None:
    member = scanned.result.groups[0].members[0].path
    fid = file_id(scanned, member)
    folder = os.path.dirname(member)
    os.rename(folder, folder + ".real")
    os.symlink(scanned.base / "outside", folder)  # the same path now leads out of the root
    assert client.get(f"/image/{fid}").status_code == 404


def test_links_the_scan_did_not_follow_have_no_id(shared: Scanned) -> None:
    from lookalike.store import Store, to_blob

    link = os.path.join(shared.roots[0], "link-out.jpg")
    with Store(shared.db, readonly=True) as store:
        status = store.conn.execute(
            "SELECT status FROM files WHERE path = ?", (to_blob(link),)
        ).fetchone()
        secret = store.conn.execute(
            "SELECT COUNT(*) FROM files WHERE path LIKE ?", (b"%secret%",)
        ).fetchone()[0]
    assert status == ("skipped",) and secret == 0


def test_skipped_and_failed_files_are_not_served(shared: Scanned, reader: Client) -> None:
    for name in ("link-out.jpg", "broken.jpg"):
        fid = file_id(shared, os.path.join(shared.roots[0], name))
        assert reader.get(f"/image/{fid}").status_code == 404
        assert reader.get(f"/thumb/{fid}").status_code == 404


def test_a_store_row_pointing_outside_the_roots_is_refused(
    scanned: Scanned, client: Client
) -> None:
    fid = file_id(scanned, scanned.result.groups[0].members[0].path)
    for forged in ("/etc/passwd", os.path.join(scanned.roots[0], "..", "outside", "secret.jpg")):
        _set_path(scanned.db, fid, forged)
        response = client.get(f"/image/{fid}")
        assert response.status_code == 404, forged
        assert client.get(f"/thumb/{fid}").status_code == 404


def test_a_file_changed_since_the_scan_is_not_shown(scanned: Scanned, client: Client) -> None:
    member = scanned.result.groups[0].members[0].path
    fid = file_id(scanned, member)
    with open(member, "ab") as fh:
        fh.write(b"tampered")
    response = client.get(f"/image/{fid}")
    assert response.status_code == 409
    assert "changed since the scan" in response.text
    assert client.get(f"/thumb/{fid}?size=512").status_code == 409


# -- CSRF ----------------------------------------------------------------------------------


def _mark_form(scanned: Scanned) -> dict[str, str]:
    return {
        "file": str(file_id(scanned, scanned.result.groups[0].members[0].path)),
        "mark": "exclude",
    }


def _marks(db: Path) -> list[tuple[bytes, str]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT path, mark FROM marks").fetchall()
    conn.close()
    return rows


def test_post_without_the_token_is_refused(scanned: Scanned, client: Client) -> None:
    form = _mark_form(scanned)
    assert client.post("/marks", data=form).status_code == 403  # no cookie, no token
    token = client.token()  # now the cookie is set
    assert client.post("/marks", data=form).status_code == 403  # cookie only
    assert client.post("/marks", data={**form, "csrf_token": "0" * 64}).status_code == 403
    stranger = Client(client.app)  # another session cannot reuse this token
    assert stranger.post("/marks", data={**form, "csrf_token": token}).status_code == 403
    assert _marks(scanned.db) == []
    ok = client.post("/marks", data={**form, "csrf_token": token})
    assert ok.status_code == 303
    assert [m for _, m in _marks(scanned.db)] == ["exclude"]


def test_post_with_the_header_token_works_and_foreign_origins_are_refused(
    scanned: Scanned, client: Client
) -> None:
    form = _mark_form(scanned)
    token = client.token()
    foreign = client.post(
        "/marks", data=form, headers={"x-csrf-token": token, "origin": "http://evil.example"}
    )
    assert foreign.status_code == 403 and "another site" in foreign.text
    ok = client.post(
        "/marks",
        data=form,
        headers={
            "x-csrf-token": token,
            "origin": "http://127.0.0.1:8642",
            "accept": "application/json",
        },
    )
    assert ok.status_code == 200 and ok.json()["mark"] == "exclude"


@pytest.mark.parametrize(
    "origin",
    [
        "https://127.0.0.1:8642",  # same host and port, another scheme
        "http://127.0.0.1:8643",  # another port of the same host
        "http://127.0.0.1",  # the default port is another port
        "http://localhost:8642",  # another host name for the same address
        "http://127.0.0.1:8642.evil.example",
        "http://127.0.0.1:8642@evil.example",
        "http://evil.example#http://127.0.0.1:8642",
        "ws://127.0.0.1:8642",
        "http://127.0.0.1:99999",
        "null",
        "",
    ],
)
def test_an_origin_must_be_this_servers_scheme_host_and_port(
    scanned: Scanned, client: Client, origin: str
) -> None:
    form = {**_mark_form(scanned), "csrf_token": client.token()}
    refused = client.post("/marks", data=form, headers={"origin": origin})
    assert refused.status_code == 403 and "another site" in refused.text, origin
    assert _marks(scanned.db) == []
    same = client.post(
        "/marks", data=form, headers={"origin": "HTTP://127.0.0.1:8642", "accept": "text/html"}
    )
    assert same.status_code == 303  # scheme and host compare case-insensitively


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_a_request_a_browser_marks_as_from_another_site_is_refused(
    scanned: Scanned, client: Client, site: str
) -> None:
    form = {**_mark_form(scanned), "csrf_token": client.token()}
    refused = client.post("/marks", data=form, headers={"sec-fetch-site": site})
    assert refused.status_code == 403 and _marks(scanned.db) == []
    ok = client.post("/marks", data=form, headers={"sec-fetch-site": "same-origin"})
    assert ok.status_code == 303


@pytest.mark.parametrize("token", ["ab" * 32, "0" * 64, "a" * 64, "token"])
def test_a_token_the_server_did_not_issue_is_refused_even_when_cookie_and_form_agree(
    scanned: Scanned, client: Client, token: str
) -> None:
    """A page on another port of 127.0.0.1 can set this host's cookies (cookies ignore
    the port) and post a form: a pair of its own choosing must not pass."""
    client.cookies.set("lookalike_csrf", token, domain="127.0.0.1")
    form = {**_mark_form(scanned), "csrf_token": token}
    assert client.post("/marks", data=form).status_code == 403
    assert client.post("/marks", data=form, headers={"x-csrf-token": token}).status_code == 403
    assert _marks(scanned.db) == []
    assert client.token() != token  # the next page replaced it with a token it signed
    assert client.post("/marks", data={**form, "csrf_token": client.token()}).status_code == 303


def test_tokens_of_another_server_process_are_refused(scanned: Scanned, client: Client) -> None:
    token = client.token()
    other = create_app(scanned.db)  # a restarted server draws a new secret
    try:
        late = Client(other)
        late.cookies.set("lookalike_csrf", token, domain="127.0.0.1")
        response = late.post("/marks", data={**_mark_form(scanned), "csrf_token": token})
        assert response.status_code == 403 and "Reload the page" in response.text
        assert _marks(scanned.db) == []
    finally:
        other.state.review.close()


def test_the_csrf_cookie_is_httponly_and_samesite_strict(reader: Client) -> None:
    response = reader.get("/")
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert reader.get("/").headers.get("set-cookie") is None  # one token per session


def test_redirects_after_post_stay_on_this_site(scanned: Scanned, client: Client) -> None:
    form = {**_mark_form(scanned), "csrf_token": client.token()}
    for target in ("//evil.example/x", "https://evil.example/", "\\\\evil", "javascript:alert(1)"):
        response = client.post("/marks", data={**form, "next": target})
        assert response.status_code == 303 and response.headers["location"] == "/groups", target
    kept = client.post("/marks", data={**form, "next": "/groups/1#f3"})
    assert kept.headers["location"] == "/groups/1#f3"


def test_actions_are_post_only(scanned: Scanned, client: Client) -> None:
    for url in (
        "/marks",
        "/groups/1/exclude",
        "/groups/1/keeper",
        "/groups/1/not-duplicate",
        "/bulk-exclude",
    ):
        assert client.get(url).status_code in (404, 405), url


def _dump(db: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_no_get_changes_the_store(scanned: Scanned, client: Client) -> None:
    group = scanned.result.groups[0]
    fid = file_id(scanned, group.keeper)
    member = file_id(scanned, group.members[0].path)
    before = _dump(scanned.db)
    urls = [
        "/",
        "/index.json",
        "/groups",
        "/groups.json",
        "/groups?sort=score&min_score=0.5",
        f"/groups/{group.id}",
        f"/groups/{group.id}.json",
        "/failures",
        "/failures.json",
        "/failures?kind=skipped",
        "/objects",
        "/objects.json",
        "/export",
        "/export.json",
        "/export/list.csv",
        "/export/list.txt?list=keep",
        "/export/list.json?list=remove",
        f"/thumb/{fid}",
        f"/image/{fid}",
        f"/diff/{fid}/{member}",
        "/static/app.css",
        f"/marks?file={fid}&mark=exclude",
        f"/groups/{group.id}/exclude",
        "/bulk-exclude?min_score=0",
        "/bulk-exclude.json?min_score=0",
        f"/export?action=quarantine&dest={scanned.base / 'q'}",
    ]
    for url in urls:
        client.get(url)
    assert _dump(scanned.db) == before
    assert not (scanned.base / "q").exists()


def test_other_host_headers_are_refused_when_serving_locally(shared: Scanned) -> None:
    app = create_app(shared.db, allowed_hosts=["127.0.0.1", "localhost"])
    try:
        assert Client(app).get("/").status_code == 200
        assert Client(app, base_url="http://attacker.example").get("/").status_code == 400
    finally:
        app.state.review.close()


def test_security_headers(reader: Client) -> None:
    headers = reader.get("/groups").headers
    assert headers["x-content-type-options"] == "nosniff"
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]


def test_pages_load_nothing_from_other_sites(reader: Client) -> None:
    for url in ("/", "/groups", "/groups/1", "/export", "/failures", "/objects"):
        text = reader.get(url).text
        assert "http://" not in text and "https://" not in text, url
