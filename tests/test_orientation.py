"""The eight orientations: descriptors follow the picture, the search is orientation-free,
and copies turned, flipped or transposed without an EXIF tag are found."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

import lookalike
from lookalike.features import describe, make_thumb
from lookalike.matching import MatchSettings, _Frames, identity_candidates
from lookalike.orientation import (
    NAMES,
    ORIENTATIONS,
    all_orientations,
    canonical_orientations,
    compose,
    inverse,
    is_mirrored,
    orient,
    orient_descriptor,
)
from lookalike.pipeline import ScanSettings
from lookalike.testing import make_photo

# what Pillow calls each orientation: orient(picture, o) == transpose(picture, METHODS[o])
_PIL = Image.Transpose
METHODS = [None, _PIL.ROTATE_90, _PIL.ROTATE_180, _PIL.ROTATE_270, _PIL.FLIP_LEFT_RIGHT,
           _PIL.TRANSVERSE, _PIL.FLIP_TOP_BOTTOM, _PIL.TRANSPOSE]  # fmt: skip


def _gray(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L"))


def _descriptor(gray: np.ndarray) -> np.ndarray:
    thumb = make_thumb(gray)
    return describe(cv2.resize(thumb, (32, 32), interpolation=cv2.INTER_AREA))


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return make_photo(rng=11, size=(160, 112))[0]


@pytest.mark.parametrize("o", range(ORIENTATIONS))
def test_orient_matches_what_pillow_calls_the_change(photo: Image.Image, o: int) -> None:
    changed = photo if METHODS[o] is None else photo.transpose(METHODS[o])
    assert np.array_equal(orient(_gray(photo), o), _gray(changed)), NAMES[o]


@pytest.mark.parametrize("o", range(ORIENTATIONS))
def test_a_descriptor_follows_its_picture_into_every_orientation(
    photo: Image.Image, o: int
) -> None:
    gray = _gray(photo)
    turned = np.ascontiguousarray(orient(gray, o))
    # exact but for the rounding of area averaging along the other axis
    assert float(_descriptor(turned) @ orient_descriptor(_descriptor(gray), o)) > 0.9999


def test_orientations_compose_like_the_pictures_do(photo: Image.Image) -> None:
    gray = _gray(photo)
    for a in range(ORIENTATIONS):
        assert compose(a, inverse(a)) == 0
        for b in range(ORIENTATIONS):
            assert np.array_equal(orient(orient(gray, a), b), orient(gray, compose(a, b)))
            assert is_mirrored(compose(a, b)) == (is_mirrored(a) != is_mirrored(b))


@pytest.mark.parametrize("seed", range(6))
def test_every_orientation_of_a_picture_has_the_same_canonical_descriptor(seed: int) -> None:
    base = _descriptor(_gray(make_photo(rng=seed, size=(144, 96))[0]))
    versions = all_orientations(base)
    canonical = [
        {tuple(np.round(orient_descriptor(v, o), 5)) for o in choice}
        for v, choice in zip(versions, canonical_orientations(versions), strict=True)
    ]
    assert set.intersection(*canonical)


def test_without_mirror_images_the_search_turns_pictures_only() -> None:
    rows = np.stack([_descriptor(_gray(make_photo(rng=k, size=(144, 96))[0])) for k in range(8)])
    for choice in canonical_orientations(rows, mirror=False):
        assert set(choice) <= {0, 1, 2, 3}
    found = identity_candidates(np.stack([rows[0], orient_descriptor(rows[0], 3)]),
                                MatchSettings(mirror=False))  # fmt: skip
    assert found.reciprocal[(0, 1)][1] > 0.999


def test_frames_give_the_orientation_between_pictures_linked_through_others() -> None:
    rng = np.random.default_rng(5)
    truth = {f"d{k}": int(rng.integers(ORIENTATIONS)) for k in range(12)}  # d -> canonical
    frames = _Frames()
    names = sorted(truth)
    for a, b in zip(names, names[1:], strict=False):  # a chain, linked out of order
        frames.link(b, a, compose(truth[a], inverse(truth[b])))
    for a in names:
        for b in names:
            assert frames.between(a, b) == compose(truth[b], inverse(truth[a]))
    assert _Frames().between("x", "y") is None


def _save(img: Image.Image, path: Path, **kw: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)


def test_copies_in_every_orientation_squashed_and_stretched_are_one_group(
    tmp_path: Path,
) -> None:
    photo = make_photo(rng=21, size=(480, 320))[0]
    root = tmp_path / "images"
    _save(photo, root / "original.jpg", quality=92)
    for o in range(1, ORIENTATIONS):
        _save(photo.transpose(METHODS[o]), root / f"{NAMES[o]}.jpg", quality=85)
    _save(photo.resize((256, 256), Image.Resampling.LANCZOS), root / "squash.png")
    _save(photo.resize((480, 540), Image.Resampling.LANCZOS), root / "stretch.jpg", quality=90)
    _save(make_photo(rng=22, size=(480, 320))[0], root / "other.jpg", quality=92)

    result = lookalike.scan([root], db=tmp_path / "store.db")

    assert len(result.groups) == 1
    group = result.groups[0]
    names = {Path(p).stem for p in [group.keeper, *(m.path for m in group.members)]}
    assert names == {"original", *NAMES[1:], "squash", "stretch"}
    relations = {Path(m.path).stem: m.relation for m in group.members}
    keeper = Path(group.keeper).stem
    for name, relation in relations.items():
        if {keeper, name} <= {"original", "squash", "stretch", "rot90", "rot180", "rot270"}:
            assert relation == "near", name


def test_without_mirror_images_turned_copies_are_still_found(tmp_path: Path) -> None:
    photo = make_photo(rng=23, size=(400, 300))[0]
    root = tmp_path / "images"
    _save(photo, root / "original.png")
    _save(photo.transpose(Image.Transpose.ROTATE_90), root / "turned.jpg", quality=90)
    _save(ImageOps.flip(photo), root / "upside_down.jpg", quality=90)  # a mirror image

    settings = ScanSettings(match=MatchSettings(mirror=False))
    result = lookalike.scan([root], db=tmp_path / "store.db", settings=settings)

    assert len(result.groups) == 1
    member = result.groups[0].members
    assert [Path(m.path).name for m in member] == ["turned.jpg"]
    assert member[0].evidence["orientation"] in ("rot90", "rot270")


def test_a_letterboxed_copy_joins_a_turned_keeper_through_its_orientation(
    tmp_path: Path,
) -> None:
    photo = make_photo(rng=24, size=(480, 360))[0]
    root = tmp_path / "images"
    _save(photo, root / "original.jpg", quality=90)
    turned = photo.transpose(Image.Transpose.ROTATE_270).resize((432, 576))
    _save(turned, root / "turned.png")  # the keeper: most pixels
    box = Image.new("RGB", (480, 480), (0, 0, 0))
    box.paste(photo, (0, 60))
    _save(box, root / "letterbox.jpg", quality=90)

    result = lookalike.scan([root], db=tmp_path / "store.db")

    assert len(result.groups) == 1
    group = result.groups[0]
    assert Path(group.keeper).name == "turned.png"
    assert sorted(Path(m.path).name for m in group.members) == ["letterbox.jpg", "original.jpg"]


@pytest.mark.parametrize("o", range(1, ORIENTATIONS))
def test_a_turned_copy_is_checked_in_the_orientation_its_descriptor_is_closest_in_only(
    o: int,
) -> None:
    from lookalike.features import compute_features
    from lookalike.matching import PairJudge
    from lookalike.store import ImageRow

    photo, _ = make_photo(rng=3, size=(320, 240))
    turned = photo.transpose(METHODS[o])
    rows = [
        ImageRow(name, img.width, img.height, "JPEG", False, None, 1, compute_features(_gray(img)))
        for name, img in (("a", photo), ("b", turned))
    ]
    judge = PairJudge(rows, MatchSettings(), {}, lambda d: None, workers=1)

    pair = judge.judge("a", "b", geometric=False)

    assert pair is not None and pair.evidence["orientation"] == NAMES[inverse(o)]
    assert judge.stats["identity"] == 1  # one whole-picture check, not one per orientation
