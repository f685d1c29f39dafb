"""``lookalike eval`` matches scanned files to the truth through symlinks, or says why not."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from lookalike.cli import main
from lookalike.testing import DatasetTruth, write_dataset


@pytest.fixture(scope="module")
def linked_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``shared`` is a symlink to the real folder holding ``images/`` and ``truth.json``."""
    top = tmp_path_factory.mktemp("eval")
    real = top / "real-shared"
    truth: DatasetTruth = write_dataset(
        real / "images", n_originals=3, variants_per_original=2, kinds=["jpeg_quality"], rng=4
    )
    truth.to_json(real / "truth.json")
    os.symlink(real, top / "shared")
    return top / "shared"


def _eval(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["eval", "-q", *args])
    return result.exit_code, result.stdout, result.stderr


def test_eval_through_a_symlinked_folder_scores_the_scan(linked_set, tmp_path) -> None:
    scores = tmp_path / "scores.json"
    code, out, err = _eval(
        "--truth", str(linked_set / "truth.json"), str(linked_set / "images"),
        "--db", str(tmp_path / "s.db"), "--json", str(scores),
    )  # fmt: skip
    assert code == 0, out + err
    assert json.loads(scores.read_text())["recall"] == 1.0


def test_eval_of_a_real_path_against_a_linked_truth_scores_the_scan(linked_set, tmp_path) -> None:
    real_images = linked_set.resolve() / "images"
    code, out, err = _eval(
        "--truth", str(linked_set / "truth.json"), str(real_images), "--db", str(tmp_path / "s.db")
    )
    assert code == 0, out + err
    assert "recall 1.0000" in out


def test_eval_of_a_folder_the_truth_does_not_list_stops_with_one_line(linked_set, tmp_path) -> None:
    other = tmp_path / "other"
    write_dataset(other, n_originals=2, variants_per_original=1, kinds=["jpeg_quality"], rng=9)
    code, out, err = _eval(
        "--truth", str(linked_set / "truth.json"), str(other), "--db", str(tmp_path / "s.db")
    )
    assert code == 1
    message = (out + err).strip()
    assert message.startswith("Error: ") and "\n" not in message
    assert "none of the" in message.lower() and "truth.json" in message
