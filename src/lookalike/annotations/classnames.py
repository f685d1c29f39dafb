"""Class-name files of YOLO datasets: ``data.yaml``, ``classes.txt`` and ``*.names``.

``data.yaml`` is read by a small parser for the ``names:`` forms that YOLO tools write
(flow list, block list, index mapping, flow mapping), so PyYAML is not a dependency.
Anything else in the YAML file is ignored; the file itself is never rewritten.
"""

from __future__ import annotations

import re
from pathlib import Path

YAML_NAMES: tuple[str, ...] = ("data.yaml", "dataset.yaml", "data.yml", "dataset.yml")
LIST_NAMES: tuple[str, ...] = ("classes.txt", "obj.names", "coco.names")

MAX_CLASS_FILE_BYTES = 4 * 2**20
"""Largest class-name file read (4 MiB: tens of thousands of names)."""

_NAMES_LINE = re.compile(r"^names\s*:(.*)$")
_NC_LINE = re.compile(r"^nc\s*:\s*(\d+)")


class ClassNamesError(ValueError):
    """A class-name file exists but its ``names`` could not be understood."""


def find_class_file(root: Path) -> Path | None:
    """Return the class-name file for a YOLO dataset rooted at (or inside) ``root``.

    ``root`` and up to two parent folders are searched (``dataset/labels/train`` finds
    ``dataset/data.yaml``); in each, ``data.yaml``-like names come first, then other YAML
    files that have a top-level ``names:`` key, then ``classes.txt``, then ``*.names``.
    """
    for folder in [root, *list(root.parents)[:2]]:
        found = _class_file_in(folder)
        if found is not None:
            return found
    return None


def _class_file_in(folder: Path) -> Path | None:
    """Return the preferred class-name file directly inside ``folder``, if any."""
    candidates = [folder / n for n in YAML_NAMES]
    candidates += sorted(p for p in folder.glob("*.y*ml") if p.name not in YAML_NAMES)
    for path in candidates:
        if path.is_file() and _has_names_key(path):
            return path
    listed = [folder / n for n in LIST_NAMES] + sorted(folder.glob("*.names"))
    return next((p for p in listed if p.is_file()), None)


def _read_text(path: Path) -> str:
    """The text of a class file (at most :data:`MAX_CLASS_FILE_BYTES`).

    Raises:
        ClassNamesError: The file cannot be read, is too large or is not UTF-8.
    """
    try:
        size = path.stat().st_size
        if size > MAX_CLASS_FILE_BYTES:
            raise ClassNamesError(
                f"'{path}' is too large for a class-name file ({size:,} bytes; the limit is "
                f"{MAX_CLASS_FILE_BYTES:,})"
            )
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ClassNamesError(f"cannot read '{path}': {exc}") from exc


def _has_names_key(path: Path) -> bool:
    """True when the YAML file has a top-level ``names:`` line (or is too large to tell:
    :func:`read_class_names` then reports it)."""
    try:
        if path.stat().st_size > MAX_CLASS_FILE_BYTES:
            return True
        text = _read_text(path)
    except (OSError, ClassNamesError):
        return False
    return any(_NAMES_LINE.match(line) for line in text.splitlines())


def read_class_names(path: Path) -> dict[int, str]:
    """Read ``{class index: name}`` from a ``data.yaml``, ``classes.txt`` or ``*.names``.

    Raises:
        ClassNamesError: The file cannot be decoded or its ``names`` are not a list or an
            index mapping.
    """
    text = _read_text(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        return parse_yaml_names(text)
    return {n: name for n, name in enumerate(_list_lines(text))}


def _list_lines(text: str) -> list[str]:
    """Names of a one-name-per-line file; blank lines are skipped."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def parse_yaml_names(text: str) -> dict[int, str]:
    r"""Parse the top-level ``names:`` of a YOLO ``data.yaml``.

    Supported: ``names: [a, 'b c']``, ``names: {0: a, 1: b}``, and block forms
    (``- a`` items or ``0: a`` pairs on indented lines below ``names:``).

    Raises:
        ClassNamesError: There is no ``names:`` key or its value is not understood.

    Example:
        >>> parse_yaml_names("nc: 2\nnames: ['cat', dog]  # two\n")
        {0: 'cat', 1: 'dog'}
    """
    lines = text.splitlines()
    for n, line in enumerate(lines):
        match = _NAMES_LINE.match(line)
        if match is not None:
            return _names_value(match.group(1), lines[n + 1 :])
    raise ClassNamesError("no top-level 'names:' key")


def _names_value(rest: str, following: list[str]) -> dict[int, str]:
    """Parse the value of ``names:`` given the rest of its line and the lines after it."""
    inline = _strip_comment(rest).strip()
    if inline.startswith(("[", "{")):
        flow = _collect_flow(inline, following)
        items = _split_flow(flow[1:-1])
        if inline.startswith("["):
            return {n: _unquote(item) for n, item in enumerate(items)}
        return _pairs(items)
    if inline:
        raise ClassNamesError(f"'names: {inline}' is neither a list nor a mapping")
    return _block_value(following)


def _collect_flow(inline: str, following: list[str]) -> str:
    """Join a flow collection that may continue over several lines until it closes.

    Each line is scanned once (the quote state carries over), so a long list stays linear.
    """
    closer = "]" if inline.startswith("[") else "}"
    pieces, quote = [inline], ""
    closed, quote = _scan_for(closer, inline, quote)
    for line in following:
        if closed:
            break
        piece = _strip_comment(line).strip()
        pieces.append(piece)
        closed, quote = _scan_for(closer, piece, quote)
    if not closed:
        raise ClassNamesError(f"'names:' flow collection is not closed with {closer!r}")
    text = " ".join(pieces)
    return text[: text.rindex(closer) + 1]


def _scan_for(closer: str, text: str, quote: str) -> tuple[bool, str]:
    """Whether ``closer`` occurs in ``text`` outside quotes, and the quote open at its end."""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == closer:
            return True, quote
    return False, quote


def _block_value(following: list[str]) -> dict[int, str]:
    """Parse indented ``- name`` or ``0: name`` lines that follow ``names:``."""
    items: list[str] = []
    for line in following:
        body = _strip_comment(line)
        if not body.strip():
            continue
        if not body[0].isspace() and not body.startswith("-"):
            break
        items.append(body.strip())
    if items and all(item.startswith("-") for item in items):
        return {n: _unquote(item[1:]) for n, item in enumerate(items)}
    if items:
        return _pairs(items)
    raise ClassNamesError("'names:' has no value")


def _pairs(items: list[str]) -> dict[int, str]:
    """Parse ``index: name`` items into a mapping."""
    names: dict[int, str] = {}
    for item in items:
        key, sep, value = item.partition(":")
        if not sep or not _unquote(key).isdigit():
            raise ClassNamesError(f"'names:' entry {item!r} is not 'index: name'")
        names[int(_unquote(key))] = _unquote(value)
    return names


def _split_flow(body: str) -> list[str]:
    """Split the inside of a flow collection on commas outside quotes."""
    items, current, quote = [], "", ""
    for char in body:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == ",":
            items.append(current)
            current = ""
            continue
        current += char
    items.append(current)
    return [item.strip() for item in items if item.strip()]


def _strip_comment(line: str) -> str:
    """Drop a ``# comment`` that starts outside quotes after whitespace or at the start."""
    quote = ""
    for n, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (n == 0 or line[n - 1].isspace()):
            return line[:n]
    return line


def _unquote(value: str) -> str:
    """Strip whitespace and one pair of matching YAML quotes."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        inner = value[1:-1]
        return inner.replace("''", "'") if value[0] == "'" else inner
    return value


def read_declared_count(path: Path) -> int | None:
    """Return ``nc:`` from a YAML class file, or None when absent or not YAML."""
    if path.suffix.lower() not in (".yaml", ".yml"):
        return None
    try:
        text = _read_text(path)
    except ClassNamesError:
        return None
    for line in text.splitlines():
        match = _NC_LINE.match(line)
        if match is not None:
            return int(match.group(1))
    return None
