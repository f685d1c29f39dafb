"""Decide whether two candidate images are the same picture, and how similar they are.

Both verification thumbnails are rank-equalised (so brightness, contrast, gamma and
grayscale conversion cancel out), slightly blurred (so noise, JPEG artefacts and
sharpening cancel out) and compared pixel by pixel:

* ``mad``: mean absolute difference of equalised values (0 = identical, 0.5 = unrelated);
* ``changed``: share of thumbnail pixels whose equalised value moved by more than 0.15.

A small overlay changes few pixels a lot; another shot of the same scene, a stereo pair or
a burst frame with motion moves edges everywhere they shift, which raises ``changed``.
The two measures are combined into one dissimilarity (1.0 at the default limits) and a
score in [0, 1]::

    dissimilarity = max(mad / mad_limit, changed / changed_limit)
    score = max(0, 1 - (1 - SCORE_AT_LIMIT) * dissimilarity)

so a pair is accepted when ``score >= min_score`` (default ``SCORE_AT_LIMIT`` = 0.8).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from .features import Features, equalise, hamming

SCORE_AT_LIMIT = 0.8
_CHANGE_LEVEL = 0.15


@dataclass(frozen=True)
class VerifySettings:
    """Limits of the pixel comparison; see the module docstring."""

    min_score: float = SCORE_AT_LIMIT
    mad_limit: float = 0.06
    changed_limit: float = 0.02
    max_aspect_change: float = 0.06  # |log(aspect_a / aspect_b)| allowed without geometry


@dataclass(frozen=True)
class Verdict:
    """The outcome of comparing two images."""

    accepted: bool
    score: float
    evidence: dict[str, Any]


def prepare_thumb(thumb: np.ndarray) -> np.ndarray:
    """Equalise and blur a verification thumbnail (do once per image, reuse per pair)."""
    return cv2.GaussianBlur(equalise(thumb), (3, 3), 0.8)


def compare_prepared(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Return ``(mad, changed)`` between two prepared thumbnails."""
    diff = np.abs(a - b)
    return float(diff.mean()), float(np.count_nonzero(diff > _CHANGE_LEVEL) / diff.size)


def score_from(mad: float, changed: float, settings: VerifySettings) -> float:
    """Map the two measures to a similarity score in [0, 1]."""
    dissimilarity = max(mad / settings.mad_limit, changed / settings.changed_limit)
    return max(0.0, 1.0 - (1.0 - SCORE_AT_LIMIT) * dissimilarity)


def aspect_change(size_a: tuple[int, int], size_b: tuple[int, int]) -> float:
    """``|log(aspect_a / aspect_b)|`` of two (width, height) sizes."""
    return abs(math.log((size_a[0] / size_a[1]) / (size_b[0] / size_b[1])))


def verify_pair(
    fa: Features,
    fb: Features,
    size_a: tuple[int, int],
    size_b: tuple[int, int],
    settings: VerifySettings = VerifySettings(),
    *,
    prepared: tuple[np.ndarray, np.ndarray] | None = None,
) -> Verdict:
    """Compare two images by their features; accept when they are the same picture."""
    aspect = aspect_change(size_a, size_b)
    evidence: dict[str, Any] = {
        "method": "thumbnail",
        "phash_distance": hamming(fa.phash, fb.phash),
        "aspect_change": round(aspect, 4),
    }
    if fa.is_flat or fb.is_flat:
        evidence["reason"] = "flat picture"
        return Verdict(False, 0.0, evidence)
    pa, pb = prepared if prepared is not None else (prepare_thumb(fa.thumb), prepare_thumb(fb.thumb))
    mad, changed = compare_prepared(pa, pb)
    score = score_from(mad, changed, settings)
    evidence.update(mad=round(mad, 4), changed=round(changed, 4))
    if aspect > settings.max_aspect_change:
        evidence["reason"] = "aspect ratio differs"
        return Verdict(False, round(score, 4), evidence)
    return Verdict(score >= settings.min_score, round(score, 4), evidence)
