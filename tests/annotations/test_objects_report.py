"""objects_report(): the documented, JSON-serialisable schema."""

from __future__ import annotations

import json
from pathlib import Path

from annotation_builders import coco_annotation as ann
from annotation_builders import write_coco, write_yolo

from lookalike.annotations import (
    find_duplicate_boxes,
    load_annotations,
    objects_report,
    plan_cleanup,
    validate,
)
from lookalike.annotations.report import problem_lines, summary_lines

BOX = {"id", "label", "box", "source"}


def report_for(path: Path) -> dict:
    dataset = load_annotations(path)
    problems = validate(dataset)
    pairs = find_duplicate_boxes(dataset)
    return objects_report(dataset, problems, pairs, plan_cleanup(dataset, pairs))


def test_schema_and_values(tmp_path: Path) -> None:
    path = write_coco(
        tmp_path,
        [
            ann(1, 1, 1, [10, 10, 100, 100]),
            ann(2, 1, 1, [11, 10, 100, 100]),
            ann(3, 1, 2, [10, 11, 100, 100]),
            ann(4, 1, 9, [300, 10, 40, 40]),
        ],
    )
    report = report_for(path)
    assert json.loads(json.dumps(report, allow_nan=False)) == report
    assert set(report) == {
        "format", "images", "annotations", "keep", "summary", "problems", "duplicates", "removed",
        "cross_image", "cross_image_conflicts", "object_groups",
    }  # fmt: skip
    assert report["cross_image"] == {"ran": False, "reason": "not requested"}
    assert report["cross_image_conflicts"] == [] and report["object_groups"] == []
    assert (report["format"], report["images"], report["annotations"]) == ("coco", 1, 4)
    assert report["summary"] == {
        "problems": {"box-outside-image": 1, "unknown-class": 1},
        "duplicate_pairs": 1,
        "label_conflicts": 2,
        "duplicate_sets": 1,
        "to_remove": 1,
    }
    assert set(report["problems"][0]) == {"kind", "severity", "path", "line_or_id", "message"}
    first = report["duplicates"][0]
    assert set(first) == {"image", "kind", "rule", "iou", "containment", "area_ratio", "a", "b"}
    assert (first["image"], first["kind"], first["a"]["id"], first["b"]["id"]) == (
        1,
        "duplicate",
        1,
        2,
    )
    assert set(first["a"]) == BOX and first["a"]["box"] == [10.0, 10.0, 110.0, 110.0]
    (removed,) = report["removed"]
    assert removed["id"] == 2 and removed["kept"]["id"] == 1 and removed["image"] == 1
    assert removed["reason"] == "duplicate-iou" and set(removed["kept"]) == BOX


def test_yolo_report_uses_path_keys_and_nan_free_boxes(tmp_path: Path) -> None:
    write_yolo(tmp_path, {"a": "0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n0 nan 0.5 0.1 0.1\n"})
    report = report_for(tmp_path / "labels")
    json.dumps(report, allow_nan=False)
    assert report["duplicates"][0]["image"] == "a.txt"
    assert report["removed"][0]["id"] == "a.txt:2"
    assert report["summary"]["problems"] == {"non-finite-box": 1}


def test_human_lines(tmp_path: Path) -> None:
    path = write_coco(tmp_path, [ann(k, 1, 9, [10, 10, 5, 5]) for k in range(1, 26)])
    dataset = load_annotations(path)
    problems = validate(dataset)
    lines = problem_lines(problems, per_kind=20)
    assert len(lines) == 21
    assert lines[0].startswith(f"error: {path}: annotation 1 (9) uses category_id 9")
    assert lines[-1] == "... and 5 more 'unknown-class' problems (all in --json)"
    assert len(problem_lines(problems, per_kind=None)) == 25
    report = objects_report(dataset, problems, [], plan_cleanup(dataset, []))
    assert summary_lines(report)[3] == "problems: 25 (unknown-class 25)"
