"""Repeated objects: the same object boxed in several images (a logo, a product shot).

The crops of :mod:`.crops` go through the image engine's steps:

1. **Candidates**: the ``neighbours`` nearest crop descriptors (:func:`lookalike.index.knn_pairs`).
2. **Verification**: a candidate whose middles differ (the descriptors of the central 75 %
   of both crops, which box jitter barely moves: :func:`.crops.centre_descriptor`) is
   rejected at once; the others go to :func:`lookalike.verify.verify_pair` on the two
   crops' features. Two people rarely draw the same box: edges move by a few pixels,
   which shifts and scales the content of the crop and fails a whole-picture check made
   for pixel-aligned copies. A pair that fails it gets a second chance: the two 64 px
   thumbnails are aligned by ECC (an affine map limited to box jitter: scale within
   ``max_scale``, almost no shear or rotation, at least ``min_overlap`` of each crop
   shared), and ``verify_pair`` runs again on the shared part of both crops (evidence
   ``"method": "aligned crop"``, with looser ``shift`` and aspect limits: what is left
   after the alignment is alignment error). Against a group's representative, a failed
   alignment is tried once more the other way round. Two overlapping boxes of one image
   are one object boxed twice, left to the within-image duplicate check, never a repeat.
3. **Groups**: connected components of the verified pairs; every member is then verified
   against the group's representative (the crop verified against the most others, then the
   largest) and members that do not match it are split off and grouped again among
   themselves, as the image groups are.

Each member is labelled by where it sits relative to the representative (see
:data:`~lookalike.annotations.records.ObjectRelation`): in a ``different-image`` (a
repeat across pictures, what the report is about), in the ``same-image``, or in a
``near-duplicate-image`` of it (the same picture saved twice: its objects repeat as
expected and are not noise).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from ..features import compute_features
from ..grouping import connected_components
from ..index import knn_pairs
from ..verify import Prepared, Verdict, VerifySettings, prepare_thumb, verify_pair
from .crops import CropFeatures
from .records import ObjectCrop, ObjectGroup, ObjectMember, ObjectRelation

_ALIGN_PX = 64
_ECC_ITERATIONS = 15
_SAME_OBJECT_IOU = 0.1  # boxes of one image overlapping more are one object (within-image check)
_SCOPE_ORDER = {"across-images": 0, "same-image": 1, "near-duplicate-images": 2}


@dataclass(frozen=True)
class RepeatSettings:
    """Knobs of the repeated-object search; see the module docstring.

    Attributes:
        neighbours: Nearest descriptors examined per crop.
        min_similarity: Smallest descriptor cosine similarity of a candidate pair.
        align: Give candidates that fail the plain check a second, aligned chance.
        centre_similarity: Smallest similarity of two candidates' centre descriptors
            (:func:`.crops.centre_descriptor`) for them to be verified at all; members of
            a group are always verified against its representative.
        min_overlap: Share of each crop (per axis) the aligned crops must have in common.
        max_scale: Largest scale change (per axis) between the two boxes of an object.
        max_shear: Largest off-diagonal term of the alignment (rotation or shear).
        min_correlation: Smallest ECC correlation of an alignment worth verifying.
        aligned_shift_limit: ``shift_limit`` of the aligned check, in 128 px thumbnail
            pixels: what is left after ECC is alignment error, not moved content (the plain
            check keeps the engine's limit).
        aligned_aspect_change: ``max_aspect_change`` of the aligned check: the shared
            parts' aspect ratios in image pixels, which carry the error of the estimated
            scales (the plain check keeps the engine's limit).
        verify: Limits of :func:`lookalike.verify.verify_pair`.
    """

    neighbours: int = 10
    min_similarity: float = 0.7
    align: bool = True
    centre_similarity: float = 0.85
    min_overlap: float = 0.7
    max_scale: float = 1.3
    max_shear: float = 0.05
    min_correlation: float = 0.7
    aligned_shift_limit: float = 2.0
    aligned_aspect_change: float = 0.15
    verify: VerifySettings = VerifySettings()


PictureOf = Callable[[str], Hashable]
"""Maps an image path to its picture: equal for an image and its near-duplicate copies."""


def find_repeated_objects(
    crops: Sequence[CropFeatures],
    *,
    settings: RepeatSettings = RepeatSettings(),
    picture_of: PictureOf | None = None,
) -> list[ObjectGroup]:
    """Group the crops that show the same object; see the module docstring.

    Args:
        crops: Featured crops, in reading order (:func:`.crops.feature_crops`).
        settings: Search and verification knobs.
        picture_of: Tells which images are near-duplicates of each other (same value);
            default: every image file is its own picture.

    Returns:
        Groups of two or more crops, ``across-images`` first, then larger groups first,
        numbered from 1 in that order.

    Example:
        >>> groups = find_repeated_objects(feature_crops(dataset).featured)  # doctest: +SKIP
        >>> [(g.scope, len(g.members) + 1) for g in groups]  # doctest: +SKIP
        [('across-images', 5)]
    """
    if len(crops) < 2:
        return []
    judge = _Judge(crops, settings)
    vectors = np.stack([c.features.descriptor for c in crops]).astype(np.float32)
    cand = knn_pairs(
        vectors, k=min(settings.neighbours, len(crops) - 1), min_similarity=settings.min_similarity
    )
    edges = [
        (i, j)
        for i, j in zip(cand.i.tolist(), cand.j.tolist(), strict=True)
        if judge(i, j).accepted
    ]
    ii = np.array([e[0] for e in edges], dtype=np.int64)
    jj = np.array([e[1] for e in edges], dtype=np.int64)
    labels = connected_components(len(crops), ii, jj)
    adjacency: dict[int, set[int]] = {}
    for i, j in edges:
        adjacency.setdefault(i, set()).add(j)
        adjacency.setdefault(j, set()).add(i)
    components: dict[int, list[int]] = {}
    for k, label in enumerate(labels.tolist()):
        components.setdefault(label, []).append(k)
    raw = []
    for members in components.values():
        if len(members) > 1:
            raw.extend(_split_by_representative(members, crops, adjacency, judge))
    place = picture_of or _own_picture
    raw.sort(key=lambda g: g[0])
    groups = [_to_group(rep, rest, crops, judge, place) for rep, rest in raw]
    order = sorted(
        range(len(groups)),
        key=lambda n: (_SCOPE_ORDER[groups[n].scope], -len(groups[n].members), n),
    )
    return [
        ObjectGroup(k, groups[n].representative, groups[n].members, groups[n].scope)
        for k, n in enumerate(order, 1)
    ]


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _own_picture(path: str) -> Hashable:
    return os.path.realpath(path)


class _Judge:
    """Verifies crop pairs (by index), caching each verdict."""

    def __init__(self, crops: Sequence[CropFeatures], settings: RepeatSettings) -> None:
        self.crops = crops
        self.settings = settings
        self.verdicts: dict[tuple[int, int], Verdict] = {}
        self.thorough: set[tuple[int, int]] = set()
        self.stats = {"plain": 0, "aligned": 0}
        self._prepared = lru_cache(maxsize=8192)(self._prepare)

    def _prepare(self, k: int) -> Prepared:
        return prepare_thumb(self.crops[k].features.thumb)

    def __call__(self, i: int, j: int, *, thorough: bool = False) -> Verdict:
        """The verdict on crops ``i`` and ``j``; ``thorough`` tries the aligned check
        whatever the descriptor similarity (for members already linked to a group)."""
        key = (min(i, j), max(i, j))
        cached = self.verdicts.get(key)
        if cached is None or (thorough and not cached.accepted and key not in self.thorough):
            if thorough:
                self.thorough.add(key)
            cached = self.verdicts[key] = self._verify(*key, thorough=thorough)
        return cached

    def _verify(self, i: int, j: int, *, thorough: bool) -> Verdict:
        a, b = self.crops[i], self.crops[j]
        s = self.settings
        if a.image == b.image and _iou(a.box, b.box) > _SAME_OBJECT_IOU:
            return Verdict(False, 0.0, {"reason": "overlapping boxes of one image"})
        centre = float(a.centre @ b.centre)
        if not thorough and centre < s.centre_similarity:
            reason = "the middles of the two boxes differ"
            return Verdict(False, 0.0, {"centre_similarity": round(centre, 4), "reason": reason})
        self.stats["plain"] += 1
        plain = verify_pair(
            a.features, b.features, a.size, b.size, s.verify,
            prepared=(self._prepared(i), self._prepared(j)),
        )  # fmt: skip
        if plain.accepted or not s.align:
            return plain
        self.stats["aligned"] += 1
        aligned = verify_aligned_crops(a, b, s)
        if thorough and (aligned is None or not aligned.accepted):
            aligned = verify_aligned_crops(b, a, s)  # ECC may settle better the other way
        return aligned if aligned is not None and aligned.accepted else plain


def verify_aligned_crops(
    a: CropFeatures, b: CropFeatures, settings: RepeatSettings = RepeatSettings()
) -> Verdict | None:
    """Align ``b``'s crop onto ``a``'s (box jitter) and verify the part they share.

    Returns:
        The verdict of :func:`lookalike.verify.verify_pair` on the shared parts, with the
        alignment in its evidence; ``None`` when no plausible alignment is found.
    """
    ta, tb = a.features.thumb, b.features.thumb
    warp, correlation = _ecc(ta, tb)
    if warp is None or correlation < settings.min_correlation:
        return None
    region = _shared_region(warp, settings)
    if region is None:
        return None
    (x0, y0, x1, y1), overlap_a, overlap_b = region
    n = ta.shape[0]
    scale = n / _ALIGN_PX
    big = warp.astype(np.float64).copy()
    big[:, 2] = big[:, 2] * scale + 0.5 * (scale - 1) * (1 - big[:, 0] - big[:, 1])
    warped = cv2.warpAffine(
        tb, big, (n, n), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip
    r0, r1 = math.ceil(y0 * scale), math.floor(y1 * scale)
    c0, c1 = math.ceil(x0 * scale), math.floor(x1 * scale)
    fa = compute_features(np.ascontiguousarray(ta[r0:r1, c0:c1]))
    fb = compute_features(np.ascontiguousarray(warped[r0:r1, c0:c1]))
    size_a = _part(a.size, overlap_a)
    size_b = _part(b.size, overlap_b)
    limits = replace(
        settings.verify,
        shift_limit=settings.aligned_shift_limit,
        max_aspect_change=settings.aligned_aspect_change,
    )
    verdict = verify_pair(fa, fb, size_a, size_b, limits)
    evidence: dict[str, Any] = {
        **verdict.evidence,
        "method": "aligned crop",
        "ecc_correlation": round(correlation, 4),
        "warp": [round(float(v), 3) for v in warp.ravel()],
        "overlap": [round(min(overlap_a), 3), round(min(overlap_b), 3)],
    }
    return Verdict(verdict.accepted, verdict.score, evidence)


def _ecc(ta: np.ndarray, tb: np.ndarray) -> tuple[np.ndarray | None, float]:
    """Affine map from ``ta``'s 64 px thumbnail to ``tb``'s (ECC), and its correlation."""
    small_a, small_b = _small(ta), _small(tb)
    warp = np.eye(2, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, _ECC_ITERATIONS, 1e-3)
    try:
        correlation, warp = cv2.findTransformECC(  # type: ignore[call-overload]
            small_a, small_b, warp, cv2.MOTION_AFFINE, criteria, None, 1
        )
    except cv2.error:  # the iteration diverged or the pictures are too flat
        return None, 0.0
    return warp, float(correlation)


def _small(thumb: np.ndarray) -> np.ndarray:
    small = cv2.resize(thumb, (_ALIGN_PX, _ALIGN_PX), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(small.astype(np.float32), (0, 0), 1.0)


def _shared_region(
    warp: np.ndarray, settings: RepeatSettings
) -> tuple[tuple[float, float, float, float], tuple[float, float], tuple[float, float]] | None:
    """The rectangle of ``a``'s 64 px thumbnail that ``b`` also shows, if plausible.

    Returns ``((x0, y0, x1, y1), overlap_a, overlap_b)``: the rectangle, and the share of
    each crop's width and height it covers; ``None`` when the map is not box jitter or
    the crops share too little.
    """
    sx, sy = float(warp[0, 0]), float(warp[1, 1])
    shear = max(abs(float(warp[0, 1])), abs(float(warp[1, 0])))
    limit = settings.max_scale
    if shear > settings.max_shear or not all(1 / limit <= s <= limit for s in (sx, sy)):
        return None
    n, tx, ty = float(_ALIGN_PX), float(warp[0, 2]), float(warp[1, 2])
    x0, x1 = max(0.0, -tx / sx) + 1, min(n, (n - tx) / sx) - 1
    y0, y1 = max(0.0, -ty / sy) + 1, min(n, (n - ty) / sy) - 1
    if x1 <= x0 or y1 <= y0:
        return None
    overlap_a = ((x1 - x0) / n, (y1 - y0) / n)
    overlap_b = (overlap_a[0] * sx, overlap_a[1] * sy)
    if min(*overlap_a, *overlap_b) < settings.min_overlap:
        return None
    return (x0, y0, x1, y1), overlap_a, overlap_b


def _part(size: tuple[int, int], share: tuple[float, float]) -> tuple[int, int]:
    return (max(1, round(size[0] * share[0])), max(1, round(size[1] * share[1])))


def _split_by_representative(
    members: list[int],
    crops: Sequence[CropFeatures],
    adjacency: dict[int, set[int]],
    judge: _Judge,
) -> list[tuple[int, list[int]]]:
    """Pick the representative, keep the crops verified against it, regroup the rest.

    The representative is the crop verified against the most others of the component
    (then the largest): the one most likely to verify against every member.
    """
    out = []
    pending = [members]
    while pending:
        component = pending.pop()
        if len(component) < 2:
            continue
        inside = set(component)
        degree = {k: len(adjacency.get(k, set()) & inside) for k in component}
        rep, *others = sorted(component, key=lambda k: (-degree[k], *_rank(crops[k], k)))
        kept = [k for k in others if judge(rep, k, thorough=True).accepted]
        left = [k for k in others if k not in set(kept)]
        if kept:
            out.append((rep, kept))
        pending.extend(_components_of(left, adjacency))
    return out


def _rank(crop: CropFeatures, k: int) -> tuple[int, int]:
    """Representative order: the largest crop, then reading order."""
    return (-(crop.size[0] * crop.size[1]), k)


def _components_of(nodes: list[int], adjacency: dict[int, set[int]]) -> list[list[int]]:
    """Connected components of ``nodes`` using only edges between them."""
    inside, seen, out = set(nodes), set(), []
    for start in sorted(nodes):
        if start in seen:
            continue
        stack, comp = [start], []
        seen.add(start)
        while stack:
            k = stack.pop()
            comp.append(k)
            for other in adjacency.get(k, ()):
                if other in inside and other not in seen:
                    seen.add(other)
                    stack.append(other)
        out.append(sorted(comp))
    return out


def _to_group(
    rep: int, rest: list[int], crops: Sequence[CropFeatures], judge: _Judge, picture_of: PictureOf
) -> ObjectGroup:
    """An :class:`ObjectGroup` (numbered 0 until sorted) with each member's relation."""
    r = crops[rep]
    members = []
    for k in sorted(rest):
        c = crops[k]
        verdict = judge(rep, k)
        relation = _relation(r.image, c.image, picture_of)
        members.append(
            ObjectMember(c.annotation, c.image, c.box, verdict.score, verdict.evidence, relation)
        )
    relations = {m.relation for m in members}
    scope = (
        "across-images"
        if "different-image" in relations
        else "same-image"
        if "same-image" in relations
        else "near-duplicate-images"
    )
    return ObjectGroup(0, ObjectCrop(r.annotation, r.image, r.box), tuple(members), scope)  # type: ignore[arg-type]


def _relation(a: str, b: str, picture_of: PictureOf) -> ObjectRelation:
    if a == b or os.path.realpath(a) == os.path.realpath(b):
        return "same-image"
    if picture_of(a) == picture_of(b):
        return "near-duplicate-image"
    return "different-image"
