"""Write the public set again at camera-like size, for speed measurements on larger photos.

Every file is resized (bicubic) so its long side is ``--long-side`` pixels (never
shrunk) and saved in its own format (MPO as JPEG; JPEG and WebP at quality 90, EXIF kept),
under the same relative path. The duplicate structure is the public set's; byte-identical
sources stay byte-identical. The public photos are small (median about 0.2 megapixels), so a
scan of them is dominated by per-image matching; camera-sized photos move the balance
towards decoding, as in most real collections.

    python benchmarks/make_camera_sized.py /tmp/big --long-side 2400
    python benchmarks/bench_scan.py /tmp/big/images --rounds 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

PUBLIC = Path(__file__).resolve().parents[2] / "shared" / "benchdata" / "public"


def write_resized(src: Path, out: Path, long_side: int) -> None:
    with Image.open(src) as im:
        fmt = "JPEG" if im.format == "MPO" else im.format
        exif = im.info.get("exif")
        f = long_side / max(im.size)
        big = (
            im.resize((round(im.width * f), round(im.height * f)), Image.Resampling.BICUBIC)
            if f > 1
            else im.copy()
        )
    kw: dict[str, object] = {"quality": 90} if fmt in ("JPEG", "WEBP") else {}
    if exif and fmt == "JPEG":
        kw["exif"] = exif
    if fmt == "JPEG" and big.mode not in ("RGB", "L"):
        big = big.convert("RGB")
    out.parent.mkdir(parents=True, exist_ok=True)
    big.save(out, fmt, **kw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path)
    parser.add_argument("--long-side", type=int, default=2400)
    parser.add_argument("--source", type=Path, default=PUBLIC / "images")
    args = parser.parse_args()
    files = sorted(p for p in args.source.rglob("*") if p.is_file())
    for p in files:
        write_resized(p, args.dest / "images" / p.relative_to(args.source), args.long_side)
    print(f"{len(files)} files written under {args.dest / 'images'}")


if __name__ == "__main__":
    main()
