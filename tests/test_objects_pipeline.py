"""Duplicate objects across images: repeated objects, near-duplicate conflicts, the store."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from lookalike.annotations.synthetic import write_repeated_objects
from lookalike.objects import (
    classify_pairs,
    find_object_duplicates,
    stored_findings,
)
from lookalike.records import Group, Member
from lookalike.store import Store
from lookalike.testing import make_photo, save_image

BENCHDATA = Path(__file__).resolve().parents[1].parent / "shared" / "benchdata" / "public"


@pytest.fixture(autouse=True)
def private_store_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    """Default stores go to a temporary cache, never to the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("LOOKALIKE_DB", raising=False)


# -- repeated objects ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def pasted(tmp_path_factory: pytest.TempPathFactory):
    """10 photos, 3 logos pasted 3-5 times each (boxes drawn with 2 px jitter), 1 copy."""
    root = tmp_path_factory.mktemp("pasted")
    truth = write_repeated_objects(
        root, rng=11, images=10, objects=3, copies=(3, 5), near_duplicates=1, size=(400, 300)
    )
    result = find_object_duplicates(truth.annotations, db=root / "store.db")
    return truth, result


def ids_of(group) -> set:
    return {group.representative.annotation.id, *(m.annotation.id for m in group.members)}


def test_a_pasted_logo_is_grouped_across_images(pasted) -> None:
    truth, result = pasted
    groups = result.cross_image.object_groups
    logos = [s for s in truth.same_object if len(s) > 2]  # the pasted objects
    assert len(logos) == 3
    for logo in logos:
        found = [g for g in groups if ids_of(g) & logo]
        assert len(found) == 1, "every pasted copy lands in one group"
        (group,) = found
        assert ids_of(group) == logo, "all copies found, and nothing else in the group"
        assert group.scope == "across-images"
        assert all(m.annotation.label == "logo" for m in group.members)
        assert all(m.score >= 0.8 for m in group.members)
        names = {Path(m.image).name for m in group.members}
        assert Path(group.representative.image_path).name not in names or len(names) > 1


def test_repeats_inside_a_near_duplicate_copy_are_labelled_expected(pasted) -> None:
    truth, result = pasted
    drawn = [s for s in truth.same_object if len(s) == 2]  # object + its copy in copy_0000
    by_id = {}
    for g in result.cross_image.object_groups:
        for m in g.members:
            by_id[m.annotation.id] = (g, m)
        by_id[g.representative.annotation.id] = (g, None)
    found = [s for s in drawn if all(a in by_id for a in s)]
    assert len(found) >= len(drawn) // 2
    for pair in found:
        group, member = next(by_id[a] for a in pair if by_id[a][1] is not None)
        assert member.relation == "near-duplicate-image"
        if len(group.members) == 1:
            assert group.scope == "near-duplicate-images"
    counts = result.counts()
    across = [g for g in result.cross_image.object_groups if g.scope == "across-images"]
    assert counts["repeated-object"] == sum(
        m.relation == "different-image" for g in across for m in g.members
    )


def test_tiny_and_flat_boxes_are_counted_not_lost(tmp_path: Path) -> None:
    img, _ = make_photo(3, size=(320, 240))
    img.paste((128, 128, 128), (200, 20, 300, 100))  # a flat grey patch
    save_image(img, tmp_path / "a.jpg", quality=95)
    boxes = [[10, 10, 20, 20], [200, 20, 100, 80], [40, 60, 120, 100]]
    coco = _coco(tmp_path, [("a.jpg", img.size, [(1, b) for b in boxes])])
    result = find_object_duplicates(coco, db=tmp_path / "s.db")
    skips = {s.annotation.id: s.reason for s in result.cross_image.crop_skips}
    assert skips == {1: "box-too-small", 2: "flat-crop"}
    assert result.cross_image.featured == 1
    report = result.to_dict()
    assert report["cross_image"]["crops"] == {
        "featured": 1,
        "skipped": {"box-too-small": 1, "flat-crop": 1},
    }


def test_boxes_are_read_on_the_upright_picture_of_exif_rotated_photos(tmp_path: Path) -> None:
    logo, _ = make_photo(41, size=(96, 72))
    upright, _ = make_photo(42, size=(320, 240))
    upright.paste(logo, (150, 100))
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise: store the pixels turned back
    upright.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "r.jpg", quality=92, exif=exif)
    other, _ = make_photo(43, size=(320, 240))
    other.paste(logo.resize((120, 90)), (20, 30))
    save_image(other, tmp_path / "o.jpg", quality=92)
    coco = _coco(
        tmp_path,
        [
            ("r.jpg", (320, 240), [(1, [150, 100, 96, 72])]),
            ("o.jpg", (320, 240), [(1, [20, 30, 120, 90])]),
        ],
    )
    result = find_object_duplicates(coco, db=tmp_path / "s.db")
    (group,) = result.cross_image.object_groups
    assert ids_of(group) == {1, 2} and group.members[0].relation == "different-image"


# -- conflicts between near-duplicate images ----------------------------------------------


A_BOXES = [(1, [40, 30, 120, 160]), (2, [200, 120, 150, 110]), (3, [300, 20, 60, 60])]


@pytest.fixture(scope="module")
def disagreeing(tmp_path_factory: pytest.TempPathFactory):
    """a.jpg, b.jpg = a at half size re-encoded (dog -> cat, cup missing), c.jpg unrelated."""
    root = tmp_path_factory.mktemp("disagree")
    images = root / "images"
    images.mkdir()
    a, _ = make_photo(21, size=(400, 300))
    save_image(a, images / "a.jpg", quality=92)
    save_image(a.resize((200, 150), Image.LANCZOS), images / "b.jpg", quality=70)
    c, _ = make_photo(22, size=(400, 300))
    save_image(c, images / "c.jpg", quality=92)
    half = [(1, [v / 2 for v in A_BOXES[0][1]]), (4, [v / 2 for v in A_BOXES[1][1]])]  # dog->cat
    coco = _coco(
        root,
        [("a.jpg", (400, 300), A_BOXES), ("b.jpg", (200, 150), half), ("c.jpg", (400, 300), [])],
    )
    db = root / "store.db"
    return root, coco, db, find_object_duplicates(coco, images_dir=images, db=db)


def test_near_duplicates_whose_boxes_disagree(disagreeing) -> None:
    root, _, _, result = disagreeing
    found = result.cross_image
    assert found.groups_source == "scan" and found.image_groups == 1
    assert found.compared_pairs == 1 and found.skipped_pairs == ()
    by_reason = {c.reason: c for c in found.conflicts}
    assert sorted(by_reason) == ["label-mismatch", "missing"]
    missing, relabelled = by_reason["missing"], by_reason["label-mismatch"]
    assert Path(missing.image).name == "a.jpg" and Path(missing.other_image).name == "b.jpg"
    assert missing.annotation.id == 3 and missing.annotation.label == "cup"
    assert missing.expected_box == pytest.approx((150, 10, 180, 40))
    assert relabelled.annotation.label == "dog" and relabelled.counterpart.label == "cat"
    assert relabelled.counterpart.id == 5 and relabelled.iou == pytest.approx(1.0)
    assert result.counts()["cross-image-conflict"] == 2


def test_conflicts_are_stored_with_the_boxes_to_draw(disagreeing) -> None:
    _, _, db, _ = disagreeing
    with Store(db) as store:
        rows = stored_findings(store, kind="cross-image-conflict")
        files = {p for (p,) in store.conn.execute("SELECT path FROM files")}
    assert len(rows) == 2
    missing = next(r for r in rows if r["reason"] == "missing")
    assert missing["a"]["box"] == [300.0, 20.0, 360.0, 80.0] and missing["a"]["action"] == "review"
    assert missing["b"]["id"] is None and missing["b"]["action"] == "missing"
    assert missing["b"]["box"] == [150.0, 10.0, 180.0, 40.0]
    assert all(r[s]["image"].encode() in files for r in rows for s in "ab")


def test_mirrored_copy_is_compared_mirrored(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    a, _ = make_photo(31, size=(400, 300))
    save_image(a, images / "a.jpg", quality=92)
    save_image(ImageOps.mirror(a), images / "m.jpg", quality=92)
    flipped = [(k, [400 - x - w, y, w, h]) for k, (x, y, w, h) in A_BOXES[:2]]
    flipped.append((3, A_BOXES[2][1]))  # cup not mirrored: misplaced in m.jpg
    coco = _coco(tmp_path, [("a.jpg", (400, 300), A_BOXES), ("m.jpg", (400, 300), flipped)])
    result = find_object_duplicates(coco, images_dir=images, db=tmp_path / "s.db")
    found = result.cross_image
    assert found.compared_pairs == 1
    assert sorted((Path(c.image).name, c.annotation.id, c.reason) for c in found.conflicts) == [
        ("a.jpg", 3, "missing"),
        ("m.jpg", 6, "missing"),
    ]


def test_geometric_matches_and_unannotated_images_are_skipped_with_a_reason(disagreeing) -> None:
    root, coco, _, result = disagreeing
    images = root / "images"
    members = (
        Member(str(images / "b.jpg"), "near", 0.9, str(images), 1, False, {"method": "geometry"}),
        Member(str(images / "x.jpg"), "near", 0.9, str(images), 1, False, {"method": "thumbnail"}),
        Member(
            str(images / "c.jpg"),
            "mirror",
            0.9,
            str(images),
            1,
            False,
            {"method": "mirror thumbnail"},
        ),
    )
    group = Group(1, str(images / "a.jpg"), str(images), 1, members, (str(images),))
    aligned, mirrored, skipped = classify_pairs(result.dataset, [group])
    assert aligned == [] and mirrored == [(str(images / "a.jpg"), str(images / "c.jpg"))]
    assert [s.reason for s in skipped] == [
        "geometric match (geometry): boxes not mapped through it",
        "not-annotated: x.jpg",
    ]


def test_images_spread_over_the_whole_disk_are_not_scanned_unasked(tmp_path: Path) -> None:
    elsewhere = str(Path(sys.executable).resolve())  # a file outside the temporary folder
    assert os.path.commonpath([elsewhere, str(tmp_path)]) == os.sep
    coco = _coco(tmp_path, [(elsewhere, (10, 10), []), ("a.jpg", (320, 240), A_BOXES)])
    save_image(make_photo(61, size=(320, 240))[0], tmp_path / "a.jpg")
    result = find_object_duplicates(coco)
    assert result.cross_image is None and result.store is None
    assert result.not_run.startswith("the annotated images share no folder narrower than")
    assert "pass --images DIR" in result.to_dict()["cross_image"]["reason"]


# -- the store ----------------------------------------------------------------------------


def test_store_tables_survive_a_rerun_without_duplicates(disagreeing) -> None:
    root, coco, db, first = disagreeing
    with Store(db) as store:
        before = stored_findings(store)
    again = find_object_duplicates(coco, images_dir=root / "images", db=db)
    import lookalike

    lookalike.scan([root / "images"], db=db)  # a later image scan leaves the object tables
    with Store(db) as store:
        after = stored_findings(store)
        runs = store.conn.execute("SELECT status, COUNT(*) FROM object_runs GROUP BY status")
        assert runs.fetchall() == [("done", 1)]
        n = store.conn.execute("SELECT COUNT(*) FROM object_annotations").fetchone()[0]
    assert after == before
    kinds = sorted((f["kind"], f["reason"]) for f in after)
    assert kinds == [
        ("cross-image-conflict", "label-mismatch"),
        ("cross-image-conflict", "missing"),
        ("repeated-object", "near-duplicate-image"),  # the person and the dog/cat of a in b
        ("repeated-object", "near-duplicate-image"),
    ]
    assert n == len(first.dataset.annotations) == len(again.dataset.annotations)
    assert again.counts() == first.counts()


def test_a_store_scanned_from_a_parent_folder_is_read_not_rescanned(tmp_path: Path) -> None:
    import lookalike

    images, elsewhere = tmp_path / "data" / "images", tmp_path / "data" / "other"
    images.mkdir(parents=True)
    elsewhere.mkdir()
    a, _ = make_photo(51, size=(400, 300))
    save_image(a, images / "a.jpg", quality=92)
    save_image(a.resize((300, 225), Image.LANCZOS), images / "b.jpg", quality=80)
    z, _ = make_photo(52, size=(400, 300))
    save_image(z, elsewhere / "z.jpg", quality=92)
    save_image(z, elsewhere / "z_copy.jpg", quality=70)
    db = tmp_path / "store.db"
    scanned = lookalike.scan([tmp_path / "data"], db=db)
    assert len(scanned.groups) == 2
    small = [(1, [v * 0.75 for v in A_BOXES[0][1]])]
    coco = _coco(tmp_path, [("a.jpg", (400, 300), A_BOXES[:1]), ("b.jpg", (300, 225), small)])
    result = find_object_duplicates(coco, images_dir=images, db=db)
    found = result.cross_image
    assert found.groups_source == "store" and found.image_groups == 1
    assert found.compared_pairs == 1 and found.conflicts == ()
    with Store(db) as store:
        assert len(store.load_groups()) == 2  # the wider scan's groups are untouched


def test_the_review_ui_reads_the_objects_view(disagreeing) -> None:
    _, _, db, _ = disagreeing
    from lookalike.ui import queries

    conn = sqlite3.connect(db)
    try:
        data = queries.objects(conn, limit=10, offset=0)
    finally:
        conn.close()
    assert data["available"] and data["readable"]
    boxes = {
        (Path(im["path"]).name, tuple(o["box"]), o["kind"], o["action"])
        for im in data["images"]
        for o in im["objects"]
    }
    assert ("b.jpg", (150.0, 10.0, 180.0, 40.0), "cross-image-conflict", "missing") in boxes
    assert ("a.jpg", (300.0, 20.0, 360.0, 80.0), "cross-image-conflict", "review") in boxes
    assert all(im["file_id"] is not None and im["width"] for im in data["images"])


def test_report_schema(pasted, disagreeing) -> None:
    for result in (pasted[1], disagreeing[3]):
        report = result.to_dict()
        assert json.loads(json.dumps(report, allow_nan=False)) == report
        cross = report["cross_image"]
        assert cross["ran"] is True
        assert set(cross) == {
            "ran", "images_root", "store", "groups_source", "image_groups", "compared_pairs",
            "skipped_pairs", "crops", "crop_skips",
        }  # fmt: skip
        assert {"cross_image_conflicts", "object_groups", "repeated_objects"} <= set(
            report["summary"]
        )
    conflict = disagreeing[3].to_dict()["cross_image_conflicts"][0]
    assert set(conflict) == {
        "kind", "reason", "image", "other_image", "iou", "annotation", "counterpart",
        "expected_box",
    }  # fmt: skip
    group = pasted[1].to_dict()["object_groups"][0]
    assert set(group) == {"id", "scope", "representative", "members"}
    assert set(group["representative"]) == {"image", "id", "label", "box", "source"}
    assert set(group["members"][0]) == {
        "image", "id", "label", "box", "source", "score", "evidence", "relation",
    }  # fmt: skip


def test_without_cross_image_nothing_is_scanned(disagreeing, tmp_path: Path) -> None:
    _, coco, _, _ = disagreeing
    result = find_object_duplicates(coco, cross_image=False)
    assert result.cross_image is None and result.store is None
    assert result.to_dict()["cross_image"] == {"ran": False, "reason": "--no-cross-image"}
    stored = find_object_duplicates(coco, cross_image=False, db=tmp_path / "s.db")
    with Store(stored.store) as store:
        assert stored_findings(store) == []
        crop = store.conn.execute("SELECT DISTINCT crop FROM object_annotations").fetchall()
    assert crop == [("not-run",)]


# -- real photos ----------------------------------------------------------------------------


def test_a_real_photo_crop_pasted_into_real_photos(tmp_path: Path) -> None:
    if not (BENCHDATA / "truth.json").is_file():
        pytest.skip("shared benchdata not found beside the repository")
    truth = json.loads((BENCHDATA / "truth.json").read_text())
    variants = set(truth["variant_of"])
    photos = [BENCHDATA / p for p in sorted(truth["images"]) if p not in variants][:12:2]
    images = tmp_path / "images"
    images.mkdir()
    with Image.open(photos[0]) as src:
        src = ImageOps.exif_transpose(src).convert("RGB")
        w, h = src.size
        logo = src.crop((w // 3, h // 3, w // 3 + w // 5, h // 3 + h // 5)).resize((120, 90))
    rng = np.random.default_rng(4)
    entries = []
    for n, path in enumerate(photos[1:]):
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            im.thumbnail((640, 640))
        boxes = []
        if n < 4:
            scale = rng.uniform(0.7, 1.3)
            pw, ph = round(120 * scale), round(90 * scale)
            x, y = int(rng.integers(0, im.width - pw)), int(rng.integers(0, im.height - ph))
            im.paste(logo.resize((pw, ph)), (x, y))
            jitter = rng.uniform(-1.5, 1.5, 4)
            boxes.append((1, [x + jitter[0], y + jitter[1], pw + jitter[2], ph + jitter[3]]))
        boxes.append((2, [10, 10, im.width // 3, im.height // 3]))  # a corner: different
        save_image(im, images / f"p{n}.jpg", quality=88)
        entries.append((f"p{n}.jpg", im.size, boxes))
    coco = _coco(tmp_path, entries)
    result = find_object_duplicates(coco, images_dir=images, db=tmp_path / "s.db")
    across = [g for g in result.cross_image.object_groups if g.scope == "across-images"]
    logos = [g for g in across if g.representative.annotation.label == "person"]
    assert len(logos) == 1 and len(logos[0].members) == 3
    assert all(m.annotation.label == "person" for m in logos[0].members)


# -- helpers --------------------------------------------------------------------------------

LABELS = {1: "person", 2: "dog", 3: "cup", 4: "cat"}


def _coco(root: Path, images: list) -> Path:
    """A COCO file for ``[(file_name, (w, h), [(category, [x, y, w, h]), ...])]``; ids count up."""
    doc: dict = {"images": [], "annotations": []}
    doc["categories"] = [{"id": k, "name": v} for k, v in LABELS.items()]
    for n, (name, size, boxes) in enumerate(images, 1):
        doc["images"].append({"id": n, "file_name": name, "width": size[0], "height": size[1]})
        for category, box in boxes:
            item = {"id": len(doc["annotations"]) + 1, "image_id": n, "category_id": category}
            doc["annotations"].append({**item, "bbox": list(box)})
    path = root / "instances.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


# -- review decisions ---------------------------------------------------------------------


def _reviewable(root: Path, fmt: str) -> Path:
    """One image with two duplicate pairs (boxes 2 and 4 to remove) and a label conflict."""
    sys.path.insert(0, str(Path(__file__).parent / "annotations"))
    from annotation_builders import coco_annotation, write_coco, write_voc, write_yolo, yolo_line

    boxes = [
        ("person", (10, 10, 60, 90)), ("person", (11, 10, 61, 90)),  # duplicate: 2 removed
        ("cup", (100, 100, 140, 130)), ("cup", (101, 100, 140, 131)),  # duplicate: 4 removed
        ("person", (200, 20, 260, 100)), ("dog", (201, 21, 261, 100)),  # label conflict
    ]  # fmt: skip
    classes = ["person", "dog", "cup"]
    if fmt == "coco":
        anns = [
            coco_annotation(n + 1, 1, classes.index(c) + 1, [x0, y0, x1 - x0, y1 - y0])
            for n, (c, (x0, y0, x1, y1)) in enumerate(boxes)
        ]
        return write_coco(root, anns)
    if fmt == "yolo":
        text = "".join(yolo_line(classes.index(c), b, (320, 240)) + "\n" for c, b in boxes)
        return write_yolo(root, {"a": text})
    return write_voc(root, {"a": boxes})


@pytest.mark.parametrize("fmt", ["coco", "yolo", "voc"])
def test_review_decisions_are_applied_to_the_cleaned_annotations(tmp_path: Path, fmt) -> None:
    from click.testing import CliRunner

    from lookalike.annotations import load_annotations
    from lookalike.cli_objects import objects_command
    from lookalike.objects import decide, stored_decisions

    source = _reviewable(tmp_path / "in", fmt)
    db = tmp_path / "store.db"
    find_object_duplicates(source, db=db, cross_image=False)
    with Store(db) as store:
        found: dict[str, list[int]] = {}
        for fid, kind in store.conn.execute("SELECT id, kind FROM object_findings ORDER BY id"):
            found.setdefault(kind, []).append(fid)
        first, second = found["duplicate"]
        (conflict,) = found["label-conflict"]
        decide(store, first, "accept")
        decide(store, second, "reject")
        answer = decide(store, conflict, "label", side="b")  # it is a dog
        assert [d["label"] for d in answer["decisions"].values()] == ["dog", "dog"]
        with pytest.raises(ValueError, match="takes accept or reject"):
            decide(store, first, "label", side="a")
        decisions = stored_decisions(store, source)
    assert sorted(decisions.removals.values()) == ["accept", "reject"]
    assert len(decisions.labels) == 2
    out = tmp_path / "out"
    args = [str(source), "--db", str(db), "--no-cross-image", "--out", str(out), "--write", "-q"]
    result = CliRunner().invoke(objects_command, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "1 removals accepted, 1 rejected, 1 boxes relabelled" in result.stdout
    images = tmp_path / "in" / ("images" if fmt == "yolo" else "JPEGImages" if fmt == "voc" else "")
    cleaned = load_annotations(out / source.name if fmt == "coco" else out, images_dir=images)
    named = {"0": "person", "1": "dog", "2": "cup"}  # YOLO's data.yaml is above labels/
    kept = sorted(
        (named.get(a.label, a.label), tuple(round(v) for v in a.box)) for a in cleaned.annotations
    )
    assert kept == [
        ("cup", (100, 100, 140, 130)),
        ("cup", (101, 100, 140, 131)),  # the rejected removal: kept
        ("dog", (200, 20, 260, 100)),  # the conflict: both boxes are dogs, the later removed
        ("person", (10, 10, 60, 90)),  # the accepted removal: its twin is gone
    ]


def test_deciding_about_a_finding_that_is_gone_says_to_reload(tmp_path: Path) -> None:
    from lookalike.errors import StaleGroupError
    from lookalike.objects import decide

    source = _reviewable(tmp_path / "in", "coco")
    db = tmp_path / "store.db"
    find_object_duplicates(source, db=db, cross_image=False)
    with Store(db) as store, pytest.raises(StaleGroupError, match="reload the page"):
        decide(store, 999, "accept")
