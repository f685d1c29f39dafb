"""Repeated objects across images: precision and recall of the grouping, and speed.

Builds a COCO dataset with :func:`lookalike.annotations.synthetic.write_repeated_objects`:
generated photos with their drawn shapes annotated (distinct objects), small photo-like
"logos" pasted 3-6 times each into different photos at 0.6-1.6x with every box edge
moved by up to ``--jitter`` px (as a person draws boxes), and a few near-duplicate copies
(80 % size, JPEG q 75) whose objects repeat as expected. Then runs
:func:`lookalike.objects.find_object_duplicates` (scan, conflicts, crops, repeats) into a
temporary store.

Reported:

* pair precision / recall of the object groups: a pair of boxes in one group is right when
  both show the same pasted logo, or the same drawn object in an image and its copy; recall
  is also given for logo pairs in different pictures only (the finding the report is about);
* logos recovered whole: every pasted copy in one group and nothing else in it (also
  counting only the copies that were compared);
* false pairs by the classes of their two boxes;
* seconds per stage (wall clock; ``total_cpu`` is the process CPU time, as the machine may
  be shared), and seconds per 1,000 boxes for the object work (crops + repeats).

With ``--real``, the photos are the originals of the shared benchmark set
(``shared/benchdata/public``, EXIF-rotated upright, at most 640 px), each with 3-6 random
``region`` boxes as its distinct objects, and the logos are crops of other originals.

    python benchmarks/bench_objects.py [--images 200] [--seed 0] [--jitter 2] [--sweep] [--real]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from dataclasses import replace
from itertools import combinations
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from lookalike.annotations.records import ObjectGroup
from lookalike.annotations.repeats import RepeatSettings
from lookalike.annotations.synthetic import RepeatedObjectSet, write_repeated_objects
from lookalike.objects import ObjectSettings, ObjectsResult, find_object_duplicates

BENCHDATA = Path(__file__).resolve().parents[2] / "shared" / "benchdata" / "public"


def real_photos(root: Path, limit: int) -> tuple[list[Image.Image], list[Image.Image]]:
    """Up to ``limit`` originals of the shared set: backgrounds, and every 5th for logos."""
    truth = json.loads((root / "truth.json").read_text())
    variants = set(truth["variant_of"])
    backgrounds, sources = [], []
    for n, name in enumerate(p for p in sorted(truth["images"]) if p not in variants):
        if n >= limit:
            break
        with Image.open(root / name) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            im.thumbnail((640, 640))
        (sources if n % 5 == 4 else backgrounds).append(im)
    return backgrounds, sources


def pairs_of(groups: list[frozenset[Any]]) -> set[tuple[Any, Any]]:
    """Every unordered pair inside each set, as sorted tuples."""
    return {tuple(sorted(p)) for g in groups for p in combinations(g, 2)}  # type: ignore[misc]


def group_ids(group: ObjectGroup) -> frozenset[Any]:
    return frozenset(
        {group.representative.annotation.id, *(m.annotation.id for m in group.members)}
    )


def score(truth: RepeatedObjectSet, result: ObjectsResult) -> dict[str, Any]:
    """Pair precision/recall, whole logos recovered, false pairs by class."""
    assert result.cross_image is not None
    found = [group_ids(g) for g in result.cross_image.object_groups]
    predicted, true = pairs_of(found), pairs_of(list(truth.same_object))
    labels = {a.id: a.label for a in result.dataset.annotations}
    image_of = {a.id: result.dataset.images[a.image].name for a in result.dataset.annotations}
    copy_of = {v: k for k, v in truth.copies.items()}

    def picture(aid: Any) -> str:
        return copy_of.get(image_of[aid], image_of[aid])

    logos = [s for s in truth.same_object if labels[next(iter(s))] == "logo"]
    across = {p for p in pairs_of(logos) if picture(p[0]) != picture(p[1])}
    hit = predicted & true
    skipped = {s.annotation.id for s in result.cross_image.crop_skips}
    comparable = {p for p in true if not (set(p) & skipped)}
    false = Counter("/".join(sorted((labels[a], labels[b]))) for a, b in predicted - true)
    return {
        "boxes": len(result.dataset.annotations),
        "featured": result.cross_image.featured,
        "crop_skips": dict(Counter(s.reason for s in result.cross_image.crop_skips)),
        "true_pairs": len(true),
        "found_pairs": len(predicted),
        "precision": round(len(hit) / max(len(predicted), 1), 4),
        "recall": round(len(hit) / max(len(true), 1), 4),
        "recall_across_pictures": round(len(predicted & across) / max(len(across), 1), 4),
        "recall_of_compared_boxes": round(len(hit & comparable) / max(len(comparable), 1), 4),
        "logos": len(logos),
        "logos_whole": sum(s in found for s in logos),
        "logos_whole_of_compared": sum(
            (s - skipped) in found for s in logos if len(s - skipped) > 1
        ),
        "logos_compared": sum(len(s - skipped) > 1 for s in logos),
        "false_pairs_by_class": dict(false.most_common()),
    }


def run(truth: RepeatedObjectSet, settings: ObjectSettings, db: Path) -> dict[str, Any]:
    started, cpu = time.perf_counter(), time.process_time()
    result = find_object_duplicates(truth.annotations, db=db, settings=settings)
    total, cpu = time.perf_counter() - started, time.process_time() - cpu
    out = score(truth, result)
    laps = dict(result.timings)
    work = laps.get("crops", 0.0) + laps.get("repeats", 0.0)
    out["seconds"] = {**laps, "total": round(total, 3), "total_cpu": round(cpu, 3)}
    out["seconds_per_1000_boxes"] = {
        "crops+repeats": round(1000 * work / max(out["boxes"], 1), 3),
        "total": round(1000 * total / max(out["boxes"], 1), 3),
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200, help="photos to generate")
    parser.add_argument("--objects", type=int, default=None, help="logos (default images / 8)")
    parser.add_argument(
        "--near-duplicates", type=int, default=None, help="copies (default images / 20)"
    )
    parser.add_argument("--jitter", type=float, default=2.0, help="box edge jitter in px")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sweep", action="store_true", help="also try other thresholds")
    parser.add_argument("--json", dest="json_path", help="write the figures as JSON")
    parser.add_argument(
        "--real", action="store_true", help="real photos of the shared set as backgrounds"
    )
    args = parser.parse_args()
    backgrounds, sources = real_photos(BENCHDATA, args.images) if args.real else ([], [])
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        truth = write_repeated_objects(
            Path(tmp) / "set",
            rng=args.seed,
            images=args.images,
            objects=args.objects if args.objects is not None else max(2, args.images // 8),
            near_duplicates=(
                args.near_duplicates if args.near_duplicates is not None else args.images // 20
            ),
            jitter_px=args.jitter,
            backgrounds=backgrounds,
            logo_sources=sources,
        )
        print(f"built the set in {time.perf_counter() - t0:.1f} s")
        variants: list[tuple[str, ObjectSettings]] = [("default", ObjectSettings())]
        if args.sweep:
            base = RepeatSettings()
            for name, repeats in [
                ("no alignment", replace(base, align=False)),
                ("centre_similarity 0.7", replace(base, centre_similarity=0.7)),
                ("centre_similarity 0.9", replace(base, centre_similarity=0.9)),
                ("neighbours 5", replace(base, neighbours=5)),
                ("aligned_shift_limit 1.0", replace(base, aligned_shift_limit=1.0)),
            ]:
                variants.append((name, ObjectSettings(repeats=repeats)))
        figures = {}
        for name, settings in variants:
            figures[name] = run(truth, settings, Path(tmp) / "store.db")
            print(f"== {name}")
            print(json.dumps(figures[name], indent=2))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
