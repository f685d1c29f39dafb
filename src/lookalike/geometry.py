"""Geometric verification: is one picture a crop, a rotation or a mirror image of another?

Verification thumbnails are squashed to a square, so a crop or a rotation of the photo is
an affine map between two thumbnails. Finding that map costs three steps, each paid only by
the pairs that passed the one before:

1. **Screen** (Fourier-Mellin, about 35 us a pair). The magnitude spectrum of a picture does
   not change when the picture moves, and turns and scales with it. Both pictures are put
   back to their true aspect ratio (64 px), windowed, and their spectra resampled in
   log-polar coordinates once per image. Phase correlation of two such maps gives the
   rotation and scale between the pictures, and its peak height (``response``) how alike
   the spectra are: an edited copy reaches 0.35-1, other shots of a scene rarely 0.3.
   Mirror images are screened with the mirrored spectrum.
2. **Align**: translation by phase correlation once rotation and scale are undone; the
   resulting similarity must correlate at 64 px; then ECC (``cv2.findTransformECC``,
   affine) on the 128 px thumbnails refines it. Fine texture needs that sub-pixel
   accuracy: after it, an edited copy differs from its original by almost nothing.
3. **Compare** (:func:`compare_aligned`): the second thumbnail is warped onto the first and
   the two are compared inside their overlap, tone-matched, as :mod:`lookalike.verify` does
   for whole pictures (``mad``, ``changed``). ``outside`` measures containment: the share
   of textured pixels a picture has outside the overlap. An edited copy (crop, rotation,
   canvas change) leaves no textured content outside the overlap in at least one of the
   two pictures; a stereo pair or another viewpoint has some in both.

Coordinates: an :class:`Alignment` holds ``warp``, the 2 x 3 affine map from thumbnail
``a`` pixels to thumbnail ``b`` pixels (``b`` mirrored first when ``mirror``), and the
transform in image pixels (angle in degrees counter-clockwise, scale, translation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache

import cv2
import numpy as np

from .features import THUMB_PX

SPECTRUM_PX = 64  # side of the true-aspect picture whose spectrum is screened
_LP_ANGLES = 128  # log-polar rows over 180 degrees (spectra are point-symmetric)
_LP_RADII = 64  # log-polar columns
_TEXTURE_LEVEL = 24.0  # Sobel gradient magnitude (0-255 scale, blurred) that counts as texture
_ECC_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 12, 1e-3)
_KERNEL = np.ones((3, 3), np.uint8)
_COMPARE_SIGMA = 1.5  # Gaussian blur before comparing aligned thumbnails (thumbnail pixels)


@dataclass(frozen=True)
class GeometryLimits:
    """Which transforms count as an edit of the same picture."""

    min_response: float = 0.3  # Fourier-Mellin peak height to align at all
    max_angle_deg: float = 30.0
    min_scale: float = 0.6  # scale of b's frame relative to a's (true aspect, either way)
    max_scale: float = 1.6
    max_anisotropy: float = 0.08  # |log(sx / sy)| of the map in image pixels
    max_shear_deg: float = 4.0
    min_initial_cc: float = 0.6  # correlation at 64 px of the screened similarity
    min_cc: float = 0.6  # ECC correlation after alignment (fill corners lower it)
    frame_tolerance: float = 0.012  # |A - I| below this: the two frames have the same size
    max_frame_shift_px: float = 1.0  # ... and then their centres may move this much at most


@dataclass(frozen=True)
class GeoPrepared:
    """Per-image data for the screen and the alignment (computed once per image)."""

    # complex64 (2, LP_ANGLES, LP_RADII//2+1): phases of the log-polar DFT, plain / mirrored
    spectrum: np.ndarray
    small: (
        np.ndarray
    )  # float32 (2, SPECTRUM_PX, SPECTRUM_PX) true-aspect canvases, plain / mirrored
    offset: tuple[int, int]  # top-left corner of the picture inside the canvas
    size: tuple[int, int]  # (width, height) of the picture inside the canvas
    image_size: tuple[int, int]  # (width, height) of the full picture
    invariant: np.ndarray  # float32 (63,): :func:`invariant_descriptor` of the picture

    @cached_property
    def crop_pieces(self) -> CropPieces:
        """:func:`crop_pieces`, cut on first use (few images are crop-searched)."""
        return crop_pieces(self)


@dataclass(frozen=True)
class Screen:
    """Rotation and scale of b against a from the spectra, with the peak height."""

    angle_deg: float
    scale: float
    response: float


@dataclass(frozen=True)
class Alignment:
    """An affine map between two thumbnails and what it means in image pixels."""

    warp: np.ndarray  # float32 (2, 3): thumb a (x, y, 1) -> thumb b (mirrored when mirror)
    mirror: bool
    cc: float  # ECC correlation at 64 px
    angle_deg: float
    scale: float  # b pixels per a pixel (geometric mean of the two axes)
    anisotropy: float
    shear_deg: float
    translation: tuple[float, float]  # b pixels, of a's centre
    response: float


def prepare_geometry(thumb: np.ndarray, width: int, height: int) -> GeoPrepared:
    """Precompute the screened spectra and canvases of one image."""
    n = SPECTRUM_PX
    polar, picture, (ox, oy), (tw, th) = _log_polar(thumb, width, height)
    mirrored = polar[(_LP_ANGLES - np.arange(_LP_ANGLES)) % _LP_ANGLES]  # angle -> 180 - angle
    plain_dft, mirrored_dft = _rfft2(polar), _rfft2(np.ascontiguousarray(mirrored))
    # phase correlation needs only the phases: normalised once here, not once per pair
    spectrum = np.stack([_phases(plain_dft), _phases(mirrored_dft)])
    plain = np.zeros((n, n), np.float32)
    plain[oy : oy + th, ox : ox + tw] = picture
    flipped = plain[:, ::-1].copy()
    if (n - tw) % 2:  # keep the mirrored picture at the same offset
        flipped = np.roll(flipped, -1, axis=1)
    return GeoPrepared(
        spectrum,
        np.stack([plain, flipped]),
        (ox, oy),
        (tw, th),
        (width, height),
        invariant_from_spectrum(plain_dft),
    )


def _phases(dft: np.ndarray) -> np.ndarray:
    return (dft / (np.abs(dft) + 1e-9)).astype(np.complex64)


def _log_polar(
    thumb: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray, tuple[int, int], tuple[int, int]]:
    """Log-polar log-magnitude spectrum of the true-aspect picture (high-passed), with the
    picture (mean removed), its offset and its size on the canvas."""
    n = SPECTRUM_PX
    if width >= height:
        tw, th = n, max(8, round(n * height / width))
    else:
        tw, th = max(8, round(n * width / height)), n
    picture = cv2.resize(thumb, (tw, th), interpolation=cv2.INTER_AREA).astype(np.float32)
    picture -= float(picture.mean())
    ox, oy = (n - tw) // 2, (n - th) // 2
    canvas = np.zeros((n, n), np.float32)
    canvas[oy : oy + th, ox : ox + tw] = picture * _hann(th, tw)
    spectrum = cv2.dft(canvas, flags=cv2.DFT_COMPLEX_OUTPUT)
    magnitude = np.fft.fftshift(cv2.magnitude(spectrum[..., 0], spectrum[..., 1]))
    magnitude = cv2.log(magnitude * _highpass(n) + 1.0)
    polar = cv2.warpPolar(
        magnitude, (_LP_RADII, 2 * _LP_ANGLES), (n / 2, n / 2), n / 2,
        cv2.WARP_POLAR_LOG | cv2.INTER_LINEAR,
    )[:_LP_ANGLES]  # fmt: skip
    return polar, picture, (ox, oy), (tw, th)


def invariant_descriptor(thumb: np.ndarray, width: int, height: int, size: int = 8) -> np.ndarray:
    """A search descriptor that rotation, scale and mirroring barely move (unit norm).

    The magnitudes of the Fourier transform of the log-polar spectrum: a rotation or a
    scale change shifts the log-polar spectrum cyclically, which leaves the magnitudes
    unchanged, and mirroring reverses its angle axis, which does too (Fourier-Mellin
    invariants; the magnitudes at angle frequencies k and -k are averaged for that). The
    ``size x size`` lowest frequencies, log-compressed, without the mean.
    """
    return invariant_from_spectrum(_rfft2(_log_polar(thumb, width, height)[0]), size)


def invariant_from_spectrum(spectrum: np.ndarray, size: int = 8) -> np.ndarray:
    """:func:`invariant_descriptor` from an already computed log-polar spectrum."""
    magnitude = np.abs(spectrum)
    rows = np.arange(size)
    symmetric = 0.5 * (magnitude[rows, :size] + magnitude[-rows % len(magnitude), :size])
    block = np.log1p(symmetric).ravel()[1:]
    block = block - block.mean()
    norm = float(np.linalg.norm(block))
    return (block / norm if norm > 1e-9 else np.zeros_like(block)).astype(np.float32)


def _rfft2(x: np.ndarray) -> np.ndarray:
    """``numpy.fft.rfft2`` of a float32 picture, computed by OpenCV (about twice as fast)."""
    full = cv2.dft(x.astype(np.float32, copy=False), flags=cv2.DFT_COMPLEX_OUTPUT)
    half = full[:, : x.shape[1] // 2 + 1]
    return (half[..., 0] + 1j * half[..., 1]).astype(np.complex64)


def screen_pairs(
    prepared: list[GeoPrepared], pairs: list[tuple[int, int, bool]], *, chunk: int = 256
) -> list[Screen]:
    """Fourier-Mellin screen of ``(i, j, mirror)`` index pairs, batched."""
    out: list[Screen] = []
    for start in range(0, len(pairs), chunk):
        part = pairs[start : start + chunk]
        fa = np.stack([prepared[i].spectrum[0] for i, _, _ in part])
        fb = np.stack([prepared[j].spectrum[int(m)] for _, j, m in part])
        corr = np.fft.irfft2(fa * fb.conj(), s=(_LP_ANGLES, _LP_RADII), axes=(1, 2))
        out.extend(_screens_from_peaks(corr))
    return out


def _screens_from_peaks(corr: np.ndarray) -> list[Screen]:
    """Each correlation's peak, refined to a fraction of a cell by the centroid of its
    3 x 3 neighbourhood, as rotation and scale; the neighbourhood's sum is the response."""
    n, rows, cols = corr.shape
    r0, c0 = np.divmod(corr.reshape(n, -1).argmax(axis=1), cols)
    around = np.arange(-1, 2)
    rr = (r0[:, None] + around) % rows
    cc = (c0[:, None] + around) % cols
    patch = np.maximum(corr[np.arange(n)[:, None, None], rr[:, :, None], cc[:, None, :]], 0.0)
    patch = patch.astype(np.float64)
    total = patch.sum(axis=(1, 2))
    safe = np.where(total > 0, total, 1.0)
    row = r0 + np.where(total > 0, patch.sum(axis=2) @ around / safe, 0.0)
    col = c0 + np.where(total > 0, patch.sum(axis=1) @ around / safe, 0.0)
    row = np.where(row > rows / 2, row - rows, row)
    col = np.where(col > cols / 2, col - cols, col)
    angles = row * 180.0 / rows
    scales = np.exp(col * math.log(SPECTRUM_PX / 2) / cols)
    return [
        Screen(angle_deg=a, scale=s, response=t)
        for a, s, t in zip(angles.tolist(), scales.tolist(), total.tolist(), strict=True)
    ]


def align(
    pa: GeoPrepared,
    pb: GeoPrepared,
    thumbs_a: AlignThumbs,
    thumbs_b: AlignThumbs,
    screen: Screen,
    *,
    mirror: bool,
    limits: GeometryLimits = GeometryLimits(),
    centred: bool = False,
) -> Alignment | None:
    """Find the affine map from thumbnail a to thumbnail b, starting from the screen.

    ``thumbs_a`` / ``thumbs_b`` come from :func:`ecc_thumbs`; ``b`` is taken mirrored
    when ``mirror``. The screen's similarity is
    checked at 64 px first (a correlation, microseconds), and only a pair that correlates
    there is refined by ECC at 128 px. Returns ``None`` when the pictures do not align.
    ``centred`` starts from the two pictures' centres on each other instead of measuring
    the translation (a rotation onto a larger canvas keeps the centre).
    """
    warp = _canvas_to_thumb(pa, pb, _similarity_from_screen(pa, pb, screen, mirror, centred))
    return refine(pa, pb, thumbs_a, thumbs_b, warp, mirror, limits, screen.response)


def refine(
    pa: GeoPrepared,
    pb: GeoPrepared,
    thumbs_a: AlignThumbs,
    thumbs_b: AlignThumbs,
    warp: np.ndarray,
    mirror: bool,
    limits: GeometryLimits,
    response: float,
) -> Alignment | None:
    """Check a first thumbnail map at 64 px, then refine it by ECC at 128 px."""
    m = int(mirror)
    if (
        _correlation(thumbs_a.half[0], thumbs_b.half[m], _rescale(warp, 0.5))
        < limits.min_initial_cc
    ):
        return None
    try:
        cc, warp = cv2.findTransformECC(
            thumbs_a.full[0], thumbs_b.full[m], warp, cv2.MOTION_AFFINE, _ECC_CRITERIA, None, 1
        )
    except cv2.error:
        return None
    return _describe(
        warp.astype(np.float64), pa.image_size, pb.image_size, float(cc), mirror, response
    )


_CROP_SCALES = np.geomspace(0.55, 0.92, 6)  # a crop's side in its original's frame
_MIN_CROP_MATCH = 0.8  # normalised cross-correlation of the best placement
_MIN_TEMPLATE_PX = 7  # at half size


def crop_placement(
    pa: GeoPrepared, pb: GeoPrepared, *, mirror: bool
) -> tuple[np.ndarray, float] | None:
    """Where one picture sits inside the other, as a first thumbnail map a -> b with its
    correlation; ``None`` when no placement correlates.

    A crop keeps too little of its original's spectrum for the Fourier-Mellin screen, but
    its picture is a piece of the other one: each picture, reduced by a few scales, is
    looked for inside the other (normalised cross-correlation on the canvases)."""
    m = int(mirror)
    best: tuple[float, np.ndarray] | None = None
    for inner, outer, inverse in ((pb, pa, False), (pa, pb, True)):
        found = _best_placement(inner, outer, m if not inverse else 0, m if inverse else 0)
        if found is not None and (best is None or found[0] > best[0]):
            score, (x, y), scale = found
            # canvas of the outer picture -> canvas of the inner one
            ox, oy = outer.offset
            ix, iy = inner.offset
            to_inner = np.array([[1 / scale, 0.0, ix - (ox + x) / scale],
                                 [0.0, 1 / scale, iy - (oy + y) / scale]])  # fmt: skip
            best = (score, to_inner if not inverse else _invert_affine(to_inner))
    if best is None or best[0] < _MIN_CROP_MATCH:
        return None
    return _canvas_to_thumb(pa, pb, best[1]), best[0]


def _best_placement(
    inner: GeoPrepared, outer: GeoPrepared, inner_side: int, outer_side: int
) -> tuple[float, tuple[float, float], float] | None:
    """Where ``inner``'s picture, reduced by one of the crop scales, best matches inside
    ``outer``'s picture: ``(correlation, top-left in outer's canvas pixels, scale)``.

    Searched at half the canvas size (32 px on the long side), which is enough to place
    the crop for ECC to refine, at a quarter of the cost."""
    haystack = outer.crop_pieces.haystacks[outer_side]
    best = None
    rows, columns = haystack.shape
    for needle in inner.crop_pieces.needles[inner_side]:
        if needle is None or needle.shape[1] > columns or needle.shape[0] > rows:
            continue
        result = cv2.matchTemplate(haystack, needle, cv2.TM_CCOEFF_NORMED)
        _, score, _, (x, y) = cv2.minMaxLoc(result)
        if best is None or score > best[0]:
            best = (float(score), (2.0 * x, 2.0 * y), 2.0 * needle.shape[1] / inner.size[0])
    return best


@dataclass(frozen=True)
class CropPieces:
    """What :func:`crop_placement` cuts from one picture, each ``[plain, mirrored]``: the
    picture at half size (where others are looked for) and reduced by each crop scale
    (what is looked for in others; ``None`` where too small)."""

    haystacks: tuple[np.ndarray, np.ndarray]
    needles: tuple[tuple[np.ndarray | None, ...], tuple[np.ndarray | None, ...]]


def crop_pieces(prepared: GeoPrepared) -> CropPieces:
    """The :class:`CropPieces` of a prepared picture (once per image and side)."""
    x, y = prepared.offset
    w, h = prepared.size
    pictures = [prepared.small[side][y : y + h, x : x + w] for side in (0, 1)]
    needles = []
    for picture in pictures:
        scaled = []
        for scale in _CROP_SCALES.tolist():
            # the two canvases show their pictures at SPECTRUM_PX on the long side, so the
            # crop's pixels shrink by its share of the other's side
            tw, th = round(w * scale / 2), round(h * scale / 2)
            if min(tw, th) < _MIN_TEMPLATE_PX:
                scaled.append(None)
            else:
                scaled.append(cv2.resize(picture, (tw, th), interpolation=cv2.INTER_AREA))
        needles.append(tuple(scaled))
    haystacks = tuple(_halved(picture) for picture in pictures)
    return CropPieces(haystacks, tuple(needles))  # type: ignore[arg-type]


def _halved(picture: np.ndarray) -> np.ndarray:
    h, w = picture.shape
    return cv2.resize(picture, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)


def _invert_affine(m: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(m.astype(np.float64))


def _rescale(warp: np.ndarray, f: float) -> np.ndarray:
    """A thumbnail map at another resolution (pixel-centre convention)."""
    lin = warp[:, :2].astype(np.float64)
    c = 0.5 / f - 0.5
    shift = f * (lin @ np.array([c, c]) + warp[:, 2] + 0.5) - 0.5
    return np.hstack([lin, shift[:, None]]).astype(np.float32)


def _correlation(a: np.ndarray, b: np.ndarray, warp: np.ndarray) -> float:
    """Correlation of ``a`` and ``b`` warped onto it, inside the overlap."""
    n = a.shape[0]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpAffine(b, warp, (n, n), flags=flags, borderValue=np.nan)
    inside = ~np.isnan(warped)
    if inside.sum() < 0.25 * a.size:
        return -1.0
    x, y = a[inside], warped[inside]
    x = x - x.mean()
    y = y - y.mean()
    return float((x @ y) / (math.sqrt(float(x @ x) * float(y @ y)) + 1e-9))


@dataclass(frozen=True)
class AlignThumbs:
    """Blurred, standardised thumbnails for alignment, each ``[plain, mirrored]``."""

    full: np.ndarray  # (2, 128, 128) float32
    half: np.ndarray  # (2, 64, 64) float32


def ecc_thumbs(thumb: np.ndarray) -> AlignThumbs:
    """The thumbnails :func:`align` works on (once per image)."""
    full = _standardised(thumb)
    small = cv2.resize(thumb, (THUMB_PX // 2, THUMB_PX // 2), interpolation=cv2.INTER_AREA)
    half = _standardised(small)
    return AlignThumbs(np.stack([full, full[:, ::-1]]), np.stack([half, half[:, ::-1]]))


def _standardised(x: np.ndarray) -> np.ndarray:
    y = cv2.GaussianBlur(x.astype(np.float32), (5, 5), 1.0)
    return ((y - y.mean()) / (float(y.std()) + 1e-6)).astype(np.float32)


def is_plausible(al: Alignment, limits: GeometryLimits = GeometryLimits()) -> str | None:
    """``None`` when the map is an edit we accept, else the reason it is not."""
    if al.cc < limits.min_cc:
        return "pictures do not align"
    if abs(al.angle_deg) > limits.max_angle_deg:
        return "rotation too large"
    if al.anisotropy > limits.max_anisotropy or abs(al.shear_deg) > limits.max_shear_deg:
        return "not a rotation, crop or resize"
    lin, shift = al.warp[:, :2].astype(np.float64), al.warp[:, 2].astype(np.float64)
    moved = float(np.hypot(*(lin @ np.full(2, THUMB_PX / 2 - 0.5) + shift - (THUMB_PX / 2 - 0.5))))
    if np.abs(lin - np.eye(2)).max() < limits.frame_tolerance and moved > limits.max_frame_shift_px:
        # same frame size, moved content: no crop or rotation does that; a camera does
        return "the frame moved (another shot of the scene)"
    return None


def compare_aligned(
    a: np.ndarray,
    b: np.ndarray,
    warp: np.ndarray,
    textured_a: np.ndarray,
    textured_b: np.ndarray,
    fill_a: np.ndarray | None = None,
    fill_b: np.ndarray | None = None,
) -> dict[str, float]:
    """Compare thumbnail ``b`` warped onto thumbnail ``a`` inside their overlap.

    ``a`` and ``b`` are float32 thumbnails (``b`` as aligned, mirrored when needed). Both
    are blurred so that the blur is the same in ``a``'s pixels whatever the scale between
    them: resampling shifts fine detail by fractions of a pixel, and a magnified copy
    shows detail the other lacks; neither must count as a change.

    ``fill_a`` / ``fill_b`` (from :func:`fill_mask`) leave out the flat borders a rotation
    or a canvas change painted in.

    Returns ``mad`` and ``changed`` (as in :mod:`lookalike.verify`, over the overlap),
    ``overlap_a`` / ``overlap_b`` (share of each thumbnail the other covers) and
    ``outside_a`` / ``outside_b`` (share of each thumbnail that shows content, i.e. not
    fill, and is not covered; without fill maps, textured pixels count as content).
    """
    n = THUMB_PX
    scale = math.sqrt(abs(float(np.linalg.det(warp[:, :2].astype(np.float64)))))
    blurred_a = cv2.GaussianBlur(a, (0, 0), _COMPARE_SIGMA)
    blurred_b = cv2.GaussianBlur(b, (0, 0), _COMPARE_SIGMA * max(scale, 0.5))
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpAffine(blurred_b, warp, (n, n), flags=flags)
    ones = np.ones((n, n), np.uint8)
    near = cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
    cover_a = cv2.warpAffine(ones, warp, (n, n), flags=near, borderValue=0)
    inverse = cv2.invertAffineTransform(warp)
    cover_b = cv2.warpAffine(ones, inverse, (n, n), flags=near, borderValue=0)
    # away from both frames' edges, where blur mixes in what lies beyond (fill, border)
    inside = cv2.erode(
        cover_a, _KERNEL, iterations=3, borderType=cv2.BORDER_CONSTANT, borderValue=0
    ).astype(bool)
    if fill_a is not None:
        inside &= ~fill_a
    if fill_b is not None:
        inside &= cv2.warpAffine(fill_b.astype(np.uint8), warp, (n, n), flags=near) == 0
    out = {
        "overlap_a": float(cover_a.mean()),
        "overlap_b": float(cover_b.mean()),
        "outside_a": _outside(textured_a, cover_a, fill_a),
        "outside_b": _outside(textured_b, cover_b, fill_b),
    }
    if inside.sum() < 0.25 * n * n:
        return {**out, "mad": 1.0, "changed": 1.0}
    va, vb = blurred_a[inside], warped[inside]
    diff = (np.abs(va - _quantile_match(vb, va)) + np.abs(vb - _quantile_match(va, vb))) / 510.0
    out["detail"] = float(textured_a[inside].mean())
    out["mad"] = float(diff.mean())
    out["changed"] = float(np.count_nonzero(diff > 0.1) / diff.size)
    return out


def compare_thumb(thumb: np.ndarray) -> np.ndarray:
    """A thumbnail as :func:`compare_aligned` takes it, and lightly blurred for
    :func:`textured`: (plain, blurred)."""
    plain = thumb.astype(np.float32)
    return np.stack([plain, cv2.GaussianBlur(plain, (0, 0), _COMPARE_SIGMA)])


def fill_mask(thumb: np.ndarray) -> np.ndarray:
    """Flat black or white regions touching the border (rotation corners, padding), grown."""
    spread = cv2.dilate(thumb, _KERNEL) - cv2.erode(thumb, _KERNEL)
    flat = ((spread <= 3) & ((thumb <= 10) | (thumb >= 245))).astype(np.uint8)
    _, labels = cv2.connectedComponents(flat, connectivity=4)
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    border = np.unique(edge[edge > 0])
    if border.size == 0:
        return np.zeros(thumb.shape, bool)
    mask = np.isin(labels, border).astype(np.uint8)
    return cv2.dilate(mask, _KERNEL, iterations=2).astype(bool)


def textured(blurred: np.ndarray) -> np.ndarray:
    """Boolean map of the pixels of a blurred thumbnail that carry texture (edges)."""
    gx = cv2.Sobel(blurred, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(blurred, cv2.CV_32F, 0, 1, ksize=3)
    return cv2.magnitude(gx, gy) > _TEXTURE_LEVEL


def _outside(texture: np.ndarray, cover: np.ndarray, fill: np.ndarray | None) -> float:
    """Share of the thumbnail showing content outside the (slightly grown) cover.

    Content is anything but fill (flat borders painted in by a rotation or a canvas
    change); ``texture`` is kept for callers that want only textured content counted.
    """
    grown = cv2.dilate(cover, _KERNEL, iterations=2).astype(bool)
    content = ~fill if fill is not None else texture
    return float(np.count_nonzero(content & ~grown) / content.size)


def _quantile_match(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Map ``src`` values onto ``dst``'s distribution (mid-rank quantile matching).

    Values are quantised to 1/16 grey level, so ranks and sorted values come straight
    from histograms (no sort).
    """
    qs = np.rint(src * 16.0).astype(np.uint16)
    hist = np.bincount(qs, minlength=256 * 16)
    mid_rank = np.cumsum(hist) - hist + (hist - 1) // 2
    hist_dst = np.bincount(np.rint(dst * 16.0).astype(np.uint16), minlength=256 * 16)
    ordered = np.repeat(np.arange(len(hist_dst), dtype=np.float32) / 16.0, hist_dst)
    return ordered[mid_rank[qs]]


def _similarity_from_screen(
    pa: GeoPrepared, pb: GeoPrepared, screen: Screen, mirror: bool, centred: bool = False
) -> np.ndarray:
    """Canvas a -> canvas b similarity: rotation and scale from the screen, translation by
    phase correlation of the canvases once rotation and scale are undone (none when
    ``centred``)."""
    n = SPECTRUM_PX
    centre = (n / 2.0, n / 2.0)
    rot = cv2.getRotationMatrix2D(centre, screen.angle_deg, screen.scale)
    if centred:
        return rot.astype(np.float64)
    a_canvas = pa.small[0]
    b_canvas = pb.small[int(mirror)]
    undone = cv2.warpAffine(b_canvas, rot, (n, n), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    # a copy: cv2.phaseCorrelate (OpenCV 5.0) applies the window to its inputs in place
    (dx, dy), _ = cv2.phaseCorrelate(a_canvas.copy(), undone, _hann(n, n))
    shifted = rot.astype(np.float64).copy()
    shifted[:, 2] += rot[:, :2] @ np.array([dx, dy])
    return shifted


def _canvas_to_thumb(pa: GeoPrepared, pb: GeoPrepared, m: np.ndarray) -> np.ndarray:
    """Turn a canvas a -> canvas b map into a thumbnail a -> thumbnail b map."""
    sa = np.diag([pa.size[0] / THUMB_PX, pa.size[1] / THUMB_PX])
    sb = np.diag([THUMB_PX / pb.size[0], THUMB_PX / pb.size[1]])
    lin = sb @ m[:, :2] @ sa
    # thumb px centre convention: canvas = (thumb + 0.5) * s - 0.5 + offset
    ta = np.array(pa.offset, float) + 0.5 * np.diag(sa) - 0.5
    tb = np.array(pb.offset, float) + 0.5 / np.diag(sb) - 0.5
    shift = sb @ (m[:, :2] @ ta + m[:, 2] - tb)
    return np.hstack([lin, shift[:, None]]).astype(np.float32)


def _describe(
    warp: np.ndarray,
    size_a: tuple[int, int],
    size_b: tuple[int, int],
    cc: float,
    mirror: bool,
    response: float,
) -> Alignment:
    """Express a thumbnail map in image pixels: angle, scale, anisotropy, shear."""
    to_a = np.diag([size_a[0] / THUMB_PX, size_a[1] / THUMB_PX])
    to_b = np.diag([size_b[0] / THUMB_PX, size_b[1] / THUMB_PX])
    lin = to_b @ warp[:, :2] @ np.linalg.inv(to_a)  # a image px -> b image px
    sx, sy = math.hypot(lin[0, 0], lin[1, 0]), math.hypot(lin[0, 1], lin[1, 1])
    angle_x = math.degrees(math.atan2(lin[1, 0], lin[0, 0]))
    angle_y = math.degrees(math.atan2(-lin[0, 1], lin[1, 1]))
    shear = (angle_y - angle_x + 180.0) % 360.0 - 180.0
    centre_a = np.array([THUMB_PX / 2 - 0.5, THUMB_PX / 2 - 0.5])
    centre_b = warp[:, :2] @ centre_a + warp[:, 2]
    moved = to_b @ (centre_b - centre_a)
    return Alignment(
        warp=warp.astype(np.float32),
        mirror=mirror,
        cc=cc,
        angle_deg=-(angle_x + angle_y) / 2.0,  # image y points down: flip to counter-clockwise
        scale=math.sqrt(max(sx * sy, 1e-12)),
        anisotropy=abs(math.log(max(sx, 1e-9) / max(sy, 1e-9))),
        shear_deg=shear,
        translation=(float(moved[0]), float(moved[1])),
        response=response,
    )


@lru_cache(maxsize=64)
def _hann(rows: int, cols: int) -> np.ndarray:
    return cv2.createHanningWindow((cols, rows), cv2.CV_32F)


@lru_cache(maxsize=4)
def _highpass(n: int) -> np.ndarray:
    y = np.cos(np.pi * (np.arange(n) - n / 2) / n)
    x = np.outer(y, y)
    return ((1.0 - x) * (2.0 - x)).astype(np.float32)
