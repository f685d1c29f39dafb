"""Frozen records for annotated objects: datasets, problems, duplicate pairs, plans.

Every reader (COCO, YOLO, Pascal VOC) normalises its input into these records, so
validation, duplicate search, cleanup and export never look at a format again except
through :class:`RawFiles`, which keeps the original bytes needed to write the input
back with only the removed annotations dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

Format = Literal["coco", "yolo", "voc"]
FORMATS: tuple[str, ...] = ("coco", "yolo", "voc")

Box = tuple[float, float, float, float]
"""``(x0, y0, x1, y1)`` in absolute pixels of the image, x0 < x1 and y0 < y1 when valid."""

ImageKey = int | str
"""COCO image id, or the label/XML file path relative to the dataset root (YOLO, VOC)."""

Severity = Literal["error", "warning", "info"]
KeepRule = Literal["first", "largest", "smallest"]
KEEP_RULES: tuple[str, ...] = ("first", "largest", "smallest")


@dataclass(frozen=True)
class Source:
    """Where one annotation was read from.

    Attributes:
        file: The annotation file, as a path string built from what the user passed.
        index: Position inside that file: the index in COCO ``annotations``, the 0-based
            line index of a YOLO file, or the index of the ``<object>`` in a VOC file.
        line: 1-based line number when the format has lines (YOLO), else ``None``.
    """

    file: str
    index: int
    line: int | None = None

    def __str__(self) -> str:
        """``file:line`` when the format has lines, else ``file#index``."""
        if self.line is not None:
            return f"{self.file}:{self.line}"
        return f"{self.file}#{self.index}"


@dataclass(frozen=True)
class ImageEntry:
    """One image the annotations refer to.

    Attributes:
        key: COCO image id, or the annotation file path relative to the root (YOLO, VOC).
        path: The image file on disk, or ``None`` when it could not be found.
        width: Width in pixels as declared (COCO, VOC) or read from the file (YOLO).
        height: Height in pixels, same rules as ``width``.
        name: The image name as written in the annotations (``file_name``, ``<filename>``).
    """

    key: ImageKey
    path: str | None
    width: int | None
    height: int | None
    name: str = ""


@dataclass(frozen=True)
class Annotation:
    """One annotated object, normalised.

    Attributes:
        id: COCO annotation id, ``"<file>:<line>"`` (YOLO) or ``"<file>#<n>"`` (VOC).
        image: Key of the :class:`ImageEntry` the box belongs to.
        label: Class name (the category id as text when no name is known).
        box: ``(x0, y0, x1, y1)`` in absolute pixels.
        source: Where the annotation came from.
        category: The class as the format identifies it: COCO ``category_id``, YOLO class
            index, VOC ``<name>``. Duplicate search compares this.
        extra: Untouched fields (COCO keys other than id/image_id/category_id/bbox, VOC
            child elements as text, YOLO extra columns). Not part of equality.
    """

    id: int | str
    image: ImageKey
    label: str
    box: Box
    source: Source
    category: int | str = ""
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def area(self) -> float:
        """Box area in square pixels (0 for inverted boxes, NaN propagates)."""
        x0, y0, x1, y1 = self.box
        return max(x1 - x0, 0.0) * max(y1 - y0, 0.0)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, with where it is and what to do about it.

    Attributes:
        kind: Short machine name, e.g. ``"box-outside-image"`` (see :mod:`.validation`).
        path: The file concerned (annotation file, or the image file for image checks).
        line_or_id: Line number, annotation id or element position; ``None`` for a whole file.
        message: One sentence saying what is wrong, which item, and what to do next.
        severity: ``"error"`` (item unusable or certainly wrong), ``"warning"`` (suspicious,
            kept), ``"info"`` (noted, nothing wrong with the data).
    """

    kind: str
    path: str
    line_or_id: int | str | None
    message: str
    severity: Severity = "error"


@dataclass(frozen=True)
class RawFiles:
    """The original input, kept so the cleaned output can preserve everything else.

    Attributes:
        root: Directory that ``files`` keys are relative to.
        files: Original bytes of every annotation or class file read, by relative path.
        document: The parsed COCO JSON document (``None`` for YOLO and VOC).
        annotation_files: Relative paths of the files that hold annotations, in reading
            order; other entries of ``files`` (class lists, ``data.yaml``) are copied as is.
    """

    root: Path
    files: Mapping[str, bytes]
    document: Any = None
    annotation_files: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded annotation set.

    Attributes:
        format: ``"coco"``, ``"yolo"`` or ``"voc"``.
        images: Image entries by key, in reading order.
        annotations: Every usable annotation, in reading order (file order, then line or
            list order); this order defines ``keep="first"``.
        categories: Class id (COCO/YOLO) or name (VOC) -> class name.
        raw: The original files, for writing the input back.
        problems: Problems found while reading (malformed files, lines, unknown images);
            :func:`~lookalike.annotations.validate` returns these plus its own.
    """

    format: Format
    images: Mapping[ImageKey, ImageEntry]
    annotations: tuple[Annotation, ...]
    categories: Mapping[int | str, str]
    raw: RawFiles
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class BoxPair:
    """Two boxes of the same image that cover (nearly) the same region.

    Attributes:
        kind: ``"duplicate"`` (same class) or ``"label-conflict"`` (different classes).
        a: The annotation that comes first in reading order.
        b: The other annotation.
        iou: Intersection over union.
        containment: Intersection over the smaller box's area.
        area_ratio: Smaller area over larger area.
        rule: Which rule matched: ``"iou"``, or ``"containment"`` when only the
            near-containment rule did.
    """

    kind: Literal["duplicate", "label-conflict"]
    a: Annotation
    b: Annotation
    iou: float
    containment: float
    area_ratio: float
    rule: Literal["iou", "containment"] = "iou"

    @property
    def image(self) -> ImageKey:
        """Key of the image both boxes belong to."""
        return self.a.image


@dataclass(frozen=True)
class Removal:
    """One annotation the cleanup plan drops, and the kept box it duplicates."""

    annotation: Annotation
    kept: Annotation
    iou: float
    containment: float
    reason: str


@dataclass(frozen=True)
class CleanupPlan:
    """What to drop and what to leave for a person to decide.

    Attributes:
        keep: The keep rule used (``"first"``, ``"largest"`` or ``"smallest"``).
        removals: Annotations to drop, each with its kept counterpart, in reading order.
        duplicate_sets: Ids of the boxes linked by duplicate pairs, one tuple per set.
        review: Label-conflict pairs; never removed automatically.
    """

    keep: KeepRule
    removals: tuple[Removal, ...]
    duplicate_sets: tuple[tuple[int | str, ...], ...]
    review: tuple[BoxPair, ...] = ()

    @property
    def removed_ids(self) -> frozenset[int | str]:
        """Ids of every annotation the plan drops."""
        return frozenset(r.annotation.id for r in self.removals)


@dataclass(frozen=True)
class WrittenFile:
    """One output file of :func:`~lookalike.annotations.write_cleaned`.

    Attributes:
        source: The input file it derives from (``""`` for the decision logs).
        destination: Where it is (or, in a dry run, would be) written.
        removed: Number of annotations dropped from it.
        action: ``"rewrite"`` (content changed), ``"copy"`` (identical bytes) or ``"log"``.
        backup: Where the original was copied before an in-place rewrite, else ``None``.
    """

    source: str
    destination: str
    removed: int
    action: Literal["rewrite", "copy", "log"]
    backup: str | None = None


@dataclass(frozen=True)
class WriteResult:
    """What :func:`~lookalike.annotations.write_cleaned` did, or would do in a dry run."""

    dry_run: bool
    files: tuple[WrittenFile, ...]

    @property
    def removed(self) -> int:
        """Total number of annotations dropped."""
        return sum(f.removed for f in self.files)


class ObjectCrop(NamedTuple):
    """An annotated object as a crop of its image: ``(annotation, image_path, box)``.

    ``box`` is ``(left, top, right, bottom)`` in integer pixels clipped to the image, ready
    for ``PIL.Image.crop``.
    """

    annotation: Annotation
    image_path: str
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class Conflict:
    """A box of one image that its near-duplicate image annotates differently.

    Attributes:
        kind: Always ``"cross-image-conflict"``.
        reason: ``"missing"`` (no box of the same class with IoU >= the threshold in the
            other image) or ``"label-mismatch"`` (a matching box with another class).
        image: Path of the image holding ``annotation``.
        other_image: Path of its near-duplicate.
        annotation: The box in ``image``.
        counterpart: The best-overlapping box of ``other_image`` (``None`` if none overlaps).
        iou: IoU with the counterpart after scaling to a common size (0 if none).
        expected_box: ``annotation``'s box mapped into ``other_image``'s pixels (scaled,
            and mirrored for a mirror-image pair): where the box should be there.
    """

    kind: Literal["cross-image-conflict"]
    reason: Literal["missing", "label-mismatch"]
    image: str
    other_image: str
    annotation: Annotation
    counterpart: Annotation | None
    iou: float
    expected_box: Box | None = None


CropStatus = Literal[
    "featured", "missing-image-file", "invalid-box", "box-too-small", "image-unreadable",
    "image-size-mismatch", "flat-crop", "plain-crop",
]  # fmt: skip
"""What happened to an annotation's crop: ``featured``, or why it was left out.

``missing-image-file`` / ``invalid-box``: :func:`~lookalike.annotations.validate` reports
the details; ``box-too-small``: the short side is under the minimum even at full resolution;
``image-unreadable``: the image cannot be decoded; ``image-size-mismatch``: the image's
shape differs from the size the annotations declare (so boxes cannot be placed);
``flat-crop``: a uniform patch, which matches anything and so nothing; ``plain-crop``: a
plain shape whose middle is uniform (any two of one outline look alike in grayscale)."""


@dataclass(frozen=True)
class CropSkip:
    """An annotation whose crop was not compared with others, and why.

    Attributes:
        annotation: The annotation left out.
        image: Its image file (``""`` when not found).
        reason: A :data:`CropStatus` other than ``"featured"``.
        detail: One sentence with the values behind the reason.
    """

    annotation: Annotation
    image: str
    reason: CropStatus
    detail: str = ""


ObjectRelation = Literal["different-image", "same-image", "near-duplicate-image"]
"""Where a repeated object's member sits relative to the group's representative: in another
picture (the finding), in the same image, or in a near-duplicate copy of the image (an
expected repeat, not noise)."""


@dataclass(frozen=True)
class ObjectMember:
    """One box of an object group, verified against the group's representative.

    Attributes:
        annotation: The annotation.
        image: Its image file.
        box: The crop box in integer pixels of the upright image (``left, top, right,
            bottom``).
        score: Similarity to the representative's crop, in [0, 1].
        evidence: How the match was verified (``method``, ``mad``, ``changed``...).
        relation: A :data:`ObjectRelation`.
    """

    annotation: Annotation
    image: str
    box: tuple[int, int, int, int]
    score: float
    evidence: Mapping[str, Any]
    relation: ObjectRelation


@dataclass(frozen=True)
class ObjectGroup:
    """The same object found in several boxes (e.g. a logo pasted into many images).

    Attributes:
        id: 1-based number, in report order.
        representative: The crop verified against the most others of the group (then
            the largest), as :class:`ObjectCrop`.
        members: The other boxes, each verified against the representative.
        scope: ``"across-images"`` when a member is in a different picture (what the report
            is about), ``"same-image"`` when the repeats are only inside the representative's
            image, ``"near-duplicate-images"`` when they are only in near-duplicate copies
            of it (expected).
    """

    id: int
    representative: ObjectCrop
    members: tuple[ObjectMember, ...]
    scope: Literal["across-images", "same-image", "near-duplicate-images"]


@dataclass(frozen=True)
class SkippedPair:
    """A near-duplicate image pair whose annotations were not compared, and why."""

    image: str
    other_image: str
    reason: str


@dataclass(frozen=True)
class CrossImageFindings:
    """What the cross-image checks found (see :func:`lookalike.objects.find_object_duplicates`).

    Attributes:
        images_root: The folder scanned for near-duplicate images.
        store: The SQLite store holding the image groups (and the object results).
        groups_source: ``"scan"`` (scanned now) or ``"store"`` (read from an earlier scan).
        image_groups: Near-duplicate image groups found under ``images_root``.
        compared_pairs: Keeper-member image pairs whose annotations were compared.
        skipped_pairs: Pairs not compared (not annotated, or matched through a crop or
            rotation that boxes are not mapped through).
        conflicts: Boxes that a near-duplicate image annotates differently.
        featured: Number of annotation crops compared across the dataset.
        crop_skips: Annotations left out of the crop comparison, with the reason.
        object_groups: Repeated objects, ``across-images`` groups first.
    """

    images_root: str
    store: str
    groups_source: Literal["scan", "store"]
    image_groups: int
    compared_pairs: int
    skipped_pairs: tuple[SkippedPair, ...]
    conflicts: tuple[Conflict, ...]
    featured: int
    crop_skips: tuple[CropSkip, ...]
    object_groups: tuple[ObjectGroup, ...]
