"""Pascal VOC reader, writer and round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
from annotation_builders import make_image, tree_bytes, voc_xml, write_voc

from lookalike.annotations import (
    CleanupPlan,
    detect_format,
    find_duplicate_boxes,
    load_annotations,
    plan_cleanup,
    validate,
    write_cleaned,
)
from lookalike.annotations.voc import object_spans
from lookalike.errors import AnnotationFormatError

EMPTY_PLAN = CleanupPlan("first", (), ())


def test_reads_objects_with_lines_and_extra_fields(tmp_path: Path) -> None:
    folder = write_voc(tmp_path, {"img1": [("dog", (10, 20, 110, 120)), ("cup", (5, 5, 30, 30))]})
    assert detect_format(folder) == "voc"
    dataset = load_annotations(folder)
    dog, cup = dataset.annotations
    assert dog.id == "img1.xml#1" and dog.label == "dog" and dog.category == "dog"
    assert dog.box == (10.0, 20.0, 110.0, 120.0)
    assert dog.extra == {"pose": "Unspecified", "truncated": "0", "difficult": "0"}
    text = (folder / "img1.xml").read_text().splitlines()
    assert text[dog.source.line - 1].strip() == "<object>"
    assert cup.source.index == 1
    entry = dataset.images["img1.xml"]
    assert entry.path == str(tmp_path / "JPEGImages" / "img1.jpg")
    assert (entry.width, entry.height, entry.name) == (320, 240, "img1.jpg")
    assert dataset.categories == {"cup": "cup", "dog": "dog"}
    assert validate(dataset) == []


def test_round_trip_without_removals_is_byte_identical(tmp_path: Path) -> None:
    folder = write_voc(tmp_path / "in", {"a": [("dog", (1, 2, 30, 40))], "b": []})
    dataset = load_annotations(folder)
    write_cleaned(dataset, EMPTY_PLAN, tmp_path / "out", dry_run=False)
    after = tree_bytes(tmp_path / "out")
    assert {k: after[k] for k in ("a.xml", "b.xml")} == tree_bytes(folder)


def test_removal_cuts_only_the_object_element(tmp_path: Path) -> None:
    objects = [
        ("dog", (10, 20, 110, 120)),
        ("cup", (150, 20, 190, 60)),
        ("dog", (11, 21, 112, 121)),
    ]
    folder = write_voc(tmp_path / "in", {"a": objects})
    dataset = load_annotations(folder)
    plan = plan_cleanup(dataset, find_duplicate_boxes(dataset))
    assert [r.annotation.id for r in plan.removals] == ["a.xml#3"]
    write_cleaned(dataset, plan, tmp_path / "out", dry_run=False)
    expected = voc_xml("a.jpg", (320, 240), objects[:2])
    assert (tmp_path / "out" / "a.xml").read_text() == expected


def test_removal_in_one_line_xml_keeps_surrounding_bytes(tmp_path: Path) -> None:
    box = "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>40</xmax><ymax>40</ymax></bndbox>"
    obj = f"<object><name>dog</name>{box}</object>"
    text = (
        f"<annotation><filename>a.png</filename>{obj}<!-- keep -->{obj}<extra a='1'/></annotation>"
    )
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.xml").write_text(text)
    make_image(tmp_path / "in" / "a.png", (64, 48))
    dataset = load_annotations(tmp_path / "in")
    plan = plan_cleanup(dataset, find_duplicate_boxes(dataset))
    write_cleaned(dataset, plan, tmp_path / "out", dry_run=False)
    expected = (
        f"<annotation><filename>a.png</filename>{obj}<!-- keep --><extra a='1'/></annotation>"
    )
    assert (tmp_path / "out" / "a.xml").read_text() == expected


def test_object_spans_ignore_nested_objects() -> None:
    data = b"<annotation><object><part><object/></part></object>\n  <object/>\n</annotation>"
    spans = object_spans(data)
    assert [data[s.start : s.end] for s in spans] == [
        b"<object><part><object/></part></object>",
        b"<object/>",
    ]
    assert [s.line for s in spans] == [1, 2]


def test_malformed_files_and_objects(tmp_path: Path) -> None:
    folder = write_voc(tmp_path, {"good": [("dog", (1, 1, 20, 20))]})
    (folder / "broken.xml").write_text("<annotation><object></annotation>")
    (folder / "other.xml").write_text("<svg></svg>")
    box = "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox>"
    bad_objects = (
        "<annotation><filename>bad.jpg</filename>\n"
        f"<object><name>dog</name>{box.replace('>1</xmin', '>one</xmin')}</object>\n"
        f"<object><name> </name>{box}</object>\n"
        f"<object><name>dog</name>{box.replace('<ymax>5</ymax>', '')}</object>\n"
        "<object><name>dog</name></object>\n"
        "</annotation>\n"
    )
    (folder / "bad.xml").write_text(bad_objects)
    make_image(tmp_path / "JPEGImages" / "bad.jpg", (320, 240))
    dataset = load_annotations(folder)
    by_file = sorted((Path(p.path).name, p.kind, p.line_or_id) for p in dataset.problems)
    assert by_file[0][:2] == ("bad.xml", "malformed-annotation")
    assert [k for _, k, _ in by_file] == ["malformed-annotation"] * 4 + ["malformed-file"] * 2
    assert [line for name, _, line in by_file if name == "bad.xml"] == [2, 3, 4, 5]
    messages = " ".join(p.message for p in dataset.problems)
    assert "<xmin>one</xmin>, not a number" in messages
    assert "has no <name>" in messages and "has no <ymax>" in messages
    assert "has no <bndbox>" in messages
    assert "invalid XML" in messages and "not <annotation>" in messages
    assert [a.image for a in dataset.annotations] == ["good.xml"]


def test_size_read_from_image_when_missing_and_missing_image(tmp_path: Path) -> None:
    folder = tmp_path / "Annotations"
    folder.mkdir()
    (folder / "a.xml").write_text(voc_xml("a.png", None, [("dog", (1, 1, 9, 9))]))
    (folder / "b.xml").write_text(voc_xml("b.jpg", (50, 50), [("dog", (1, 1, 9, 9))]))
    (folder / "c.xml").write_text(voc_xml("c.jpg", None, []))
    make_image(tmp_path / "JPEGImages" / "a.png", (70, 30))
    dataset = load_annotations(folder)
    assert (dataset.images["a.xml"].width, dataset.images["a.xml"].height) == (70, 30)
    kinds = sorted((Path(p.path).name, p.kind) for p in dataset.problems)
    assert kinds == [
        ("b.xml", "missing-image-file"),
        ("c.xml", "malformed-image"),
        ("c.xml", "missing-image-file"),
    ]
    assert len(dataset.annotations) == 2  # boxes are absolute: kept even without the image


def test_image_found_by_stem_when_filename_is_wrong(tmp_path: Path) -> None:
    folder = tmp_path / "xml"
    folder.mkdir()
    (folder / "a.xml").write_text(voc_xml("a.jpeg", (64, 48), [("dog", (1, 1, 9, 9))]))
    make_image(tmp_path / "pics" / "a.png", (64, 48))
    dataset = load_annotations(folder, images_dir=tmp_path / "pics")
    assert dataset.images["a.xml"].path == str(tmp_path / "pics" / "a.png")


def test_nothing_readable_raises(tmp_path: Path) -> None:
    (tmp_path / "a.xml").write_text("<annotation>")
    with pytest.raises(AnnotationFormatError, match="None of the 1 .xml files"):
        load_annotations(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AnnotationFormatError, match=r"No Pascal VOC files \(\*.xml\)"):
        load_annotations(empty, format="voc")
