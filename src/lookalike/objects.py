"""Duplicate objects across a dataset: the glue between :mod:`lookalike.annotations` and the scan.

:func:`find_object_duplicates` runs, on one COCO, YOLO or Pascal VOC annotation set:

1. the within-image checks of :mod:`lookalike.annotations` (validation, duplicate boxes,
   label conflicts, cleanup plan);
2. a scan of the images folder (:func:`lookalike.scan`, incremental, into the store), or
   the groups of an earlier scan of a folder containing it; then, for every near-duplicate
   image pair (group keeper <-> member), the boxes one image has and the other lacks or
   labels differently (``cross-image-conflict``). Boxes are scaled by the ratio of the image
   sizes and mirrored for mirror images. Pairs matched through a crop or a rotation are not
   pixel-aligned and are skipped with that reason: their boxes are not mapped through the
   transform;
3. the repeated-object search of :mod:`.annotations.repeats` over the crops of every box
   (:mod:`.annotations.crops`), labelling each repeat as in a different picture, in the
   same image, or in a near-duplicate copy of the image (expected, not noise).

Results go to the JSON report (:func:`lookalike.annotations.objects_report`) and to the
SQLite store, in tables this module creates on the store's connection:

``object_runs``
    one row per annotation set (``annotations``: absolute path of the file or folder,
    ``format``, ``images_root``, ``started``, ``finished``, ``status`` running | done,
    ``summary``: the report's summary as JSON). A re-run of the same annotation set
    replaces the previous run's rows once it is complete.
``object_annotations``
    one row per annotation: ``run_id``, ``annotation_id`` and ``image_key`` (JSON: a COCO id
    or a relative path), ``path`` (the image file as in ``files.path``, NULL when missing),
    ``label``, ``category``, ``x0, y0, x1, y1`` (pixels of the upright image), ``source``
    (``file:line`` or ``file#index``), ``crop`` (``featured`` or why the crop was left out).
``object_findings``
    one row per finding: ``kind`` (duplicate | label-conflict | cross-image-conflict |
    repeated-object), ``reason`` (the duplicate rule ``iou``/``containment``; ``missing`` /
    ``label-mismatch``; the repeat's relation ``different-image`` / ``same-image`` /
    ``near-duplicate-image``), ``set_id`` (duplicate set or object group number),
    ``path_a, annotation_a, label_a, box_a, action_a`` and the same for ``b`` (boxes as JSON
    ``[x0, y0, x1, y1]``; for a ``missing`` box, ``box_b`` is where it should be in image
    b and ``annotation_b`` is NULL), ``score`` (IoU or similarity), ``evidence`` (JSON).
    Actions: ``keep`` / ``remove`` (the cleanup plan), ``review``, ``missing``, or NULL.
``object_decisions``
    a person's review decisions, kept across re-runs: ``annotations`` (as in
    ``object_runs``), ``annotation_id`` (JSON), ``removal`` (``accept`` | ``reject`` the
    removal of this duplicate box, or NULL), ``label_from`` (JSON id of the annotation whose
    class this box gets, or NULL), ``label`` (that class's name), ``decided`` (time).
    ``lookalike objects --out DIR --write`` applies them (:func:`stored_decisions`).
``objects`` (a view)
    what the review UI's objects page draws: one row per box and finding kind of the
    finished runs (``path``, ``annotation_id``, ``label``, ``box``, ``kind``, ``reason``,
    ``group_id``, ``action``, ``score``), repeats inside near-duplicate copies left out.

Example:
    >>> from lookalike.objects import find_object_duplicates
    >>> result = find_object_duplicates("annotations/instances_train.json",  # doctest: +SKIP
    ...                                 images_dir="images/train")
    >>> result.counts()  # doctest: +SKIP
    {'duplicate': 3, 'label-conflict': 1, 'cross-image-conflict': 2, 'repeated-object': 7}
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .annotations import (
    DEFAULT_AREA_RATIO,
    DEFAULT_CONTAINMENT,
    DEFAULT_IOU,
    BoxPair,
    CleanupPlan,
    Dataset,
    Problem,
    cross_image_conflicts,
    find_duplicate_boxes,
    load_annotations,
    objects_report,
    plan_cleanup,
    validate,
)
from .annotations.crops import CROP_PX, MIN_BOX_PX, feature_crops
from .annotations.crossimage import MATCH_IOU, image_resolver
from .annotations.decisions import Decisions
from .annotations.records import CrossImageFindings, KeepRule, SkippedPair
from .annotations.repeats import RepeatSettings, find_repeated_objects
from .annotations.report import finding_counts
from .errors import ConfigError, StaleGroupError, StoreError
from .records import Group
from .store import Store, default_store_path, from_blob, to_blob

FINDING_KINDS = ("duplicate", "label-conflict", "cross-image-conflict", "repeated-object")

ALIGNED_METHODS = frozenset({"content digest", "pixel digest", "JPEG stream digest", "thumbnail"})
"""Evidence methods of image matches whose pictures are pixel-aligned up to a resize."""
MIRROR_METHODS = frozenset({"mirror thumbnail"})
"""Evidence methods of whole-picture mirror matches (boxes are mirrored)."""

_BATCH = 2000


@dataclass(frozen=True)
class ObjectSettings:
    """Thresholds of every object check (the CLI's options).

    Attributes:
        iou, containment, area_ratio: Within-image duplicate rules
            (:func:`~lookalike.annotations.find_duplicate_boxes`).
        keep: Which box of a duplicate set the cleanup plan keeps.
        conflict_iou: IoU at which a box counts as present in a near-duplicate image.
        min_box_px: Boxes with a shorter side (full-resolution pixels) are not compared.
        crop_px: Short side the smallest compared box gets when its image is decoded.
        repeats: Search and verification knobs of repeated objects.
        scan: Settings of the image scan (default :class:`lookalike.ScanSettings`).
    """

    iou: float = DEFAULT_IOU
    containment: float = DEFAULT_CONTAINMENT
    area_ratio: float = DEFAULT_AREA_RATIO
    keep: KeepRule = "first"
    conflict_iou: float = MATCH_IOU
    min_box_px: int = MIN_BOX_PX
    crop_px: int = CROP_PX
    repeats: RepeatSettings = RepeatSettings()
    scan: Any = None


@dataclass(frozen=True)
class ObjectsResult:
    """Everything :func:`find_object_duplicates` found.

    Attributes:
        dataset: The loaded annotations.
        problems: Validation problems.
        pairs: Within-image duplicate and label-conflict box pairs.
        plan: The cleanup plan for the duplicate boxes.
        cross_image: What the cross-image checks found; ``None`` when they did not run.
        not_run: Why the cross-image checks did not run (``""`` when they did).
        store: The store the results were written to, or ``None``.
        timings: Wall-clock seconds per step (``within_image``, ``image_groups``,
            ``conflicts``, ``crops``, ``repeats``, ``store``).
    """

    dataset: Dataset
    problems: tuple[Problem, ...]
    pairs: tuple[BoxPair, ...]
    plan: CleanupPlan
    cross_image: CrossImageFindings | None
    not_run: str = ""
    store: str | None = None
    timings: dict[str, float] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON report (schema in :mod:`lookalike.annotations.report`)."""
        return objects_report(
            self.dataset,
            self.problems,
            self.pairs,
            self.plan,
            cross_image=self.cross_image,
            not_run=self.not_run or "not requested",
        )

    def counts(self) -> dict[str, int]:
        """Number of findings of each kind (repeats: members in other pictures only)."""
        return finding_counts(self.to_dict())


def find_object_duplicates(
    annotations_path: str | os.PathLike[str],
    *,
    images_dir: str | os.PathLike[str] | None = None,
    format: str = "auto",
    db: str | os.PathLike[str] | None = None,
    cross_image: bool = True,
    settings: ObjectSettings = ObjectSettings(),
    workers: int | None = None,
    progress: Any = None,
) -> ObjectsResult:
    """Find duplicate and conflicting objects within and across the images of a dataset.

    Args:
        annotations_path: A COCO JSON file, a YOLO labels folder or a VOC XML folder.
        images_dir: The images folder (default: where the format puts them); it is what
            the cross-image checks scan.
        format: ``"auto"``, ``"coco"``, ``"yolo"`` or ``"voc"``.
        db: The SQLite store. Default: the store :func:`lookalike.scan` uses for the
            images folder. A store whose last scan covers a parent of the images folder
            is read, not rescanned (its groups would be replaced).
        cross_image: Run the cross-image checks (scan, conflicts, repeated objects).
            Without them the results are stored only when ``db`` is given.
        settings: Thresholds of every check.
        workers: Parallel workers for the scan and for decoding crops.
        progress: ``progress(stage, done, total)`` callback passed to the scan.

    Returns:
        The findings; ``result.to_dict()`` is the JSON report.

    Raises:
        AnnotationFormatError: The annotations cannot be read.
        InputNotFoundError: The annotations or the images folder do not exist.
        ConfigError: A threshold is out of range.
        StoreError: The store cannot be opened or written.

    Example:
        >>> result = find_object_duplicates("labels/", images_dir="images/")  # doctest: +SKIP
        >>> [g.scope for g in result.cross_image.object_groups]  # doctest: +SKIP
        ['across-images', 'near-duplicate-images']
    """
    clock = _Clock()
    dataset = load_annotations(annotations_path, images_dir=images_dir, format=format)
    problems = tuple(validate(dataset))
    pairs = tuple(
        find_duplicate_boxes(
            dataset,
            iou=settings.iou,
            containment=settings.containment,
            area_ratio=settings.area_ratio,
        )
    )
    plan = plan_cleanup(dataset, pairs, keep=settings.keep)
    clock.lap("within_image")
    found, not_run, store_path = None, "--no-cross-image" if not cross_image else "", None
    if cross_image:
        root, not_run = _images_root(dataset, images_dir)
        if root is not None:
            store_path = os.fspath(db) if db is not None else os.fspath(default_store_path([root]))
            found = _cross_image(dataset, root, store_path, settings, workers, progress, clock)
    elif db is not None:
        store_path = os.fspath(db)
    result = ObjectsResult(dataset, problems, pairs, plan, found, not_run, store_path, clock.laps)
    if store_path is not None:
        with Store(store_path) as store:
            save_results(store, result, annotations_path)
        clock.lap("store")
    return result


class _Clock:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 3)
        self._last = now


def _images_root(
    dataset: Dataset, images_dir: str | os.PathLike[str] | None
) -> tuple[str | None, str]:
    """The folder to scan: ``images_dir``, else the deepest folder holding every image.

    Returns the folder, or ``None`` and why there is none to scan: no image on disk, or
    images spread so widely that their common folder is a file-system root or the home
    folder (too much to scan unasked).
    """
    if images_dir is not None:
        return os.path.abspath(images_dir), ""
    folders = {os.path.dirname(os.path.abspath(e.path)) for e in dataset.images.values() if e.path}
    if not folders:
        return None, "no annotated image was found on disk"
    root = os.path.commonpath(sorted(folders))
    if os.path.dirname(root) == root or root == os.path.expanduser("~"):
        return None, (
            f"the annotated images share no folder narrower than {root!r}; pass --images DIR"
        )
    return root, ""


# -- cross-image checks ------------------------------------------------------------------


def _cross_image(
    dataset: Dataset,
    root: str,
    store_path: str,
    settings: ObjectSettings,
    workers: int | None,
    progress: Any,
    clock: _Clock,
) -> CrossImageFindings:
    """Image groups, conflicts between near-duplicates, and repeated objects."""
    groups, source = image_groups(
        root, store_path, settings=settings.scan, workers=workers, progress=progress
    )
    clock.lap("image_groups")
    aligned, mirrored, skipped = classify_pairs(dataset, groups)
    conflicts = cross_image_conflicts(
        dataset, aligned + mirrored, iou=settings.conflict_iou, unknown="skip", mirrored=mirrored
    )
    clock.lap("conflicts")
    crops = feature_crops(
        dataset, min_box_px=settings.min_box_px, crop_px=settings.crop_px, workers=workers
    )
    clock.lap("crops")
    picture = _pictures(groups)
    object_groups = find_repeated_objects(
        crops.featured,
        settings=settings.repeats,
        picture_of=lambda p: picture.get(os.path.realpath(p), os.path.realpath(p)),
    )
    clock.lap("repeats")
    return CrossImageFindings(
        images_root=root,
        store=store_path,
        groups_source=source,
        image_groups=len(groups),
        compared_pairs=len(aligned) + len(mirrored),
        skipped_pairs=tuple(skipped),
        conflicts=tuple(conflicts),
        featured=len(crops.featured),
        crop_skips=crops.skipped,
        object_groups=tuple(object_groups),
    )


def image_groups(
    root: str,
    store_path: str,
    *,
    settings: Any = None,
    workers: int | None = None,
    progress: Any = None,
) -> tuple[list[Group], Literal["scan", "store"]]:
    """Near-duplicate image groups of the images under ``root``.

    When the store's last scan covers a folder that contains ``root`` (but is not
    ``root`` itself), its groups are read, restricted to those with an image under
    ``root``: scanning ``root`` alone would replace that wider scan's groups. Otherwise
    ``root`` is scanned into the store (incrementally: unchanged files are not read again).

    Returns:
        The groups and where they came from (``"scan"`` or ``"store"``).
    """
    with Store(store_path) as store:
        run = store.last_run()
        if run is not None and _covers(run["roots"], root):
            prefix = root.rstrip(os.sep) + os.sep
            groups = [
                g
                for g in store.load_groups()
                if any(p.startswith(prefix) for p in (g.keeper, *(m.path for m in g.members)))
            ]
            return groups, "store"
    from .pipeline import ScanSettings, scan

    result = scan(
        [root],
        db=store_path,
        settings=settings or ScanSettings(),
        workers=workers,
        progress=progress,
    )
    return list(result.groups), "scan"


def _covers(roots: Sequence[str], root: str) -> bool:
    """True when a scanned root is a proper parent folder of ``root``."""
    return root not in roots and any(
        root.startswith(r.rstrip(os.sep) + os.sep) for r in roots if isinstance(r, str)
    )


def classify_pairs(
    dataset: Dataset, groups: Iterable[Group]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[SkippedPair]]:
    """Split keeper-member pairs into aligned, mirrored and skipped (with the reason).

    A pair is compared only when both images are annotated and the match is a whole
    picture (same bytes or pixels, or a verified thumbnail match, possibly mirrored).
    """
    key_of = image_resolver(dataset)
    aligned: list[tuple[str, str]] = []
    mirrored: list[tuple[str, str]] = []
    skipped: list[SkippedPair] = []
    for group in groups:
        for m in group.members:
            pair = (group.keeper, m.path)
            method = str(m.evidence.get("method", ""))
            missing = [p for p in pair if key_of(p) is None]
            if missing:
                names = " and ".join(os.path.basename(p) for p in missing)
                skipped.append(SkippedPair(*pair, f"not-annotated: {names}"))
            elif m.relation in ("exact", "pixel") or method in ALIGNED_METHODS:
                aligned.append(pair)
            elif m.relation == "mirror" and method in MIRROR_METHODS:
                if _width_known(dataset, key_of, pair):
                    mirrored.append(pair)
                else:
                    skipped.append(SkippedPair(*pair, "mirror image of unknown width"))
            else:
                reason = f"geometric match ({method or m.relation}): boxes not mapped through it"
                skipped.append(SkippedPair(*pair, reason))
    return aligned, mirrored, skipped


def _width_known(dataset: Dataset, key_of: Any, pair: tuple[str, str]) -> bool:
    return all(dataset.images[key_of(p)].width for p in pair)


def _pictures(groups: Iterable[Group]) -> dict[str, str]:
    """Real path of every grouped image -> its group (near-duplicates share a picture)."""
    out: dict[str, str] = {}
    for g in groups:
        for path in (g.keeper, *(m.path for m in g.members)):
            out[os.path.realpath(path)] = f"group {g.id}"
    return out


# -- store ------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS object_runs (
    id INTEGER PRIMARY KEY,
    annotations TEXT NOT NULL,
    format TEXT NOT NULL,
    images_root TEXT,
    started REAL NOT NULL,
    finished REAL,
    status TEXT NOT NULL CHECK (status IN ('running', 'done')),
    summary TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS object_runs_annotations ON object_runs(annotations);
CREATE TABLE IF NOT EXISTS object_annotations (
    run_id INTEGER NOT NULL REFERENCES object_runs(id) ON DELETE CASCADE,
    annotation_id TEXT NOT NULL,
    image_key TEXT NOT NULL,
    path BLOB,
    label TEXT NOT NULL,
    category TEXT NOT NULL,
    x0 REAL NOT NULL,
    y0 REAL NOT NULL,
    x1 REAL NOT NULL,
    y1 REAL NOT NULL,
    source TEXT NOT NULL,
    crop TEXT NOT NULL,
    PRIMARY KEY (run_id, annotation_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS object_findings (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES object_runs(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN
        ('duplicate', 'label-conflict', 'cross-image-conflict', 'repeated-object')),
    reason TEXT NOT NULL,
    set_id INTEGER,
    path_a BLOB,
    annotation_a TEXT NOT NULL,
    label_a TEXT NOT NULL,
    box_a TEXT NOT NULL,
    action_a TEXT,
    path_b BLOB,
    annotation_b TEXT,
    label_b TEXT,
    box_b TEXT,
    action_b TEXT,
    score REAL NOT NULL,
    evidence TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS object_findings_run ON object_findings(run_id, kind);
CREATE TABLE IF NOT EXISTS object_decisions (
    annotations TEXT NOT NULL,
    annotation_id TEXT NOT NULL,
    removal TEXT CHECK (removal IN ('accept', 'reject')),
    label_from TEXT,
    label TEXT,
    decided REAL NOT NULL,
    PRIMARY KEY (annotations, annotation_id)
) WITHOUT ROWID;
"""

_VIEW = """
CREATE VIEW objects AS
SELECT path, annotation_id, label, box, kind, reason, MIN(group_id) AS group_id,
       CASE MAX(CASE action WHEN 'remove' THEN 4 WHEN 'missing' THEN 3 WHEN 'review' THEN 2
                WHEN 'keep' THEN 1 ELSE 0 END)
            WHEN 4 THEN 'remove' WHEN 3 THEN 'missing' WHEN 2 THEN 'review' WHEN 1 THEN 'keep'
            END AS action,
       MAX(score) AS score
FROM (
    SELECT f.path_a AS path, f.annotation_a AS annotation_id, f.label_a AS label,
           f.box_a AS box, f.kind AS kind, f.reason AS reason, f.set_id AS group_id,
           f.action_a AS action, f.score AS score
    FROM object_findings f JOIN object_runs r ON r.id = f.run_id AND r.status = 'done'
    UNION ALL
    SELECT f.path_b, f.annotation_b, f.label_b, f.box_b, f.kind, f.reason, f.set_id,
           f.action_b, f.score
    FROM object_findings f JOIN object_runs r ON r.id = f.run_id AND r.status = 'done'
    WHERE f.box_b IS NOT NULL
)
WHERE path IS NOT NULL AND NOT (kind = 'repeated-object' AND reason = 'near-duplicate-image')
GROUP BY path, annotation_id, box, kind
"""


def create_tables(store: Store) -> None:
    """Create the object tables and the ``objects`` view (idempotent).

    Raises:
        StoreError: The store has an ``objects`` table of another origin.
    """
    with store.transaction() as conn:
        conn.executescript(_SCHEMA)
        row = conn.execute("SELECT type FROM sqlite_master WHERE name = 'objects'").fetchone()
        if row is not None and row[0] != "view":
            raise StoreError(
                f"The store {str(store.path)!r} has an 'objects' {row[0]} that lookalike did "
                "not create; rename or drop it, or use another --db."
            )
        conn.execute("DROP VIEW IF EXISTS objects")
        conn.execute(_VIEW)


def save_results(
    store: Store, result: ObjectsResult, annotations_path: str | os.PathLike[str]
) -> int:
    """Write ``result`` into the store's object tables; return the new run id.

    Rows are written in short transactions under a ``running`` run; the last transaction
    marks it ``done`` and deletes the earlier runs of the same annotation set, so readers
    never see a half-written or doubled result, and a re-run leaves no duplicates.
    """
    create_tables(store)
    name = os.path.abspath(annotations_path)
    report = result.to_dict()
    root = result.cross_image.images_root if result.cross_image else None
    with store.transaction() as conn:
        run_id = int(
            conn.execute(
                "INSERT INTO object_runs (annotations, format, images_root, started, status) "
                "VALUES (?, ?, ?, ?, 'running')",
                (name, result.dataset.format, root, time.time()),
            ).lastrowid
            or 0
        )
    paths = _PathMap(store)
    _insert(store, _ANNOTATIONS_SQL, _annotation_rows(run_id, result, paths))
    _insert(store, _FINDINGS_SQL, _finding_rows(run_id, result, paths))
    with store.transaction() as conn:
        old = [r for (r,) in conn.execute(
            "SELECT id FROM object_runs WHERE annotations = ? AND id != ?", (name, run_id)
        )]  # fmt: skip
        for table in ("object_findings", "object_annotations"):
            conn.executemany(f"DELETE FROM {table} WHERE run_id = ?", [(r,) for r in old])
        conn.executemany("DELETE FROM object_runs WHERE id = ?", [(r,) for r in old])
        conn.execute(
            "UPDATE object_runs SET status = 'done', finished = ?, summary = ? WHERE id = ?",
            (time.time(), json.dumps(report["summary"], sort_keys=True), run_id),
        )
    return run_id


_ANNOTATIONS_SQL = "INSERT INTO object_annotations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_FINDINGS_SQL = (
    "INSERT INTO object_findings (run_id, kind, reason, set_id, path_a, annotation_a, label_a, "
    "box_a, action_a, path_b, annotation_b, label_b, box_b, action_b, score, evidence) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _insert(store: Store, sql: str, rows: Iterable[tuple[Any, ...]]) -> None:
    """Insert ``rows`` in transactions of at most ``_BATCH`` rows."""
    for batch in _batches(rows):
        with store.transaction() as conn:
            conn.executemany(sql, batch)


def _batches(rows: Iterable[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


class _PathMap:
    """Image paths as the store's ``files`` table spells them (abspath or real path)."""

    def __init__(self, store: Store) -> None:
        self.conn = store.conn
        self.cache: dict[str, bytes] = {}

    def __call__(self, path: str | None) -> bytes | None:
        if path is None:
            return None
        if path not in self.cache:
            self.cache[path] = self._lookup(path)
        return self.cache[path]

    def _lookup(self, path: str) -> bytes:
        for candidate in (os.path.abspath(path), os.path.realpath(path)):
            blob = to_blob(candidate)
            if self.conn.execute("SELECT 1 FROM files WHERE path = ?", (blob,)).fetchone():
                return blob
        return to_blob(os.path.abspath(path))


def _annotation_rows(
    run_id: int, result: ObjectsResult, paths: _PathMap
) -> Iterator[tuple[Any, ...]]:
    dataset = result.dataset
    status: dict[Any, str] = {}
    if result.cross_image is not None:
        status = {s.annotation.id: s.reason for s in result.cross_image.crop_skips}
    for ann in dataset.annotations:
        entry = dataset.images.get(ann.image)
        crop = status.get(ann.id, "featured") if result.cross_image is not None else "not-run"
        yield (
            run_id, json.dumps(ann.id), json.dumps(ann.image), paths(entry.path if entry else None),
            ann.label, str(ann.category), *_box(ann.box), str(ann.source), crop,
        )  # fmt: skip


def _box(box: Sequence[float]) -> tuple[float, ...]:
    return tuple(round(float(v), 3) if math.isfinite(v) else 0.0 for v in box)  # NaN -> 0


def _box_json(box: Sequence[float] | None) -> str | None:
    return None if box is None else json.dumps(list(_box(box)))


def _finding_rows(run_id: int, result: ObjectsResult, paths: _PathMap) -> Iterator[tuple[Any, ...]]:
    """Rows of ``object_findings``: box pairs, conflicts, then repeated objects."""
    dataset = result.dataset
    removed = result.plan.removed_ids
    sets = {aid: n for n, ids in enumerate(result.plan.duplicate_sets, 1) for aid in ids}

    def image_path(key: Any) -> bytes | None:
        entry = dataset.images.get(key)
        return paths(entry.path if entry else None)

    for p in result.pairs:
        path = image_path(p.image)
        if p.kind == "duplicate":
            acts = ["remove" if x.id in removed else "keep" for x in (p.a, p.b)]
        else:
            acts = ["review", "review"]
        evidence: dict[str, Any] = {
            "iou": p.iou, "containment": p.containment, "area_ratio": p.area_ratio
        }  # fmt: skip
        yield (
            run_id, p.kind, p.rule, sets.get(p.a.id), path, json.dumps(p.a.id), p.a.label,
            _box_json(p.a.box), acts[0], path, json.dumps(p.b.id), p.b.label, _box_json(p.b.box),
            acts[1], round(p.iou, 6), json.dumps(evidence, sort_keys=True),
        )  # fmt: skip
    found = result.cross_image
    if found is None:
        return
    for c in found.conflicts:
        other = c.counterpart
        missing = c.reason == "missing"
        evidence = {
            "expected_box": list(_box(c.expected_box)) if c.expected_box else None,
            "counterpart": None
            if other is None
            else {"id": other.id, "label": other.label, "box": list(_box(other.box))},
        }
        yield (
            run_id, c.kind, c.reason, None, paths(c.image), json.dumps(c.annotation.id),
            c.annotation.label, _box_json(c.annotation.box), "review", paths(c.other_image),
            None if missing or other is None else json.dumps(other.id),
            c.annotation.label if missing or other is None else other.label,
            _box_json(c.expected_box if missing or other is None else other.box),
            "missing" if missing else "review", round(c.iou, 6),
            json.dumps(evidence, sort_keys=True),
        )  # fmt: skip
    for g in found.object_groups:
        rep = g.representative
        for m in g.members:
            evidence = {**m.evidence, "scope": g.scope}
            yield (
                run_id, "repeated-object", m.relation, g.id, paths(rep.image_path),
                json.dumps(rep.annotation.id), rep.annotation.label, _box_json(rep.annotation.box),
                None, paths(m.image), json.dumps(m.annotation.id), m.annotation.label,
                _box_json(m.annotation.box), None, round(m.score, 4),
                json.dumps(evidence, sort_keys=True),
            )  # fmt: skip


def stored_findings(store: Store, *, kind: str | None = None) -> list[dict[str, Any]]:
    """The findings of the finished runs in the store, oldest first (optionally one kind).

    Raises:
        ConfigError: ``kind`` is not a finding kind.
    """
    if kind is not None and kind not in FINDING_KINDS:
        raise ConfigError(
            f"Unknown finding kind {kind!r}; choose from: {', '.join(FINDING_KINDS)}."
        )
    exists = store.conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'object_findings'"
    ).fetchone()
    if exists is None:
        return []
    sql = (
        "SELECT f.kind, f.reason, f.set_id, f.path_a, f.annotation_a, f.label_a, f.box_a, "
        "f.action_a, f.path_b, f.annotation_b, f.label_b, f.box_b, f.action_b, f.score, "
        "f.evidence, r.annotations FROM object_findings f JOIN object_runs r ON r.id = f.run_id "
        "WHERE r.status = 'done'" + (" AND f.kind = ?" if kind else "") + " ORDER BY f.id"
    )
    out = []
    for row in store.conn.execute(sql, (kind,) if kind else ()):
        item: dict[str, Any] = {"kind": row[0], "reason": row[1], "set_id": row[2]}
        for side, (path, aid, label, box, action) in (("a", row[3:8]), ("b", row[8:13])):
            item[side] = {
                "image": from_blob(path) if path is not None else None,
                "id": json.loads(aid) if aid is not None else None,
                "label": label,
                "box": json.loads(box) if box is not None else None,
                "action": action,
            }
        item.update(score=row[13], evidence=json.loads(row[14]), annotations=row[15])
        out.append(item)
    return out


# -- review decisions -------------------------------------------------------------------

DECISION_ACTIONS = ("accept", "reject", "label", "clear")
"""What a person can decide about a finding (see :func:`decide`)."""


def decide(
    store: Store, finding_id: int, action: str, *, side: str | None = None
) -> dict[str, Any]:
    """Record a review decision about one finding of the store.

    Args:
        store: The store holding the finding.
        finding_id: ``object_findings.id``.
        action: For a ``duplicate``: ``accept`` (remove the box the plan removes) or
            ``reject`` (keep it). For a ``label-conflict``: ``label`` with ``side`` ``a``
            or ``b``, the box whose class is right (both boxes get it). ``clear`` forgets
            the finding's decision.
        side: ``a`` or ``b`` for ``label``.

    Returns:
        ``{"finding", "kind", "annotations", "decisions": {annotation id: decision}}``.

    Raises:
        ConfigError: ``action`` or ``side`` does not fit the finding.
        StaleGroupError: The finding is not in the store (a re-run renumbers findings).
    """
    create_tables(store)
    finding = _finding(store, finding_id)
    kind, name = finding["kind"], finding["annotations"]
    if action not in DECISION_ACTIONS:
        raise ConfigError(
            f"Unknown decision {action!r}; choose from: {', '.join(DECISION_ACTIONS)}."
        )
    ids = [finding[s]["id"] for s in ("a", "b") if finding[s]["id"] is not None]
    if action == "clear":
        column = "label_from = NULL, label = NULL" if kind == "label-conflict" else "removal = NULL"
        with store.transaction() as conn:
            conn.executemany(
                f"UPDATE object_decisions SET {column} WHERE annotations = ? AND annotation_id = ?",
                [(name, json.dumps(i)) for i in ids],
            )
            conn.execute(
                "DELETE FROM object_decisions WHERE removal IS NULL AND label_from IS NULL"
            )
    elif kind == "duplicate" and action in ("accept", "reject"):
        target = [finding[s]["id"] for s in ("a", "b") if finding[s]["action"] == "remove"]
        if not target:
            raise ConfigError(f"Finding {finding_id} removes no box; there is nothing to {action}.")
        _upsert(store, name, target, "removal", action)
    elif kind == "label-conflict" and action == "label" and side in ("a", "b"):
        chosen = finding[side]
        _upsert(store, name, ids, "label_from", json.dumps(chosen["id"]), label=chosen["label"])
    else:
        what = "accept or reject" if kind == "duplicate" else "label with side=a|b"
        if kind not in ("duplicate", "label-conflict"):
            what = "nothing (it is shown for information)"
        raise ConfigError(f"A {kind} finding takes {what}, not {action!r}.")
    return {
        "finding": finding_id,
        "kind": kind,
        "annotations": name,
        "decisions": {json.dumps(i): d for i, d in decisions_for(store, name, ids).items()},
    }


def _finding(store: Store, finding_id: int) -> dict[str, Any]:
    row = store.conn.execute(
        "SELECT f.kind, r.annotations, f.annotation_a, f.label_a, f.action_a, f.annotation_b, "
        "f.label_b, f.action_b FROM object_findings f JOIN object_runs r ON r.id = f.run_id "
        "WHERE f.id = ? AND r.status = 'done'",
        (finding_id,),
    ).fetchone()
    if row is None:
        raise StaleGroupError(
            f"Finding {finding_id} is not in the store any more (each `lookalike objects` run "
            "renumbers the findings); reload the page."
        )
    side = {
        s: {"id": json.loads(aid) if aid is not None else None, "label": label, "action": act}
        for s, (aid, label, act) in (("a", row[2:5]), ("b", row[5:8]))
    }
    return {"kind": row[0], "annotations": row[1], **side}


def _upsert(
    store: Store,
    name: str,
    ids: Sequence[Any],
    column: str,
    value: str,
    *,
    label: str | None = None,
) -> None:
    extra = ", label = excluded.label" if column == "label_from" else ""
    with store.transaction() as conn:
        conn.executemany(
            f"INSERT INTO object_decisions (annotations, annotation_id, {column}, label, decided) "
            f"VALUES (?, ?, ?, ?, ?) ON CONFLICT (annotations, annotation_id) DO UPDATE SET "
            f"{column} = excluded.{column}, decided = excluded.decided{extra}",
            [(name, json.dumps(i), value, label, time.time()) for i in ids],
        )


def decisions_for(store: Store, name: str, ids: Sequence[Any]) -> dict[Any, dict[str, Any]]:
    """``{annotation id: {"removal", "label_from", "label"}}`` of the decided ones in ``ids``."""
    out = {}
    for i in ids:
        row = store.conn.execute(
            "SELECT removal, label_from, label FROM object_decisions "
            "WHERE annotations = ? AND annotation_id = ?",
            (name, json.dumps(i)),
        ).fetchone()
        if row is not None:
            label_from = json.loads(row[1]) if row[1] is not None else None
            out[i] = {"removal": row[0], "label_from": label_from, "label": row[2]}
    return out


def stored_decisions(store: Store, annotations_path: str | os.PathLike[str]) -> Decisions:
    """The review decisions recorded for an annotation set (empty without any)."""
    exists = store.conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'object_decisions'"
    ).fetchone()
    if exists is None:
        return Decisions()
    removals, labels = {}, {}
    for aid, removal, label_from in store.conn.execute(
        "SELECT annotation_id, removal, label_from FROM object_decisions WHERE annotations = ?",
        (os.path.abspath(annotations_path),),
    ):
        if removal is not None:
            removals[json.loads(aid)] = removal
        if label_from is not None:
            labels[json.loads(aid)] = json.loads(label_from)
    return Decisions(removals, labels)
