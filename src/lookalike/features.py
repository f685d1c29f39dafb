"""Compact visual features of one image: a verification thumbnail, a search descriptor, a pHash.

All three are computed from the upright grayscale picture, so they ignore format, colour
(grayscale copies match) and EXIF orientation. The descriptor is built on a rank-equalised
picture, so monotone tone changes (brightness, contrast, gamma) barely move it.

* ``thumb``: 128 x 128 uint8 luminance (area-averaged). Pairs are verified on it.
* ``descriptor``: 63 low-frequency DCT coefficients of the equalised 32 x 32 picture,
  L2-normalised (float32). Candidates are its nearest neighbours.
* ``phash``: the 64-bit perceptual hash (signs of the 8 x 8 DCT block against its median),
  kept as evidence and for Hamming search.

More search views are derived at match time, without decoding again:
:func:`centre_descriptor` (the same recipe on the middle of the thumbnail, which a crop or
a rotation changes less than the whole), :func:`mirror_descriptor` (the descriptor of
the picture mirrored left to right: a sign change of the odd horizontal frequencies) and
:func:`upright_descriptor` (for a picture rotated with its corners filled in, the
descriptor of the picture turned back and cut to its original frame).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

FEATURE_VERSION = 2  # 2: pictures without a draft mode are box-reduced before the thumbnail
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


def _dct_rows(n: int = _SMALL_PX, keep: int = 8) -> np.ndarray:
    """The first ``keep`` rows of the orthonormal DCT-II matrix of size ``n`` (as cv2.dct)."""
    k = np.arange(keep)[:, None]
    x = np.arange(n)[None, :]
    rows = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    rows[0] /= np.sqrt(2.0)
    return rows.astype(np.float32)


_DCT8 = _dct_rows()


def describe_many(smalls: np.ndarray) -> np.ndarray:
    """:func:`describe` of a stack of ``(m, 32, 32)`` uint8 pictures at once, ``(m, 63)``."""
    m = len(smalls)
    flat = smalls.reshape(m, -1)
    offsets = (np.arange(m, dtype=np.intp)[:, None] * 256 + flat).ravel()
    hist = np.bincount(offsets, minlength=m * 256).reshape(m, 256).astype(np.float64)
    cdf = np.cumsum(hist, axis=1)
    midrank = (cdf - hist / 2.0) / flat.shape[1]
    eq = np.take_along_axis(midrank, flat.astype(np.intp), axis=1).astype(np.float32)
    eq -= eq.mean(axis=1, keepdims=True)
    pictures = eq.reshape(smalls.shape)
    coeffs = (_DCT8 @ pictures @ _DCT8.T).reshape(m, -1)[:, 1:]
    norms = np.linalg.norm(coeffs, axis=1, keepdims=True)
    flat_pictures = (flat.std(axis=1) < _FLAT_STD) | (eq.std(axis=1) < 1e-3) | (norms[:, 0] < 1e-6)
    out = coeffs / np.where(norms < 1e-6, 1.0, norms)
    out[flat_pictures] = 0.0
    return out.astype(np.float32)


def centre_descriptor(thumb: np.ndarray) -> np.ndarray:
    """The descriptor of the middle of a thumbnail (a ``CENTRE_MARGIN`` border left out)."""
    m = CENTRE_MARGIN
    middle = thumb[m : thumb.shape[0] - m, m : thumb.shape[1] - m]
    return describe(cv2.resize(middle, (_SMALL_PX, _SMALL_PX), interpolation=cv2.INTER_AREA))


WINDOW_GRIDS = (44, 38)  # the thumbnail reduced to these sides, 32 px windows cut from it:
# windows of 73% and 84% of the side (53% and 71% of the area)
_WINDOW_CHUNK = 4096  # windows described at once


def _windows(thumb: np.ndarray) -> list[np.ndarray]:
    """The 10 window pictures of :func:`window_descriptors` (32 x 32 uint8 each)."""
    out = []
    for side in WINDOW_GRIDS:
        grid = cv2.resize(thumb, (side, side), interpolation=cv2.INTER_AREA)
        far, mid = side - _SMALL_PX, (side - _SMALL_PX) // 2
        for x, y in ((mid, mid), (0, 0), (far, 0), (0, far), (far, far)):
            out.append(grid[y : y + _SMALL_PX, x : x + _SMALL_PX])
    return out


def window_descriptors(thumbs: list[np.ndarray]) -> np.ndarray:
    """``(n, 10, 63)``: for each thumbnail, the descriptors of 10 windows (the centre and
    the four corners, at each of :data:`WINDOW_GRIDS`), where a strong crop of the picture
    would sit: a crop's own descriptor is close to one of them."""
    pictures = [w for thumb in thumbs for w in _windows(thumb)]
    out = np.zeros((len(pictures), DESCRIPTOR_DIM), np.float32)
    for start in range(0, len(pictures), _WINDOW_CHUNK):
        chunk = np.stack(pictures[start : start + _WINDOW_CHUNK])
        out[start : start + len(chunk)] = describe_many(chunk)
    return out.reshape(len(thumbs), -1, DESCRIPTOR_DIM)


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


_FILL_DARK, _FILL_LIGHT = 10, 245  # thumbnail values of black or white rotation corners
_ROTATIONS = np.concatenate([np.arange(2.0, 30.01, 1.0), -np.arange(2.0, 30.01, 1.0)])
_SMALL_ROTATIONS = np.concatenate([np.arange(0.5, 2.01, 0.25), -np.arange(0.5, 2.01, 0.25)])
_MIN_FILL_AGREEMENT = 0.95  # share of the predicted corners that must be fill
_MIN_EDGE_CONTRAST = 0.3  # ... and how much less fill the picture's own edge may show


def fill_rotation(thumb: np.ndarray, width: int, height: int) -> float | None:
    """The angle (degrees) of a picture turned onto a larger canvas with flat black or
    white corners (a rotation without crop); ``None`` when the thumbnail is not one.

    Every candidate angle predicts the four corner triangles exactly (a ``w x h`` picture
    turned by ``a`` needs a ``w c + h s`` by ``w s + h c`` canvas). The angle kept is the
    one whose triangles are fill while the band just inside them is not, so a photo's
    own dark edges do not pass for corners.
    """
    fill = _corner_fill(thumb)
    if fill is None:
        return None
    # small angles leave small corners: look for them on a finer grid
    found = [_best_rotation(fill[::4, ::4], width, height, _ROTATIONS.tolist()),
             _best_rotation(fill[::2, ::2], width, height, _SMALL_ROTATIONS.tolist())]  # fmt: skip
    angle, _ = max(found, key=lambda f: f[1])
    for grid, half_width, step in ((2, 1.0, 0.25), (1, 0.75, 0.125)):  # coarse to fine
        if angle is None:
            return None
        near = np.arange(-half_width, half_width + 1e-9, step) + angle
        angle, _ = _best_rotation(fill[::grid, ::grid], width, height, near.tolist())
    return angle


def _corner_fill(thumb: np.ndarray) -> np.ndarray | None:
    """Where the thumbnail has the colour of its four corners when they are all black or
    all white (the fill of a rotation onto a larger canvas); ``None`` otherwise."""
    corners = thumb[[0, 0, -1, -1], [0, -1, 0, -1]]
    if (corners <= _FILL_DARK).all():
        return thumb <= _FILL_DARK
    if (corners >= _FILL_LIGHT).all():
        return thumb >= _FILL_LIGHT
    return None


def _best_rotation(
    fill: np.ndarray, width: int, height: int, angles: list[float]
) -> tuple[float | None, float]:
    """The angle among ``angles`` whose corners best match ``fill`` (see fill_rotation),
    with its contrast (``None`` and the least contrast accepted when none matches)."""
    rows, cols = fill.shape
    px, py = width / cols, height / rows  # image pixels per cell of ``fill``
    x = (np.arange(cols) + 0.5) * px - width / 2
    y = (np.arange(rows) + 0.5) * py - height / 2
    best, best_contrast = None, _MIN_EDGE_CONTRAST
    for angle in angles:
        frame = frame_before_rotation(width, height, angle)
        if frame is None or abs(angle) < 0.45:
            continue
        w, h = frame
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        u = np.abs(c * x[None, :] + s * y[:, None])
        v = np.abs(-s * x[None, :] + c * y[:, None])
        corner = (u > w / 2) | (v > h / 2)
        band = ~corner & ((u > w / 2 - 2 * px) | (v > h / 2 - 2 * py))
        if not corner.any() or not band.any():
            continue
        agreement = float(fill[corner].mean())
        contrast = agreement - float(fill[band].mean())
        if agreement >= _MIN_FILL_AGREEMENT and contrast > best_contrast:
            best, best_contrast = angle, contrast
    return best, best_contrast


def frame_before_rotation(width: int, height: int, angle: float) -> tuple[float, float] | None:
    """The ``w x h`` picture that, turned by ``angle``, has a ``width x height`` bounding box."""
    c, s = abs(math.cos(math.radians(angle))), abs(math.sin(math.radians(angle)))
    det = c * c - s * s
    w, h = (width * c - height * s) / det, (height * c - width * s) / det
    return (w, h) if min(w, h) >= 0.25 * min(width, height) else None


def upright_descriptor(
    thumb: np.ndarray, width: int, height: int, angle: float | None = None
) -> np.ndarray | None:
    """The descriptor of a corner-filled rotated picture (:func:`fill_rotation`, or its
    ``angle`` when already measured) turned back upright and cut to the frame it had
    before; ``None`` for other pictures."""
    angle = fill_rotation(thumb, width, height) if angle is None else angle
    if angle is None:
        return None
    w, h = frame_before_rotation(width, height, angle)  # type: ignore[misc]
    f = THUMB_PX / max(width, height)  # image pixels -> true-aspect thumbnail pixels
    tw, th = max(8, round(width * f)), max(8, round(height * f))
    fw, fh = max(8, round(w * f)), max(8, round(h * f))
    picture = cv2.resize(thumb, (tw, th), interpolation=cv2.INTER_AREA)
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    # output pixel (u, v) of the upright frame <- canvas point rotated back (centred)
    du, dv = 0.5 - fw / 2, 0.5 - fh / 2
    to_canvas = np.array(
        [[c, -s, c * du - s * dv + tw / 2 - 0.5], [s, c, s * du + c * dv + th / 2 - 0.5]],
        np.float64,
    )
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    upright = cv2.warpAffine(
        picture, to_canvas, (fw, fh), flags=flags, borderMode=cv2.BORDER_REPLICATE
    )
    return describe(cv2.resize(upright, (_SMALL_PX, _SMALL_PX), interpolation=cv2.INTER_AREA))


_BAR_STD = 3.0  # a bar row or column: this flat (0-255 scale) ...
_BAR_STEP = 6.0  # ... and this close to the outermost line's mean
_MIN_BAR_LINES = 2  # thumbnail lines a bar must have to be cut
_MIN_CONTENT = 0.3  # share of each axis the picture inside the bars must keep


@dataclass(frozen=True)
class Trimmed:
    """A picture's content inside flat bars or a border (letterbox, padding, frame)."""

    features: Features  # of the content, as if it had been the whole picture
    size: tuple[int, int]  # the content's (width, height) in image pixels
    box: tuple[int, int, int, int]  # (left, top, right, bottom) in thumbnail pixels


def trim_bars(thumb: np.ndarray, width: int, height: int) -> Trimmed | None:
    """The picture inside flat bars or a border along its edges (rows or columns of
    nearly one value, as letterboxing, padding to a square or a frame add), described as
    if it were the whole picture; ``None`` when no edge has such a bar."""
    edges = (thumb[0], thumb[-1], thumb[:, 0], thumb[:, -1])
    if min(float(e.std()) for e in edges) > _BAR_STD:
        return None  # most pictures: no edge line is flat
    lines = thumb.astype(np.float32)
    top, bottom = _bar_lines(lines), _bar_lines(lines[::-1])
    left, right = _bar_lines(lines.T), _bar_lines(lines.T[::-1])
    if max(top, bottom, left, right) < _MIN_BAR_LINES:
        return None
    n = thumb.shape[0]
    box = (left, top, n - right, n - bottom)
    cols, rows = box[2] - box[0], box[3] - box[1]
    if min(cols, rows) < _MIN_CONTENT * n:
        return None
    content = cv2.resize(thumb[box[1] : box[3], box[0] : box[2]], (THUMB_PX, THUMB_PX),
                         interpolation=cv2.INTER_LINEAR)  # fmt: skip
    small = cv2.resize(content, (_SMALL_PX, _SMALL_PX), interpolation=cv2.INTER_AREA)
    size = (max(1, round(width * cols / n)), max(1, round(height * rows / n)))
    return Trimmed(Features(content, describe(small), phash(small)), size, box)


def _bar_lines(lines: np.ndarray) -> int:
    """How many lines from the first one are flat and of the first one's value."""
    flat = lines.std(axis=1) <= _BAR_STD
    near = np.abs(lines.mean(axis=1) - lines[0].mean()) <= _BAR_STEP
    bar = flat & near
    return int(np.argmin(bar)) if not bar.all() else len(bar)


def corner_fill_share(thumb: np.ndarray) -> float:
    """Share of a thumbnail taken by flat black or white regions touching its corners (the
    fill of a rotation onto a larger canvas) and their edge; 0.0 when a corner is not fill."""
    fill = _corner_fill(thumb)
    if fill is None:
        return 0.0
    _, labels = cv2.connectedComponents(fill.astype(np.uint8), connectivity=4)
    touching = np.unique(labels[[0, 0, -1, -1], [0, -1, 0, -1]])
    corners_mask = np.isin(labels, touching[touching > 0]).astype(np.uint8)
    # the blended pixels along the picture's edge are not picture either
    return float(cv2.dilate(corners_mask, np.ones((3, 3), np.uint8)).mean())
