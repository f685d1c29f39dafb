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

from .records import Annotation, BoxPair, CleanupPlan, Dataset, Problem, Removal, WriteResult


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


def summary_lines(report: dict[str, Any]) -> list[str]:
    """Human summary of a report: counts of images, boxes, problems, pairs and removals."""
    summary = report["summary"]
    problems = summary["problems"]
    total = sum(problems.values())
    by_kind = ", ".join(f"{kind} {count}" for kind, count in problems.items())
    return [
        f"format: {report['format']}",
        f"images: {report['images']}",
        f"annotations: {report['annotations']}",
        f"problems: {total}" + (f" ({by_kind})" if by_kind else ""),
        f"duplicate pairs: {summary['duplicate_pairs']} in {summary['duplicate_sets']} sets",
        f"label conflicts: {summary['label_conflicts']} (left for review)",
        f"boxes to remove: {summary['to_remove']} (keep={report['keep']})",
    ]


def problem_lines(problems: Sequence[Problem], *, per_kind: int | None = 20) -> list[str]:
    """One line per problem (``severity: path:where: message``), capped per kind.

    Args:
        problems: Problems to show, in order.
        per_kind: Show at most this many of each kind, then one line saying how many
            more there are; ``None`` shows all.
    """
    lines: list[str] = []
    shown: Counter[str] = Counter()
    for problem in problems:
        shown[problem.kind] += 1
        if per_kind is None or shown[problem.kind] <= per_kind:
            lines.append(_problem_line(problem))
    for kind, count in shown.items():
        if per_kind is not None and count > per_kind:
            lines.append(f"... and {count - per_kind} more '{kind}' problems (all in --json)")
    return lines


def _problem_line(problem: Problem) -> str:
    """``severity: path[:line]: message``.

    COCO problems name their annotation or image id in the message, so a ``.json`` path
    gets no suffix; for YOLO and VOC ``line_or_id`` is a line number.
    """
    where = problem.path or "<dataset>"
    if problem.line_or_id is not None and not where.lower().endswith(".json"):
        where += f":{problem.line_or_id}"
    return f"{problem.severity}: {where}: {problem.message}"


def write_lines(result: WriteResult) -> list[str]:
    """Human summary of :func:`~lookalike.annotations.write_cleaned`'s result."""
    verb = "would write" if result.dry_run else "wrote"
    rewritten = [f for f in result.files if f.action == "rewrite"]
    copied = [f for f in result.files if f.action == "copy"]
    logs = [f for f in result.files if f.action == "log"]
    lines = [f"{verb}: {f.destination} ({f.removed} removed)" for f in rewritten[:20]]
    if len(rewritten) > 20:
        lines.append(f"{verb}: ... and {len(rewritten) - 20} more changed files")
    if copied:
        lines.append(f"{verb}: {len(copied)} unchanged files copied as they are")
    lines += [f"backup: {f.source} -> {f.backup}" for f in rewritten if f.backup]
    lines += [f"{verb}: decision log {f.destination}" for f in logs]
    if result.dry_run:
        lines.append("dry run: nothing was written; add --write to apply.")
    return lines
