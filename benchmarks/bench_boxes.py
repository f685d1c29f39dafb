"""Duplicate-box detection: precision and recall on injected duplicates, and speed.

Builds a COCO instances file from real photo sizes (the shared benchmark images, read
from their headers only) or generated images, with crowded synthetic scenes from
``lookalike.annotations.synthetic``: rows of people overlapping with IoU up to 0.7, a
rear row partly hidden, stacks, small objects inside large ones of the same class. Then
injects copies of random boxes, every edge moved by up to 3 px or up to 1-5 % of the box
size, appended as a second annotation pass would: most with the same class
(``duplicate``), some with another class (``label-conflict``).

Reported:

* pair precision / recall: a found pair is right when it is an injected (original, copy)
  pair with the right kind; any other found pair is a false positive;
* removal precision / recall with ``keep="first"``: removed boxes must be exactly the
  same-class copies, and the number of pre-existing boxes removed must be 0;
* seconds per stage (load, validate, find, plan, dry-run write) on the whole set.

``--one-image N`` measures the worst case of the within-image search instead: N boxes on
a single 4000x3000 image (log-uniform sides of 8-200 px at uniform positions, plus 5 %
jittered copies), written as a COCO file; it prints the seconds and the peak resident
memory after each stage, and checks that every injected copy is found.

    python benchmarks/bench_boxes.py [--boxes 100000] [--seed 0] [--images DIR] [--sweep]
    python benchmarks/bench_boxes.py --one-image 1500000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from lookalike.annotations import (
    DEFAULT_AREA_RATIO,
    DEFAULT_CONTAINMENT,
    DEFAULT_IOU,
    Dataset,
    find_duplicate_boxes,
    load_annotations,
    plan_cleanup,
    validate,
    write_cleaned,
)
from lookalike.annotations.imagefiles import IMAGE_EXTENSIONS, read_size
from lookalike.annotations.records import BoxPair
from lookalike.annotations.synthetic import CLASSES, jitter_box, make_scene

DEFAULT_IMAGES = (
    Path(
        os.environ.get(
            "LOOKALIKE_BENCHDATA",
            Path(__file__).resolve().parents[2] / "shared" / "benchdata" / "public",
        )
    )
    / "images"
)


DEFAULTS = (DEFAULT_IOU, DEFAULT_CONTAINMENT, DEFAULT_AREA_RATIO)


@dataclass(frozen=True)
class Truth:
    """Injected pairs ``(original id, copy id) -> kind`` and the id ranges."""

    pairs: dict[tuple[int, int], str]
    originals: int


def image_sizes(root: Path, tmp: Path) -> tuple[Path, list[tuple[str, int, int]]]:
    """``(folder, [(relative name, width, height)])`` of real photos, or generated ones."""
    found = []
    if root.is_dir():
        for path in sorted(root.rglob("*")):
            if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
                try:
                    w, h, _ = read_size(path)
                except OSError:
                    continue
                found.append((path.relative_to(root).as_posix(), w, h))
    if found:
        return root, found
    return tmp, generated_images(tmp)


def generated_images(folder: Path) -> list[tuple[str, int, int]]:
    """Write a few plain images of typical sizes when no photos are available."""
    sizes = [(640, 480), (1024, 768), (480, 640), (1280, 720), (800, 600), (320, 240)]
    out = []
    for n, (w, h) in enumerate(sizes):
        name = f"gen_{n}.png"
        Image.new("RGB", (w, h), (n * 40 % 255, 90, 160)).save(folder / name)
        out.append((name, w, h))
    return out


def build_coco(
    sizes: list[tuple[str, int, int]], boxes: int, rng: np.random.Generator, copy_rate: float
) -> tuple[dict, Truth]:
    """A COCO document with about ``boxes`` boxes, ``copy_rate`` of them injected copies."""
    images, anns = [], []
    target = int(boxes / (1 + copy_rate))
    while len(anns) < target:
        name, w, h = sizes[len(images) % len(sizes)]
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": name, "width": w, "height": h})
        for label, box in make_scene(rng, w, h):
            anns.append(annotation(len(anns) + 1, image_id, label, box))
    originals = len(anns)
    truth = inject(anns, rng, int(originals * copy_rate))
    categories = [{"id": n + 1, "name": c, "supercategory": "thing"} for n, c in enumerate(CLASSES)]
    doc = {"info": {"description": "bench_boxes"}, "images": images, "categories": categories}
    doc["annotations"] = anns
    return doc, Truth(truth, originals)


def annotation(aid: int, image_id: int, label: str, box: tuple[float, ...]) -> dict:
    """One COCO annotation dict."""
    x0, y0, x1, y1 = box
    w, h = round(x1 - x0, 2), round(y1 - y0, 2)
    return {
        "id": aid,
        "image_id": image_id,
        "category_id": CLASSES.index(label) + 1,
        "bbox": [x0, y0, w, h],
        "area": round(w * h, 2),
        "iscrowd": 0,
    }


def inject(anns: list[dict], rng: np.random.Generator, count: int) -> dict[tuple[int, int], str]:
    """Append ``count`` jittered copies of distinct random boxes; 20 % change class."""
    truth = {}
    for n in rng.choice(len(anns), size=count, replace=False).tolist():
        original = anns[n]
        x, y, w, h = original["bbox"]
        box = jitter_box((x, y, x + w, y + h), rng)
        category = original["category_id"]
        kind = "duplicate"
        if rng.random() < 0.2:
            category = int(rng.choice([c for c in range(1, len(CLASSES) + 1) if c != category]))
            kind = "label-conflict"
        copy = annotation(len(anns) + 1, original["image_id"], CLASSES[category - 1], box)
        anns.append(copy)
        truth[(original["id"], copy["id"])] = kind
    return truth


def pair_scores(pairs: list[BoxPair], truth: Truth) -> tuple[float, float, int, int]:
    """Precision, recall, false positives and misses of found pairs against the truth."""
    found = {(p.a.id, p.b.id): p.kind for p in pairs}
    right = sum(1 for key, kind in found.items() if truth.pairs.get(key) == kind)
    precision = right / len(found) if found else 1.0
    recall = right / len(truth.pairs) if truth.pairs else 1.0
    return precision, recall, len(found) - right, len(truth.pairs) - right


def removal_scores(removed: set[int], truth: Truth) -> tuple[float, float, int]:
    """Precision and recall of removals, and how many pre-existing boxes were removed."""
    expected = {b for (_, b), kind in truth.pairs.items() if kind == "duplicate"}
    right = len(removed & expected)
    precision = right / len(removed) if removed else 1.0
    recall = right / len(expected) if expected else 1.0
    return precision, recall, sum(1 for r in removed if r <= truth.originals)


@contextmanager
def timed(seconds: dict[str, float], name: str) -> Iterator[None]:
    """Record the wall time of the ``with`` block under ``name``."""
    start = time.perf_counter()
    yield
    seconds[name] = time.perf_counter() - start


def distinct_pairs_flagged(pairs: list[BoxPair], truth: Truth) -> int:
    """Found pairs of two pre-existing (distinct) boxes: must be 0."""
    return sum(1 for p in pairs if p.b.id <= truth.originals)


def recall_by_size(dataset: Dataset, pairs: list[BoxPair], truth: Truth) -> str:
    """Recall of injected pairs split by the original box's shorter side."""
    found = {(p.a.id, p.b.id): p.kind for p in pairs}
    boxes = {a.id: a.box for a in dataset.annotations}
    buckets: dict[str, list[bool]] = {"<40 px": [], "40-100 px": [], ">=100 px": []}
    for key, kind in truth.pairs.items():
        x0, y0, x1, y1 = boxes[key[0]]
        side = min(x1 - x0, y1 - y0)
        name = "<40 px" if side < 40 else "40-100 px" if side < 100 else ">=100 px"
        buckets[name].append(found.get(key) == kind)
    return ", ".join(
        f"{name} {sum(hits) / len(hits):.4f} ({len(hits)})"
        for name, hits in buckets.items()
        if hits
    )


def sweep(dataset: Dataset, truth: Truth) -> None:
    """Print pair precision/recall over a grid of thresholds (defaults marked with *)."""
    print("\nthreshold sweep (pairs; 'distinct' = pre-existing pairs flagged):")
    print(f"  {'iou':>5} {'cont':>5} {'ratio':>5}  {'prec':>6} {'recall':>6} {'distinct':>8}")
    rules = ((1.0, 1.0), (DEFAULT_CONTAINMENT, DEFAULT_AREA_RATIO), (0.9, 0.8), (0.9, 0.75))
    for iou in (0.7, 0.72, 0.75, 0.78, 0.8, 0.85, 0.9):
        for containment, ratio in rules:
            pairs = find_duplicate_boxes(
                dataset, iou=iou, containment=containment, area_ratio=ratio
            )
            p, r, _, _ = pair_scores(pairs, truth)
            mark = "*" if (iou, containment, ratio) == DEFAULTS else " "
            flagged = distinct_pairs_flagged(pairs, truth)
            print(
                f"{mark} {iou:5.2f} {containment:5.2f} {ratio:5.2f}  {p:6.4f} {r:6.4f} {flagged:8d}"
            )


def main() -> None:
    """Build the set, run the pipeline, print figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boxes", type=int, default=100_000, help="total boxes incl. copies")
    parser.add_argument("--copies", type=float, default=0.05, help="copies per original box")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES, help="photo folder")
    parser.add_argument("--sweep", action="store_true", help="also sweep thresholds")
    parser.add_argument("--one-image", type=int, metavar="N", help="N boxes on one image")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    if args.one_image:
        one_image(args.one_image, rng, args.copies)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder, sizes = image_sizes(args.images, Path(tmp))
        doc, truth = build_coco(sizes, args.boxes, rng, args.copies)
        path = Path(tmp) / "instances.json"
        path.write_text(json.dumps(doc))
        report(path, folder, len(sizes), truth, args.sweep)


def report(path: Path, folder: Path, n_files: int, truth: Truth, do_sweep: bool) -> None:
    """Run every stage once, timed, and print the figures."""
    seconds: dict[str, float] = {}
    with timed(seconds, "load"):
        dataset = load_annotations(path, images_dir=folder)
    with timed(seconds, "validate"):
        problems = validate(dataset)
    with timed(seconds, "find"):
        pairs = find_duplicate_boxes(dataset)
    with timed(seconds, "plan"):
        plan = plan_cleanup(dataset, pairs)
    with timed(seconds, "write (dry run)"):
        write_cleaned(dataset, plan, path.parent / "out")
    same = sum(k == "duplicate" for k in truth.pairs.values())
    print(f"images: {len(dataset.images)} entries over {n_files} files in {folder}")
    print(
        f"boxes: {len(dataset.annotations)} ({truth.originals} original, {len(truth.pairs)} "
        f"injected copies: {same} same class, {len(truth.pairs) - same} other class)"
    )
    print(f"problems: {len(problems)} {sorted({p.kind for p in problems})}")
    p, r, fp, miss = pair_scores(pairs, truth)
    print(
        f"pairs found: {len(pairs)}  precision {p:.4f}  recall {r:.4f}  (false positives {fp}, "
        f"missed {miss}; pre-existing pairs flagged: {distinct_pairs_flagged(pairs, truth)})"
    )
    print(f"recall by box size: {recall_by_size(dataset, pairs, truth)}")
    rp, rr, touched = removal_scores(set(plan.removed_ids), truth)
    print(
        f"removals: {len(plan.removals)}  precision {rp:.4f}  recall {rr:.4f}  "
        f"pre-existing boxes removed: {touched}"
    )
    print("seconds:")
    for name, value in seconds.items():
        print(f"  {name:<16} {value:7.3f}")
    print(f"  {'total':<16} {sum(seconds.values()):7.3f}")
    if do_sweep:
        sweep(dataset, truth)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one_image_coco(n: int, rng: np.random.Generator, copy_rate: float) -> tuple[str, int]:
    """COCO text with ``n`` boxes on one 4000x3000 image, the last ``copy_rate`` of them
    jittered copies of random earlier ones; returns the text and the number of copies."""
    copies = int(n * copy_rate / (1 + copy_rate))
    originals = n - copies
    xy = rng.uniform(0, [4000, 3000], (originals, 2))
    wh = 10 ** rng.uniform(np.log10(8), np.log10(200), (originals, 2))
    boxes = np.hstack([xy, xy + wh])
    picked = rng.choice(originals, size=copies, replace=False)
    jittered = np.array([jitter_box(tuple(boxes[k]), rng) for k in picked.tolist()])
    boxes = np.vstack([boxes, jittered.reshape(-1, 4)]).round(2)
    classes = rng.integers(1, len(CLASSES) + 1, originals)
    classes = np.r_[classes, classes[picked]]
    anns = ",".join(
        f'{{"id":{k + 1},"image_id":1,"category_id":{c},"bbox":[{x0},{y0},'
        f'{round(x1 - x0, 2)},{round(y1 - y0, 2)}],"iscrowd":0}}'
        for k, (c, (x0, y0, x1, y1)) in enumerate(
            zip(classes.tolist(), boxes.tolist(), strict=True)
        )
    )
    categories = [{"id": n + 1, "name": c} for n, c in enumerate(CLASSES)]
    image = {"id": 1, "file_name": "big.png", "width": 4000, "height": 3000}
    head = json.dumps({"images": [image], "categories": categories})[:-1]
    return f'{head},"annotations":[{anns}]}}', copies


def one_image(n: int, rng: np.random.Generator, copy_rate: float) -> None:
    """The within-image search on ``n`` boxes of one image: seconds and peak memory."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        Image.new("RGB", (4000, 3000), (90, 120, 160)).save(folder / "big.png")
        text, copies = one_image_coco(n, rng, copy_rate)
        path = folder / "instances.json"
        path.write_text(text)
        del text
        size_mb = path.stat().st_size / 2**20
        print(f"one image 4000x3000, {n} boxes ({copies} injected copies), COCO {size_mb:.0f} MB")
        print(f"  {'stage':<16} {'seconds':>8} {'peak RSS MiB':>13}")
        print(f"  {'(start)':<16} {0:8.2f} {peak_rss_mb():13.0f}")
        seconds: dict[str, float] = {}
        stages = [
            ("load", lambda: load_annotations(path)),
            ("validate", lambda: validate(state["dataset"])),
            ("find", lambda: find_duplicate_boxes(state["dataset"])),
            ("plan", lambda: plan_cleanup(state["dataset"], state["find"])),
        ]
        state: dict = {}
        for name, run in stages:
            with timed(seconds, name):
                state["dataset" if name == "load" else name] = run()
            print(f"  {name:<16} {seconds[name]:8.2f} {peak_rss_mb():13.0f}")
        pairs = state["find"]
        found = {p.b.id for p in pairs if p.b.id > n - copies}
        print(f"pairs found: {len(pairs)}; injected copies found: {len(found)} of {copies}")
        print(f"total seconds: {sum(seconds.values()):.2f}; peak RSS {peak_rss_mb():.0f} MiB")


if __name__ == "__main__":
    main()
