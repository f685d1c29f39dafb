"""``lookalike objects`` through click's CliRunner."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from annotation_builders import coco_annotation as ann
from annotation_builders import tree_bytes, write_coco, write_voc, write_yolo
from click.testing import CliRunner

from lookalike.cli_objects import objects_command


@pytest.fixture
def coco(tmp_path: Path) -> Path:
    annotations = [
        ann(1, 1, 1, [10, 10, 100, 100]),
        ann(2, 1, 1, [9, 9, 102, 102]),
        ann(3, 1, 2, [11, 10, 100, 101]),
        ann(4, 1, 9, [300, 200, 40, 40]),
    ]
    return write_coco(tmp_path / "in", annotations)


TABLE = [
    "kind            image  boxes                                                      detail",
    "duplicate       a.jpg  #1 person [10, 10, 110, 110] ~ #2 person [9, 9, 111, 111]  iou 0.96; "
    "remove #2",
    "label-conflict  a.jpg  #1 person [10, 10, 110, 110] ~ #3 dog [11, 10, 111, 111]   iou 0.97; "
    "review",
    "label-conflict  a.jpg  #2 person [9, 9, 111, 111] ~ #3 dog [11, 10, 111, 111]     iou 0.97; "
    "review",
]


def run(*args: str):
    return CliRunner().invoke(objects_command, list(args), catch_exceptions=False)


def test_summary_on_stdout_and_problems_on_stderr(coco: Path) -> None:
    result = run(str(coco), "--no-cross-image")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "format: coco",
        "images: 1",
        "annotations: 4",
        "problems: 2 (box-outside-image 1, unknown-class 1)",
        "duplicate pairs: 1 in 1 sets",
        "label conflicts: 2 (left for review)",
        "boxes to remove: 1 (keep=first)",
        "cross-image checks: not run (--no-cross-image)",
        "findings: duplicate 1, label-conflict 2, cross-image-conflict 0, repeated-object 0",
        *TABLE,
    ]
    assert result.stderr.splitlines() == [
        f"error: {coco}: annotation 4 (9) uses category_id 9, which is not in 'categories' "
        "(1, 2, 3). Add the category or correct the id.",
        f"warning: {coco}: annotation 4 (9) box [300, 200, 340, 240] extends past the 320x240 "
        "image (right by 20 px). Clip it to the image or fix the coordinates.",
    ]
    assert run(str(coco), "-q").stderr == ""


def test_cross_image_checks_scan_the_images_into_the_store(coco: Path, tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    result = run(str(coco), "--db", str(db), "-q")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[7:] == [
        f"image groups: 0 (scanned {coco.parent})",
        "near-duplicate image pairs compared: 0",
        "cross-image conflicts: 0",
        "crops compared: 3, left out 1 (box-too-small 1)",
        "repeated objects: 0 groups across different images (0 repeats); 0 groups only "
        "within one image or its near-duplicates",
        "findings: duplicate 1, label-conflict 2, cross-image-conflict 0, repeated-object 0",
        f"store: {db}",
        *TABLE,
    ]
    assert db.is_file()


def test_dry_run_by_default_with_out(coco: Path, tmp_path: Path) -> None:
    before = tree_bytes(tmp_path)
    result = run(str(coco), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0
    assert f"would write: {tmp_path / 'out' / 'instances.json'} (1 removed)" in result.stdout
    assert "dry run: nothing was written; add --write to apply." in result.stdout
    assert tree_bytes(tmp_path) == before


def test_write_json_and_csv(coco: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = [str(coco), "--out", str(out), "--write", "--keep", "largest"]
    args += ["--json", str(tmp_path / "r.json"), "--csv", str(tmp_path / "log.csv")]
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert f"wrote: {out / 'instances.json'} (1 removed)" in result.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["keep"] == "largest" and report["summary"]["to_remove"] == 1
    rows = list(csv.DictReader((tmp_path / "log.csv").read_text().splitlines()))
    assert [r["action"] for r in rows] == ["removed", "review"]
    cleaned = json.loads((out / "instances.json").read_text())
    assert [a["id"] for a in cleaned["annotations"]] == [2, 3, 4]  # largest (id 2) kept


def test_json_to_stdout_moves_the_summary_to_stderr(coco: Path) -> None:
    result = run(str(coco), "--json", "-", "-q")
    assert json.loads(result.stdout)["format"] == "coco"
    assert "boxes to remove: 1 (keep=first)" in result.stderr


def test_thresholds_and_format_options(coco: Path) -> None:
    result = run(
        str(coco), "--iou", "0.99", "--containment", "1", "--area-ratio", "1", "--format", "coco"
    )
    assert "duplicate pairs: 0 in 0 sets" in result.stdout
    bad = run(str(coco), "--iou", "1.5")
    assert bad.exit_code == 2 and "--iou" in bad.stderr


def test_in_place_with_backup(tmp_path: Path) -> None:
    folder = write_voc(tmp_path, {"a": [("dog", (10, 10, 100, 100)), ("dog", (11, 10, 101, 100))]})
    original = (folder / "a.xml").read_bytes()
    dry = run(str(folder), "--in-place")
    assert dry.exit_code == 0 and (folder / "a.xml").read_bytes() == original
    assert f"backup: {folder / 'a.xml'} -> {folder / 'a.xml.bak'}" in dry.stdout
    result = run(str(folder), "--in-place", "--write", "--out", str(tmp_path / "logs"))
    assert result.exit_code == 0, result.output
    assert (folder / "a.xml.bak").read_bytes() == original
    assert (folder / "a.xml").read_text().count("<object>") == 1
    assert (tmp_path / "logs" / "lookalike-removed.csv").is_file()


def test_yolo_folder(tmp_path: Path) -> None:
    write_yolo(tmp_path, {"a": "0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n"})
    result = run(str(tmp_path))
    assert "format: yolo" in result.stdout and "boxes to remove: 1 (keep=first)" in result.stdout


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["missing.json"], "Error: Annotation path 'missing.json' does not exist."),
        (["{broken}"], "Error: Cannot read COCO file"),
        (["{coco}", "--images", "nowhere"], "Error: Image folder 'nowhere' does not exist"),
        (["{coco}", "--format", "voc"], "Error: format='voc' does not fit"),
        (["{coco}", "--out", "{in}"], "would overwrite the input file"),
        (["{coco}", "--write"], "Error: --write needs --out DIR, or --in-place"),
    ],
)
def test_errors_are_one_line_without_traceback(
    coco: Path, tmp_path: Path, args, error: str
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    values = {"coco": str(coco), "broken": str(broken), "in": str(coco.parent)}
    result = CliRunner().invoke(objects_command, [a.format(**values) for a in args])
    assert result.exit_code in (1, 2)
    assert error in result.stderr
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # a clean exit, not a crash


def test_bad_input_exit_codes(coco: Path, tmp_path: Path) -> None:
    assert CliRunner().invoke(objects_command, ["missing.json"]).exit_code == 1
    assert CliRunner().invoke(objects_command, [str(coco), "--write"]).exit_code == 2
    assert CliRunner().invoke(objects_command, [str(coco), "--keep", "oldest"]).exit_code == 2


def test_help_documents_every_option() -> None:
    text = run("--help").stdout
    for option in ("--images", "--format", "--iou", "--containment", "--area-ratio", "--keep"):
        assert option in text
    for option in ("--db", "--cross-image / --no-cross-image", "--min-box"):
        assert option in text
    for option in ("--json", "--csv", "--out", "--dry-run / --write", "--in-place", "-q, --quiet"):
        assert option in text


def test_every_problem_is_listed(tmp_path: Path) -> None:
    path = write_coco(tmp_path, [ann(k, 1, 9, [10, 10, 5, 5]) for k in range(1, 31)])
    result = run(str(path))
    assert len(result.stderr.splitlines()) == 30
    assert "problems: 30 (unknown-class 30)" in result.stdout


def test_findings_are_listed_capped_with_a_flag_to_show_all(tmp_path: Path) -> None:
    boxes = [ann(2 * k + 1, 1, 1, [k * 12, 5, 10, 10]) for k in range(25)]
    boxes += [ann(2 * k + 2, 1, 1, [k * 12, 5, 10, 10]) for k in range(25)]
    path = write_coco(tmp_path, boxes, images=[{"id": 1, "file_name": "a.jpg", "width": 320,
                                                "height": 240}])  # fmt: skip
    lines = run(str(path), "--no-cross-image", "-q").stdout.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("kind ")))
    table = lines[header + 1 :]
    assert len(table) == 21 and table[-1] == (
        "... and 5 more findings (--all lists every one; --json has them all)"
    )
    assert table[0].split() == ["duplicate", "a.jpg", "#1", "person", "[0,", "5,", "10,", "15]",
                                "~", "#2", "person", "[0,", "5,", "10,", "15]", "iou", "1.00;",
                                "remove", "#2"]  # fmt: skip
    every = run(str(path), "--no-cross-image", "-q", "--all").stdout.splitlines()
    assert len(every[header + 1 :]) == 25 and not every[-1].startswith("...")
