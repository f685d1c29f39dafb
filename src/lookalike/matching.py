"""Find duplicate pairs among distinct contents: pixel twins, then verified near-duplicates.

Input is one :class:`~lookalike.store.ImageRow` per distinct content digest (byte-exact
copies are handled by grouping, not here). Candidates are the nearest neighbours of each
image's descriptor (FAISS); every candidate is verified on thumbnails
(:mod:`lookalike.verify`), and verdicts are cached by digest pair so a re-scan repeats none.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from .index import knn_pairs
from .store import ImageRow
from .verify import Prepared, VerifySettings, prepare_thumb, verify_pair


@dataclass(frozen=True)
class MatchSettings:
    """Knobs of candidate search and verification."""

    neighbours: int = 10
    min_descriptor_similarity: float = 0.6
    verify: VerifySettings = VerifySettings()

    def cache_key(self) -> str:
        """Identify the verification settings whose verdicts can be reused."""
        from .features import FEATURE_VERSION

        return json.dumps({"features": FEATURE_VERSION, **asdict(self.verify)}, sort_keys=True)


@dataclass(frozen=True)
class DigestPair:
    """Two distinct contents found to be duplicates."""

    a: str
    b: str
    relation: str  # pixel | near
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
        self._prepared = lru_cache(maxsize=4096)(self._prepare)

    def _prepare(self, digest: str) -> Prepared:
        return prepare_thumb(self.rows[digest].features.thumb)

    def judge(self, a: str, b: str) -> DigestPair | None:
        """Return the pair when ``a`` and ``b`` are duplicates, else ``None``."""
        a, b = sorted((a, b))
        ra, rb = self.rows[a], self.rows[b]
        if ra.pixel_digest and ra.pixel_digest == rb.pixel_digest:
            return DigestPair(a, b, "pixel", 1.0, {"method": "pixel digest"})
        if ra.stream_digest and ra.stream_digest == rb.stream_digest:
            return DigestPair(a, b, "pixel", 1.0, {"method": "JPEG stream digest"})
        hit = self.cached.get((a, b)) or self.new.get((a, b))
        if hit is None:
            verdict = verify_pair(
                ra.features,
                rb.features,
                (ra.width, ra.height),
                (rb.width, rb.height),
                self.settings.verify,
                prepared=(self._prepared(a), self._prepared(b)),
            )
            hit = (verdict.accepted, verdict.score, json.dumps(verdict.evidence, sort_keys=True))
            self.new[(a, b)] = hit
        accepted, score, evidence_json = hit
        if not accepted:
            return None
        evidence = json.loads(evidence_json)
        if self._same_pixels(ra, rb, evidence):
            return DigestPair(a, b, "pixel", 1.0, {"method": "pixel digest"})
        return DigestPair(a, b, "near", score, evidence)

    def _same_pixels(self, ra: ImageRow, rb: ImageRow, evidence: dict[str, Any]) -> bool:
        """Full-resolution pixel check of a lossless file against a lossy one.

        Only tried when their thumbnails are nearly equal, since it decodes the lossy file
        in full. (Two lossless files compare by decode-time digests, two JPEGs by stream.)
        """
        if ra.lossless == rb.lossless or (ra.width, ra.height) != (rb.width, rb.height):
            return False
        if evidence.get("mad", 1.0) > 0.002 or _max_thumb_difference(ra, rb) > 3:
            return False
        da, db = self.pixel_digest_of(ra.digest), self.pixel_digest_of(rb.digest)
        return da is not None and da == db


def find_pairs(
    rows: Sequence[ImageRow],
    settings: MatchSettings,
    judge: PairJudge,
    *,
    workers: int | None = None,
) -> list[DigestPair]:
    """All duplicate pairs among distinct contents, sorted by digests."""
    found: dict[tuple[str, str], DigestPair] = {}
    for a, b in _pixel_twin_candidates(rows):
        pair = judge.judge(a, b)
        if pair is not None:
            found[(pair.a, pair.b)] = pair
    vectors = np.stack([row.features.descriptor for row in rows]) if rows else np.zeros((0, 1))
    cand = knn_pairs(
        vectors.astype(np.float32),
        k=settings.neighbours,
        min_similarity=settings.min_descriptor_similarity,
        workers=workers,
    )
    for i, j, sim in zip(cand.i.tolist(), cand.j.tolist(), cand.score.tolist(), strict=True):
        key = tuple(sorted((rows[i].digest, rows[j].digest)))
        if key in found:
            continue
        pair = judge.judge(*key)
        if pair is not None:
            pair.evidence.setdefault("descriptor_similarity", round(float(sim), 4))
            found[key] = pair
    return [found[k] for k in sorted(found)]


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
