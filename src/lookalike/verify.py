"""Decide whether two candidate images are the same picture, and how similar they are.

Both verification thumbnails are slightly blurred (so noise, JPEG artefacts and
sharpening cancel out) and each is mapped onto the other's tone scale by quantile
matching (so brightness, contrast, gamma and grayscale conversion cancel out). Then:

* ``mad``: mean absolute difference after tone matching, in [0, 1] of the intensity range;
* ``changed``: share of thumbnail pixels that differ by more than 10% of the range;
* ``shift``: global translation between the two, by phase correlation, in thumbnail pixels.

A small overlay changes few pixels a lot; another shot of the same scene, a stereo pair or
a burst frame moves content, which raises ``changed`` where things moved and ``shift`` when
the camera moved. The three measures are combined into one dissimilarity (1.0 at the
default limits) and a score in [0, 1]::

    dissimilarity = max(mad / mad_limit, changed / changed_limit, shift / shift_limit)
    score = max(0, 1 - (1 - SCORE_AT_LIMIT) * dissimilarity)

so a pair is accepted when ``score >= min_score`` (default ``SCORE_AT_LIMIT`` = 0.8).

A cheap first look at 32 px (:func:`coarse_thumb`) rejects most unrelated candidates before
the 128 px comparison: at that size the ``mad`` of every accepted pair stays well under
the limit (under half of it on the benchmark sets).

Crops, rotations and mirror images are verified by :func:`verify_aligned` once
:mod:`lookalike.geometry` has aligned the two thumbnails: the same ``mad`` and ``changed``
inside the overlap, plus ``containment`` (the textured share outside the overlap of the
picture that is more contained in the other), with the same score scale::

    dissimilarity = max(mad / geometric_mad_limit, changed / geometric_changed_limit,
                        containment / containment_limit)

with tighter limits than for whole pictures: once aligned to a fraction of a pixel an
edited copy differs from its original by almost nothing, while burst frames and other
shots of a scene keep what moved.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from .features import THUMB_PX, Features, hamming
from .geometry import Alignment, GeometryLimits, compare_aligned, is_plausible
from .orientation import NAMES, is_mirrored, orient, orient_descriptor, oriented_size

SCORE_AT_LIMIT = 0.8
_CHANGE_LEVEL = 0.1
_WINDOW: np.ndarray | None = None


@dataclass(frozen=True)
class VerifySettings:
    """Limits of the pixel comparison; see the module docstring."""

    min_score: float = SCORE_AT_LIMIT
    mad_limit: float = 0.04
    changed_limit: float = 0.03
    shift_limit: float = 0.6
    min_descriptor_similarity: float = 0.7  # whole-picture copies measured >= 0.81
    # |log(aspect_a / aspect_b)| of whole pictures compared without geometry: thumbnails
    # are squares, so a copy squashed to a square or stretched up to 2x on one axis is
    # compared as it is (its thumbnail is the original's); crops go to geometry
    max_aspect_change: float = 0.75
    # geometric matches: aligned to a fraction of a pixel, an edited copy differs from its
    # original by almost nothing, while a burst frame or another shot shows what moved
    geometric_mad_limit: float = 0.025
    geometric_changed_limit: float = 0.012
    containment_limit: float = 0.02  # content share outside the overlap, in the contained picture
    min_aligned_detail: float = 0.02  # textured share of the overlap an alignment needs


@dataclass(frozen=True)
class Verdict:
    """The outcome of comparing two images."""

    accepted: bool
    score: float
    evidence: dict[str, Any]


@dataclass(frozen=True)
class Prepared:
    """A thumbnail ready for comparison: blurred, with its sorted values for tone matching."""

    pixels: np.ndarray  # float32, blurred
    sorted_values: np.ndarray  # float32, ascending
    ranks: np.ndarray  # intp, mid-rank position of each pixel in ``sorted_values``


def prepare_thumb(thumb: np.ndarray, *, steps: int = 16) -> Prepared:
    """Blur a verification thumbnail, sort its values and rank its pixels (once per image).

    Values are kept to ``1/steps`` of a grey level.
    """
    pixels = cv2.GaussianBlur(thumb.astype(np.float32), (3, 3), 0.8)
    levels = np.rint(pixels * steps).astype(np.uint16)
    hist = np.bincount(levels.ravel(), minlength=256 * steps)
    mid_rank = (np.cumsum(hist) - hist + (hist - 1) // 2).astype(np.intp)  # per level
    ranks = mid_rank[levels]
    # the sorted values, straight from the histogram (no sort)
    ordered = np.repeat(np.arange(256 * steps, dtype=np.float32) / steps, hist)
    return Prepared(pixels, ordered, ranks)


def coarse_thumb(thumb: np.ndarray) -> Prepared:
    """The 32 px version of :func:`prepare_thumb`, for the cheap first look."""
    return prepare_thumb(cv2.resize(thumb, (32, 32), interpolation=cv2.INTER_AREA), steps=4)


def oriented(p: Prepared, o: int) -> Prepared:
    """The prepared thumbnail of the picture in orientation ``o`` (no recomputation)."""
    if o == 0:
        return p
    return Prepared(orient(p.pixels, o), p.sorted_values, orient(p.ranks, o))


def tone_match(src: Prepared, dst: Prepared) -> np.ndarray:
    """Map ``src`` pixels onto ``dst``'s tone scale (quantile matching, ties at mid-rank).

    Both thumbnails have the same number of pixels, so a pixel's rank indexes the other's
    sorted values directly.
    """
    return dst.sorted_values[src.ranks]


def compare_prepared(a: Prepared, b: Prepared) -> tuple[float, float]:
    """Return ``(mad, changed)`` between two prepared thumbnails, symmetric in a and b."""
    diff = np.abs(a.pixels - tone_match(b, a))
    diff += np.abs(b.pixels - tone_match(a, b))
    n = diff.size
    return float(diff.sum()) / (510.0 * n), np.count_nonzero(diff > 510.0 * _CHANGE_LEVEL) / n


def global_shift(a: Prepared, b: Prepared) -> float:
    """Length of the translation between two thumbnails (phase correlation), in pixels."""
    global _WINDOW
    h, w = a.pixels.shape
    half = (w // 2, h // 2)  # the shift is measured at half size: 4 times fewer pixels
    if _WINDOW is None or _WINDOW.shape != half[::-1]:
        _WINDOW = cv2.createHanningWindow(half, cv2.CV_32F)
    pa = cv2.resize(a.pixels, half, interpolation=cv2.INTER_AREA)
    pb = cv2.resize(b.pixels, half, interpolation=cv2.INTER_AREA)
    # fresh arrays: cv2.phaseCorrelate (OpenCV 5.0) applies the window to them in place
    (dx, dy), _ = cv2.phaseCorrelate(_standardise(pa), _standardise(pb), _WINDOW)
    return 2.0 * float(np.hypot(dx, dy))


def _standardise(x: np.ndarray) -> np.ndarray:
    return ((x - x.mean()) / (float(x.std()) + 1e-6)).astype(np.float32)


def score_from(dissimilarity: float) -> float:
    """Map a dissimilarity (1.0 = at the default limits) to a similarity score in [0, 1]."""
    return max(0.0, 1.0 - (1.0 - SCORE_AT_LIMIT) * dissimilarity)


def aspect_change(size_a: tuple[int, int], size_b: tuple[int, int]) -> float:
    """``|log(aspect_a / aspect_b)|`` of two (width, height) sizes."""
    return abs(math.log((size_a[0] / size_a[1]) / (size_b[0] / size_b[1])))


def common_resolution(
    size_a: tuple[int, int], size_b: tuple[int, int]
) -> tuple[int, int] | None:
    """The ``(columns, rows)`` of picture both thumbnails really hold, when one of the two
    pictures has fewer pixels than a thumbnail along an axis; ``None`` otherwise."""
    cols = min(size_a[0], size_b[0], THUMB_PX)
    rows = min(size_a[1], size_b[1], THUMB_PX)
    return None if (cols, rows) == (THUMB_PX, THUMB_PX) else (max(cols, 4), max(rows, 4))


def at_resolution(thumb: np.ndarray, resolution: tuple[int, int]) -> np.ndarray:
    """A thumbnail reduced to ``resolution`` (columns, rows) and enlarged back, as a
    picture of that size would have been made into a thumbnail."""
    small = cv2.resize(thumb, resolution, interpolation=cv2.INTER_AREA)
    return cv2.resize(small, thumb.shape[::-1], interpolation=cv2.INTER_LINEAR)


def verify_pair(
    fa: Features,
    fb: Features,
    size_a: tuple[int, int],
    size_b: tuple[int, int],
    settings: VerifySettings = VerifySettings(),
    *,
    prepared: tuple[Prepared, Prepared] | Callable[[], tuple[Prepared, Prepared]] | None = None,
    coarse: tuple[Prepared, Prepared] | None = None,
    orientation: int = 0,
) -> Verdict:
    """Compare two images by their features; accept when they are the same picture.

    ``b`` is compared in ``orientation`` (:mod:`lookalike.orientation`: turned and/or
    mirrored). ``coarse`` (from :func:`coarse_thumb`) enables the cheap first look;
    ``prepared`` (from :func:`prepare_thumb`, as stored; or a function returning them,
    called only when the first look passes) saves recomputing the 128 px thumbnails.
    """
    o = orientation
    aspect = aspect_change(size_a, oriented_size(size_b, o))
    evidence: dict[str, Any] = {
        "method": "mirror thumbnail" if is_mirrored(o) else "thumbnail",
        "phash_distance": hamming(fa.phash, fb.phash),
        "aspect_change": round(aspect, 4),
    }
    if o:
        evidence["orientation"] = NAMES[o]
    if fa.is_flat or fb.is_flat:
        evidence["reason"] = "flat picture"
        return Verdict(False, 0.0, evidence)
    if aspect > settings.max_aspect_change:
        evidence["reason"] = "aspect ratio differs"
        return Verdict(False, 0.0, evidence)
    similarity = float(fa.descriptor @ orient_descriptor(fb.descriptor, o))
    if similarity < settings.min_descriptor_similarity:
        evidence.update(descriptor_similarity=round(similarity, 4), reason="descriptors differ")
        return Verdict(False, 0.0, evidence)
    if coarse is not None:
        ca, cb = coarse
        mad, changed = compare_prepared(ca, oriented(cb, o))
        if mad > settings.mad_limit:
            evidence.update(mad=round(mad, 4), reason="differs at 32 px")
            return Verdict(False, round(score_from(mad / settings.mad_limit), 4), evidence)
    common = common_resolution(size_a, oriented_size(size_b, o))
    if common is not None:
        # a small picture's thumbnail is its few pixels enlarged: compare both as blurred
        pa = prepare_thumb(at_resolution(fa.thumb, common))
        pb = prepare_thumb(at_resolution(np.ascontiguousarray(orient(fb.thumb, o)), common))
        evidence["compared_px"] = list(common)
    else:
        if callable(prepared):
            prepared = prepared()
        pa, pb = (
            prepared
            if prepared is not None
            else (prepare_thumb(fa.thumb), prepare_thumb(fb.thumb))
        )
        pb = oriented(pb, o)
    mad, changed = compare_prepared(pa, pb)
    dissimilarity = max(mad / settings.mad_limit, changed / settings.changed_limit)
    evidence.update(mad=round(mad, 4), changed=round(changed, 4))
    if score_from(dissimilarity) >= settings.min_score:
        shift = global_shift(pa, pb)  # only worth its cost for pairs that passed so far
        evidence["shift_px"] = round(shift, 3)
        dissimilarity = max(dissimilarity, shift / settings.shift_limit)
    score = round(score_from(dissimilarity), 4)
    return Verdict(score >= settings.min_score, score, evidence)


def verify_aligned(
    alignment: Alignment,
    a: np.ndarray,
    b: np.ndarray,
    textured: tuple[np.ndarray, np.ndarray],
    fill: tuple[np.ndarray, np.ndarray] | None = None,
    settings: VerifySettings = VerifySettings(),
    limits: GeometryLimits = GeometryLimits(),
) -> Verdict:
    """Verify a pair that :mod:`lookalike.geometry` aligned (crop, rotation, mirror image).

    ``a`` and ``b`` are float32 thumbnails, ``textured`` and ``fill`` their maps from
    :func:`lookalike.geometry.textured` and :func:`lookalike.geometry.fill_mask`; everything
    of ``b`` is of the picture as aligned (already mirrored when ``alignment.mirror``).
    """
    al = alignment
    evidence: dict[str, Any] = {
        "method": "mirror geometry" if al.mirror else "geometry",
        "spectrum_response": round(al.response, 3),
        "ecc_correlation": round(al.cc, 4),
        "angle_deg": round(al.angle_deg, 2),
        "scale": round(al.scale, 4),
        "translation_px": [round(al.translation[0], 1), round(al.translation[1], 1)],
        "anisotropy": round(al.anisotropy, 4),
    }
    reason = is_plausible(al, limits)
    if reason is not None:
        evidence["reason"] = reason
        return Verdict(False, 0.0, evidence)
    cmp = compare_aligned(a, b, al.warp, *textured, *(fill or (None, None)))
    containment = min(cmp["outside_a"], cmp["outside_b"])
    dissimilarity = max(
        cmp["mad"] / settings.geometric_mad_limit,
        cmp["changed"] / settings.geometric_changed_limit,
        containment / settings.containment_limit,
    )
    score = round(score_from(dissimilarity), 4)
    evidence.update(
        mad=round(cmp["mad"], 4),
        changed=round(cmp["changed"], 4),
        overlap=[round(cmp["overlap_a"], 3), round(cmp["overlap_b"], 3)],
        outside=[round(cmp["outside_a"], 4), round(cmp["outside_b"], 4)],
        detail=round(cmp.get("detail", 0.0), 4),
    )
    if containment / settings.containment_limit >= 1.0:
        evidence["reason"] = "both pictures show content the other lacks"
    if cmp.get("detail", 1.0) < settings.min_aligned_detail:
        # nothing to align on: any placement of a nearly textureless picture fits
        evidence["reason"] = "too little detail to align"
        return Verdict(False, 0.0, evidence)
    return Verdict(score >= settings.min_score, score, evidence)
