"""Lazy cached thumbnails: orientation, odd pixel modes, cache layout, verification."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.errors import DecodeError, FileChangedError, InputNotFoundError
from lookalike.thumbnails import (
    cache_dir_for,
    cached_path,
    difference_image,
    read_verified,
    render_thumbnail,
    thumbnail,
    thumbnail_bytes,
)


def _jpeg(size: tuple[int, int], orientation: int | None = None) -> bytes:
    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    buf = io.BytesIO()
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    img.save(buf, "JPEG", quality=80, exif=exif.tobytes())
    return buf.getvalue()


def _size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as im:
        return im.size


def test_exif_orientation_is_applied() -> None:
    upright = render_thumbnail(_jpeg((400, 200)), 128)
    rotated = render_thumbnail(_jpeg((400, 200), orientation=6), 128)
    assert _size(upright) == (128, 64) and _size(rotated) == (64, 128)


def test_large_jpeg_uses_draft_mode_and_fits_the_box() -> None:
    data = _jpeg((3000, 2000))
    assert _size(render_thumbnail(data, 256)) == (256, 171)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "I;16", "L", "CMYK"])
def test_every_pixel_mode_becomes_an_rgb_jpeg(mode: str) -> None:
    img = Image.new("RGB", (60, 40), (200, 30, 30)).convert(mode)
    buf = io.BytesIO()
    img.save(buf, "TIFF" if mode in ("CMYK",) else "PNG")
    with Image.open(io.BytesIO(render_thumbnail(buf.getvalue(), 128))) as out:
        assert out.format == "JPEG" and out.mode == "RGB" and out.size == (60, 40)


def test_not_an_image_and_too_many_pixels_are_decode_errors() -> None:
    with pytest.raises(DecodeError):
        render_thumbnail(b"not an image", 128)
    with pytest.raises(DecodeError, match="more than the limit"):
        render_thumbnail(_jpeg((300, 300)), 128, max_pixels=1000)


def test_thumbnails_are_cached_by_digest_and_verified(tmp_path: Path) -> None:
    data = _jpeg((300, 200))
    path = tmp_path / "a.jpg"
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    cache = cache_dir_for(tmp_path / "store.db")
    assert cache == tmp_path / "store.db.thumbs"
    made = thumbnail(cache, str(path), digest, 256)
    assert made == cached_path(cache, digest, 256) == cache / digest[:2] / f"{digest}_256.jpg"
    stamp = made.stat().st_mtime_ns
    assert thumbnail(cache, str(path), digest, 256).stat().st_mtime_ns == stamp  # cached
    with pytest.raises(ValueError, match="not offered"):
        thumbnail(cache, str(path), digest, 100)
    path.write_bytes(data + b"changed")
    with pytest.raises(FileChangedError, match="changed since the scan"):
        read_verified(str(path), digest)
    with pytest.raises(InputNotFoundError, match="gone since the scan"):
        read_verified(str(tmp_path / "gone.jpg"), digest)
    assert not list(cache.rglob(".tmp-*"))


def test_a_read_only_cache_still_gives_thumbnails(tmp_path: Path, monkeypatch) -> None:
    import lookalike.thumbnails as thumbs

    def read_only(target: Path, data: bytes) -> None:
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr(thumbs, "_write_atomic", read_only)
    data = _jpeg((300, 200))
    path = tmp_path / "a.jpg"
    path.write_bytes(data)
    thumb = thumbnail_bytes(tmp_path / "cache", str(path), hashlib.sha256(data).hexdigest(), 128)
    assert _size(thumb) == (128, 85)


def test_difference_image_is_black_for_identical_pictures() -> None:
    a = render_thumbnail(_jpeg((120, 80)), 128)
    with Image.open(io.BytesIO(difference_image(a, a))) as diff:
        assert diff.getextrema() == ((0, 0), (0, 0), (0, 0))
