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
                   "containment", "kept": BOX}],
      "cross_image": CROSS,               # what the cross-image checks did
      "cross_image_conflicts": [{"kind": "cross-image-conflict", "reason": "missing" |
                                 "label-mismatch", "image", "other_image", "iou",
                                 "annotation": BOX, "counterpart": BOX | null,
                                 "expected_box": [x0, y0, x1, y1] | null}],
      "object_groups": [{"id", "scope": "across-images" | "same-image" |
                         "near-duplicate-images",
                         "representative": {"image", "id", "label", "box", "source"},
                         "members": [{"image", "id", "label", "box", "source", "score",
                                      "evidence", "relation": "different-image" |
                                      "same-image" | "near-duplicate-image"}]}]
    }

where ``BOX`` is ``{"id", "label", "box": [x0, y0, x1, y1], "source"}`` and ``CROSS`` is
``{"ran": false, "reason"}`` when the cross-image checks did not run, else ``{"ran": true,
"images_root", "store", "groups_source": "scan" | "store", "image_groups",
"compared_pairs", "skipped_pairs": [{"image", "other_image", "reason"}], "crops":
{"featured", "skipped": {reason: count}}, "crop_skips": [{"image", "id", "label", "box",
"reason", "detail"}]}``. When cross-image checks ran, ``summary`` also has
``cross_image_conflicts``, ``object_groups`` (groups across images), ``repeated_objects``
(their members in other pictures) and ``expected_object_groups`` (repeats only inside
one image or its near-duplicates). Image keys and annotation ids are COCO ids (int) or
relative-path strings (YOLO, VOC); images in the cross-image sections are file paths.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from .records import (
    Annotation,
    BoxPair,
    CleanupPlan,
    Conflict,
    CrossImageFindings,
    Dataset,
    ObjectGroup,
    Problem,
    Removal,
    WriteResult,
)


def objects_report(
    dataset: Dataset,
    problems: Sequence[Problem],
    pairs: Sequence[BoxPair],
    plan: CleanupPlan,
    *,
    cross_image: CrossImageFindings | None = None,
    not_run: str = "not requested",
) -> dict[str, Any]:
    """Build the report dict (see the module docstring for the schema).

    Args:
        dataset: The loaded dataset.
        problems: From :func:`~lookalike.annotations.validate`.
        pairs: From :func:`~lookalike.annotations.find_duplicate_boxes`.
        plan: From :func:`~lookalike.annotations.plan_cleanup`.
        cross_image: What the cross-image checks found, when they ran.
        not_run: Why they did not run (the ``reason`` of ``cross_image``).

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
    if cross_image is not None:
        summary.update(_cross_summary(cross_image))
    return {
        "format": dataset.format,
        "images": len(dataset.images),
        "annotations": len(dataset.annotations),
        "keep": plan.keep,
        "summary": summary,
        "problems": [problem_dict(p) for p in problems],
        "duplicates": [pair_dict(p) for p in pairs],
        "removed": [removal_dict(r) for r in plan.removals],
        "cross_image": (
            {"ran": False, "reason": not_run} if cross_image is None else _cross_dict(cross_image)
        ),
        "cross_image_conflicts": [
            conflict_dict(c) for c in (cross_image.conflicts if cross_image else ())
        ],
        "object_groups": [
            object_group_dict(g) for g in (cross_image.object_groups if cross_image else ())
        ],
    }


def _cross_summary(found: CrossImageFindings) -> dict[str, Any]:
    """Summary counts of the cross-image checks."""
    across = [g for g in found.object_groups if g.scope == "across-images"]
    return {
        "cross_image_conflicts": len(found.conflicts),
        "object_groups": len(across),
        "repeated_objects": sum(m.relation == "different-image" for g in across for m in g.members),
        "expected_object_groups": len(found.object_groups) - len(across),
    }


def _cross_dict(found: CrossImageFindings) -> dict[str, Any]:
    """The ``cross_image`` section: what ran, on what, and what was left out."""
    reasons = Counter(s.reason for s in found.crop_skips)
    return {
        "ran": True,
        "images_root": found.images_root,
        "store": found.store,
        "groups_source": found.groups_source,
        "image_groups": found.image_groups,
        "compared_pairs": found.compared_pairs,
        "skipped_pairs": [
            {"image": p.image, "other_image": p.other_image, "reason": p.reason}
            for p in found.skipped_pairs
        ],
        "crops": {"featured": found.featured, "skipped": dict(sorted(reasons.items()))},
        "crop_skips": [
            {"image": s.image, **box_dict(s.annotation), "reason": s.reason, "detail": s.detail}
            for s in found.crop_skips
        ],
    }


def conflict_dict(conflict: Conflict) -> dict[str, Any]:
    """JSON form of a cross-image conflict."""
    other = conflict.counterpart
    expected = conflict.expected_box
    return {
        "kind": conflict.kind,
        "reason": conflict.reason,
        "image": conflict.image,
        "other_image": conflict.other_image,
        "iou": round(conflict.iou, 6),
        "annotation": box_dict(conflict.annotation),
        "counterpart": box_dict(other) if other is not None else None,
        "expected_box": [round(v, 3) for v in expected] if expected is not None else None,
    }


def object_group_dict(group: ObjectGroup) -> dict[str, Any]:
    """JSON form of a repeated-object group."""
    rep = group.representative
    members = []
    for m in group.members:
        item = {"image": m.image, **box_dict(m.annotation)}
        item.update(score=round(m.score, 4), evidence=dict(m.evidence), relation=m.relation)
        members.append(item)
    return {
        "id": group.id,
        "scope": group.scope,
        "representative": {"image": rep.image_path, **box_dict(rep.annotation)},
        "members": members,
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
    ] + cross_lines(report)


def cross_lines(report: dict[str, Any]) -> list[str]:
    """Human lines of the cross-image checks (one line saying why when they did not run)."""
    cross, summary = report["cross_image"], report["summary"]
    if not cross["ran"]:
        return [f"cross-image checks: not run ({cross['reason']})"]
    skipped = Counter(p["reason"] for p in cross["skipped_pairs"])
    crops = cross["crops"]
    left_out = sum(crops["skipped"].values())
    return [
        f"image groups: {cross['image_groups']} ({_source(cross)})",
        f"near-duplicate image pairs compared: {cross['compared_pairs']}"
        + (f", skipped {sum(skipped.values())} ({_counts(skipped)})" if skipped else ""),
        f"cross-image conflicts: {summary['cross_image_conflicts']}",
        f"crops compared: {crops['featured']}"
        + (f", left out {left_out} ({_counts(crops['skipped'])})" if left_out else ""),
        f"repeated objects: {summary['object_groups']} groups across different images "
        f"({summary['repeated_objects']} repeats); {summary['expected_object_groups']} "
        "groups only within one image or its near-duplicates",
    ]


def finding_counts(report: dict[str, Any]) -> dict[str, int]:
    """Findings of each kind: box pairs, conflicts, and members repeated in other pictures.

    Repeats inside one image or its near-duplicate copies are expected and not counted
    here (they are in ``object_groups`` and in the store with their relation).
    """
    summary = report["summary"]
    return {
        "duplicate": summary["duplicate_pairs"],
        "label-conflict": summary["label_conflicts"],
        "cross-image-conflict": summary.get("cross_image_conflicts", 0),
        "repeated-object": summary.get("repeated_objects", 0),
    }


def findings_line(report: dict[str, Any]) -> str:
    """``findings: duplicate 1, label-conflict 0, ...`` (every kind, fixed order)."""
    return "findings: " + ", ".join(f"{k} {n}" for k, n in finding_counts(report).items())


def _source(cross: dict[str, Any]) -> str:
    verb = "scanned" if cross["groups_source"] == "scan" else "read from the store for"
    return f"{verb} {cross['images_root']}"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()))


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


FINDINGS_SHOWN = 20
"""Findings the human listing shows before it says how many more there are."""


def finding_rows(report: dict[str, Any], name_of: Any = str) -> list[tuple[str, str, str, str]]:
    """``(kind, image, boxes, detail)`` per finding, in report order.

    Args:
        report: An objects report (:func:`objects_report`).
        name_of: Maps an image key of the within-image findings to the name to show.
    """
    rows = []
    removed = {r["id"] for r in report["removed"]}
    for p in report["duplicates"]:
        action = "review"
        if p["kind"] == "duplicate":
            gone = [x for x in (p["a"], p["b"]) if x["id"] in removed]
            action = "remove " + _box_text(gone[0], short=True) if gone else "keep both"
        boxes = f"{_box_text(p['a'])} ~ {_box_text(p['b'])}"
        detail = f"{p['rule']} {p['iou']:.2f}; {action}"
        rows.append((p["kind"], str(name_of(p["image"])), boxes, detail))
    for c in report["cross_image_conflicts"]:
        other = c["counterpart"]
        there = _box_text(other) if other else f"nothing at {_coords(c['expected_box'])}"
        boxes = f"{_box_text(c['annotation'])} ~ {there} in {_short(c['other_image'])}"
        rows.append((c["kind"], _short(c["image"]), boxes, c["reason"]))
    for g in report["object_groups"]:
        rep = g["representative"]
        for m in g["members"]:
            if m["relation"] != "different-image":
                continue
            boxes = f"{_box_text(rep)} ~ {_box_text(m)} in {_short(m['image'])}"
            detail = f"group {g['id']} score {m['score']:.2f}"
            rows.append(("repeated-object", _short(rep["image"]), boxes, detail))
    return rows


def findings_table(rows: Sequence[tuple[str, str, str, str]], *, limit: int | None) -> list[str]:
    """Aligned lines of :func:`finding_rows` under a header, at most ``limit`` rows."""
    if not rows:
        return []
    shown = list(rows if limit is None else rows[:limit])
    header = ("kind", "image", "boxes", "detail")
    widths = [max(len(r[k]) for r in [header, *shown]) for k in range(3)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)) + "  " + row[3]
        for row in [header, *shown]
    ]
    if len(rows) > len(shown):
        more = len(rows) - len(shown)
        lines.append(f"... and {more} more findings (--all lists every one; --json has them all)")
    return [line.rstrip() for line in lines]


def _box_text(box: dict[str, Any], *, short: bool = False) -> str:
    """``#id label [x0, y0, x1, y1]`` (``#id`` alone when ``short``)."""
    if short:
        return f"#{box['id']}"
    return f"#{box['id']} {box['label']} {_coords(box['box'])}"


def _coords(box: Sequence[float] | None) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box or ()) + "]"


def _short(path: str, width: int = 40) -> str:
    """A path cut to its last ``width`` characters."""
    return path if len(path) <= width else "..." + path[-(width - 3) :]
