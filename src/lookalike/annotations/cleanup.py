"""From duplicate pairs to a cleanup plan: which boxes to drop and which to keep.

Boxes linked by ``duplicate`` pairs form a duplicate set (connected components). Inside a
set, members are visited in keep-rule order and each one is dropped only if it is a
direct duplicate of a box already kept; otherwise it is kept too (greedy, as in
non-maximum suppression). So every set keeps at least one box, every dropped box has a
kept counterpart it directly duplicates, and a chain A~B~C where A and C are distinct
keeps both A and C.

Keep rules (``keep=``):

* ``"first"`` (default): the earliest annotation in reading order (COCO list order, then
  file and line order for YOLO, file and ``<object>`` order for VOC);
* ``"largest"`` / ``"smallest"``: the box with the larger / smaller area, ties broken by
  reading order.

``label-conflict`` pairs are never dropped automatically: a person must decide which
class is right. They are returned in ``plan.review``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..errors import ConfigError
from ..grouping import connected_components
from .records import KEEP_RULES, Annotation, BoxPair, CleanupPlan, Dataset, KeepRule, Removal


def plan_cleanup(
    dataset: Dataset, pairs: Sequence[BoxPair], *, keep: KeepRule = "first"
) -> CleanupPlan:
    """Decide which duplicate boxes to drop.

    Args:
        dataset: The dataset the pairs were found in.
        pairs: Output of :func:`~lookalike.annotations.find_duplicate_boxes`.
        keep: ``"first"``, ``"largest"`` or ``"smallest"`` (see the module docstring).

    Returns:
        The plan: removals in reading order, duplicate sets, and conflicts to review.

    Raises:
        ConfigError: ``keep`` is not a known rule, or a pair refers to an annotation that
            is not in ``dataset``.

    Example:
        >>> plan = plan_cleanup(dataset, pairs, keep="largest")  # doctest: +SKIP
        >>> [(r.annotation.id, r.kept.id) for r in plan.removals]  # doctest: +SKIP
        [(18, 17)]
    """
    if keep not in KEEP_RULES:
        raise ConfigError(f"Unknown keep rule {keep!r}; choose one of {', '.join(KEEP_RULES)}.")
    position = {ann.id: n for n, ann in enumerate(dataset.annotations)}
    duplicates = [p for p in pairs if p.kind == "duplicate"]
    _check_known(duplicates, position)
    links = _links(duplicates)
    removals: list[tuple[int, Removal]] = []
    sets: list[tuple[int | str, ...]] = []
    for members in _sets(duplicates, position):
        ordered = sorted(members, key=_priority(keep, position))
        sets.append(tuple(m.id for m in sorted(members, key=lambda m: position[m.id])))
        removals.extend((position[r.annotation.id], r) for r in _greedy(ordered, links))
    ordered_removals = tuple(r for _, r in sorted(removals, key=_first))
    review = _review(pairs, ordered_removals)
    return CleanupPlan(keep, ordered_removals, tuple(sets), review)


def _review(pairs: Sequence[BoxPair], removals: tuple[Removal, ...]) -> tuple[BoxPair, ...]:
    """Label conflicts to show a person, without ones made redundant by the removals.

    A conflict involving a removed box is dropped when the kept box that replaces it is
    already in conflict with the same other box; otherwise it is kept as evidence.
    """
    conflicts = [p for p in pairs if p.kind == "label-conflict"]
    kept_for = {r.annotation.id: r.kept.id for r in removals}
    surviving = {
        frozenset((p.a.id, p.b.id))
        for p in conflicts
        if p.a.id not in kept_for and p.b.id not in kept_for
    }
    review = []
    for pair in conflicts:
        a, b = kept_for.get(pair.a.id, pair.a.id), kept_for.get(pair.b.id, pair.b.id)
        moved = (a, b) != (pair.a.id, pair.b.id)
        if moved and (a == b or frozenset((a, b)) in surviving):
            continue
        review.append(pair)
    return tuple(review)


def _first(item: tuple[int, Removal]) -> int:
    """Sort key: reading position."""
    return item[0]


def _check_known(pairs: list[BoxPair], position: dict[int | str, int]) -> None:
    """Raise when a pair mentions an annotation id that is not in the dataset."""
    for pair in pairs:
        for ann in (pair.a, pair.b):
            if ann.id not in position:
                raise ConfigError(
                    f"Pair refers to annotation {ann.id!r}, which is not in this dataset. "
                    "Pass the pairs found in the same dataset."
                )


def _links(pairs: list[BoxPair]) -> dict[int | str, dict[int | str, BoxPair]]:
    """``links[x][y]``: the duplicate pair joining annotations ``x`` and ``y``."""
    links: dict[int | str, dict[int | str, BoxPair]] = {}
    for pair in pairs:
        links.setdefault(pair.a.id, {})[pair.b.id] = pair
        links.setdefault(pair.b.id, {})[pair.a.id] = pair
    return links


def _sets(pairs: list[BoxPair], position: dict[int | str, int]) -> list[list[Annotation]]:
    """Connected components of the duplicate graph, ordered by their first member."""
    members: dict[int | str, Annotation] = {}
    for pair in pairs:
        members[pair.a.id] = pair.a
        members[pair.b.id] = pair.b
    nodes = sorted(members, key=position.__getitem__)
    index = {node: n for n, node in enumerate(nodes)}
    i = np.array([index[p.a.id] for p in pairs], dtype=np.int64)
    j = np.array([index[p.b.id] for p in pairs], dtype=np.int64)
    labels = connected_components(len(nodes), i, j)
    grouped: dict[int, list[Annotation]] = {}
    for node, label in zip(nodes, labels.tolist(), strict=True):
        grouped.setdefault(label, []).append(members[node])
    return [grouped[label] for label in sorted(grouped)]


def _priority(
    keep: KeepRule, position: dict[int | str, int]
) -> Callable[[Annotation], tuple[float, int]]:
    """Sort key putting the box to keep first under ``keep``."""
    sign = {"largest": -1.0, "smallest": 1.0}.get(keep, 0.0)
    return lambda a: (sign * a.area, position[a.id])


def _greedy(
    ordered: list[Annotation], links: dict[int | str, dict[int | str, BoxPair]]
) -> list[Removal]:
    """Keep boxes in order unless they directly duplicate a kept box."""
    kept: list[Annotation] = []
    removals: list[Removal] = []
    for ann in ordered:
        partners = [(links[ann.id][k.id], k) for k in kept if k.id in links[ann.id]]
        if not partners:
            kept.append(ann)
            continue
        pair, counterpart = max(partners, key=lambda pk: pk[0].iou)
        reason = f"duplicate-{pair.rule}"
        removals.append(Removal(ann, counterpart, pair.iou, pair.containment, reason))
    return removals
