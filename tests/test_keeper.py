"""The keeper of a group carries the fullest picture: pixels, then richness, then lossless."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import lookalike
from lookalike.decoding import decode_image
from lookalike.grouping import FileInfo, KeeperPolicy
from lookalike.testing import make_photo


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    img, _ = make_photo(5, size=(640, 480))
    return img.convert("RGB")


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _copies(photo: Image.Image, folder: Path, poorer: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True)
    for q in (95, 90, 85):
        (folder / f"copy_q{q}.jpg").write_bytes(_encode(photo, "JPEG", quality=q))
    for name, data in poorer.items():
        (folder / name).write_bytes(data)
    return folder


def _keeper_of(result: lookalike.ScanResult) -> str:  # type: ignore[name-defined]
    assert len(result.groups) == 1, result.groups
    return Path(result.groups[0].keeper).name


def test_a_one_bit_dithered_tiff_does_not_keep_over_full_colour_jpegs(photo, tmp_path) -> None:
    folder = _copies(photo, tmp_path / "d", {"dither.tif": _encode(photo.convert("1"), "TIFF")})
    result = lookalike.scan([folder], db=tmp_path / "s.db", engine="serial")
    assert _keeper_of(result) == "copy_q95.jpg"
    assert "dither.tif" in {Path(m.path).name for m in result.groups[0].members}


def test_grayscale_and_few_colour_copies_do_not_keep_over_colour_jpegs(photo, tmp_path) -> None:
    poorer = {
        "gray.png": _encode(photo.convert("L"), "PNG"),
        "gray_as_rgb.png": _encode(photo.convert("L").convert("RGB"), "PNG"),
        "eight_colours.png": _encode(photo.quantize(8), "PNG"),
    }
    folder = _copies(photo, tmp_path / "d", poorer)
    result = lookalike.scan([folder], db=tmp_path / "s.db", engine="serial")
    assert _keeper_of(result) == "copy_q95.jpg"


def test_a_lossless_colour_copy_still_keeps_over_lossy_colour_copies(photo, tmp_path) -> None:
    folder = _copies(photo, tmp_path / "d", {"master.png": _encode(photo, "PNG")})
    result = lookalike.scan([folder], db=tmp_path / "s.db", engine="serial")
    assert _keeper_of(result) == "master.png"


def test_richness_ranks_colour_over_gray_over_few_colours_then_bits(photo) -> None:
    gray16 = Image.fromarray(np.asarray(photo.convert("L"), dtype=np.uint16) * 257)
    ranks = {
        name: decode_image(data).richness
        for name, data in {
            "colour jpeg": _encode(photo, "JPEG", quality=80),
            "colour png": _encode(photo, "PNG"),
            "256-colour gif": _encode(photo.quantize(256), "GIF"),
            "gray jpeg": _encode(photo.convert("L"), "JPEG"),
            "gray16 png": _encode(gray16, "PNG"),
            "gray png": _encode(photo.convert("L"), "PNG"),
            "gray as rgb png": _encode(photo.convert("L").convert("RGB"), "PNG"),
            "16 colours png": _encode(photo.quantize(16), "PNG"),
            "1-bit tiff": _encode(photo.convert("1"), "TIFF"),
        }.items()
    }
    assert ranks["colour jpeg"] == ranks["colour png"] == ranks["256-colour gif"]
    assert ranks["colour png"] > ranks["gray16 png"] > ranks["gray png"]
    assert ranks["gray png"] == ranks["gray jpeg"] == ranks["gray as rgb png"]
    assert ranks["gray png"] > ranks["16 colours png"] > ranks["1-bit tiff"] > 0


def test_pixels_still_come_before_richness() -> None:
    def info(path: str, pixels: int, richness: int, lossless: bool) -> FileInfo:
        return FileInfo(path, "/r", path, 1000, pixels, 1, lossless, richness=richness)

    policy = KeeperPolicy()
    small_colour = info("/r/colour.jpg", 100, 208, False)
    big_gray = info("/r/gray.jpg", 200, 108, False)
    bilevel = info("/r/bilevel.tif", 100, 1, True)
    ranked = sorted([bilevel, small_colour, big_gray], key=policy.sort_key)
    assert [f.path for f in ranked] == ["/r/gray.jpg", "/r/colour.jpg", "/r/bilevel.tif"]
    assert policy.rules.index("richness") == policy.rules.index("pixels") + 1
    assert policy.rules.index("richness") < policy.rules.index("lossless")


def test_a_store_written_before_richness_is_filled_in_and_keeps_the_colour_copy(
    photo, tmp_path
) -> None:
    folder = _copies(photo, tmp_path / "d", {"dither.tif": _encode(photo.convert("1"), "TIFF")})
    db = tmp_path / "s.db"
    lookalike.scan([folder], db=db, engine="serial")
    conn = sqlite3.connect(db)  # as lookalike before richness left it (schema 1)
    conn.execute("ALTER TABLE images DROP COLUMN richness")
    conn.execute("DELETE FROM meta")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    result = lookalike.scan([folder], db=db, engine="serial")
    assert result.stats["files_extracted"] == 0
    assert _keeper_of(result) == "copy_q95.jpg"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM images WHERE richness IS NULL").fetchone() == (0,)
