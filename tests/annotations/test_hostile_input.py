"""Hostile annotation files: one clear error or problem each, never a traceback or a hang."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from annotation_builders import voc_xml, write_voc, write_yolo
from click.testing import CliRunner

from lookalike.annotations import limits, load_annotations
from lookalike.cli_objects import objects_command
from lookalike.errors import AnnotationFormatError

BOX = "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox>"


def one_line_error(path: Path) -> str:
    """Run the CLI on ``path``; assert a clean exit 1 with one ``Error:`` line; return it."""
    result = CliRunner().invoke(objects_command, [str(path), "--no-cross-image", "-q"])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: ")
    return line


def test_coco_nested_100000_deep_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"images": [], "annotations": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(AnnotationFormatError, match="nested too deeply"):
        load_annotations(path)
    assert "nested too deeply" in one_line_error(path)


def test_coco_number_with_too_many_digits_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "digits.json"
    path.write_text('{"images": [], "annotations": [], "x": ' + "7" * 5000 + "}")
    assert "digits" in one_line_error(path)


def test_coco_too_big_for_memory_is_a_one_line_error(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"images": [], "annotations": []}))

    def out_of_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(json, "loads", out_of_memory)
    assert "not enough memory" in one_line_error(path)


def billion_laughs() -> str:
    entities = ['<!ENTITY lol "lol">']
    for n in range(1, 10):
        previous = f"&lol{n - 1};" if n > 1 else "&lol;"
        entities.append(f'<!ENTITY lol{n} "{previous * 10}">')
    return (
        f'<?xml version="1.0"?><!DOCTYPE annotation [{"".join(entities)}]>'
        f"<annotation><filename>a.jpg</filename><object><name>&lol9;</name>{BOX}</object>"
        "</annotation>"
    )


def test_voc_entity_declarations_are_refused(tmp_path: Path) -> None:
    folder = write_voc(tmp_path, {"good": [("dog", (10, 10, 50, 50))]})
    (folder / "lol.xml").write_text(billion_laughs())
    dataset = load_annotations(folder)
    (problem,) = [p for p in dataset.problems if p.path.endswith("lol.xml")]
    assert problem.kind == "malformed-file" and "<!ENTITY" in problem.message
    assert [a.label for a in dataset.annotations] == ["dog"]
    (folder / "good.xml").unlink()
    assert "<!ENTITY" in one_line_error(folder)


def test_voc_nested_100000_deep_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    folder = write_voc(tmp_path, {"good": [("dog", (10, 10, 50, 50))]})
    deep = "<a>" * 100_000 + "</a>" * 100_000
    text = f"<annotation><filename>a.jpg</filename><object><name>x</name>{BOX}{deep}</object>"
    (folder / "deep.xml").write_text(text + "</annotation>")
    dataset = load_annotations(folder)
    (problem,) = [p for p in dataset.problems if p.path.endswith("deep.xml")]
    assert problem.kind == "malformed-file" and "nested" in problem.message
    (folder / "good.xml").unlink()
    assert "nested" in one_line_error(folder)


def test_oversized_label_files_are_reported_not_read(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(limits, "MAX_LABEL_FILE_BYTES", 1000)
    folder = write_yolo(tmp_path / "yolo", {"a": "0 0.5 0.5 0.2 0.2\n", "b": "0 0.5 0.5 0.2 0.2\n"})
    (folder / "b.txt").write_text("0 0.5 0.5 0.2 0.2\n" * 100)
    dataset = load_annotations(folder)
    (problem,) = [p for p in dataset.problems if p.kind == "malformed-file"]
    assert problem.path.endswith("b.txt") and "too large" in problem.message
    assert len(dataset.annotations) == 1
    voc = write_voc(tmp_path / "voc", {"a": [("dog", (1, 1, 5, 5))] * 20})
    assert len(voc_xml("a.jpg", (320, 240), [("dog", (1, 1, 5, 5))] * 20)) > 1000
    assert "too large" in one_line_error(voc)


def test_a_long_multi_line_names_list_is_read_in_linear_time(tmp_path: Path) -> None:
    from lookalike.annotations.classnames import parse_yaml_names

    lines = ["names: ["] + [f"  'class {n}'," for n in range(200_000)] + ["]"]
    names = parse_yaml_names("\n".join(lines))  # quadratic before: minutes
    assert len(names) == 200_000 and names[199_999] == "class 199999"


def test_an_oversized_class_file_is_a_warning(tmp_path: Path, monkeypatch) -> None:
    from lookalike.annotations import classnames

    monkeypatch.setattr(classnames, "MAX_CLASS_FILE_BYTES", 100)
    folder = write_yolo(tmp_path, {"a": "0 0.5 0.5 0.2 0.2\n"}, names=[f"n{k}" for k in range(50)])
    dataset = load_annotations(folder)
    (problem,) = [p for p in dataset.problems if p.kind == "malformed-class-file"]
    assert "too large" in problem.message
    assert len(dataset.annotations) == 1
