"""Synthetic annotated scenes with known duplicates, for tests and benchmarks.

Scenes are lists of ``(label, box)`` in pixels and contain the hard negatives a duplicate
finder must leave alone: rows of people whose neighbouring boxes overlap with IoU up to
:data:`MAX_DISTINCT_IOU`, a second, smaller row partly hidden behind the first, stacks of
items, and small objects inside large ones of the same class. :func:`jitter_box` makes
the positives: a copy of a box with every edge moved independently by up to a few
pixels or a few percent of the box size. Everything takes an ``rng`` and is
deterministic for a given seed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .records import Box

MAX_DISTINCT_IOU = 0.7
"""Largest IoU between two distinct objects in a generated scene."""
MAX_NESTED_AREA_RATIO = 0.55
"""Largest area ratio of a small object drawn inside a large one of the same class."""
CLASSES: tuple[str, ...] = ("person", "car", "bottle", "chair", "dog", "cup")

Scene = list[tuple[str, Box]]


def make_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """Return ``rng`` if it is a Generator, else a new one seeded with it."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def iou(a: Box, b: Box) -> float:
    """IoU of two boxes (0 when either has no area)."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(iw, 0.0) * max(ih, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def make_scene(
    rng: np.random.Generator | int | None, width: int, height: int, *, min_size: float = 16.0
) -> Scene:
    """Draw one crowded scene for a ``width`` x ``height`` image.

    Args:
        rng: Generator or seed.
        width: Image width in pixels.
        height: Image height in pixels.
        min_size: Smallest box side in pixels.

    Returns:
        Distinct objects: every pair has IoU <= :data:`MAX_DISTINCT_IOU`, and a same-class
        object nested in another covers at most :data:`MAX_NESTED_AREA_RATIO` of its area.
    """
    gen = make_rng(rng)
    canvas = _Canvas(gen, float(width), float(height), min_size, [])
    builders: list[tuple[float, Callable[[_Canvas], None]]] = [
        (0.8, _people_rows),
        (0.5, _stack),
        (0.5, _nested),
        (1.0, _scattered),
    ]
    for chance, build in builders:
        if gen.random() < chance:
            build(canvas)
    return canvas.objects


@dataclass
class _Canvas:
    """A scene under construction; :meth:`place` enforces the distinctness rules."""

    rng: np.random.Generator
    width: float
    height: float
    min_size: float
    objects: Scene

    @property
    def unit(self) -> float:
        """The shorter image side."""
        return min(self.width, self.height)

    def place(self, label: str, box: Box) -> bool:
        """Clip ``box`` to the image and add it unless it breaks a rule; True if added."""
        x0, y0 = max(box[0], 0.0), max(box[1], 0.0)
        x1, y1 = min(box[2], self.width), min(box[3], self.height)
        if x1 - x0 < self.min_size or y1 - y0 < self.min_size:
            return False
        clipped = (round(x0, 2), round(y0, 2), round(x1, 2), round(y1, 2))
        if any(iou(clipped, other) > MAX_DISTINCT_IOU for _, other in self.objects):
            return False
        self.objects.append((label, clipped))
        return True


def _people_rows(canvas: _Canvas) -> None:
    """A front row of people, neighbours overlapping with IoU in [0, 0.7], maybe a rear row."""
    rng = canvas.rng
    height = canvas.unit * rng.uniform(0.25, 0.6)
    base = rng.uniform(height, canvas.height)
    _row(canvas, height, base)
    if rng.random() < 0.5:
        scale = rng.uniform(0.7, 0.85)
        _row(canvas, height * scale, base - height * rng.uniform(0.05, 0.3))


def _row(canvas: _Canvas, height: float, base: float) -> None:
    """People side by side, each shifted so that its IoU with the previous is random."""
    rng = canvas.rng
    x = rng.uniform(0.0, canvas.width * 0.3)
    for _ in range(int(rng.integers(3, 11))):
        h = height * rng.uniform(0.9, 1.1)
        w = h * rng.uniform(0.35, 0.5)
        y1 = base + h * rng.uniform(-0.05, 0.05)
        canvas.place("person", (x, y1 - h, x + w, y1))
        target = rng.uniform(0.0, MAX_DISTINCT_IOU)
        x += w * (1 - target) / (1 + target)
        if x > canvas.width:
            return


def _stack(canvas: _Canvas) -> None:
    """Items stacked on top of each other, consecutive ones overlapping up to IoU 0.6."""
    rng = canvas.rng
    label = str(rng.choice(["cup", "bottle", "chair"]))
    w = canvas.unit * rng.uniform(0.06, 0.2)
    h = w * rng.uniform(0.5, 1.5)
    x, y = rng.uniform(0, canvas.width - w), rng.uniform(0, canvas.height - h)
    for _ in range(int(rng.integers(2, 7))):
        canvas.place(label, (x, y, x + w, y + h))
        target = rng.uniform(0.0, 0.6)
        y -= h * (1 - target) / (1 + target)
        x += w * rng.uniform(-0.05, 0.05)


def _nested(canvas: _Canvas) -> None:
    """A large object with a small one of the same class inside it."""
    rng = canvas.rng
    label = str(rng.choice(["person", "car", "dog"]))
    w = canvas.unit * rng.uniform(0.2, 0.5)
    h = w * rng.uniform(0.6, 1.6)
    x, y = rng.uniform(0, canvas.width - w), rng.uniform(0, canvas.height - h)
    if not canvas.place(label, (x, y, x + w, y + h)):
        return
    ratio = rng.uniform(0.1, MAX_NESTED_AREA_RATIO)
    sw, sh = w * np.sqrt(ratio), h * np.sqrt(ratio)
    sx, sy = x + rng.uniform(0, w - sw), y + rng.uniform(0, h - sh)
    canvas.place(label, (sx, sy, sx + sw, sy + sh))


def _scattered(canvas: _Canvas) -> None:
    """A few objects of any class anywhere, sizes log-uniform."""
    rng = canvas.rng
    for _ in range(int(rng.integers(2, 9))):
        side = canvas.unit * np.exp(rng.uniform(np.log(0.04), np.log(0.4)))
        w, h = side * np.exp(rng.uniform(-0.5, 0.5)), side * np.exp(rng.uniform(-0.5, 0.5))
        x, y = rng.uniform(0, canvas.width - w), rng.uniform(0, canvas.height - h)
        canvas.place(str(rng.choice(CLASSES)), (x, y, x + w, y + h))


def jitter_box(
    box: Box,
    rng: np.random.Generator | int | None,
    *,
    max_px: float = 3.0,
    max_fraction: float = 0.05,
) -> Box:
    """A copy of ``box`` as a second annotator (or a merge of two exports) would draw it.

    Half the time every edge moves independently by up to ``max_px`` pixels; otherwise
    by up to a random fraction (1 % to ``max_fraction``) of the box's width or height.

    Returns:
        The jittered box, rounded to 0.01 px.
    """
    gen = make_rng(rng)
    w, h = box[2] - box[0], box[3] - box[1]
    if gen.random() < 0.5:
        dx = dy = max_px
    else:
        fraction = gen.uniform(0.01, max_fraction)
        dx, dy = fraction * w, fraction * h
    moves = gen.uniform(-1.0, 1.0, 4) * np.array([dx, dy, dx, dy])
    x0, y0, x1, y1 = (float(v) for v in np.asarray(box) + moves)
    return (round(x0, 2), round(y0, 2), round(x1, 2), round(y1, 2))


@dataclass(frozen=True)
class RepeatedObjectSet:
    """A COCO dataset with objects pasted into several images, and what is where.

    Attributes:
        annotations: The COCO file.
        images_dir: The folder of the JPEG images.
        same_object: Sets of annotation ids that show the same object: one set per pasted
            object, and one per drawn object of an image that has a near-duplicate copy
            (the object and its copy).
        copies: Image file name -> the file name of its near-duplicate copy.
    """

    annotations: Path
    images_dir: Path
    same_object: tuple[frozenset[int], ...]
    copies: dict[str, str]


def write_repeated_objects(
    root: Path,
    *,
    rng: np.random.Generator | int | None = None,
    images: int = 24,
    objects: int = 6,
    copies: tuple[int, int] = (3, 6),
    near_duplicates: int = 0,
    size: tuple[int, int] = (480, 360),
    jitter_px: float = 2.0,
    backgrounds: Sequence[Image.Image] = (),
    logo_sources: Sequence[Image.Image] = (),
) -> RepeatedObjectSet:
    """Write images with drawn objects plus pasted repeated objects, annotated in COCO.

    Each image is :func:`lookalike.testing.make_photo` with its shapes annotated (class =
    shape kind). Each of ``objects`` small photo-like "logos" (64-128 px) is pasted into
    ``copies[0]``-``copies[1]`` different images at a scale of 0.6-1.6, annotated ``logo``
    with every box edge moved by up to ``jitter_px`` (as a person draws it). The first
    ``near_duplicates`` images also get a near-duplicate copy (80% size, JPEG q 75) whose
    boxes are scaled accordingly. Images are JPEG q 90; everything follows from ``rng``.

    With ``backgrounds`` (real photos, say), those are the images instead, each with 3-6
    random ``region`` boxes as its distinct objects; with ``logo_sources``, logos are
    crops of those pictures (no two overlapping) instead of generated ones.
    """
    from lookalike.testing import make_photo, save_image

    gen = make_rng(rng)
    images_dir = Path(root) / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    kinds = ["rectangle", "ellipse", "polygon", "logo", "region"]
    boxes: list[list[tuple[str, Box, int | None]]]
    if backgrounds:
        photos = [(img.convert("RGB"), _regions(img.size, gen)) for img in backgrounds]
        boxes = [[("region", b, None) for b in regions] for _, regions in photos]
    else:
        drawn = [make_photo(int(gen.integers(1 << 31)), size=size) for _ in range(images)]
        photos = [(img, [s.box for s in shapes]) for img, shapes in drawn]
        boxes = [
            [(s.label, s.box, None) for s in shapes if _side(s.box) >= 16] for _, shapes in drawn
        ]
    images = len(photos)
    for m in range(objects):
        logo = _logo(gen, logo_sources, m)
        count = int(gen.integers(copies[0], copies[1] + 1))
        for k in gen.choice(images, size=min(count, images), replace=False).tolist():
            placed = _paste(photos[k][0], logo, gen, [b for _, b, o in boxes[k] if o is not None])
            if placed is not None:
                boxes[k].append(("logo", _jitter(placed, gen, jitter_px), m))
    doc: dict[str, Any] = {"images": [], "annotations": [], "categories": []}
    doc["categories"] = [{"id": n + 1, "name": name} for n, name in enumerate(kinds)]
    groups: dict[Any, set[int]] = {}
    names: dict[str, str] = {}
    for k, (img, _) in enumerate(photos):
        name = f"img_{k:04d}.jpg"
        save_image(img, images_dir / name, quality=90)
        ids = _add_image(doc, name, img.size, boxes[k], kinds, groups, 1.0)
        if k < near_duplicates:
            copy = img.resize(
                (round(img.width * 0.8), round(img.height * 0.8)), Image.Resampling.LANCZOS
            )
            names[name] = f"copy_{k:04d}.jpg"
            save_image(copy, images_dir / names[name], quality=75)
            twin = _add_image(doc, names[name], copy.size, boxes[k], kinds, groups, 0.8)
            for a, b, (_, _, obj) in zip(ids, twin, boxes[k], strict=True):
                if obj is None:
                    groups[("drawn", a)] = {a, b}
    path = Path(root) / "instances.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    same = tuple(frozenset(ids) for _, ids in sorted(groups.items(), key=str) if len(ids) > 1)
    return RepeatedObjectSet(path, images_dir, same, names)


def _side(box: Box) -> float:
    return min(box[2] - box[0], box[3] - box[1])


def _regions(size: tuple[int, int], gen: np.random.Generator) -> list[Box]:
    """3-6 random boxes of 10-35 % of the image side (distinct parts of a real photo)."""
    w, h = size
    out = []
    for _ in range(int(gen.integers(3, 7))):
        bw, bh = gen.uniform(0.1, 0.35) * w, gen.uniform(0.1, 0.35) * h
        x, y = gen.uniform(0, w - bw), gen.uniform(0, h - bh)
        out.append((round(x, 2), round(y, 2), round(x + bw, 2), round(y + bh, 2)))
    return out


def _logo(gen: np.random.Generator, sources: Sequence[Image.Image], m: int) -> Image.Image:
    """A generated photo-like logo, or a crop of ``sources`` that no other logo overlaps.

    Logo ``m`` is cut from source ``m % len(sources)``, inside quadrant
    ``m // len(sources) % 4`` of it, so two logos never show the same pixels.
    """
    from lookalike.testing import make_photo

    if not sources:
        seed = int(gen.integers(1 << 31))
        return make_photo(seed, size=_logo_size(gen))[0]
    w, h = _logo_size(gen)
    src = sources[m % len(sources)].convert("RGB")
    quadrant = m // len(sources) % 4
    qw, qh = src.width // 2, src.height // 2
    left, top = (quadrant % 2) * qw, (quadrant // 2) * qh
    cw, ch = min(qw, w * 2), min(qh, h * 2)
    x = left + int(gen.integers(0, qw - cw + 1))
    y = top + int(gen.integers(0, qh - ch + 1))
    return src.crop((x, y, x + cw, y + ch)).resize((w, h), Image.Resampling.LANCZOS)


def _jitter(box: Box, gen: np.random.Generator, px: float) -> Box:
    x0, y0, x1, y1 = (float(v) for v in np.asarray(box) + gen.uniform(-px, px, 4))
    return (x0, y0, x1, y1)


def _logo_size(gen: np.random.Generator) -> tuple[int, int]:
    return int(gen.integers(64, 129)), int(gen.integers(48, 113))


def _paste(
    photo: Image.Image, logo: Image.Image, gen: np.random.Generator, taken: list[Box]
) -> Box | None:
    """Paste ``logo`` scaled 0.6-1.6 at a free place of ``photo``; its box, or None."""
    scale = gen.uniform(0.6, 1.6)
    w, h = round(logo.width * scale), round(logo.height * scale)
    for _ in range(30):
        x, y = int(gen.integers(0, photo.width - w)), int(gen.integers(0, photo.height - h))
        box = (float(x), float(y), float(x + w), float(y + h))
        if all(iou(box, other) == 0.0 for other in taken):
            photo.paste(logo.resize((w, h), Image.Resampling.LANCZOS), (x, y))
            return box
    return None


def _add_image(
    doc: dict[str, Any],
    name: str,
    size: tuple[int, int],
    boxes: list[tuple[str, Box, int | None]],
    kinds: list[str],
    groups: dict[Any, set[int]],
    scale: float,
) -> list[int]:
    """Append one image and its (scaled) boxes to the COCO ``doc``; the new annotation ids."""
    image_id = len(doc["images"]) + 1
    doc["images"].append({"id": image_id, "file_name": name, "width": size[0], "height": size[1]})
    ids = []
    for label, (x0, y0, x1, y1), obj in boxes:
        aid = len(doc["annotations"]) + 1
        x0, y0, x1, y1 = (round(max(v * scale, 0.0), 2) for v in (x0, y0, x1, y1))
        x1, y1 = min(x1, size[0]), min(y1, size[1])
        bbox = [x0, y0, round(x1 - x0, 2), round(y1 - y0, 2)]
        item = {"id": aid, "image_id": image_id, "category_id": kinds.index(label) + 1}
        doc["annotations"].append({**item, "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": 0})
        if obj is not None:
            groups.setdefault(("logo", obj), set()).add(aid)
        ids.append(aid)
    return ids
