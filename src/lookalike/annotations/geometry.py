"""Vectorised box geometry: overlap measures and candidate pairs by sort-and-sweep.

Boxes are ``(n, 4)`` float arrays of ``x0, y0, x1, y1``. Candidate pairs are generated
per group (image) by sorting on ``(group, x0)`` and sweeping: a box ``j`` after ``i`` is a
candidate when ``x0[j] - x0[i] <= reach * width[i]``. For two boxes whose intersection
covers at least a fraction ``f`` of both boxes (what every duplicate rule implies), the
intersection width is at least ``f * width[i]`` and at most ``x1[i] - x0[j]``, so
``reach = 1 - f`` loses no pair while skipping most neighbours even in crowded images.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

MAX_CHUNK_PAIRS = 2_000_000
"""Candidate pairs generated per chunk; bounds memory to roughly 200 MB per chunk."""


@dataclass(frozen=True)
class Overlap:
    """Overlap measures of aligned pairs of boxes (one entry per pair)."""

    intersection: np.ndarray
    iou: np.ndarray
    containment: np.ndarray
    area_ratio: np.ndarray


def valid_boxes(boxes: np.ndarray) -> np.ndarray:
    """Mask of boxes with finite coordinates and positive width and height."""
    finite = np.isfinite(boxes).all(axis=1)
    with np.errstate(invalid="ignore"):
        positive = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    mask: np.ndarray = finite & positive
    return mask


def overlap(a: np.ndarray, b: np.ndarray) -> Overlap:
    """Measure the overlap of ``a[k]`` with ``b[k]`` for every row ``k``.

    Args:
        a: ``(m, 4)`` valid boxes.
        b: ``(m, 4)`` valid boxes.

    Returns:
        Intersection area, IoU, containment (intersection over the smaller area) and
        area ratio (smaller over larger area), each of shape ``(m,)``.
    """
    iw = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    ih = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    inter = np.clip(iw, 0.0, None) * np.clip(ih, 0.0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    small = np.minimum(area_a, area_b)
    large = np.maximum(area_a, area_b)
    return Overlap(inter, inter / (area_a + area_b - inter), inter / small, small / large)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (``(m, 4)``) with every box of ``b`` (``(k, 4)``)."""
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0.0, None) * np.clip(ih, 0.0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def sweep_pairs(
    groups: np.ndarray, boxes: np.ndarray, reach: float, *, chunk: int = MAX_CHUNK_PAIRS
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield candidate pairs ``(i, j)`` of boxes in the same group, chunk by chunk.

    Args:
        groups: ``(n,)`` non-negative integer group (image) of each box.
        boxes: ``(n, 4)`` valid boxes.
        reach: Fraction of a box's width within which the next boxes' ``x0`` must start;
            ``1.0`` yields every pair that overlaps horizontally.
        chunk: Maximum number of pairs per yielded chunk.

    Yields:
        Index arrays into ``boxes``; each unordered pair appears exactly once.
    """
    n = len(boxes)
    if n < 2:
        return
    order = np.lexsort((boxes[:, 0], groups))
    key, limit = _sweep_keys(groups[order], boxes[order], reach)
    end = np.searchsorted(key, limit, side="right")
    counts = np.maximum(end - np.arange(1, n + 1), 0)
    yield from _expand(order, counts, chunk)


def _sweep_keys(
    groups: np.ndarray, boxes: np.ndarray, reach: float
) -> tuple[np.ndarray, np.ndarray]:
    """Sortable keys ``group rank + x0 scaled into [0, 0.5]`` and each box's sweep limit.

    Scaling per group keeps full float precision inside every image, whatever the
    coordinates of other images, and the limit never reaches the next group's keys.
    """
    x0, x1 = boxes[:, 0], boxes[:, 2]
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    rank = np.cumsum(np.r_[True, groups[1:] != groups[:-1]]) - 1
    low = x0[starts]
    scale = 0.5 / (np.maximum.reduceat(x1, starts) - low)
    key = rank + (x0 - low[rank]) * scale[rank]
    return key, key + reach * (x1 - x0) * scale[rank]


def _expand(
    order: np.ndarray, counts: np.ndarray, chunk: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Turn "box ``k`` pairs with the next ``counts[k]`` boxes" into index arrays."""
    cumulative = np.cumsum(counts)
    first = 0
    while first < len(counts):
        before = int(cumulative[first - 1]) if first else 0
        last = int(np.searchsorted(cumulative, before + chunk, side="right"))
        last = max(last, first + 1)
        sizes = counts[first:last]
        size = int(sizes.sum())
        if size:
            i = np.repeat(np.arange(first, last), sizes)
            offsets = np.arange(size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
            yield order[i], order[i + 1 + offsets]
        first = last
