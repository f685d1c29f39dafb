"""validate(): one problem per thing wrong, with file, line or id, and what to do."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from annotation_builders import coco_annotation as ann
from annotation_builders import make_image, voc_xml, write_coco, write_yolo

from lookalike.annotations import load_annotations, validate


def kinds(problems: list) -> list[tuple[str, object, str]]:
    return [(p.kind, p.line_or_id, p.severity) for p in problems]


@pytest.mark.parametrize(
    ("bbox", "expected"),
    [
        ([10, 10, 20, 20], []),
        ([300, 200, 19.6, 39.6], []),  # within half a pixel of the border
        ([300, 10, 40, 20], [("box-outside-image", 1, "warning")]),
        ([-8, 10, 40, 20], [("box-outside-image", 1, "warning")]),
        ([330, 10, 40, 20], [("box-outside-image", 1, "error")]),
        ([10, -60, 40, 50], [("box-outside-image", 1, "error")]),
        ([10, 10, 0, 20], [("degenerate-box", 1, "error")]),
        ([10, 10, 20, -5], [("degenerate-box", 1, "error")]),
        ([10, math.nan, 20, 20], [("non-finite-box", 1, "error")]),
        ([10, 10, math.inf, 20], [("non-finite-box", 1, "error")]),
    ],
)
def test_box_problems(tmp_path: Path, bbox: list[float], expected: list) -> None:
    dataset = load_annotations(write_coco(tmp_path, [ann(1, 1, 1, bbox)]))
    assert kinds(validate(dataset)) == expected


def test_messages_name_file_annotation_and_fix(tmp_path: Path) -> None:
    path = write_coco(tmp_path, [ann(5, 1, 3, [300, 10, 40, 20])])
    (problem,) = validate(load_annotations(path))
    assert problem.path == str(path)
    assert problem.message == (
        "annotation 5 (cup) box [300, 10, 340, 30] extends past the 320x240 image "
        "(right by 20 px). Clip it to the image or fix the coordinates."
    )


def test_unknown_coco_category(tmp_path: Path) -> None:
    dataset = load_annotations(write_coco(tmp_path, [ann(1, 1, 42, [1, 1, 5, 5])]))
    (problem,) = validate(dataset)
    assert (problem.kind, problem.line_or_id) == ("unknown-class", 1)
    assert "category_id 42, which is not in 'categories' (1, 2, 3)" in problem.message
    assert dataset.annotations[0].label == "42"  # still loaded, still checked for duplicates


def test_unknown_yolo_class_reports_line(tmp_path: Path) -> None:
    write_yolo(tmp_path, {"a": "0 0.5 0.5 0.1 0.1\n5 0.5 0.5 0.1 0.1\n"})
    (problem,) = validate(load_annotations(tmp_path))
    assert (problem.kind, problem.line_or_id) == ("unknown-class", 2)
    assert "class id 5, but the names file lists 3 classes" in problem.message
    assert problem.path.endswith("a.txt")


def test_declared_size_disagrees_with_image_file(tmp_path: Path) -> None:
    images = [
        {"id": 1, "file_name": "a.jpg", "width": 320, "height": 240},
        {"id": 2, "file_name": "b.jpg", "width": 64, "height": 48},
    ]
    path = write_coco(tmp_path, [], images=images)
    make_image(tmp_path / "b.jpg", (100, 48))
    (problem,) = validate(load_annotations(path))
    assert (problem.kind, problem.line_or_id) == ("image-size-mismatch", 2)
    assert "declared 64x48" in problem.message and "is 100x48" in problem.message
    assert validate(load_annotations(path), check_images=False) == []


def test_exif_rotation_explains_or_excuses_a_size_mismatch(tmp_path: Path) -> None:
    images = [
        {"id": 1, "file_name": "rot.jpg", "width": 48, "height": 64},  # displayed size: fine
        {"id": 2, "file_name": "rot2.jpg", "width": 60, "height": 60},
    ]
    path = write_coco(tmp_path, [], images=images, make_images=False)
    make_image(tmp_path / "rot.jpg", (64, 48), orientation=6)
    make_image(tmp_path / "rot2.jpg", (64, 48), orientation=8)
    (problem,) = validate(load_annotations(path))
    assert problem.line_or_id == 2 and "EXIF orientation 8" in problem.message


def test_unreadable_image_file(tmp_path: Path) -> None:
    path = write_coco(
        tmp_path,
        [],
        images=[{"id": 1, "file_name": "x.jpg", "width": 9, "height": 9}],
        make_images=False,
    )
    (tmp_path / "x.jpg").write_bytes(b"GIF89a truncated")
    (problem,) = validate(load_annotations(path))
    assert problem.kind == "unreadable-image" and problem.line_or_id == 1


def test_voc_size_mismatch_and_bounds(tmp_path: Path) -> None:
    folder = tmp_path / "Annotations"
    folder.mkdir()
    (folder / "a.xml").write_text(voc_xml("a.jpg", (64, 48), [("dog", (50, 40, 70, 47))]))
    make_image(tmp_path / "JPEGImages" / "a.jpg", (64, 50))
    problems = validate(load_annotations(folder))
    assert [(p.kind, Path(p.path).name) for p in problems] == [
        ("image-size-mismatch", "a.xml"),
        ("box-outside-image", "a.xml"),
    ]
    assert problems[1].line_or_id == 13  # line of the <object>


def test_every_annotation_is_loaded_or_reported(tmp_path: Path) -> None:
    lines = [
        "0 0.5 0.5 0.2 0.2",
        "0 0.5 0.5",
        "9 0.5 0.5 0.2 0.2",
        "0 1.5 0.5 0.2 0.2",
        "0 0.5 0.5 0 0.2",
        "z",
    ]
    write_yolo(tmp_path, {"a": "\n".join(lines) + "\n"})
    dataset = load_annotations(tmp_path)
    problems = validate(dataset)
    loaded = {a.source.line for a in dataset.annotations}
    reported = {p.line_or_id for p in problems}
    assert loaded | reported == set(range(1, len(lines) + 1))
    assert sorted(kinds(problems)) == [
        ("box-outside-image", 4, "error"),
        ("degenerate-box", 5, "error"),
        ("malformed-line", 2, "error"),
        ("malformed-line", 6, "error"),
        ("unknown-class", 3, "error"),
    ]
