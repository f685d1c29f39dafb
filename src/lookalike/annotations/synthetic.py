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

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

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
