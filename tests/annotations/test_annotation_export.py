"""write_cleaned(): dry run by default, never overwrite inputs, backups, decision log."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest
from annotation_builders import coco_annotation as ann
from annotation_builders import tree_bytes, write_coco, write_voc, write_yolo, yolo_line

from lookalike.annotations import (
    decision_log,
    find_duplicate_boxes,
    load_annotations,
    plan_cleanup,
    write_cleaned,
)
from lookalike.annotations.export import LOG_COLUMNS
from lookalike.errors import ConfigError, LookalikeError


def coco_with_copy(folder: Path) -> Path:
    annotations = [
        ann(1, 1, 1, [10, 10, 100, 100]),
        ann(2, 1, 1, [12, 11, 100, 100]),
        ann(3, 1, 2, [11, 10, 100, 101]),
        ann(4, 1, 3, [200, 150, 20, 20]),
    ]
    return write_coco(folder, annotations)


def plan_of(dataset):
    return plan_cleanup(dataset, find_duplicate_boxes(dataset))


def test_dry_run_is_the_default_and_writes_nothing(tmp_path: Path) -> None:
    path = coco_with_copy(tmp_path / "in")
    before = tree_bytes(tmp_path)
    dataset = load_annotations(path)
    result = write_cleaned(dataset, plan_of(dataset), tmp_path / "out")
    assert result.dry_run and result.removed == 1
    assert [(Path(f.destination).name, f.action, f.removed) for f in result.files] == [
        ("instances.json", "rewrite", 1),
        ("lookalike-removed.csv", "log", 0),
        ("lookalike-removed.json", "log", 0),
    ]
    assert tree_bytes(tmp_path) == before
    assert not (tmp_path / "out").exists()


def test_decision_log_csv_and_json(tmp_path: Path) -> None:
    path = coco_with_copy(tmp_path / "in")
    dataset = load_annotations(path)
    plan = plan_of(dataset)
    write_cleaned(dataset, plan, tmp_path / "out", dry_run=False)
    rows = list(
        csv.DictReader(io.StringIO((tmp_path / "out" / "lookalike-removed.csv").read_text()))
    )
    assert list(rows[0]) == list(LOG_COLUMNS)
    removed, review = rows
    assert removed["action"] == "removed" and removed["reason"] == "duplicate-iou"
    assert (removed["id"], removed["kept_id"], removed["label"], removed["image"]) == (
        "2",
        "1",
        "person",
        "1",
    )
    assert (removed["x0"], removed["y1"]) == ("12.0", "111.0")
    assert removed["source"] == f"{path}#1" and removed["kept_source"] == f"{path}#0"
    assert 0.9 < float(removed["iou"]) <= 1
    assert (
        review["action"] == "review"
        and review["label"] == "dog"
        and review["kept_label"] == "person"
    )
    document = json.loads((tmp_path / "out" / "lookalike-removed.json").read_text())
    assert document == {"keep": "first", "decisions": decision_log(plan)}
    assert document["decisions"][0]["id"] == 2


def test_out_dir_must_not_overwrite_inputs(tmp_path: Path) -> None:
    path = coco_with_copy(tmp_path)
    dataset = load_annotations(path)
    with pytest.raises(ConfigError, match="would overwrite the input file"):
        write_cleaned(dataset, plan_of(dataset), tmp_path, dry_run=False)
    labels = write_yolo(tmp_path / "yolo", {"a": "0 0.5 0.5 0.2 0.2\n"})
    dataset = load_annotations(labels)
    with pytest.raises(ConfigError, match="is inside the input folder"):
        write_cleaned(dataset, plan_of(dataset), labels / "cleaned")


def test_in_place_backs_up_then_rewrites_only_changed_files(tmp_path: Path) -> None:
    size = (320, 240)
    line = yolo_line(0, (10, 10, 100, 100), size)
    copy = yolo_line(0, (11, 10, 101, 100), size)
    labels = write_yolo(tmp_path / "ds", {"a": f"{line}\n{copy}\n", "b": f"{line}\n"})
    before = {p.name: p.read_bytes() for p in labels.iterdir()}
    os.chmod(labels / "a.txt", 0o640)
    dataset = load_annotations(labels)
    plan = plan_of(dataset)
    dry = write_cleaned(dataset, plan, tmp_path / "logs", overwrite=True)
    assert [p.name for p in labels.iterdir()] and (labels / "a.txt").read_bytes() == before["a.txt"]
    assert dry.files[0].backup == str(labels / "a.txt.bak")
    result = write_cleaned(dataset, plan, tmp_path / "logs", dry_run=False, overwrite=True)
    assert [(Path(f.destination).name, f.action) for f in result.files] == [
        ("a.txt", "rewrite"),
        ("lookalike-removed.csv", "log"),
        ("lookalike-removed.json", "log"),
    ]
    assert (labels / "a.txt").read_text() == f"{line}\n"
    assert (labels / "a.txt.bak").read_bytes() == before["a.txt"]
    assert (labels / "b.txt").read_bytes() == before["b.txt"] and not (
        labels / "b.txt.bak"
    ).exists()
    assert (labels / "a.txt").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "logs" / "lookalike-removed.csv").is_file()


def test_second_in_place_run_never_replaces_a_backup_or_log(tmp_path: Path) -> None:
    path = coco_with_copy(tmp_path)
    original = path.read_bytes()
    dataset = load_annotations(path)
    write_cleaned(dataset, plan_of(dataset), tmp_path, dry_run=False, overwrite=True)
    first_pass = path.read_bytes()
    (tmp_path / "instances.json").write_bytes(original)  # someone restores the input
    dataset = load_annotations(path)
    result = write_cleaned(dataset, plan_of(dataset), tmp_path, dry_run=False, overwrite=True)
    assert result.files[0].backup == str(tmp_path / "instances.json.1.bak")
    assert (tmp_path / "instances.json.bak").read_bytes() == original
    assert (tmp_path / "instances.json.1.bak").read_bytes() == original
    assert path.read_bytes() == first_pass
    assert (tmp_path / "lookalike-removed.1.csv").is_file()
    assert (tmp_path / "lookalike-removed.1.json").is_file()


def test_in_place_refuses_when_the_input_changed_since_loading(tmp_path: Path) -> None:
    path = coco_with_copy(tmp_path)
    dataset = load_annotations(path)
    path.write_text(path.read_text().replace('"test"', '"edited"'))
    edited = path.read_bytes()
    with pytest.raises(LookalikeError, match="changed on disk since it was loaded"):
        write_cleaned(dataset, plan_of(dataset), tmp_path / "logs", dry_run=False, overwrite=True)
    assert path.read_bytes() == edited and not (tmp_path / "instances.json.bak").exists()


def test_voc_in_place_keeps_everything_but_the_removed_object(tmp_path: Path) -> None:
    folder = write_voc(tmp_path, {"a": [("dog", (10, 10, 100, 100)), ("dog", (11, 10, 101, 100))]})
    original = (folder / "a.xml").read_text()
    dataset = load_annotations(folder)
    write_cleaned(dataset, plan_of(dataset), tmp_path / "logs", dry_run=False, overwrite=True)
    cleaned = (folder / "a.xml").read_text()
    assert (folder / "a.xml.bak").read_text() == original
    assert cleaned.count("<object>") == 1 and "<!-- exported by a labelling tool -->" in cleaned
    start = original.index("\t<object>", original.index("</object>"))
    end = original.index("</object>", start) + len("</object>\n")
    assert cleaned == original[:start] + original[end:]
