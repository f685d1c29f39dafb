"""Tests for lookalike.testing, the synthetic-data helpers the other tests build on."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from lookalike.errors import ConfigError
from lookalike.testing import (
    HARD_VARIANT_KINDS,
    SHAPE_KINDS,
    VARIANT_KINDS,
    ZOO_UPRIGHT_TWINS,
    DatasetTruth,
    encode_image,
    make_hard_negative,
    make_hard_variant,
    make_labelled_variant,
    make_photo,
    make_variant,
    save_image,
    write_dataset,
    write_edge_case_zoo,
    write_hidden_file,
    write_symlink_loop,
)


def _phash(img: Image.Image) -> np.ndarray:
    """64-bit DCT hash: signs of the 8x8 lowest frequencies of a 32x32 grey thumbnail."""
    grey = cv2.resize(
        np.asarray(img.convert("L"), np.float32), (32, 32), interpolation=cv2.INTER_AREA
    )
    low = cv2.dct(grey)[:8, :8].ravel()
    return low > np.median(low)


def _thumb(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L").resize((32, 32), Image.Resampling.BOX), np.float64).ravel()


def _correlation(a: Image.Image, b: Image.Image) -> float:
    return float(np.corrcoef(_thumb(a), _thumb(b))[0, 1])


def _orb_inliers(a: Image.Image, b: Image.Image) -> int:
    """ORB matches between ``a`` and ``b`` that agree on one RANSAC homography."""
    orb = cv2.ORB_create(nfeatures=500)
    ka, da = orb.detectAndCompute(np.asarray(a.convert("L")), None)
    kb, db = orb.detectAndCompute(np.asarray(b.convert("L")), None)
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(da, db)
    if len(matches) < 4:
        return 0
    pa = np.float32([ka[m.queryIdx].pt for m in matches])
    pb = np.float32([kb[m.trainIdx].pt for m in matches])
    _, mask = cv2.findHomography(pa, pb, cv2.RANSAC, 5.0)
    return 0 if mask is None else int(mask.sum())


def _looks_the_same(original: Image.Image, variant: Image.Image, kind: str) -> bool:
    """Sanity check: grey thumbnails correlate, or for crop/rotate, ORB finds one homography.

    Unrelated photos give at most about 11 inliers; crops and rotations give 30 or more.
    """
    if kind in ("crop", "rotate"):
        return _orb_inliers(original, variant) >= 25
    if kind == "hflip":
        variant = ImageOps.mirror(variant)
    return _correlation(original, variant) > 0.75


def _digest_tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return make_photo(0)[0]


# --- make_photo -----------------------------------------------------------------------------


def test_same_seed_gives_identical_pixels_and_bytes(tmp_path: Path) -> None:
    (a, shapes_a), (b, shapes_b) = make_photo(42), make_photo(np.random.default_rng(42))
    assert a.tobytes() == b.tobytes()
    assert shapes_a == shapes_b
    save_image(a, tmp_path / "a.jpg")
    save_image(b, tmp_path / "b.jpg")
    assert (tmp_path / "a.jpg").read_bytes() == (tmp_path / "b.jpg").read_bytes()
    for fmt in ("png", "webp", "bmp"):
        assert encode_image(a, fmt) == encode_image(b, fmt)


def test_photo_has_requested_size_and_shape_boxes() -> None:
    img, shapes = make_photo(7, size=(120, 80))
    assert (img.mode, img.size) == ("RGB", (120, 80))
    assert 3 <= len(shapes) <= 8
    for shape in shapes:
        x0, y0, x1, y1 = shape.box
        assert shape.kind in SHAPE_KINDS and shape.label == shape.kind
        assert 0 <= x0 < x1 <= 120 and 0 <= y0 < y1 <= 80


def test_different_seeds_give_clearly_different_photos() -> None:
    hashes = [_phash(make_photo(seed)[0]) for seed in range(16)]
    distances = [int((a != b).sum()) for a, b in itertools.combinations(hashes, 2)]
    assert min(distances) >= 8
    assert np.median(distances) > 24
    assert np.mean(np.array(distances) > 16) > 0.95


def test_photos_have_local_features_for_orb() -> None:
    orb = cv2.ORB_create()
    for seed in range(5):
        grey = np.asarray(make_photo(seed)[0].convert("L"))
        assert len(orb.detect(grey, None)) >= 30


def test_too_small_size_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="too small"):
        make_photo(0, size=(8, 8))


# --- make_variant ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", VARIANT_KINDS)
def test_variant_is_deterministic_and_recognisably_the_same(photo: Image.Image, kind: str) -> None:
    variant = make_variant(photo, kind, rng=3)
    assert variant.tobytes() == make_variant(photo, kind, rng=3).tobytes()
    assert variant.tobytes() != photo.tobytes() or variant.size != photo.size
    assert _looks_the_same(photo, variant, kind)
    assert photo.tobytes() == make_photo(0)[0].tobytes()  # the input was not modified


def test_variant_geometry_stays_in_its_documented_range(photo: Image.Image) -> None:
    w, h = photo.size
    for seed in range(8):
        cw, ch = make_variant(photo, "crop", seed).size
        assert 0.84 <= cw * ch / (w * h) <= 0.96
        rw, rh = make_variant(photo, "resize", seed).size
        assert 0.49 <= rw / w <= 1.51 and abs(rw / w - rh / h) < 0.02
        assert make_variant(photo, "rotate", seed).size == photo.size


def test_overlay_covers_less_than_three_percent(photo: Image.Image) -> None:
    base = np.asarray(photo, np.int16)
    for seed in range(12):
        changed = np.abs(np.asarray(make_variant(photo, "overlay", seed), np.int16) - base)
        assert 0 < (changed.max(axis=2) > 0).mean() < 0.03


def test_grayscale_variant_has_no_colour(photo: Image.Image) -> None:
    for seed in range(4):
        rgb = np.asarray(make_variant(photo, "grayscale", seed).convert("RGB"))
        assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()


def test_unknown_variant_kind_lists_the_choices(photo: Image.Image) -> None:
    with pytest.raises(ValueError, match="'mosaic'.*jpeg_quality, resize"):
        make_variant(photo, "mosaic", 0)


# --- make_hard_variant ----------------------------------------------------------------------

_TURNS = {
    "rot90": Image.Transpose.ROTATE_270, "rot180": Image.Transpose.ROTATE_180,
    "rot270": Image.Transpose.ROTATE_90, "vflip": Image.Transpose.FLIP_TOP_BOTTOM,
    "transpose": Image.Transpose.TRANSPOSE, "transverse": Image.Transpose.TRANSVERSE,
}  # fmt: skip
"""Each pixel turn, and the turn that undoes it."""


def _arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), np.int16)


@pytest.mark.parametrize("kind", HARD_VARIANT_KINDS)
def test_hard_variant_is_deterministic_and_leaves_the_input(photo: Image.Image, kind: str) -> None:
    variant = make_hard_variant(photo, kind, rng=3)
    again, params = make_labelled_variant(photo, kind, np.random.default_rng(3))
    assert variant.tobytes() == again.tobytes() and variant.size == again.size
    assert variant.mode == "RGB"
    assert variant.tobytes() != photo.tobytes() or variant.size != photo.size
    assert json.loads(json.dumps(params)) == params  # fits in truth.json
    assert photo.tobytes() == make_photo(0)[0].tobytes()


@pytest.mark.parametrize("kind", sorted(_TURNS))
def test_pixel_turns_are_undone_exactly(photo: Image.Image, kind: str) -> None:
    variant = make_hard_variant(photo, kind, rng=0)
    assert variant.tobytes() != photo.tobytes()
    assert variant.transpose(_TURNS[kind]).tobytes() == photo.tobytes()


def test_the_six_turns_and_the_photo_are_seven_different_pictures(photo: Image.Image) -> None:
    pictures = {make_hard_variant(photo, kind).tobytes() for kind in _TURNS}
    assert len(pictures | {photo.tobytes(), ImageOps.mirror(photo).tobytes()}) == 8


def _draws(photo: Image.Image, kind: str, n: int = 24) -> list[tuple[Image.Image, dict[str, Any]]]:
    return [make_labelled_variant(photo, kind, seed) for seed in range(n)]


def test_squash_and_stretch_change_the_aspect_in_range(photo: Image.Image) -> None:
    assert {v.size for v, _ in _draws(photo, "squash")} == {(s, s) for s in (224, 256, 384, 512)}
    aspect = photo.width / photo.height
    axes = set()
    for variant, params in _draws(photo, "stretch"):
        change = (variant.width / variant.height) / aspect
        factor = change if params["axis"] == "x" else 1 / change
        assert 1.24 <= factor <= 2.01 and abs(factor - params["factor"]) < 0.02
        axes.add((params["axis"], params["grow"]))
    assert len(axes) == 4


def test_letterbox_pads_to_a_square_with_every_kind_of_bar(photo: Image.Image) -> None:
    fills = set()
    for variant, params in _draws(photo, "letterbox", 32):
        assert variant.width == variant.height and variant.width in (256, 416, 512, 640)
        x0, y0, x1, y1 = params["box"]
        inner = variant.crop((x0, y0 + 2, x1, y1 - 2)).resize(photo.size)
        assert _correlation(photo, inner) > 0.95
        bar = _arr(variant.crop((0, 0, variant.width, max(1, y0 - 6))))  # past any ringing
        fill = params["fill"]
        fills.add(str(fill))
        if fill != "blur":
            assert np.abs(bar - np.array(fill)).max() <= 2
        else:
            assert bar.std() > 2  # blurred picture, not a flat bar
    assert len(fills) == 4


def test_letterbox_of_a_square_picture_adds_side_bars() -> None:
    square = make_photo(1, size=(128, 128))[0]
    variant, params = make_labelled_variant(square, "letterbox", 0)
    assert variant.width > variant.height and params["box"][0] > 0


def test_border_is_three_to_fifteen_percent_around_the_untouched_photo(photo: Image.Image) -> None:
    w, h = photo.size
    for variant, params in _draws(photo, "border"):
        left, top, right, bottom = params["border_px"]
        assert 0.025 <= min(left / w, right / w, top / h, bottom / h)
        assert max(left / w, right / w, top / h, bottom / h) <= 0.155
        assert variant.size == (w + left + right, h + top + bottom)
        inner = variant.crop((left, top, left + w, top + h))
        assert inner.tobytes() == photo.tobytes()
        assert (_arr(variant)[0, 0] == params["fill"]).all()


def test_hue_turns_the_colour_wheel_and_keeps_brightness(photo: Image.Image) -> None:
    base_hsv = np.asarray(photo.convert("HSV"), np.int16)
    colourful = base_hsv[..., 1] > 80
    shifts = []
    for variant, params in _draws(photo, "hue"):
        assert 10 <= abs(params["hue_shift_deg"]) <= 60
        hsv = np.asarray(variant.convert("HSV"), np.int16)
        turned = (hsv[..., 0] - base_hsv[..., 0] + 128) % 256 - 128
        assert abs(np.median(turned[colourful]) - params["hue_shift"]) <= 2
        assert np.abs(hsv[..., 2] - base_hsv[..., 2]).mean() < 3
        shifts.append(params["hue_shift_deg"])
    assert min(shifts) < -30 and max(shifts) > 30


def test_saturation_factor_is_in_one_of_two_ranges(photo: Image.Image) -> None:
    base = np.asarray(photo.convert("HSV"), np.float64)[..., 1].mean()
    for variant, params in _draws(photo, "saturation"):
        f = params["factor"]
        assert 0.2 <= f <= 0.6 or 1.4 <= f <= 2.0
        sat = np.asarray(variant.convert("HSV"), np.float64)[..., 1].mean()
        assert (sat < 0.7 * base) if f < 1 else (sat > 1.15 * base)
        assert _correlation(photo, variant) > 0.9


def test_crop_strong_keeps_half_to_85_percent(photo: Image.Image) -> None:
    w, h = photo.size
    for variant, params in _draws(photo, "crop_strong"):
        assert 0.49 <= variant.width * variant.height / (w * h) <= 0.86
        assert variant.tobytes() == photo.crop(tuple(params["box"])).tobytes()


def test_tiny_is_32_to_96_pixels_long_with_the_aspect_kept(photo: Image.Image) -> None:
    sides = []
    for variant, _ in _draws(photo, "tiny"):
        assert 32 <= max(variant.size) <= 96
        assert abs(variant.width / variant.height - photo.width / photo.height) < 0.05
        assert _correlation(photo, variant) > 0.9
        sides.append(max(variant.size))
    assert min(sides) < 48 and max(sides) > 80


def _centre(img: Image.Image) -> Image.Image:
    w, h = img.size
    return img.crop((w * 3 // 8, h * 3 // 8, w * 5 // 8, h * 5 // 8))


def _unrotate(variant: Image.Image, params: dict[str, Any]) -> Image.Image:
    """Put a crop-to-fill rotation back where it was cut from, and turn it back."""
    x0, y0, x1, y1 = params["crop_box_before_resize"]
    canvas = Image.new("RGB", variant.size)
    canvas.paste(variant.resize((x1 - x0, y1 - y0), Image.Resampling.BICUBIC), (x0, y0))
    return canvas.rotate(-params["angle"], resample=Image.Resampling.BICUBIC)


def test_rotate_large_turns_10_to_30_degrees_on_either_canvas(photo: Image.Image) -> None:
    modes = set()
    for variant, params in _draws(photo, "rotate_large"):
        angle = params["angle"]
        assert 10 <= abs(angle) <= 30
        modes.add((params["mode"], str(params.get("fill"))))
        if params["mode"] == "expand":
            rad = np.radians(abs(angle))
            expected = photo.width * np.cos(rad) + photo.height * np.sin(rad)
            assert abs(variant.width - expected) <= 2
            assert (_arr(variant)[0, 0] == params["fill"]).all()  # a filled corner
        else:
            assert variant.size == photo.size
            corners = _arr(variant)[[0, 0, -1, -1], [0, -1, 0, -1]]
            assert corners.sum(axis=1).min() > 30  # no black corner left
            assert _correlation(_centre(photo), _centre(_unrotate(variant, params))) > 0.9
    assert modes == {("expand", "[0, 0, 0]"), ("expand", "[255, 255, 255]"),
                     ("crop_to_fill", "None")}  # fmt: skip


@pytest.mark.parametrize("kind", VARIANT_KINDS)
def test_labelled_light_variant_is_make_variant(photo: Image.Image, kind: str) -> None:
    variant, _ = make_labelled_variant(photo, kind, 5)
    assert variant.tobytes() == make_variant(photo, kind, 5).tobytes()


def test_unknown_hard_variant_kind_lists_the_choices(photo: Image.Image) -> None:
    with pytest.raises(ConfigError, match="'shear'.*rot90, rot180"):
        make_hard_variant(photo, "shear", 0)


# --- make_hard_negative ---------------------------------------------------------------------


def test_hard_negative_is_a_look_alike_but_not_a_copy() -> None:
    for seed in range(6):
        first, second = make_hard_negative(seed, base_seed=100 + seed)
        assert first.tobytes() == make_photo(100 + seed)[0].tobytes()
        assert first.size == second.size
        diff = np.abs(np.asarray(first, np.int16) - np.asarray(second, np.int16))
        assert diff.mean() > 3
        assert _correlation(first, second) > 0.3
    again = make_hard_negative(0, base_seed=100)
    assert again[1].tobytes() == make_hard_negative(0, base_seed=100)[1].tobytes()


# --- write_dataset --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> DatasetTruth:
    return write_dataset(tmp_path_factory.mktemp("ds") / "images")


def test_dataset_files_match_the_truth(dataset: DatasetTruth) -> None:
    on_disk = sorted(p.relative_to(dataset.root).as_posix() for p in dataset.root.rglob("*.*"))
    assert on_disk == dataset.images == sorted(set(dataset.images))
    assert len(dataset.images) == 8 * 3 + 2 * 2 + 4
    assert len({p.rsplit("/", 1)[0] for p in dataset.images if "/" in p}) >= 3
    assert any(p.count("/") >= 2 for p in dataset.images)  # nested folders
    formats = {_load(dataset.root / p).format for p in dataset.images}
    assert "JPEG" in formats and len(formats) >= 2


def test_dataset_groups_variants_and_hard_negatives_are_consistent(dataset: DatasetTruth) -> None:
    assert len(dataset.groups) == 8 and all(len(g) == 3 for g in dataset.groups)
    in_groups = [p for g in dataset.groups for p in g]
    in_negatives = [p for g in dataset.hard_negatives for p in g]
    assert len(set(in_groups + in_negatives)) == len(in_groups) + len(in_negatives)
    assert set(dataset.variant_of) == {p for g in dataset.groups for p in g[1:]}
    for group in dataset.groups:
        for path in group[1:]:
            entry = dataset.variant_of[path]
            assert entry["original"] == group[0] and entry["transform"] in VARIANT_KINDS
        assert len({dataset.variant_of[p]["transform"] for p in group[1:]}) == len(group) - 1
    assert {e["transform"] for e in dataset.variant_of.values()} == set(VARIANT_KINDS)
    assert len(dataset.hard_negatives) == 2 and all(len(g) == 2 for g in dataset.hard_negatives)


def test_variant_files_look_like_their_originals(dataset: DatasetTruth) -> None:
    for path, entry in dataset.variant_of.items():
        original = _load(dataset.root / entry["original"])
        variant = _load(dataset.root / path)
        assert _looks_the_same(original, variant, entry["transform"]), (path, entry)
        if entry["transform"] == "crop":  # the recorded box undoes the crop
            undone = original.crop(tuple(entry["params"]["box"]))
            assert _correlation(undone, variant) > 0.95, (path, entry)


def test_dataset_is_deterministic(tmp_path: Path) -> None:
    a = write_dataset(tmp_path / "a", n_originals=3, n_distractors=1, n_hard_negatives=1, rng=5)
    b = write_dataset(tmp_path / "b", n_originals=3, n_distractors=1, n_hard_negatives=1, rng=5)
    assert _digest_tree(tmp_path / "a") == _digest_tree(tmp_path / "b")
    assert a.to_json() == b.to_json()


def test_dataset_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="n_originals"):
        write_dataset(tmp_path, n_originals=-1)
    with pytest.raises(ConfigError, match="mosaic"):
        write_dataset(tmp_path, kinds=["mosaic"])


def test_truth_json_has_the_shared_schema_and_round_trips(dataset: DatasetTruth) -> None:
    truth_path = dataset.root.parent / "truth.json"
    text = dataset.to_json(truth_path)
    assert truth_path.read_text(encoding="ascii") == text
    doc = json.loads(text)
    assert text == json.dumps(doc, indent=1)  # the layout truth.json files use
    assert list(doc) == ["images", "duplicate_groups", "variant_of", "hard_negative_groups"]
    assert doc["images"] == sorted(doc["images"])
    assert all(p.startswith("images/") for p in doc["images"])
    assert all((truth_path.parent / p).is_file() for p in doc["images"])
    for path, entry in doc["variant_of"].items():
        assert path in doc["images"] and list(entry) == ["original", "transform", "params"]
        assert isinstance(entry["params"], dict)
        if entry["transform"] == "jpeg_quality":
            assert entry["params"] == {"quality": entry["params"]["quality"]}
        else:
            assert entry["params"]["saved_as"] in {"jpeg", "png", "webp", "bmp"}
    assert DatasetTruth.from_json(truth_path, root=dataset.root) == dataset
    assert DatasetTruth.from_json(truth_path).images == doc["images"]


# --- edge-case zoo --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("zoo")
    return root, write_edge_case_zoo(root)


def _load(path: Path) -> Image.Image:
    """Open and fully decode ``path``, closing the file; the result keeps ``format``."""
    with Image.open(path) as img:
        img.load()
        copy = img.copy()
        copy.format = img.format
        copy.info["n_frames"] = getattr(img, "n_frames", 1)
        return copy


def test_zoo_writes_every_case(zoo: tuple[Path, dict[str, str]]) -> None:
    root, expected = zoo
    required = {
        "broken/truncated.jpg",
        "broken/empty.jpg",
        "broken/text.jpg",
        "broken/random.png",
        "broken/bomb.png",
        "modes/palette.png",
        "modes/rgba.png",
        "modes/la.png",
        "modes/gray16.png",
        "modes/cmyk.jpg",
        "formats/animated.gif",
        "formats/multipage.tif",
        "formats/plain.bmp",
        "names/UPPER.JPG",
        "names/jpeg_without_extension",
        *ZOO_UPRIGHT_TWINS,
        *ZOO_UPRIGHT_TWINS.values(),
    }
    assert required <= set(expected)
    assert set(expected.values()) <= {"ok", "failure"}
    assert all(os.path.lexists(root / rel) for rel in expected)
    assert not any(Path(rel).name.startswith(".") for rel in expected)
    if sys.platform == "linux":  # the names other platforms may refuse
        assert {"names/caf\u00e9 \u5199\u771f.jpg", os.fsdecode(b"names/\xff\xfe.jpg")} <= set(
            expected
        )
        assert b"\xff\xfe.jpg" in os.listdir(os.fsencode(root / "names"))


def test_zoo_ok_files_load_cleanly(zoo: tuple[Path, dict[str, str]]) -> None:
    root, expected = zoo
    modes = {}
    for rel in (r for r, outcome in expected.items() if outcome == "ok"):
        img = _load(root / rel)  # warnings are errors in this test suite
        assert img.width > 0 and img.height > 0
        modes[rel] = (img.format, img.mode, img.info["n_frames"])
    assert modes["modes/palette.png"][1] == "P"
    assert modes["modes/rgba.png"][1] == "RGBA" and modes["modes/la.png"][1] == "LA"
    assert modes["modes/gray16.png"][1] == "I;16" and modes["modes/cmyk.jpg"][1] == "CMYK"
    assert modes["formats/animated.gif"][2] > 1 and modes["formats/multipage.tif"][2] > 1
    assert modes["names/jpeg_without_extension"][0] == "JPEG"
    if "formats/stereo.mpo" in modes:
        assert modes["formats/stereo.mpo"][0] == "MPO"


def test_zoo_failures_do_not_load_cleanly(zoo: tuple[Path, dict[str, str]]) -> None:
    root, expected = zoo
    for rel in (r for r, outcome in expected.items() if outcome == "failure"):
        with pytest.raises((OSError, Image.DecompressionBombError, SyntaxError, ValueError)):
            _load(root / rel)


def test_zoo_exif_twin_shows_the_same_upright_pixels(zoo: tuple[Path, dict[str, str]]) -> None:
    root, _ = zoo
    for rotated, upright in ZOO_UPRIGHT_TWINS.items():
        raw = _load(root / rotated)
        assert raw.getexif()[0x0112] == 6
        shown, twin = ImageOps.exif_transpose(raw), _load(root / upright)
        assert raw.size == twin.size[::-1] and shown.size == twin.size
        assert np.array_equal(np.asarray(shown), np.asarray(twin))


def test_zoo_is_deterministic(tmp_path: Path) -> None:
    write_edge_case_zoo(tmp_path / "a")
    write_edge_case_zoo(tmp_path / "b")
    assert _digest_tree(tmp_path / "a") == _digest_tree(tmp_path / "b")


def test_symlink_loop_and_hidden_file(tmp_path: Path) -> None:
    hidden = write_hidden_file(tmp_path)
    assert hidden.name.startswith(".") and _load(hidden).format == "JPEG"
    try:
        link = write_symlink_loop(tmp_path)
    except OSError as exc:  # pragma: no cover - platforms without symlinks
        pytest.skip(f"symlinks unavailable: {exc}")
    assert link == tmp_path / "sub" / "loop" and link.is_symlink()
    assert (link / "sub" / "loop" / ".hidden.jpg").samefile(hidden)


def test_import_is_cheap() -> None:
    code = (
        "import sys, lookalike.testing; "
        "heavy = {'cv2', 'faiss', 'torch', 'pytest', 'scipy'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
