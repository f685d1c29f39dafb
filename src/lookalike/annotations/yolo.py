"""YOLO text labels: read into a :class:`Dataset`, write back with lines dropped.

One ``.txt`` per image, one object per line: ``class x_center y_center width height``
normalised to ``[0, 1]``. Also accepted: a sixth column (a confidence, kept in
``extra["confidence"]``) and segmentation lines ``class x1 y1 x2 y2 ...`` (the box is the
polygon's bounds, the points are kept in ``extra["polygon"]``).

Each label file's image is looked up by stem, case-insensitively by extension, in:
``images_dir`` (mirroring the label folders, then flat), the parallel ``images/`` folder
(the last ``labels`` folder of the path replaced by ``images``), then the label's folder.
Boxes are converted to pixels with the image size read from its header (after EXIF
rotation, as YOLO trainers do), so a label file whose image is missing cannot be loaded:
it is reported and written back unchanged.

Writing splits the original bytes on line breaks, drops the removed lines and joins the
rest: every other byte is unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import AnnotationFormatError
from . import limits
from .classnames import ClassNamesError, find_class_file, read_class_names, read_declared_count
from .imagefiles import IMAGE_EXTENSIONS, ImageLocator, read_size
from .records import Annotation, Dataset, ImageEntry, ImageKey, Problem, RawFiles, Source

_ROTATED = frozenset({5, 6, 7, 8})


@dataclass(frozen=True)
class _Line:
    """One parsed label line, still in normalised coordinates."""

    index: int
    class_id: int
    box: tuple[float, float, float, float]
    extra: dict[str, object]


@dataclass
class _Reading:
    """Mutable state while reading one YOLO dataset."""

    root: Path
    images_dir: Path | None
    names: dict[int, str]
    locator: ImageLocator
    files: dict[str, bytes]
    images: dict[ImageKey, ImageEntry]
    annotations: list[Annotation]
    problems: list[Problem]
    annotation_files: list[str]


def read_yolo(path: Path, *, images_dir: Path | None = None) -> Dataset:
    """Read a YOLO label folder (or a single label file).

    Args:
        path: The labels folder (or dataset root), or one ``.txt`` label file.
        images_dir: Folder holding the images, when not in the usual YOLO places.

    Returns:
        The dataset; label files and lines that cannot be used are described in
        ``dataset.problems`` and left untouched on export.

    Raises:
        AnnotationFormatError: No label file was found, or none could be read.
    """
    root = path if path.is_dir() else path.parent
    labels = _label_files(path)
    class_file = find_class_file(root)
    names, problems = _load_names(class_file, root)
    state = _Reading(root, images_dir, names, ImageLocator(), {}, {}, [], problems, [])
    _keep_class_file(state, class_file)
    for label in labels:
        _read_label_file(state, label)
    _raise_if_nothing_read(state, labels, path)
    raw = RawFiles(root, state.files, None, tuple(state.annotation_files))
    categories: dict[int | str, str] = dict(sorted(names.items()))
    return Dataset(
        "yolo", state.images, tuple(state.annotations), categories, raw, tuple(state.problems)
    )


def _label_files(path: Path) -> list[Path]:
    """Every ``.txt`` under ``path`` except hidden ones and class lists, sorted."""
    if path.is_file():
        return [path]
    found = [
        p
        for p in path.rglob("*.txt")
        if p.is_file()
        and p.name not in ("classes.txt",)
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
    ]
    if not found:
        raise AnnotationFormatError(
            f"No YOLO label files (*.txt) found under '{path}'. Point at the labels folder "
            "or the dataset root, or pass format='coco'/'voc' for other layouts.",
            path=str(path),
        )
    return sorted(found, key=lambda p: p.relative_to(path).as_posix())


def _load_names(class_file: Path | None, root: Path) -> tuple[dict[int, str], list[Problem]]:
    """Read class names; a missing or unreadable file becomes a problem, not an error."""
    if class_file is None:
        message = (
            "no data.yaml, classes.txt or *.names found next to the labels or up to two "
            "folders above; classes are shown as numbers and class ids are not checked."
        )
        return {}, [Problem("no-class-names", str(root), None, message, "info")]
    try:
        names = read_class_names(class_file)
    except ClassNamesError as exc:
        message = f"cannot read class names: {exc}; classes are shown as numbers. Fix the file."
        return {}, [Problem("malformed-class-file", str(class_file), None, message, "warning")]
    return names, _check_count(class_file, names)


def _check_count(class_file: Path, names: dict[int, str]) -> list[Problem]:
    """Report ``nc:`` disagreeing with the number of names."""
    declared = read_declared_count(class_file)
    if declared is None or declared == len(names):
        return []
    message = (
        f"'nc: {declared}' but {len(names)} names are listed; class ids are checked "
        "against the names. Make 'nc' equal to the number of names."
    )
    return [Problem("malformed-class-file", str(class_file), None, message, "warning")]


def _keep_class_file(state: _Reading, class_file: Path | None) -> None:
    """Keep the class file's bytes when it lies under the root, so export copies it."""
    if class_file is not None and class_file.is_relative_to(state.root):
        rel = class_file.relative_to(state.root).as_posix()
        try:
            state.files[rel] = limits.read_label_file(class_file)
        except (OSError, limits.FileTooLargeError):
            pass  # _load_names reported it; an unreadable file cannot be copied


def _raise_if_nothing_read(state: _Reading, labels: list[Path], path: Path) -> None:
    """Raise when label files exist but not a single one could be read."""
    if state.annotation_files or not labels:
        return
    first = next((p for p in state.problems if p.kind == "malformed-file"), None)
    why = f" First problem: {first.message}" if first else ""
    raise AnnotationFormatError(
        f"None of the {len(labels)} .txt files under '{path}' is a readable YOLO label file.{why}",
        path=str(path),
    )


def _read_label_file(state: _Reading, label: Path) -> None:
    """Read one label file into ``state``: its image entry, annotations and problems."""
    rel = label.relative_to(state.root).as_posix()
    where = str(label)
    data = _read_bytes(state, label, where)
    if data is None:
        return
    state.files[rel] = data
    if _is_image_list(data):
        message = "looks like a list of image paths, not labels; copied unchanged."
        state.problems.append(Problem("skipped-file", where, None, message, "info"))
        return
    lines = _parse_lines(data, where, state.problems)
    state.annotation_files.append(rel)
    entry = _image_entry(state, label, rel, where, bool(lines))
    state.images[rel] = entry
    if entry.width is None or entry.height is None:
        return
    for line in lines:
        state.annotations.append(_to_annotation(line, entry, rel, where, state.names))


def _read_bytes(state: _Reading, label: Path, where: str) -> bytes | None:
    """Read a label file; report it as malformed when unreadable or binary."""
    try:
        data = limits.read_label_file(label)
    except OSError as exc:
        message = f"cannot read the file: {exc.strerror or exc}. Check its permissions."
        state.problems.append(Problem("malformed-file", where, None, message))
        return None
    except limits.FileTooLargeError as exc:
        state.problems.append(Problem("malformed-file", where, None, f"{exc}."))
        return None
    if b"\0" in data:
        rel = label.relative_to(state.root).as_posix()
        state.files[rel] = data
        message = "binary data in a .txt label file; it is copied unchanged. Remove or fix it."
        state.problems.append(Problem("malformed-file", where, None, message))
        return None
    return data


def _is_image_list(data: bytes) -> bool:
    """True when every non-empty line ends with an image extension (a train.txt list)."""
    lines = [line.strip().lower() for line in data.splitlines() if line.strip()]
    suffixes = tuple(e.encode() for e in IMAGE_EXTENSIONS)
    return bool(lines) and all(line.endswith(suffixes) for line in lines)


def _parse_lines(data: bytes, where: str, problems: list[Problem]) -> list[_Line]:
    """Parse every line; malformed ones become problems. Blank lines are skipped."""
    parsed: list[_Line] = []
    for index, raw in enumerate(data.splitlines()):
        if index == 0 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if not raw.strip():
            continue
        line, why = _parse_line(raw, index)
        if line is not None:
            parsed.append(line)
            continue
        message = (
            f"{why}; the line is kept in the file but not checked. Expected "
            "'class x_center y_center width height' (normalised 0-1). Fix or delete it."
        )
        problems.append(Problem("malformed-line", where, index + 1, message))
    return parsed


def _parse_line(raw: bytes, index: int) -> tuple[_Line | None, str]:
    """Parse one non-blank line, or return ``(None, why it is malformed)``."""
    try:
        tokens = raw.decode("utf-8").split()
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    count = len(tokens)
    if count not in (5, 6) and not (count >= 7 and count % 2 == 1):
        return None, f"{count} columns (expected 5, 6 with a confidence, or 1+2k polygon)"
    values = []
    for column, token in enumerate(tokens, start=1):
        try:
            values.append(float(token))
        except ValueError:
            return None, f"column {column} is {token!r}, not a number"
    class_id = values[0]
    if not class_id.is_integer() or class_id < 0:
        return None, f"class id {tokens[0]!r} is not a non-negative integer"
    box, extra = _box_and_extra(values[1:])
    return _Line(index, int(class_id), box, extra), ""


def _box_and_extra(
    values: list[float],
) -> tuple[tuple[float, float, float, float], dict[str, object]]:
    """Normalised ``(x0, y0, x1, y1)`` and extra fields from the numbers after the class."""
    if len(values) >= 6:
        xs, ys = values[0::2], values[1::2]
        return (min(xs), min(ys), max(xs), max(ys)), {"polygon": values}
    cx, cy, w, h = values[:4]
    extra: dict[str, object] = {"confidence": values[4]} if len(values) == 5 else {}
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), extra


def _image_entry(state: _Reading, label: Path, rel: str, where: str, needed: bool) -> ImageEntry:
    """Find and size the image of ``label``; report when its lines cannot be loaded."""
    found = state.locator.find_by_stem(_image_dirs(state, label, rel), label.stem)
    if found is None:
        if needed:
            state.problems.append(_missing_image(state, label, rel, where))
        return ImageEntry(rel, None, None, None, "")
    try:
        width, height, orientation = read_size(found)
    except OSError as exc:
        message = (
            f"cannot read the size of its image '{found}' ({exc}); its lines are kept in "
            "the file but not checked. Replace the image."
        )
        state.problems.append(Problem("unreadable-image", where, None, message))
        return ImageEntry(rel, str(found), None, None, found.name)
    if orientation in _ROTATED:
        width, height = height, width
    return ImageEntry(rel, str(found), width, height, found.name)


def _missing_image(state: _Reading, label: Path, rel: str, where: str) -> Problem:
    """Problem for a label file with lines but no image to convert them with."""
    folders = ", ".join(f"'{d}'" for d in _image_dirs(state, label, rel))
    message = (
        f"no image '{label.stem}.*' found in {folders}; its lines are kept in the file but "
        "not checked (YOLO boxes need the image size). Pass images_dir (CLI: --images DIR)."
    )
    return Problem("missing-image", where, None, message)


def _image_dirs(state: _Reading, label: Path, rel: str) -> list[Path]:
    """Folders that may hold the image of ``label``, most specific first, no repeats."""
    rel_dir = Path(rel).parent
    dirs: list[Path] = []
    if state.images_dir is not None:
        dirs += [state.images_dir / rel_dir, state.images_dir / _swap_labels(rel_dir)]
        dirs += [state.images_dir]
    dirs += [_swap_labels(label.parent), label.parent]
    return list(dict.fromkeys(dirs))


def _swap_labels(folder: Path) -> Path:
    """Replace the last ``labels`` component of ``folder`` by ``images`` (YOLO layout)."""
    parts = list(folder.parts)
    for n in range(len(parts) - 1, -1, -1):
        if parts[n] == "labels":
            parts[n] = "images"
            return Path(*parts)
    return folder


def _to_annotation(
    line: _Line, entry: ImageEntry, rel: str, where: str, names: dict[int, str]
) -> Annotation:
    """Scale a parsed line to pixels of its image."""
    w, h = float(entry.width or 0), float(entry.height or 0)
    x0, y0, x1, y1 = line.box
    box = (x0 * w, y0 * h, x1 * w, y1 * h)
    label = names.get(line.class_id, str(line.class_id))
    source = Source(where, line.index, line.index + 1)
    return Annotation(f"{rel}:{line.index + 1}", rel, label, box, source, line.class_id, line.extra)


def write_yolo(
    dataset: Dataset,
    drop: Mapping[str, Iterable[int]],
    classes: Mapping[str, Mapping[int, int | str]] | None = None,
) -> dict[str, bytes]:
    """Return every file of the dataset, with the given line indices removed.

    Args:
        dataset: A YOLO dataset from :func:`read_yolo`.
        drop: ``{relative label file: line indices (Source.index) to remove}``.
        classes: ``{relative label file: {line index: new class index}}`` (review).

    Returns:
        ``{relative path: bytes}`` for every file read (class files and untouched label
        files byte-identical).
    """
    out = dict(dataset.raw.files)
    classes = classes or {}
    for rel in set(drop) | set(classes):
        gone, changed = set(drop.get(rel, ())), classes.get(rel, {})
        if gone or changed:
            out[rel] = _drop_lines(out[rel], gone, changed)
    return out


_FIRST_TOKEN = re.compile(rb"^(\s*)\S+")


def _drop_lines(data: bytes, gone: set[int], classes: Mapping[int, int | str]) -> bytes:
    """Remove the lines at indices ``gone`` and give the lines in ``classes`` a new class
    (the first column; every other byte stays); a UTF-8 byte-order mark always stays."""
    bom = b"\xef\xbb\xbf" if data.startswith(b"\xef\xbb\xbf") else b""
    lines = data[len(bom) :].splitlines(keepends=True)
    kept = []
    for n, line in enumerate(lines):
        if n in gone:
            continue
        if n in classes:
            new = str(classes[n]).encode()
            line = _FIRST_TOKEN.sub(lambda m, new=new: m.group(1) + new, line, count=1)
        kept.append(line)
    return bom + b"".join(kept)
