"""COCO reader, writer, and round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from annotation_builders import coco_annotation as ann
from annotation_builders import write_coco

from lookalike.annotations import (
    CleanupPlan,
    find_duplicate_boxes,
    load_annotations,
    plan_cleanup,
    write_cleaned,
)
from lookalike.errors import AnnotationFormatError, ConfigError, InputNotFoundError

EMPTY_PLAN = CleanupPlan("first", (), ())


def test_reads_boxes_labels_sources_and_extra_fields(tmp_path: Path) -> None:
    path = write_coco(
        tmp_path,
        [ann(7, 1, 2, [10, 20, 30, 40], area=1200, iscrowd=0, attributes={"occluded": True})],
    )
    dataset = load_annotations(path)
    assert dataset.format == "coco"
    (only,) = dataset.annotations
    assert only.id == 7 and only.image == 1 and only.label == "dog" and only.category == 2
    assert only.box == (10.0, 20.0, 40.0, 60.0)
    assert only.extra == {"area": 1200, "iscrowd": 0, "attributes": {"occluded": True}}
    assert str(only.source) == f"{path}#0"
    entry = dataset.images[1]
    assert (entry.width, entry.height, entry.name) == (320, 240, "a.jpg")
    assert entry.path == str((tmp_path / "a.jpg").absolute())
    assert dataset.categories == {1: "person", 2: "dog", 3: "cup"}


def test_round_trip_without_removals_is_byte_identical(tmp_path: Path) -> None:
    path = write_coco(tmp_path / "in", [ann(1, 1, 1, [1, 2, 3, 4]), ann(2, 1, 3, [50, 50, 9, 9])])
    dataset = load_annotations(path)
    write_cleaned(dataset, EMPTY_PLAN, tmp_path / "out", dry_run=False)
    assert (tmp_path / "out" / "instances.json").read_bytes() == path.read_bytes()


@pytest.mark.parametrize("indent", [None, 2, 4])
def test_removal_keeps_every_other_field_and_layout(tmp_path: Path, indent: int | None) -> None:
    annotations = [
        ann(10, 1, 1, [10, 10, 100, 100], area=10000, segmentation=[[10, 10, 110, 10, 110, 110]]),
        ann(11, 1, 1, [11, 10, 100, 100], area=10000, note="copy"),
        ann(12, 1, 3, [200, 150, 30, 30], custom={"nested": [1, 2.5, None]}),
    ]
    images = [{"id": 1, "file_name": "a.jpg", "width": 320, "height": 240, "flickr_url": "x"}]
    path = write_coco(
        tmp_path / "in", annotations, images=images, indent=indent, extra_top={"k": [1, {"z": 2}]}
    )
    original = json.loads(path.read_text())
    dataset = load_annotations(path)
    plan = plan_cleanup(dataset, find_duplicate_boxes(dataset))
    assert [r.annotation.id for r in plan.removals] == [11]
    write_cleaned(dataset, plan, tmp_path / "out", dry_run=False)
    text = (tmp_path / "out" / "instances.json").read_text()
    cleaned = json.loads(text)
    expected = dict(original, annotations=[original["annotations"][0], original["annotations"][2]])
    assert cleaned == expected
    assert list(cleaned) == list(original)  # key order kept
    assert text.endswith("\n")
    assert ("\n" in text.strip()) == (indent is not None)


def test_unicode_and_float_values_survive_a_rewrite(tmp_path: Path) -> None:
    categories = [{"id": 1, "name": "café ☕"}]
    annotations = [
        ann(1, 1, 1, [0.1, 0.2, 50.123456789, 40.5]),
        ann(2, 1, 1, [0.1, 0.2, 50.1, 40.5]),
    ]
    path = write_coco(tmp_path / "in", annotations, categories=categories)
    dataset = load_annotations(path)
    assert dataset.annotations[0].label == "café ☕"
    plan = plan_cleanup(dataset, find_duplicate_boxes(dataset))
    write_cleaned(dataset, plan, tmp_path / "out", dry_run=False)
    cleaned = json.loads((tmp_path / "out" / "instances.json").read_text(encoding="utf-8"))
    assert cleaned["categories"] == categories
    assert cleaned["annotations"] == [annotations[0]]


def test_invalid_json_raises_with_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "images": [],\n  "annotations": [,]\n}\n')
    with pytest.raises(AnnotationFormatError, match=r"invalid JSON at line 3") as info:
        load_annotations(path)
    assert info.value.line == 3 and info.value.path == str(path)


@pytest.mark.parametrize("text", ['["a list"]', '{"info": {}}', "42"])
def test_json_that_is_not_coco_raises(tmp_path: Path, text: str) -> None:
    path = tmp_path / "other.json"
    path.write_text(text)
    with pytest.raises(AnnotationFormatError, match="is not a COCO instances file"):
        load_annotations(path)


def test_not_utf8_raises(tmp_path: Path) -> None:
    path = tmp_path / "latin.json"
    path.write_bytes(b'{"images": [], "annotations": [], "x": "\xe9"}')
    with pytest.raises(AnnotationFormatError, match="not UTF-8"):
        load_annotations(path)


def test_malformed_entries_are_reported_not_loaded_and_kept_on_export(tmp_path: Path) -> None:
    annotations = [
        ann(1, 1, 1, [10, 10, 20, 20]),
        "not an object",
        {"image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2]},
        ann(4, 1, 1, [1, 2, 3]),
        ann(5, 1, 1, ["1", 2, 3, 4]),
        ann(6, 99, 1, [1, 2, 3, 4]),
        ann(1, 1, 1, [30, 30, 5, 5]),
        ann(8, 1, None, [1, 2, 3, 4]),  # type: ignore[arg-type]
    ]
    path = write_coco(tmp_path / "in", annotations)
    dataset = load_annotations(path)
    assert [a.id for a in dataset.annotations] == [1]
    kinds = [(p.kind, p.line_or_id) for p in dataset.problems]
    assert kinds == [
        ("malformed-annotation", "annotations[1]"),
        ("malformed-annotation", "annotations[2]"),
        ("malformed-annotation", 4),
        ("malformed-annotation", 5),
        ("unknown-image", 6),
        ("duplicate-id", 1),
        ("malformed-annotation", 8),
    ]
    assert all(p.severity == "error" and p.path == str(path) for p in dataset.problems)
    write_cleaned(dataset, EMPTY_PLAN, tmp_path / "out", dry_run=False)
    assert (tmp_path / "out" / "instances.json").read_bytes() == path.read_bytes()


def test_malformed_images_and_categories_are_reported(tmp_path: Path) -> None:
    images = [
        {"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
        {"file_name": "noid.jpg", "width": 64, "height": 48},
        {"id": 1, "file_name": "again.jpg", "width": 64, "height": 48},
        {"id": 3, "file_name": "nosize.jpg"},
    ]
    categories = [{"id": 1, "name": "person"}, {"name": "no id"}]
    path = write_coco(tmp_path, [], images=images, categories=categories, make_images=False)
    dataset = load_annotations(path)
    kinds = sorted(p.kind for p in dataset.problems)
    assert kinds == [
        "duplicate-image-id",
        "malformed-category",
        "malformed-image",
        "malformed-image",
        "missing-image-file",
    ]
    assert set(dataset.images) == {1, 3}
    assert dataset.images[3].width is None


def test_sections_of_the_wrong_type_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "odd.json"
    path.write_text(json.dumps({"images": {"1": {}}, "annotations": [], "categories": []}))
    dataset = load_annotations(path)
    assert [(p.kind, p.line_or_id) for p in dataset.problems] == [("malformed-file", "images")]


def test_images_dir_and_missing_image_file(tmp_path: Path) -> None:
    images = [{"id": 1, "file_name": "sub/a.jpg", "width": 64, "height": 48}]
    path = write_coco(tmp_path / "ann", [], images=images, make_images=False)
    dataset = load_annotations(path)
    assert [p.kind for p in dataset.problems] == ["missing-image-file"]
    assert "--images DIR" in dataset.problems[0].message
    from annotation_builders import make_image

    make_image(tmp_path / "pics" / "sub" / "a.jpg", (64, 48))
    dataset = load_annotations(path, images_dir=tmp_path / "pics")
    assert dataset.problems == ()
    assert dataset.images[1].path == str(tmp_path / "pics" / "sub" / "a.jpg")


def test_bad_paths_and_formats(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="does not exist"):
        load_annotations(tmp_path / "missing.json")
    path = write_coco(tmp_path, [])
    with pytest.raises(InputNotFoundError, match="Image folder"):
        load_annotations(path, images_dir=tmp_path / "nope")
    with pytest.raises(ConfigError, match="Unknown annotation format 'cocoa'"):
        load_annotations(path, format="cocoa")
    with pytest.raises(ConfigError, match="does not fit"):
        load_annotations(path, format="yolo")
    with pytest.raises(ConfigError, match="needs the instances .json file"):
        load_annotations(tmp_path, format="coco")


def test_official_coco_layout_is_found_without_images_dir(tmp_path: Path) -> None:
    from annotation_builders import make_image

    images = [{"id": 1, "file_name": "000001.jpg", "width": 64, "height": 48}]
    path = write_coco(
        tmp_path / "annotations",
        [],
        images=images,
        name="instances_val2017.json",
        make_images=False,
    )
    make_image(tmp_path / "val2017" / "000001.jpg", (64, 48))
    dataset = load_annotations(path)
    assert dataset.problems == ()
    assert dataset.images[1].path == str(tmp_path / "val2017" / "000001.jpg")
