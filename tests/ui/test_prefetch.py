"""Pages complete without waiting for thumbnails (issue #12 item 20).

Speed itself is measured by ``benchmarks/bench_ui_paint.py``; these tests pin what makes
it: the thumbnails of the first pages are made before the browser asks (one decode per
file for every size a page shows), answers are cacheable, and the listening socket does
not hold each response back for the client's delayed ACK (Nagle's algorithm).
"""

from __future__ import annotations

import os
import re
import socket
import threading
from pathlib import Path

import pytest

from lookalike import thumbnails
from lookalike.thumbnails import cached_path, ensure_thumbnails, render_thumbnails
from lookalike.ui.app import create_app, listen_socket
from lookalike.ui.prefetch import start_prefetch

from .conftest import Client, Scanned, file_id


def _thumb_urls(html: str) -> list[tuple[int, int]]:
    return [
        (int(fid), int(size))
        for fid, size in re.findall(r'src="/thumb/(\d+)\?size=(\d+)[^"]*"', html)
    ]


def _digest(scanned: Scanned, fid: int) -> str:
    from lookalike.store import Store

    with Store(scanned.db, readonly=True) as store:
        return str(
            store.conn.execute("SELECT digest FROM files WHERE id = ?", (fid,)).fetchone()[0]
        )


def test_serve_makes_the_first_pages_thumbnails_before_they_are_asked_for(
    scanned: Scanned,
) -> None:
    app = create_app(scanned.db)
    state = app.state.review
    try:
        assert not state.thumbs.exists()  # a cold cache
        start_prefetch(state)  # what the lifespan startup of `serve` does
        state.prefetch.join()
        assert state.prefetch.made > 0 and state.prefetch.failed == 0
        client = Client(app)
        listing = client.get("/groups?per_page=200")
        wanted = _thumb_urls(listing.text)
        for gid in re.findall(r'href="/groups/(\d+)\?back=', listing.text):
            wanted += _thumb_urls(client.get(f"/groups/{gid}").text)
        assert len(wanted) > 20
        missing = [
            (fid, size)
            for fid, size in wanted
            if not cached_path(state.thumbs, _digest(scanned, fid), size).exists()
        ]
        assert missing == []
        assert not state.store.conn.in_transaction
    finally:
        state.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("lookalike-thumbs")]


def test_browsing_queues_the_next_pages(scanned: Scanned) -> None:
    app = create_app(scanned.db)
    state = app.state.review
    try:
        state.prefetch.start()  # started, nothing queued yet
        client = Client(app)
        group = scanned.result.groups[0]
        client.get(f"/groups/{group.id}")
        client.get("/groups?per_page=24")
        state.prefetch.join()
        assert state.prefetch.made > 0
        keeper = file_id(scanned, group.keeper)
        assert cached_path(state.thumbs, _digest(scanned, keeper), 512).exists()
    finally:
        state.close()


def test_without_a_lifespan_no_thread_is_started(scanned: Scanned, client: Client) -> None:
    client.get("/groups")
    client.get(f"/groups/{scanned.result.groups[0].id}")
    assert not client.app.state.review.prefetch.running
    assert not [t for t in threading.enumerate() if t.name.startswith("lookalike-thumbs")]


def test_the_prefetcher_never_reads_a_file_the_ui_would_not_serve(scanned: Scanned) -> None:
    group = scanned.result.groups[0]
    keeper = group.keeper
    os.replace(keeper, keeper + ".moved")
    os.symlink(scanned.base / "outside" / "secret.jpg", keeper)
    app = create_app(scanned.db)
    state = app.state.review
    try:
        start_prefetch(state)
        state.prefetch.join()
        digest = _digest(scanned, file_id(scanned, keeper))
        assert not any(cached_path(state.thumbs, digest, s).exists() for s in thumbnails.SIZES)
        assert state.prefetch.failed == 0  # skipped, not tried
    finally:
        state.close()


def test_one_decode_makes_every_size_a_page_shows(
    shared: Scanned, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = shared.result.groups[0].keeper
    digest = _digest(shared, file_id(shared, path))
    reads = []
    real = thumbnails.read_verified
    monkeypatch.setattr(thumbnails, "read_verified", lambda p, d: reads.append(p) or real(p, d))
    made = ensure_thumbnails(tmp_path, path, digest, (128, 512, 1024))
    assert sorted(made) == [128, 512, 1024] and len(reads) == 1
    assert ensure_thumbnails(tmp_path, path, digest, (128, 512)) == []  # all cached
    assert len(reads) == 1
    with open(path, "rb") as fh:
        data = fh.read()
    import io

    from PIL import Image

    for size, jpeg in render_thumbnails(data, (256, 128)).items():
        with Image.open(io.BytesIO(jpeg)) as im:
            assert max(im.size) <= size and im.format == "JPEG"
    with pytest.raises(ValueError):
        ensure_thumbnails(tmp_path, path, digest, (77,))


def test_thumbnails_linked_by_pages_are_cacheable_and_others_revalidate(
    shared: Scanned, reader: Client
) -> None:
    page = reader.get(f"/groups/{shared.result.groups[0].id}").text
    url = re.search(r'src="(/thumb/\d+\?size=512&amp;v=[0-9a-f]{16})"', page)
    assert url, page[:2000]
    linked = reader.get(url.group(1).replace("&amp;", "&"))
    assert linked.status_code == 200
    assert "immutable" in linked.headers["cache-control"]
    bare = reader.get(url.group(1).split("&amp;")[0])
    assert bare.headers["cache-control"] == "private, no-cache"
    stale = reader.get(url.group(1).replace("&amp;", "&")[:-4] + "0000")
    assert stale.headers["cache-control"] == "private, no-cache"  # another content


def test_static_assets_are_served_from_memory_and_cacheable(reader: Client) -> None:
    page = reader.get("/").text
    css = re.search(r'href="(/static/app\.css\?v=[0-9a-f]{16})"', page)
    js = re.search(r'src="(/static/app\.js\?v=[0-9a-f]{16})"', page)
    assert css and js
    for url, media in ((css.group(1), "text/css"), (js.group(1), "text/javascript")):
        response = reader.get(url)
        assert response.status_code == 200 and response.headers["content-type"].startswith(media)
        assert "immutable" in response.headers["cache-control"]
    assert reader.get("/static/app.css").headers["cache-control"] == "no-cache"
    assert reader.get("/static/nope.js").status_code == 404


def test_the_listening_socket_turns_nagle_off_on_every_connection() -> None:
    """asyncio disables Nagle only on sockets made with proto=IPPROTO_TCP: on a plain
    ``socket.socket()`` every response's body waited ~40 ms for the delayed ACK."""
    server = listen_socket("127.0.0.1", 0)
    try:
        assert server.proto == socket.IPPROTO_TCP
        client = socket.create_connection(server.getsockname())
        conn, _ = server.accept()
        try:
            assert conn.proto == socket.IPPROTO_TCP
            assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        finally:
            conn.close()
            client.close()
    finally:
        server.close()


def test_serve_listens_on_that_socket(monkeypatch: pytest.MonkeyPatch, shared: Scanned) -> None:
    import lookalike.ui.app as ui_app
    from lookalike import cli_review

    made = []

    def spy(host: str, port: int) -> socket.socket:
        sock = listen_socket(host, port)
        made.append(sock)
        raise OSError(98, "stop here")  # the test needs the socket, not a server

    monkeypatch.setattr(ui_app, "listen_socket", spy)
    app = create_app(shared.db)
    try:
        with pytest.raises(Exception, match="Cannot listen"):
            cli_review._serve(app, shared.db, "127.0.0.1", 0, False)
    finally:
        app.state.review.close()
        for sock in made:
            sock.close()
    assert made
