"""Fixtures for the review UI: a small scanned dataset and an in-process HTTP client.

The client drives the ASGI app through ``httpx.ASGITransport`` (no port, no server),
keeps cookies like a browser and closes the app's store connection at teardown.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("starlette", reason="the ui extra is not installed")

from lookalike import scan  # noqa: E402
from lookalike.pipeline import ScanResult  # noqa: E402
from lookalike.testing import make_photo, save_image, write_dataset  # noqa: E402
from lookalike.ui.app import create_app  # noqa: E402

KINDS = ["jpeg_quality", "resize", "brightness", "contrast", "gamma", "noise", "blur", "sharpen"]
BASE_URL = "http://127.0.0.1:8642"


@dataclass
class Scanned:
    """A generated two-root dataset and its store."""

    base: Path
    roots: list[str]
    db: Path
    result: ScanResult

    def rescan(self, **kw: Any) -> ScanResult:
        self.result = scan(self.roots, db=self.db, **kw)
        return self.result


def make_dataset(base: Path) -> Scanned:
    """train/ (4 originals with 2 variants each, distractors, a hard negative pair, one
    unreadable file, one symlink out of the root) and val/ (a copy of a train image, so
    one group leaks across roots), scanned into base/store.db."""
    train, val = base / "train", base / "val"
    write_dataset(
        train,
        n_originals=4,
        variants_per_original=2,
        kinds=KINDS,
        n_distractors=2,
        n_hard_negatives=1,
        rng=5,
    )
    write_dataset(
        val,
        n_originals=1,
        variants_per_original=1,
        kinds=KINDS,
        n_distractors=1,
        n_hard_negatives=0,
        rng=6,
    )
    first = sorted(p for p in train.rglob("*.jpg"))[0]
    shutil.copyfile(first, val / "leaked copy.jpg")
    (train / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    outside = base / "outside"
    outside.mkdir()
    save_image(make_photo(99, size=(64, 48))[0], outside / "secret.jpg")
    os.symlink(outside / "secret.jpg", train / "link-out.jpg")
    roots = [str(train), str(val)]
    db = base / "store.db"
    return Scanned(base, roots, db, scan(roots, db=db))


class Client:
    """A small synchronous client over httpx.ASGITransport that keeps cookies."""

    def __init__(self, app: Any, base_url: str = BASE_URL) -> None:
        self.app = app
        self.base_url = base_url
        self.cookies = httpx.Cookies()

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(
                transport=transport, base_url=self.base_url, cookies=self.cookies
            ) as client:
                response = await client.request(method, url, **kw)
                self.cookies.update(client.cookies)
                return response

        return asyncio.run(go())

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)

    def token(self) -> str:
        """The CSRF token a page carries (loads the overview once to get the cookie)."""
        page = self.get("/")
        match = re.search(r'<meta name="csrf-token" content="([0-9a-f]{64})">', page.text)
        assert match, page.text[:500]
        return match.group(1)

    def act(self, url: str, data: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
        """POST a form the way the page does (token field), asking for JSON."""
        form = {"csrf_token": self.token(), **(data or {})}
        return self.post(url, data=form, headers={"accept": "application/json"}, **kw)


@pytest.fixture(scope="session")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Scanned:
    """A scanned dataset for tests that only read (never mark, move or re-scan)."""
    return make_dataset(tmp_path_factory.mktemp("shared"))


@pytest.fixture()
def scanned(tmp_path: Path) -> Scanned:
    """A fresh scanned dataset a test may change."""
    return make_dataset(tmp_path)


def _client(db: Path, **kw: Any) -> Iterator[Client]:
    app = create_app(db, **kw)
    try:
        yield Client(app)
    finally:
        app.state.review.close()


@pytest.fixture()
def reader(shared: Scanned) -> Iterator[Client]:
    """A client over the shared (read-only) store."""
    yield from _client(shared.db)


@pytest.fixture()
def client(scanned: Scanned) -> Iterator[Client]:
    """A client over a fresh store."""
    yield from _client(scanned.db)


def file_id(scanned: Scanned, path: str) -> int:
    """files.id of a path in the store."""
    from lookalike.store import Store, to_blob

    with Store(scanned.db) as store:
        row = store.conn.execute("SELECT id FROM files WHERE path = ?", (to_blob(path),)).fetchone()
    assert row is not None, path
    return int(row[0])
