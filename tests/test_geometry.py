"""Crops, rotations and mirror images are found; burst frames are not."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageOps

import lookalike
from lookalike.evaluation import evaluate, load_truth
from lookalike.features import (
    compute_features,
    corner_fill_share,
    fill_rotation,
    mirror_descriptor,
    upright_descriptor,
)
from lookalike.geometry import (
    align,
    ecc_thumbs,
    invariant_descriptor,
    is_plausible,
    prepare_geometry,
    screen_pairs,
)
from lookalike.matching import MatchSettings, spectrum_candidates, view_candidates
from lookalike.store import ImageRow
from lookalike.testing import make_hard_negative, make_photo, write_dataset


def _gray(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L"))


def _rotate(img: Image.Image, angle: float, mode: str) -> Image.Image:
    if mode == "expand":
        return img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    return img.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=(255, 255, 255))


def _alignment(a: Image.Image, b: Image.Image, mirror: bool = False):
    fa, fb = compute_features(_gray(a)), compute_features(_gray(b))
    pa = prepare_geometry(fa.thumb, *a.size)
    pb = prepare_geometry(fb.thumb, *b.size)
    screen = screen_pairs([pa, pb], [(0, 1, mirror)])[0]
    return align(pa, pb, ecc_thumbs(fa.thumb), ecc_thumbs(fb.thumb), screen, mirror=mirror)


@pytest.mark.parametrize(("angle", "mode"), [(6.0, "expand"), (-4.0, "same_canvas")])
def test_a_rotation_is_measured(angle, mode) -> None:
    photo, _ = make_photo(3, size=(320, 240))
    al = _alignment(photo, _rotate(photo, angle, mode))
    assert al is not None and is_plausible(al) is None
    assert al.angle_deg == pytest.approx(angle, abs=0.7)


def test_a_crop_is_measured() -> None:
    photo, _ = make_photo(4, size=(320, 240))
    al = _alignment(photo, photo.crop((20, 12, 310, 230)))
    assert al is not None and is_plausible(al) is None
    assert abs(al.angle_deg) < 0.5
    assert al.scale == pytest.approx(1.0, abs=0.03)  # crops keep the pixel scale


def test_a_mirror_image_aligns_mirrored() -> None:
    photo, _ = make_photo(5, size=(320, 240))
    al = _alignment(photo, ImageOps.mirror(photo), mirror=True)
    assert al is not None and al.mirror and abs(al.angle_deg) < 0.5


def test_mirror_descriptor_is_the_descriptor_of_the_mirror_image() -> None:
    photo, _ = make_photo(6)
    plain = compute_features(_gray(photo)).descriptor
    flipped = compute_features(_gray(ImageOps.mirror(photo))).descriptor
    np.testing.assert_allclose(mirror_descriptor(plain), flipped, atol=1e-6)


@pytest.mark.parametrize("seed", [9, 10, 11])
def test_a_burst_frame_is_not_a_duplicate(seed, tmp_path) -> None:
    a, b = make_hard_negative(2, base_seed=seed, size=(320, 240))
    (tmp_path / "d").mkdir()
    a.save(tmp_path / "d" / "a.png")
    b.save(tmp_path / "d" / "b.png")
    result = lookalike.scan([tmp_path / "d"], db=tmp_path / "s.db", workers=1)
    assert result.groups == ()


@pytest.fixture(scope="module")
def geometric_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("geo")
    truth = write_dataset(
        root / "images", n_originals=12, variants_per_original=3,
        kinds=["crop", "rotate", "hflip", "jpeg_quality"], n_distractors=4, n_hard_negatives=4, rng=5,
    )  # fmt: skip
    truth.to_json(root / "truth.json")
    return root


def test_generated_crops_rotations_and_mirrors_are_found(geometric_set, tmp_path) -> None:
    result = lookalike.scan([geometric_set / "images"], db=tmp_path / "s.db", workers=1)
    scores = evaluate(result.groups, load_truth(geometric_set / "truth.json"))
    assert scores["recall"] >= 0.95
    assert scores["precision"] >= 0.95
    assert scores["hard_negatives_flagged"] <= 1
    relations = {m.relation for g in result.groups for m in g.members}
    assert "mirror" in relations
    geometric = [
        m.evidence
        for g in result.groups
        for m in g.members
        if "geometry" in m.evidence.get("method", "")
    ]
    assert geometric and all(
        {"angle_deg", "scale", "ecc_correlation", "mad", "changed"} <= set(e) for e in geometric
    )


def test_no_mirror_drops_mirror_images(geometric_set, tmp_path) -> None:
    from lookalike.matching import preset_settings
    from lookalike.pipeline import ScanSettings

    settings = ScanSettings(match=preset_settings("balanced", mirror=False))
    result = lookalike.scan(
        [geometric_set / "images"], db=tmp_path / "s.db", workers=1, settings=settings
    )
    assert all(m.relation != "mirror" for g in result.groups for m in g.members)


def test_a_rescan_verifies_nothing_again(geometric_set, tmp_path, monkeypatch) -> None:
    lookalike.scan([geometric_set / "images"], db=tmp_path / "s.db", workers=1)
    import lookalike.matching as matching

    calls = []
    original = matching.PairJudge._verify
    monkeypatch.setattr(
        matching.PairJudge,
        "_verify",
        lambda self, *a, **k: calls.append(a) or original(self, *a, **k),
    )
    lookalike.scan([geometric_set / "images"], db=tmp_path / "s.db", workers=1)
    assert calls == []


def test_parallel_alignment_finds_the_same_groups_as_one_worker(geometric_set, tmp_path) -> None:
    one = lookalike.scan([geometric_set / "images"], db=tmp_path / "one.db", workers=1)
    two = lookalike.scan([geometric_set / "images"], db=tmp_path / "two.db", workers=2)

    def canonical(result: lookalike.ScanResult) -> list[tuple[str, tuple[str, ...]]]:
        return sorted((g.keeper, tuple(sorted(m.path for m in g.members))) for g in result.groups)

    assert canonical(one) == canonical(two)
    assert [(p.a, p.b, p.relation) for p in one.pairs] == [
        (p.a, p.b, p.relation) for p in two.pairs
    ]


def test_no_geometry_finds_whole_pictures_only(geometric_set, tmp_path) -> None:
    from click.testing import CliRunner

    from lookalike.cli import main

    out = tmp_path / "r.json"
    args = ["scan", str(geometric_set / "images"), "--db", str(tmp_path / "s.db"), "-q",
            "--no-geometry", "--json", str(out)]  # fmt: skip
    assert CliRunner().invoke(main, args).exit_code == 0
    import json

    members = [m for g in json.loads(out.read_text())["groups"] for m in g["members"]]
    methods = {m.get("evidence", {}).get("method") for m in members}
    assert members and not any("geometry" in (m or "") for m in methods)
    truth = load_truth(geometric_set / "truth.json")
    found = {m["path"] for m in members}
    rotated = [p for p, v in truth.variant_of.items() if v["transform"] == "rotate"]
    default = lookalike.scan([geometric_set / "images"], db=tmp_path / "d.db", workers=1)
    with_geometry = {m.path for g in default.groups for m in g.members}
    assert sum(f.endswith(r) for f in with_geometry for r in rotated) > sum(
        f.endswith(r) for f in found for r in rotated
    )
    quality = [p for p, v in truth.variant_of.items() if v["transform"] == "jpeg_quality"]
    assert any(f.endswith(q) for f in found for q in quality)


def _real_photos(benchdata, n: int) -> list[Image.Image]:
    truth = load_truth(benchdata / "truth.json")
    originals = sorted({v["original"] for v in truth.variant_of.values()})[:n]
    out = []
    for rel in originals:
        with Image.open(benchdata / rel) as im:
            out.append(ImageOps.exif_transpose(im).convert("RGB"))
    return out


@pytest.mark.parametrize("angle", [-10.0, -3.0, 2.0, 9.0])
def test_a_rotation_onto_a_larger_canvas_is_turned_back_for_the_search(benchdata, angle) -> None:
    (photo,) = _real_photos(benchdata, 1)
    turned = _rotate(photo, angle, "expand")
    original = compute_features(_gray(photo)).descriptor
    features = compute_features(_gray(turned))
    estimated = fill_rotation(features.thumb, *turned.size)
    assert estimated is not None and abs(estimated) == pytest.approx(abs(angle), abs=0.5)
    upright = upright_descriptor(features.thumb, *turned.size)
    assert upright is not None
    assert float(upright @ original) > max(0.85, float(features.descriptor @ original) + 0.05)


def test_pictures_without_filled_corners_have_no_upright_view(benchdata) -> None:
    photos = _real_photos(benchdata, 8)
    cropped = [p.crop((10, 10, p.width - 10, p.height - 10)) for p in photos]
    for img in photos + cropped + [_rotate(photos[0], 6.0, "same_canvas")]:
        thumb = compute_features(_gray(img)).thumb
        if fill_rotation(thumb, *img.size) is not None:
            assert img.size == photos[0].size  # only the same-canvas rotation has corners
        assert upright_descriptor(np.full((128, 128), 128, np.uint8), *img.size) is None


def test_ten_degree_rotations_onto_a_larger_canvas_are_found(benchdata, tmp_path) -> None:
    photos = _real_photos(benchdata, 6)
    for k, photo in enumerate(photos):
        photo.save(tmp_path / f"p{k}.jpg", quality=92)
        _rotate(photo, 10.0 if k % 2 else -10.0, "expand").save(tmp_path / f"r{k}.jpg", quality=90)
    result = lookalike.scan([tmp_path], db=tmp_path / "s.db", workers=1)
    found = {frozenset([g.keeper, *(m.path for m in g.members)]) for g in result.groups}
    pairs = [
        frozenset([str(tmp_path / f"p{k}.jpg"), str(tmp_path / f"r{k}.jpg")]) for k in range(6)
    ]
    assert all(p in found for p in pairs)


def test_a_symmetric_picture_is_checked_in_both_orientations() -> None:
    photo, _ = make_photo(7, size=(320, 240))
    left = photo.crop((0, 0, 160, 240))
    symmetric = Image.new("RGB", (320, 240))
    symmetric.paste(left, (0, 0))
    symmetric.paste(ImageOps.mirror(left), (160, 0))
    rows = [
        ImageRow(str(k), img.width, img.height, "JPEG", False, None, 1,
                 compute_features(_gray(img)))
        for k, img in enumerate([symmetric, symmetric.crop((8, 6, 312, 234))])
    ]  # fmt: skip
    views = view_candidates(rows, MatchSettings())
    label, _ = views.reciprocal[(0, 1)]
    assert label.endswith("plain or mirror")


def test_aligning_leaves_the_prepared_pictures_as_they_were() -> None:
    photo, _ = make_photo(8, size=(320, 240))
    turned = _rotate(photo, 5.0, "same_canvas")
    fa, fb = compute_features(_gray(photo)), compute_features(_gray(turned))
    pa, pb = prepare_geometry(fa.thumb, *photo.size), prepare_geometry(fb.thumb, *turned.size)
    before = [pa.small.copy(), pb.small.copy()]
    screen = screen_pairs([pa, pb], [(0, 1, False)])[0]
    first = align(pa, pb, ecc_thumbs(fa.thumb), ecc_thumbs(fb.thumb), screen, mirror=False)
    again = align(pa, pb, ecc_thumbs(fa.thumb), ecc_thumbs(fb.thumb), screen, mirror=False)
    np.testing.assert_array_equal(pa.small, before[0])  # an earlier pair must not change
    np.testing.assert_array_equal(pb.small, before[1])  # what a later pair sees
    assert first is not None and again is not None
    np.testing.assert_allclose(first.warp, again.warp)


def test_the_upright_original_is_kept_over_its_copy_rotated_onto_a_larger_canvas(
    benchdata, tmp_path
) -> None:
    (photo,) = _real_photos(benchdata, 1)
    photo.save(tmp_path / "original.png")  # lossless, and the copy is saved lossless too
    _rotate(photo, 7.0, "expand").save(tmp_path / "turned.png")  # more pixels, black corners
    (group,) = lookalike.scan([tmp_path], db=tmp_path / "s.db", workers=1).groups
    assert group.keeper == str(tmp_path / "original.png")
    assert [m.path for m in group.members] == [str(tmp_path / "turned.png")]


def test_corner_fill_share_measures_the_corners_of_a_rotation(benchdata) -> None:
    (photo,) = _real_photos(benchdata, 1)
    turned = _rotate(photo, 8.0, "expand")
    corners = 1.0 - (photo.width * photo.height) / (turned.width * turned.height)
    share = corner_fill_share(compute_features(_gray(turned)).thumb)
    assert share == pytest.approx(corners, abs=0.04)
    assert corner_fill_share(compute_features(_gray(photo)).thumb) == 0.0


def test_the_spectrum_descriptor_finds_a_rotated_mirrored_crop_among_other_photos(
    benchdata,
) -> None:
    photos = _real_photos(benchdata, 6)
    w, h = photos[0].size
    changed = ImageOps.mirror(_rotate(photos[0], 9.0, "same_canvas")).crop(
        (w // 25, h // 25, w - w // 25, h - h // 25)
    )  # rotated, mirrored, and cropped to about 85% of the area

    def described(img: Image.Image) -> np.ndarray:
        return invariant_descriptor(compute_features(_gray(img)).thumb, *img.size)

    query = described(changed)
    sims = [float(described(p) @ query) for p in photos]
    assert int(np.argmax(sims)) == 0


def test_spectrum_candidates_are_asked_only_for_images_left_alone(benchdata) -> None:
    photos = _real_photos(benchdata, 5)
    turned = ImageOps.mirror(_rotate(photos[0], 9.0, "same_canvas"))
    rows = [
        ImageRow(str(k), img.width, img.height, "JPEG", False, None, 1,
                 compute_features(_gray(img)))
        for k, img in enumerate([*photos, turned])
    ]  # fmt: skip
    settings = MatchSettings()
    assert len(spectrum_candidates(rows, settings, set())) == 0
    found = spectrum_candidates(rows, settings, {5}).reciprocal
    assert (0, 5) in found and all(5 in pair for pair in found)
    assert found[(0, 5)][0].endswith("plain or mirror")  # mirroring does not move it


def test_a_strong_crop_is_found_only_by_the_search_for_one_picture_inside_the_other(
    benchdata,
) -> None:
    """Candidates close as whole pictures skip that search (``crops=False``); a later
    check that asks for it runs it, although the pair's geometry was tried already."""
    from lookalike.matching import PairJudge

    photo = _real_photos(benchdata, 6)[5]  # where the screen fails on this crop
    w, h = photo.size
    crop = photo.crop((w // 10, h // 8, w // 10 + int(w * 0.72), h // 8 + int(h * 0.72)))
    rows = [
        ImageRow(str(k), img.width, img.height, "JPEG", False, None, 1,
                 compute_features(_gray(img)))
        for k, img in enumerate([photo, crop])
    ]  # fmt: skip
    judge = PairJudge(rows, MatchSettings(), {}, lambda d: None, workers=1)

    assert judge.judge("0", "1", mirror=False, crops=False) is None
    tried = json.loads(judge.new[("0", "1")][2])
    assert tried["geometry"]["reason"] == "spectra differ" and "crop search" not in tried["tried"]
    found = judge.judge("0", "1", mirror=False)
    assert found is not None and found.evidence["method"] == "geometry"
    assert 0.47 < min(found.evidence["overlap"]) < 0.57
