"""Thumbnails down to 32 px: compared at the resolution both pictures really have."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

import lookalike
from lookalike.testing import make_hard_negative
from lookalike.verify import at_resolution, common_resolution

# a real photo with fine detail, whose 32 px copy its sharp thumbnail did not match
_DETAILED_PHOTO = "images/import/roll_37/photo_b889ee.jpg"


def test_pictures_larger_than_a_thumbnail_are_compared_as_they_are() -> None:
    assert common_resolution((640, 480), (300, 200)) is None
    assert common_resolution((640, 480), (32, 24)) == (32, 24)
    assert common_resolution((96, 200), (640, 480)) == (96, 128)


def test_a_thumbnail_at_a_lower_resolution_keeps_its_size_and_loses_detail() -> None:
    rng = np.random.default_rng(0)
    thumb = rng.integers(0, 256, (128, 128), dtype=np.uint8)
    blurred = at_resolution(thumb, (32, 24))
    assert blurred.shape == thumb.shape
    assert blurred.std() < thumb.std() / 2


def test_a_thumbnail_sized_copy_joins_its_original_and_a_tiny_burst_frame_does_not(
    tmp_path: Path, benchdata: Path
) -> None:
    root = tmp_path / "images"
    root.mkdir()
    photo = Image.open(benchdata / _DETAILED_PHOTO).convert("RGB")
    photo.save(root / "original.jpg", quality=92)
    photo.resize((32, 24), Image.Resampling.LANCZOS).save(root / "tiny.jpg", quality=90)
    photo.resize((48, 36), Image.Resampling.BOX).save(root / "small.png")
    first, second = make_hard_negative(rng=5, base_seed=32, size=(640, 480))
    first.save(root / "burst_1.jpg", quality=92)
    second.resize((48, 36), Image.Resampling.LANCZOS).save(root / "burst_2.jpg", quality=90)

    result = lookalike.scan([root], db=tmp_path / "store.db")

    groups = [
        sorted(Path(p).name for p in (g.keeper, *(m.path for m in g.members)))
        for g in result.groups
    ]
    assert groups == [["original.jpg", "small.png", "tiny.jpg"]]


def _patch(seed: int) -> np.ndarray:
    """A nearly textureless grey patch (faint noise, no edges)."""
    rng = np.random.default_rng(seed)
    return np.clip(128 + rng.normal(0, 1.5, (128, 128)), 0, 255).astype(np.uint8)


def test_two_textureless_patches_never_align_into_a_duplicate() -> None:
    from lookalike.geometry import Alignment, compare_thumb, textured
    from lookalike.verify import verify_aligned

    (plain_a, blurred_a), (plain_b, blurred_b) = compare_thumb(_patch(1)), compare_thumb(_patch(2))
    identity = Alignment(
        warp=np.float32([[1, 0, 0], [0, 1, 0]]), mirror=False, cc=0.99, angle_deg=0.0,
        scale=1.0, anisotropy=0.0, shear_deg=0.0, translation=(0.0, 0.0), response=0.9,
    )  # fmt: skip

    verdict = verify_aligned(identity, plain_a, plain_b, (textured(blurred_a), textured(blurred_b)))

    assert not verdict.accepted
    assert verdict.evidence["reason"] == "too little detail to align"
