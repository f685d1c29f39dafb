"""Hooks for the image engine: object crops and cross-image conflicts on hand-made pairs."""

from __future__ import annotations

from pathlib import Path

import pytest
from annotation_builders import coco_annotation as ann
from annotation_builders import make_image, write_coco
from PIL import Image

from lookalike.annotations import cross_image_conflicts, find_object_crops, load_annotations
from lookalike.errors import ConfigError

IMAGES = [
    {"id": 1, "file_name": "a.jpg", "width": 320, "height": 240},
    {"id": 2, "file_name": "a_copy.jpg", "width": 320, "height": 240},
    {"id": 3, "file_name": "a_small.jpg", "width": 160, "height": 120},
    {"id": 4, "file_name": "unlabelled.jpg", "width": 320, "height": 240},
]


@pytest.fixture
def dataset(tmp_path: Path):
    annotations = [
        ann(1, 1, 1, [10, 10, 60, 120]),  # person
        ann(2, 1, 2, [150, 100, 80, 60]),  # dog
        ann(3, 1, 3, [250, 20, 30, 30]),  # cup
        ann(10, 2, 1, [12, 11, 60, 118]),  # person, matches
        ann(11, 2, 1, [150, 100, 80, 60]),  # dog labelled person
        ann(12, 2, 3, [20, 180, 20, 20]),  # extra cup, not in a.jpg
        ann(20, 3, 1, [5, 5, 30, 60]),  # a.jpg at half size: person
        ann(21, 3, 2, [75, 50, 40, 30]),  # dog
        ann(22, 3, 3, [125, 10, 15, 15]),  # cup
    ]
    return load_annotations(write_coco(tmp_path, annotations, images=IMAGES))


def test_crops_are_integer_boxes_clipped_to_the_image(tmp_path: Path) -> None:
    path = write_coco(
        tmp_path,
        [
            ann(1, 1, 1, [10.2, 20.7, 30.1, 40]),
            ann(2, 1, 1, [300, -10, 50, 30]),
            ann(3, 1, 1, [5, 5, 0, 5]),
        ],
        images=[IMAGES[0], {"id": 9, "file_name": "gone.jpg", "width": 9, "height": 9}],
    )
    path.parent.joinpath("gone.jpg").unlink()
    crops = find_object_crops(load_annotations(path))
    assert [(c.annotation.id, c.box) for c in crops] == [
        (1, (10, 20, 41, 61)),
        (2, (300, 0, 320, 20)),
    ]
    annotation, image_path, box = crops[0]
    with Image.open(image_path) as image:
        assert image.crop(box).size == (31, 41)


def test_missing_boxes_and_label_mismatches(dataset, tmp_path: Path) -> None:
    a, copy = str(tmp_path / "a.jpg"), str(tmp_path / "a_copy.jpg")
    conflicts = cross_image_conflicts(dataset, [(a, copy)])
    found = [
        (c.reason, c.image, c.annotation.id, c.counterpart.id if c.counterpart else None)
        for c in conflicts
    ]
    assert found == [
        ("label-mismatch", a, 2, 11),
        ("missing", a, 3, None),
        ("missing", copy, 12, None),
    ]
    assert all(c.kind == "cross-image-conflict" for c in conflicts)
    assert conflicts[0].iou == pytest.approx(1.0)


def test_boxes_are_scaled_by_the_size_ratio(dataset, tmp_path: Path) -> None:
    assert cross_image_conflicts(dataset, [(str(tmp_path / "a.jpg"), "a_small.jpg")]) == []
    reverse = cross_image_conflicts(dataset, [("a_small.jpg", str(tmp_path / "a.jpg"))])
    assert reverse == []


def test_an_unlabelled_copy_misses_every_box(dataset) -> None:
    conflicts = cross_image_conflicts(dataset, [("a.jpg", "unlabelled.jpg")])
    assert [(c.reason, c.annotation.id) for c in conflicts] == [
        ("missing", 1),
        ("missing", 2),
        ("missing", 3),
    ]


def test_images_are_found_by_path_name_key_or_real_path(dataset, tmp_path: Path) -> None:
    link = tmp_path / "link.jpg"
    link.symlink_to(tmp_path / "a_copy.jpg")
    by_path = cross_image_conflicts(dataset, [(str(tmp_path / "a.jpg"), str(link))])
    by_key = cross_image_conflicts(dataset, [("1", "2")])
    assert [c.annotation.id for c in by_path] == [c.annotation.id for c in by_key] == [2, 3, 12]


def test_unknown_images_raise_or_are_skipped(dataset, tmp_path: Path) -> None:
    make_image(tmp_path / "stranger.jpg")
    pairs = [("a.jpg", str(tmp_path / "stranger.jpg"))]
    with pytest.raises(ConfigError, match="stranger.jpg' is not an image of this annotation set"):
        cross_image_conflicts(dataset, pairs)
    assert cross_image_conflicts(dataset, pairs, unknown="skip") == []
    with pytest.raises(ConfigError, match="iou is 0"):
        cross_image_conflicts(dataset, [], iou=0)
