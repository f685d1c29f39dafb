"""Checks on a loaded dataset, one :class:`Problem` per thing wrong.

Problem kinds, and whether the annotation stays in ``dataset.annotations``:

======================  ========  ======  ==================================================
kind                    severity  kept?   meaning
======================  ========  ======  ==================================================
malformed-file          error     no      bad JSON/XML, binary or unreadable file
malformed-line          error     no      YOLO line with a wrong column count or non-numbers
malformed-annotation    error     no      COCO/VOC object without a usable box, id or class
malformed-image         error/w.  --      image entry without id, or without a usable size
malformed-category      warning   --      COCO category without an id
malformed-class-file    warning   --      YOLO names file unreadable or ``nc`` disagreeing
no-class-names          info      --      YOLO set without a names file (classes are numbers)
skipped-file            info      --      a ``.txt`` that lists image paths, copied as is
duplicate-id            error     no      COCO annotation id used twice (second one left out)
duplicate-image-id      error     --      COCO image id used twice (second one left out)
unknown-image           error     no      COCO annotation whose image_id is not in ``images``
missing-image           error     no      YOLO label file whose image is not found
missing-image-file      warning   yes     COCO/VOC image file not found (size not checked)
unreadable-image        error     yes*    image file exists but its header cannot be read
image-size-mismatch     error     yes     declared size differs from the image file's
unknown-class           error     yes     class id not among the dataset's categories
non-finite-box          error     yes     NaN or infinite coordinate
degenerate-box          error     yes     zero or negative width or height
box-outside-image       error/w.  yes     box entirely (error) or partly (warning) outside
======================  ========  ======  ==================================================

(*) For YOLO an unreadable image means its lines cannot be converted: they are left out.
Left-out annotations are still written back unchanged by ``write_cleaned``. Boxes that
are non-finite or degenerate are never paired as duplicates.
"""

from __future__ import annotations

import math
from pathlib import Path

from .imagefiles import read_size
from .records import Annotation, Dataset, ImageEntry, Problem

EDGE_TOLERANCE_PX = 0.5
"""How far (pixels) a box may pass the image border before it counts as outside:
less than half a pixel is rounding, not a labelling mistake."""

_ROTATED = frozenset({5, 6, 7, 8})


def validate(dataset: Dataset, *, check_images: bool = True) -> list[Problem]:
    """Return every problem of ``dataset``: those found while reading, then new checks.

    Args:
        dataset: A dataset from :func:`~lookalike.annotations.load_annotations`.
        check_images: Read each found image's header (never its pixels) to compare its
            size with the declared one (COCO and VOC). Set False to avoid touching images.

    Returns:
        Problems in a stable order: reading problems, image problems (in image order),
        then box problems (in annotation order).

    Example:
        >>> problems = validate(load_annotations("instances.json"))  # doctest: +SKIP
        >>> sorted({p.kind for p in problems})  # doctest: +SKIP
        ['box-outside-image', 'unknown-class']
    """
    problems = list(dataset.problems)
    if check_images and dataset.format != "yolo":
        for entry in dataset.images.values():
            problems.extend(_check_image_file(dataset, entry))
    for ann in dataset.annotations:
        problems.extend(check_annotation(dataset, ann))
    return problems


def check_annotation(dataset: Dataset, ann: Annotation) -> list[Problem]:
    """Problems of one annotation: class, finite coordinates, size, and image bounds."""
    problems = []
    unknown = _unknown_class(dataset, ann)
    if unknown is not None:
        problems.append(unknown)
    shape = _box_shape_problem(ann)
    if shape is not None:
        return [*problems, shape]
    entry = dataset.images.get(ann.image)
    if entry is not None and entry.width and entry.height:
        outside = _outside_problem(ann, entry.width, entry.height)
        if outside is not None:
            problems.append(outside)
    return problems


def _where(ann: Annotation) -> tuple[str, int | str]:
    """``(file, line or id)`` for messages about ``ann``."""
    source = ann.source
    return source.file, source.line if source.line is not None else ann.id


def _name(ann: Annotation) -> str:
    """How messages name an annotation: its id and class."""
    return f"annotation {ann.id!r} ({ann.label})"


def _unknown_class(dataset: Dataset, ann: Annotation) -> Problem | None:
    """Problem when the class id is not among the dataset's categories."""
    if dataset.format == "voc" or (dataset.format == "yolo" and not dataset.categories):
        return None
    if ann.category in dataset.categories:
        return None
    known = sorted(dataset.categories, key=str)
    shown = ", ".join(str(k) for k in known[:10]) + (" ..." if len(known) > 10 else "")
    if dataset.format == "coco":
        what = f"category_id {ann.category!r}, which is not in 'categories' ({shown or 'empty'})"
        fix = "Add the category or correct the id."
    else:
        what = f"class id {ann.category!r}, but the names file lists {len(known)} classes"
        fix = "Add the class name or correct the id."
    file, at = _where(ann)
    return Problem("unknown-class", file, at, f"{_name(ann)} uses {what}. {fix}")


def _box_shape_problem(ann: Annotation) -> Problem | None:
    """Problem for NaN/infinite coordinates or a zero/negative width or height."""
    file, at = _where(ann)
    x0, y0, x1, y1 = ann.box
    if not all(math.isfinite(v) for v in ann.box):
        message = (
            f"{_name(ann)} has a non-finite coordinate in {_fmt(ann.box)}; it is never "
            "matched as a duplicate. Fix or delete it."
        )
        return Problem("non-finite-box", file, at, message)
    width, height = x1 - x0, y1 - y0
    if width > 0 and height > 0:
        return None
    sizes = f"width {width:g}, height {height:g}"
    message = (
        f"{_name(ann)} has an empty box {_fmt(ann.box)} ({sizes}); it is never matched as "
        "a duplicate. Redraw or delete it."
    )
    return Problem("degenerate-box", file, at, message)


def _outside_problem(ann: Annotation, width: int, height: int) -> Problem | None:
    """Problem when the box lies partly or entirely outside a ``width`` x ``height`` image."""
    x0, y0, x1, y1 = ann.box
    tol = EDGE_TOLERANCE_PX
    file, at = _where(ann)
    if x1 <= tol or y1 <= tol or x0 >= width - tol or y0 >= height - tol:
        message = (
            f"{_name(ann)} box {_fmt(ann.box)} lies entirely outside the {width}x{height} "
            "image. Fix the coordinates or delete it."
        )
        return Problem("box-outside-image", file, at, message)
    overshoot = {"left": -x0, "top": -y0, "right": x1 - width, "bottom": y1 - height}
    sides = [f"{side} by {px:g} px" for side, px in overshoot.items() if px > tol]
    if not sides:
        return None
    message = (
        f"{_name(ann)} box {_fmt(ann.box)} extends past the {width}x{height} image "
        f"({', '.join(sides)}). Clip it to the image or fix the coordinates."
    )
    return Problem("box-outside-image", file, at, message, "warning")


def _check_image_file(dataset: Dataset, entry: ImageEntry) -> list[Problem]:
    """Compare the declared size of one image with its file header."""
    if entry.path is None or entry.width is None or entry.height is None:
        return []
    file, at = _declared_in(dataset, entry)
    try:
        width, height, orientation = read_size(entry.path)
    except OSError as exc:
        message = (
            f"image {entry.name or entry.key!r}: cannot read the header of '{entry.path}' "
            f"({exc}); its size is not checked. Replace the file."
        )
        return [Problem("unreadable-image", file, at, message)]
    declared = (entry.width, entry.height)
    rotated = orientation in _ROTATED and declared == (height, width)
    if declared == (width, height) or rotated:
        return []
    message = (
        f"image {entry.name or entry.key!r} is declared {entry.width}x{entry.height} but "
        f"'{entry.path}' is {width}x{height}{_exif_note(orientation)}; boxes may be "
        "scaled wrongly. Fix the size or re-export the annotations for this image."
    )
    return [Problem("image-size-mismatch", file, at, message)]


def _declared_in(dataset: Dataset, entry: ImageEntry) -> tuple[str, int | str | None]:
    """``(annotation file, line_or_id)`` where the image's size is declared."""
    root = dataset.raw.root
    if dataset.format == "coco":
        return str(root / dataset.raw.annotation_files[0]), entry.key
    return str(root / Path(str(entry.key))), None


def _exif_note(orientation: int) -> str:
    """Explain an EXIF rotation when it may be the cause of a mismatch."""
    if orientation in _ROTATED:
        return f" (EXIF orientation {orientation}: shown rotated by 90 degrees)"
    return ""


def _fmt(box: tuple[float, float, float, float]) -> str:
    """Format a box as ``[x0, y0, x1, y1]`` with short numbers."""
    return "[" + ", ".join(f"{v:g}" for v in box) + "]"
