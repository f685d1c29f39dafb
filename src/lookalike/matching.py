"""Find duplicate pairs among distinct contents: pixel twins, then verified near-duplicates.

Input is one :class:`~lookalike.store.ImageRow` per distinct content digest (byte-exact
copies are handled by grouping, not here). Candidates come from nearest-neighbour search
(FAISS, :mod:`lookalike.index`) in three ways, and every candidate is verified:

1. **Identity**: the ``neighbours`` nearest descriptors. Verified on whole thumbnails
   (:func:`lookalike.verify.verify_pair`), after a 32 px first look that rejects most
   unrelated candidates for a few microseconds.
2. **Views** (crops, rotations, mirror images): the ``view_neighbours`` nearest of the
   global and of the centre descriptor, each also against the other images' mirrored
   descriptors. These pairs pay for geometry only when the identity check fails: a
   Fourier-Mellin screen first (:mod:`lookalike.geometry`, tens of microseconds), then
   alignment and comparison inside the overlap for the few that pass.
3. **Embeddings** (optional, :mod:`lookalike.embeddings`): nearest neighbours by cosine of
   a learned embedding, verified like views.

Verdicts are cached by digest pair and settings, so a re-scan repeats none. A verdict
records whether geometry was tried, so a pair first seen as an identity candidate and
later as a view candidate pays only for the missing step.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from .features import centre_descriptor, mirror_descriptor
from .geometry import (
    AlignThumbs,
    GeometryLimits,
    GeoPrepared,
    Screen,
    align,
    compare_thumb,
    ecc_thumbs,
    fill_mask,
    prepare_geometry,
    screen_pairs,
    textured,
)
from .index import knn_pairs
from .store import ImageRow
from .verify import (
    Prepared,
    Verdict,
    VerifySettings,
    coarse_thumb,
    prepare_thumb,
    verify_aligned,
    verify_pair,
)

MATCH_VERSION = 2  # bump when verdicts computed by older code must not be reused


@dataclass(frozen=True)
class MatchSettings:
    """Knobs of candidate search and verification."""

    neighbours: int = 10
    min_descriptor_similarity: float = 0.6
    mirror: bool = True  # look for mirror images (relation ``mirror``)
    geometric: bool = True  # look for crops and rotations (alignment)
    view_neighbours: int = 3
    min_view_similarity: float = 0.5
    verify: VerifySettings = VerifySettings()
    geometry: GeometryLimits = GeometryLimits()

    def cache_key(self) -> str:
        """Identify the verification settings whose verdicts can be reused."""
        from .features import FEATURE_VERSION

        return json.dumps(
            {
                "features": FEATURE_VERSION,
                "matching": MATCH_VERSION,
                "mirror": self.mirror,
                "geometric": self.geometric,
                "geometry": asdict(self.geometry),
                **asdict(self.verify),
            },
            sort_keys=True,
        )


@dataclass(frozen=True)
class DigestPair:
    """Two distinct contents found to be duplicates."""

    a: str
    b: str
    relation: str  # pixel | near | mirror
    score: float
    evidence: dict[str, Any]


Verdicts = dict[tuple[str, str], tuple[bool, float, str]]
PixelDigestOf = Callable[[str], "str | None"]


class PairJudge:
    """Verifies digest pairs on demand, with a verdict cache shared across calls."""

    def __init__(
        self,
        rows: Sequence[ImageRow],
        settings: MatchSettings,
        cached: Verdicts,
        pixel_digest_of: PixelDigestOf,
    ) -> None:
        self.rows = {row.digest: row for row in rows}
        self.settings = settings
        self.cached = cached
        self.new: Verdicts = {}
        self.pixel_digest_of = pixel_digest_of
        self.stats = {"identity": 0, "screened": 0, "aligned": 0}
        self._prepared = lru_cache(maxsize=4096)(self._prepare)
        self._coarse = lru_cache(maxsize=8192)(self._prepare_coarse)
        self._geo = lru_cache(maxsize=8192)(self._prepare_geo)
        self._aligning = lru_cache(maxsize=1024)(self._prepare_aligning)
        self._screens: dict[tuple[str, str], list[Screen]] = {}

    def _prepare(self, digest: str) -> Prepared:
        return prepare_thumb(self.rows[digest].features.thumb)

    def _prepare_coarse(self, digest: str) -> Prepared:
        return coarse_thumb(self.rows[digest].features.thumb)

    def _prepare_geo(self, digest: str) -> GeoPrepared:
        row = self.rows[digest]
        return prepare_geometry(row.features.thumb, row.width, row.height)

    def _prepare_aligning(self, digest: str) -> tuple[AlignThumbs, np.ndarray, np.ndarray, np.ndarray]:
        """Alignment thumbnails, then plain thumbnail, texture map, fill map (each plain and
        mirrored)."""
        thumb = self.rows[digest].features.thumb
        plain, blurred = compare_thumb(thumb)
        tex, fill = textured(blurred), fill_mask(thumb)
        return (
            ecc_thumbs(thumb),
            np.stack([plain, plain[:, ::-1]]),
            np.stack([tex, tex[:, ::-1]]),
            np.stack([fill, fill[:, ::-1]]),
        )

    def _orientations(self) -> list[tuple[int, int, bool]]:
        return [(0, 1, False), (0, 1, True)] if self.settings.mirror else [(0, 1, False)]

    def screen_many(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Screen digest pairs whose geometry is still to be judged, in one batch."""
        todo = []
        for a, b in pairs:
            a, b = sorted((a, b))
            hit = self.cached.get((a, b)) or self.new.get((a, b))
            if hit is not None and (hit[0] or '"geometry_tried": true' in hit[2]):
                continue
            if (a, b) not in self._screens and not (self.rows[a].features.is_flat or self.rows[b].features.is_flat):
                todo.append((a, b))
        if not todo:
            return
        index: dict[str, int] = {}
        for d in (d for pair in todo for d in pair):
            index.setdefault(d, len(index))
        prepared = [self._geo(d) for d in index]
        tries = [(index[a], index[b], m) for a, b in todo for _, _, m in self._orientations()]
        screens = screen_pairs(prepared, tries)
        k = len(self._orientations())
        for n, key in enumerate(todo):
            self._screens[key] = screens[n * k : (n + 1) * k]

    def judge(self, a: str, b: str, *, geometric: bool = True) -> DigestPair | None:
        """Return the pair when ``a`` and ``b`` are duplicates, else ``None``.

        ``geometric=False`` checks the whole pictures only (plain and, when enabled,
        mirrored); the default also tries to align crops and rotations.
        """
        a, b = sorted((a, b))
        ra, rb = self.rows[a], self.rows[b]
        if ra.pixel_digest and ra.pixel_digest == rb.pixel_digest:
            return DigestPair(a, b, "pixel", 1.0, {"method": "pixel digest"})
        if ra.stream_digest and ra.stream_digest == rb.stream_digest:
            return DigestPair(a, b, "pixel", 1.0, {"method": "JPEG stream digest"})
        hit = self.cached.get((a, b)) or self.new.get((a, b))
        wants_geometry = geometric and self.settings.geometric
        if hit is None or (wants_geometry and not hit[0] and '"geometry_tried": false' in hit[2]):
            verdict = self._verify(a, b, geometric=wants_geometry)
            hit = (verdict.accepted, verdict.score, json.dumps(verdict.evidence, sort_keys=True))
            self.new[(a, b)] = hit
        accepted, score, evidence_json = hit
        if not accepted:
            return None
        evidence = json.loads(evidence_json)
        relation = evidence.pop("relation", "near")
        evidence.pop("geometry_tried", None)
        if relation == "near" and self._same_pixels(ra, rb, evidence):
            return DigestPair(a, b, "pixel", 1.0, {"method": "pixel digest"})
        return DigestPair(a, b, relation, score, evidence)

    def _verify(self, a: str, b: str, *, geometric: bool) -> Verdict:
        """Identity, then mirrored identity, then (when asked) geometry."""
        ra, rb = self.rows[a], self.rows[b]
        fa, fb = ra.features, rb.features
        sizes = ((ra.width, ra.height), (rb.width, rb.height))
        coarse = (self._coarse(a), self._coarse(b))

        def prepared() -> tuple[Prepared, Prepared]:
            return self._prepared(a), self._prepared(b)

        self.stats["identity"] += 1
        kw = {"prepared": prepared, "coarse": coarse}
        plain = verify_pair(fa, fb, *sizes, self.settings.verify, **kw)  # type: ignore[arg-type]
        if plain.accepted:
            return _tagged(plain, "near", geometry_tried=False)
        if self.settings.mirror:
            flipped = verify_pair(fa, fb, *sizes, self.settings.verify, mirror=True, **kw)  # type: ignore[arg-type]
            if flipped.accepted:
                return _tagged(flipped, "mirror", geometry_tried=False)
        if not geometric or fa.is_flat or fb.is_flat:
            return _tagged(plain, "near", geometry_tried=False)
        found = self._verify_geometry(a, b)
        if found is None:
            return _tagged(plain, "near", geometry_tried=True)
        return found

    def _verify_geometry(self, a: str, b: str) -> Verdict | None:
        """Screen both orientations, align the better one, compare inside the overlap."""
        ga, gb = self._geo(a), self._geo(b)
        tries = self._orientations()
        screens = self._screens.pop((a, b), None) or screen_pairs([ga, gb], tries)
        self.stats["screened"] += 1
        best = max(range(len(tries)), key=lambda k: screens[k].response)
        screen, mirror = screens[best], tries[best][2]
        limits = self.settings.geometry
        if screen.response < limits.min_response:
            return None
        self.stats["aligned"] += 1
        (ecc_a, plain_a, tex_a, fill_a), (ecc_b, plain_b, tex_b, fill_b) = (
            self._aligning(a),
            self._aligning(b),
        )
        m = int(mirror)
        alignment = align(ga, gb, ecc_a, ecc_b, screen, mirror=mirror, limits=limits)
        if alignment is None:
            return None
        verdict = verify_aligned(
            alignment, plain_a[0], plain_b[m], (tex_a[0], tex_b[m]), (fill_a[0], fill_b[m]),
            self.settings.verify, limits,
        )  # fmt: skip
        hashes = {"phash_distance": (self.rows[a].features.phash ^ self.rows[b].features.phash).bit_count()}
        verdict = Verdict(verdict.accepted, verdict.score, {**hashes, **verdict.evidence})
        return _tagged(verdict, "mirror" if mirror else "near", geometry_tried=True)

    def _same_pixels(self, ra: ImageRow, rb: ImageRow, evidence: dict[str, Any]) -> bool:
        """Full-resolution pixel check of a lossless file against a lossy one.

        Only tried when their thumbnails are nearly equal, since it decodes the lossy file
        in full. (Two lossless files compare by decode-time digests, two JPEGs by stream.)
        """
        if evidence.get("method") != "thumbnail":
            return False
        if ra.lossless == rb.lossless or (ra.width, ra.height) != (rb.width, rb.height):
            return False
        if evidence.get("mad", 1.0) > 0.002 or _max_thumb_difference(ra, rb) > 3:
            return False
        da, db = self.pixel_digest_of(ra.digest), self.pixel_digest_of(rb.digest)
        return da is not None and da == db


def _tagged(verdict: Verdict, relation: str, *, geometry_tried: bool) -> Verdict:
    evidence = {**verdict.evidence, "relation": relation, "geometry_tried": geometry_tried}
    return Verdict(verdict.accepted, verdict.score, evidence)


Candidates = dict[tuple[int, int], tuple[str, float]]
"""Index pairs ``(i, j)``, ``i < j``, -> (which search found them, its similarity)."""


def find_pairs(
    rows: Sequence[ImageRow],
    settings: MatchSettings,
    judge: PairJudge,
    *,
    workers: int | None = None,
    extra: Candidates | None = None,
) -> list[DigestPair]:
    """All duplicate pairs among distinct contents, sorted by digests.

    ``extra`` adds candidates found elsewhere (learned embeddings); they are verified
    like view candidates, geometry included.
    """
    found: dict[tuple[str, str], DigestPair] = {}
    for a, b in _pixel_twin_candidates(rows):
        pair = judge.judge(a, b)
        if pair is not None:
            found[(pair.a, pair.b)] = pair
    if not rows:
        return []
    vectors = np.stack([row.features.descriptor for row in rows]).astype(np.float32)
    identity = _self_pairs(vectors, settings.neighbours, settings.min_descriptor_similarity, workers)
    _judge_all(rows, identity, judge, found, "descriptor_similarity", geometric=False)
    if settings.geometric or settings.mirror:
        views = view_candidates(rows, settings, vectors=vectors, workers=workers)
        _judge_all(rows, views, judge, found, "view_similarity", geometric=False)
        if settings.geometric:
            _screen_all(rows, views, judge, found)
            _judge_all(rows, views, judge, found, "view_similarity", geometric=True)
    if extra:
        _judge_all(rows, extra, judge, found, "embedding_similarity", geometric=False)
        if settings.geometric:
            _screen_all(rows, extra, judge, found)
            _judge_all(rows, extra, judge, found, "embedding_similarity", geometric=True)
    return [found[k] for k in sorted(found)]


def _judge_all(
    rows: Sequence[ImageRow],
    candidates: Candidates,
    judge: PairJudge,
    found: dict[tuple[str, str], DigestPair],
    label: str,
    *,
    geometric: bool,
) -> None:
    for (i, j), (view, sim) in sorted(candidates.items()):
        key = tuple(sorted((rows[i].digest, rows[j].digest)))
        if key in found:
            continue
        pair = judge.judge(*key, geometric=geometric)
        if pair is not None:
            pair.evidence.setdefault(label, round(float(sim), 4))
            if label == "view_similarity":
                pair.evidence.setdefault("view", view)
            found[key] = pair  # type: ignore[index]


def _screen_all(
    rows: Sequence[ImageRow],
    candidates: Candidates,
    judge: PairJudge,
    found: dict[tuple[str, str], DigestPair],
) -> None:
    keys = [(rows[i].digest, rows[j].digest) for i, j in sorted(candidates)]
    judge.screen_many([k for k in keys if tuple(sorted(k)) not in found])


def view_candidates(
    rows: Sequence[ImageRow],
    settings: MatchSettings,
    *,
    vectors: np.ndarray | None = None,
    workers: int | None = None,
) -> Candidates:
    """Pairs close in the global or the centre descriptor, plain or mirrored.

    A search over ``[X; mirror(X)]`` finds both at once: a neighbour from the other half
    is a mirror candidate.
    """
    n = len(rows)
    if vectors is None:
        vectors = np.stack([row.features.descriptor for row in rows]).astype(np.float32)
    centres = np.stack([centre_descriptor(row.features.thumb) for row in rows]).astype(np.float32)
    out: Candidates = {}
    for name, x in (("global", vectors), ("centre", centres)):
        both = np.vstack([x, mirror_descriptor(x)]) if settings.mirror else x
        k = settings.view_neighbours * (2 if settings.mirror else 1) + 1
        pairs = _self_pairs(both, k, settings.min_view_similarity, workers)
        for (p, q), (_, sim) in pairs.items():
            i, j = p % n, q % n
            if i == j:
                continue
            flipped = (p >= n) != (q >= n)
            key = (min(i, j), max(i, j))
            label = f"mirror {name}" if flipped else name
            if key not in out or out[key][1] < sim:
                out[key] = (label, sim)
    return out


def _self_pairs(vectors: np.ndarray, k: int, min_similarity: float, workers: int | None) -> Candidates:
    if len(vectors) < 2:
        return {}
    cand = knn_pairs(vectors, k=k, min_similarity=min_similarity, workers=workers)
    out: Candidates = {}
    for i, j, sim in zip(cand.i.tolist(), cand.j.tolist(), cand.score.tolist(), strict=True):
        out[(min(i, j), max(i, j))] = ("descriptor", float(sim))
    return out


def _max_thumb_difference(ra: ImageRow, rb: ImageRow) -> int:
    a = ra.features.thumb.astype(np.int16)
    b = rb.features.thumb.astype(np.int16)
    return int(np.abs(a - b).max())


def _pixel_twin_candidates(rows: Sequence[ImageRow]) -> list[tuple[str, str]]:
    by_pixels: dict[str, list[str]] = {}
    for row in rows:
        for key in (row.pixel_digest, row.stream_digest):
            if key:
                by_pixels.setdefault(key, []).append(row.digest)
    out = []
    for digests in by_pixels.values():
        out.extend((digests[0], other) for other in digests[1:])
    return out
