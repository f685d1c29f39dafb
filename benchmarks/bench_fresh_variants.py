"""Quality on fresh variants of real photos: a stand-in for held-out sets.

The public set's variants were made once, with one draw of parameters each. This script
draws new ones: it copies the public set's originals, hard negatives and other photos into
a temporary tree, writes ``--variants`` new variants of every original (each transform of
:data:`lookalike.testing.VARIANT_KINDS`, plus rotation with black corners, EXIF
orientation, and pairs of transforms, with parameters drawn from ``--seed``), then scans
with default settings and prints ``lookalike eval``'s figures. Tuning that holds up here
holds up for the kind of change, not for particular files.

``--hard`` draws the variants from :data:`lookalike.testing.HARD_VARIANT_KINDS` instead (the
kinds of ``public-hard``, issue #13, at the issue's full ranges), plus EXIF orientation and
pairs of one hard kind with one light edit (``kind+kind``, a third of the variants).

    python benchmarks/bench_fresh_variants.py [--hard] [--seeds 1 2 3] [--variants 4]
        [--preset balanced] [--keep DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

import lookalike
from lookalike.evaluation import Truth, evaluate, format_evaluation, load_truth, transform_parts
from lookalike.matching import PRESETS, preset_settings
from lookalike.pipeline import ScanResult, ScanSettings
from lookalike.records import Group
from lookalike.testing import (
    HARD_VARIANT_KINDS,
    VARIANT_KINDS,
    encode_image,
    make_labelled_variant,
)

PUBLIC = Path(__file__).resolve().parents[2] / "shared" / "benchdata" / "public"
GEOMETRIC = ("crop", "rotate", "rotate_expand", "hflip")
PHOTOMETRIC = tuple(k for k in VARIANT_KINDS if k not in GEOMETRIC)
KINDS = (*VARIANT_KINDS, "rotate_expand", "exif_orientation", "combo", "combo")
LIGHT = (*VARIANT_KINDS, "rotate_expand", "exif_orientation")
"""The light edits found today, the second step of a hard pair."""
HARD_KINDS = (*HARD_VARIANT_KINDS, "exif_orientation", *["hard_combo"] * 8)

Params = dict[str, Any]
Variant = tuple[bytes, str, str, Params]  # bytes, file extension, transform label, params


def rotate_expand(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    """Rotate 1-10 degrees either way, keeping the whole picture (black corners)."""
    angle = float(rng.uniform(1.0, 10.0)) * (1 if rng.random() < 0.5 else -1)
    out = img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    return out, {"angle": round(angle, 2), "mode": "expand", "fill": [0, 0, 0]}


def one_transform(
    img: Image.Image, kind: str, rng: np.random.Generator
) -> tuple[Image.Image, Params]:
    if kind == "rotate_expand":
        return rotate_expand(img, rng)
    return make_labelled_variant(img, kind, rng)


def exif_rotated_jpeg(img: Image.Image, rng: np.random.Generator) -> tuple[bytes, Params]:
    """The same picture stored turned, with the EXIF tag that turns it upright again."""
    orientation = int(rng.choice([2, 3, 4, 5, 6, 7, 8]))
    undo = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
            4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
            6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
            8: Image.Transpose.ROTATE_270}  # fmt: skip
    stored = img.transpose(undo[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    quality = int(rng.integers(85, 96))
    stored.save(buf, "JPEG", quality=quality, exif=exif)
    check = ImageOps.exif_transpose(Image.open(io.BytesIO(buf.getvalue())))
    assert check.size == img.size, "EXIF orientation round trip changed the size"
    return buf.getvalue(), {"orientation": orientation, "quality": quality}


def encode_variant(
    out: Image.Image, kind: str, params: Params, rng: np.random.Generator
) -> Variant:
    """Store a variant: PNG one time in five, otherwise JPEG q 85-95."""
    if rng.random() < 0.2 and kind != "jpeg_quality":
        return encode_image(out, "png"), ".png", kind, {**params, "saved_as": "png"}
    quality = int(rng.integers(85, 96))
    saved = {"saved_as": "jpeg", "quality": quality}
    return encode_image(out, "jpeg", quality=quality), ".jpg", kind, {**params, **saved}


def make_fresh(img: Image.Image, kind: str, rng: np.random.Generator) -> Variant:
    """Bytes, file extension, transform label and parameters of one new variant."""
    if kind == "exif_orientation":
        data, params = exif_rotated_jpeg(img, rng)
        return data, ".jpg", kind, params
    if kind == "combo":
        first = str(rng.choice(GEOMETRIC)) if rng.random() < 0.6 else str(rng.choice(PHOTOMETRIC))
        second = str(rng.choice([k for k in PHOTOMETRIC if k != first]))
        mid, p1 = one_transform(img, first, rng)
        out, p2 = one_transform(mid, second, rng)
        kind, params = f"{first}+{second}", {"steps": [p1, p2]}
    else:
        out, params = one_transform(img, kind, rng)
    return encode_variant(out, kind, params, rng)


def make_hard_fresh(img: Image.Image, kind: str, rng: np.random.Generator) -> Variant:
    """One new variant of a hard kind, of EXIF orientation, or of a hard kind + a light edit."""
    if kind == "exif_orientation":
        return make_fresh(img, kind, rng)
    if kind != "hard_combo":
        out, params = make_labelled_variant(img, kind, rng)
        return encode_variant(out, kind, params, rng)
    first, second = str(rng.choice(HARD_VARIANT_KINDS)), str(rng.choice(LIGHT))
    mid, p1 = make_labelled_variant(img, first, rng)
    label = f"{first}+{second}"
    if second == "exif_orientation":
        data, p2 = exif_rotated_jpeg(mid, rng)
        return data, ".jpg", label, {"steps": [p1, p2]}
    out, p2 = one_transform(mid, second, rng)
    return encode_variant(out, label, {"steps": [p1, p2]}, rng)


def load_upright(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return ImageOps.exif_transpose(im).convert("RGB")


def write_set(dst: Path, variants: int, seed: int, *, hard: bool = False) -> Path:
    """Write the tree and its truth.json; return the truth path."""
    truth = json.loads((PUBLIC / "truth.json").read_text())
    rng = np.random.default_rng(seed)
    originals = sorted({v["original"] for v in truth["variant_of"].values()})
    in_groups = {p for g in truth["duplicate_groups"] for p in g}
    keep = [p for p in truth["images"] if p in originals or p not in in_groups]
    for rel in keep:
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PUBLIC / rel, dst / rel)
    kinds, fresh = (HARD_KINDS, make_hard_fresh) if hard else (KINDS, make_fresh)
    groups, variant_of = [], {}
    schedule: list[str] = []
    for k, original in enumerate(originals):
        img = load_upright(PUBLIC / original)
        group = [original]
        for v in range(variants):
            if not schedule:
                schedule = list(rng.permutation(kinds))
            data, ext, label, params = fresh(img, str(schedule.pop()), rng)
            rel = f"fresh/{k:03d}/v{v}{ext}"
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            (dst / rel).write_bytes(data)
            variant_of[rel] = {"original": original, "transform": label, "params": params}
            group.append(rel)
        groups.append(group)
    images = sorted([*keep, *variant_of])
    doc = {"images": images, "duplicate_groups": groups, "variant_of": variant_of,
           "hard_negative_groups": truth["hard_negative_groups"]}  # fmt: skip
    (dst / "truth.json").write_text(json.dumps(doc, indent=1))
    return dst / "truth.json"


# --- scoring over seeds ----------------------------------------------------------------------


def predicted_groups(groups: Sequence[Group], truth: Truth) -> dict[str, int]:
    """Truth-relative path -> index of its predicted group (folders' symlinks resolved)."""
    out = {}
    for i, g in enumerate(groups):
        for path in (g.keeper, *(m.path for m in g.members)):
            real = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
            out[Path(os.path.relpath(real, truth.base)).as_posix()] = i
    return out


def variant_keys(transform: str) -> set[str]:
    """The lines a variant counts in: ``rot90+blur`` -> rot90, rot90 (paired), + blur."""
    first, *later = transform_parts(transform)
    return {first, *([f"{first} (paired)"] if later else []), *(f"+ {k}" for k in later)}


class Tally:
    """Pair counts, recall per kind and false positives, summed over seeds."""

    def __init__(self, extra_key: Callable[[dict[str, Any]], str] | None = None) -> None:
        self.extra_key = extra_key  # one more line a variant counts in, from its truth entry
        self.counts = {"tp": 0, "pred": 0, "true": 0, "flagged": 0, "negatives": 0}
        self.kinds: dict[str, list[int]] = {}  # kind -> [found, total]
        self.extra: dict[str, list[int]] = {}  # extra key -> [found, total]
        self.false_positive_kinds: dict[str, int] = {}
        self.failures = 0

    def add(self, scores: dict[str, Any], truth: Truth, result: ScanResult) -> None:
        self.counts["tp"] += scores["true_positives"]
        self.counts["pred"] += scores["predicted_pairs"]
        self.counts["true"] += scores["true_pairs"]
        self.counts["flagged"] += scores["hard_negatives_flagged"]
        self.counts["negatives"] += scores["hard_negative_pairs"]
        self.failures += len(result.failures)
        where = predicted_groups(result.groups, truth)
        for variant, info in truth.variant_of.items():
            hit = variant in where and where.get(info["original"]) == where[variant]
            for key in variant_keys(info["transform"]):
                found, total = self.kinds.get(key, [0, 0])
                self.kinds[key] = [found + hit, total + 1]
            if self.extra_key:
                found, total = self.extra.get(self.extra_key(info), [0, 0])
                self.extra[self.extra_key(info)] = [found + hit, total + 1]
        self._add_false_positives(truth, where)

    def _add_false_positives(self, truth: Truth, where: dict[str, int]) -> None:
        members: dict[int, list[str]] = {}
        for path, i in where.items():
            members.setdefault(i, []).append(path)
        same = {p: i for i, g in enumerate(truth.groups) for p in g}
        for paths in members.values():
            for a, b in combinations(sorted(paths), 2):
                if a not in same or same[a] != same.get(b):
                    label = " / ".join(sorted((_label(truth, a), _label(truth, b))))
                    self.false_positive_kinds[label] = self.false_positive_kinds.get(label, 0) + 1

    def summary(self) -> dict[str, Any]:
        c = self.counts
        p, r = c["tp"] / max(1, c["pred"]), c["tp"] / max(1, c["true"])
        kinds, extra = _recalls(self.kinds), _recalls(self.extra)
        false_positives = dict(sorted(self.false_positive_kinds.items()))
        return {"precision": round(p, 4), "recall": round(r, 4),
                "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
                "true_pairs": c["true"], "predicted_pairs": c["pred"],
                "hard_negatives_flagged": c["flagged"], "hard_negative_pairs": c["negatives"],
                "failures": self.failures, "recall_by_kind": kinds, "recall_by_extra": extra,
                "false_positives_by_kind": false_positives}  # fmt: skip


def _recalls(counts: dict[str, list[int]]) -> dict[str, dict[str, Any]]:
    return {k: {"recall": round(f / t, 4), "found": f, "total": t}
            for k, (f, t) in sorted(counts.items())}  # fmt: skip


def _label(truth: Truth, path: str) -> str:
    """A file's transform, or what it is when it is not a variant."""
    info = truth.variant_of.get(path)
    if info is not None:
        return str(info["transform"])
    if any(path in g for g in truth.hard_negatives):
        return "hard negative"
    return "original" if any(path in g for g in truth.groups) else "distractor"


def format_summary(summary: dict[str, Any], *, worst: int = 6) -> str:
    """Figures over all seeds: totals, recall per kind (worst first), false positives."""
    lines = [
        f"=== all seeds: precision {summary['precision']:.4f} recall {summary['recall']:.4f} "
        f"F1 {summary['f1']:.4f} hard negatives flagged {summary['hard_negatives_flagged']}/"
        f"{summary['hard_negative_pairs']} (true pairs {summary['true_pairs']}, "
        f"predicted {summary['predicted_pairs']}, failed files {summary['failures']})",
        "recall by kind, all seeds ('K': K alone or first of a pair; 'K (paired)': K then a "
        "second edit; '+ L': pairs whose second step is L):",
    ]
    kinds = summary["recall_by_kind"]
    for name, r in sorted(kinds.items(), key=lambda kv: (kv[1]["recall"], kv[0])):
        lines.append(f"  {name:<22} {r['recall']:.3f}  ({r['found']}/{r['total']})")
    ranked = sorted((r["recall"], k) for k, r in kinds.items() if not set("+(") & set(k))
    lines.append("worst kinds: " + ", ".join(f"{k} {v:.3f}" for v, k in ranked[:worst]))
    for name, r in summary["recall_by_extra"].items():
        lines.append(f"recall, {name}: {r['recall']:.3f}  ({r['found']}/{r['total']})")
    lines.append("false-positive pairs by what they join:")
    for label, n in summary["false_positives_by_kind"].items():
        lines.append(f"  {n:>4}  {label}")
    return "\n".join(lines)


def score_seeds(
    seeds: list[int],
    write: Callable[[Path, int], Path],
    *,
    preset: str,
    keep: Path | None = None,
    extra_key: Callable[[dict[str, Any]], str] | None = None,
) -> dict[str, Any]:
    """Write a set per seed with ``write(folder, seed)``, scan, print its figures; sum them."""
    tally = Tally(extra_key)
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            base = (keep / f"seed{seed}") if keep else Path(tmp) / "set"
            base.mkdir(parents=True, exist_ok=True)
            truth = load_truth(write(base, seed))
            settings = ScanSettings(match=preset_settings(preset))
            result = lookalike.scan([base], db=Path(tmp) / "fresh.db", settings=settings)
            scores = evaluate(result.groups, truth)
            print(f"--- seed {seed}: {len(truth.images)} images, {len(result.failures)} failed")
            print(format_evaluation(scores), flush=True)
            tally.add(scores, truth, result)
    return tally.summary()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--variants", type=int, default=4)
    parser.add_argument("--hard", action="store_true", help="draw from the hard kinds (#13)")
    parser.add_argument("--preset", choices=list(PRESETS), default="balanced")
    parser.add_argument("--keep", type=Path, help="write the sets here (one folder per seed)")
    parser.add_argument("--json", type=Path, help="also write the all-seed figures here")
    args = parser.parse_args()

    def write(folder: Path, seed: int) -> Path:
        return write_set(folder, args.variants, seed, hard=args.hard)

    summary = score_seeds(args.seeds, write, preset=args.preset, keep=args.keep)
    print(format_summary(summary))
    if args.json:
        args.json.write_text(json.dumps({"seeds": args.seeds, **summary}, indent=1))


if __name__ == "__main__":
    main()
