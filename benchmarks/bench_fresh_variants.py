"""Quality on fresh variants of real photos: a stand-in for held-out sets.

The public set's variants were made once, with one draw of parameters each. This script
draws new ones: it copies the public set's originals, hard negatives and other photos into
a temporary tree, writes ``--variants`` new variants of every original (each transform of
:data:`lookalike.testing.VARIANT_KINDS`, plus rotation with black corners, EXIF
orientation, and pairs of transforms, with parameters drawn from ``--seed``), then scans
with default settings and prints ``lookalike eval``'s figures. Tuning that holds up here
holds up for the kind of change, not for particular files.

    python benchmarks/bench_fresh_variants.py [--seeds 1 2 3] [--variants 4] [--preset balanced]
        [--keep DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

import lookalike
from lookalike.evaluation import evaluate, format_evaluation, load_truth
from lookalike.matching import PRESETS, preset_settings
from lookalike.pipeline import ScanSettings
from lookalike.testing import VARIANT_KINDS, encode_image, make_variant

PUBLIC = Path(__file__).resolve().parents[2] / "shared" / "benchdata" / "public"
GEOMETRIC = ("crop", "rotate", "rotate_expand", "hflip")
PHOTOMETRIC = tuple(k for k in VARIANT_KINDS if k not in GEOMETRIC)
KINDS = (*VARIANT_KINDS, "rotate_expand", "exif_orientation", "combo", "combo")


def rotate_expand(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Rotate 1-10 degrees either way, keeping the whole picture (black corners)."""
    angle = float(rng.uniform(1.0, 10.0)) * (1 if rng.random() < 0.5 else -1)
    return img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)


def one_transform(img: Image.Image, kind: str, rng: np.random.Generator) -> Image.Image:
    if kind == "rotate_expand":
        return rotate_expand(img, rng)
    return make_variant(img, kind, rng=rng)


def exif_rotated_jpeg(img: Image.Image, rng: np.random.Generator) -> bytes:
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
    stored.save(buf, "JPEG", quality=int(rng.integers(85, 96)), exif=exif)
    check = ImageOps.exif_transpose(Image.open(io.BytesIO(buf.getvalue())))
    assert check.size == img.size, "EXIF orientation round trip changed the size"
    return buf.getvalue()


def make_fresh(img: Image.Image, kind: str, rng: np.random.Generator) -> tuple[bytes, str, str]:
    """Bytes, file extension and transform label of one new variant."""
    if kind == "exif_orientation":
        return exif_rotated_jpeg(img, rng), ".jpg", kind
    if kind == "combo":
        first = str(rng.choice(GEOMETRIC)) if rng.random() < 0.6 else str(rng.choice(PHOTOMETRIC))
        second = str(rng.choice([k for k in PHOTOMETRIC if k != first]))
        out = one_transform(one_transform(img, first, rng), second, rng)
        kind = f"{first}+{second}"
    else:
        out = one_transform(img, kind, rng)
    if rng.random() < 0.2 and kind != "jpeg_quality":
        return encode_image(out, "png"), ".png", kind
    return encode_image(out, "jpeg", quality=int(rng.integers(85, 96))), ".jpg", kind


def write_set(dst: Path, variants: int, seed: int) -> Path:
    """Write the tree and its truth.json; return the truth path."""
    truth = json.loads((PUBLIC / "truth.json").read_text())
    rng = np.random.default_rng(seed)
    originals = sorted({v["original"] for v in truth["variant_of"].values()})
    in_groups = {p for g in truth["duplicate_groups"] for p in g}
    keep = [p for p in truth["images"] if p in originals or p not in in_groups]
    for rel in keep:
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PUBLIC / rel, dst / rel)
    groups, variant_of = [], {}
    schedule: list[str] = []
    for k, original in enumerate(originals):
        with Image.open(PUBLIC / original) as im:
            img = ImageOps.exif_transpose(im).convert("RGB")
        group = [original]
        for v in range(variants):
            if not schedule:
                schedule = list(rng.permutation(KINDS))
            data, ext, label = make_fresh(img, str(schedule.pop()), rng)
            rel = f"fresh/{k:03d}/v{v}{ext}"
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            (dst / rel).write_bytes(data)
            variant_of[rel] = {"original": original, "transform": label, "params": {}}
            group.append(rel)
        groups.append(group)
    images = sorted([*keep, *variant_of])
    doc = {"images": images, "duplicate_groups": groups, "variant_of": variant_of,
           "hard_negative_groups": truth["hard_negative_groups"]}  # fmt: skip
    (dst / "truth.json").write_text(json.dumps(doc, indent=1))
    return dst / "truth.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--variants", type=int, default=4)
    parser.add_argument("--preset", choices=list(PRESETS), default="balanced")
    parser.add_argument("--keep", type=Path, help="write the sets here (one folder per seed)")
    args = parser.parse_args()
    totals = {"tp": 0, "pred": 0, "true": 0, "flagged": 0, "negatives": 0}
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            base = (args.keep / f"seed{seed}") if args.keep else Path(tmp) / "set"
            base.mkdir(parents=True, exist_ok=True)
            truth_path = write_set(base, args.variants, seed)
            truth = load_truth(truth_path)
            settings = ScanSettings(match=preset_settings(args.preset))
            result = lookalike.scan([base], db=Path(tmp) / "fresh.db", settings=settings)
            scores = evaluate(result.groups, truth)
            print(f"--- seed {seed}: {len(truth.images)} images")
            print(format_evaluation(scores))
            totals["tp"] += scores["true_positives"]
            totals["pred"] += scores["predicted_pairs"]
            totals["true"] += scores["true_pairs"]
            totals["flagged"] += scores["hard_negatives_flagged"]
            totals["negatives"] += scores["hard_negative_pairs"]
    p = totals["tp"] / max(1, totals["pred"])
    r = totals["tp"] / max(1, totals["true"])
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    print(f"=== all seeds: precision {p:.4f} recall {r:.4f} F1 {f1:.4f} "
          f"hard negatives flagged {totals['flagged']}/{totals['negatives']}")  # fmt: skip


if __name__ == "__main__":
    main()
