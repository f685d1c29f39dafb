"""End to end on real photos from the shared benchmark set (read-only; skipped if absent)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from annotation_builders import coco_annotation as ann
from annotation_builders import write_coco, yolo_line
from PIL import Image

from lookalike.annotations import (
    find_duplicate_boxes,
    find_object_crops,
    load_annotations,
    plan_cleanup,
    validate,
    write_cleaned,
)
from lookalike.annotations.imagefiles import IMAGE_EXTENSIONS, read_size
from lookalike.annotations.synthetic import CLASSES, jitter_box, make_scene

ROTATED = {5, 6, 7, 8}


@pytest.fixture(scope="module")
def photos(benchdata: Path) -> list[tuple[Path, int, int, int]]:
    """Up to 24 photos ``(path, width, height, orientation)``, rotated ones first."""
    found = []
    for path in sorted((benchdata / "images").rglob("*")):
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
            try:
                found.append((path, *read_size(path)))
            except OSError:
                continue
    found.sort(key=lambda item: item[3] not in ROTATED)
    if len(found) < 8:
        pytest.skip("too few readable photos in the shared benchmark set")
    return found[:24]


def displayed(width: int, height: int, orientation: int) -> tuple[int, int]:
    return (height, width) if orientation in ROTATED else (width, height)


def test_coco_on_real_photos_finds_exactly_the_injected_copies(photos, benchdata, tmp_path) -> None:
    rng = np.random.default_rng(2)
    root = benchdata / "images"
    images, annotations, copies = [], [], set()
    for n, (path, w, h, orientation) in enumerate(photos, start=1):
        dw, dh = displayed(w, h, orientation)
        images.append(
            {"id": n, "file_name": path.relative_to(root).as_posix(), "width": dw, "height": dh}
        )
        for label, (x0, y0, x1, y1) in make_scene(rng, dw, dh, min_size=max(dw, dh) / 25):
            annotations.append(
                ann(len(annotations) + 1, n, CLASSES.index(label) + 1, [x0, y0, x1 - x0, y1 - y0])
            )
    for item in list(annotations[::7]):
        x, y, bw, bh = item["bbox"]
        x0, y0, x1, y1 = jitter_box((x, y, x + bw, y + bh), rng, max_px=2.0)
        annotations.append(
            ann(
                len(annotations) + 1,
                item["image_id"],
                item["category_id"],
                [x0, y0, x1 - x0, y1 - y0],
            )
        )
        copies.add(len(annotations))
    categories = [{"id": k + 1, "name": c} for k, c in enumerate(CLASSES)]
    path = write_coco(
        tmp_path / "ann", annotations, images=images, categories=categories, make_images=False
    )
    dataset = load_annotations(path, images_dir=root)
    problems = validate(dataset)
    assert {p.kind for p in problems} <= {"box-outside-image"}  # jitter may pass the border
    assert all(p.severity == "warning" for p in problems)
    plan = plan_cleanup(dataset, find_duplicate_boxes(dataset))
    assert plan.removed_ids == copies
    result = write_cleaned(dataset, plan, tmp_path / "out", dry_run=False)
    assert result.removed == len(copies)
    cleaned = load_annotations(tmp_path / "out" / "instances.json", images_dir=root)
    assert len(cleaned.annotations) == len(annotations) - len(copies)
    assert find_duplicate_boxes(cleaned) == []


def test_size_mismatch_on_a_real_photo(photos, benchdata, tmp_path) -> None:
    path, w, h, orientation = photos[-1]
    dw, dh = displayed(w, h, orientation)
    name = path.relative_to(benchdata / "images").as_posix()
    images = [{"id": 1, "file_name": name, "width": dw + 10, "height": dh}]
    coco = write_coco(tmp_path, [], images=images, make_images=False)
    (problem,) = validate(load_annotations(coco, images_dir=benchdata / "images"))
    assert problem.kind == "image-size-mismatch" and f"is {w}x{h}" in problem.message


def test_yolo_with_real_photos_uses_displayed_sizes(photos, tmp_path) -> None:
    labels, images = tmp_path / "labels", tmp_path / "images"
    labels.mkdir()
    images.mkdir()
    expected = {}
    for n, (path, w, h, orientation) in enumerate(photos[:8]):
        link = images / f"p{n}{path.suffix}"
        os.symlink(path, link)
        size = displayed(w, h, orientation)
        box = (size[0] * 0.1, size[1] * 0.2, size[0] * 0.6, size[1] * 0.9)
        (labels / f"p{n}.txt").write_text(yolo_line(0, box, size) + "\n")
        expected[f"p{n}.txt"] = (box, size)
    dataset = load_annotations(labels)
    assert validate(dataset) == [dataset.problems[0]]  # only "no-class-names"
    for annotation in dataset.annotations:
        box, size = expected[annotation.image]
        assert annotation.box == pytest.approx(box, abs=1e-3 * max(size))
        entry = dataset.images[annotation.image]
        assert (entry.width, entry.height) == size
    assert any(o in ROTATED for _, _, _, o in photos[:8])


def test_object_crops_of_real_photos(photos, benchdata, tmp_path) -> None:
    path, w, h, _ = photos[-2]
    name = path.relative_to(benchdata / "images").as_posix()
    images = [{"id": 1, "file_name": name, "width": w, "height": h}]
    coco = write_coco(
        tmp_path, [ann(1, 1, 1, [w / 4, h / 4, w / 2, h / 2])], images=images, make_images=False
    )
    (crop,) = find_object_crops(load_annotations(coco, images_dir=benchdata / "images"))
    with Image.open(crop.image_path) as image:
        assert image.crop(crop.box).size == (crop.box[2] - crop.box[0], crop.box[3] - crop.box[1])
    assert crop.box[2] - crop.box[0] >= w // 2
