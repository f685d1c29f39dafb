"""The local review UI (``lookalike serve``): a Starlette app over one store.

Needs the ``ui`` extra (``pip install 'lookalike[ui]'``). Every page has a JSON twin
(``/groups`` and ``/groups.json``...), images are served by file id only, and state changes
only through POST with a per-session CSRF token. See ``docs/review.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["create_app"]

if TYPE_CHECKING:
    from .app import create_app


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module 'lookalike.ui' has no attribute {name!r}")
