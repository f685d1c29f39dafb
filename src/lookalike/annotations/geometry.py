"""Vectorised box geometry: overlap measures and candidate pairs of near-identical boxes.

Boxes are ``(n, 4)`` float arrays of ``x0, y0, x1, y1``. Every duplicate rule implies that
the intersection covers at least a fraction ``f`` of both boxes. Then the intersection is
at least ``f`` times the larger width (and height), at most the smaller one, so

* the widths (and heights) differ by a factor of at most ``1 / f``, and
* ``|x0[i] - x0[j]| <= (1 - f) * max(width)`` (and the same for ``y0`` and heights).

:func:`grid_pairs` uses both: boxes are put in size levels (a level spans a factor
``B`` just above ``1 / f`` of widths, and one of heights) and, within a level, in grid cells of
``(1 - f) * B ** (level + 1)`` (``(1 - f)`` times the largest width of the level). A matching pair
then lies in the same or the next size level and in neighbouring cells, so each box is
compared with a bounded neighbourhood instead of every box of its image: the number of
candidates grows with the number of boxes that really are near-identical, not with the
square of the boxes in an image. Memory is bounded by chunking the candidates.

:func:`sweep_pairs` (sort on ``x0``, sweep ``reach * width``) is the simpler search it
replaced, kept as the reference; it looks at one axis only, so on one image with many
boxes its candidates grow with the square of the box count.
"""

from __future__ import annotations

import math
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


_LEVEL_MARGIN = 1.01
"""Slack on the size-level base and cell size, far above floating-point error."""
_MIN_REACH = 1 / 16
"""Smallest cell size as a fraction of the level's width (``f`` close to 1)."""
_MAX_CELL = 2.0**39
"""Cell coordinates are clipped to +-this; clipping keeps neighbours neighbours."""
_MAX_LEVEL = (1 << 17) - 2
"""Size levels are clipped to +-this (the bucket code holds 18 bits per level)."""
_BOXES_PER_CHUNK = 65_536
"""Boxes whose neighbourhoods are looked up at once (about 20 arrays of 15 x this)."""


def grid_pairs(
    groups: np.ndarray,
    boxes: np.ndarray,
    min_overlap: float,
    *,
    chunk: int = MAX_CHUNK_PAIRS,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield candidate pairs ``(i, j)``: boxes of one group that may overlap ``min_overlap``.

    Every pair whose intersection covers at least ``min_overlap`` of both boxes is
    yielded exactly once (as ``(i, j)`` or ``(j, i)``); most other pairs are not.

    Args:
        groups: ``(n,)`` non-negative integer group (image) of each box.
        boxes: ``(n, 4)`` valid boxes (finite, positive width and height).
        min_overlap: ``f`` in ``(0, 1]`` (see the module docstring).
        chunk: Maximum number of pairs per yielded chunk.

    Yields:
        Index arrays into ``boxes``.
    """
    if len(boxes) < 2:
        return
    grid = _Grid(np.asarray(groups, dtype=np.int64), boxes, min_overlap)
    for start in range(0, len(boxes), _BOXES_PER_CHUNK):
        queries = grid.order[start : start + _BOXES_PER_CHUNK]  # sorted lookups are fast
        query, first, count, upward_only = grid.neighbourhoods(queries)
        yield from _expand_ranges(grid.order, query, first, count, upward_only, chunk)


class _Grid:
    """Boxes sorted by (group, width level, height level, x cell, y cell), with lookups."""

    # (width level offset, height level offset) of the cells a box looks into; the
    # other directions are covered by the box on the other side. (0, 0) sees each pair
    # from both sides, so only pairs with i < j are kept there. Cells are sized for the
    # level they belong to; for (1, -1) the taller box is the query, so its neighbours
    # are looked for ``base`` cells up and down in the lower level's grid.
    OFFSETS = ((0, 0), (0, 1), (1, -1), (1, 0), (1, 1))

    def __init__(self, groups: np.ndarray, boxes: np.ndarray, min_overlap: float) -> None:
        f = float(min(max(min_overlap, 1e-300), 1.0))  # tiny f: few huge cells, still exact
        self.base = _LEVEL_MARGIN / f
        self.reach = max(1.0 - f, _MIN_REACH) * _LEVEL_MARGIN
        self.groups = groups
        self.x0, self.y0 = boxes[:, 0], boxes[:, 1]
        self.lw = self._level(boxes[:, 2] - boxes[:, 0])
        self.lh = self._level(boxes[:, 3] - boxes[:, 1])
        cx = self._cell(self.x0, self.lw)
        cy = self._cell(self.y0, self.lh)
        bucket_code = self._bucket_code(groups, self.lw, self.lh)
        self.order = np.lexsort((cy, cx, bucket_code))
        code = bucket_code[self.order]
        self.buckets, bucket = np.unique(code, return_inverse=True)
        cx, cy = cx[self.order], cy[self.order]
        self.cx_low = np.minimum.reduceat(cx, _starts(bucket))
        self.row_base = np.r_[
            0, np.cumsum(np.maximum.reduceat(cx, _starts(bucket)) - self.cx_low + 1)
        ]
        self.rows, row = np.unique(self._row_key(bucket, cx), return_inverse=True)
        self.cy_low = np.minimum.reduceat(cy, _starts(row))
        self.cy_high = np.maximum.reduceat(cy, _starts(row))
        self.key_base = np.r_[0, np.cumsum(self.cy_high - self.cy_low + 1)]
        self.keys = self.key_base[row] + (cy - self.cy_low[row])

    def _level(self, size: np.ndarray) -> np.ndarray:
        """Size level: ``floor(log_base(size))`` (levels span a factor ``base``).

        Sizes are positive floats and ``base >= 1.01``, so levels lie within +-75,000; an
        infinite size (a box spanning more than the float range) gets the top level.
        """
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            level = np.floor(np.log(size) / np.log(self.base))
        top = float(_MAX_LEVEL)
        return np.clip(np.nan_to_num(level, nan=top, posinf=top), -top, top).astype(np.int64)

    def _cell(self, start: np.ndarray, level: np.ndarray) -> np.ndarray:
        """Grid cell of a coordinate in the grid of ``level`` (clipped, see _MAX_CELL)."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            size = self.reach * self.base ** (level + 1.0)
            cell = np.floor(start / size)
        return np.clip(np.nan_to_num(cell), -_MAX_CELL, _MAX_CELL).astype(np.int64)

    @staticmethod
    def _bucket_code(groups: np.ndarray, lw: np.ndarray, lh: np.ndarray) -> np.ndarray:
        """One int64 per (group, width level, height level) (levels within +-_MAX_LEVEL)."""
        half = 1 << 17
        return (groups << 36) + ((lw + half) << 18) + (lh + half)

    def _row_key(self, bucket: np.ndarray, cx: np.ndarray) -> np.ndarray:
        """One int64 per (bucket, x cell), ordered like the pair."""
        return self.row_base[bucket] + (cx - self.cx_low[bucket])

    def neighbourhoods(
        self, queries: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Ranges of sorted positions each query box must be compared with.

        Returns ``(query, first, count, upward_only)``: box ``query[k]`` is compared with
        sorted positions ``first[k] ... first[k] + count[k] - 1``; where ``upward_only[k]``
        only partners with a larger index count (the pair is also seen from the other side).
        """
        parts = []
        for dw, dh in self.OFFSETS:
            lw, lh = self.lw[queries] + dw, self.lh[queries] + dh
            code = self._bucket_code(self.groups[queries], lw, lh)
            bucket = np.searchsorted(self.buckets, code)
            bucket = np.minimum(bucket, len(self.buckets) - 1)
            present = self.buckets[bucket] == code
            cx = self._cell(self.x0[queries], lw)
            cy = self._cell(self.y0[queries], lh)
            rows_up = 1 if dh >= 0 else int(min(math.ceil(self.base), 4 * _MAX_CELL))
            for dx in (-1, 0, 1):
                parts.append(
                    self._cells(queries, bucket, present, cx + dx, cy, rows_up, (dw, dh) == (0, 0))
                )
        query, first, count, upward = (np.concatenate(a) for a in zip(*parts, strict=True))
        keep = count > 0
        return query[keep], first[keep], count[keep], upward[keep]

    def _cells(
        self,
        queries: np.ndarray,
        bucket: np.ndarray,
        present: np.ndarray,
        cx: np.ndarray,
        cy: np.ndarray,
        reach: int,
        both_sides: bool,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Sorted range of the cells ``(cx, cy - reach ... cy + reach)`` of ``bucket``."""
        width = self.row_base[bucket + 1] - self.row_base[bucket]
        offset = cx - self.cx_low[bucket]
        ok = present & (offset >= 0) & (offset < width)
        key = np.where(ok, self.row_base[bucket] + np.clip(offset, 0, None), -1)
        row = np.minimum(np.searchsorted(self.rows, key), len(self.rows) - 1)
        ok &= self.rows[row] == key
        low = np.maximum(cy - reach, self.cy_low[row])
        high = np.minimum(cy + reach, self.cy_high[row])
        ok &= low <= high
        base = self.key_base[row] - self.cy_low[row]
        first = np.searchsorted(self.keys, base + low, side="left")
        end = np.searchsorted(self.keys, base + high, side="right")
        count = np.where(ok, end - first, 0)
        return queries, first, count, np.full(len(queries), both_sides)


def _starts(labels: np.ndarray) -> np.ndarray:
    """First position of each run of equal values in the sorted ``labels``."""
    return np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])


def _expand_ranges(
    order: np.ndarray,
    query: np.ndarray,
    first: np.ndarray,
    count: np.ndarray,
    upward_only: np.ndarray,
    chunk: int,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Turn "box ``query[k]`` meets sorted ``first[k] + 0 .. count[k] - 1``" into pairs."""
    cumulative = np.cumsum(count)
    at = 0
    while at < len(count):
        before = int(cumulative[at - 1]) if at else 0
        stop = max(int(np.searchsorted(cumulative, before + chunk, side="right")), at + 1)
        sizes = count[at:stop]
        total = int(sizes.sum())
        if total:
            k = np.repeat(np.arange(at, stop), sizes)
            offsets = np.arange(total) - np.repeat(np.cumsum(sizes) - sizes, sizes)
            i, j = query[k], order[first[k] + offsets]
            keep = np.where(upward_only[k], i < j, True)
            yield i[keep], j[keep]
        at = stop
