"""Write a large synthetic photo dataset with known duplicates, in parallel (never committed).

Each original is a :func:`lookalike.testing.make_photo` of a random size between 160 x 120 and
320 x 240, saved as JPEG; a share of them get one or two near-duplicates from
:func:`lookalike.testing.make_variant` (every kind except ``hflip``). Files go into folders of
1,000. Image ``i`` depends only on ``(seed, i)``, so any worker count gives the same bytes.
A ``truth.json`` in the :class:`lookalike.testing.DatasetTruth` format is written beside the
``images`` folder, so ``lookalike eval --truth OUT/truth.json OUT/images`` works.

    python benchmarks/make_large_dataset.py /tmp/lookalike-100k --images 100000 [--workers 2]

About 9 KB per file (100,000 files: ~0.9 GB) and ~3 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from lookalike.testing import VARIANT_KINDS, encode_image, make_photo, make_variant

KINDS = tuple(k for k in VARIANT_KINDS if k != "hflip")
PER_FOLDER = 1000


def plan(n_images: int, dup_share: float, seed: int) -> list[int]:
    """Variants per original (0, 1 or 2) so that the total is ``n_images``."""
    rng = np.random.default_rng(seed)
    counts: list[int] = []
    total = 0
    while total < n_images:
        k = int(rng.choice(3, p=[1 - dup_share, dup_share * 0.7, dup_share * 0.3]))
        k = min(k, n_images - total - 1)
        counts.append(k)
        total += 1 + k
    return counts


def write_group(job: tuple[str, int, int, int, int]) -> list[tuple[str, str | None, str | None]]:
    """Write original ``index`` and its variants; return (relpath, original, kind) rows."""
    out_dir, seed, index, first_file, n_variants = job
    rng = np.random.default_rng([seed, index])
    w = int(rng.integers(160, 321))
    size = (w, w * 3 // 4) if rng.random() < 0.75 else (w * 3 // 4, w)
    photo, _ = make_photo(rng, size=size)
    rows: list[tuple[str, str | None, str | None]] = []
    images = [(photo, None)]
    for _ in range(n_variants):
        kind = KINDS[int(rng.integers(len(KINDS)))]
        images.append((make_variant(photo, kind, rng), kind))
    for offset, (img, kind) in enumerate(images):
        number = first_file + offset
        rel = f"d{number // PER_FOLDER:04d}/IMG_{number:07d}.jpg"
        path = Path(out_dir) / "images" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_image(img, "jpeg", quality=int(rng.integers(85, 96))))
        rows.append((rel, rows[0][0] if rows else None, kind))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="output folder (images/ and truth.json go here)")
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--dup-share", type=float, default=0.3, help="originals with variants")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    counts = plan(args.images, args.dup_share, args.seed)
    firsts = np.concatenate([[0], np.cumsum(np.asarray(counts) + 1)[:-1]]).tolist()
    pairs = enumerate(zip(firsts, counts, strict=True))
    jobs = [(str(args.out), args.seed, i, int(f), k) for i, (f, k) in pairs]
    started = time.perf_counter()
    groups: list[list[str]] = []
    variant_of: dict[str, dict[str, object]] = {}
    images: list[str] = []
    with ProcessPoolExecutor(args.workers) as pool:
        for rows in pool.map(write_group, jobs, chunksize=256):
            images.extend(r[0] for r in rows)
            if len(rows) > 1:
                groups.append([r[0] for r in rows])
                for rel, original, kind in rows[1:]:
                    variant_of[rel] = {"original": original, "transform": kind, "params": {}}
    truth = {
        "images": [f"images/{p}" for p in images],
        "duplicate_groups": [[f"images/{p}" for p in g] for g in groups],
        "variant_of": {
            f"images/{k}": {**v, "original": f"images/{v['original']}"}
            for k, v in variant_of.items()
        },
        "hard_negative_groups": [],
    }
    (args.out / "truth.json").write_text(json.dumps(truth), encoding="ascii")
    seconds = time.perf_counter() - started
    size = sum(p.stat().st_size for p in (args.out / "images").rglob("*.jpg"))
    print(
        f"wrote {len(images)} images ({len(counts)} originals, {len(groups)} duplicate groups, "
        f"{size / 2**20:.0f} MiB, {size / len(images) / 1024:.1f} KiB/image) "
        f"in {seconds:.0f} s with {args.workers} workers -> {args.out}"
    )


if __name__ == "__main__":
    main()
