"""Crops keeping half the picture: found by looking for one picture inside the other."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

import lookalike

_PHOTO = "images/import/roll_37/photo_b889ee.jpg"  # a real photo from the public set


def _names(result: lookalike.ScanResult) -> list[list[str]]:
    return [
        sorted(Path(p).name for p in (g.keeper, *(m.path for m in g.members)))
        for g in result.groups
    ]


def test_a_crop_keeping_half_the_picture_joins_its_original(
    tmp_path: Path, benchdata: Path
) -> None:
    root = tmp_path / "images"
    root.mkdir()
    photo = Image.open(benchdata / _PHOTO).convert("RGB")
    w, h = photo.size
    photo.save(root / "original.jpg", quality=92)
    box = (round(0.2 * w), round(0.1 * h), round(0.92 * w), round(0.82 * h))  # 52% of the area
    photo.crop(box).save(root / "crop.jpg", quality=90)
    photo.crop(box).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(root / "mirrored_crop.png")

    result = lookalike.scan([root], db=tmp_path / "store.db")

    assert _names(result) == [["crop.jpg", "mirrored_crop.png", "original.jpg"]]
    members = {Path(m.path).name: m for m in result.groups[0].members}
    assert members["mirrored_crop.png"].relation == "mirror"


def test_two_halves_of_one_photo_are_not_duplicates(tmp_path: Path, benchdata: Path) -> None:
    root = tmp_path / "images"
    root.mkdir()
    photo = Image.open(benchdata / _PHOTO).convert("RGB")
    w, h = photo.size
    photo.crop((0, 0, round(0.6 * w), h)).save(root / "left.jpg", quality=92)
    photo.crop((round(0.4 * w), 0, w, h)).save(root / "right.jpg", quality=92)

    result = lookalike.scan([root], db=tmp_path / "store.db")

    assert _names(result) == []


def test_a_corner_crop_among_many_photos_is_proposed_by_the_window_search(
    tmp_path: Path, benchdata: Path
) -> None:
    import json

    truth = json.loads((benchdata / "truth.json").read_text())
    originals = sorted({v["original"] for v in truth["variant_of"].values()})[:24]
    root = tmp_path / "images"
    root.mkdir()
    for k, rel in enumerate(originals):
        Image.open(benchdata / rel).convert("RGB").save(root / f"photo_{k:02d}.jpg", quality=90)
    photo = Image.open(benchdata / originals[5]).convert("RGB")
    w, h = photo.size
    photo.crop((round(0.28 * w), round(0.28 * h), w, h)).save(root / "corner.jpg", quality=90)

    result = lookalike.scan([root], db=tmp_path / "store.db")

    groups = _names(result)
    assert ["corner.jpg", "photo_05.jpg"] in groups
    (pair,) = [p for p in result.pairs if "corner.jpg" in (Path(p.a).name, Path(p.b).name)]
    assert pair.evidence.get("view") == "window"
