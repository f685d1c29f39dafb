"""Duplicate and conflicting annotated objects in COCO, YOLO and Pascal VOC datasets.

The workflow, each step a plain function over frozen records::

    dataset = load_annotations("annotations/instances_train.json")  # or a YOLO/VOC folder
    problems = validate(dataset)                     # malformed input, bad boxes, ...
    pairs = find_duplicate_boxes(dataset)            # same object boxed twice in an image
    plan = plan_cleanup(dataset, pairs, keep="first")
    result = write_cleaned(dataset, plan, "cleaned/")  # dry run: nothing written yet
    report = objects_report(dataset, problems, pairs, plan)  # the --json document

For the image engine: :func:`find_object_crops` and :func:`cross_image_conflicts`.
The ``lookalike objects`` command (:mod:`lookalike.cli_objects`) is a thin shell over these.
"""

from __future__ import annotations

from .cleanup import plan_cleanup
from .crossimage import cross_image_conflicts, find_object_crops
from .duplicates import (
    DEFAULT_AREA_RATIO,
    DEFAULT_CONTAINMENT,
    DEFAULT_IOU,
    Thresholds,
    find_duplicate_boxes,
)
from .export import decision_log, write_cleaned
from .formats import detect_format, load_annotations
from .records import (
    Annotation,
    BoxPair,
    CleanupPlan,
    Conflict,
    Dataset,
    ImageEntry,
    ObjectCrop,
    Problem,
    RawFiles,
    Removal,
    Source,
    WriteResult,
    WrittenFile,
)
from .report import objects_report
from .validation import validate

__all__ = [
    "DEFAULT_AREA_RATIO",
    "DEFAULT_CONTAINMENT",
    "DEFAULT_IOU",
    "Annotation",
    "BoxPair",
    "CleanupPlan",
    "Conflict",
    "Dataset",
    "ImageEntry",
    "ObjectCrop",
    "Problem",
    "RawFiles",
    "Removal",
    "Source",
    "Thresholds",
    "WriteResult",
    "WrittenFile",
    "cross_image_conflicts",
    "decision_log",
    "detect_format",
    "find_duplicate_boxes",
    "find_object_crops",
    "load_annotations",
    "objects_report",
    "plan_cleanup",
    "validate",
    "write_cleaned",
]
