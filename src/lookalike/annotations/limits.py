"""Limits that keep hostile annotation input from exhausting memory, stack or time.

Real label files are small: a YOLO ``.txt`` or VOC ``.xml`` holds one image's boxes (a few
KB; a very crowded image a few MB), a class list a few hundred names. Anything far beyond
that is not a label file, and reading it whole only risks memory. COCO files have no size
limit (a big dataset is one big file); their nesting depth is bounded by the parser.
"""

from __future__ import annotations

from pathlib import Path

MAX_LABEL_FILE_BYTES = 64 * 2**20
"""Largest YOLO label, VOC XML or class-name file read (64 MiB)."""

MAX_XML_DEPTH = 64
"""Deepest element nesting accepted in a VOC file (VOC itself needs 4 levels)."""


class FileTooLargeError(ValueError):
    """A label file is larger than :data:`MAX_LABEL_FILE_BYTES`."""


def read_label_file(path: Path) -> bytes:
    """Read a label file, refusing one larger than :data:`MAX_LABEL_FILE_BYTES`.

    Raises:
        OSError: The file cannot be read.
        FileTooLargeError: The file is larger than the limit (it is not read).
    """
    size = path.stat().st_size
    if size > MAX_LABEL_FILE_BYTES:
        raise FileTooLargeError(
            f"the file is too large for a label file ({size:,} bytes; the limit is "
            f"{MAX_LABEL_FILE_BYTES:,}); it is not read. Remove it from the folder"
        )
    return path.read_bytes()
