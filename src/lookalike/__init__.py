"""lookalike: find exact and near-duplicate images and duplicate objects in image datasets."""

from __future__ import annotations

__version__ = "0.1.0"
