"""Lazy, cached thumbnails and the bytes of stored images, served only when verified.

Thumbnails are made on first request, or ahead of it by the review UI's prefetcher
(:mod:`lookalike.ui.prefetch`, every size a page shows from one decode), with Pillow
(JPEG draft mode, so a 24-megapixel JPEG decodes at 1/8 scale; EXIF orientation applied;
alpha flattened onto white) and cached next to the store as
``<store>.thumbs/<digest[:2]>/<digest>_<size>.jpg``. Since the key is the content digest,
a renamed or copied file reuses its thumbnail, and an edited file gets a new one.

Every byte read from a dataset goes through :func:`read_verified`: the file must still
hash to the digest the scan recorded, so nothing else (a file swapped for a symlink to
``/etc/passwd``, a file edited since the scan) is ever shown.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageChops, ImageOps

from .decoding import DEFAULT_MAX_PIXELS
from .errors import DecodeError, FileChangedError, InputNotFoundError

SIZES = (128, 256, 512, 1024, 2048)
"""Thumbnail sizes (longest side, pixels); other sizes are refused so the cache stays small."""

WEB_FORMATS = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
}
"""Formats browsers display as they are; others are shown through a large thumbnail."""

_QUALITY = 82


def cache_dir_for(store_path: str | os.PathLike[str]) -> Path:
    """The thumbnail cache folder of a store: ``<store>.thumbs`` beside it."""
    return Path(os.fspath(store_path) + ".thumbs")


def cached_path(cache_dir: Path, digest: str, size: int) -> Path:
    """Where the thumbnail of ``digest`` at ``size`` is cached."""
    return cache_dir / digest[:2] / f"{digest}_{size}.jpg"


def read_verified(path: str, digest: str) -> bytes:
    """The bytes of ``path``, checked against the content digest the scan recorded.

    Raises:
        InputNotFoundError: the file is gone (moved, quarantined, deleted).
        FileChangedError: the file's bytes changed since the scan.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError as exc:
        raise InputNotFoundError(
            f"{path!r} is gone since the scan (moved or quarantined?). "
            "Re-scan to refresh the store."
        ) from exc
    except OSError as exc:
        raise InputNotFoundError(f"Cannot read {path!r}: {exc.strerror or exc}.") from exc
    if hashlib.sha256(data).hexdigest() != digest:
        raise FileChangedError(
            f"{path!r} changed since the scan (its bytes no longer match the recorded digest); "
            "lookalike does not show or move it. Re-scan to refresh the store."
        )
    return data


def render_thumbnail(data: bytes, size: int, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> bytes:
    """JPEG bytes of an upright thumbnail whose longest side is at most ``size``.

    Raises:
        DecodeError: the bytes are not a readable image, or it has too many pixels.
    """
    return render_thumbnails(data, (size,), max_pixels=max_pixels)[size]


def render_thumbnails(
    data: bytes, sizes: Sequence[int], *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> dict[int, bytes]:
    """JPEG bytes of upright thumbnails at each of ``sizes``, from one decode.

    The picture is decoded once (JPEG draft mode for the largest size), reduced to the
    largest size, and each smaller size is reduced from the previous one, so the three
    sizes a review page shows cost about one thumbnail.

    Raises:
        DecodeError: the bytes are not a readable image, or it has too many pixels.
    """
    wanted = sorted(set(sizes), reverse=True)
    try:
        with warnings.catch_warnings():
            # The scan already accepted this file under max_pixels, checked below too.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                if im.width * im.height > max_pixels:
                    raise DecodeError(
                        f"Image has {im.width}x{im.height} pixels, more than the limit "
                        f"{max_pixels}; no thumbnail is made."
                    )
                if im.format == "JPEG":
                    im.draft("RGB", (wanted[0], wanted[0]))
                rgb = _to_rgb(ImageOps.exif_transpose(im))
                out: dict[int, bytes] = {}
                for size in wanted:
                    rgb.thumbnail((size, size), Image.Resampling.LANCZOS, reducing_gap=2.0)
                    buf = io.BytesIO()
                    rgb.save(buf, "JPEG", quality=_QUALITY, optimize=False)
                    out[size] = buf.getvalue()
                return out
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
        if isinstance(exc, DecodeError):
            raise
        raise DecodeError(f"Cannot make a thumbnail: {exc}") from exc


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        im = im.point(lambda v: v / 256).convert("L")
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = im.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return im.convert("RGB")


def thumbnail(cache_dir: Path, path: str, digest: str, size: int) -> Path:
    """The cached thumbnail file of ``path`` at ``size``, made now when missing.

    Raises:
        ValueError: ``size`` is not one of :data:`SIZES`.
        InputNotFoundError, FileChangedError: see :func:`read_verified`.
        DecodeError: the image cannot be decoded.
    """
    if size not in SIZES:
        raise ValueError(f"Thumbnail size {size!r} is not offered; choose from {SIZES}.")
    target = cached_path(cache_dir, digest, size)
    if target.exists():
        return target
    data = render_thumbnail(read_verified(path, digest), size)
    _write_atomic(target, data)
    return target


def ensure_thumbnails(cache_dir: Path, path: str, digest: str, sizes: Sequence[int]) -> list[int]:
    """Make the cached thumbnails of ``path`` at ``sizes`` that are missing, with one read
    and one decode; returns the sizes made (none when all were cached already).

    Raises:
        ValueError: a size is not one of :data:`SIZES`.
        InputNotFoundError, FileChangedError: see :func:`read_verified`.
        DecodeError: the image cannot be decoded.
        OSError: the cache cannot be written.
    """
    bad = [s for s in sizes if s not in SIZES]
    if bad:
        raise ValueError(f"Thumbnail size {bad[0]!r} is not offered; choose from {SIZES}.")
    missing = [s for s in sizes if not cached_path(cache_dir, digest, s).exists()]
    if not missing:
        return []
    for size, data in render_thumbnails(read_verified(path, digest), missing).items():
        _write_atomic(cached_path(cache_dir, digest, size), data)
    return missing


def thumbnail_bytes(cache_dir: Path, path: str, digest: str, size: int) -> bytes:
    """JPEG bytes of the thumbnail; made in memory when the cache cannot be written
    (a store on read-only media), so viewing never depends on a writable folder."""
    try:
        return thumbnail(cache_dir, path, digest, size).read_bytes()
    except PermissionError:
        return render_thumbnail(read_verified(path, digest), size)
    except OSError as exc:
        if exc.errno not in (errno.EROFS, errno.ENOSPC, errno.EDQUOT):
            raise
        return render_thumbnail(read_verified(path, digest), size)


def _write_atomic(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".jpg")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def difference_image(thumb_a: bytes, thumb_b: bytes, *, gain: float = 4.0) -> bytes:
    """PNG of the amplified per-pixel difference of two thumbnails (b resized to a).

    Black means identical; bright areas show where the pictures differ.
    """
    with Image.open(io.BytesIO(thumb_a)) as a_img, Image.open(io.BytesIO(thumb_b)) as b_img:
        a = a_img.convert("RGB")
        b = b_img.convert("RGB").resize(a.size, Image.Resampling.BILINEAR)
    diff = ImageChops.difference(a, b).point(lambda v: min(255, int(v * gain)))
    out = io.BytesIO()
    diff.save(out, "PNG")
    return out.getvalue()


def display_bytes(cache_dir: Path, path: str, digest: str, fmt: str) -> tuple[bytes, str]:
    """Bytes and media type to show an image at full size in a browser.

    Browser-friendly formats are served as they are (verified); others (TIFF, HEIF...)
    through the largest thumbnail.
    """
    media = WEB_FORMATS.get(fmt.upper())
    if media is not None:
        return read_verified(path, digest), media
    return thumbnail_bytes(cache_dir, path, digest, SIZES[-1]), "image/jpeg"
