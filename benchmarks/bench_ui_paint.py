"""How long until a review page is complete in a real browser, thumbnails included.

Scans a folder (default: the public benchmark set, 317 photos) into a temporary store,
or takes a store with ``--db``, then for each round:

1. empties the store's thumbnail cache (``<store>.thumbs``);
2. starts the UI (uvicorn on a free loopback port, lifespan on, the socket made as
   ``lookalike serve`` makes it);
3. waits ``--settle`` seconds (what a person takes between ``serve`` and the first page;
   0 measures a truly cold first request; ``warm`` waits until the UI's thumbnail
   prefetcher is idle and prints how long that took);
4. opens ``/groups`` in Debian's headless chromium (Playwright, a fresh profile, so no
   browser cache) and records, from the start of the navigation: the HTML loaded, every
   thumbnail above the fold loaded, and every thumbnail of the page loaded (after
   scrolling to the bottom);
5. then opens the first group's page the same way.

    python benchmarks/bench_ui_paint.py [FOLDER | --db STORE] [--rounds 3] [--settle 0 3 warm]

Prints one line per page and settle time: the median and worst over the rounds, in
milliseconds, and the CPU milliseconds the server and the browser used for the page
(with psutil; they tell how much of the wall-clock time is this work on a machine
shared with other jobs). The target: a page complete (above the fold) in < 500 ms.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

PUBLIC = Path("/work/shared/benchdata/public/images")
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]

# Recorded by the page itself, so the figures do not depend on how often Playwright polls:
# the time each image fired "load" (data: URLs too), from the start of the navigation.
_RECORD_LOADS = """
window.__loads = new Map();
document.addEventListener("load", e => {
    if (e.target.tagName === "IMG") window.__loads.set(e.target, performance.now());
}, true);
"""
# When the first screen was complete: its last image loaded (and something was painted);
# null while one is still loading.
_FOLD_AT = """() => {
    if (document.readyState === "loading") return null;
    const shown = Array.from(document.images).filter(i => {
        const r = i.getBoundingClientRect();
        return r.bottom > 0 && r.top < innerHeight && i.offsetParent !== null;
    });
    const times = shown.map(i => window.__loads.get(i));
    if (times.some(t => t === undefined)) return null;
    const fcp = performance.getEntriesByName("first-contentful-paint")[0];
    return Math.max(fcp ? fcp.startTime : 0, ...times);
}"""
_ALL_AT = """() => {
    const shown = Array.from(document.images).filter(i => i.offsetParent !== null);
    const times = shown.map(i => window.__loads.get(i));
    return times.some(t => t === undefined) ? null : Math.max(0, ...times);
}"""
_SCROLL = """async () => {
    for (let y = 0; y < document.body.scrollHeight; y += innerHeight / 2) {
        window.scrollTo(0, y);
        await new Promise(r => requestAnimationFrame(r));
    }
    window.scrollTo(0, document.body.scrollHeight);
}"""


class Server:
    """The UI app under uvicorn in a thread, on a free loopback port."""

    def __init__(self, db: Path) -> None:
        import uvicorn

        from lookalike.ui.app import create_app

        self.app = create_app(db, allowed_hosts=["127.0.0.1", "localhost"])
        try:  # the socket `lookalike serve` listens on
            from lookalike.ui.app import listen_socket
        except ImportError:  # the UI before issue #12: serve made a plain socket
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(("127.0.0.1", 0))
            self.sock.listen(2048)
        else:
            self.sock = listen_socket("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.uv = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(
            target=self.uv.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.uv.started:
            if time.monotonic() > deadline:
                sys.exit("uvicorn did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.uv.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()
        self.app.state.review.close()


def _cpu_ms() -> tuple[float, float]:
    """CPU milliseconds used so far by this process (the server: uvicorn, the app and its
    threads) and by the browser's processes; (0, 0) without psutil. On a shared machine
    the wall-clock figures depend on what else runs; these do not."""
    try:
        import psutil
    except ImportError:
        return 0.0, 0.0
    me = psutil.Process()
    own = me.cpu_times()
    browser = 0.0
    for child in me.children(recursive=True):
        try:
            if "chrom" in child.name().lower():
                t = child.cpu_times()
                browser += t.user + t.system
        except psutil.Error:
            continue
    return (own.user + own.system) * 1000, browser * 1000


def visit(browser: Any, url: str) -> dict[str, float]:
    """Milliseconds from navigation start to: DOMContentLoaded (HTML parsed and app.js
    run), every image above the fold loaded, every image of the page loaded; and the
    CPU milliseconds the server and the browser spent until then."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    context.add_init_script(_RECORD_LOADS)
    page = context.new_page()
    server0, browser0 = _cpu_ms()
    try:
        page.goto(url, wait_until="commit")
        fold = page.wait_for_function(_FOLD_AT, timeout=60_000, polling=50).json_value()
        server_fold, browser_fold = _cpu_ms()
        page.wait_for_load_state("domcontentloaded")
        html = page.evaluate(
            "() => performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
        )
        page.evaluate(_SCROLL)
        whole = page.wait_for_function(_ALL_AT, timeout=60_000, polling=50).json_value()
        count = page.evaluate("() => document.images.length")
        server1, browser1 = _cpu_ms()
        return {
            "html": html,
            "fold": fold,
            "all": whole,
            "images": count,
            "cpu_server": server1 - server0,
            "cpu_browser": browser1 - browser0,
            "cpu_server_fold": server_fold - server0,
            "cpu_browser_fold": browser_fold - browser0,
        }
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", type=Path, default=PUBLIC)
    parser.add_argument("--db", type=Path, help="Use this store instead of scanning FOLDER.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--settle", nargs="+", default=["0", "3", "warm"])
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from lookalike import scan

    with tempfile.TemporaryDirectory() as tmp:
        db = args.db
        if db is None:
            db = Path(tmp) / "store.db"
            start = time.perf_counter()
            result = scan([str(args.folder)], db=db)
            print(
                f"scanned {args.folder}: {len(result.groups)} groups "
                f"in {time.perf_counter() - start:.1f} s"
            )
        from lookalike.thumbnails import cache_dir_for

        cache = cache_dir_for(db)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                for settle in args.settle:
                    runs: dict[str, list[dict[str, float]]] = {"groups": [], "group": []}
                    warmed: list[float] = []
                    for _ in range(args.rounds):
                        shutil.rmtree(cache, ignore_errors=True)
                        server = Server(db)
                        try:
                            warmed.append(_settle(server, settle))
                            runs["groups"].append(visit(browser, f"{server.url}/groups"))
                            first = server.app.state.review.store.conn.execute(
                                "SELECT MIN(id) FROM groups"
                            ).fetchone()[0]
                            runs["group"].append(visit(browser, f"{server.url}/groups/{first}"))
                        finally:
                            server.stop()
                    when = f"{settle} s after start" if settle != "warm" else "prefetched"
                    if settle == "warm":
                        print(f"prefetch of the first pages took {statistics.median(warmed):.1f} s")
                    for name, label in (("groups", "/groups"), ("group", "/groups/N")):
                        _report(f"{label}, cold cache, {when}", runs[name])
            finally:
                browser.close()


def _settle(server: Server, settle: str) -> float:
    """Wait as asked; returns the seconds waited."""
    start = time.perf_counter()
    if settle != "warm":
        time.sleep(float(settle))
        return float(settle)
    prefetch = getattr(server.app.state.review, "prefetch", None)
    if prefetch is not None:  # (the UI before the prefetcher had nothing to wait for)
        while not prefetch.idle():
            time.sleep(0.02)
    return time.perf_counter() - start


_CPU_KEYS = ("cpu_server_fold", "cpu_server", "cpu_browser_fold", "cpu_browser")


def _report(label: str, runs: list[dict[str, float]]) -> None:
    parts = []
    for key in ("html", "fold", "all"):  # html = DOMContentLoaded
        values = [r[key] for r in runs]
        parts.append(f"{key} {statistics.median(values):5.0f} (max {max(values):5.0f})")
    cpu = "cpu to fold/all: server {:.0f}/{:.0f} browser {:.0f}/{:.0f}".format(
        *(statistics.median(r[k] for r in runs) for k in _CPU_KEYS)
    )
    print(f"{label:<38} {int(runs[0]['images']):3d} img  " + "  ".join(parts) + f"  {cpu}  ms")


if __name__ == "__main__":
    main()
