"""Small-picture stress set: 32 and 48 px pictures of the public photos (issue #13 (c)).

For every seed, every distinct photo of the public set (``shared/benchdata/public``, its
originals and other photos per truth.json) gives one small square picture: a square window of
the photo (35-90% of its short side) resized to 32x32 or 48x48. Each of the 70 originals also
gets ``--variants`` duplicates made at that size from the same shot:

- ``shift``: the window moved 1-4 picture pixels (x and/or y);
- ``zoom``: the window 5-15% larger or smaller, same centre, same picture size;
- ``rescale``: the same window at a picture size 5-15% larger or smaller;
- ``crop``: the small picture cropped, 3-15% off each dimension;
- ``recolour``: hue turned 10-60 degrees, saturation x0.2-0.6 or x1.4-2.0, or the light
  brightness, contrast or gamma edits;
- ``jpeg_quality``: only the JPEG below; and pairs of two of the above (``kind+kind``).

Every variant is stored as JPEG q 70-95 at its own size; the pictures themselves as PNG.

Negatives (look-alikes that are not duplicates, ``hard_negative_groups``): a second picture of
the same photo from a window that does not overlap the first (when the photo is wide enough),
and the public hard-negative groups (stereo pairs, calibration series, ...) cut at the same
relative window, up to ``--max-negative-group`` photos of a group a seed (the others are left
out of that seed; the calibration series has 26). The remaining photos are distractors.

    python benchmarks/bench_small_pictures.py [--seeds 1 2 3] [--variants 4] [--sides 32 48]
        [--preset balanced] [--keep DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from bench_fresh_variants import PUBLIC, format_summary, load_upright, score_seeds
from PIL import Image

from lookalike.matching import PRESETS
from lookalike.testing import encode_image, make_labelled_variant

SMALL_KINDS = ("shift", "zoom", "rescale", "crop", "recolour")
SCHEDULE = (*SMALL_KINDS, "jpeg_quality", "combo", "combo")
RECOLOURS = ("hue", "saturation", "brightness", "contrast", "gamma")

Params = dict[str, Any]


@dataclass(frozen=True)
class Window:
    """A square of a photo, in the photo's pixels: top-left corner and side."""

    x: float
    y: float
    side: float

    def box(self) -> tuple[float, float, float, float]:
        return self.x, self.y, self.x + self.side, self.y + self.side

    def overlaps(self, other: Window) -> bool:
        return abs(self.x - other.x) < self.side and abs(self.y - other.y) < self.side


def clamp(window: Window, size: tuple[int, int]) -> Window:
    """The window moved (never resized below the photo) so that it lies inside the photo."""
    side = min(window.side, *size)
    x = float(np.clip(window.x, 0, size[0] - side))
    return Window(x, float(np.clip(window.y, 0, size[1] - side)), side)


def relative_window(rng: np.random.Generator) -> tuple[float, float, float]:
    """Side (fraction of the short side) and position (fractions of the free room)."""
    return float(rng.uniform(0.35, 0.9)), float(rng.random()), float(rng.random())


def place(rel: tuple[float, float, float], size: tuple[int, int]) -> Window:
    side = rel[0] * min(size)
    return Window(rel[1] * (size[0] - side), rel[2] * (size[1] - side), side)


def distant_window(window: Window, size: tuple[int, int]) -> Window | None:
    """The window of the same side farthest from ``window`` that does not overlap it."""
    spots = [
        Window(fx * (size[0] - window.side), fy * (size[1] - window.side), window.side)
        for fx in np.linspace(0, 1, 5)
        for fy in np.linspace(0, 1, 5)
    ]
    free = [w for w in spots if not w.overlaps(window)]
    if not free:
        return None
    return max(free, key=lambda w: (w.x - window.x) ** 2 + (w.y - window.y) ** 2)


@dataclass(frozen=True)
class Shot:
    """How one small picture is cut: a window, its picture side, then a crop (fractions)."""

    window: Window
    side: int
    crop: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)

    def draw(self, photo: Image.Image) -> Image.Image:
        """The window resized to ``side`` x ``side`` (sub-pixel exact), then cropped."""
        picture = photo.resize(
            (self.side, self.side), Image.Resampling.LANCZOS, box=self.window.box()
        )
        if self.crop == (0.0, 0.0, 1.0, 1.0):
            return picture
        return picture.crop(tuple(round(f * self.side) for f in self.crop))


def _signed(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi)) * (1 if rng.random() < 0.5 else -1)


def shift(shot: Shot, size: tuple[int, int], rng: np.random.Generator) -> tuple[Shot, Params]:
    """Move the window by 1-4 picture pixels on one or both axes."""
    dx, dy = (int(v) * int(rng.choice([-1, 1])) for v in rng.integers(0, 5, size=2))
    if dx == 0 and dy == 0:
        dx = int(rng.choice([-1, 1])) * int(rng.integers(1, 5))
    w, scale = shot.window, shot.window.side / shot.side
    moved = clamp(Window(w.x + dx * scale, w.y + dy * scale, w.side), size)
    shift_px = [round((moved.x - w.x) / scale, 2), round((moved.y - w.y) / scale, 2)]
    return replace(shot, window=moved), {"shift_px": shift_px}


def zoom(shot: Shot, size: tuple[int, int], rng: np.random.Generator) -> tuple[Shot, Params]:
    """Make the window 5-15% larger or smaller about its centre; same picture size."""
    factor = round(1 + _signed(rng, 0.05, 0.15), 3)
    w = shot.window
    side = w.side * factor
    grown = Window(w.x + (w.side - side) / 2, w.y + (w.side - side) / 2, side)
    return replace(shot, window=clamp(grown, size)), {"factor": factor}


def rescale(shot: Shot, size: tuple[int, int], rng: np.random.Generator) -> tuple[Shot, Params]:
    """The same window at a picture side 5-15% larger or smaller."""
    side = round(shot.side * (1 + _signed(rng, 0.05, 0.15)))
    return replace(shot, side=side), {"size": [side, side]}


def crop(shot: Shot, size: tuple[int, int], rng: np.random.Generator) -> tuple[Shot, Params]:
    """Cut 3-15% off each dimension of the picture, at a random place."""
    cut = rng.uniform(0.03, 0.15, size=2)
    x0, y0 = (float(rng.uniform(0, c)) for c in cut)
    box = (x0, y0, x0 + 1 - float(cut[0]), y0 + 1 - float(cut[1]))
    return replace(shot, crop=box), {"box_fraction": [round(v, 4) for v in box]}


GEOMETRY = {"shift": shift, "zoom": zoom, "rescale": rescale, "crop": crop}


def recolour(picture: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    """One colour change: hard hue or saturation, or light brightness, contrast or gamma."""
    kind = str(rng.choice(RECOLOURS))
    out, params = make_labelled_variant(picture, kind, rng)
    return out.convert("RGB"), {"kind": kind, **params}


def make_small_variant(
    photo: Image.Image, shot: Shot, kind: str, rng: np.random.Generator
) -> tuple[bytes, str, Params]:
    """JPEG bytes, transform label and parameters of one small duplicate of ``shot``."""
    steps = (
        [kind] if kind != "combo" else [str(k) for k in rng.choice(SMALL_KINDS, 2, replace=False)]
    )
    steps.sort(key=lambda k: (k == "recolour", k == "crop"))  # window, size, crop, colour
    params: Params = {}
    for step in steps:
        if step in GEOMETRY:
            shot, params[step] = GEOMETRY[step](shot, photo.size, rng)
    picture = shot.draw(photo)
    if "recolour" in steps:
        picture, params["recolour"] = recolour(picture, rng)
    params["quality"] = int(rng.integers(70, 96))
    data = encode_image(picture, "jpeg", quality=params["quality"])
    return data, "+".join(steps), params


# --- the set ---------------------------------------------------------------------------------


def pick_negative_groups(
    groups: list[list[str]], rng: np.random.Generator, most: int
) -> tuple[list[list[str]], set[str]]:
    """Each public hard-negative group cut to at most ``most`` photos; the photos left out."""
    kept, dropped = [], set()
    for group in groups:
        chosen = sorted(str(p) for p in rng.choice(group, min(most, len(group)), replace=False))
        kept.append(chosen)
        dropped |= set(group) - set(chosen)
    return kept, dropped


def write_picture(dst: Path, rel: str, data: bytes) -> str:
    (dst / rel).parent.mkdir(parents=True, exist_ok=True)
    (dst / rel).write_bytes(data)
    return rel


def write_small_set(
    dst: Path, seed: int, *, variants: int, sides: list[int], max_negative_group: int
) -> Path:
    """Write the small pictures and their truth.json; return the truth path."""
    public = json.loads((PUBLIC / "truth.json").read_text())
    rng = np.random.default_rng(seed)
    originals = {v["original"] for v in public["variant_of"].values()}
    in_groups = {p for g in public["duplicate_groups"] for p in g}
    look_alikes, dropped = pick_negative_groups(
        public["hard_negative_groups"], rng, max_negative_group
    )
    photos = [p for p in public["images"] if (p in originals or p not in in_groups)]
    photos = [p for p in photos if p not in dropped]
    shared = {p: rel for g in look_alikes for rel in [relative_window(rng)] for p in g}
    picture_of, groups, variant_of, negatives = {}, [], {}, []
    schedule: list[str] = []
    for k, path in enumerate(photos):
        photo = load_upright(PUBLIC / path)
        shot = Shot(
            place(shared.get(path) or relative_window(rng), photo.size), int(rng.choice(sides))
        )
        base = write_picture(
            dst, f"small/{k:03d}/picture.png", encode_image(shot.draw(photo), "png")
        )
        picture_of[path] = base
        group = [base]
        for v in range(variants if path in originals else 0):
            schedule = schedule or list(rng.permutation(SCHEDULE))
            data, label, params = make_small_variant(photo, shot, str(schedule.pop()), rng)
            rel = write_picture(dst, f"small/{k:03d}/v{v}.jpg", data)
            params = {**params, "side": shot.side, "photo": path}
            variant_of[rel] = {"original": base, "transform": label, "params": params}
            group.append(rel)
        if len(group) > 1:
            groups.append(group)
        far = distant_window(shot.window, photo.size)
        if far is not None:
            data = encode_image(Shot(far, shot.side).draw(photo), "png")
            negatives.append([base, write_picture(dst, f"small/{k:03d}/elsewhere.png", data)])
    negatives += [[picture_of[p] for p in g] for g in look_alikes if len(g) > 1]
    images = sorted({p for g in [*groups, *negatives] for p in g} | set(picture_of.values()))
    doc = {"images": images, "duplicate_groups": groups, "variant_of": variant_of,
           "hard_negative_groups": negatives}  # fmt: skip
    (dst / "truth.json").write_text(json.dumps(doc, indent=1))
    return dst / "truth.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--variants", type=int, default=4)
    parser.add_argument("--sides", type=int, nargs="+", default=[32, 48])
    parser.add_argument("--max-negative-group", type=int, default=8)
    parser.add_argument("--preset", choices=list(PRESETS), default="balanced")
    parser.add_argument("--keep", type=Path, help="write the sets here (one folder per seed)")
    parser.add_argument("--json", type=Path, help="also write the all-seed figures here")
    args = parser.parse_args()

    def write(folder: Path, seed: int) -> Path:
        return write_small_set(folder, seed, variants=args.variants, sides=args.sides,
                               max_negative_group=args.max_negative_group)  # fmt: skip

    def side(info: dict[str, Any]) -> str:
        return f"{info['params']['side']} px pictures"

    summary = score_seeds(args.seeds, write, preset=args.preset, keep=args.keep, extra_key=side)
    print(format_summary(summary))
    if args.json:
        args.json.write_text(json.dumps({"seeds": args.seeds, **summary}, indent=1))


if __name__ == "__main__":
    main()
