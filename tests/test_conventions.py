"""One convention across commands: ``-q``, ``--json FILE`` and the CSV columns."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from lookalike import report
from lookalike.cli import main
from lookalike.testing import write_dataset, write_edge_case_zoo

QUIET_HELP = "No progress bars and no per-item listing"


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small dataset with duplicates, plus a few files that fail; scanned into a store."""
    base = tmp_path_factory.mktemp("conventions")
    root = base / "images"
    write_dataset(root / "set", n_originals=3, variants_per_original=2, kinds=["jpeg_quality"])
    write_edge_case_zoo(root / "zoo")
    shutil.rmtree(root / "zoo" / "names")  # names that are not UTF-8 are tested elsewhere
    db = base / "s.db"
    result = CliRunner().invoke(main, ["scan", "-q", str(root), "--db", str(db)])
    assert result.exit_code == 0, result.output
    return root, db


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("command", ["scan", "eval", "objects", "report"])
def test_quiet_means_the_same_in_every_command(command: str) -> None:
    code, out, _ = _run(command, "--help")
    assert code == 0
    assert "-q, --quiet" in out
    assert QUIET_HELP in " ".join(out.split())


def test_a_quiet_scan_counts_failures_without_listing_them(scanned) -> None:
    root, db = scanned
    code, out, _ = _run("scan", str(root), "--db", str(db), "-q")
    assert code == 0
    assert "5 failures" in out and "Failed:" not in out
    assert "-q: failures are not listed" in out
    code, out, _ = _run("scan", str(root), "--db", str(db))
    assert out.count("Failed: ") == 5


def test_export_writes_its_json_to_a_file_or_to_stdout_like_scan(scanned, tmp_path) -> None:
    _, db = scanned
    target = tmp_path / "done.json"
    base = ["export", "--db", str(db), "--copy-to", str(tmp_path / "clean"), "--dry-run"]
    code, out, err = _run(*base, "--json", str(target))
    assert code == 0, err
    assert json.loads(target.read_text())["dry_run"] is True
    code, out, err = _run(*base, "--json", "-")
    assert code == 0 and json.loads(out)["dry_run"] is True
    assert "deprecated" not in err


def test_a_bare_json_flag_still_prints_json_with_a_deprecation_note(scanned, tmp_path) -> None:
    _, db = scanned
    code, out, err = _run(
        "export", "--db", str(db), "--copy-to", str(tmp_path / "clean"), "--dry-run", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["dry_run"] is True
    assert "a bare --json is deprecated: write --json - (stdout) or --json FILE" in err


def test_export_csv_has_the_scan_csv_columns_in_the_same_order(scanned, tmp_path) -> None:
    root, db = scanned
    _, scan_csv, _ = _run("scan", str(root), "--db", str(db), "-q", "--csv", "-")
    _, export_csv, _ = _run("export", "--db", str(db), "--format", "csv")
    scan_rows = list(csv.DictReader(io.StringIO(scan_csv)))
    export_rows = list(csv.DictReader(io.StringIO(export_csv)))
    header = export_csv.splitlines()[0].split(",")
    assert header[: len(report.CSV_FIELDS)] == list(report.CSV_FIELDS)
    assert header[len(report.CSV_FIELDS) :] == ["reason", "digest"]
    by_path = {r["path"]: r for r in export_rows}
    assert scan_rows and any(r["relation"] for r in scan_rows)
    for row in scan_rows:
        assert {k: by_path[row["path"]][k] for k in report.CSV_FIELDS} == row
