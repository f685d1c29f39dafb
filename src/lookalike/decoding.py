"""Bytes -> a normalised grayscale picture, by content, with EXIF orientation applied.

The format is told by the file's first bytes (magic numbers), never by its extension.
JPEGs are decoded in Pillow's draft mode (DCT scaling), which is what makes a scan fast:
features only need a picture of about ``draft_px`` pixels on its short side.

Every problem becomes a :class:`~lookalike.errors.DecodeError` with a one-line message.
"""

from __future__ import annotations

import hashlib
import io
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import DecodeError, require

DEFAULT_MAX_PIXELS = 178_956_970  # Pillow's own hard limit (2 x MAX_IMAGE_PIXELS)
DRAFT_PX = 128  # the thumbnail size (features.THUMB_PX): decode no more than it needs

IMAGE_EXTENSIONS = frozenset(
    ".jpg .jpeg .jpe .jfif .png .gif .bmp .dib .tif .tiff .webp .mpo .heic .heif .avif".split()
)
LOSSLESS_FORMATS = frozenset({"PNG", "BMP", "GIF", "TIFF"})
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}


@dataclass(frozen=True)
class DecodedImage:
    """A decoded picture reduced for feature extraction, plus facts about the file."""

    gray: np.ndarray  # 2-D uint8, upright, 1-4 times draft_px on its short side (or smaller)
    width: int  # full-resolution width after EXIF orientation
    height: int
    format: str  # JPEG, PNG, WEBP, ...
    lossless: bool
    pixel_digest: str | None  # hash of full-resolution pixels, for lossless files only
    orientation: int  # EXIF orientation tag that was applied (1 = none)
    stream_digest: str | None = None  # JPEG: hash of the coded image without metadata
    richness: int = 0  # how much picture the file carries: see picture_richness


def sniff_format(head: bytes) -> str | None:
    """Name the image format from the first bytes of a file, or ``None`` if not an image."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head.startswith(b"BM") and len(head) >= 14:
        return "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _AVIF_BRANDS:
            return "AVIF"
        if brand in _HEIF_BRANDS:
            return "HEIF"
    return None


def content_digest(data: bytes) -> str:
    """SHA-256 of the file's bytes: the identity of its content."""
    return hashlib.sha256(data).hexdigest()


def decode_image(
    data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, draft_px: int = DRAFT_PX
) -> DecodedImage:
    """Decode image bytes into an upright grayscale picture for feature extraction.

    Raises:
        DecodeError: not an image, unsupported, truncated, corrupt, or too many pixels.
    """
    kind = sniff_format(data[:32])
    if kind is None:
        raise DecodeError(_not_an_image_message(data), stage="identify")
    if kind in ("HEIF", "AVIF"):
        _register_heif_opener(kind)
    try:
        with pillow_warnings_silenced(), Image.open(io.BytesIO(data)) as im:
            return _decode_opened(im, max_pixels=max_pixels, draft_px=draft_px)
    except DecodeError:
        raise
    except Image.DecompressionBombError as exc:
        raise DecodeError(f"decompression bomb refused: {exc}", stage="decode") from exc
    except UnidentifiedImageError as exc:
        raise DecodeError(
            f"{kind} header is not readable (corrupt file)", stage="identify"
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
        raise DecodeError(f"cannot decode {kind}: {_one_line(exc)}", stage="decode") from exc
    except MemoryError as exc:
        raise DecodeError(f"out of memory decoding {kind}", stage="decode") from exc


def decode_full_pixels(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> str:
    """Return the digest of an image's full-resolution, upright pixels (any format).

    Used on demand to tell ``pixel`` duplicates among lossy files with different bytes.
    """
    try:
        with pillow_warnings_silenced(), Image.open(io.BytesIO(data)) as im:
            _check_pixels(im, max_pixels)
            im.load()
            return _pixel_digest(_upright(im, _orientation(im)))
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DecodeError(f"cannot decode: {_one_line(exc)}", stage="decode") from exc


_silenced_lock = threading.Lock()
_silenced_depth = 0
_silenced_filter: tuple[object, ...] | None = None


@contextmanager
def pillow_warnings_silenced() -> Iterator[None]:
    """Ignore the warnings Pillow raises while lookalike decodes (corrupt EXIF, a malformed
    MPO read as a JPEG, ``DecompressionBombWarning`` under ``--max-pixels``...).

    What they warn about either still decodes (lookalike uses the picture) or fails with a
    :class:`DecodeError` of its own. Unlike :class:`warnings.catch_warnings`, this is safe
    to enter from several threads at once: one filter (Pillow's modules only) is installed
    while any thread decodes, and removed when the last one is done.
    """
    global _silenced_depth, _silenced_filter
    with _silenced_lock:
        if _silenced_depth == 0:
            warnings.filterwarnings("ignore", module=r"PIL(\.|$)")
            _silenced_filter = warnings.filters[0]
        _silenced_depth += 1
    try:
        yield
    finally:
        with _silenced_lock:
            _silenced_depth -= 1
            if _silenced_depth == 0:
                with suppress(ValueError):  # another catch_warnings() restored the list
                    warnings.filters.remove(_silenced_filter)  # type: ignore[arg-type]
                    warnings._filters_mutated()  # type: ignore[attr-defined]
                _silenced_filter = None


def _decode_opened(im: Image.Image, *, max_pixels: int, draft_px: int) -> DecodedImage:
    _check_pixels(im, max_pixels)
    fmt = (im.format or "unknown").upper()
    lossless = _is_lossless(im, fmt)
    orientation = _orientation(im)
    width, height = im.size if orientation < 5 else im.size[::-1]
    stored_in_colour = im.mode not in ("1", "L", "LA", "I", "F") and not im.mode.startswith("I;")
    if lossless:
        im.load()
        upright = _upright(im, orientation)
        digest: str | None = _pixel_digest(upright)
    else:
        if fmt in ("JPEG", "MPO") and im.mode in ("RGB", "L", "YCbCr"):
            im.draft("L", (draft_px, draft_px))
        im.load()
        upright = _upright(im, orientation)
        digest = None
    return DecodedImage(
        gray=to_gray(_reduced(upright, draft_px)),
        width=width,
        height=height,
        format=fmt,
        lossless=lossless,
        pixel_digest=digest,
        orientation=orientation,
        richness=picture_richness(
            upright, colour=stored_in_colour if upright.mode == "L" else None
        ),
    )


# -- picture richness (a keeper criterion) ------------------------------------------------

FEW_COLOURS = 16
"""A picture with at most this many distinct values (a 1-bit dither, a small palette)
carries less than any grayscale or colour picture."""
_TIER_FEW, _TIER_GRAY, _TIER_COLOUR = 0, 1, 2
_NEUTRAL_SPREAD = 12  # max - min of R, G, B (of 255) below which a pixel is gray
_COLOUR_SHARE = 0.01  # share of non-gray pixels that makes a picture colour


def picture_richness(im: Image.Image, *, colour: bool | None = None) -> int:
    """How much picture a decoded image carries, as ``100 * tier + bits per channel``.

    Tiers: 2 colour, 1 grayscale, 0 few colours (at most :data:`FEW_COLOURS` distinct
    values: a 1-bit dither, a 16-colour palette; bits then count the colours, 1 for two).
    A picture stored in colour whose pixels are all gray is grayscale. ``colour`` gives
    the answer when ``im`` lost its colour in decoding (a JPEG drafted to luminance).
    """
    if im.mode == "1":
        return _TIER_FEW * 100 + 1
    bits = _bits_per_channel(im.mode)
    colours = _distinct_colours(im) if bits <= 8 else None
    if colours is not None:
        return _TIER_FEW * 100 + max(1, (colours - 1).bit_length())
    if colour is None:
        colour = _shows_colour(im)
    return (_TIER_COLOUR if colour else _TIER_GRAY) * 100 + bits


def _bits_per_channel(mode: str) -> int:
    if mode.startswith("I;16") or mode == "I":
        return 16
    return 32 if mode == "F" else 8


def _sample(im: Image.Image, side: int = 64) -> Image.Image:
    """A nearest-neighbour sample of at most ``side`` x ``side`` pixels (no new values)."""
    if im.width <= side and im.height <= side:
        return im
    return im.resize((min(side, im.width), min(side, im.height)), Image.Resampling.NEAREST)


def _distinct_colours(im: Image.Image) -> int | None:
    """The number of distinct pixel values when at most :data:`FEW_COLOURS`, else None."""
    if _sample(im).getcolors(FEW_COLOURS) is None:  # a sample already has more
        return None
    found = im.getcolors(FEW_COLOURS)
    return None if found is None else len(found)


def _shows_colour(im: Image.Image) -> bool:
    sample = _sample(im)
    if sample.mode in ("L", "LA", "I", "F") or sample.mode.startswith("I;"):
        return False
    rgb = sample.convert("RGBA" if sample.mode in ("P", "PA") else "RGB")
    arr = np.asarray(rgb, dtype=np.int16)[..., :3]
    spread = arr.max(axis=-1) - arr.min(axis=-1)
    return bool(np.mean(spread > _NEUTRAL_SPREAD) >= _COLOUR_SHARE)


def richness_of(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> int:
    """:func:`picture_richness` of image bytes (for stores written before it was kept)."""
    return decode_image(data, max_pixels=max_pixels).richness


_REDUCIBLE_MODES = frozenset({"L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "I", "F"})


def _reduced(im: Image.Image, draft_px: int) -> Image.Image:
    """Box-average a picture that no draft mode shrank (PNG, WebP, large TIFF...) by a whole
    factor, keeping at least twice ``draft_px`` on its short side: the features need no
    more, and converting and resizing the full picture cost more than decoding it."""
    factor = min(im.size) // (2 * draft_px)
    if factor < 2 or im.mode not in _REDUCIBLE_MODES:
        return im
    return im.reduce(factor)


def jpeg_stream_digest(data: bytes, orientation: int) -> str | None:
    """Digest of a JPEG's coded image with metadata segments (APPn, COM) left out.

    Two JPEGs with equal stream digests decode to the same pixels, so copies that differ
    only in metadata (stripped EXIF, edited tags) are ``pixel`` duplicates without a decode.
    Returns ``None`` when the marker structure cannot be walked.
    """
    h = hashlib.sha256(b"jpeg-stream:%d:" % orientation)
    view = memoryview(data)  # slices without copying the coded data
    pos = 2
    n = len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2:
            return None
        if marker == 0xDA:  # start of scan: the rest is coded data (and later segments)
            h.update(view[pos:])
            return h.hexdigest()
        if not (0xE0 <= marker <= 0xEF or marker == 0xFE):
            h.update(view[pos : pos + 2 + length])
        pos += 2 + length
    return None


def _check_pixels(im: Image.Image, max_pixels: int) -> None:
    w, h = im.size
    if w <= 0 or h <= 0:
        raise DecodeError(f"image has an empty size {w}x{h}", stage="identify")
    if w * h > max_pixels:
        raise DecodeError(
            f"decompression bomb refused: {w}x{h} = {w * h:,} pixels exceeds --max-pixels "
            f"{max_pixels:,}; raise --max-pixels if the image is genuine",
            stage="identify",
        )


def _is_lossless(im: Image.Image, fmt: str) -> bool:
    if fmt == "WEBP":
        return bool(getattr(im, "info", {}).get("lossless")) or _webp_is_lossless(im)
    if fmt == "TIFF":
        return str(im.info.get("compression", "raw")).lower() not in ("jpeg", "tiff_jpeg", "webp")
    return fmt in LOSSLESS_FORMATS


def _webp_is_lossless(im: Image.Image) -> bool:
    fp = getattr(im, "fp", None)
    if fp is None:
        return False
    pos = fp.tell()
    try:
        fp.seek(0)
        head = fp.read(64)
    finally:
        fp.seek(pos)
    return b"VP8L" in head[12:40]


def _orientation(im: Image.Image) -> int:
    try:
        value = int(im.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - corrupt EXIF must not lose the image
        return 1
    return value if 1 <= value <= 8 else 1


_TRANSPOSE = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT,),
    3: (Image.Transpose.ROTATE_180,),
    4: (Image.Transpose.FLIP_TOP_BOTTOM,),
    5: (Image.Transpose.TRANSPOSE,),
    6: (Image.Transpose.ROTATE_270,),
    7: (Image.Transpose.TRANSVERSE,),
    8: (Image.Transpose.ROTATE_90,),
}


def _upright(im: Image.Image, orientation: int) -> Image.Image:
    """Apply an EXIF orientation (no copy when the image is already upright)."""
    for op in _TRANSPOSE.get(orientation, ()):
        im = im.transpose(op)
    return im


def to_gray(im: Image.Image) -> np.ndarray:
    """Convert any Pillow mode to 2-D uint8 luminance; transparency is flattened on white."""
    mode = im.mode
    if mode == "L":
        return np.asarray(im, dtype=np.uint8)
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        return np.clip(arr * (255.0 / top) + 0.5, 0, 255).astype(np.uint8)
    if mode in ("P", "PA") or "A" in mode or "a" in mode or mode == "LA":
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("L"), dtype=np.uint8)
    if mode in ("RGB", "1"):
        return np.asarray(im.convert("L"), dtype=np.uint8)
    return np.asarray(im.convert("RGB").convert("L"), dtype=np.uint8)


def _pixel_digest(im: Image.Image) -> str:
    """Digest of canonical pixels (palette -> RGB, opaque alpha dropped, wide ints as floats)."""
    mode = im.mode
    h = hashlib.sha256(b"%dx%d:" % im.size)
    if mode in ("RGB", "L"):
        h.update(mode.encode() + b":")
        h.update(im.tobytes())
        return h.hexdigest()
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        h.update(b"wide:")
        h.update(np.ascontiguousarray(np.asarray(im, dtype=np.float64)).tobytes())
        return h.hexdigest()
    has_alpha = "A" in mode or "a" in mode or "transparency" in im.info
    canon = im.convert("RGBA" if has_alpha else "RGB")
    if has_alpha and canon.getextrema()[3] == (255, 255):
        canon = canon.convert("RGB")
    h.update(canon.mode.encode() + b":")
    h.update(canon.tobytes())
    return h.hexdigest()


def _register_heif_opener(kind: str) -> None:
    module = require("pillow_heif", extra="heif")
    if kind == "AVIF" and hasattr(module, "register_avif_opener"):
        module.register_avif_opener()
    module.register_heif_opener()


def _not_an_image_message(data: bytes) -> str:
    if not data:
        return "empty file (0 bytes)"
    head = data[:8]
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "not an image: the file holds text"
    return f"not an image: unknown content starting with {head.hex(' ')}"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]
