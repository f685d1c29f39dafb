"""Letterboxed, padded and framed copies: described by the picture inside the bars."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

import lookalike
from lookalike.features import THUMB_PX, make_thumb, trim_bars

_PHOTO = "images/import/roll_37/photo_b889ee.jpg"  # a real photo from the public set


def _letterbox(photo: Image.Image, fill: tuple[int, int, int]) -> Image.Image:
    side = max(photo.size)
    canvas = Image.new("RGB", (side, side), fill)
    canvas.paste(photo, ((side - photo.width) // 2, (side - photo.height) // 2))
    return canvas


def test_bars_are_found_on_the_sides_they_are_and_the_content_keeps_its_size(
    benchdata: Path,
) -> None:
    photo = Image.open(benchdata / _PHOTO).convert("RGB")
    boxed = _letterbox(photo, (114, 114, 114))
    found = trim_bars(make_thumb(np.asarray(boxed.convert("L"))), *boxed.size)
    assert found is not None
    left, top, right, bottom = found.box
    assert (left, right) == (0, THUMB_PX) if photo.width >= photo.height else (top, bottom)
    assert abs(found.size[0] / found.size[1] - photo.width / photo.height) < 0.03
    plain = np.asarray(photo.convert("L"))
    assert trim_bars(make_thumb(plain), *photo.size) is None


def test_letterboxed_and_framed_copies_join_their_original(
    tmp_path: Path, benchdata: Path
) -> None:
    root = tmp_path / "images"
    root.mkdir()
    photo = Image.open(benchdata / _PHOTO).convert("RGB")
    photo.save(root / "original.jpg", quality=92)
    _letterbox(photo, (255, 255, 255)).save(root / "white_bars.jpg", quality=90)
    _letterbox(photo, (0, 0, 0)).transpose(Image.Transpose.ROTATE_90).save(root / "turned.png")
    ImageOps.expand(photo, border=round(0.12 * photo.width), fill=(200, 30, 30)).save(
        root / "framed.jpg", quality=90
    )

    result = lookalike.scan([root], db=tmp_path / "store.db")

    assert len(result.groups) == 1
    group = result.groups[0]
    names = sorted(Path(p).name for p in (group.keeper, *(m.path for m in group.members)))
    assert names == ["framed.jpg", "original.jpg", "turned.png", "white_bars.jpg"]


def test_windows_are_described_like_whole_pictures() -> None:
    from lookalike.features import _windows, describe, describe_many, window_descriptors

    rng = np.random.default_rng(4)
    thumb = cv2_blur(rng.integers(0, 256, (128, 128), dtype=np.uint8))
    many = window_descriptors([thumb, thumb[::-1].copy()])
    assert many.shape == (2, 10, 63)
    one_by_one = np.stack([describe(w) for w in _windows(thumb)])
    np.testing.assert_allclose(many[0], one_by_one, atol=1e-5)
    flat = np.full((32, 32), 90, np.uint8)
    assert not describe_many(flat[None]).any()


def cv2_blur(picture: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(picture, (0, 0), 3)
