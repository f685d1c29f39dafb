"""The objects report: one JSON-serialisable dict, the schema of ``lookalike objects --json``.

Schema (every key always present)::

    {
      "format": "coco" | "yolo" | "voc",
      "images": int,                      # image entries read
      "annotations": int,                 # usable annotations
      "keep": "first" | "largest" | "smallest",
      "summary": {
        "problems": {kind: count},        # sorted by kind
        "duplicate_pairs": int,           # pairs of kind "duplicate"
        "label_conflicts": int,           # pairs of kind "label-conflict"
        "duplicate_sets": int,
        "to_remove": int
      },
      "problems": [{"kind", "severity", "path", "line_or_id", "message"}],
      "duplicates": [{"image", "kind", "rule", "iou", "containment", "area_ratio",
                      "a": BOX, "b": BOX}],
      "removed": [{"id", "image", "label", "box", "source", "reason", "iou",
                   "containment", "kept": BOX}]
    }

where ``BOX`` is ``{"id", "label", "box": [x0, y0, x1, y1], "source"}``. Image keys and
annotation ids are COCO ids (int) or relative-path strings (YOLO, VOC).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from .records import Annotation, BoxPair, CleanupPlan, Dataset, Problem, Removal


def objects_report(
    dataset: Dataset,
    problems: Sequence[Problem],
    pairs: Sequence[BoxPair],
    plan: CleanupPlan,
) -> dict[str, Any]:
    """Build the report dict (see the module docstring for the schema).

    Example:
        >>> report = objects_report(dataset, problems, pairs, plan)  # doctest: +SKIP
        >>> report["summary"]["to_remove"]  # doctest: +SKIP
        3
    """
    kinds = Counter(p.kind for p in problems)
    summary = {
        "problems": dict(sorted(kinds.items())),
        "duplicate_pairs": sum(p.kind == "duplicate" for p in pairs),
        "label_conflicts": sum(p.kind == "label-conflict" for p in pairs),
        "duplicate_sets": len(plan.duplicate_sets),
        "to_remove": len(plan.removals),
    }
    return {
        "format": dataset.format,
        "images": len(dataset.images),
        "annotations": len(dataset.annotations),
        "keep": plan.keep,
        "summary": summary,
        "problems": [problem_dict(p) for p in problems],
        "duplicates": [pair_dict(p) for p in pairs],
        "removed": [removal_dict(r) for r in plan.removals],
    }


def problem_dict(problem: Problem) -> dict[str, Any]:
    """JSON form of a problem."""
    return {
        "kind": problem.kind,
        "severity": problem.severity,
        "path": problem.path,
        "line_or_id": problem.line_or_id,
        "message": problem.message,
    }


def box_dict(ann: Annotation) -> dict[str, Any]:
    """JSON form of an annotation as it appears in pairs and removals."""
    return {"id": ann.id, "label": ann.label, "box": list(ann.box), "source": str(ann.source)}


def pair_dict(pair: BoxPair) -> dict[str, Any]:
    """JSON form of a duplicate or label-conflict pair."""
    return {
        "image": pair.image,
        "kind": pair.kind,
        "rule": pair.rule,
        "iou": round(pair.iou, 6),
        "containment": round(pair.containment, 6),
        "area_ratio": round(pair.area_ratio, 6),
        "a": box_dict(pair.a),
        "b": box_dict(pair.b),
    }


def removal_dict(removal: Removal) -> dict[str, Any]:
    """JSON form of a removal with its kept counterpart."""
    out = box_dict(removal.annotation)
    out["image"] = removal.annotation.image
    out.update(reason=removal.reason, iou=round(removal.iou, 6))
    out.update(containment=round(removal.containment, 6), kept=box_dict(removal.kept))
    return out
