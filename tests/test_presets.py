"""Named presets map to min-score and limits; the CLI exposes them."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from lookalike.cli import main
from lookalike.errors import ConfigError
from lookalike.matching import PRESETS, MatchSettings, preset_settings


def test_balanced_is_the_default() -> None:
    assert preset_settings("balanced") == MatchSettings()


def test_presets_order_the_min_score() -> None:
    scores = [preset_settings(p).verify.min_score for p in ("strict", "balanced", "loose")]
    assert scores == sorted(scores, reverse=True)


def test_min_score_overrides_the_preset() -> None:
    assert preset_settings("strict", min_score=0.5).verify.min_score == 0.5


def test_unknown_preset_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="choose from: strict, balanced, loose"):
        preset_settings("medium")


def test_presets_change_the_verdict_cache_key() -> None:
    keys = {preset_settings(p).cache_key() for p in PRESETS}
    assert len(keys) == len(PRESETS)
    assert preset_settings("balanced", mirror=False).cache_key() != MatchSettings().cache_key()


def test_cli_accepts_preset_and_no_mirror(tmp_path) -> None:
    from lookalike.testing import write_dataset

    write_dataset(tmp_path / "images", n_originals=2, n_distractors=1, n_hard_negatives=0)
    result = CliRunner().invoke(
        main, ["scan", str(tmp_path / "images"), "--db", str(tmp_path / "s.db"), "-q",
               "--preset", "strict", "--no-mirror"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    bad = CliRunner().invoke(main, ["scan", str(tmp_path / "images"), "--preset", "medium"])
    assert bad.exit_code == 2
