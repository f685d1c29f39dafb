"""Shared fixtures: generated datasets and the shared public benchmark set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lookalike.testing import DatasetTruth, write_dataset

REPO = Path(__file__).resolve().parents[1]


def public_benchdata() -> Path | None:
    """The shared ground-truth set (``../shared/benchdata/public`` beside the repo), if present."""
    env = os.environ.get("LOOKALIKE_BENCHDATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "benchdata" / "public")
    for path in candidates:
        if (path / "truth.json").is_file():
            return path
    return None


@pytest.fixture(scope="session")
def benchdata() -> Path:
    path = public_benchdata()
    if path is None:
        pytest.skip("shared benchdata not found beside the repository")
    return path


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> DatasetTruth:
    """A small generated dataset with photometric variants only (no geometry)."""
    root = tmp_path_factory.mktemp("dataset") / "images"
    kinds = [
        "jpeg_quality", "resize", "brightness", "contrast", "gamma", "noise",
        "blur", "sharpen", "grayscale", "overlay",
    ]  # fmt: skip
    return write_dataset(root, n_originals=6, variants_per_original=2, kinds=kinds, rng=3)
