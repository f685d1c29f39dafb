"""Choosing the reader: format detection from a path, and :func:`load_annotations`.

Detection rules (``format="auto"``):

* a ``.json`` file is COCO, a ``.xml`` file is VOC, a ``.txt`` file is one YOLO label file;
* a folder holding ``.xml`` files (at any depth) is VOC, else one holding ``.txt`` files
  is YOLO. VOC wins because VOC devkits also ship ``ImageSets/*.txt`` lists.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import AnnotationFormatError, ConfigError, InputNotFoundError
from .coco import read_coco
from .records import FORMATS, Dataset, Format
from .voc import read_voc
from .yolo import read_yolo

_BY_SUFFIX: dict[str, Format] = {".json": "coco", ".xml": "voc", ".txt": "yolo"}


def detect_format(path: str | os.PathLike[str]) -> Format:
    """Guess the annotation format of ``path``.

    Args:
        path: A COCO JSON file, a VOC or YOLO folder, or a single VOC/YOLO file.

    Returns:
        ``"coco"``, ``"yolo"`` or ``"voc"``.

    Raises:
        InputNotFoundError: ``path`` does not exist.
        AnnotationFormatError: Nothing in ``path`` looks like annotations.

    Example:
        >>> detect_format("annotations/instances_val.json")  # doctest: +SKIP
        'coco'
    """
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(
            f"Annotation path '{path}' does not exist. Pass a COCO .json file, or a folder of "
            "YOLO .txt or VOC .xml files."
        )
    if path.is_file():
        return _format_of_file(path)
    suffixes = _suffixes_under(path)
    if ".xml" in suffixes:
        return "voc"
    if ".txt" in suffixes:
        return "yolo"
    hint = " To read COCO, pass the .json file itself." if ".json" in suffixes else ""
    raise AnnotationFormatError(
        f"No annotation files (.xml for VOC, .txt for YOLO) under '{path}'.{hint}",
        path=str(path),
    )


def _format_of_file(path: Path) -> Format:
    """Format of a single file, from its extension."""
    found = _BY_SUFFIX.get(path.suffix.lower())
    if found is None:
        raise AnnotationFormatError(
            f"Cannot tell the annotation format of '{path}' from its extension "
            f"{path.suffix!r}. Pass format='coco', 'yolo' or 'voc' (CLI: --format).",
            path=str(path),
        )
    return found


def _suffixes_under(folder: Path) -> set[str]:
    """Lower-case extensions of the non-hidden files under ``folder``."""
    found: set[str] = set()
    for _dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.update(os.path.splitext(name)[1].lower() for name in filenames)
        if ".xml" in found:
            break
    return found


def load_annotations(
    path: str | os.PathLike[str],
    *,
    images_dir: str | os.PathLike[str] | None = None,
    format: str = "auto",
) -> Dataset:
    """Load COCO, YOLO or Pascal VOC annotations into a :class:`Dataset`.

    Args:
        path: A COCO instances ``.json`` file, a folder of YOLO ``.txt`` label files (or
            the dataset root above ``labels/``), or a folder of VOC ``.xml`` files.
        images_dir: Where the images are, when not in the usual place for the format.
        format: ``"auto"`` (detect from ``path``), ``"coco"``, ``"yolo"`` or ``"voc"``.

    Returns:
        The dataset. Entries that could not be used are listed in ``dataset.problems``
        and are still written back unchanged by :func:`write_cleaned`.

    Raises:
        InputNotFoundError: ``path`` or ``images_dir`` does not exist.
        ConfigError: ``format`` is not one of the choices, or does not fit ``path``.
        AnnotationFormatError: Nothing at all could be read from ``path``.

    Example:
        >>> dataset = load_annotations("annotations/instances_val.json")  # doctest: +SKIP
        >>> len(dataset.annotations)  # doctest: +SKIP
        36781
    """
    target = Path(path)
    chosen = _choose_format(target, format)
    images = _images_dir(images_dir)
    if chosen == "coco":
        if target.is_dir():
            raise ConfigError(
                f"format='coco' needs the instances .json file, but '{target}' is a folder. "
                "Pass the JSON file itself."
            )
        return read_coco(target, images_dir=images)
    if chosen == "yolo":
        return read_yolo(target, images_dir=images)
    return read_voc(target, images_dir=images)


def _choose_format(path: Path, format: str) -> Format:
    """Validate ``format`` and resolve ``"auto"``."""
    if format not in ("auto", *FORMATS):
        choices = ", ".join(repr(f) for f in ("auto", *FORMATS))
        raise ConfigError(f"Unknown annotation format {format!r}; choose one of {choices}.")
    if not path.exists():
        detect_format(path)  # raises InputNotFoundError with the standard message
    if format == "auto":
        return detect_format(path)
    implied = _BY_SUFFIX.get(path.suffix.lower()) if path.is_file() else None
    if implied is not None and implied != format:
        raise ConfigError(
            f"format={format!r} does not fit '{path}', which is a {path.suffix} file "
            f"({implied} annotations). Pass format={implied!r} or 'auto'."
        )
    return format  # type: ignore[return-value]


def _images_dir(images_dir: str | os.PathLike[str] | None) -> Path | None:
    """Check that an explicit image folder exists."""
    if images_dir is None:
        return None
    folder = Path(images_dir)
    if not folder.is_dir():
        raise InputNotFoundError(
            f"Image folder '{folder}' does not exist or is not a folder. Pass the folder "
            "that holds the images (CLI: --images DIR)."
        )
    return folder
