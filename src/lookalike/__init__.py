"""lookalike: find exact and near-duplicate images and duplicate objects in image datasets.

Importing the package is cheap: the heavy modules (NumPy, Pillow, OpenCV, FAISS) load on
first use of a name below.

Example:
    >>> import lookalike
    >>> result = lookalike.scan(["photos/"])            # doctest: +SKIP
    >>> for group in result.groups:                      # doctest: +SKIP
    ...     print(group.keeper, [m.path for m in group.members])
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Failure",
    "Group",
    "LookalikeError",
    "Member",
    "Pair",
    "ScanResult",
    "ScanSettings",
    "__version__",
    "evaluate",
    "load_truth",
    "scan",
]

_LAZY = {
    "Failure": "records",
    "Group": "records",
    "Member": "records",
    "Pair": "records",
    "LookalikeError": "errors",
    "ScanResult": "pipeline",
    "ScanSettings": "pipeline",
    "scan": "pipeline",
    "evaluate": "evaluation",
    "load_truth": "evaluation",
}

if TYPE_CHECKING:
    from .errors import LookalikeError
    from .evaluation import evaluate, load_truth
    from .pipeline import ScanResult, ScanSettings, scan
    from .records import Failure, Group, Member, Pair


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'lookalike' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
