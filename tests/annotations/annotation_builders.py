"""Small deterministic builders for annotation test fixtures (COCO, YOLO, VOC on disk)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

CATEGORIES = [
    {"id": 1, "name": "person", "supercategory": "human"},
    {"id": 2, "name": "dog", "supercategory": "animal", "keypoints": []},
    {"id": 3, "name": "cup", "supercategory": "thing"},
]


def make_image(path: Path, size: tuple[int, int] = (64, 48), *, orientation: int = 1) -> Path:
    """Write a small two-colour image; ``orientation`` sets the EXIF tag (JPEG only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    image = Image.new("RGB", size, (30, 90, 150))
    image.paste((200, 120, 40), (w // 4, h // 4, w // 2, h // 2))
    if path.suffix.lower() in (".jpg", ".jpeg"):
        exif = Image.Exif()
        if orientation != 1:
            exif[0x0112] = orientation
        image.save(path, quality=90, exif=exif.tobytes())
    else:
        image.save(path)
    return path


def coco_annotation(aid: int, image_id: int, category: int, box: list[float], **extra: Any) -> dict:
    """A COCO annotation from ``[x, y, w, h]``."""
    item = {"id": aid, "image_id": image_id, "category_id": category, "bbox": box}
    item.update(extra)
    return item


def write_coco(
    folder: Path,
    annotations: list[dict],
    *,
    images: list[dict] | None = None,
    categories: list[dict] | None = None,
    indent: int | None = 2,
    name: str = "instances.json",
    make_images: bool = True,
    **top: Any,
) -> Path:
    """Write a COCO file (and its images) into ``folder``; return the JSON path."""
    folder.mkdir(parents=True, exist_ok=True)
    if images is None:
        images = [{"id": 1, "file_name": "a.jpg", "width": 320, "height": 240}]
    if make_images:
        for image in images:
            if isinstance(image.get("file_name"), str) and image.get("width"):
                make_image(folder / image["file_name"], (image["width"], image["height"]))
    doc: dict[str, Any] = {"info": {"description": "test", "version": "1.0"}, "licenses": []}
    doc.update(top)
    doc.update(images=images, annotations=annotations)
    doc["categories"] = CATEGORIES if categories is None else categories
    path = folder / name
    path.write_text(json.dumps(doc, indent=indent) + "\n", encoding="utf-8")
    return path


def yolo_line(cls: int, box: tuple[float, float, float, float], size: tuple[int, int]) -> str:
    """A YOLO line for pixel ``box`` in an image of ``size``."""
    w, h = size
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2 / w, (y0 + y1) / 2 / h
    return f"{cls} {cx:.6f} {cy:.6f} {(x1 - x0) / w:.6f} {(y1 - y0) / h:.6f}"


def write_yolo(
    root: Path,
    labels: dict[str, str],
    *,
    size: tuple[int, int] = (320, 240),
    names: list[str] | None = ("person", "dog", "cup"),  # type: ignore[assignment]
    layout: str = "parallel",
) -> Path:
    """Write a YOLO dataset: ``labels`` maps a stem (may include folders) to file text.

    ``layout="parallel"`` puts ``root/images/<stem>.jpg`` beside ``root/labels/<stem>.txt``
    and ``root/data.yaml``; ``layout="flat"`` puts images and labels together in ``root``
    with a ``classes.txt``. Returns the folder to load.
    """
    for stem, text in labels.items():
        if layout == "parallel":
            label = root / "labels" / f"{stem}.txt"
            image = root / "images" / f"{stem}.jpg"
        else:
            label, image = root / f"{stem}.txt", root / f"{stem}.jpg"
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_bytes(text.encode("utf-8"))
        make_image(image, size)
    if names is not None and layout == "parallel":
        listed = ", ".join(f"'{n}'" for n in names)
        (root / "data.yaml").write_text(
            f"path: .\ntrain: images\nval: images\nnc: {len(names)}\nnames: [{listed}]\n"
        )
    elif names is not None:
        (root / "classes.txt").write_text("\n".join(names) + "\n")
    return root / "labels" if layout == "parallel" else root


def voc_xml(
    filename: str,
    size: tuple[int, int] | None,
    objects: list[tuple[str, tuple[float, float, float, float]]],
    *,
    comment: bool = True,
) -> str:
    """A Pascal VOC document with a comment, source block and one object per entry."""
    parts = ['<?xml version="1.0" encoding="utf-8"?>', "<annotation>"]
    if comment:
        parts.append("\t<!-- exported by a labelling tool -->")
    parts += ["\t<folder>JPEGImages</folder>", f"\t<filename>{filename}</filename>"]
    parts += ["\t<source><database>Unit test</database></source>"]
    if size is not None:
        parts += [
            "\t<size>",
            f"\t\t<width>{size[0]}</width>",
            f"\t\t<height>{size[1]}</height>",
            "\t\t<depth>3</depth>",
            "\t</size>",
        ]
    parts.append("\t<segmented>0</segmented>")
    for name, (x0, y0, x1, y1) in objects:
        parts += [
            "\t<object>",
            f"\t\t<name>{name}</name>",
            "\t\t<pose>Unspecified</pose>",
            "\t\t<truncated>0</truncated>",
            "\t\t<difficult>0</difficult>",
            "\t\t<bndbox>",
            f"\t\t\t<xmin>{x0:g}</xmin>",
            f"\t\t\t<ymin>{y0:g}</ymin>",
            f"\t\t\t<xmax>{x1:g}</xmax>",
            f"\t\t\t<ymax>{y1:g}</ymax>",
            "\t\t</bndbox>",
            "\t</object>",
        ]
    parts.append("</annotation>")
    return "\n".join(parts) + "\n"


def write_voc(
    root: Path,
    files: dict[str, list[tuple[str, tuple[float, float, float, float]]]],
    *,
    size: tuple[int, int] = (320, 240),
) -> Path:
    """Write ``root/Annotations/<stem>.xml`` and ``root/JPEGImages/<stem>.jpg``."""
    for stem, objects in files.items():
        xml = root / "Annotations" / f"{stem}.xml"
        xml.parent.mkdir(parents=True, exist_ok=True)
        xml.write_text(voc_xml(f"{stem}.jpg", size, objects), encoding="utf-8")
        make_image(root / "JPEGImages" / f"{stem}.jpg", size)
    return root / "Annotations"


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path, for before/after comparisons."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def memory_dataset(objects: list[tuple[str, tuple[float, float, float, float]]], *, image: int = 1):
    """A COCO-like Dataset built in memory (no files): one image, objects in order."""
    return datasets_in_memory({image: objects})


def datasets_in_memory(by_image: dict[int, list[tuple[str, tuple[float, float, float, float]]]]):
    """A COCO-like Dataset built in memory: ``{image id: [(label, box), ...]}``."""
    from lookalike.annotations import Annotation, Dataset, ImageEntry, RawFiles, Source

    images = {key: ImageEntry(key, None, 1000, 1000, f"{key}.jpg") for key in by_image}
    annotations = []
    for key, objects in by_image.items():
        for label, box in objects:
            n = len(annotations)
            source = Source("memory.json", n)
            annotations.append(Annotation(n + 1, key, label, tuple(map(float, box)), source, label))
    labels = sorted({a.label for a in annotations})
    raw = RawFiles(Path("."), {})
    return Dataset("coco", images, tuple(annotations), {lb: lb for lb in labels}, raw)
