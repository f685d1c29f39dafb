"""Cold and warm scan speed against the decode floor, measured in one run on the same files.

The floor is plain Pillow decoding of every file with JPEG draft mode (``draft(mode,
(px, px))`` then ``load()``), which is what a scan must at least do. It is timed two ways:

* ``plain``: one decoding loop, grayscale at the scan's own draft size
  (``lookalike.decoding.DRAFT_PX``): the floor as issue #2 words it ("plain Pillow
  decoding with JPEG draft mode", about 420 images/s on this 2-core machine);
* ``parallel``: the same decoding spread over the scan's workers in a thread pool, RGB and
  grayscale at 256 px and grayscale at the draft size; the ratio is against the fastest.
  This is the stricter yardstick: a scan using two cores is held to two cores of decoding.

Rounds alternate floors / cold scan / warm re-scan so machine noise
hits all of them alike; the best round of each is reported, with ratios, and the cold
scan's split into extraction (discover, read, decode, features, store) and matching.

    python benchmarks/bench_scan.py [ROOT] [--rounds 3] [--workers 2] [--engine local] [--no-geometry]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

import lookalike
from lookalike.decoding import DRAFT_PX
from lookalike.matching import MatchSettings
from lookalike.pipeline import ScanSettings

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "benchdata" / "public" / "images"


def list_files(root: Path) -> list[str]:
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)


def decode_draft(path: str, mode: str, px: int) -> tuple[int, int]:
    with Image.open(path) as im:
        im.draft(mode, (px, px))
        im.load()
        return im.size


def time_floor(paths: list[str], workers: int, mode: str, px: int = 256) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda p: decode_draft(p, mode, px), paths))
    return time.perf_counter() - start


def time_scan(
    root: Path, db: Path, workers: int, engine: str, settings: ScanSettings
) -> tuple[float, lookalike.ScanResult]:
    start = time.perf_counter()
    result = lookalike.scan([root], db=db, workers=workers, engine=engine, settings=settings)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--engine", default="local")
    parser.add_argument(
        "--no-geometry",
        action="store_true",
        help="whole-picture duplicates only (no crops, rotations, mirrors)",
    )
    args = parser.parse_args()
    geometric = not args.no_geometry
    settings = ScanSettings(match=MatchSettings(geometric=geometric, mirror=geometric))
    paths = list_files(args.root)
    n = len(paths)
    for p in paths:  # warm the page cache so every contender reads from memory
        Path(p).read_bytes()
    best: dict[str, float] = {}
    split: dict[str, float] = {}
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "bench.db"
            timings = {
                "floor_plain": time_floor(paths, 1, "L", DRAFT_PX),
                "floor_rgb": time_floor(paths, args.workers, "RGB"),
                "floor_l": time_floor(paths, args.workers, "L"),
                "floor_l_scan": time_floor(paths, args.workers, "L", DRAFT_PX),
            }
            timings["cold"], result = time_scan(args.root, db, args.workers, args.engine, settings)
            if timings["cold"] < best.get("cold", float("inf")):
                split = result.stats
            timings["warm"], _ = time_scan(args.root, db, args.workers, args.engine, settings)
        for key, value in timings.items():
            best[key] = min(best.get(key, float("inf")), value)
    parallel = min(best["floor_rgb"], best["floor_l"], best["floor_l_scan"])
    print(
        f"files: {n}  images: {result.images}  workers: {args.workers}  engine: {args.engine}"
        f"  crops/rotations/mirrors: {'on' if geometric else 'off'}  load: {os.getloadavg()[0]:.1f}"
    )
    print(
        f"floors: plain = one loop, L drafted to {DRAFT_PX} px like the scan; parallel over"
        f" {args.workers} workers: RGB and L drafted to 256 px, L drafted to {DRAFT_PX} px"
    )
    for key in ("floor_plain", "floor_rgb", "floor_l", "floor_l_scan", "cold", "warm"):
        print(f"{key:>12}: {best[key]:7.3f} s  {n / best[key]:8.1f} files/s")
    print(
        f"best cold scan: extraction {split['extract_seconds']:.3f} s, "
        f"matching and grouping {split['match_seconds']:.3f} s"
    )
    print(f"cold scan / plain floor (images per second): {best['floor_plain'] / best['cold']:.2f}")
    print(f"cold scan / fastest parallel floor (images per second): {parallel / best['cold']:.2f}")
    print(f"warm re-scan time / cold scan time: {best['warm'] / best['cold']:.3f}")


if __name__ == "__main__":
    main()
