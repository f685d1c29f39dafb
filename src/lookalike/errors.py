"""Exceptions raised by lookalike.

Every error the library raises on purpose derives from :class:`LookalikeError`; each
subclass also inherits the matching builtin so ``except ValueError`` keeps working::

    LookalikeError
    ├── ConfigError(ValueError)            bad option value or combination
    ├── InputNotFoundError(FileNotFoundError)  a root or file the user named is missing
    ├── DecodeError(ValueError)            one image could not be read (becomes a Failure row)
    ├── AnnotationFormatError(ValueError)  a malformed annotation file (carries path and line)
    ├── FileChangedError(ValueError)       a file's bytes changed since the scan recorded them
    ├── StaleGroupError(ValueError)        a group or member named by a request is gone (re-scan)
    ├── StoreError(RuntimeError)           the SQLite store cannot be opened or written
    │   ├── StoreVersionError              the store was written by an incompatible version
    │   └── StoreBusyError                 another scan is using the store
    ├── ExecutorError(RuntimeError)        a distributed/parallel backend failed as a whole
    └── MissingDependencyError(ImportError)  an optional extra is not installed

Per-image problems never abort a scan: they are recorded as ``Failure`` records.
"""

from __future__ import annotations


class LookalikeError(Exception):
    """Root of every error lookalike raises on purpose."""


class ConfigError(LookalikeError, ValueError):
    """An option has a bad value, or two options contradict each other."""


class InputNotFoundError(LookalikeError, FileNotFoundError):
    """A root folder or file given by the user does not exist."""


class DecodeError(LookalikeError, ValueError):
    """An image file could not be read or decoded.

    ``stage`` names the step that failed (``read``, ``identify``, ``decode``).
    """

    def __init__(self, message: str, *, stage: str = "decode") -> None:
        super().__init__(message)
        self.stage = stage


class AnnotationFormatError(LookalikeError, ValueError):
    """An annotation file is malformed; carries where the problem is."""

    def __init__(self, message: str, *, path: str = "", line: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.line = line


class FileChangedError(LookalikeError, ValueError):
    """A file's bytes are not those the scan recorded (edited, replaced or moved since).

    Raised before lookalike serves, copies, moves or restores such a file.
    """


class StaleGroupError(LookalikeError, ValueError):
    """A group or member named by a request is not in the store any more (a scan ran)."""


class StoreError(LookalikeError, RuntimeError):
    """The SQLite store cannot be opened, read or written."""


class StoreVersionError(StoreError):
    """The store was written by a newer, incompatible version of lookalike."""


class StoreBusyError(StoreError):
    """Another scan holds the store's scan lock; carries the store and the holder's pid."""

    def __init__(self, message: str, *, path: str = "", pid: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.pid = pid


class ExecutorError(LookalikeError, RuntimeError):
    """A parallel or distributed execution backend failed as a whole."""


class MissingDependencyError(LookalikeError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, package: str, *, extra: str) -> None:
        super().__init__(
            f"{package!r} is not installed. Install it with: pip install 'lookalike[{extra}]'"
        )
        self.package = package
        self.extra = extra


def require(module: str, *, extra: str):  # type: ignore[no-untyped-def]
    """Import an optional module or raise :class:`MissingDependencyError` naming its extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(module.split(".")[0], extra=extra) from exc
