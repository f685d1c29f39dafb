"""Annotated objects as pictures: decode each image once, cut out every box, feature it.

A crop gets exactly the features of a whole image (:func:`lookalike.features.compute_features`:
a 128 px verification thumbnail, a DCT descriptor, a pHash), so the same object found in
several boxes can be searched and verified like duplicate images.

Resolution: the image is decoded once, upright (EXIF orientation applied, as annotation
tools show it), at the smallest JPEG draft scale that still gives the smallest box of the
image at least ``crop_px`` pixels on its short side. Boxes are in the annotations' pixels;
they are scaled to the decoded picture by the ratio of its size to the image size. Boxes
whose short side is under ``min_box_px`` even at full resolution are left out as
``box-too-small``; every annotation ends up featured or in a :class:`CropSkip` with its
reason.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from ..decoding import DEFAULT_MAX_PIXELS, decode_image
from ..errors import ConfigError, DecodeError
from ..features import Features, compute_features, describe
from .crossimage import find_object_crops
from .records import Annotation, CropSkip, Dataset, ImageEntry, ObjectCrop

MIN_BOX_PX = 32
"""Smallest short side (full-resolution pixels) of a box worth comparing."""
CROP_PX = 32
"""Pixels the smallest compared box gets on its short side in the decoded picture."""
_SIZE_TOLERANCE = 0.02  # relative aspect difference between declared and decoded size
CENTRE_MARGIN = 16
"""Thumbnail pixels (of 128) left out on each side by :func:`centre_descriptor`."""
_FLAT = "the box holds a uniform patch"
_PLAIN = "the middle of the box is uniform: a plain shape, too little detail to tell apart"


@dataclass(frozen=True)
class CropFeatures:
    """One featured crop.

    Attributes:
        annotation: The annotation.
        image: Its image file.
        box: Crop box in integer pixels of the upright image (``left, top, right, bottom``).
        features: Features of the crop, as for a whole image.
        centre: :func:`centre_descriptor` of the crop.
    """

    annotation: Annotation
    image: str
    box: tuple[int, int, int, int]
    features: Features
    centre: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the box in image pixels."""
        return (self.box[2] - self.box[0], self.box[3] - self.box[1])


@dataclass(frozen=True)
class CropSet:
    """Every annotation of a dataset, featured or skipped (reading order within each)."""

    featured: tuple[CropFeatures, ...]
    skipped: tuple[CropSkip, ...]


def feature_crops(
    dataset: Dataset,
    *,
    min_box_px: int = MIN_BOX_PX,
    crop_px: int = CROP_PX,
    workers: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> CropSet:
    """Compute image features for the crop of every annotated object.

    Args:
        dataset: The loaded annotations.
        min_box_px: Boxes with a shorter side (full-resolution pixels) are skipped.
        crop_px: Short side the smallest kept box gets in the decoded picture.
        workers: Threads decoding images (default: up to 4, at most the CPU count).
        max_pixels: Refuse to decode images with more pixels (decompression bombs).

    Returns:
        The featured crops and the skipped annotations with their reasons; every
        annotation of the dataset is in exactly one of the two.

    Raises:
        ConfigError: ``min_box_px`` or ``crop_px`` is below 8.

    Example:
        >>> crops = feature_crops(load_annotations("instances.json"))  # doctest: +SKIP
        >>> len(crops.featured), {s.reason for s in crops.skipped}  # doctest: +SKIP
        (812, {'box-too-small'})
    """
    if min_box_px < 8 or crop_px < 8:
        raise ConfigError(
            f"min_box_px={min_box_px!r} and crop_px={crop_px!r} must both be at least 8 pixels."
        )
    by_image: dict[str, list[ObjectCrop]] = {}
    for crop in find_object_crops(dataset):
        by_image.setdefault(crop.image_path, []).append(crop)
    skipped = _uncroppable(dataset, by_image)
    jobs = [
        (path, dataset.images[crops[0].annotation.image], crops) for path, crops in by_image.items()
    ]

    def run(
        job: tuple[str, ImageEntry, list[ObjectCrop]],
    ) -> tuple[list[CropFeatures], list[CropSkip]]:
        return _image_crops(*job, min_box_px=min_box_px, crop_px=crop_px, max_pixels=max_pixels)

    featured: list[CropFeatures] = []
    threads = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for done, skips in pool.map(run, jobs):
            featured.extend(done)
            skipped.extend(skips)
    order = {ann.id: n for n, ann in enumerate(dataset.annotations)}
    featured.sort(key=lambda c: order[c.annotation.id])
    skipped.sort(key=lambda s: order[s.annotation.id])
    return CropSet(tuple(featured), tuple(skipped))


def _uncroppable(dataset: Dataset, by_image: dict[str, list[ObjectCrop]]) -> list[CropSkip]:
    """Annotations :func:`find_object_crops` leaves out: no image file, or an invalid box."""
    kept = {c.annotation.id for crops in by_image.values() for c in crops}
    out = []
    for ann in dataset.annotations:
        if ann.id in kept:
            continue
        entry = dataset.images.get(ann.image)
        if entry is None or entry.path is None:
            out.append(CropSkip(ann, "", "missing-image-file", "the image file was not found"))
        else:
            out.append(CropSkip(ann, entry.path, "invalid-box", f"box {list(ann.box)} is empty"))
    return out


def _image_crops(
    path: str,
    entry: ImageEntry,
    crops: list[ObjectCrop],
    *,
    min_box_px: int,
    crop_px: int,
    max_pixels: int,
) -> tuple[list[CropFeatures], list[CropSkip]]:
    """Decode one image at the needed scale and feature its crops."""
    skips: list[CropSkip] = []
    kept: list[ObjectCrop] = []
    for crop in crops:
        short = min(crop.box[2] - crop.box[0], crop.box[3] - crop.box[1])
        if short < min_box_px:
            detail = f"short side {short} px < {min_box_px} px"
            skips.append(CropSkip(crop.annotation, path, "box-too-small", detail))
        else:
            kept.append(crop)
    if not kept:
        return [], skips
    smallest = min(min(c.box[2] - c.box[0], c.box[3] - c.box[1]) for c in kept)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        decoded = decode_image(
            data, max_pixels=max_pixels, draft_px=_draft_px(entry, smallest, crop_px)
        )
    except (OSError, DecodeError) as exc:
        reason = f"cannot decode the image: {exc}"
        return [], skips + [CropSkip(c.annotation, path, "image-unreadable", reason) for c in kept]
    width, height = entry.width or decoded.width, entry.height or decoded.height
    if _aspect_differs((width, height), (decoded.width, decoded.height)):
        detail = (
            f"annotations say {width}x{height}, the upright image is "
            f"{decoded.width}x{decoded.height}"
        )
        return [], skips + [
            CropSkip(c.annotation, path, "image-size-mismatch", detail) for c in kept
        ]
    gray = decoded.gray
    fx, fy = gray.shape[1] / width, gray.shape[0] / height
    featured = []
    for crop in kept:
        patch = _cut(gray, crop.box, fx, fy)
        features = compute_features(patch)
        centre = centre_descriptor(features.thumb)
        if features.is_flat:
            skips.append(CropSkip(crop.annotation, path, "flat-crop", _FLAT))
        elif not centre.any():
            skips.append(CropSkip(crop.annotation, path, "plain-crop", _PLAIN))
        else:
            featured.append(CropFeatures(crop.annotation, path, crop.box, features, centre))
    return featured, skips


def centre_descriptor(thumb: np.ndarray) -> np.ndarray:
    """The descriptor of the middle 75 % of a crop's thumbnail (zeros when it is flat).

    Box jitter moves the borders of a crop, not its middle, so two boxes of one object
    have similar centre descriptors. A plain shape (a uniform disc or rectangle) has a flat
    middle: it is left out as ``plain-crop``, since any two plain shapes of one outline
    look alike to grayscale, tone-invariant features whatever their colours.
    """
    m = CENTRE_MARGIN
    middle = thumb[m : thumb.shape[0] - m, m : thumb.shape[1] - m]
    return describe(cv2.resize(middle, (32, 32), interpolation=cv2.INTER_AREA))


def _draft_px(entry: ImageEntry, smallest: int, crop_px: int) -> int:
    """Short side to ask the JPEG draft decoder for, so ``smallest`` gets ``crop_px``."""
    if not entry.width or not entry.height:
        return 1 << 30  # size unknown: decode at full resolution
    scale = min(1.0, crop_px / smallest)
    return max(1, math.ceil(min(entry.width, entry.height) * scale))


def _aspect_differs(declared: tuple[int, int], actual: tuple[int, int]) -> bool:
    """True when the two sizes have different shapes (beyond rounding)."""
    a = declared[0] / declared[1]
    b = actual[0] / actual[1]
    return abs(math.log(a / b)) > _SIZE_TOLERANCE


def _cut(gray: np.ndarray, box: tuple[int, int, int, int], fx: float, fy: float) -> np.ndarray:
    """The pixels of ``box`` (image pixels) in the decoded picture, rounded outwards."""
    h, w = gray.shape
    left, top = max(0, math.floor(box[0] * fx)), max(0, math.floor(box[1] * fy))
    right, bottom = min(w, math.ceil(box[2] * fx)), min(h, math.ceil(box[3] * fy))
    return gray[top : max(bottom, top + 1), left : max(right, left + 1)]
