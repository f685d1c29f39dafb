"""YOLO reader, writer, layouts and round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
from annotation_builders import make_image, tree_bytes, write_yolo, yolo_line

from lookalike.annotations import (
    CleanupPlan,
    Removal,
    find_duplicate_boxes,
    load_annotations,
    plan_cleanup,
    validate,
    write_cleaned,
)
from lookalike.errors import AnnotationFormatError

SIZE = (320, 240)
EMPTY_PLAN = CleanupPlan("first", (), ())


def test_parallel_layout_with_data_yaml(tmp_path: Path) -> None:
    text = yolo_line(0, (32, 24, 96, 120), SIZE) + "\n" + yolo_line(2, (200, 100, 260, 200), SIZE)
    labels = write_yolo(tmp_path, {"train/a": text + "\n"})
    dataset = load_annotations(tmp_path)  # dataset root: finds labels/ and images/
    assert dataset.format == "yolo"
    assert dataset.categories == {0: "person", 1: "dog", 2: "cup"}
    first, second = dataset.annotations
    assert first.id == "labels/train/a.txt:1" and first.label == "person"
    assert first.box == pytest.approx((32, 24, 96, 120), abs=1e-3)
    assert second.label == "cup" and second.source.line == 2
    entry = dataset.images["labels/train/a.txt"]
    assert entry.path == str(tmp_path / "images" / "train" / "a.jpg")
    assert (entry.width, entry.height) == SIZE
    # Pointing at the labels folder works the same.
    assert load_annotations(labels).annotations[0].box == first.box
    assert validate(dataset) == []


def test_flat_layout_with_classes_txt_and_uppercase_extension(tmp_path: Path) -> None:
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    (tmp_path / "img1.txt").write_text(yolo_line(1, (10, 10, 50, 50), (64, 48)) + "\n")
    make_image(tmp_path / "img1.JPG", (64, 48))
    dataset = load_annotations(tmp_path)
    assert [a.label for a in dataset.annotations] == ["dog"]
    assert dataset.images["img1.txt"].path == str(tmp_path / "img1.JPG")


def test_names_file_and_images_dir(tmp_path: Path) -> None:
    labels = tmp_path / "lbl"
    labels.mkdir()
    (labels / "obj.names").write_text("a\nb\n")
    (labels / "x.txt").write_text("1 0.5 0.5 0.5 0.5\n")
    make_image(tmp_path / "pics" / "x.png", (100, 50))
    dataset = load_annotations(labels, images_dir=tmp_path / "pics")
    assert dataset.annotations[0].label == "b"
    assert dataset.annotations[0].box == (25.0, 12.5, 75.0, 37.5)


def test_no_class_names_is_noted_and_ids_are_labels(tmp_path: Path) -> None:
    write_yolo(tmp_path, {"a": "7 0.5 0.5 0.2 0.2\n"}, names=None)
    dataset = load_annotations(tmp_path)
    assert dataset.annotations[0].label == "7"
    problems = validate(dataset)
    assert [(p.kind, p.severity) for p in problems] == [("no-class-names", "info")]


def test_confidence_and_polygon_columns(tmp_path: Path) -> None:
    text = "0 0.5 0.5 0.25 0.25 0.9\n1 0.1 0.1 0.3 0.1 0.2 0.4\n"
    write_yolo(tmp_path, {"a": text})
    first, second = load_annotations(tmp_path).annotations
    assert first.extra == {"confidence": 0.9}
    assert second.box == pytest.approx((32, 24, 96, 96))
    assert second.extra == {"polygon": [0.1, 0.1, 0.3, 0.1, 0.2, 0.4]}


def test_malformed_lines_are_reported_and_kept(tmp_path: Path) -> None:
    good = yolo_line(0, (10, 10, 60, 60), SIZE)
    bad = ["0 0.5 0.5 0.2", "x 0.5 0.5 0.2 0.2", "0 0.5 abc 0.2 0.2", "-1 0.5 0.5 0.1 0.1"]
    text = "\n".join([good, *bad, "", "1.5 0.1 0.1 0.1 0.1"]) + "\n"
    write_yolo(tmp_path, {"a": text})
    dataset = load_annotations(tmp_path)
    assert len(dataset.annotations) == 1
    lines = [(p.kind, p.line_or_id) for p in dataset.problems]
    assert lines == [("malformed-line", n) for n in (2, 3, 4, 5, 7)]
    messages = [p.message for p in dataset.problems]
    assert "4 columns" in messages[0]
    assert "column 1 is 'x'" in messages[1]
    assert "column 3 is 'abc'" in messages[2]
    assert "not a non-negative integer" in messages[3]


def test_round_trip_without_removals_is_byte_identical(tmp_path: Path) -> None:
    a = yolo_line(0, (10, 10, 60, 60), SIZE)
    texts = {"a": f"{a}\r\n{a.replace('0 ', '1 ', 1)}", "b": "", "c": "bad line\n" + a + "\n"}
    write_yolo(tmp_path / "in", texts)
    dataset = load_annotations(tmp_path / "in")
    write_cleaned(dataset, EMPTY_PLAN, tmp_path / "out", dry_run=False)
    before = tree_bytes(tmp_path / "in")
    after = tree_bytes(tmp_path / "out")
    copied = {"labels/a.txt", "labels/b.txt", "labels/c.txt", "data.yaml"}
    assert set(after) == copied | {"lookalike-removed.csv", "lookalike-removed.json"}
    assert all(after[name] == before[name] for name in copied)


def test_removal_drops_only_the_duplicate_line(tmp_path: Path) -> None:
    original = yolo_line(0, (100, 50, 180, 200), SIZE)
    copy = yolo_line(0, (102, 51, 181, 203), SIZE)
    other = yolo_line(2, (10, 10, 40, 40), SIZE)
    text = f"{original}\r\n  {other}  \r\n{copy}\r\n0 1 2\r\n"
    root = tmp_path / "in"
    labels = write_yolo(root, {"a": text, "b": other + "\n"})
    yaml_before = (root / "data.yaml").read_bytes()
    dataset = load_annotations(labels)
    plan = plan_cleanup(dataset, find_duplicate_boxes(dataset))
    assert [r.annotation.id for r in plan.removals] == ["a.txt:3"]
    result = write_cleaned(dataset, plan, tmp_path / "out", dry_run=False)
    assert (tmp_path / "out" / "a.txt").read_bytes() == (
        f"{original}\r\n  {other}  \r\n0 1 2\r\n".encode()
    )
    assert (tmp_path / "out" / "b.txt").read_bytes() == (labels / "b.txt").read_bytes()
    assert (root / "data.yaml").read_bytes() == yaml_before  # outside the labels root
    actions = {Path(f.destination).name: f.action for f in result.files}
    assert actions["a.txt"] == "rewrite" and actions["b.txt"] == "copy"


def test_class_file_inside_root_is_copied_untouched(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "classes.txt").write_text("person\n\ndog\n")
    line = yolo_line(0, (10, 10, 50, 50), (64, 48))
    (tmp_path / "in" / "x.txt").write_text(f"{line}\n{line}\n")
    make_image(tmp_path / "in" / "x.png", (64, 48))
    dataset = load_annotations(tmp_path / "in")
    plan = plan_cleanup(dataset, find_duplicate_boxes(dataset))
    write_cleaned(dataset, plan, tmp_path / "out", dry_run=False)
    assert (tmp_path / "out" / "classes.txt").read_bytes() == b"person\n\ndog\n"
    assert (tmp_path / "out" / "x.txt").read_text() == f"{line}\n"


def test_missing_image_reports_and_keeps_lines(tmp_path: Path) -> None:
    root = tmp_path / "in"
    labels = write_yolo(root, {"a": "0 0.5 0.5 0.1 0.1\n", "b": "0 0.5 0.5 0.1 0.1\n"})
    (root / "images" / "b.jpg").unlink()
    (labels / "empty.txt").write_text("")
    dataset = load_annotations(root)
    assert [a.image for a in dataset.annotations] == ["labels/a.txt"]
    (problem,) = dataset.problems
    assert problem.kind == "missing-image" and problem.path == str(labels / "b.txt")
    assert "--images DIR" in problem.message
    write_cleaned(dataset, EMPTY_PLAN, tmp_path / "out", dry_run=False)
    assert (tmp_path / "out" / "labels" / "b.txt").read_bytes() == (labels / "b.txt").read_bytes()


def test_unreadable_image_and_binary_label_file(tmp_path: Path) -> None:
    labels = write_yolo(tmp_path, {"a": "0 0.5 0.5 0.1 0.1\n", "b": "0 0.5 0.5 0.1 0.1\n"})
    (tmp_path / "images" / "a.jpg").write_bytes(b"not really a jpeg")
    (labels / "c.txt").write_bytes(b"\x00\x01binary")
    dataset = load_annotations(tmp_path)
    kinds = sorted((p.kind, Path(p.path).name) for p in dataset.problems)
    assert kinds == [("malformed-file", "c.txt"), ("unreadable-image", "a.txt")]
    assert [a.image for a in dataset.annotations] == ["labels/b.txt"]


def test_image_list_files_are_skipped_with_a_note(tmp_path: Path) -> None:
    write_yolo(tmp_path, {"a": "0 0.5 0.5 0.1 0.1\n"})
    (tmp_path / "train.txt").write_text("./images/a.jpg\n./images/b.png\n")
    dataset = load_annotations(tmp_path)
    assert [(p.kind, p.severity) for p in dataset.problems] == [("skipped-file", "info")]
    assert len(dataset.annotations) == 1


def test_exif_rotated_image_uses_displayed_size(tmp_path: Path) -> None:
    (tmp_path / "r.txt").write_text("0 0.5 0.5 1 1\n")
    make_image(tmp_path / "r.jpg", (64, 48), orientation=6)
    (entry,) = load_annotations(tmp_path, format="yolo").images.values()
    assert (entry.width, entry.height) == (48, 64)


def test_nothing_readable_raises(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"\x00\x00")
    with pytest.raises(AnnotationFormatError, match="None of the 1 .txt files"):
        load_annotations(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AnnotationFormatError, match="No YOLO label files"):
        load_annotations(empty, format="yolo")


def test_single_label_file(tmp_path: Path) -> None:
    write_yolo(tmp_path, {"a": "0 0.5 0.5 0.1 0.1\n"}, layout="flat")
    dataset = load_annotations(tmp_path / "a.txt")
    assert dataset.format == "yolo" and len(dataset.annotations) == 1


def test_byte_order_mark_survives_removing_the_first_line(tmp_path: Path) -> None:
    line = yolo_line(0, (10, 10, 60, 60), SIZE)
    labels = write_yolo(tmp_path / "in", {"a": ""})
    (labels / "a.txt").write_bytes(b"\xef\xbb\xbf" + f"{line}\n{line}\n".encode())
    dataset = load_annotations(labels)
    assert [a.source.line for a in dataset.annotations] == [1, 2]
    first, second = dataset.annotations
    plan = CleanupPlan("first", (Removal(first, second, 1.0, 1.0, "duplicate-iou"),), ())
    write_cleaned(dataset, plan, tmp_path / "out", dry_run=False)
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"\xef\xbb\xbf" + f"{line}\n".encode()
