"""Hooks for the image engine: object crops, and conflicts between near-duplicate images.

The core engine finds near-duplicate *images*; it can then

* call :func:`find_object_crops` to get every annotated object as a crop box of its
  image, compute image features on the crops and match objects across images, and
* call :func:`cross_image_conflicts` with the near-duplicate image pairs it found, to
  learn where the annotations of two copies of the same picture disagree.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from typing import Literal

import numpy as np

from ..errors import ConfigError
from .geometry import iou_matrix, valid_boxes
from .records import Annotation, Box, Conflict, Dataset, ImageEntry, ImageKey, ObjectCrop

MATCH_IOU = 0.5
"""IoU at which a box of one image counts as present in its near-duplicate (the PASCAL
VOC detection criterion)."""


def find_object_crops(dataset: Dataset) -> list[ObjectCrop]:
    """Every annotated object whose image is on disk, as an integer crop box.

    Boxes are rounded outwards to whole pixels and clipped to the image when its size is
    known. Annotations without an image file, with an invalid box, or with nothing left
    after clipping are not returned; :func:`~lookalike.annotations.validate` reports
    each of them (``missing-image-file``, ``degenerate-box``, ``box-outside-image``...).

    Returns:
        ``(annotation, image_path, (left, top, right, bottom))`` in reading order.

    Example:
        >>> from PIL import Image  # doctest: +SKIP
        >>> ann, path, box = find_object_crops(dataset)[0]  # doctest: +SKIP
        >>> crop = Image.open(path).crop(box)  # doctest: +SKIP
    """
    crops = []
    for ann in dataset.annotations:
        entry = dataset.images.get(ann.image)
        if entry is None or entry.path is None:
            continue
        box = _crop_box(ann.box, entry)
        if box is not None:
            crops.append(ObjectCrop(ann, entry.path, box))
    return crops


def _crop_box(box: tuple[float, ...], entry: ImageEntry) -> tuple[int, int, int, int] | None:
    """Round ``box`` outwards and clip it to the image; None when nothing remains."""
    if not all(math.isfinite(v) for v in box):
        return None
    left, top = math.floor(box[0]), math.floor(box[1])
    right, bottom = math.ceil(box[2]), math.ceil(box[3])
    left, top = max(left, 0), max(top, 0)
    if entry.width is not None and entry.height is not None:
        right, bottom = min(right, entry.width), min(bottom, entry.height)
    if right <= left or bottom <= top:
        return None
    return (left, top, right, bottom)


def cross_image_conflicts(
    dataset: Dataset,
    image_pairs: Sequence[tuple[str, str]],
    *,
    iou: float = MATCH_IOU,
    unknown: Literal["raise", "skip"] = "raise",
    mirrored: Collection[tuple[str, str]] = (),
) -> list[Conflict]:
    """Compare the annotations of images known to be near-duplicates of each other.

    For each pair ``(A, B)``, B's boxes are scaled by the ratio of the two images' sizes
    (when both are known; otherwise the images are assumed to be the same size), and
    mirrored left to right when the pair is in ``mirrored``. A box of A is ``missing`` in
    B when B has no box of the same class with IoU >= ``iou``; it is a ``label-mismatch``
    when B's best box with IoU >= ``iou`` has another class. The same is done from B to
    A; a mismatch is reported once per pair of boxes. Each conflict carries
    ``expected_box``, the box mapped into the other image.

    Pairs related by a crop or a rotation are not pixel-aligned: leave them out (their
    boxes would be compared at the wrong place).

    Args:
        dataset: The loaded dataset.
        image_pairs: Pairs of image paths (as found on disk), image names as written in
            the annotations, or image keys.
        iou: Minimum IoU for two boxes to be the same object.
        unknown: What to do with a path that is not an image of the dataset: ``"raise"``
            (default) or ``"skip"`` the pair.
        mirrored: Pairs (as given in ``image_pairs``) whose second image is the first
            mirrored left to right.

    Returns:
        Conflicts, pair by pair, A's boxes first, in reading order.

    Raises:
        ConfigError: ``iou`` is outside ``(0, 1]``, an image is unknown and ``unknown``
            is ``"raise"``, or a mirrored pair has an image of unknown width.

    Example:
        >>> conflicts = cross_image_conflicts(dataset, [("a.jpg", "a_copy.jpg")])  # doctest: +SKIP
        >>> [(c.reason, c.annotation.label) for c in conflicts]  # doctest: +SKIP
        [('missing', 'dog')]
    """
    if not 0.0 < iou <= 1.0:
        raise ConfigError(f"iou is {iou!r}; it must be in (0, 1], e.g. {MATCH_IOU}.")
    if unknown not in ("raise", "skip"):
        raise ConfigError(f"unknown={unknown!r}; choose 'raise' or 'skip'.")
    resolve = image_resolver(dataset)
    boxes = _boxes_by_image(dataset)
    flips = set(mirrored)
    conflicts: list[Conflict] = []
    for first, second in image_pairs:
        key_a, key_b = resolve(first), resolve(second)
        if key_a is None or key_b is None:
            if unknown == "raise":
                _raise_unknown(first if key_a is None else second)
            continue
        mirror = (first, second) in flips
        conflicts.extend(_compare(dataset, boxes, (first, second), (key_a, key_b), iou, mirror))
    return conflicts


def image_resolver(dataset: Dataset) -> Callable[[str], ImageKey | None]:
    """A function from an image path, real path, name or key to its image key (or None).

    Example:
        >>> key_of = image_resolver(dataset)  # doctest: +SKIP
        >>> key_of("/data/images/a.jpg")  # doctest: +SKIP
        1
    """
    lookup = _image_lookup(dataset)
    return lambda name: _resolve(lookup, name)


def map_box(box: Box, source: ImageEntry, target: ImageEntry, *, mirror: bool = False) -> Box:
    """Map a box of ``source`` into the pixels of its near-duplicate ``target``.

    The box is scaled by the ratio of the image sizes (unscaled when a size is unknown)
    and, with ``mirror``, mirrored left to right across ``target``'s width.

    Raises:
        ConfigError: ``mirror`` is asked and the width of ``target`` is unknown.
    """
    sx = sy = 1.0
    if source.width and source.height and target.width and target.height:
        sx, sy = target.width / source.width, target.height / source.height
    x0, y0, x1, y1 = box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy
    if not mirror:
        return (x0, y0, x1, y1)
    if not target.width:
        raise ConfigError(
            f"Cannot mirror boxes into image {target.name or target.key!r}: its width is "
            "unknown. Declare the image size in the annotations or make the file readable."
        )
    return (target.width - x1, y0, target.width - x0, y1)


def _image_lookup(dataset: Dataset) -> dict[str, ImageKey]:
    """Every way an image may be named -> its key (path, real path, name, key)."""
    lookup: dict[str, ImageKey] = {}
    for key, entry in dataset.images.items():
        lookup.setdefault(str(key), key)
        if entry.name:
            lookup.setdefault(entry.name, key)
        if entry.path is not None:
            lookup[entry.path] = key
            lookup[os.path.realpath(entry.path)] = key
    return lookup


def _resolve(lookup: dict[str, ImageKey], name: str) -> ImageKey | None:
    """Key of the image called ``name``, trying the name then its real path."""
    text = os.fspath(name)
    if text in lookup:
        return lookup[text]
    return lookup.get(os.path.realpath(text))


def _raise_unknown(name: str) -> None:
    """Raise ConfigError for an image path the dataset does not annotate."""
    raise ConfigError(
        f"Image {name!r} is not an image of this annotation set (not found by path, name "
        "or key). Pass only annotated images, or unknown='skip' to ignore such pairs."
    )


def _boxes_by_image(dataset: Dataset) -> dict[ImageKey, list[Annotation]]:
    """Annotations with valid boxes, grouped by image, in reading order."""
    grouped: dict[ImageKey, list[Annotation]] = {}
    if not dataset.annotations:
        return grouped
    boxes = np.array([a.box for a in dataset.annotations], dtype=np.float64)
    for ann, ok in zip(dataset.annotations, valid_boxes(boxes).tolist(), strict=True):
        if ok:
            grouped.setdefault(ann.image, []).append(ann)
    return grouped


def _compare(
    dataset: Dataset,
    boxes: dict[ImageKey, list[Annotation]],
    names: tuple[str, str],
    keys: tuple[ImageKey, ImageKey],
    iou: float,
    mirror: bool,
) -> list[Conflict]:
    """Conflicts between the two images of one pair, both directions."""
    a, b = boxes.get(keys[0], []), boxes.get(keys[1], [])
    entry_a, entry_b = dataset.images[keys[0]], dataset.images[keys[1]]
    mapped_b = [map_box(ann.box, entry_b, entry_a, mirror=mirror) for ann in b]
    matrix = iou_matrix(_array(a), np.array(mapped_b, dtype=np.float64).reshape(-1, 4))
    forward = _one_way(a, b, matrix, names, iou)
    forward = [_expect(c, entry_a, entry_b, mirror) for c in forward]
    reported = {(c.annotation.id, c.counterpart.id) for c in forward if c.counterpart}
    backward = _one_way(b, a, matrix.T, (names[1], names[0]), iou)
    backward = [_expect(c, entry_b, entry_a, mirror) for c in backward if _is_new(c, reported)]
    return forward + backward


def _expect(conflict: Conflict, mine: ImageEntry, theirs: ImageEntry, mirror: bool) -> Conflict:
    """``conflict`` with ``expected_box``: its box mapped into the other image."""
    expected = map_box(conflict.annotation.box, mine, theirs, mirror=mirror)
    return replace(conflict, expected_box=expected)


def _is_new(conflict: Conflict, reported: set[tuple[int | str, int | str]]) -> bool:
    """False for a B-side label mismatch already reported from A's side."""
    if conflict.reason == "missing" or conflict.counterpart is None:
        return True
    return (conflict.counterpart.id, conflict.annotation.id) not in reported


def _array(annotations: list[Annotation]) -> np.ndarray:
    """``(n, 4)`` box array of ``annotations``."""
    return np.array([a.box for a in annotations], dtype=np.float64).reshape(-1, 4)


def _one_way(
    mine: list[Annotation],
    theirs: list[Annotation],
    matrix: np.ndarray,
    names: tuple[str, str],
    iou: float,
) -> list[Conflict]:
    """Boxes of ``mine`` that ``theirs`` lacks or labels differently."""
    conflicts = []
    for n, ann in enumerate(mine):
        row = matrix[n] if len(theirs) else np.zeros(0)
        same = [row[k] for k, other in enumerate(theirs) if other.category == ann.category]
        if same and max(same) >= iou:
            continue
        best = int(np.argmax(row)) if len(row) else -1
        counterpart = theirs[best] if best >= 0 and row[best] > 0 else None
        score = float(row[best]) if counterpart is not None else 0.0
        reason: Literal["missing", "label-mismatch"] = (
            "label-mismatch" if score >= iou else "missing"
        )
        conflicts.append(
            Conflict("cross-image-conflict", reason, names[0], names[1], ann, counterpart, score)
        )
    return conflicts
