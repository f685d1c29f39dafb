"""The eight orientations of a picture: four quarter turns, each also mirrored.

A copy turned by 90, 180 or 270 degrees, flipped upside down or transposed, with no EXIF
tag to undo it, is the same picture in another orientation. Orientation ``o`` (0-7) turns a
picture ``o % 4`` quarter turns counter-clockwise (as :func:`numpy.rot90`) and then, for
``o >= 4``, mirrors it left to right. The square thumbnails and DCT descriptors of
:mod:`lookalike.features` follow the picture exactly:

* a thumbnail is turned with the picture (it is the whole picture area-averaged to a square);
* a descriptor is a signed permutation of itself: mirroring flips the sign of the odd
  horizontal frequencies, an upside-down flip that of the odd vertical ones, and a
  transposition swaps the two axes, so all eight come from one descriptor for free.

For the candidate search, :func:`canonical_orientations` turns every descriptor into one
orientation that depends only on the picture, so copies in any orientation land next to
each other in one index (pdq's dihedral mode reaches the same end with eight hashes).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

ORIENTATIONS = 8
NAMES = ("upright", "rot90", "rot180", "rot270", "hflip", "transverse", "vflip", "transpose")
"""Names of the orientations, as a picture editor calls the change (``rot90``: turned 90
degrees counter-clockwise; ``transpose``: mirrored along the main diagonal)."""

_BLOCK = 8  # descriptors are the 8 x 8 low-frequency DCT block without its first value
# the orientation's share of the search: (x, y) = the lowest horizontal and vertical
# frequency, each orientation maps them to the square's symmetries of the plane
_X, _Y = 0, _BLOCK - 1  # descriptor positions of coefficients (0, 1) and (1, 0)
AMBIGUOUS_ANGLE_DEG = 12.0  # within this of a boundary, the neighbour orientation is kept too
AMBIGUOUS_RADIUS = 0.08  # below this length of (x, y), every orientation is kept


def is_mirrored(o: int) -> bool:
    """Whether orientation ``o`` mirrors the picture (a left-right or up-down flip, a
    transposition)."""
    return o >= 4


def swaps_axes(o: int) -> bool:
    """Whether orientation ``o`` swaps width and height."""
    return o % 2 == 1


def orient(picture: np.ndarray, o: int) -> np.ndarray:
    """The picture (2-D array, or any array whose first two axes are rows and columns)
    in orientation ``o``; a view, not a copy."""
    turned = np.rot90(picture, o % 4)
    return turned[:, ::-1] if is_mirrored(o) else turned


def oriented_size(size: tuple[int, int], o: int) -> tuple[int, int]:
    """``(width, height)`` of a picture of ``size`` in orientation ``o``."""
    return (size[1], size[0]) if swaps_axes(o) else size


def compose(first: int, then: int) -> int:
    """The orientation of applying ``first`` and then ``then``."""
    return _COMPOSE[first, then]


def inverse(o: int) -> int:
    """The orientation that undoes ``o``."""
    return int(np.flatnonzero(_COMPOSE[o] == 0)[0])


def _coefficient_tables() -> tuple[np.ndarray, np.ndarray]:
    """For every orientation, where each descriptor value comes from and its sign: each
    DCT basis picture, oriented, is another basis picture up to sign."""
    size = 4 * _BLOCK
    sources = np.zeros((ORIENTATIONS, _BLOCK * _BLOCK), np.intp)
    signs = np.zeros((ORIENTATIONS, _BLOCK * _BLOCK), np.float32)
    for flat in range(_BLOCK * _BLOCK):
        coeffs = np.zeros((size, size), np.float32)
        coeffs[divmod(flat, _BLOCK)] = 1.0
        basis = cv2.idct(coeffs)
        for o in range(ORIENTATIONS):
            moved = cv2.dct(np.ascontiguousarray(orient(basis, o)))[:_BLOCK, :_BLOCK].ravel()
            target = int(np.argmax(np.abs(moved)))
            sources[o, target] = flat
            signs[o, target] = np.sign(moved[target])
    return sources[:, 1:] - 1, signs[:, 1:]


_SOURCES, _SIGNS = _coefficient_tables()


def orient_descriptor(descriptor: np.ndarray, o: int) -> np.ndarray:
    """The descriptor of the picture in orientation ``o`` (rows of descriptors too)."""
    return (descriptor[..., _SOURCES[o]] * _SIGNS[o]).astype(np.float32)


def all_orientations(descriptor: np.ndarray) -> np.ndarray:
    """The descriptor in every orientation: ``(8, 63)`` for one, ``(n, 8, 63)`` for rows."""
    return (descriptor[..., _SOURCES] * _SIGNS).astype(np.float32)


def _composition_table() -> np.ndarray:
    probe = np.arange(12).reshape(3, 4)  # no symmetry of its own
    shapes = [orient(probe, o) for o in range(ORIENTATIONS)]
    table = np.zeros((ORIENTATIONS, ORIENTATIONS), np.int8)
    for a in range(ORIENTATIONS):
        for b in range(ORIENTATIONS):
            both = orient(orient(probe, a), b)
            table[a, b] = next(
                o for o, s in enumerate(shapes) if s.shape == both.shape and (s == both).all()
            )
    return table


_COMPOSE = _composition_table()


def canonical_orientations(
    descriptors: np.ndarray,
    *,
    mirror: bool = True,
    ambiguous_angle_deg: float = AMBIGUOUS_ANGLE_DEG,
    ambiguous_radius: float = AMBIGUOUS_RADIUS,
) -> list[list[int]]:
    """For each descriptor row, the orientations that bring it to canonical form.

    The lowest horizontal and vertical frequencies ``(x, y)`` say which way the picture's
    light falls; the orientations act on them as the symmetries of a square act on the
    plane. The canonical orientation puts ``(x, y)`` in the sector ``0 <= angle < 45``
    degrees (``< 90`` with ``mirror=False``: turns only), the same for every orientation of
    one picture. Near a sector boundary an edit can tip the choice, so the neighbour
    orientation is kept as well; a picture with almost no such gradient keeps all of them.
    The first orientation of each list is the canonical one. Flat (all-zero) rows keep
    ``[0]``.
    """
    group = range(ORIENTATIONS) if mirror else range(4)
    sector = math.radians(45.0 if mirror else 90.0)
    margin = math.radians(ambiguous_angle_deg)
    out: list[list[int]] = []
    for row in np.asarray(descriptors, np.float32):
        if not row.any():
            out.append([0])
            continue
        x, y = row[_X], row[_Y]
        if math.hypot(x, y) < ambiguous_radius:
            out.append(list(group))
            continue
        kept: list[tuple[float, int]] = []
        for o in group:
            ox, oy = (row[_SOURCES[o]] * _SIGNS[o])[[_X, _Y]]
            angle = math.atan2(oy, ox)
            # how far inside [0, sector) the oriented gradient lies (negative: outside)
            inside = min(angle, sector - angle)
            if inside >= 0 or inside > -margin:
                kept.append((-inside, o))
        kept.sort()
        out.append([o for _, o in kept])
    return out
