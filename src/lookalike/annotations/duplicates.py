"""Duplicate boxes within an image: the same object annotated twice.

Two boxes of one image match when either rule holds:

* **IoU rule**: ``IoU >= iou`` (default :data:`DEFAULT_IOU` = 0.75), or
* **near-containment rule**: ``intersection / smaller area >= containment`` (default
  :data:`DEFAULT_CONTAINMENT` = 0.95) **and** ``smaller area / larger area >=
  area_ratio`` (default :data:`DEFAULT_AREA_RATIO` = 0.8): one box almost entirely inside
  another of nearly the same size, e.g. a copy drawn a little tighter. A small object
  inside a large one (area ratio well below 0.8) is left alone.

A match between boxes of the same class is a ``duplicate``; between different classes it
is a ``label-conflict`` (the same object given two classes). For a conflict the stricter
of the two classes' thresholds applies.

How the defaults were chosen (``python benchmarks/bench_boxes.py --sweep``: 100,000
boxes in crowded synthetic scenes on the sizes of the shared photos, plus 5 % injected
copies with every edge moved independently by up to 3 px or by 1-5 % of the box size):
at IoU 0.75 99.0 % of the copies are found (100 % of boxes of 40 px and more, 95 % below)
and no pair of pre-existing boxes is flagged, while distinct neighbours there reach IoU
0.7. IoU 0.8 misses 2.6 % of the copies, 0.85 misses 6 %. The copies still missed are
boxes under about 40 px moved by 2-3 px, whose IoU falls to 0.6-0.75, the range of
distinct people in a crowd: geometry alone cannot separate those. A looser
near-containment rule (0.9 / 0.8) flags 64 pre-existing pairs, mostly a person standing
right behind another (containment ~0.9, area ratio ~0.8), so the rule is kept strict by
default; it still adds a few copies when ``iou`` is raised. Classes that stack tighter
than IoU 0.75 (plates, books) should get a higher ``iou`` through ``per_class``, e.g.
``per_class={"plate": {"iou": 0.9}}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

import numpy as np

from ..errors import ConfigError
from .geometry import grid_pairs, overlap, valid_boxes
from .records import Annotation, BoxPair, Dataset

DEFAULT_IOU = 0.75
"""Minimum IoU for two boxes to be the same object."""
DEFAULT_CONTAINMENT = 0.95
"""Minimum intersection over the smaller box's area for the near-containment rule."""
DEFAULT_AREA_RATIO = 0.8
"""Minimum smaller-over-larger area ratio for the near-containment rule."""


@dataclass(frozen=True)
class Thresholds:
    """Similarity thresholds (a pair matches at or above them), all in ``(0, 1]``."""

    iou: float = DEFAULT_IOU
    containment: float = DEFAULT_CONTAINMENT
    area_ratio: float = DEFAULT_AREA_RATIO

    def check(self, where: str = "") -> Thresholds:
        """Return self, or raise ConfigError naming the value outside ``(0, 1]``."""
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or not 0.0 < value <= 1.0:
                raise ConfigError(
                    f"Threshold {f.name}{where} is {value!r}; it must be a number in (0, 1], "
                    f"e.g. {getattr(Thresholds(), f.name)}."
                )
        return self

    @property
    def min_overlap(self) -> float:
        """Smallest fraction of each box that the intersection covers in a match."""
        return min(self.iou, self.containment * self.area_ratio)


PerClass = Mapping[str, "Thresholds | Mapping[str, float]"]


@dataclass(frozen=True)
class _Table:
    """Per-box arrays the pair test needs."""

    boxes: np.ndarray
    groups: np.ndarray
    classes: np.ndarray
    iou: np.ndarray
    containment: np.ndarray
    area_ratio: np.ndarray
    rows: np.ndarray
    """Position in ``dataset.annotations`` of each table row."""


def find_duplicate_boxes(
    dataset: Dataset,
    *,
    iou: float = DEFAULT_IOU,
    containment: float = DEFAULT_CONTAINMENT,
    area_ratio: float = DEFAULT_AREA_RATIO,
    per_class: PerClass | None = None,
) -> list[BoxPair]:
    """Find pairs of boxes in the same image that cover (nearly) the same region.

    Args:
        dataset: A loaded dataset.
        iou: Minimum IoU for the IoU rule.
        containment: Minimum intersection / smaller area for the near-containment rule.
        area_ratio: Minimum smaller / larger area for the near-containment rule.
        per_class: Overrides by class name (``Annotation.label``), e.g.
            ``{"person": {"iou": 0.9}}``; missing keys fall back to the global values.

    Returns:
        Pairs sorted by the reading order of ``a`` then ``b`` (``a`` is always the earlier
        annotation). Boxes with NaN/infinite coordinates or no area are never paired.

    Raises:
        ConfigError: A threshold is outside ``(0, 1]`` or ``per_class`` names a class the
            dataset does not have.

    Example:
        >>> pairs = find_duplicate_boxes(dataset, iou=0.85)  # doctest: +SKIP
        >>> [(p.kind, p.a.id, p.b.id) for p in pairs]  # doctest: +SKIP
        [('duplicate', 17, 18)]
    """
    base = Thresholds(iou, containment, area_ratio).check()
    table, by_class = _table(dataset.annotations, base, per_class or {})
    min_overlap = min(t.min_overlap for t in by_class) - 1e-9
    found: list[tuple[int, int, BoxPair]] = []
    for i, j in grid_pairs(table.groups, table.boxes, min_overlap):
        found.extend(_matches(table, dataset.annotations, i, j))
    return [pair for _, _, pair in sorted(found, key=lambda t: (t[0], t[1]))]


def _table(
    annotations: tuple[Annotation, ...], base: Thresholds, per_class: PerClass
) -> tuple[_Table, list[Thresholds]]:
    """Arrays of the valid boxes, their image, class and thresholds."""
    boxes = np.array([a.box for a in annotations], dtype=np.float64).reshape(-1, 4)
    keep = np.flatnonzero(valid_boxes(boxes))
    images: dict[object, int] = {}
    classes: dict[object, int] = {}
    labels: list[str] = []
    group = np.empty(len(keep), dtype=np.int64)
    cls = np.empty(len(keep), dtype=np.int64)
    for k, n in enumerate(keep.tolist()):
        ann = annotations[n]
        group[k] = images.setdefault(ann.image, len(images))
        cls[k] = classes.setdefault(ann.category, len(classes))
        if cls[k] == len(labels):
            labels.append(ann.label)
    by_class = _class_thresholds(labels, base, per_class)
    pick = np.array([[t.iou, t.containment, t.area_ratio] for t in by_class]).reshape(-1, 3)
    rows = pick[cls] if len(cls) else np.empty((0, 3))
    table = _Table(boxes[keep], group, cls, rows[:, 0], rows[:, 1], rows[:, 2], keep)
    return table, by_class or [base]


def _class_thresholds(labels: list[str], base: Thresholds, per_class: PerClass) -> list[Thresholds]:
    """Thresholds for every class code, applying ``per_class`` overrides by label."""
    unknown = sorted(set(per_class) - set(labels))
    if unknown:
        known = ", ".join(repr(lb) for lb in sorted(set(labels))[:20])
        raise ConfigError(
            f"per_class names {unknown!r}, which the dataset does not have; its classes "
            f"are {known}. Fix the class names."
        )
    out = []
    for label in labels:
        override = per_class.get(label)
        out.append(_merge(base, override, label) if override is not None else base)
    return out


def _merge(base: Thresholds, override: Thresholds | Mapping[str, float], label: str) -> Thresholds:
    """Apply one class's override to the global thresholds and check the result."""
    if isinstance(override, Thresholds):
        return override.check(f" for class {label!r}")
    allowed = {f.name for f in fields(Thresholds)}
    bad = sorted(set(override) - allowed)
    if bad:
        raise ConfigError(
            f"per_class[{label!r}] has unknown keys {bad!r}; allowed: {sorted(allowed)!r}."
        )
    return replace(base, **override).check(f" for class {label!r}")


def _matches(
    table: _Table, annotations: tuple[Annotation, ...], i: np.ndarray, j: np.ndarray
) -> list[tuple[int, int, BoxPair]]:
    """Test candidate pairs ``(i, j)`` (table rows); return ``(pos a, pos b, pair)`` hits."""
    m = overlap(table.boxes[i], table.boxes[j])
    same = table.classes[i] == table.classes[j]
    t_iou = np.maximum(table.iou[i], table.iou[j])
    t_cont = np.maximum(table.containment[i], table.containment[j])
    t_ratio = np.maximum(table.area_ratio[i], table.area_ratio[j])
    by_iou = m.iou >= t_iou
    by_containment = (m.containment >= t_cont) & (m.area_ratio >= t_ratio)
    hit = np.flatnonzero((m.intersection > 0) & (by_iou | by_containment))
    rows = table.rows
    pairs = []
    for k in hit.tolist():
        a, b = sorted((int(rows[i[k]]), int(rows[j[k]])))
        pairs.append(
            (
                a,
                b,
                BoxPair(
                    "duplicate" if same[k] else "label-conflict",
                    annotations[a],
                    annotations[b],
                    float(m.iou[k]),
                    float(m.containment[k]),
                    float(m.area_ratio[k]),
                    "iou" if by_iou[k] else "containment",
                ),
            )
        )
    return pairs
