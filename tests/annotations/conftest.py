"""Keep every store the objects command writes inside the test's temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def private_store_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> Path:
    """Point the default store location (``$XDG_CACHE_HOME``) at a fresh folder."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("LOOKALIKE_DB", raising=False)
    return cache
