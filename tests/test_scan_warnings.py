"""A scan says when ``--include`` selects nothing, and keeps Pillow's warnings off stderr."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from lookalike.cli import main
from lookalike.decoding import decode_full_pixels, decode_image
from lookalike.testing import make_photo


def _jpeg() -> bytes:
    photo, _ = make_photo(3, size=(160, 120))
    buf = io.BytesIO()
    photo.convert("RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _jpeg_with_corrupt_exif() -> bytes:
    """EXIF whose Make tag points past the end of the file ("Tag data larger than file")."""
    ifd = struct.pack("<H", 2)
    ifd += struct.pack("<HHII", 0x0112, 3, 1, 1) + struct.pack("<HHII", 0x010F, 2, 4000, 9999)
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x00\x00\x00\x00"
    photo, _ = make_photo(4, size=(160, 120))
    buf = io.BytesIO()
    photo.convert("RGB").save(buf, "JPEG", quality=90, exif=b"Exif\x00\x00" + tiff)
    return buf.getvalue()


def _malformed_mpo() -> bytes:
    """A JPEG with an MPF segment whose entries point nowhere ("malformed MPO file")."""
    mpf = b"MPF\x00II*\x00" + struct.pack("<IH", 8, 1) + struct.pack("<HHII", 0xB002, 7, 16, 50)
    mpf += b"\x00" * 20
    data = _jpeg()
    return data[:2] + b"\xff\xe2" + struct.pack(">H", len(mpf) + 2) + mpf + data[2:]


HOSTILE = {"corrupt_exif.jpg": _jpeg_with_corrupt_exif, "malformed.mpo": _malformed_mpo}


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    folder = tmp_path / "hostile"
    folder.mkdir()
    for name, make in HOSTILE.items():
        (folder / name).write_bytes(make())
    (folder / "plain.jpg").write_bytes(_jpeg())
    return folder


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_decoding_files_pillow_warns_about_emits_no_warning(name: str) -> None:
    data = HOSTILE[name]()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Image.open(io.BytesIO(data)) as im:  # Pillow itself does warn about it
            im.getexif()
            im.load()
        assert caught, "the file no longer makes Pillow warn: the test proves nothing"
        caught.clear()
        decoded = decode_image(data)
        decode_full_pixels(data)
    assert decoded.width == 160
    assert [str(w.message) for w in caught] == []


def test_a_quiet_scan_of_files_pillow_warns_about_prints_nothing_on_stderr(hostile, tmp_path):
    code = "from lookalike.cli import main; main()"
    args = ["scan", "-q", str(hostile), "--db", str(tmp_path / "s.db")]
    proc = subprocess.run(
        [sys.executable, "-W", "default", "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "3 images, 0 failures" in proc.stdout


def test_an_include_that_matches_nothing_is_warned_about(hostile, tmp_path) -> None:
    result = CliRunner().invoke(
        main,
        ["scan", "-q", str(hostile), "--db", str(tmp_path / "s.db"),
         "--include", "*.jpg", "--include", "*.JPEG"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "Warning: --include '*.JPEG' selected no file under the scanned folders "
        "(patterns are case-sensitive and relative to each folder)."
    ]
    assert "2 images" in result.stdout


def test_an_include_that_matches_only_unchanged_files_is_not_warned_about(hostile, tmp_path):
    args = ["scan", "-q", str(hostile), "--db", str(tmp_path / "s.db"), "--include", "*.mpo"]
    CliRunner().invoke(main, args)
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and again.stderr == ""


def test_a_quiet_html_report_of_files_pillow_warns_about_prints_nothing_on_stderr(
    hostile, tmp_path
) -> None:
    (hostile / "copy.jpg").write_bytes((hostile / "corrupt_exif.jpg").read_bytes())
    code = "from lookalike.cli import main; main()"
    db = str(tmp_path / "s.db")
    runs = [["scan", "-q", str(hostile), "--db", db], ["report", "-q", "--db", db, "--html",
            str(tmp_path / "html")]]  # fmt: skip
    for args in runs:
        proc = subprocess.run(
            [sys.executable, "-W", "default", "-c", code, *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == "", args[0]
    assert len(list((tmp_path / "html" / "thumbs").iterdir())) == 3
