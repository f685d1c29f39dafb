"""Finding the image file an annotation refers to, and reading its size from the header.

Sizes come from ``PIL.Image.open(path).size``, which parses the header only; pixels are
never decoded. An :class:`ImageLocator` lists each directory once per load, so finding
the image of every label file costs one ``listdir`` per folder, not a ``stat`` per guess.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".jfif", ".dng",
)  # fmt: skip
"""Extensions tried (case-insensitively) when looking for the image of a label file."""

_ORIENTATION_TAG = 0x0112


class ImageLocator:
    """Look up image files by stem or name, listing each directory once per load."""

    def __init__(self) -> None:
        """Start with no directory listed."""
        self._listings: dict[str, dict[str, str]] = {}
        self._names: dict[str, frozenset[str]] = {}

    def find_by_stem(self, directories: list[Path], stem: str) -> Path | None:
        """Return the first image named ``stem`` + an image extension in ``directories``."""
        for directory in directories:
            name = self._stems_in(directory).get(stem)
            if name is not None:
                return directory / name
        return None

    def find_by_name(self, directories: list[Path], name: str) -> Path | None:
        """Return the first existing ``directory / name``; ``name`` may contain folders."""
        for directory in directories:
            candidate = directory / name
            key = str(candidate.parent)
            if key not in self._names:
                self._names[key] = _list_names(candidate.parent)
            if candidate.name in self._names[key]:
                return candidate
        return None

    def _stems_in(self, directory: Path) -> dict[str, str]:
        """Map ``stem`` -> file name of the images in ``directory`` (sorted, first wins)."""
        key = str(directory)
        if key not in self._listings:
            self._listings[key] = _list_images(directory)
        return self._listings[key]


def _list_names(directory: Path) -> frozenset[str]:
    """Return the names of the regular files in ``directory``; empty if it cannot be listed."""
    try:
        with os.scandir(directory) as entries:
            return frozenset(e.name for e in entries if e.is_file())
    except OSError:
        return frozenset()


def _list_images(directory: Path) -> dict[str, str]:
    """List the image files of one directory by stem; empty when it cannot be listed."""
    stems: dict[str, str] = {}
    for name in sorted(_list_names(directory)):
        stem, ext = os.path.splitext(name)
        if ext.lower() in IMAGE_EXTENSIONS:
            stems.setdefault(stem, name)
    return stems


def read_size(path: str | Path) -> tuple[int, int, int]:
    """Read ``(width, height, exif_orientation)`` of an image from its header.

    Args:
        path: The image file.

    Returns:
        Width and height as stored (before any EXIF rotation), and the EXIF orientation
        tag (1 when absent).

    Raises:
        OSError: The file cannot be opened or is not an image Pillow can identify.
    """
    with warnings.catch_warnings():
        # Only the header is read, so a huge pixel count is not a decompression risk here.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as image:
                width, height = image.size
                orientation = _orientation(image)
        except (UnidentifiedImageError, Image.DecompressionBombError, ValueError) as exc:
            raise OSError(str(exc)) from exc
    return int(width), int(height), orientation


def _orientation(image: Image.Image) -> int:
    """EXIF orientation tag found in the header, 1 when absent or unreadable.

    Only EXIF already parsed with the header is used (JPEG/WebP ``APP1``, PNG ``eXIf``
    before the pixels, TIFF tags): ``Image.getexif()`` would read a PNG to its end.
    """
    try:
        if image.format == "TIFF":
            value = image.getexif().get(_ORIENTATION_TAG, 1)
        elif "exif" in image.info:
            exif = Image.Exif()
            exif.load(image.info["exif"])
            value = exif.get(_ORIENTATION_TAG, 1)
        else:
            return 1
    except (OSError, ValueError, SyntaxError, TypeError):
        return 1
    return value if isinstance(value, int) else 1
