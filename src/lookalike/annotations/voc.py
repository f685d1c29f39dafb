"""Pascal VOC XML: read into a :class:`Dataset`, write back with ``<object>`` elements dropped.

One ``.xml`` per image: ``<annotation>`` with ``<filename>``, ``<size>`` and one
``<object>`` (``<name>``, ``<bndbox>`` with ``xmin ymin xmax ymax``) per box. Boxes are
taken as written (VOC's 1-based pixel coordinates are not shifted).

Writing works on the original bytes: the byte span of every top-level ``<object>``
element is found with expat, and only the spans of removed objects are cut (together
with their indentation and line break when the element sits on lines of its own).
Declaration, comments, attribute order and formatting of everything else are unchanged.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from xml.parsers import expat
from xml.sax.saxutils import escape

from ..errors import AnnotationFormatError, LookalikeError
from . import limits
from .imagefiles import ImageLocator, read_size
from .records import Annotation, Box, Dataset, ImageEntry, ImageKey, Problem, RawFiles, Source

_COORDS = ("xmin", "ymin", "xmax", "ymax")


@dataclass(frozen=True)
class Span:
    """Byte range ``[start, end)`` of one top-level ``<object>`` and its first line.

    ``name`` is the byte range of the text of its own ``<name>`` child (``None`` if none).
    """

    start: int
    end: int
    line: int
    name: tuple[int, int] | None = None


@dataclass
class _Reading:
    """Mutable state while reading one VOC dataset."""

    root: Path
    images_dir: Path | None
    locator: ImageLocator
    files: dict[str, bytes]
    images: dict[ImageKey, ImageEntry]
    annotations: list[Annotation]
    problems: list[Problem]
    annotation_files: list[str]


def read_voc(path: Path, *, images_dir: Path | None = None) -> Dataset:
    """Read a folder of Pascal VOC XML files (or a single XML file).

    Args:
        path: The ``Annotations`` folder (or any folder holding the XML files), or one file.
        images_dir: Folder holding the images; by default ``JPEGImages`` next to the XML
            folder, a parallel ``images`` folder and the XML folder itself are tried.

    Returns:
        The dataset; files and objects that cannot be used are described in
        ``dataset.problems`` and left untouched on export.

    Raises:
        AnnotationFormatError: No XML file was found, or none could be parsed.
    """
    root = path if path.is_dir() else path.parent
    xml_files = _xml_files(path)
    state = _Reading(root, images_dir, ImageLocator(), {}, {}, [], [], [])
    for xml in xml_files:
        _read_xml_file(state, xml)
    if not state.annotation_files:
        first = state.problems[0].message if state.problems else ""
        raise AnnotationFormatError(
            f"None of the {len(xml_files)} .xml files under '{path}' is a readable Pascal "
            f"VOC file. First problem: {first}",
            path=str(path),
        )
    labels = sorted({a.label for a in state.annotations})
    raw = RawFiles(root, state.files, None, tuple(state.annotation_files))
    problems = tuple(state.problems)
    categories: dict[int | str, str] = {name: name for name in labels}
    return Dataset("voc", state.images, tuple(state.annotations), categories, raw, problems)


def _xml_files(path: Path) -> list[Path]:
    """Every non-hidden ``.xml`` under ``path`` (or ``path`` itself), sorted."""
    if path.is_file():
        return [path]
    found = [
        p
        for p in path.rglob("*.xml")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    ]
    if not found:
        raise AnnotationFormatError(
            f"No Pascal VOC files (*.xml) found under '{path}'. Point at the Annotations "
            "folder, or pass format='coco'/'yolo' for other layouts.",
            path=str(path),
        )
    return sorted(found, key=lambda p: p.relative_to(path).as_posix())


def _read_xml_file(state: _Reading, xml: Path) -> None:
    """Read one XML file into ``state``: its image entry, annotations and problems."""
    rel = xml.relative_to(state.root).as_posix()
    where = str(xml)
    parsed = _parse(state, xml, rel, where)
    if parsed is None:
        return
    tree, spans = parsed
    state.annotation_files.append(rel)
    entry = _image_entry(state, tree, xml, rel, where)
    state.images[rel] = entry
    for index, (element, span) in enumerate(zip(tree.findall("object"), spans, strict=True)):
        ann = _read_object(element, index, span, entry, where, state.problems)
        if ann is not None:
            state.annotations.append(ann)


def _parse(
    state: _Reading, xml: Path, rel: str, where: str
) -> tuple[ET.Element, list[Span]] | None:
    """Read and parse one file; report and return None when it is not usable VOC."""
    try:
        data = limits.read_label_file(xml)
    except OSError as exc:
        message = f"cannot read the file: {exc.strerror or exc}. Check its permissions."
        state.problems.append(Problem("malformed-file", where, None, message))
        return None
    except limits.FileTooLargeError as exc:
        state.problems.append(Problem("malformed-file", where, None, f"{exc}."))
        return None
    state.files[rel] = data
    try:
        spans = object_spans(data)  # first: it refuses entities and deep nesting
        tree = ET.fromstring(data)
    except RefusedXMLError as exc:
        message = f"{exc}; the file is copied unchanged. Fix or re-export it."
        state.problems.append(Problem("malformed-file", where, exc.line, message))
        return None
    except (ET.ParseError, expat.ExpatError) as exc:
        line = getattr(exc, "position", (getattr(exc, "lineno", None),))[0]
        message = f"invalid XML ({exc}); the file is copied unchanged. Fix or re-export it."
        state.problems.append(Problem("malformed-file", where, line, message))
        return None
    if tree.tag != "annotation":
        message = (
            f"root element is <{tree.tag}>, not <annotation>; not a Pascal VOC file, copied "
            "unchanged. Remove it from the folder or pass the right format."
        )
        state.problems.append(Problem("malformed-file", where, None, message))
        return None
    return tree, spans


class RefusedXMLError(ValueError):
    """Well-formed XML that no VOC file looks like and that could exhaust memory or stack."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def object_spans(data: bytes) -> list[Span]:
    """Byte spans of the ``<object>`` children of the root element, in document order.

    Raises:
        xml.parsers.expat.ExpatError: ``data`` is not well-formed XML.
        RefusedXMLError: ``data`` declares entities (which can expand to gigabytes) or
            nests elements deeper than :data:`~.limits.MAX_XML_DEPTH`.
    """
    parser = expat.ParserCreate()
    depth = 0
    opened: list[tuple[int, int]] = []
    spans: list[Span] = []
    name: list[int] = []  # start of the current object's <name> text, then its end

    def entity(name: str, *args: object) -> None:
        raise RefusedXMLError(
            f"declares the entity {name!r} (<!ENTITY>), which Pascal VOC files never do; "
            "refused so that entity expansion cannot exhaust memory",
            parser.CurrentLineNumber,
        )

    def start(tag: str, attrs: object) -> None:
        nonlocal depth
        depth += 1
        if depth > limits.MAX_XML_DEPTH:
            raise RefusedXMLError(
                f"elements nested more than {limits.MAX_XML_DEPTH} deep (VOC needs 4)",
                parser.CurrentLineNumber,
            )
        if depth == 2 and tag == "object":
            opened.append((parser.CurrentByteIndex, parser.CurrentLineNumber))
            name.clear()
        elif depth == 3 and tag == "name" and opened and not name:
            name.append(data.index(b">", parser.CurrentByteIndex) + 1)

    def end(tag: str) -> None:
        nonlocal depth
        if depth == 3 and tag == "name" and len(name) == 1:
            name.append(parser.CurrentByteIndex)
        if depth == 2 and tag == "object":
            begin, line = opened.pop()
            text = (name[0], name[1]) if len(name) == 2 else None
            spans.append(Span(begin, _element_end(data, parser.CurrentByteIndex), line, text))
        depth -= 1

    parser.EntityDeclHandler = entity
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.Parse(data, True)
    return spans


def _element_end(data: bytes, index: int) -> int:
    """End of an ``<object>`` element given expat's index at its end event.

    For ``</object>`` expat points at the ``<`` of the closing tag; for an empty
    ``<object/>`` it points just past the ``/>``.
    """
    if data.startswith(b"</object", index):
        return data.index(b">", index) + 1
    return index


def _image_entry(state: _Reading, tree: ET.Element, xml: Path, rel: str, where: str) -> ImageEntry:
    """Image entry from ``<filename>``/``<size>``, looking the file up on disk."""
    name = (tree.findtext("filename") or "").strip()
    width, height = _size(tree, "width"), _size(tree, "height")
    dirs = _image_dirs(state, xml, rel)
    found = state.locator.find_by_name(dirs, name) if name else None
    found = found or state.locator.find_by_stem(dirs, Path(name).stem if name else xml.stem)
    if found is None:
        folders = ", ".join(f"'{d}'" for d in dirs)
        message = (
            f"image {name or xml.stem!r} not found in {folders}; its boxes are kept but the "
            "image size is not checked. Pass images_dir (CLI: --images DIR)."
        )
        state.problems.append(Problem("missing-image-file", where, None, message, "warning"))
    if (width is None or height is None) and found is not None:
        width, height = _header_size(found)
    if width is None or height is None:
        message = (
            "no valid <size><width>/<height>; boxes cannot be checked against the image "
            "bounds. Fill in the size."
        )
        state.problems.append(Problem("malformed-image", where, None, message, "warning"))
    return ImageEntry(rel, str(found) if found else None, width, height, name)


def _size(tree: ET.Element, tag: str) -> int | None:
    """Positive integer ``<size><tag>``, or None when absent, zero or not a number."""
    text = tree.findtext(f"size/{tag}")
    try:
        value = float(text) if text is not None else 0.0
    except ValueError:
        return None
    return int(value) if value > 0 and value.is_integer() else None


def _header_size(path: Path) -> tuple[int | None, int | None]:
    """Image size from the file header, or ``(None, None)`` when unreadable."""
    try:
        width, height, _ = read_size(path)
    except OSError:
        return None, None
    return width, height


def _image_dirs(state: _Reading, xml: Path, rel: str) -> list[Path]:
    """Folders that may hold the image of ``xml``, most specific first, no repeats."""
    dirs: list[Path] = []
    if state.images_dir is not None:
        dirs += [state.images_dir / Path(rel).parent, state.images_dir]
    folder = xml.parent
    dirs += [folder.parent / "JPEGImages", _swap(folder, "Annotations", "JPEGImages")]
    dirs += [_swap(folder, "labels", "images"), folder.parent / "images", folder]
    return list(dict.fromkeys(dirs))


def _swap(folder: Path, old: str, new: str) -> Path:
    """Replace the last ``old`` component of ``folder`` by ``new``."""
    parts = list(folder.parts)
    for n in range(len(parts) - 1, -1, -1):
        if parts[n] == old:
            parts[n] = new
            return Path(*parts)
    return folder


def _read_object(
    element: ET.Element,
    index: int,
    span: Span,
    entry: ImageEntry,
    where: str,
    problems: list[Problem],
) -> Annotation | None:
    """Read one ``<object>``; report it and return None when it cannot be used."""
    name = (element.findtext("name") or "").strip()
    box, why = _bndbox(element)
    if not name:
        why = "has no <name>"
    if box is None or why:
        message = (
            f"<object> #{index + 1} (line {span.line}) {why}; it is kept in the file but "
            "not checked. Fix or delete it."
        )
        problems.append(Problem("malformed-annotation", where, span.line, message))
        return None
    extra = {
        child.tag: (child.text or "").strip() if len(child) == 0 else ET.tostring(child, "unicode")
        for child in element
        if child.tag not in ("name", "bndbox")
    }
    source = Source(where, index, span.line)
    return Annotation(f"{entry.key}#{index + 1}", entry.key, name, box, source, name, extra)


def _bndbox(element: ET.Element) -> tuple[Box | None, str]:
    """Return the ``<bndbox>`` as a box, or ``(None, why not)``."""
    bndbox = element.find("bndbox")
    if bndbox is None:
        return None, "has no <bndbox>"
    values = []
    for tag in _COORDS:
        text = bndbox.findtext(tag)
        if text is None:
            return None, f"has no <{tag}> in <bndbox>"
        try:
            values.append(float(text))
        except ValueError:
            return None, f"has <{tag}>{text.strip()}</{tag}>, not a number"
    x0, y0, x1, y1 = values
    return (x0, y0, x1, y1), ""


def write_voc(
    dataset: Dataset,
    drop: Mapping[str, Iterable[int]],
    classes: Mapping[str, Mapping[int, int | str]] | None = None,
) -> dict[str, bytes]:
    """Return every file of the dataset with the given ``<object>`` elements cut out.

    Args:
        dataset: A VOC dataset from :func:`read_voc`.
        drop: ``{relative XML file: object positions (Source.index) to remove}``.
        classes: ``{relative XML file: {object position: new <name>}}`` (review).

    Returns:
        ``{relative path: bytes}`` for every file read.

    Raises:
        LookalikeError: A file no longer has the objects it had when it was read.
    """
    out = dict(dataset.raw.files)
    classes = classes or {}
    for rel in set(drop) | set(classes):
        gone, names = sorted(set(drop.get(rel, ()))), classes.get(rel, {})
        if gone or names:
            out[rel] = _cut_objects(out[rel], gone, names, rel)
    return out


def _cut_objects(data: bytes, gone: list[int], names: Mapping[int, int | str], rel: str) -> bytes:
    """Remove the objects at positions ``gone`` and rename those in ``names``."""
    spans = object_spans(data)
    wanted = max([*gone, *names], default=-1)
    if wanted >= len(spans):
        raise LookalikeError(
            f"'{rel}' has {len(spans)} <object> elements, but object #{wanted + 1} was to "
            "be changed; the input changed after loading. Load it again and re-run."
        )
    edits = [(*_whole_lines(data, spans[index]), b"") for index in gone]
    for index, new in names.items():
        where = spans[index].name
        if where is not None and index not in gone:
            edits.append((*where, escape(str(new)).encode("utf-8")))
    pieces, cursor = [], 0
    for start, end, text in sorted(edits):
        pieces += [data[cursor:start], text]
        cursor = end
    pieces.append(data[cursor:])
    return b"".join(pieces)


def _whole_lines(data: bytes, span: Span) -> tuple[int, int]:
    """Widen ``span`` to its full lines when nothing else shares them."""
    start, end = span.start, span.end
    while start > 0 and data[start - 1 : start] in (b" ", b"\t"):
        start -= 1
    after = end
    while after < len(data) and data[after : after + 1] in (b" ", b"\t"):
        after += 1
    at_line_start = start == 0 or data[start - 1 : start] in (b"\n", b"\r")
    newline = b"\r\n" if data.startswith(b"\r\n", after) else data[after : after + 1]
    if at_line_start and newline in (b"\r\n", b"\n", b"\r"):
        return start, after + len(newline)
    return span.start, span.end
