"""Latency of the review UI on a large synthetic store (no real scan needed).

Builds a store of N images (default 100,000; 60% of them in duplicate groups of 2-5,
two roots with leakage) by inserting rows directly, then times the app in process
(httpx.ASGITransport, no network) on the pages a reviewer hits most:

* the groups page and its JSON twin (first page, a deep page, filtered and sorted);
* the first request after a keeper change (one row of the group index is refreshed) and
  after a re-scan (the in-memory group index is rebuilt);
* the overview, one group page, the export preview;
* thumbnails of real 12-megapixel JPEGs: cold (decode with draft mode + cache write)
  and cached.

    python benchmarks/bench_ui.py [--images 100000] [--rounds 15] [--keep DIR]

Prints one line per measurement: median and worst of the rounds, in milliseconds.
The target for the groups page of a 100,000-image store is < 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from lookalike.store import Store, to_blob
from lookalike.ui.app import create_app

RELATIONS = ["exact"] * 3 + ["pixel"] + ["near"] * 5 + ["mirror"]
REAL_JPEGS = 12


def build_store(db: Path, root_dir: Path, n_images: int, seed: int = 0) -> dict[str, int]:
    """Write a synthetic store; the first REAL_JPEGS files of group keepers exist on disk."""
    rng = random.Random(seed)
    roots = [str(root_dir / "train"), str(root_dir / "val")]
    files = []
    for i in range(n_images):
        root = roots[0] if rng.random() < 0.8 else roots[1]
        path = f"{root}/batch{i // 1000:03d}/IMG_{i:06d}.jpg"
        files.append(
            [path, root, rng.randint(50_000, 5_000_000), hashlib.sha256(b"%d" % i).hexdigest()]
        )
    order = list(range(n_images))
    rng.shuffle(order)
    groups, members, k, gid = [], [], 0, 0
    rank = {r: i for i, r in enumerate(("exact", "pixel", "near", "mirror"))}
    while k < int(n_images * 0.6):
        size = rng.choice([2, 2, 2, 3, 3, 4, 5])
        idx, k, gid = order[k : k + size], k + size, gid + 1
        rows = []
        for j in idx[1:]:
            rel = rng.choice(RELATIONS)
            score = 1.0 if rel in ("exact", "pixel") else round(rng.uniform(0.8, 0.99), 4)
            evidence = json.dumps({"method": "thumbnail", "mad": round(rng.uniform(0, 0.05), 4)})
            rows.append((gid, to_blob(files[j][0]), rel, score, 0, evidence))
        relation = max((r[2] for r in rows), key=rank.__getitem__)
        group_roots = sorted({files[j][1] for j in idx})
        groups.append((gid, 1, to_blob(files[idx[0]][0]), relation, json.dumps(group_roots)))
        members.extend(rows)
    for n, (_, _, keeper, _, _) in enumerate(groups[:REAL_JPEGS]):
        path = os.fsdecode(keeper)
        entry = next(f for f in files if f[0] == path)
        entry[2], entry[3] = _write_jpeg(Path(path), n)
    with Store(db) as store, store.transaction() as conn:
        conn.execute(
            "INSERT INTO runs VALUES (1, ?, ?, ?, ?, 'done')",
            (time.time(), time.time(), json.dumps(roots), json.dumps({"discovery": {}})),
        )
        conn.executemany(
            "INSERT INTO files (path, root, size, mtime_ns, digest, status, run_id) "
            "VALUES (?, ?, ?, 0, ?, 'ok', 1)",
            [(to_blob(p), to_blob(r), s, d) for p, r, s, d in files],
        )
        conn.executemany(
            "INSERT INTO images VALUES (?, 1, 4000, 3000, 'JPEG', 0, NULL, NULL, 1, ?, ?, ?)",
            [(d, b"\0" * 8, b"\0" * 4, b"\0" * 4) for _, _, _, d in files],
        )
        conn.executemany("INSERT INTO groups VALUES (?, ?, ?, ?, ?)", groups)
        conn.executemany("INSERT INTO members VALUES (?, ?, ?, ?, ?, ?)", members)
    return {"images": n_images, "groups": len(groups), "members": len(members)}


def _write_jpeg(path: Path, seed: int) -> tuple[int, str]:
    """A 4000x3000 photo-like JPEG (smooth gradients + noise), about 2-3 MB."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:3000:4, 0:4000:4].astype(np.float32)
    base = np.stack(
        [x / 16 + rng.uniform(0, 80), y / 12 + rng.uniform(0, 80), (x + y) / 28], axis=-1
    )
    small = (base + rng.normal(0, 12, base.shape)).clip(0, 255).astype(np.uint8)
    img = Image.fromarray(small).resize((4000, 3000), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return len(data), hashlib.sha256(data).hexdigest()


class Timer:
    """Times GET requests on the app in process."""

    def __init__(self, app: object) -> None:
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
        )
        self.loop = asyncio.new_event_loop()

    def get(self, url: str) -> tuple[float, httpx.Response]:
        start = time.perf_counter()
        response = self.loop.run_until_complete(self.client.get(url))
        return (time.perf_counter() - start) * 1000, response

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


def measure(timer: Timer, label: str, url: str, rounds: int) -> None:
    times = []
    for _ in range(rounds):
        ms, response = timer.get(url)
        if response.status_code != 200:
            sys.exit(f"{url} answered {response.status_code}: {response.text[:300]}")
        times.append(ms)
    median, worst = statistics.median(times), max(times)
    print(f"{label:<44} median {median:7.1f} ms   max {worst:7.1f} ms   ({url})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--keep", type=Path, default=None, help="Build the store in DIR and keep it."
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        db = base / "bench.db"
        if db.exists():
            sys.exit(f"{db} exists; remove it or pass another --keep folder.")
        start = time.perf_counter()
        counts = build_store(db, base / "data", args.images)
        print(f"built a store of {counts} in {time.perf_counter() - start:.1f} s: {db}")
        run(db, args.rounds)


def run(db: Path, rounds: int) -> None:
    start = time.perf_counter()
    app = create_app(db)
    built = (time.perf_counter() - start) * 1000
    print(f"{'create_app (builds the group index)':<44} {built:7.1f} ms")
    timer = Timer(app)
    try:
        ms, _ = timer.get("/groups")
        print(f"{'groups page, first request':<44} {ms:7.1f} ms")
        measure(timer, "groups page", "/groups", rounds)
        measure(timer, "groups page JSON twin", "/groups.json", rounds)
        measure(timer, "groups page 200 (deep offset)", "/groups?page=200", rounds)
        measure(
            timer,
            "groups: near, min 0.9, by score, 96/page",
            "/groups?relation=near&min_score=0.9&sort=score&per_page=96",
            rounds,
        )
        measure(timer, "groups: spanning roots, JSON", "/groups.json?spans=1", rounds)
        _change_a_keeper(app)
        ms, _ = timer.get("/groups")
        print(f"{'groups page after a keeper change':<44} {ms:7.1f} ms")
        app.state.review.index.invalidate()  # what a re-scan (another process) causes
        ms, _ = timer.get("/groups")
        print(f"{'groups page after a re-scan (full rebuild)':<44} {ms:7.1f} ms")
        measure(timer, "one group page", "/groups/3", rounds)
        measure(timer, "overview (decisions over every file)", "/", max(3, rounds // 3))
        measure(timer, "export preview JSON", "/export.json", max(3, rounds // 3))
        _thumbs(timer, app)
    finally:
        timer.close()
        app.state.review.close()


def _change_a_keeper(app: object) -> None:
    """What POST /groups/N/keeper does: change the keeper, refresh that group's row."""
    from lookalike.review import change_keeper
    from lookalike.store import from_blob

    state = app.state.review  # type: ignore[attr-defined]
    with state.db() as store:
        gid, path = store.conn.execute("SELECT group_id, path FROM members LIMIT 1").fetchone()
        change_keeper(store, gid, from_blob(path))
        state.index.refresh(gid)


def _thumbs(timer: Timer, app: object) -> None:
    conn = app.state.review.store.conn  # type: ignore[attr-defined]
    ids = [
        r[0]
        for r in conn.execute(
            "SELECT f.id FROM files f JOIN groups g ON g.keeper = f.path ORDER BY g.id LIMIT ?",
            (REAL_JPEGS,),
        )
    ]
    cold = [timer.get(f"/thumb/{i}?size=256")[0] for i in ids]
    warm = [timer.get(f"/thumb/{i}?size=256")[0] for i in ids]
    for label, times in (
        ("thumbnail 256 of a 12 MP JPEG, cold", cold),
        ("thumbnail 256, cached", warm),
    ):
        median, worst = statistics.median(times), max(times)
        print(f"{label:<44} median {median:7.1f} ms   max {worst:7.1f} ms")


if __name__ == "__main__":
    main()
