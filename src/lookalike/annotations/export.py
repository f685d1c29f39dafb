"""Writing cleaned annotations in their input format, plus the decision log.

Safety rules, in order of importance:

1. Dry run by default: :func:`write_cleaned` computes every output and reports it, but
   writes nothing unless ``dry_run=False``.
2. Input files are never overwritten unless ``overwrite=True``. With ``out_dir`` the
   cleaned tree (every annotation and class file, changed or not) is written there, and
   an ``out_dir`` that would land on an input file is refused.
3. With ``overwrite=True`` only changed files are rewritten in place, each after its
   original is copied to ``<name>.bak`` (``<name>.1.bak``... if that exists), and only
   if the file on disk is still the one that was loaded.
4. Every file is written to a temporary name and renamed, so a crash leaves either the
   old or the new file, never half of one.

The decision log (``lookalike-removed.csv`` and ``lookalike-removed.json`` in
``out_dir``) has one row per removed box, one per box whose class was changed in review
(``relabelled``) and one per label conflict left for review.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError, LookalikeError
from .coco import write_coco
from .decisions import Relabel
from .records import Annotation, BoxPair, CleanupPlan, Dataset, Removal, WriteResult, WrittenFile
from .voc import write_voc
from .yolo import write_yolo

LOG_NAME = "lookalike-removed"
"""Stem of the decision log files written to ``out_dir``."""

NEW_FILE_MODE = 0o644
"""Permissions of newly created output files (rewritten files keep their own)."""

LOG_COLUMNS: tuple[str, ...] = (
    "action", "reason", "id", "source", "image", "label", "x0", "y0", "x1", "y1",
    "kept_id", "kept_source", "kept_label", "kept_x0", "kept_y0", "kept_x1", "kept_y1",
    "iou", "containment",
)  # fmt: skip
"""Columns of the CSV decision log. ``action`` is ``removed``, ``relabelled`` or
``review``; for review rows (label conflicts, nothing removed) ``kept_*`` describes the
other box, for relabelled rows the box whose class was chosen (``label`` is the new class)."""


def decision_log(plan: CleanupPlan, relabels: Sequence[Relabel] = ()) -> list[dict[str, Any]]:
    """One row per removed box, then one per relabelled box, then one per conflict to review.

    Returns:
        Dicts with the keys of :data:`LOG_COLUMNS`, JSON-serialisable.
    """
    rows = [_removal_row(r) for r in plan.removals]
    rows += [_relabel_row(r) for r in relabels]
    resolved = {r.annotation.id for r in relabels}
    rows += [_review_row(p) for p in plan.review if not {p.a.id, p.b.id} & resolved]
    return rows


def _relabel_row(relabel: Relabel) -> dict[str, Any]:
    """Decision-log row of one class change chosen in review."""
    row: dict[str, Any] = {"action": "relabelled", "reason": "label-conflict-resolved"}
    row.update(_side(relabel.annotation, ""), label=relabel.label)
    row.update(_side(relabel.source, "kept_"))
    return row


def _removal_row(removal: Removal) -> dict[str, Any]:
    """Decision-log row of one removal."""
    row: dict[str, Any] = {"action": "removed", "reason": removal.reason}
    row.update(_side(removal.annotation, ""))
    row.update(_side(removal.kept, "kept_"))
    row.update(iou=round(removal.iou, 6), containment=round(removal.containment, 6))
    return row


def _review_row(pair: BoxPair) -> dict[str, Any]:
    """Decision-log row of one label conflict (both boxes stay)."""
    row: dict[str, Any] = {"action": "review", "reason": f"label-conflict-{pair.rule}"}
    row.update(_side(pair.b, ""))
    row.update(_side(pair.a, "kept_"))
    row.update(iou=round(pair.iou, 6), containment=round(pair.containment, 6))
    return row


def _side(ann: Annotation, prefix: str) -> dict[str, Any]:
    """Columns describing one annotation, with ``prefix`` on every key."""
    x0, y0, x1, y1 = ann.box
    row: dict[str, Any] = {f"{prefix}id": ann.id, f"{prefix}source": str(ann.source)}
    if not prefix:
        row["image"] = ann.image
    row.update({f"{prefix}label": ann.label, f"{prefix}x0": x0, f"{prefix}y0": y0})
    row.update({f"{prefix}x1": x1, f"{prefix}y1": y1})
    return row


def log_to_csv(rows: list[dict[str, Any]]) -> str:
    """Render decision-log rows as CSV text with a header line."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LOG_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def log_to_json(plan: CleanupPlan, rows: list[dict[str, Any]]) -> str:
    """Render the decision log as a JSON document ``{"keep", "decisions"}``."""
    return json.dumps({"keep": plan.keep, "decisions": rows}, indent=2) + "\n"


def write_cleaned(
    dataset: Dataset,
    plan: CleanupPlan,
    out_dir: str | os.PathLike[str],
    *,
    dry_run: bool = True,
    overwrite: bool = False,
    relabels: Sequence[Relabel] = (),
) -> WriteResult:
    """Write the annotations without the removed boxes, in the input's format.

    Args:
        dataset: The loaded dataset.
        plan: The plan from :func:`~lookalike.annotations.plan_cleanup`.
        out_dir: Where the cleaned files go (mirroring the input's relative paths) and
            where the decision log is written. With ``overwrite=True`` only the log (and
            nothing else) goes here.
        dry_run: Report what would be written without touching the disk (the default).
        overwrite: Rewrite changed input files in place, after backing each up to
            ``<name>.bak``.
        relabels: Class changes decided in review
            (:func:`~lookalike.annotations.decisions.apply_decisions`).

    Returns:
        Every file written (or that would be written), with removed counts and backups.

    Raises:
        ConfigError: ``out_dir`` would overwrite an input file while ``overwrite`` is off.
        LookalikeError: An input file changed on disk since it was loaded (in place only),
            or a planned removal no longer matches the loaded input.
        OSError: A file could not be written.

    Example:
        >>> result = write_cleaned(dataset, plan, "cleaned/")  # dry run  # doctest: +SKIP
        >>> [(f.destination, f.removed) for f in result.files]  # doctest: +SKIP
        [('cleaned/instances.json', 3), ('cleaned/lookalike-removed.csv', 0), ...]
    """
    out = Path(out_dir)
    contents = cleaned_contents(dataset, plan, relabels)
    removed = _removed_per_file(dataset, plan)
    if overwrite:
        files = _plan_in_place(dataset, contents, removed)
    else:
        files = _plan_out_dir(dataset, contents, removed, out)
    rows = decision_log(plan, relabels)
    logs = {".csv": log_to_csv(rows), ".json": log_to_json(plan, rows)}
    log_files = [_log_target(out, suffix, unique=overwrite) for suffix in logs]
    result = WriteResult(dry_run, tuple(files + log_files))
    if not dry_run:
        _execute(dataset, result, contents, logs)
    return result


def cleaned_contents(
    dataset: Dataset, plan: CleanupPlan, relabels: Sequence[Relabel] = ()
) -> dict[str, bytes]:
    """New bytes of every input file (relative path -> bytes), removals and relabels applied."""
    removed = [r.annotation for r in plan.removals]
    drop = _positions_per_file(dataset, removed)
    relative = _relative(dataset)
    classes: dict[str, dict[int, int | str]] = {}
    for r in relabels:
        source = r.annotation.source
        classes.setdefault(relative[source.file], {})[source.index] = r.category
    if dataset.format == "coco":
        name = dataset.raw.annotation_files[0]
        _check_coco_ids(dataset, removed + [r.annotation for r in relabels])
        return write_coco(dataset, drop.get(name, []), classes.get(name, {}))
    if dataset.format == "yolo":
        return write_yolo(dataset, drop, classes)
    return write_voc(dataset, drop, classes)


def _relative(dataset: Dataset) -> dict[str, str]:
    """Map ``Source.file`` strings to paths relative to the dataset root."""
    root = dataset.raw.root
    return {str(root / rel): rel for rel in dataset.raw.annotation_files}


def _positions_per_file(
    dataset: Dataset, annotations: Sequence[Annotation]
) -> dict[str, list[int]]:
    """``{relative file: [Source.index, ...]}`` of ``annotations``, in their order."""
    relative = _relative(dataset)
    drop: dict[str, list[int]] = {}
    for ann in annotations:
        source = ann.source
        if source.file not in relative:
            raise LookalikeError(
                f"Annotation {ann.id!r} comes from '{source.file}', which is "
                "not a file of this dataset. Plan the cleanup on the same dataset."
            )
        drop.setdefault(relative[source.file], []).append(source.index)
    return drop


def _removed_per_file(dataset: Dataset, plan: CleanupPlan) -> dict[str, int]:
    """Number of removed annotations per relative file."""
    removed = [r.annotation for r in plan.removals]
    return {rel: len(p) for rel, p in _positions_per_file(dataset, removed).items()}


def _check_coco_ids(dataset: Dataset, annotations: Sequence[Annotation]) -> None:
    """Make sure each annotation to change still is the COCO annotation with its id."""
    items = dataset.raw.document.get("annotations", [])
    for ann in annotations:
        index = ann.source.index
        item = items[index] if index < len(items) else None
        if not isinstance(item, dict) or item.get("id") != ann.id:
            raise LookalikeError(
                f"annotations[{index}] is not annotation {ann.id!r} any more; "
                "the document changed after loading. Load it again and re-run."
            )


def _plan_out_dir(
    dataset: Dataset, contents: dict[str, bytes], removed: dict[str, int], out: Path
) -> list[WrittenFile]:
    """Targets under ``out`` for every file; refuse targets that are input files."""
    root = dataset.raw.root
    _refuse_nested(dataset, out)
    inputs = {_real(root / rel) for rel in dataset.raw.files}
    files = []
    for rel, data in contents.items():
        target = out / rel
        if _real(target) in inputs:
            raise ConfigError(
                f"Writing to '{out}' would overwrite the input file '{root / rel}'. Choose an "
                "output folder outside the input, or rewrite in place with a backup "
                "(overwrite=True, CLI --in-place)."
            )
        action: Literal["copy", "rewrite"] = "copy" if data == dataset.raw.files[rel] else "rewrite"
        files.append(WrittenFile(str(root / rel), str(target), removed.get(rel, 0), action))
    return files


def _refuse_nested(dataset: Dataset, out: Path) -> None:
    """Refuse an output folder inside a YOLO/VOC input folder (it would be read back)."""
    root = _real(dataset.raw.root)
    inside = os.path.commonpath([root, _real(out)]) == root
    if dataset.format != "coco" and inside:
        raise ConfigError(
            f"Output folder '{out}' is inside the input folder '{dataset.raw.root}'; the next "
            "load would read both the original and the cleaned files. Choose a folder "
            "outside the input."
        )


def _plan_in_place(
    dataset: Dataset, contents: dict[str, bytes], removed: dict[str, int]
) -> list[WrittenFile]:
    """Targets for in-place rewriting: changed files only, each with a fresh backup."""
    root = dataset.raw.root
    files = []
    for rel, data in contents.items():
        if data == dataset.raw.files[rel]:
            continue
        target = root / rel
        backup = _free_name(target, ".bak")
        files.append(
            WrittenFile(str(target), str(target), removed.get(rel, 0), "rewrite", str(backup))
        )
    return files


def _log_target(out: Path, suffix: str, *, unique: bool) -> WrittenFile:
    """Target of one decision-log file; with ``unique`` an existing log is never replaced."""
    target = out / f"{LOG_NAME}{suffix}"
    if unique and target.exists():
        target = _free_name(out / LOG_NAME, suffix)
    return WrittenFile("", str(target), 0, "log")


def _free_name(path: Path, suffix: str) -> Path:
    """``path`` + ``suffix``, else ``path`` + ``.1`` + ``suffix``, ``.2``... whichever is free."""
    candidate = path.with_name(path.name + suffix)
    number = 1
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.{number}{suffix}")
        number += 1
    return candidate


def _real(path: Path) -> str:
    """Absolute, symlink-resolved form of ``path`` for comparisons."""
    return os.path.realpath(path)


def _execute(
    dataset: Dataset, result: WriteResult, contents: dict[str, bytes], logs: dict[str, str]
) -> None:
    """Perform the writes described by ``result``; in place, check every input first."""
    by_source = {str(dataset.raw.root / rel): rel for rel in contents}
    for written in result.files:
        if written.backup is not None:
            _check_unchanged(Path(written.source), dataset.raw.files[by_source[written.source]])
    for written in result.files:
        if written.action == "log":
            suffix = ".json" if written.destination.endswith(".json") else ".csv"
            _atomic_write(Path(written.destination), logs[suffix].encode("utf-8"))
            continue
        rel = by_source[written.source]
        if written.backup is not None:
            shutil.copy2(written.source, written.backup)
        _atomic_write(Path(written.destination), contents[rel])


def _check_unchanged(source: Path, loaded: bytes) -> None:
    """Raise when ``source`` on disk is no longer the bytes that were loaded."""
    if source.read_bytes() != loaded:
        raise LookalikeError(
            f"'{source}' changed on disk since it was loaded; nothing was modified. Load "
            "the annotations again and re-run."
        )


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        if path.exists():
            shutil.copymode(path, temporary)
        else:
            os.chmod(temporary, NEW_FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
