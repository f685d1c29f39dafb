"""COCO instances JSON: read into a :class:`Dataset`, write back with annotations dropped.

Reading keeps the parsed document in ``Dataset.raw.document``; writing copies it, filters
``annotations`` by list position and serialises it with the original layout (indent,
separators, ASCII escaping, trailing newline). Every other key, at every level, is kept
as it was, and ids are never renumbered. When nothing is dropped the original bytes are
written back unchanged.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeGuard

from ..errors import AnnotationFormatError
from .imagefiles import ImageLocator
from .records import Annotation, Dataset, ImageEntry, ImageKey, Problem, RawFiles, Source

_CORE_KEYS = frozenset({"id", "image_id", "category_id", "bbox"})


def read_coco(path: Path, *, images_dir: Path | None = None) -> Dataset:
    """Read a COCO instances JSON file.

    Args:
        path: The JSON file.
        images_dir: Folder that ``file_name`` is relative to. When ``None``, the JSON's
            folder, its parent, and ``images/`` under either are tried, and for
            ``instances_<split>.json`` also ``<split>/`` and ``images/<split>/`` beside
            the JSON's folder (the official COCO layout).

    Returns:
        The dataset; unusable entries are left out and described in ``dataset.problems``.

    Raises:
        AnnotationFormatError: The file is not valid JSON or not a COCO document at all.
    """
    data = _read_bytes(path)
    doc = _parse_json(data, path)
    where = str(path)
    categories, problems = _read_categories(doc.get("categories", []), where)
    search = _image_dirs(path, images_dir)
    images, image_problems = _read_images(doc.get("images", []), where, search)
    annotations, ann_problems = _read_annotations(
        doc.get("annotations", []), where, images, categories
    )
    raw = RawFiles(
        root=path.parent, files={path.name: data}, document=doc, annotation_files=(path.name,)
    )
    return Dataset(
        format="coco",
        images=images,
        annotations=tuple(annotations),
        categories=categories,
        raw=raw,
        problems=tuple(problems + image_problems + ann_problems),
    )


def _read_bytes(path: Path) -> bytes:
    """Read the file or raise AnnotationFormatError saying why it cannot be read."""
    try:
        return path.read_bytes()
    except MemoryError as exc:
        raise AnnotationFormatError(
            f"Cannot read COCO file '{path}': not enough memory to load it. Free memory, or "
            "split the file into smaller ones.",
            path=str(path),
        ) from exc
    except OSError as exc:
        raise AnnotationFormatError(
            f"Cannot read COCO file '{path}': {exc.strerror or exc}. Check the path and "
            "its permissions.",
            path=str(path),
        ) from exc


def _parse_json(data: bytes, path: Path) -> dict[str, Any]:
    """Parse the document; raise AnnotationFormatError unless it is a COCO-like object."""
    try:
        doc = json.loads(data)
    except RecursionError as exc:
        raise AnnotationFormatError(
            f"Cannot read COCO file '{path}': arrays or objects nested too deeply (a COCO "
            "file needs a few levels; this one has about a thousand or more). Export it again "
            "from the labelling tool.",
            path=str(path),
        ) from exc
    except MemoryError as exc:
        raise AnnotationFormatError(
            f"Cannot read COCO file '{path}': not enough memory to parse its "
            f"{len(data) / 2**20:,.0f} MiB. Free memory, or split the file into smaller ones.",
            path=str(path),
        ) from exc
    except UnicodeDecodeError as exc:
        raise AnnotationFormatError(
            f"Cannot read COCO file '{path}': not UTF-8 text ({exc.reason} at byte "
            f"{exc.start}). Re-save it as UTF-8 JSON.",
            path=str(path),
        ) from exc
    except json.JSONDecodeError as exc:
        raise AnnotationFormatError(
            f"Cannot read COCO file '{path}': invalid JSON at line {exc.lineno}, column "
            f"{exc.colno} ({exc.msg}). Fix the file or export it again from the "
            "labelling tool.",
            path=str(path),
            line=exc.lineno,
        ) from exc
    except ValueError as exc:  # e.g. a number with more digits than int() accepts
        raise AnnotationFormatError(
            f"Cannot read COCO file '{path}': {str(exc).split(';')[0]}. Fix the file or "
            "export it again from the labelling tool.",
            path=str(path),
        ) from exc
    if not isinstance(doc, dict) or not ({"images", "annotations"} & doc.keys()):
        found = sorted(doc)[:5] if isinstance(doc, dict) else type(doc).__name__
        raise AnnotationFormatError(
            f"'{path}' is not a COCO instances file: expected a JSON object with "
            f"'images' and 'annotations', found {found!r}. Pass the instances JSON, or "
            "set format='yolo'/'voc' for other layouts.",
            path=str(path),
        )
    return doc


def _image_dirs(path: Path, images_dir: Path | None) -> list[Path]:
    """Folders where ``file_name`` is looked up, most specific first."""
    if images_dir is not None:
        return [images_dir]
    folder = path.absolute().parent
    dirs = [folder, folder / "images", folder.parent, folder.parent / "images"]
    split = path.stem.split("_", 1)[1] if path.stem.startswith("instances_") else ""
    if split:  # coco/annotations/instances_val2017.json -> coco/val2017/
        dirs += [folder.parent / split, folder.parent / "images" / split]
    return dirs


def _read_categories(items: Any, where: str) -> tuple[dict[int | str, str], list[Problem]]:
    """Map category id -> name; report entries that have no usable id or name."""
    categories: dict[int | str, str] = {}
    problems: list[Problem] = []
    for n, item in enumerate(_as_list(items, "categories", where, problems)):
        cid = item.get("id") if isinstance(item, dict) else None
        if not _is_id(cid):
            message = (
                f"category at categories[{n}] has no integer or string 'id'; annotations "
                "using it will be reported as unknown classes. Add an 'id'."
            )
            problems.append(
                Problem("malformed-category", where, f"categories[{n}]", message, "warning")
            )
            continue
        name = item.get("name")
        categories[cid] = str(name) if name is not None else str(cid)
    return categories, problems


def _read_images(
    items: Any, where: str, search: list[Path]
) -> tuple[dict[ImageKey, ImageEntry], list[Problem]]:
    """Read ``images`` into entries by id; report broken or repeated entries."""
    images: dict[ImageKey, ImageEntry] = {}
    problems: list[Problem] = []
    locator = ImageLocator()
    for n, item in enumerate(_as_list(items, "images", where, problems)):
        entry, problem = _read_image(item, n, where, search, locator)
        if entry is not None and entry.key in images:
            message = (
                f"image id {entry.key!r} at images[{n}] repeats an earlier image; only the "
                "first is used. Give every image a unique id."
            )
            problems.append(Problem("duplicate-image-id", where, entry.key, message))
            continue
        if problem is not None:
            problems.append(problem)
        if entry is not None:
            images[entry.key] = entry
    return images, problems


def _read_image(
    item: Any, n: int, where: str, search: list[Path], locator: ImageLocator
) -> tuple[ImageEntry | None, Problem | None]:
    """Read one ``images`` entry; return it (or None) and an optional problem."""
    key = item.get("id") if isinstance(item, dict) else None
    if not _is_id(key):
        message = (
            f"image at images[{n}] has no integer or string 'id'; annotations cannot refer "
            "to it. Add an 'id'."
        )
        return None, Problem("malformed-image", where, f"images[{n}]", message)
    name = item.get("file_name")
    width, height = _positive_int(item.get("width")), _positive_int(item.get("height"))
    found = locator.find_by_name(search, name) if isinstance(name, str) and name else None
    entry = ImageEntry(key, str(found) if found else None, width, height, str(name or ""))
    if width is None or height is None:
        message = (
            f"image id {key!r} has no valid positive 'width'/'height' ({item.get('width')!r}"
            f" x {item.get('height')!r}); its boxes cannot be checked against the image "
            "bounds. Fill in the real size."
        )
        return entry, Problem("malformed-image", where, key, message, "warning")
    if found is None:
        return entry, _missing_file(key, name, where, search)
    return entry, None


def _missing_file(key: ImageKey, name: Any, where: str, search: list[Path]) -> Problem:
    """Problem for an image entry whose file is not found in any search folder."""
    folders = ", ".join(f"'{d}'" for d in search)
    message = (
        f"image id {key!r}: file {name!r} not found in {folders}; its annotations are "
        "kept but its size cannot be checked. Pass images_dir (CLI: --images DIR)."
    )
    return Problem("missing-image-file", where, key, message, "warning")


def _read_annotations(
    items: Any,
    where: str,
    images: Mapping[ImageKey, ImageEntry],
    categories: Mapping[int | str, str],
) -> tuple[list[Annotation], list[Problem]]:
    """Read ``annotations``; leave out (and report) those that cannot be used."""
    annotations: list[Annotation] = []
    problems: list[Problem] = []
    seen: set[int | str] = set()
    for n, item in enumerate(_as_list(items, "annotations", where, problems)):
        ann, problem = _read_annotation(item, n, where, images, categories)
        if ann is not None and ann.id in seen:
            message = (
                f"annotation id {ann.id!r} at annotations[{n}] repeats an earlier id; it is "
                "kept in the file but not checked. Renumber the annotation ids."
            )
            problems.append(Problem("duplicate-id", where, ann.id, message))
            continue
        if problem is not None:
            problems.append(problem)
        if ann is not None:
            seen.add(ann.id)
            annotations.append(ann)
    return annotations, problems


def _read_annotation(
    item: Any,
    n: int,
    where: str,
    images: Mapping[ImageKey, ImageEntry],
    categories: Mapping[int | str, str],
) -> tuple[Annotation | None, Problem | None]:
    """Read one annotation, or return why it cannot be used."""
    at = f"annotations[{n}]"
    if not isinstance(item, dict):
        return None, _malformed(where, at, f"{at} is a {type(item).__name__}, not an object")
    aid = item.get("id")
    if not _is_id(aid):
        return None, _malformed(where, at, f"{at} has no integer or string 'id'")
    box = _xywh_to_box(item.get("bbox"))
    if box is None:
        what = f"annotation id {aid!r} has bbox {item.get('bbox')!r}, not [x, y, w, h] numbers"
        return None, _malformed(where, aid, what)
    image = item.get("image_id")
    if not _is_id(image) or image not in images:
        message = (
            f"annotation id {aid!r} refers to image_id {image!r}, which is not in 'images'; "
            "it is kept in the file but not checked. Add the image or delete the annotation."
        )
        return None, Problem("unknown-image", where, aid, message)
    cid = item.get("category_id")
    if not _is_id(cid):
        return None, _malformed(where, aid, f"annotation id {aid!r} has category_id {cid!r}")
    extra = {k: v for k, v in item.items() if k not in _CORE_KEYS}
    label = categories.get(cid, str(cid))
    return Annotation(aid, image, label, box, Source(where, n), cid, extra), None


def _xywh_to_box(bbox: Any) -> tuple[float, float, float, float] | None:
    """Convert ``[x, y, w, h]`` to ``(x0, y0, x1, y1)``; None unless four numbers."""
    if not isinstance(bbox, list | tuple) or len(bbox) != 4:
        return None
    if any(type(v) not in _NUMBER_TYPES for v in bbox) and not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in bbox
    ):
        return None
    try:
        x, y, w, h = map(float, bbox)
    except OverflowError:  # an integer too large for a float
        return None
    return (x, y, x + w, y + h)


_NUMBER_TYPES = (int, float)  # the fast path of _xywh_to_box (subclasses take the slow one)


def _as_list(items: Any, key: str, where: str, problems: list[Problem]) -> list[Any]:
    """Return ``items`` if it is a list; otherwise report it and return ``[]``."""
    if isinstance(items, list):
        return items
    message = (
        f"'{key}' is a {type(items).__name__}, not a list; nothing was read from it. "
        "Fix the file's structure."
    )
    problems.append(Problem("malformed-file", where, key, message))
    return []


def _is_id(value: Any) -> TypeGuard[int | str]:
    """True for values usable as COCO ids: int (not bool) or non-empty str."""
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, str) and value != ""
    )


def _positive_int(value: Any) -> int | None:
    """Return ``value`` as a positive int if it is a whole positive number, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
        return None
    return int(value) if value > 0 else None


def _malformed(where: str, at: int | str, what: str) -> Problem:
    """A ``malformed-annotation`` problem: the annotation is left out."""
    message = f"{what}; it is kept in the file but not checked. Fix or delete it."
    return Problem("malformed-annotation", where, at, message)


def write_coco(
    dataset: Dataset, drop: Iterable[int], classes: Mapping[int, Any] | None = None
) -> dict[str, bytes]:
    """Serialise the COCO document without the annotations at the positions in ``drop``.

    Args:
        dataset: A COCO dataset from :func:`read_coco`.
        drop: Positions in ``annotations`` (``Source.index``) to leave out.
        classes: New ``category_id`` by position, for classes changed in review.

    Returns:
        ``{relative file name: new bytes}`` for the single JSON file.
    """
    name = dataset.raw.annotation_files[0]
    original = dataset.raw.files[name]
    positions, classes = set(drop), classes or {}
    if not positions and not classes:
        return {name: original}
    doc = dict(dataset.raw.document)
    doc["annotations"] = [
        {**a, "category_id": classes[n]} if n in classes else a
        for n, a in enumerate(doc["annotations"])
        if n not in positions
    ]
    return {name: _dump_like(doc, original)}


def _dump_like(doc: Any, original: bytes) -> bytes:
    """Serialise ``doc`` with the layout of ``original`` (indent, separators, escaping)."""
    text = original.decode("utf-8", errors="replace")
    indent = _detect_indent(text)
    compact = indent is None and re.search(r'"\s*:\s', text[:4096]) is None
    out = json.dumps(
        doc,
        indent=indent,
        separators=(",", ":") if compact else None,
        ensure_ascii=original.isascii(),
    )
    if text.endswith("\n"):
        out += "\n"
    return out.encode("utf-8")


def _detect_indent(text: str) -> int | str | None:
    """Return the indentation of the first indented line, or None for one-line JSON."""
    match = re.match(r"\s*[\[{]\s*?\n([ \t]+)\S", text)
    if match is None:
        return None
    unit = match.group(1)
    return unit if "\t" in unit else len(unit)
