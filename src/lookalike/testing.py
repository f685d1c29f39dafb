"""Deterministic synthetic images, near-duplicates and datasets for tests.

Only numpy and Pillow are used, so lookalike's own tests and plugin authors can rely on these
helpers without any extra. Every random choice takes ``rng``: a :class:`numpy.random.Generator`,
an ``int`` seed, or ``None`` for fresh entropy. Encoder parameters are pinned (quality,
subsampling, ``optimize=False``), so one seed gives the same pixels and the same file bytes
on every run. Importing this module does no I/O.

- :func:`make_photo`: a photo-like RGB image, plus the boxes of its shapes.
- :func:`make_variant`: one labelled near-duplicate, for each kind in :data:`VARIANT_KINDS`.
- :func:`make_hard_variant`: one duplicate under a harder change, for each of
  :data:`HARD_VARIANT_KINDS`; :func:`make_labelled_variant` also returns the drawn parameters.
- :func:`make_hard_negative`: two look-alike frames of one scene that are *not* duplicates.
- :func:`write_dataset`: a folder tree with known duplicate groups (:class:`DatasetTruth`).
- :func:`write_edge_case_zoo`: one file per decoding edge case, with its expected outcome.
- :func:`save_image` / :func:`encode_image`: the pinned encoders everything above uses.
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

from lookalike.errors import ConfigError

__all__ = [
    "HARD_VARIANT_KINDS",
    "OUTCOMES",
    "SHAPE_KINDS",
    "VARIANT_KINDS",
    "ZOO_UPRIGHT_TWINS",
    "DatasetTruth",
    "RngLike",
    "Shape",
    "encode_image",
    "make_hard_negative",
    "make_hard_variant",
    "make_labelled_variant",
    "make_photo",
    "make_variant",
    "save_image",
    "write_dataset",
    "write_edge_case_zoo",
    "write_hidden_file",
    "write_symlink_loop",
]

RngLike = np.random.Generator | int | None
"""A generator, an ``int`` seed, or ``None`` for fresh OS entropy."""

SHAPE_KINDS: tuple[str, ...] = ("rectangle", "ellipse", "polygon")

VARIANT_KINDS: tuple[str, ...] = (
    "jpeg_quality", "resize", "brightness", "contrast", "gamma", "noise", "blur",
    "sharpen", "grayscale", "overlay", "crop", "rotate", "hflip",
)  # fmt: skip

OUTCOMES: tuple[str, ...] = ("ok", "failure", "skipped")
"""Outcomes a scan must give a file: featured, listed as a failure, or skipped on purpose.

:func:`write_edge_case_zoo` currently expects only ``"ok"`` and ``"failure"``.
"""

ZOO_UPRIGHT_TWINS: dict[str, str] = {"orientation/exif_6.jpg": "orientation/exif_6_upright.png"}
"""Zoo file with EXIF orientation 6 -> PNG holding exactly the pixels it shows upright."""

_FORMAT_NAMES = {"jpeg": "JPEG", "jpg": "JPEG", "png": "PNG", "webp": "WEBP", "bmp": "BMP"}


def _as_rng(rng: RngLike) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


# --- pinned encoders -------------------------------------------------------------------------


def encode_image(img: Image.Image, fmt: str, *, quality: int = 92, lossless: bool = False) -> bytes:
    """Encode ``img`` as ``fmt`` (jpeg, png, webp or bmp) with every encoder parameter pinned.

    JPEG is baseline 4:2:0 without optimisation, PNG uses zlib level 6, WEBP uses method 4.

    Raises:
        ConfigError: ``fmt`` is not one of the four formats.

    Example:
        >>> img, _ = make_photo(0, size=(64, 48))
        >>> encode_image(img, "jpeg") == encode_image(img, "JPEG")
        True
    """
    name = _FORMAT_NAMES.get(fmt.lower())
    if name is None:
        raise ConfigError(f"Unknown format {fmt!r}; choose one of: jpeg, png, webp, bmp.")
    buf = io.BytesIO()
    if name == "JPEG":
        img = img if img.mode in ("RGB", "L", "CMYK") else img.convert("RGB")
        img.save(buf, "JPEG", quality=quality, subsampling=2, optimize=False, progressive=False)
    elif name == "PNG":
        img.save(buf, "PNG", optimize=False, compress_level=6)
    elif name == "WEBP":
        img = img if img.mode in ("RGB", "RGBA") else img.convert("RGB")
        img.save(buf, "WEBP", quality=quality, lossless=lossless, method=4, exact=False)
    else:
        img.save(buf, "BMP")
    return buf.getvalue()


def save_image(img: Image.Image, path: str | os.PathLike[str], *, quality: int = 92) -> None:
    """Write ``img`` with :func:`encode_image`; the format comes from the file extension.

    Raises:
        ConfigError: the extension is not .jpg/.jpeg/.png/.webp/.bmp (any case).
    """
    Path(path).write_bytes(encode_image(img, Path(path).suffix.lstrip("."), quality=quality))


def _decode(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return img.copy()


# --- photos ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """One drawn shape: its kind, its box ``(x0, y0, x1, y1)`` in pixels, and a class label.

    The box is the drawn geometry clipped to the image (exact to within a pixel); later shapes
    may occlude earlier ones. ``label`` is the annotation class, equal to ``kind`` here.
    """

    kind: str
    box: tuple[float, float, float, float]
    label: str


@dataclass(frozen=True, eq=False)
class _Element:
    kind: str  # a SHAPE_KIND, "line" or "dots"
    points: np.ndarray  # (n, 2) x, y: two corners, polygon vertices, line ends or dot centres
    fill: tuple[int, int, int]
    outline: tuple[int, int, int] | None
    width: int  # outline or line width, or dot radius


@dataclass(frozen=True, eq=False)
class _Scene:
    size: tuple[int, int]
    colours: np.ndarray  # (2, 3) gradient end colours
    angle: float
    blobs: tuple[_Element, ...]
    shapes: tuple[_Element, ...]
    lines: tuple[_Element, ...]
    noise_sigma: float
    blur_radius: float


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    r, g, b = (int(v) for v in rng.integers(0, 256, size=3))
    return r, g, b


def _random_shape(rng: np.random.Generator, w: int, h: int) -> _Element:
    kind = SHAPE_KINDS[int(rng.integers(len(SHAPE_KINDS)))]
    bw, bh = rng.uniform(0.12, 0.4) * w, rng.uniform(0.12, 0.4) * h
    x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
    if kind == "polygon":
        n = int(rng.integers(3, 8))
        theta = np.sort(rng.uniform(0, 2 * np.pi, n))
        r = rng.uniform(0.55, 1.0, n)
        xs, ys = x0 + bw / 2 * (1 + r * np.cos(theta)), y0 + bh / 2 * (1 + r * np.sin(theta))
        points = np.stack([xs, ys], axis=1)
    else:
        points = np.array([[x0, y0], [x0 + bw, y0 + bh]])
    outline = _colour(rng) if rng.random() < 0.6 else None
    return _Element(kind, points, _colour(rng), outline, int(rng.integers(1, 3)))


def _random_dots(rng: np.random.Generator, w: int, h: int) -> _Element:
    spread = rng.uniform(0.03, 0.08) * w
    centre = rng.uniform((0.1 * w, 0.1 * h), (0.9 * w, 0.9 * h))
    points = centre + rng.normal(0.0, spread, size=(int(rng.integers(8, 21)), 2))
    return _Element("dots", points, _colour(rng), None, int(rng.integers(1, 3)))


def _random_line(rng: np.random.Generator, w: int, h: int) -> _Element:
    points = rng.uniform((0, 0), (w, h), size=(2, 2))
    return _Element("line", points, _colour(rng), None, int(rng.integers(1, 4)))


def _sample_scene(rng: np.random.Generator, size: tuple[int, int]) -> _Scene:
    w, h = int(size[0]), int(size[1])
    if w < 16 or h < 16:
        raise ConfigError(f"Image size {size!r} is too small; use at least 16 x 16 pixels.")
    colours = rng.integers(0, 256, size=(2, 3)).astype(np.float32)
    angle = float(rng.uniform(0, 2 * np.pi))
    blobs = tuple(_random_dots(rng, w, h) for _ in range(int(rng.integers(2, 5))))
    shapes = tuple(_random_shape(rng, w, h) for _ in range(int(rng.integers(3, 9))))
    lines = tuple(_random_line(rng, w, h) for _ in range(int(rng.integers(2, 6))))
    sigma, radius = float(rng.uniform(2.0, 4.0)), float(rng.uniform(0.5, 0.9))
    return _Scene((w, h), colours, angle, blobs, shapes, lines, sigma, radius)


def _gradient(scene: _Scene, shift: tuple[float, float]) -> np.ndarray:
    w, h = scene.size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    c, s = math.cos(scene.angle), math.sin(scene.angle)
    proj = (x - shift[0] - w / 2) * c + (y - shift[1] - h / 2) * s
    t = np.clip(0.5 + proj / (abs(c) * w + abs(s) * h), 0.0, 1.0)[..., None]
    rgb = scene.colours[0] * (1 - t) + scene.colours[1] * t
    return np.asarray(np.rint(rgb), dtype=np.uint8)


def _draw(draw: ImageDraw.ImageDraw, el: _Element, points: np.ndarray) -> None:
    xy = [(int(x), int(y)) for x, y in np.rint(points)]
    if el.kind == "rectangle":
        draw.rectangle(xy, fill=el.fill, outline=el.outline, width=el.width)
    elif el.kind == "ellipse":
        draw.ellipse(xy, fill=el.fill, outline=el.outline, width=el.width)
    elif el.kind == "polygon":
        draw.polygon(xy, fill=el.fill, outline=el.outline, width=el.width)
    elif el.kind == "line":
        draw.line(xy, fill=el.fill, width=el.width)
    else:
        r = el.width
        for x, y in xy:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=el.fill)


def _box(points: np.ndarray, w: int, h: int) -> tuple[float, float, float, float]:
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    cx0, cx1 = (float(np.clip(v, 0, w)) for v in (x0, x1))
    cy0, cy1 = (float(np.clip(v, 0, h)) for v in (y0, y1))
    return cx0, cy0, cx1, cy1


def _render(
    scene: _Scene,
    rng: np.random.Generator,
    *,
    shift: tuple[float, float] = (0.0, 0.0),
    moves: dict[int, tuple[float, float]] | None = None,
) -> tuple[Image.Image, list[Shape]]:
    """Draw ``scene`` moved by ``shift`` (and shape ``i`` by ``moves[i]``), add noise, blur."""
    w, h = scene.size
    img = Image.fromarray(_gradient(scene, shift))
    draw = ImageDraw.Draw(img)
    offset = np.asarray(shift, dtype=np.float64)
    for el in scene.blobs:
        _draw(draw, el, el.points + offset)
    shapes = []
    for i, el in enumerate(scene.shapes):
        points = el.points + offset + np.asarray((moves or {}).get(i, (0.0, 0.0)))
        _draw(draw, el, points)
        shapes.append(Shape(el.kind, _box(points, w, h), el.kind))
    for el in scene.lines:
        _draw(draw, el, el.points + offset)
    noisy = np.asarray(img, dtype=np.float32) + rng.normal(0.0, scene.noise_sigma, (h, w, 3))
    img = Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))
    return img.filter(ImageFilter.GaussianBlur(scene.blur_radius)), shapes


def make_photo(
    rng: RngLike = None, *, size: tuple[int, int] = (256, 192)
) -> tuple[Image.Image, list[Shape]]:
    """Draw a photo-like RGB image and return it with the boxes of its shapes.

    A two-colour gradient, a few clusters of dots, 3-8 rectangles, ellipses and polygons in
    random colours, a few thin lines, low-amplitude Gaussian noise, then a slight blur: smooth
    low frequencies for hashes and enough corners for local features (ORB).

    Args:
        rng: generator or seed; the same seed gives identical pixels.
        size: ``(width, height)``, at least 16 x 16.

    Raises:
        ConfigError: ``size`` is smaller than 16 x 16.

    Example:
        >>> img, shapes = make_photo(0)
        >>> img.size, img.mode, 3 <= len(shapes) <= 8
        ((256, 192), 'RGB', True)
    """
    gen = _as_rng(rng)
    return _render(_sample_scene(gen, size), gen)


def make_hard_negative(
    rng: RngLike, base_seed: int, *, size: tuple[int, int] = (256, 192)
) -> tuple[Image.Image, Image.Image]:
    """Two frames of one scene that look alike but are not duplicates (burst with motion).

    The first frame is exactly ``make_photo(base_seed, size=size)[0]``. The second re-renders
    the same background and shapes, with 1-3 of the topmost shapes displaced by 5-15% of the
    width, everything shifted by 1-3% of the width (parallax), and fresh sensor noise.

    Example:
        >>> a, b = make_hard_negative(1, base_seed=5)
        >>> a.size == b.size and a.tobytes() != b.tobytes()
        True
    """
    gen = _as_rng(rng)
    scene_rng = np.random.default_rng(base_seed)
    scene = _sample_scene(scene_rng, size)
    first, _ = _render(scene, scene_rng)
    w = scene.size[0]
    top = list(range(len(scene.shapes)))[-4:]  # the last-drawn shapes are the least occluded
    moved = gen.choice(top, size=int(gen.integers(1, 4)), replace=False)
    moves = {int(i): _polar(gen, gen.uniform(0.05, 0.15) * w) for i in sorted(moved)}
    second, _ = _render(scene, gen, shift=_polar(gen, gen.uniform(0.01, 0.03) * w), moves=moves)
    return first, second


def _polar(rng: np.random.Generator, distance: float) -> tuple[float, float]:
    angle = rng.uniform(0, 2 * np.pi)
    return float(distance * math.cos(angle)), float(distance * math.sin(angle))


# --- variants --------------------------------------------------------------------------------

_Params = dict[str, Any]
_OVERLAY_TEXTS = ("\u00a9 2021 lookalike", "SAMPLE", "photo.example", "\u00a9 J. Doe")
_OVERLAY_COLOURS = ((255, 255, 255), (255, 255, 0), (255, 140, 0), (0, 0, 0))
_RESAMPLERS = ("BILINEAR", "BICUBIC", "LANCZOS")


def _signed(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi)) * (1.0 if rng.random() < 0.5 else -1.0)


def _jpeg_quality(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, _Params]:
    quality = int(rng.integers(40, 81))
    return _decode(encode_image(img, "jpeg", quality=quality)), {"quality": quality}


def _resize(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, _Params]:
    scale = round(float(rng.uniform(0.5, 1.5)), 4)
    resample = _RESAMPLERS[int(rng.integers(len(_RESAMPLERS)))]
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    out = img.resize(size, Image.Resampling[resample])
    return out, {"scale": scale, "size": list(size), "resample": resample}


def _brightness(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, _Params]:
    factor = round(1 + _signed(rng, 0.1, 0.3), 3)
    return ImageEnhance.Brightness(img).enhance(factor), {"factor": factor}


def _contrast(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, _Params]:
    factor = round(1 + _signed(rng, 0.1, 0.3), 3)
    return ImageEnhance.Contrast(img).enhance(factor), {"factor": factor}


def _gamma(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, _Params]:
    gamma = round(math.exp(_signed(rng, math.log(1.1), math.log(1.5))), 3)
    lut = [round(255 * (i / 255) ** gamma) for i in range(256)]
    return img.point(lut * len(img.getbands())), {"gamma": gamma}


def _noise(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, _Params]:
    sigma = round(float(rng.uniform(2.0, 6.0)), 2)
    arr = np.asarray(img, dtype=np.float32)
    noisy = arr + rng.normal(0.0, sigma, arr.shape)
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8)), {
        "gaussian_sigma": sigma
    }


def _blur(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, _Params]:
    radius = round(float(rng.uniform(0.8, 2.0)), 3)
    return img.filter(ImageFilter.GaussianBlur(radius)), {"radius": radius}


def _sharpen(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, _Params]:
    radius, percent = round(float(rng.uniform(1.0, 2.5)), 2), int(rng.integers(60, 151))
    out = img.filter(ImageFilter.UnsharpMask(radius=radius, percent=percent, threshold=2))
    return out, {"radius": radius, "percent": percent, "threshold": 2}


def _grayscale(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, _Params]:
    stored_mode = "L" if rng.random() < 0.5 else "RGB"
    return img.convert("L").convert(stored_mode), {"stored_mode": stored_mode}


def _corner(rng: np.random.Generator, size: tuple[int, int], box: tuple[int, int]) -> list[int]:
    margin = max(2, round(0.03 * min(size)))
    right, bottom = rng.random() < 0.5, rng.random() < 0.5
    x = size[0] - box[0] - margin if right else margin
    y = size[1] - box[1] - margin if bottom else margin
    return [max(0, x), max(0, y)]


def _draw_text(
    draw: ImageDraw.ImageDraw,
    rng: np.random.Generator,
    size: tuple[int, int],
    fill: tuple[int, ...],
) -> _Params | None:
    """Draw a short caption covering at most 2.5% of the image, or return None if none fits."""
    text = _OVERLAY_TEXTS[int(rng.integers(len(_OVERLAY_TEXTS)))]
    font_px = max(8, int(size[1] * rng.uniform(0.05, 0.09)))
    for px in range(font_px, 5, -1):
        font = ImageFont.load_default(size=px)
        x0, y0, x1, y1 = (int(v) for v in draw.textbbox((0, 0), text, font=font))
        if (x1 - x0) * (y1 - y0) <= 0.025 * size[0] * size[1] and x1 - x0 < size[0]:
            xy = _corner(rng, size, (x1 - x0, y1 - y0))
            draw.text((xy[0] - x0, xy[1] - y0), text, font=font, fill=fill)
            return {"kind": "text", "text": text, "font_px": px, "xy": xy}
    return None


def _draw_logo(
    draw: ImageDraw.ImageDraw,
    rng: np.random.Generator,
    size: tuple[int, int],
    fill: tuple[int, ...],
) -> _Params:
    """Draw a ring-and-square mark covering at most 2% of the image."""
    side = max(3, int(math.sqrt(0.02 * size[0] * size[1] * rng.uniform(0.4, 1.0))))
    x, y = _corner(rng, size, (side, side))
    draw.ellipse((x, y, x + side - 1, y + side - 1), fill=fill)
    inset = side // 4
    draw.rectangle(
        (x + inset, y + inset, x + side - 1 - inset, y + side - 1 - inset), fill=(0,) * 4
    )
    return {"kind": "logo", "size_px": side, "xy": [x, y]}


def _overlay(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, _Params]:
    colour = _OVERLAY_COLOURS[int(rng.integers(len(_OVERLAY_COLOURS)))]
    alpha = int(rng.integers(150, 231))
    layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    params = _draw_text(draw, rng, img.size, (*colour, alpha)) if rng.random() < 0.5 else None
    if params is None:
        params = _draw_logo(draw, rng, img.size, (*colour, alpha))
    out = Image.alpha_composite(img.convert("RGBA"), layer).convert(img.mode)
    return out, {**params, "color": list(colour), "alpha": alpha}


def _crop(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, _Params]:
    w, h = img.size
    area = float(rng.uniform(0.85, 0.95))
    fw = float(np.clip(math.sqrt(area) * math.exp(rng.uniform(-0.04, 0.04)), area, 1.0))
    cw, ch = max(1, round(w * fw)), max(1, round(h * area / fw))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    box = [x0, y0, x0 + cw, y0 + ch]
    return img.crop((x0, y0, x0 + cw, y0 + ch)), {
        "box": box,
        "kept_area": round(cw * ch / (w * h), 4),
    }


def _rotate(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, _Params]:
    """Rotate about the centre, crop the largest same-aspect box with no corners, resize back."""
    w, h = img.size
    angle = round(_signed(rng, 1.0, 10.0), 2)
    c, s = math.cos(math.radians(abs(angle))), math.sin(math.radians(abs(angle)))
    scale = min(w / (w * c + h * s), h / (w * s + h * c))
    cw, ch = max(1, math.floor(w * scale) - 2), max(1, math.floor(h * scale) - 2)
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    box = [x0, y0, x0 + cw, y0 + ch]
    rotated = img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=False)
    out = rotated.crop((x0, y0, x0 + cw, y0 + ch)).resize((w, h), Image.Resampling.BICUBIC)
    return out, {"angle": angle, "mode": "crop_to_fill", "crop_box_before_resize": box}


def _hflip(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, _Params]:
    return ImageOps.mirror(img), {}


_VARIANTS = {
    "jpeg_quality": _jpeg_quality, "resize": _resize, "brightness": _brightness,
    "contrast": _contrast, "gamma": _gamma, "noise": _noise, "blur": _blur,
    "sharpen": _sharpen, "grayscale": _grayscale, "overlay": _overlay, "crop": _crop,
    "rotate": _rotate, "hflip": _hflip,
}  # fmt: skip
assert tuple(_VARIANTS) == VARIANT_KINDS


def _apply_variant(
    img: Image.Image, kind: str, rng: np.random.Generator
) -> tuple[Image.Image, _Params]:
    try:
        transform = _VARIANTS[kind]
    except KeyError:
        allowed = ", ".join(VARIANT_KINDS)
        raise ConfigError(f"Unknown variant kind {kind!r}; choose one of: {allowed}.") from None
    if img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    return transform(img, rng)


def make_variant(img: Image.Image, kind: str, rng: RngLike = None) -> Image.Image:
    """Return a near-duplicate of ``img`` made by one transform from :data:`VARIANT_KINDS`.

    jpeg_quality: re-encode at q 40-80; resize: x0.5-1.5; brightness, contrast: factor
    0.7-0.9 or 1.1-1.3; gamma: 0.67-0.91 or 1.1-1.5; noise: Gaussian sigma 2-6; blur: radius
    0.8-2; sharpen: unsharp mask; grayscale: stored as L or RGB; overlay: a caption or logo in
    a corner (< 3% of the area); crop: keeps 85-95% of the area; rotate: 1-10 degrees, cropped
    to fill and resized back; hflip: mirrored. ``img`` is not modified.

    Raises:
        ConfigError: ``kind`` is not in :data:`VARIANT_KINDS`.

    Example:
        >>> img, _ = make_photo(0)
        >>> make_variant(img, "crop", rng=1).size < img.size
        True
    """
    return _apply_variant(img, kind, _as_rng(rng))[0]


# --- hard variants ---------------------------------------------------------------------------

HARD_VARIANT_KINDS: tuple[str, ...] = (
    "rot90", "rot180", "rot270", "vflip", "transpose", "transverse", "squash", "stretch",
    "letterbox", "border", "hue", "saturation", "crop_strong", "tiny", "rotate_large",
)  # fmt: skip
"""Harder changes (issue #13), as the ``public-hard`` benchmark set names them."""

_TurnFn = Callable[[Image.Image, np.random.Generator], tuple[Image.Image, _Params]]
_SQUASH_SIDES = (224, 256, 384, 512)
_LETTERBOX_FILLS: tuple[tuple[int, int, int] | str, ...] = (
    (0, 0, 0), (114, 114, 114), (255, 255, 255), "blur",
)  # fmt: skip
_LETTERBOX_SIDES = (416, 512, 640)
_FLAT_COLOURS = ((0, 0, 0), (255, 255, 255), (128, 128, 128))
_DOWNSCALERS = ("BOX", "BILINEAR", "BICUBIC", "LANCZOS")


def _pick(rng: np.random.Generator, choices: Sequence[Any]) -> Any:
    return choices[int(rng.integers(len(choices)))]


def _turner(op: Image.Transpose) -> _TurnFn:
    """A variant function that turns or flips the pixels by ``op`` (no EXIF tag, no draws)."""

    def turn(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, _Params]:
        return img.transpose(op), {}

    return turn


def _squash(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, _Params]:
    side = int(_pick(rng, _SQUASH_SIDES))
    resample = str(_pick(rng, _RESAMPLERS))
    out = img.resize((side, side), Image.Resampling[resample])
    return out, {"size": [side, side], "resample": resample}


def _stretch(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, _Params]:
    """Change the aspect ratio by 1.25-2x: grow one axis, or shrink the other one."""
    factor = round(float(rng.uniform(1.25, 2.0)), 3)
    axis = "x" if rng.random() < 0.5 else "y"
    grow = bool(rng.random() < 0.5)
    w, h = img.size
    if axis == "x":
        size = (round(w * factor), h) if grow else (w, max(1, round(h / factor)))
    else:
        size = (w, round(h * factor)) if grow else (max(1, round(w / factor)), h)
    out = img.resize(size, Image.Resampling.BICUBIC)
    return out, {"factor": factor, "axis": axis, "grow": grow, "size": list(size)}


def _letterbox_canvas(img: Image.Image, fill: tuple[int, int, int] | str) -> Image.Image:
    """A square canvas (16:9 for a nearly square picture) with ``img`` pasted in the middle."""
    w, h = img.size
    cw, ch = (max(w, h), max(w, h)) if abs(w - h) > 0.05 * max(w, h) else (round(h * 16 / 9), h)
    if fill == "blur":
        canvas = img.resize((cw, ch), Image.Resampling.BILINEAR)
        canvas = canvas.filter(ImageFilter.GaussianBlur(max(cw, ch) / 20))
    else:
        canvas = Image.new("RGB", (cw, ch), tuple(fill))
    canvas.paste(img, ((cw - w) // 2, (ch - h) // 2))
    return canvas


def _letterbox(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, _Params]:
    """Pad to a square with black, grey 114, white or blurred bars; half the time resize it."""
    fill = _pick(rng, _LETTERBOX_FILLS)
    out = _letterbox_canvas(img, fill)
    (w, h), (x0, y0) = img.size, ((out.width - img.width) // 2, (out.height - img.height) // 2)
    box = [x0, y0, x0 + w, y0 + h]
    if rng.random() < 0.5:
        scale = int(_pick(rng, _LETTERBOX_SIDES)) / max(out.size)
        size = (round(out.width * scale), round(out.height * scale))
        out = out.resize(size, Image.Resampling.BICUBIC)
        box = [round(v * scale) for v in box]
    return out, {"fill": fill if fill == "blur" else list(fill), "size": list(out.size), "box": box}


def _border(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, _Params]:
    """A flat-colour frame of 3-15% of the width (left, right) or height (top, bottom)."""
    if rng.random() < 0.5:
        fracs = rng.uniform(0.03, 0.15, size=4)
    else:
        fracs = np.full(4, rng.uniform(0.03, 0.15))
    fill = _pick(rng, _FLAT_COLOURS) if rng.random() < 0.75 else _colour(rng)
    w, h = img.size
    border = (round(fracs[0] * w), round(fracs[1] * h), round(fracs[2] * w), round(fracs[3] * h))
    out = ImageOps.expand(img, border=border, fill=tuple(fill))
    return out, {"border_px": list(border), "fill": list(fill)}


def _hue(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, _Params]:
    """Turn the colour wheel by 10-60 degrees either way (Pillow's HSV, hue in 256 steps)."""
    degrees = round(_signed(rng, 10.0, 60.0), 1)
    steps = round(degrees / 360 * 256)
    h, s, v = img.convert("HSV").split()
    turned = ((np.asarray(h, np.int16) + steps) % 256).astype(np.uint8)
    out = Image.merge("HSV", (Image.fromarray(turned), s, v)).convert("RGB")
    return out, {"hue_shift_deg": degrees, "hue_shift": steps}


def _saturation(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, _Params]:
    factor = float(rng.uniform(0.2, 0.6) if rng.random() < 0.5 else rng.uniform(1.4, 2.0))
    return ImageEnhance.Color(img).enhance(round(factor, 3)), {"factor": round(factor, 3)}


def _crop_strong(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, _Params]:
    """Keep 50-85% of the area, with the crop's aspect up to about 15% off the picture's."""
    w, h = img.size
    area = float(rng.uniform(0.5, 0.85))
    fw = float(np.clip(math.sqrt(area) * math.exp(rng.uniform(-0.15, 0.15)), area, 1.0))
    cw, ch = max(1, round(w * fw)), max(1, round(h * area / fw))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    out = img.crop((x0, y0, x0 + cw, y0 + ch))
    return out, {"box": [x0, y0, x0 + cw, y0 + ch], "kept_area": round(cw * ch / (w * h), 4)}


def _tiny(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, _Params]:
    """A thumbnail 32-96 px on the long side, aspect kept."""
    long_side = int(rng.integers(32, 97))
    resample = str(_pick(rng, _DOWNSCALERS))
    scale = long_side / max(img.size)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling[resample]), {"size": list(size), "resample": resample}


def _rotate_crop_to_fill(img: Image.Image, angle: float) -> tuple[Image.Image, list[int]]:
    """Rotate, crop the largest same-aspect box without corners, resize back to the size."""
    w, h = img.size
    c, s = math.cos(math.radians(abs(angle))), math.sin(math.radians(abs(angle)))
    scale = min(w / (w * c + h * s), h / (w * s + h * c))
    cw, ch = max(1, math.floor(w * scale) - 2), max(1, math.floor(h * scale) - 2)
    box = [(w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch]
    rotated = img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=False)
    return rotated.crop(tuple(box)).resize((w, h), Image.Resampling.BICUBIC), box


def _rotate_large(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, _Params]:
    """Rotate 10-30 degrees either way: onto a larger black or white canvas, or cropped to fill."""
    angle = round(_signed(rng, 10.0, 30.0), 2)
    if rng.random() < 0.6:
        fill = (0, 0, 0) if rng.random() < 0.5 else (255, 255, 255)
        out = img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=fill)
        return out, {"angle": angle, "mode": "expand", "fill": list(fill)}
    out, box = _rotate_crop_to_fill(img, angle)
    return out, {"angle": angle, "mode": "crop_to_fill", "crop_box_before_resize": box}


_HARD_VARIANTS: dict[str, _TurnFn] = {
    "rot90": _turner(Image.Transpose.ROTATE_90),
    "rot180": _turner(Image.Transpose.ROTATE_180),
    "rot270": _turner(Image.Transpose.ROTATE_270),
    "vflip": _turner(Image.Transpose.FLIP_TOP_BOTTOM),
    "transpose": _turner(Image.Transpose.TRANSPOSE),
    "transverse": _turner(Image.Transpose.TRANSVERSE), "squash": _squash, "stretch": _stretch,
    "letterbox": _letterbox, "border": _border, "hue": _hue, "saturation": _saturation,
    "crop_strong": _crop_strong, "tiny": _tiny, "rotate_large": _rotate_large,
}  # fmt: skip
assert tuple(_HARD_VARIANTS) == HARD_VARIANT_KINDS


def make_labelled_variant(
    img: Image.Image, kind: str, rng: RngLike = None
) -> tuple[Image.Image, dict[str, Any]]:
    """Return one variant of ``img`` and the parameters drawn for it.

    ``kind`` is from :data:`VARIANT_KINDS` (the same pixels as :func:`make_variant` for the
    same ``rng``) or :data:`HARD_VARIANT_KINDS` (see :func:`make_hard_variant`).

    Raises:
        ConfigError: ``kind`` is in neither list.

    Example:
        >>> img, _ = make_photo(0)
        >>> out, params = make_labelled_variant(img, "squash", rng=1)
        >>> out.size == tuple(params["size"])
        True
    """
    gen = _as_rng(rng)
    if kind in _VARIANTS:
        return _apply_variant(img, kind, gen)
    if kind not in _HARD_VARIANTS:
        allowed = ", ".join((*VARIANT_KINDS, *HARD_VARIANT_KINDS))
        raise ConfigError(f"Unknown variant kind {kind!r}; choose one of: {allowed}.")
    return _HARD_VARIANTS[kind](img if img.mode == "RGB" else img.convert("RGB"), gen)


def make_hard_variant(img: Image.Image, kind: str, rng: RngLike = None) -> Image.Image:
    """Return a duplicate of ``img`` made by one transform from :data:`HARD_VARIANT_KINDS`.

    rot90, rot180, rot270 (counter-clockwise), vflip, transpose, transverse: the pixels turned
    or mirrored, no EXIF tag; squash: resized to a 224, 256, 384 or 512 square; stretch: aspect
    changed 1.25-2x on one axis; letterbox: padded to a square (16:9 for a nearly square
    picture) with black, grey 114, white or blurred bars, half the time resized to 416-640;
    border: a flat-colour frame of 3-15% on each side; hue: the colour wheel turned 10-60
    degrees either way; saturation: x0.2-0.6 or x1.4-2.0; crop_strong: keeps 50-85% of the
    area; tiny: 32-96 px on the long side; rotate_large: 10-30 degrees either way, onto a
    larger black or white canvas (60%) or cropped to fill and resized back. The result is RGB;
    ``img`` is not modified.

    Raises:
        ConfigError: ``kind`` is not in :data:`HARD_VARIANT_KINDS` or :data:`VARIANT_KINDS`.

    Example:
        >>> img, _ = make_photo(0)
        >>> make_hard_variant(img, "rot90").size
        (192, 256)
    """
    return make_labelled_variant(img, kind, rng)[0]


# --- datasets --------------------------------------------------------------------------------

_FOLDERS = (
    "DCIM/100CANON", "DCIM/101CANON", "Camera Roll/2019", "export/set_b", "album",
    "backup/old phone", "2021/holiday trip", "",
)  # fmt: skip
_FORMAT_WEIGHTS = {"jpeg": 0.7, "png": 0.14, "webp": 0.08, "bmp": 0.08}
_EXTENSIONS = {"jpeg": (".jpg", ".jpg", ".jpg", ".jpeg", ".JPG"), "png": (".png",),
               "webp": (".webp",), "bmp": (".bmp",)}  # fmt: skip
_SIZES = ((256, 192), (192, 256), (240, 180))


def _camera_name(rng: np.random.Generator) -> str:
    """A file stem as cameras, phones and messengers write them."""
    yr, mo, dy, hh, mi, ss = (
        int(v) for v in rng.integers((2010, 1, 1, 0, 0, 0), (2025, 13, 29, 24, 60, 60))
    )
    n = int(rng.integers(1, 10000))
    date, time = f"{yr}{mo:02d}{dy:02d}", f"{hh:02d}{mi:02d}{ss:02d}"
    names = (
        f"IMG_{n:04d}", f"DSC_{n:04d}", f"DSC{n * 7 % 100000:05d}", f"P{mo:X}{dy:02d}{n:04d}",
        f"PXL_{date}_{time}{n % 1000:03d}", f"{date}_{time}", f"IMG-{date}-WA{n % 1000:04d}",
        f"{yr}-{mo:02d}-{dy:02d} {hh:02d}.{mi:02d}.{ss:02d}", f"image ({n % 40})",
    )  # fmt: skip
    return names[int(rng.integers(len(names)))]


class _DatasetWriter:
    """Writes images under camera-style names into a few nested folders, never twice."""

    def __init__(self, root: Path, rng: np.random.Generator) -> None:
        self.root, self.rng = root, rng
        picks = rng.choice(len(_FOLDERS), size=int(rng.integers(3, 6)), replace=False)
        self.folders = [_FOLDERS[int(i)] for i in sorted(picks)]
        self.paths: list[str] = []
        self._taken: set[str] = set()

    def write(self, img: Image.Image) -> tuple[str, _Params]:
        fmt = str(self.rng.choice(list(_FORMAT_WEIGHTS), p=list(_FORMAT_WEIGHTS.values())))
        saved: _Params = {"saved_as": fmt}
        if fmt in ("jpeg", "webp"):
            saved["quality"] = int(self.rng.integers(88, 96))
        data = encode_image(img, fmt, quality=saved.get("quality", 92))
        return self.write_bytes(data, fmt), saved

    def write_bytes(self, data: bytes, fmt: str) -> str:
        rel = self._new_path(fmt)
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.paths.append(rel)
        return rel

    def _new_path(self, fmt: str) -> str:
        while True:
            folder = self.folders[int(self.rng.integers(len(self.folders)))]
            ext = _EXTENSIONS[fmt][int(self.rng.integers(len(_EXTENSIONS[fmt])))]
            rel = f"{folder}/{_camera_name(self.rng)}{ext}".lstrip("/")
            if rel.lower() not in self._taken:  # also unique on case-insensitive file systems
                self._taken.add(rel.lower())
                return rel


def _rebase_doc(doc: dict[str, Any], src: Path, dst: Path) -> dict[str, Any]:
    """Re-express every path of a truth.json document, relative to ``src``, relative to ``dst``."""
    src_abs, dst_abs = os.path.abspath(src), os.path.abspath(dst)

    def one(path: str) -> str:
        return Path(os.path.relpath(os.path.join(src_abs, path), dst_abs)).as_posix()

    def many(paths: Sequence[str]) -> list[str]:
        return [one(p) for p in paths]

    variants = {
        one(path): {
            "original": one(e["original"]),
            "transform": e["transform"],
            "params": e["params"],
        }
        for path, e in doc["variant_of"].items()
    }
    return {
        "images": many(doc["images"]),
        "duplicate_groups": [many(g) for g in doc["duplicate_groups"]],
        "variant_of": variants,
        "hard_negative_groups": [many(g) for g in doc["hard_negative_groups"]],
    }


@dataclass(frozen=True)
class DatasetTruth:
    """What :func:`write_dataset` wrote; every path is POSIX and relative to ``root``.

    Attributes:
        root: the dataset folder.
        images: every image written, sorted.
        groups: each original (first) followed by its variants.
        variant_of: variant path -> ``{"original": path, "transform": kind, "params": {...}}``;
            ``params`` holds the transform's parameters plus ``saved_as`` and ``quality``.
        hard_negatives: pairs of look-alike images that are not duplicates.
    """

    root: Path
    images: list[str]
    groups: list[list[str]]
    variant_of: dict[str, dict[str, Any]]
    hard_negatives: list[list[str]]

    def to_dict(self, base: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """The truth.json document, with paths relative to ``base`` (default ``root``)."""
        doc = {
            "images": self.images,
            "duplicate_groups": self.groups,
            "variant_of": self.variant_of,
            "hard_negative_groups": self.hard_negatives,
        }
        return _rebase_doc(doc, self.root, Path(base) if base is not None else self.root)

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """Return the truth.json text; if ``path`` is given, also write it there.

        Paths are relative to the folder of ``path`` (to ``root`` when no path is given).
        The layout is ``json.dumps(doc, indent=1)``: ASCII only, no trailing newline.
        """
        base = Path(path).parent if path is not None else self.root
        text = json.dumps(self.to_dict(base), indent=1)
        if path is not None:
            Path(path).write_text(text, encoding="ascii")
        return text

    @classmethod
    def from_json(
        cls, path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None
    ) -> DatasetTruth:
        """Read a truth.json; paths become relative to ``root`` (default: the file's folder)."""
        dst = Path(root) if root is not None else Path(path).parent
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        doc = _rebase_doc(raw, Path(path).parent, dst)
        return cls(
            dst, doc["images"], doc["duplicate_groups"], doc["variant_of"],
            doc["hard_negative_groups"],
        )  # fmt: skip


def _kind_schedule(rng: np.random.Generator, kinds: Sequence[str]) -> Iterator[str]:
    """Shuffled rounds over ``kinds``, never repeating a kind across a round boundary."""
    last = None
    while True:
        order = [kinds[int(i)] for i in rng.permutation(len(kinds))]
        if order[0] == last and len(order) > 1:
            order.append(order.pop(0))
        yield from order
        last = order[-1]


def _check_counts(counts: dict[str, int], kinds: Sequence[str]) -> None:
    for name, value in counts.items():
        if value < 0:
            raise ConfigError(f"{name} must be >= 0, got {value!r}.")
    unknown = [k for k in kinds if k not in VARIANT_KINDS]
    if unknown or not kinds:
        allowed = ", ".join(VARIANT_KINDS)
        raise ConfigError(f"Bad variant kinds {list(kinds)!r}; choose from: {allowed}.")


def write_dataset(
    root: str | os.PathLike[str],
    *,
    n_originals: int = 8,
    variants_per_original: int = 2,
    kinds: Sequence[str] | None = None,
    n_distractors: int = 4,
    n_hard_negatives: int = 2,
    rng: RngLike = 0,
) -> DatasetTruth:
    """Write a nested tree of images with known duplicate groups and return the truth.

    Each original gets ``variants_per_original`` variants whose kinds cycle through ``kinds``
    (default :data:`VARIANT_KINDS`) in shuffled rounds. ``n_hard_negatives`` pairs come from
    :func:`make_hard_negative`; ``n_distractors`` unrelated photos belong to no group. Files
    are mostly JPEG with some PNG, WEBP and BMP, under camera-style names in 3-5 folders.

    Raises:
        ConfigError: a count is negative, or ``kinds`` is empty or names an unknown kind.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     truth = write_dataset(tmp, n_originals=2, n_distractors=1, n_hard_negatives=1)
        >>> len(truth.images), len(truth.groups), len(truth.hard_negatives)
        (9, 2, 1)
    """
    kinds = tuple(VARIANT_KINDS if kinds is None else kinds)
    counts = {"n_originals": n_originals, "variants_per_original": variants_per_original,
              "n_distractors": n_distractors, "n_hard_negatives": n_hard_negatives}  # fmt: skip
    _check_counts(counts, kinds)
    gen = _as_rng(rng)
    writer = _DatasetWriter(Path(root), gen)
    n_seeds = n_originals + n_hard_negatives + n_distractors
    seeds = iter(int(s) for s in gen.choice(2**31, size=n_seeds, replace=False))
    schedule = _kind_schedule(gen, kinds)
    groups, variant_of = [], {}
    for _ in range(n_originals):
        photo, _ = make_photo(next(seeds), size=_SIZES[int(gen.integers(len(_SIZES)))])
        group = [writer.write(photo)[0]]
        for _ in range(variants_per_original):
            kind = next(schedule)
            variant, params = _apply_variant(photo, kind, gen)
            if kind == "jpeg_quality":  # keep the re-encoded bytes themselves
                data = encode_image(photo, "jpeg", quality=params["quality"])
                path = writer.write_bytes(data, "jpeg")
            else:
                path, saved = writer.write(variant)
                params = {**params, **saved}
            variant_of[path] = {"original": group[0], "transform": kind, "params": params}
            group.append(path)
        if len(group) > 1:
            groups.append(group)
    hard_negatives = []
    for _ in range(n_hard_negatives):
        pair = make_hard_negative(gen, next(seeds), size=_SIZES[int(gen.integers(len(_SIZES)))])
        hard_negatives.append([writer.write(img)[0] for img in pair])
    for _ in range(n_distractors):
        writer.write(make_photo(next(seeds), size=_SIZES[int(gen.integers(len(_SIZES)))])[0])
    return DatasetTruth(Path(root), sorted(writer.paths), groups, variant_of, hard_negatives)


# --- edge cases ------------------------------------------------------------------------------

_ZOO_SIZE = (96, 64)


def _photo(seed: int, size: tuple[int, int] = _ZOO_SIZE) -> Image.Image:
    return make_photo(seed, size=size)[0]


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(tag + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)


def _bomb_png(side: int = 50000) -> bytes:
    """A 1-bit PNG whose header claims ``side`` x ``side`` pixels but holds four rows."""
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + (side + 7) // 8) * 4)
    chunks = _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", rows) + _png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def _with_alpha(img: Image.Image) -> Image.Image:
    w, h = img.size
    alpha = np.tile(np.linspace(64, 255, w, dtype=np.float32), (h, 1))
    out = img.copy()
    out.putalpha(Image.fromarray(np.rint(alpha).astype(np.uint8)))
    return out


def _gray16(img: Image.Image) -> Image.Image:
    arr = np.asarray(img.convert("L"), dtype=np.uint16) * 257
    return Image.fromarray(arr)  # mode I;16


def _multi_frame(seed: int, fmt: str) -> bytes:
    frames = [_photo(seed + i) for i in range(3)]
    buf = io.BytesIO()
    options: _Params = {
        "GIF": {"duration": 120, "loop": 0, "optimize": False},
        "MPO": {"quality": 90, "subsampling": 2},
    }.get(fmt, {})
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], **options)
    return buf.getvalue()


def _can_write(fmt: str) -> bool:
    Image.init()
    return fmt in Image.SAVE_ALL if fmt == "MPO" else fmt in Image.SAVE


def _zoo_files() -> list[tuple[str, bytes | None, str]]:
    """(relative path, content or None when this Pillow cannot write it, expected outcome)."""
    truncated = encode_image(_photo(1, (128, 96)), "jpeg", quality=90)
    return [
        ("broken/truncated.jpg", truncated[: len(truncated) * 3 // 5], "failure"),
        ("broken/empty.jpg", b"", "failure"),
        ("broken/text.jpg", b"This is a text file, not a JPEG.\n", "failure"),
        ("broken/random.png", np.random.default_rng(2).bytes(2048), "failure"),
        ("broken/bomb.png", _bomb_png(), "failure"),
        ("modes/palette.png", encode_image(_photo(3).quantize(64), "png"), "ok"),
        ("modes/rgba.png", encode_image(_with_alpha(_photo(4)), "png"), "ok"),
        ("modes/la.png", encode_image(_with_alpha(_photo(5).convert("L")), "png"), "ok"),
        ("modes/gray16.png", encode_image(_gray16(_photo(6)), "png"), "ok"),
        ("modes/cmyk.jpg", encode_image(_photo(7).convert("CMYK"), "jpeg", quality=90), "ok"),
        ("formats/animated.gif", _multi_frame(10, "GIF"), "ok"),
        ("formats/multipage.tif", _multi_frame(20, "TIFF"), "ok"),
        ("formats/stereo.mpo", _multi_frame(30, "MPO") if _can_write("MPO") else None, "ok"),
        (
            "formats/lossless.webp",
            encode_image(_photo(8), "webp", lossless=True) if _can_write("WEBP") else None,
            "ok",
        ),
        ("formats/plain.bmp", encode_image(_photo(9), "bmp"), "ok"),
        ("names/UPPER.JPG", encode_image(_photo(11), "jpeg", quality=90), "ok"),
        ("names/jpeg_without_extension", encode_image(_photo(12), "jpeg", quality=90), "ok"),
    ]


def _write_exif_pair(root: Path) -> dict[str, str]:
    """A JPEG stored sideways with orientation 6, and a PNG of the pixels it shows upright."""
    ((rotated, upright),) = ZOO_UPRIGHT_TWINS.items()
    exif = Image.Exif()
    exif[0x0112] = 6  # the stored image must be turned 90 degrees clockwise for display
    buf = io.BytesIO()
    stored = _photo(13).transpose(Image.Transpose.ROTATE_90)
    stored.save(buf, "JPEG", quality=90, subsampling=2, optimize=False, exif=exif.tobytes())
    shown = ImageOps.exif_transpose(_decode(buf.getvalue()))
    (root / rotated).parent.mkdir(parents=True, exist_ok=True)
    (root / rotated).write_bytes(buf.getvalue())
    (root / upright).write_bytes(encode_image(Image.fromarray(np.asarray(shown)), "png"))
    return {rotated: "ok", upright: "ok"}


def _write_fragile_names(root: Path) -> dict[str, str]:
    """Names some file systems refuse: unicode, and bytes that are not valid UTF-8."""
    written = {}
    names: list[str | bytes] = ["names/caf\u00e9 \u5199\u771f.jpg", b"names/\xff\xfe.jpg"]
    for seed, name in enumerate(names, start=14):
        try:
            path = os.path.join(os.fsencode(root), name) if isinstance(name, bytes) else root / name
            with open(path, "wb") as fh:
                fh.write(encode_image(_photo(seed), "jpeg", quality=90))
        except (UnicodeError, OSError):
            continue  # this file system cannot hold the name; leave it out of the zoo
        written[os.fsdecode(name)] = "ok"
    return written


def write_edge_case_zoo(root: str | os.PathLike[str]) -> dict[str, str]:
    """Write one small file per decoding edge case; return ``{relative path: expected outcome}``.

    Outcomes are ``"ok"`` (must be featured; multi-frame files by their first frame) and
    ``"failure"`` (must be listed as a failure); see :data:`OUTCOMES`. Cases: truncated JPEG,
    zero-byte .jpg, text named .jpg, random bytes named .png and a decompression-bomb PNG
    header (failures); palette, RGBA, LA and 16-bit PNG, CMYK JPEG, EXIF orientation 6 and its
    upright twin (:data:`ZOO_UPRIGHT_TWINS`), animated GIF, multipage TIFF, MPO, lossless WEBP,
    BMP, a unicode name, an upper-case .JPG, a JPEG without extension, and a name that is not
    valid UTF-8 (its key is ``os.fsdecode`` of the bytes). Files this Pillow cannot write, or
    names the file system refuses, are left out. Hidden files and symlink loops are not here:
    see :func:`write_hidden_file` and :func:`write_symlink_loop`. Every image is distinct.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     zoo = write_edge_case_zoo(tmp)
        >>> zoo["broken/truncated.jpg"], zoo["modes/cmyk.jpg"]
        ('failure', 'ok')
    """
    root = Path(root)
    entries = {}
    for rel, data, outcome in _zoo_files():
        if data is None:
            continue
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        entries[rel] = outcome
    entries.update(_write_exif_pair(root))
    entries.update(_write_fragile_names(root))
    return dict(sorted(entries.items()))


def write_symlink_loop(root: str | os.PathLike[str]) -> Path:
    """Create ``root/sub/loop`` as a directory symlink to ``..`` and return the link.

    Raises:
        OSError: the platform or file system does not allow symlinks (e.g. Windows without
            developer mode), or ``sub/loop`` already exists.
    """
    link = Path(root) / "sub" / "loop"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to("..", target_is_directory=True)
    return link


def write_hidden_file(root: str | os.PathLike[str]) -> Path:
    """Write a valid JPEG named ``.hidden.jpg`` in ``root`` and return its path."""
    path = Path(root) / ".hidden.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_image(_photo(40), "jpeg", quality=90))
    return path
