"""Compact visual features of one image: a verification thumbnail, a search descriptor, a pHash.

All three are computed from the upright grayscale picture, so they ignore format, colour
(grayscale copies match) and EXIF orientation. The descriptor is built on a rank-equalised
picture, so monotone tone changes (brightness, contrast, gamma) barely move it.

* ``thumb``: 128 x 128 uint8 luminance (area-averaged). Pairs are verified on it.
* ``descriptor``: 63 low-frequency DCT coefficients of the equalised 32 x 32 picture,
  L2-normalised (float32). Candidates are its nearest neighbours.
* ``phash``: the 64-bit perceptual hash (signs of the 8 x 8 DCT block against its median),
  kept as evidence and for Hamming search.

Two more search views are derived at match time, without decoding again:
:func:`centre_descriptor` (the same recipe on the middle of the thumbnail, which a crop or
a rotation changes less than the whole) and :func:`mirror_descriptor` (the descriptor of
the picture mirrored left to right: a sign change of the odd horizontal frequencies).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

FEATURE_VERSION = 1
THUMB_PX = 128
DESCRIPTOR_DIM = 63
_SMALL_PX = 32
_FLAT_STD = 2.0  # an equalised picture with less spread than this (0-255 scale) is flat
CENTRE_MARGIN = 24  # thumbnail pixels left out on each side by the centre descriptor
# coefficient k + 1 of the 8 x 8 block sits in column (k + 1) % 8: odd columns flip sign
_MIRROR_SIGNS = np.array([-1.0 if (k + 1) % 2 else 1.0 for k in range(DESCRIPTOR_DIM)], np.float32)


@dataclass(frozen=True)
class Features:
    """What lookalike keeps about an image's look."""

    thumb: np.ndarray  # (THUMB_PX, THUMB_PX) uint8
    descriptor: np.ndarray  # (DESCRIPTOR_DIM,) float32, unit norm, or zeros for flat pictures
    phash: int  # unsigned 64-bit

    @property
    def is_flat(self) -> bool:
        """True for a (nearly) uniform picture: it can match only exact or pixel copies."""
        return not bool(self.descriptor.any())


def compute_features(gray: np.ndarray) -> Features:
    """Compute :class:`Features` from a 2-D uint8 luminance picture of any size."""
    thumb = make_thumb(gray)
    small = cv2.resize(thumb, (_SMALL_PX, _SMALL_PX), interpolation=cv2.INTER_AREA)
    return Features(thumb=thumb, descriptor=describe(small), phash=phash(small))


def make_thumb(gray: np.ndarray) -> np.ndarray:
    """Area-average a luminance picture to the square verification thumbnail."""
    return cv2.resize(gray, (THUMB_PX, THUMB_PX), interpolation=cv2.INTER_AREA)


def equalise(picture: np.ndarray) -> np.ndarray:
    """Map uint8 values to their mid-rank in [0, 1] (tie-aware histogram equalisation).

    Any strictly increasing tone curve leaves the result unchanged.
    """
    hist = np.bincount(picture.ravel(), minlength=256).astype(np.float64)
    cdf = np.cumsum(hist)
    midrank = (cdf - hist / 2.0) / max(picture.size, 1)
    return midrank[picture].astype(np.float32)


def describe(small: np.ndarray) -> np.ndarray:
    """Low-frequency DCT descriptor of the equalised picture (unit norm; zeros when flat)."""
    eq = equalise(small)
    if float(small.std()) < _FLAT_STD or float(eq.std()) < 1e-3:
        return np.zeros(DESCRIPTOR_DIM, dtype=np.float32)
    coeffs = cv2.dct(eq - eq.mean())[:8, :8].ravel()[1:]
    norm = float(np.linalg.norm(coeffs))
    if norm < 1e-6:
        return np.zeros(DESCRIPTOR_DIM, dtype=np.float32)
    return (coeffs / norm).astype(np.float32)


def centre_descriptor(thumb: np.ndarray) -> np.ndarray:
    """The descriptor of the middle of a thumbnail (a ``CENTRE_MARGIN`` border left out)."""
    m = CENTRE_MARGIN
    middle = thumb[m : thumb.shape[0] - m, m : thumb.shape[1] - m]
    return describe(cv2.resize(middle, (_SMALL_PX, _SMALL_PX), interpolation=cv2.INTER_AREA))


def mirror_descriptor(descriptor: np.ndarray) -> np.ndarray:
    """The descriptor of the same picture mirrored left to right (rows of descriptors too)."""
    return (descriptor * _MIRROR_SIGNS).astype(np.float32)


def phash(small: np.ndarray) -> int:
    """64-bit DCT perceptual hash of a 32 x 32 picture (bit 63 = first coefficient)."""
    block = cv2.dct(small.astype(np.float32))[:8, :8].ravel()
    bits = block > np.median(block[1:])
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit hashes."""
    return (a ^ b).bit_count()
