"""The command line: exit codes, exact error lines, JSON/CSV outputs."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from lookalike.cli import main


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


def test_scan_writes_json_with_the_documented_schema(runner, dataset, tmp_path) -> None:
    out = tmp_path / "r.json"
    result = runner.invoke(
        main, ["scan", str(dataset.root), "--db", str(tmp_path / "s.db"), "--json", str(out), "-q"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["schema"] == "lookalike.scan/1"
    assert doc["images"] == len(dataset.images)
    assert doc["failures"] == []
    for group in doc["groups"]:
        assert set(group) >= {"keeper", "members", "roots", "relation", "reclaimable_bytes"}
        for member in group["members"]:
            assert set(member) >= {"path", "relation", "score"}
            assert 0.0 <= member["score"] <= 1.0
            assert member["path"] != group["keeper"]
    assert {"a", "b", "relation", "score"} <= set(doc["pairs"][0])
    assert "Duplicate groups:" in result.output


def test_scan_csv_to_stdout_has_keep_and_remove_rows(runner, dataset, tmp_path) -> None:
    result = runner.invoke(
        main, ["scan", str(dataset.root), "--db", str(tmp_path / "s.db"), "--csv", "-", "-q"]
    )
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert {r["action"] for r in rows} == {"keep", "remove"}
    assert sum(r["role"] == "keeper" for r in rows) == len({r["group"] for r in rows})


def test_missing_folder_is_a_one_line_error_with_exit_1(runner, tmp_path) -> None:
    result = runner.invoke(main, ["scan", str(tmp_path / "nope"), "--db", str(tmp_path / "s.db")])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: Folder {str(tmp_path / 'nope')!r} does not exist."


def test_bad_flag_value_is_a_usage_error(runner, tmp_path) -> None:
    result = runner.invoke(main, ["scan", str(tmp_path), "--min-score", "1.5"])
    assert result.exit_code == 2
    assert "--min-score" in result.output
    result = runner.invoke(main, ["scan", str(tmp_path), "--no-such-flag"])
    assert result.exit_code == 2


def test_strict_exits_3_when_files_failed(runner, tmp_path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    db = str(tmp_path / "s.db")
    assert runner.invoke(main, ["scan", str(root), "--db", db, "-q"]).exit_code == 0
    result = runner.invoke(main, ["scan", str(root), "--db", db, "-q", "--strict"])
    assert result.exit_code == 3
    assert "Failed: " in result.output


def test_unwritable_store_is_a_clear_error(runner, dataset, tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = runner.invoke(main, ["scan", str(dataset.root), "--db", str(blocker / "s.db")])
    assert result.exit_code == 1
    assert result.output.startswith("Error: Cannot open the store")


def test_reference_must_be_a_scanned_root(runner, dataset, tmp_path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    result = runner.invoke(
        main, ["scan", str(dataset.root), "--reference", str(other), "--db", str(tmp_path / "s.db")]
    )
    assert result.exit_code == 1
    assert "is not one of the scanned roots" in result.output


def test_eval_prints_scores(runner, dataset, tmp_path) -> None:
    truth = tmp_path / "truth.json"
    dataset.to_json(truth)
    result = runner.invoke(
        main,
        [
            "eval",
            "--truth",
            str(truth),
            str(dataset.root),
            "--db",
            str(tmp_path / "s.db"),
            "-q",
            "--json",
            str(tmp_path / "scores.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "precision 1.0000" in result.output
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["recall"] == 1.0


def test_eval_rejects_a_malformed_truth_file(runner, dataset, tmp_path) -> None:
    truth = tmp_path / "truth.json"
    truth.write_text("{}")
    result = runner.invoke(main, ["eval", "--truth", str(truth), str(dataset.root)])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "is not a truth file" in result.output


def test_scan_without_folder_scans_the_generated_sample(runner, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    result = runner.invoke(main, ["scan", "-q"])
    assert result.exit_code == 0, result.output
    assert "scanning a generated sample" in result.output
    assert Path(tmp_path, "lookalike", "sample", "truth.json").exists()
