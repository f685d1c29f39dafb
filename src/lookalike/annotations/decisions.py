"""A person's review decisions applied to a cleanup plan.

Two kinds of decision, each about one annotation (by id):

* a **removal** the plan proposes (or could propose) for a duplicate box: ``accept``
  (the box is removed) or ``reject`` (the box is kept, although the plan would drop it);
* the **label** of a box in a label conflict: the annotation whose class is right. Both
  boxes of the conflict get that class (category id for COCO, class index for YOLO,
  ``<name>`` for VOC); they then are one object boxed twice with one class, so the later
  one (the one the keep rule would drop) is removed as a duplicate unless that removal
  is rejected.

:func:`apply_decisions` turns a plan and decisions into the plan that is written, and
the relabelling :func:`~lookalike.annotations.write_cleaned` applies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from .cleanup import plan_cleanup
from .records import Annotation, BoxPair, CleanupPlan, Dataset, Removal

RemovalDecision = Literal["accept", "reject"]


@dataclass(frozen=True)
class Decisions:
    """Review decisions by annotation id.

    Attributes:
        removals: ``accept`` or ``reject`` per annotation proposed for removal.
        labels: Annotation id -> id of the annotation whose class it gets.
    """

    removals: Mapping[int | str, RemovalDecision] = field(default_factory=dict)
    labels: Mapping[int | str, int | str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.removals or self.labels)


@dataclass(frozen=True)
class Relabel:
    """A class change written to the cleaned annotations."""

    annotation: Annotation
    category: int | str
    label: str
    source: Annotation
    """The annotation whose class was chosen."""


def apply_decisions(
    dataset: Dataset, pairs: Sequence[BoxPair], plan: CleanupPlan, decisions: Decisions
) -> tuple[CleanupPlan, tuple[Relabel, ...]]:
    """The plan to write after ``decisions``, and the class changes to write with it.

    Decisions about annotations that are not in ``dataset`` (deleted since the review)
    are ignored. Resolved label conflicts become duplicate pairs, planned with the plan's
    keep rule; then rejected removals are kept and accepted ones removed.

    Example:
        >>> plan, relabels = apply_decisions(dataset, pairs, plan, decisions)  # doctest: +SKIP
    """
    if not decisions:
        return plan, ()
    by_id = {a.id: a for a in dataset.annotations}
    relabels = _relabels(by_id, decisions.labels)
    changed = {r.annotation.id: r for r in relabels}
    pairs = [_resolved(p, changed) for p in pairs]
    replanned = plan_cleanup(dataset, pairs, keep=plan.keep) if changed else plan
    rejected = {aid for aid, d in decisions.removals.items() if d == "reject"}
    kept = [r for r in replanned.removals if r.annotation.id not in rejected]
    removed = {r.annotation.id for r in kept}
    accepted = [aid for aid, d in decisions.removals.items() if d == "accept" and aid in by_id]
    extra = [r for aid in accepted if aid not in removed for r in _removal(aid, pairs, removed)]
    position = {a.id: n for n, a in enumerate(dataset.annotations)}
    removals = sorted(kept + extra, key=lambda r: position[r.annotation.id])
    return replace(replanned, removals=tuple(removals)), relabels


def _relabels(
    by_id: Mapping[int | str, Annotation], labels: Mapping[int | str, int | str]
) -> tuple[Relabel, ...]:
    """Class changes for the decided labels that differ from the annotation's class."""
    out = []
    for aid, source_id in labels.items():
        ann, source = by_id.get(aid), by_id.get(source_id)
        if ann is not None and source is not None and source.category != ann.category:
            out.append(Relabel(ann, source.category, source.label, source))
    return tuple(out)


def _resolved(pair: BoxPair, changed: Mapping[int | str, Relabel]) -> BoxPair:
    """A label-conflict pair as a duplicate when both boxes now have one class."""
    if pair.kind != "label-conflict" or not ({pair.a.id, pair.b.id} & changed.keys()):
        return pair
    a, b = (_with_class(x, changed.get(x.id)) for x in (pair.a, pair.b))
    if a.category != b.category:
        return pair
    return replace(pair, kind="duplicate", a=a, b=b)


def _with_class(ann: Annotation, relabel: Relabel | None) -> Annotation:
    if relabel is None:
        return ann
    return replace(ann, category=relabel.category, label=relabel.label)


def _removal(aid: int | str, pairs: Sequence[BoxPair], removed: set[int | str]) -> list[Removal]:
    """A removal of ``aid`` against the best duplicate partner that stays (none: keep it)."""
    partners = [
        (p, p.b if p.a.id == aid else p.a)
        for p in pairs
        if p.kind == "duplicate" and aid in (p.a.id, p.b.id)
    ]
    partners = [(p, other) for p, other in partners if other.id not in removed]
    if not partners:
        return []
    pair, other = max(partners, key=lambda po: po[0].iou)
    ann = pair.a if pair.a.id == aid else pair.b
    return [Removal(ann, other, pair.iou, pair.containment, "accepted-in-review")]
