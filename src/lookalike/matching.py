"""Find duplicate pairs among distinct contents: pixel twins, then verified near-duplicates.

Input is one :class:`~lookalike.store.ImageRow` per distinct content digest (byte-exact
copies are handled by grouping, not here). Candidates come from nearest-neighbour search
(FAISS, :mod:`lookalike.index`) in three ways, and every candidate is verified:

1. **Identity**: the ``neighbours`` nearest descriptors. Verified on whole thumbnails
   (:func:`lookalike.verify.verify_pair`), after a 32 px first look that rejects most
   unrelated candidates for a few microseconds.
2. **Views** (crops, rotations, mirror images): the ``view_neighbours`` nearest of the
   global and of the centre descriptor, each also against the other images' mirrored
   descriptors (and, for pictures rotated onto a larger canvas, the descriptor of the
   picture turned back upright); plus the ``spectrum_neighbours`` nearest by Fourier-Mellin
   invariants (:func:`lookalike.geometry.invariant_descriptor`), which rotation, scale and
   mirroring barely move. These pairs pay for geometry only when the identity check fails: a
   Fourier-Mellin screen first (:mod:`lookalike.geometry`, tens of microseconds), then
   alignment and comparison inside the overlap for the few that pass.
3. **Embeddings** (optional, :mod:`lookalike.embeddings`): nearest neighbours by cosine of
   a learned embedding, verified like views.

Verdicts are cached by digest pair and settings, so a re-scan repeats none. A verdict
records whether geometry was tried, so a pair first seen as an identity candidate and
later as a view candidate pays only for the missing step.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from typing import Any

import numpy as np

from .executors import Executor, default_workers
from .features import (
    DESCRIPTOR_DIM,
    THUMB_PX,
    Features,
    Trimmed,
    centre_descriptor,
    fill_rotation,
    frame_before_rotation,
    mirror_descriptor,
    trim_bars,
    upright_descriptor,
    window_descriptors,
)
from .geometry import (
    Alignment,
    AlignThumbs,
    GeometryLimits,
    GeoPrepared,
    Screen,
    align,
    compare_thumb,
    crop_placement,
    ecc_thumbs,
    fill_mask,
    invariant_descriptor,
    prepare_geometry,
    refine,
    screen_pairs,
    textured,
)
from .index import knn_between, knn_pairs, locality_ranks, reciprocal_bars
from .orientation import (
    NAMES,
    all_orientations,
    canonical_orientations,
    compose,
    inverse,
    orient,
    oriented_size,
)
from .store import ImageRow, Store
from .verify import (
    Prepared,
    Verdict,
    VerifySettings,
    coarse_thumb,
    prepare_thumb,
    verify_aligned,
    verify_pair,
)

logger = logging.getLogger(__name__)

MATCH_VERSION = 10  # bump when verdicts computed by older code must not be reused


@dataclass(frozen=True)
class MatchSettings:
    """Knobs of candidate search and verification."""

    neighbours: int = 5
    min_descriptor_similarity: float = 0.75
    mirror: bool = True  # look for mirror images (relation ``mirror``)
    turns: bool = True  # look for copies turned by quarter turns or flipped upside down
    geometric: bool = True  # look for crops and rotations (alignment)
    view_neighbours: int = 2
    min_view_similarity: float = 0.5
    spectrum_neighbours: int = 1  # nearest by Fourier-Mellin invariants, images left alone
    # a candidate of any search is checked first only when each image is among the
    # other's ``mutual_neighbours`` nearest by that search (reciprocal neighbours), or when
    # it is at least ``sure_similarity`` similar; the others only when one of the two has
    # a group by then (see ``find_pairs``). Where many pictures look alike, that drops the
    # look-alikes every image has and keeps the copy that stands out from them
    mutual_neighbours: int = 3  # 0: every candidate is checked
    sure_similarity: float = 0.97
    group_pair_tries: int = 3  # geometric checks between two groups found already, per pair
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
                "turns": self.turns,
                "geometric": self.geometric,
                "geometry": asdict(self.geometry),
                **asdict(self.verify),
            },
            sort_keys=True,
        )


PRESETS: dict[str, dict[str, Any]] = {
    # min_score scales every limit at once (score = 1 - 0.2 * dissimilarity)
    "strict": {"min_score": 0.88, "max_angle_deg": 10.0, "min_response": 0.4},
    "balanced": {},
    "loose": {
        "min_score": 0.7,
        "max_angle_deg": 35.0,
        "min_response": 0.25,
        "view_neighbours": 5,
        "spectrum_neighbours": 2,
        "group_pair_tries": 6,
    },
}
"""Named trade-offs between precision and recall; measured in ``docs/quality.md``."""


def preset_settings(
    name: str, *, mirror: bool = True, geometric: bool = True, min_score: float | None = None
) -> MatchSettings:
    """The :class:`MatchSettings` of a named preset (``strict``, ``balanced``, ``loose``).

    Raises:
        ConfigError: unknown preset name.
    """
    from .errors import ConfigError

    if name not in PRESETS:
        raise ConfigError(f"Unknown preset {name!r}; choose from: {', '.join(PRESETS)}.")
    knobs = dict(PRESETS[name])
    if min_score is not None:
        knobs["min_score"] = min_score
    base = MatchSettings(mirror=mirror, geometric=geometric)
    verify = replace(base.verify, min_score=knobs.pop("min_score", base.verify.min_score))
    geo_keys = {k: knobs.pop(k) for k in ("max_angle_deg", "min_response") if k in knobs}
    return replace(base, verify=verify, geometry=replace(base.geometry, **geo_keys), **knobs)


@dataclass(frozen=True)
class DigestPair:
    """Two distinct contents found to be duplicates."""

    a: str
    b: str
    relation: str  # pixel | near | mirror
    score: float
    evidence: dict[str, Any]


Hit = tuple[bool, float, str]
"""A stored verdict: accepted, score, evidence as JSON."""
Verdicts = dict[tuple[str, str], Hit]
PixelDigestOf = Callable[[str], "str | None"]


class PairJudge:
    """Verifies digest pairs on demand, with a verdict cache shared across calls."""

    def __init__(
        self,
        rows: Sequence[ImageRow],
        settings: MatchSettings,
        cached: Verdicts,
        pixel_digest_of: PixelDigestOf,
        *,
        workers: int | None = None,
        store_path: str | None = None,
        cache_scale: float = 1.0,
        on_verdict: Callable[[str, str, Hit], None] | None = None,
    ) -> None:
        self.rows = {row.digest: row for row in rows}
        self.on_verdict = on_verdict  # told of each new verdict, e.g. to save it at once
        self.store_path = store_path  # where workers may read the rows (None: ship them)
        self.workers = workers if workers is not None else default_workers()
        self.settings = settings
        self.cached = cached
        self.new: Verdicts = {}
        self.pixel_digest_of = pixel_digest_of
        self.stats = {"identity": 0, "screened": 0, "crop searched": 0, "aligned": 0}
        # per-image caches, bounded: about 0.26, 0.02, 0.1 and 0.3 MB an image (1.4 GB in
        # all at ``cache_scale`` 1)
        size = lambda n: max(64, round(n * cache_scale))  # noqa: E731
        self._prepared = lru_cache(maxsize=size(2048))(self._prepare)
        self._coarse = lru_cache(maxsize=size(8192))(self._prepare_coarse)
        # the same two, of a picture inside its bars or border (a trimmed side)
        self._prepared_cut = lru_cache(maxsize=size(512))(self._prepare_cut)
        self._coarse_cut = lru_cache(maxsize=size(2048))(self._prepare_coarse_cut)
        # (called with ``turn`` always given: ``f(d)`` and ``f(d, 0)`` are two cache keys)
        self._geo = lru_cache(maxsize=size(4096))(self._prepare_geo)
        self._aligning = lru_cache(maxsize=size(1024))(self._prepare_aligning)
        # unbounded (a float an image): asked by the search, geometry and keeper choice
        self.fill_angle = lru_cache(maxsize=None)(self._measure_fill_angle)
        # bars and borders: a picture's content when it has any (a few percent of images)
        self.trimmed = lru_cache(maxsize=size(8192))(self._measure_trimmed)
        self._screens: dict[tuple[str, str], dict[bool, Screen]] = {}
        self._invariants: dict[str, np.ndarray] = {}
        self.frames = _Frames()  # orientations of accepted pairs, for the keeper checks

    def _prepare(self, digest: str) -> Prepared:
        return prepare_thumb(self.rows[digest].features.thumb)

    def _prepare_coarse(self, digest: str) -> Prepared:
        return coarse_thumb(self.rows[digest].features.thumb)

    def _prepare_cut(self, digest: str) -> Prepared:
        return prepare_thumb(self._cut(digest).features.thumb)

    def _prepare_coarse_cut(self, digest: str) -> Prepared:
        return coarse_thumb(self._cut(digest).features.thumb)

    def _cut(self, digest: str) -> Trimmed:
        found = self.trimmed(digest)
        if found is None:
            raise ValueError(f"{digest} has no bars or border to trim")
        return found

    def _sides(self, digest: str) -> list[tuple[bool, Features, tuple[int, int]]]:
        """``(trimmed, features, size)`` of a picture as it is and, when it has bars or a
        border, of the picture inside them."""
        row = self.rows[digest]
        sides = [(False, row.features, (row.width, row.height))]
        cut = self.trimmed(digest)
        return sides + ([(True, cut.features, cut.size)] if cut is not None else [])

    def _coarse_side(self, digest: str, cut: bool) -> Prepared:
        return self._coarse_cut(digest) if cut else self._coarse(digest)

    def _prepared_side(self, digest: str, cut: bool) -> Prepared:
        return self._prepared_cut(digest) if cut else self._prepared(digest)

    def _prepare_geo(self, digest: str, turn: int) -> GeoPrepared:
        row = self.rows[digest]
        width, height = oriented_size((row.width, row.height), turn)
        thumb = np.ascontiguousarray(orient(row.features.thumb, turn))
        prepared = prepare_geometry(thumb, width, height)
        if turn == 0:
            self._invariants[digest] = prepared.invariant
        return prepared

    def invariant(self, row: ImageRow) -> np.ndarray:
        """:func:`invariant_descriptor` of an image, kept (63 floats) from its geometry
        preparation when there was one."""
        found = self._invariants.get(row.digest)
        if found is None:
            found = invariant_descriptor(row.features.thumb, row.width, row.height)
            self._invariants[row.digest] = found
        return found

    def _prepare_aligning(
        self, digest: str, turn: int
    ) -> tuple[AlignThumbs, np.ndarray, np.ndarray, np.ndarray]:
        """Alignment thumbnails, then plain thumbnail, texture map, fill map (each plain and
        mirrored), of the picture turned by ``turn`` quarter turns."""
        thumb = np.ascontiguousarray(orient(self.rows[digest].features.thumb, turn))
        plain, blurred = compare_thumb(thumb)
        tex, fill = textured(blurred), fill_mask(thumb)
        return (
            ecc_thumbs(thumb),
            np.stack([plain, plain[:, ::-1]]),
            np.stack([tex, tex[:, ::-1]]),
            np.stack([fill, fill[:, ::-1]]),
        )

    def _measure_fill_angle(self, digest: str) -> float | None:
        row = self.rows[digest]
        return fill_rotation(row.features.thumb, row.width, row.height)

    def _rotation_hints(self, a: str, b: str, response: float) -> list[Screen]:
        """Rotation and scale of b against a implied by one of them being the other turned
        onto a larger canvas with filled corners (both turning directions: the screen's
        sign convention is not the corners'). Empty when neither has filled corners."""
        hints = []
        for rotated, other, backwards in ((b, a, False), (a, b, True)):
            angle = self.fill_angle(rotated)
            if angle is None:
                continue
            rr, ro = self.rows[rotated], self.rows[other]
            frame = frame_before_rotation(rr.width, rr.height, angle)
            if frame is None:
                continue
            # canvas pixels of the rotated picture per canvas pixel of the other one
            scale = (frame[0] / ro.width) * max(ro.width, ro.height) / max(rr.width, rr.height)
            for sign in (1.0, -1.0):
                hints.append(Screen(sign * angle, 1.0 / scale if backwards else scale, response))
        return hints

    def _filled_tries(
        self, a: str, b: str, ranked: list[bool], screens: dict[bool, Screen]
    ) -> Iterator[tuple[bool, Screen, bool, GeometryLimits]]:
        """Starting points ``(mirror, screen, centred, limits)`` to align a pair with filled
        corners from, per orientation: its screen with a lower first bar, then the
        corners' angle with the centres on each other and no first bar."""
        limits = self.settings.geometry
        relaxed = replace(limits, min_initial_cc=_FILLED_MIN_INITIAL_CC)
        hinted = replace(limits, min_initial_cc=_HINTED_MIN_INITIAL_CC)
        for m in ranked:
            yield m, screens[m], False, relaxed
            for hint in self._rotation_hints(a, b, screens[m].response):
                yield m, hint, True, hinted

    def screen_many(self, pairs: Sequence[tuple[str, str, bool | None]]) -> None:
        """Screen ``(a, b, mirror)`` pairs whose geometry is still to be judged, in batches
        taken in the given order (``mirror=None``: both orientations)."""
        todo: list[tuple[str, str, list[bool]]] = []
        for a, b, mirror in pairs:
            a, b = sorted((a, b))
            if (
                (a, b) in self._screens
                or self.rows[a].features.is_flat
                or self.rows[b].features.is_flat
            ):
                continue
            hit = self._hit(a, b)
            wanted = self._steps(geometric=True, mirror=mirror) & _GEOMETRY_STEPS
            if hit is not None and (hit[0] or wanted <= set(json.loads(hit[2]).get("tried", []))):
                continue
            todo.append((a, b, [step == "mirror geometry" for step in sorted(wanted)]))
        # in the caller's order (cache-friendly), so each batch needs few images' spectra
        for start in range(0, len(todo), _SCREEN_BATCH):
            self._screen_batch(todo[start : start + _SCREEN_BATCH])

    def _screen_batch(self, todo: list[tuple[str, str, list[bool]]]) -> None:
        """Screen one batch: the spectra of its images are held only while it runs."""
        index: dict[str, int] = {}
        for a, b, _ in todo:
            index.setdefault(a, len(index))
            index.setdefault(b, len(index))
        prepared = [self._geo(d, 0) for d in index]
        tries = [(index[a], index[b], m) for a, b, ms in todo for m in ms]
        screens = iter(_screen_parallel(prepared, tries, self.workers))
        for a, b, ms in todo:
            self._screens[(a, b)] = {m: next(screens) for m in ms}

    def judge(
        self,
        a: str,
        b: str,
        *,
        geometric: bool = True,
        mirror: bool | None = None,
        crops: bool = True,
    ) -> DigestPair | None:
        """Return the pair when ``a`` and ``b`` are duplicates, else ``None``.

        ``geometric=False`` checks the whole pictures only; the default also tries to
        align crops and rotations. ``mirror`` limits the checks to one orientation
        (``True``: mirrored only, ``False``: plain only); ``None`` tries both (when mirror
        images are looked for at all). ``crops=False`` aligns only what the Fourier-Mellin
        screen can (no search for one picture inside the other). Steps already tried for
        the pair are not repeated.
        """
        a, b = sorted((a, b))
        ra, rb = self.rows[a], self.rows[b]
        twins = _twins(ra, rb)
        if twins is not None:
            self.frames.link(a, b, 0)
            return DigestPair(a, b, "pixel", 1.0, {"method": twins})
        accepted, score, evidence_json = self.verdict(
            a, b, geometric=geometric, mirror=mirror, crops=crops
        )
        if not accepted:
            return None
        evidence = json.loads(evidence_json)
        relation = evidence.pop("relation", "near")
        evidence.pop("tried", None)
        self.frames.link(a, b, pair_orientation(evidence))
        if relation == "near" and self._same_pixels(ra, rb, evidence):
            return DigestPair(a, b, "pixel", 1.0, {"method": "pixel digest"})
        return DigestPair(a, b, relation, score, evidence)

    def verdict(
        self,
        a: str,
        b: str,
        *,
        geometric: bool = True,
        mirror: bool | None = None,
        crops: bool = True,
    ) -> Hit:
        """The cached ``(accepted, score, evidence JSON)`` of a sorted pair, running the
        steps ``judge`` asks for that were not tried yet (no pixel or stream digests)."""
        hit = self._hit(a, b)
        # two pictures already linked in some orientation (through other pairs) are
        # aligned in that orientation's quarter turn
        turn = (self.frames.between(a, b) or 0) % 4 if geometric and self.settings.turns else 0
        if self._needs(hit, geometric=geometric, mirror=mirror, turn=turn, crops=crops):
            previous = None if hit is None else json.loads(hit[2])
            steps = self._steps(geometric=geometric, mirror=mirror, turn=turn, crops=crops)
            verdict = self._verify(a, b, steps, previous, hit[1] if hit else 0.0, turn)
            hit = (verdict.accepted, verdict.score, json.dumps(verdict.evidence, sort_keys=True))
            self._keep(a, b, hit)
        return hit  # type: ignore[return-value]

    def _keep(self, a: str, b: str, hit: Hit) -> None:
        """Record a new verdict of a sorted pair and pass it to ``on_verdict``."""
        self.new[(a, b)] = hit
        if self.on_verdict is not None:
            self.on_verdict(a, b, hit)

    def _hit(self, a: str, b: str) -> Hit | None:
        """The verdict of a sorted pair so far: this run's, else the store's."""
        return self.new.get((a, b)) or self.cached.get((a, b))

    def _needs(
        self,
        hit: Hit | None,
        *,
        geometric: bool,
        mirror: bool | None,
        turn: int = 0,
        crops: bool = True,
    ) -> bool:
        """Whether a pair with this cached verdict still has steps to run."""
        if hit is None:
            return True
        if hit[0]:
            return False
        steps = self._steps(geometric=geometric, mirror=mirror, turn=turn, crops=crops)
        return not steps <= set(json.loads(hit[2]).get("tried", []))

    def prejudge(self, asks: Sequence[JudgeAsk], executor: Executor) -> None:
        """Verify the pairs of ``asks`` on the executor's workers, ahead of the ``judge``
        calls that will ask for them in order: those calls then find their verdicts here.

        Every pair is verified exactly as :meth:`verdict` would here (same steps, from the
        same earlier verdict), so results do not depend on where it ran. ``asks`` come in
        cache-friendly order: each task holds neighbouring pairs and their images once. A
        task the workers could not run leaves its pairs to be verified here when asked.
        """
        todo: list[JudgeAsk] = []
        seen: set[tuple[str, str]] = set()
        for a, b, geometric, mirror, crops in asks:
            a, b = sorted((a, b))
            if (a, b) in seen or _twins(self.rows[a], self.rows[b]) is not None:
                continue
            if not self._needs(self._hit(a, b), geometric=geometric, mirror=mirror, crops=crops):
                continue
            seen.add((a, b))
            todo.append((a, b, geometric, mirror, crops))
        if not todo:
            return
        # a few large runs of neighbouring pairs per worker: each worker prepares few
        # images twice, and keeps what it prepared for the next round
        parts = _TASKS_PER_WORKER * (getattr(executor, "workers", None) or _DEFAULT_WORKERS)
        size = max(_MIN_JUDGE_TASK, -(-len(todo) // parts))
        tasks = [self._task(todo[k : k + size]) for k in range(0, len(todo), size)]
        for batch in executor.map_unordered(judge_batch, tasks, lost=_judge_here, shard_size=1):
            for a, b, hit in batch:
                self._keep(a, b, hit)

    def _task(self, asks: list[JudgeAsk]) -> JudgeTask:
        digests = tuple(sorted({d for a, b, *_ in asks for d in (a, b)}))
        previous = {(a, b): hit for a, b, *_ in asks if (hit := self._hit(a, b)) is not None}
        rows = () if self.store_path else tuple(self.rows[d] for d in digests)
        return JudgeTask(self.settings, tuple(asks), previous, digests, rows, self.store_path)

    def _steps(
        self, *, geometric: bool, mirror: bool | None, turn: int = 0, crops: bool = True
    ) -> set[str]:
        plain = mirror is not True
        flipped = self.settings.mirror and mirror is not False
        # a view candidate (mirror given) that is a plain whole-picture duplicate is also
        # an identity candidate: its plain check happens there
        steps = {"identity"} if plain and (mirror is None or not geometric) else set()
        if flipped:
            steps.add("mirror")
        if geometric and self.settings.geometric:
            wanted = [m for m, want in ((False, plain), (True, flipped)) if want]
            steps |= {_geometry_step(m, turn) for m in wanted}
            if crops:
                steps |= {_crop_step(m, turn) for m in wanted}
        return steps

    def _verify(
        self,
        a: str,
        b: str,
        steps: set[str],
        previous: dict[str, Any] | None,
        score: float,
        turn: int = 0,
    ) -> Verdict:
        """Run the steps not tried before: identity, mirrored identity, then geometry."""
        ra, rb = self.rows[a], self.rows[b]
        fa, fb = ra.features, rb.features
        sizes = ((ra.width, ra.height), (rb.width, rb.height))
        tried = set(previous.get("tried", [])) if previous else set()
        kept = {k: v for k, v in (previous or {}).items() if k not in ("tried", "relation")}
        best = Verdict(False, score, kept)

        def prepared() -> tuple[Prepared, Prepared]:
            return self._prepared(a), self._prepared(b)

        def done(v: Verdict, relation: str) -> Verdict:
            evidence = {**v.evidence, "relation": relation, "tried": sorted(tried)}
            return Verdict(v.accepted, v.score, evidence)

        for step, flip in (("identity", False), ("mirror", True)):
            if step in steps and step not in tried:
                tried.add(step)
                coarse = (self._coarse(a), self._coarse(b))
                for o in self._orientations_to_try(fa, fb, mirrored=flip):
                    self.stats["identity"] += 1
                    v = verify_pair(
                        fa,
                        fb,
                        *sizes,
                        self.settings.verify,
                        orientation=o,
                        prepared=prepared,
                        coarse=coarse,
                    )
                    if v.accepted:
                        return done(v, "mirror" if flip else "near")
                    if not best.evidence or v.score > best.score:
                        best = v
                v = self._verify_trimmed(a, b, mirrored=flip)
                if v is not None and v.accepted:
                    return done(v, "mirror" if flip else "near")
        # an orientation whose screen was tried without the crop search, asked with it
        # now, is aligned again with it
        todo = [
            m
            for m in (False, True)
            if any(step in steps and step not in tried
                   for step in (_geometry_step(m, turn), _crop_step(m, turn)))
        ]  # fmt: skip
        if todo and not (fa.is_flat or fb.is_flat):
            crops = any(_crop_step(m, turn) in steps for m in todo)
            tried.update(_geometry_step(m, turn) for m in todo)
            if crops:
                tried.update(_crop_step(m, turn) for m in todo)
            found = self._verify_geometry(a, b, todo, turn, crops=crops)
            if found.accepted or found.score > best.score:
                return done(
                    found, "mirror" if found.evidence["method"].startswith("mirror") else "near"
                )
            best = Verdict(False, best.score, {**best.evidence, "geometry": _summary(found)})
        return done(best, "near")

    def _verify_trimmed(self, a: str, b: str, *, mirrored: bool) -> Verdict | None:
        """The whole-picture check of the pictures inside their bars or borders (either or
        both trimmed, :func:`lookalike.features.trim_bars`); ``None`` when neither has
        any. Returns the first accepted verdict, else the best."""
        sides_a, sides_b = self._sides(a), self._sides(b)
        if len(sides_a) == len(sides_b) == 1:
            return None
        best: Verdict | None = None
        for (cut_a, fa, size_a), (cut_b, fb, size_b) in itertools.product(sides_a, sides_b):
            if not (cut_a or cut_b):
                continue  # compared already
            trimmed = [side for side, cut in (("a", cut_a), ("b", cut_b)) if cut]
            coarse = (self._coarse_side(a, cut_a), self._coarse_side(b, cut_b))

            def prepared(ca: bool = cut_a, cb: bool = cut_b) -> tuple[Prepared, Prepared]:
                return self._prepared_side(a, ca), self._prepared_side(b, cb)

            for o in self._orientations_to_try(fa, fb, mirrored=mirrored):
                self.stats["identity"] += 1
                v = verify_pair(fa, fb, size_a, size_b, self.settings.verify, orientation=o,
                                coarse=coarse, prepared=prepared)  # fmt: skip
                v = Verdict(v.accepted, v.score, {**v.evidence, "trimmed": trimmed})
                if v.accepted:
                    return v
                if best is None or v.score > best.score:
                    best = v
        return best

    def _measure_trimmed(self, digest: str) -> Trimmed | None:
        row = self.rows[digest]
        if row.features.is_flat:
            return None
        found = trim_bars(row.features.thumb, row.width, row.height)
        return None if found is None or found.features.is_flat else found

    def _orientations_to_try(self, fa: Features, fb: Features, *, mirrored: bool) -> list[int]:
        """The orientations of ``b`` (mirrored ones or not) worth a whole-picture check
        against ``a``: those whose descriptors are within ``_ORIENTATION_MARGIN`` of the
        most similar orientation of all (mirrored ones only when mirror images are looked
        for), upright (or plainly mirrored) first, then quarter turns that also pass the
        verification's first bar, most similar first."""
        first = 4 if mirrored else 0
        if not self.settings.turns:
            return [first]
        similarity = all_orientations(fb.descriptor) @ fa.descriptor
        best = float(similarity[: 8 if self.settings.mirror else 4].max())
        group = similarity[first : first + 4]
        bar = self.settings.verify.min_descriptor_similarity
        order = sorted(range(4), key=lambda k: (k != 0, -float(group[k])))
        return [
            first + k
            for k in order
            if group[k] >= best - _ORIENTATION_MARGIN and (k == 0 or group[k] >= bar)
        ]

    def _verify_geometry(
        self, a: str, b: str, orientations: list[bool], turn: int = 0, *, crops: bool = True
    ) -> Verdict:
        """Screen the orientations, align the better one, compare inside the overlap.

        ``b`` is turned by ``turn`` quarter turns first (then mirrored or not). When the
        screen finds no rotation and scale, one picture is looked for inside the other
        (``crops``) or the pair is rejected."""
        cached = self._screens.pop((a, b), {}) if turn == 0 else {}
        missing = [m for m in orientations if m not in cached]
        if missing:
            pair = [self._geo(a, 0), self._geo(b, turn)]
            cached.update(
                zip(missing, screen_pairs(pair, [(0, 1, m) for m in missing]), strict=True)
            )
        self.stats["screened"] += 1
        ranked = sorted(orientations, key=lambda m: -cached[m].response)
        mirror = ranked[0]
        screen = cached[mirror]
        limits = self.settings.geometry
        filled = turn == 0 and (self.fill_angle(a) is not None or self.fill_angle(b) is not None)
        method = "mirror geometry" if mirror else "geometry"
        ga, gb = self._geo(a, 0), self._geo(b, turn)
        alignment = None
        if screen.response < limits.min_response and not filled:
            # a strong crop keeps too little of the spectrum: look for one picture inside
            # the other instead
            self.stats["crop searched"] += int(crops)
            for m in ranked if crops else []:
                alignment = self._align_crop(a, b, turn, m)
                if alignment is not None:
                    mirror, method = m, "mirror geometry" if m else "geometry"
                    break
            else:
                evidence = {"method": method, "spectrum_response": round(screen.response, 3),
                            "reason": "spectra differ"}  # fmt: skip
                return Verdict(False, 0.0, evidence)
        self.stats["aligned"] += 1
        (ecc_a, plain_a, tex_a, fill_a), (ecc_b, plain_b, tex_b, fill_b) = (
            self._aligning(a, 0),
            self._aligning(b, turn),
        )
        if alignment is None and screen.response >= limits.min_response:
            alignment = align(ga, gb, ecc_a, ecc_b, screen, mirror=mirror, limits=limits)
        if alignment is None and filled:
            # filled corners weaken the screen and the first correlation: try again from
            # the screens, and from the corners' angle with the centres on each other (a
            # rotation onto a larger canvas keeps the centre), with a lower first bar (ECC
            # and the comparison inside the overlap still decide)
            for m, hint, centred, bar in self._filled_tries(a, b, ranked, cached):
                alignment = align(ga, gb, ecc_a, ecc_b, hint, mirror=m, limits=bar,
                                  centred=centred)  # fmt: skip
                if alignment is not None:
                    mirror, screen = m, hint
                    break
        method = "mirror geometry" if mirror else "geometry"
        m = int(mirror)
        if alignment is None:
            evidence = {"method": method, "spectrum_response": round(screen.response, 3),
                        "reason": "pictures do not align"}  # fmt: skip
            return Verdict(False, 0.0, evidence)
        verdict = verify_aligned(
            alignment, plain_a[0], plain_b[m], (tex_a[0], tex_b[m]), (fill_a[0], fill_b[m]),
            self.settings.verify, limits,
        )  # fmt: skip
        phash = (self.rows[a].features.phash ^ self.rows[b].features.phash).bit_count()
        evidence = {"phash_distance": phash, **verdict.evidence}
        if turn:
            evidence["orientation"] = NAMES[turn + 4 * m]
        return Verdict(verdict.accepted, verdict.score, evidence)

    def _align_crop(self, a: str, b: str, turn: int, mirror: bool) -> Alignment | None:
        """Align a strong crop with its original (``b`` turned first):
        :func:`lookalike.geometry.crop_placement`, then :func:`~lookalike.geometry.refine`;
        the alignment thumbnails are prepared only for a placement that correlates."""
        ga, gb = self._geo(a, 0), self._geo(b, turn)
        found = crop_placement(ga, gb, mirror=mirror)
        if found is None:
            return None
        ecc_a, ecc_b = self._aligning(a, 0)[0], self._aligning(b, turn)[0]
        return refine(ga, gb, ecc_a, ecc_b, found[0], mirror, self.settings.geometry, found[1])

    def _same_pixels(self, ra: ImageRow, rb: ImageRow, evidence: dict[str, Any]) -> bool:
        """Full-resolution pixel check of a lossless file against a lossy one.

        Only tried when their thumbnails are nearly equal, since it decodes the lossy file
        in full. (Two lossless files compare by decode-time digests, two JPEGs by stream.)
        """
        if evidence.get("method") != "thumbnail" or "orientation" in evidence:
            return False
        if ra.lossless == rb.lossless or (ra.width, ra.height) != (rb.width, rb.height):
            return False
        if evidence.get("mad", 1.0) > 0.002 or _max_thumb_difference(ra, rb) > 3:
            return False
        da, db = self.pixel_digest_of(ra.digest), self.pixel_digest_of(rb.digest)
        return da is not None and da == db


def _twins(ra: ImageRow, rb: ImageRow) -> str | None:
    """How two contents are known to have the same pixels without any check ("pixel
    digest", "JPEG stream digest"), or ``None``."""
    if ra.pixel_digest and ra.pixel_digest == rb.pixel_digest:
        return "pixel digest"
    if ra.stream_digest and ra.stream_digest == rb.stream_digest:
        return "JPEG stream digest"
    return None


JudgeAsk = tuple[str, str, bool, "bool | None", bool]
"""``(a, b, geometric, mirror, crops)``: a pair and the checks :meth:`PairJudge.judge`
asks of it."""


@dataclass(frozen=True)
class JudgeTask:
    """Pairs to verify on a worker, with their earlier verdicts and the images they need:
    shipped (``rows``) or read from the store at ``store_path`` by the worker."""

    settings: MatchSettings
    asks: tuple[JudgeAsk, ...]
    previous: Verdicts
    digests: tuple[str, ...]
    rows: tuple[ImageRow, ...] = ()
    store_path: str | None = None


def judge_batch(task: JudgeTask) -> list[tuple[str, str, Hit]]:
    """Verify a task's pairs (on any worker: a top-level, picklable function); returns
    ``(a, b, verdict)`` for each pair, as :meth:`PairJudge.verdict` gives it.

    A worker thread keeps its judge between tasks, so an image prepared for one round
    (thumbnails, spectra) is not prepared again for the next. A task that fails here (the
    store unreadable from the worker, say) returns no verdicts: the caller verifies its
    pairs itself, where a real fault shows up with its own message."""
    judge = _worker_judge(task.settings)
    try:
        judge.rows.update((row.digest, row) for row in task.rows)
        missing = [d for d in task.digests if d not in judge.rows]
        if missing and task.store_path:
            stored = _worker_store(task.store_path).load_images(missing)
            judge.rows.update((row.digest, row) for row in stored)
        judge.cached, judge.new = dict(task.previous), {}
        judge.screen_many([(a, b, m) for a, b, geometric, m, _ in task.asks if geometric])
        return [
            (a, b, judge.verdict(a, b, geometric=g, mirror=m, crops=c))
            for a, b, g, m, c in task.asks
        ]
    except Exception as exc:  # noqa: BLE001 - the caller verifies these pairs instead
        logger.warning("Pair checks failed on a worker (%s: %s); checking them here.",
                       type(exc).__name__, exc)  # fmt: skip
        return []


_worker = threading.local()


def _worker_judge(settings: MatchSettings) -> PairJudge:
    judge = getattr(_worker, "judge", None)
    if judge is None or judge.settings != settings or len(judge.rows) > _WORKER_ROWS:
        judge = PairJudge([], settings, {}, _no_pixel_digest, workers=1, cache_scale=0.5)
        _worker.judge = judge
    return judge


def _judge_here(task: JudgeTask, exc: BaseException) -> list[tuple[str, str, Hit]]:
    """No verdicts from a task whose workers died: its pairs are verified by the caller."""
    return []


def _worker_store(path: str) -> Store:
    """A read-only connection to the store, one per worker thread."""
    store = getattr(_worker, "store", None)
    if store is None or os.fspath(store.path) != path:
        if store is not None:
            store.close()
        store = _worker.store = Store(path, readonly=True)
    return store


def _no_pixel_digest(digest: str) -> None:
    """Workers never decode full pictures: the pixel check runs where ``judge`` is called."""
    return None


_TASKS_PER_WORKER = 3  # tasks a round of pair checks is cut into, per worker
_DEFAULT_WORKERS = 8  # ... when the executor does not say how many workers it has
_MIN_JUDGE_TASK = 16  # pairs
_WORKER_ROWS = 50_000  # images a worker's judge holds before it starts afresh (~1 GB)
_GEOMETRY_STEPS = frozenset({"geometry", "mirror geometry"})


def _crop_step(mirror: bool, turn: int) -> str:
    """The name a verdict records for the search of one picture inside the other (``crop
    search``, ``mirror crop search``; ``... turn 1``... when ``b`` was turned first)."""
    name = "mirror crop search" if mirror else "crop search"
    return f"{name} turn {turn}" if turn else name


def _geometry_step(mirror: bool, turn: int) -> str:
    """The name a verdict records for an alignment step (``geometry``, ``mirror
    geometry``; ``geometry turn 1``... when ``b`` was turned first)."""
    name = "mirror geometry" if mirror else "geometry"
    return f"{name} turn {turn}" if turn else name


def pair_orientation(evidence: dict[str, Any]) -> int:
    """The orientation (:mod:`lookalike.orientation`) in which ``b`` of an accepted pair
    shows ``a``, from the pair's evidence."""
    name = evidence.get("orientation")
    if name is not None:
        return NAMES.index(name)
    return 4 if str(evidence.get("method", "")).startswith("mirror") else 0


class _Frames:
    """Union-find over digests of accepted pairs that keeps each one's orientation
    relative to its root, so two pictures linked through others have a known
    orientation to each other."""

    def __init__(self) -> None:
        self.parent: dict[str, tuple[str, int]] = {}  # d -> (parent, o): orient(d, o) ~ parent

    def find(self, d: str) -> tuple[str, int]:
        """``(root, o)`` with ``orient(d, o)`` showing the root."""
        o = 0
        path = []
        while d in self.parent:
            parent, step = self.parent[d]
            path.append((d, o))
            o = compose(o, step)
            d = parent
        for node, before in path:  # point every node of the path at the root
            self.parent[node] = (d, compose(inverse(before), o))
        return d, o

    def link(self, a: str, b: str, o: int) -> None:
        """Record that ``orient(b, o)`` shows ``a``."""
        ra, oa = self.find(a)
        rb, ob = self.find(b)
        if ra != rb:
            # orient(rb, x) ~ ra: rb ~ orient(b, ob) ... b ~ inverse(o) of a
            self.parent[rb] = (ra, compose(inverse(ob), compose(o, oa)))

    def between(self, a: str, b: str) -> int | None:
        """The orientation ``o`` with ``orient(b, o)`` showing ``a``, when linked."""
        ra, oa = self.find(a)
        rb, ob = self.find(b)
        return compose(ob, inverse(oa)) if ra == rb else None
_ORIENTATION_MARGIN = 0.05
"""Whole-picture checks are tried in orientations this close to the most similar one (by
descriptor): the orientation of every accepted whole-picture copy on 7 benchmark sets (2,064
pairs) was the most similar one."""
_SCREEN_BATCH = 2048
"""Pairs screened together; bounds the spectra held at once (about 0.1 MB an image)."""
_FILLED_MIN_INITIAL_CC = 0.3  # first correlation asked of a pair with filled corners
_HINTED_MIN_INITIAL_CC = 0.0  # ... when starting from the corners' angle, centres on each other
_CACHE_FRIENDLY_CELL = 256  # images per k-means cell when ordering work for the caches
_CACHE_FRIENDLY_FROM = 2048  # fewer images than this fit the per-image caches anyway


def _summary(v: Verdict) -> dict[str, Any]:
    """The gist of a failed geometric check, kept in the evidence of a rejected pair."""
    keys = (
        "method",
        "reason",
        "spectrum_response",
        "angle_deg",
        "scale",
        "mad",
        "changed",
        "outside",
    )
    return {k: v.evidence[k] for k in keys if k in v.evidence} | {"score": v.score}


Candidates = dict[tuple[int, int], tuple[str, float]]
"""Index pairs ``(i, j)``, ``i < j``, -> (which search found them, its similarity)."""


@dataclass(frozen=True)
class Found:
    """The candidates of a search: ``reciprocal`` ones (each image among the other's
    ``mutual_neighbours`` nearest, or the two at least ``sure_similarity`` similar) and
    the ``others``, which :func:`find_pairs` checks only for images that have a group."""

    reciprocal: Candidates
    others: Candidates

    def __len__(self) -> int:
        return len(self.reciprocal) + len(self.others)

    def merge(self, other: Found) -> Found:
        """Both searches' candidates, each pair once with its higher similarity; a pair
        reciprocal in either is reciprocal."""
        strong = _best_of(self.reciprocal, other.reciprocal)
        weak = {k: v for k, v in _best_of(self.others, other.others).items() if k not in strong}
        return Found(strong, weak)


def _best_of(a: Candidates, b: Candidates) -> Candidates:
    out = dict(a)
    for key, (view, sim) in b.items():
        if key not in out or out[key][1] < sim:
            out[key] = (view, sim)
    return out


def find_pairs(
    rows: Sequence[ImageRow],
    settings: MatchSettings,
    judge: PairJudge,
    *,
    workers: int | None = None,
    extra: Candidates | None = None,
    executor: Executor | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[DigestPair]:
    """All duplicate pairs among distinct contents, sorted by digests.

    Every search's candidates are checked in two rounds: the reciprocal ones first
    (:class:`Found`), then, once all searches had their first round, the others that
    have an image in a group by then.

    ``extra`` adds candidates found elsewhere (learned embeddings); they are verified
    like view candidates, geometry included, and so are the spectrum candidates of the
    images still alone after all that (:func:`spectrum_candidates`). A candidate whose
    two images are already linked through accepted pairs is not aligned (grouping
    verifies every member against its keeper anyway), which saves most of the alignments
    in groups.

    With an ``executor`` (worker processes, a Dask cluster), each round's pairs are
    verified there first (:meth:`PairJudge.prejudge`) and then taken in the same order
    as without one, so the pairs found are the same.

    ``progress(done, total)`` is told of the candidate checks: ``total`` counts those of
    the rounds known so far (it grows when a round's candidates are found), ``done``
    reaches it at the end.
    """
    search = _Search(rows, judge, ranks=np.arange(len(rows)), executor=executor)
    search.progress = progress
    twins = _pixel_twin_candidates(rows)
    search.expect(len(twins))
    for a, b in twins:
        pair = judge.judge(a, b)
        if pair is not None:
            search.accept((pair.a, pair.b), pair)
        search.advance(len(twins))
    search.advance(len(twins), finished=True)
    if not rows:
        return []
    vectors = np.stack([row.features.descriptor for row in rows]).astype(np.float32)
    trimmed = {
        k: found.features.descriptor
        for k, row in enumerate(rows)
        if (found := judge.trimmed(row.digest)) is not None
    }
    identity = identity_candidates(vectors, settings, workers=workers, extra=trimmed)
    views = _views(rows, settings, vectors, workers, judge)
    if len(rows) >= _CACHE_FRIENDLY_FROM:
        search.ranks = locality_ranks(vectors, cell_size=_CACHE_FRIENDLY_CELL)
    search.judge_identity(identity.reciprocal)
    search.judge_views(views.reciprocal, "view_similarity", settings)
    search.judge_views(extra or {}, "embedding_similarity", settings)
    # candidates that were not reciprocal, where a group explains it: a picture with many
    # copies has them for its nearest neighbours, and they outrank the one copy left
    search.judge_identity(search.beside_groups(identity.others))
    search.judge_views(search.beside_groups(views.others), "view_similarity", settings)
    # last, and only for the images every search above left alone
    alone = {k for k, row in enumerate(rows) if not search.linked.has(row.digest)}
    spectrum = spectrum_candidates(
        rows, settings, alone, workers=workers, invariant=judge.invariant
    )
    search.judge_views(spectrum.reciprocal, "spectrum_similarity", settings)
    search.judge_views(search.beside_groups(spectrum.others), "spectrum_similarity", settings)
    return [search.found[k] for k in sorted(search.found)]


def _views(
    rows: Sequence[ImageRow],
    settings: MatchSettings,
    vectors: np.ndarray,
    workers: int | None,
    judge: PairJudge,
) -> Found:
    if not (settings.geometric or settings.mirror):
        return Found({}, {})
    found = view_candidates(
        rows, settings, vectors=vectors, workers=workers, fill_angle=judge.fill_angle
    )
    if settings.geometric:
        found = found.merge(window_candidates(rows, settings, vectors, workers))
    return found


def window_candidates(
    rows: Sequence[ImageRow],
    settings: MatchSettings,
    vectors: np.ndarray,
    workers: int | None = None,
) -> Found:
    """Strong crops: each image's descriptor (and mirrored one) against the descriptors
    of windows of every other image (:func:`lookalike.features.window_descriptors`), the
    ``view_neighbours`` nearest images kept (views ``window``, ``mirror window``).

    A crop keeping half of the picture moves its own descriptor far from the original's,
    but it is close to the descriptor of the window of the original it shows."""
    windows = window_descriptors([row.features.thumb for row in rows])
    per_image = windows.shape[1]
    base = windows.reshape(-1, windows.shape[2]).astype(np.float32)
    queries = [("window", vectors)]
    if settings.mirror:
        queries.append(("mirror window", mirror_descriptor(vectors)))
    bars = _window_bars(vectors, windows, settings, queries, workers)
    best: dict[tuple[int, int], tuple[str, float, int]] = {}  # -> view, similarity, window
    for view, q in queries:
        qi, bj, sims = knn_between(q, base, k=per_image * (settings.view_neighbours + 1),
                                   min_similarity=settings.min_view_similarity,
                                   workers=workers)  # fmt: skip
        for i, row, sim in zip(qi.tolist(), bj.tolist(), sims.tolist(), strict=True):
            j = row // per_image
            if i != j and ((i, j) not in best or best[(i, j)][1] < sim):
                best[(i, j)] = (view, float(sim), row)
    nearest: dict[int, list[tuple[float, int]]] = {}
    for (i, j), (_, sim, _) in best.items():
        nearest.setdefault(i, []).append((-sim, j))
    out = Found({}, {})
    for i, found in nearest.items():
        for _, j in sorted(found)[: settings.view_neighbours]:
            view, sim, row = best[(i, j)]
            reciprocal = sim >= bars[row] or sim >= settings.sure_similarity
            key = (min(i, j), max(i, j))
            into = out.reciprocal if reciprocal else out.others
            if key not in into or into[key][1] < sim:
                into[key] = (view, sim)
    return Found(out.reciprocal, {k: v for k, v in out.others.items() if k not in out.reciprocal})


def _window_bars(
    vectors: np.ndarray,
    windows: np.ndarray,
    settings: MatchSettings,
    queries: list[tuple[str, np.ndarray]],
    workers: int | None,
) -> np.ndarray:
    """Per window (rows of ``windows`` flattened), the similarity of the
    ``mutual_neighbours``-th nearest other image (plain or mirrored): a window candidate
    reaching it is reciprocal. ``-inf`` everywhere when reciprocity is not asked for."""
    n, per_image = windows.shape[:2]
    if settings.mutual_neighbours <= 0 or n < 2:
        return np.full(n * per_image, -np.inf, np.float32)
    q = np.vstack([v for _, v in queries]).astype(np.float32)
    q_owner = np.tile(np.arange(n), len(queries))
    base = windows.reshape(-1, windows.shape[2]).astype(np.float32)
    base_owner = np.repeat(np.arange(n), per_image)
    return reciprocal_bars(q, q_owner, base, base_owner, settings.mutual_neighbours,
                           workers=workers)  # fmt: skip


def _crops(view: str) -> bool:
    """Whether a candidate's search calls for looking for one picture inside the other:
    not for pictures close as a whole (``global``, ``upright``), since a crop that keeps
    their descriptors close keeps enough of the spectrum for the screen, while a strong
    crop is a candidate of the window and centre searches."""
    base = view.removesuffix(_EITHER_WAY.format("")).removeprefix("mirror ")
    return base not in ("global", "upright")


def _orientation(view: str) -> bool | None:
    """Which orientation a candidate's search suggests (``None``: both)."""
    if view.endswith(_EITHER_WAY.format("")):
        return None
    if view.startswith("mirror"):
        return True
    return False if view in ("global", "centre", "upright", "window") else None


class _Links:
    """Union-find over digests linked by accepted pairs."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}
        self.linked: set[str] = set()

    def root(self, d: str) -> str:
        while self.parent.get(d, d) != d:
            self.parent[d] = self.parent.get(self.parent[d], self.parent[d])
            d = self.parent[d]
        return d

    def same(self, a: str, b: str) -> bool:
        return self.root(a) == self.root(b)

    def has(self, d: str) -> bool:
        """Whether ``d`` has an accepted pair."""
        return d in self.linked

    def link(self, a: str, b: str) -> None:
        self.linked.update((a, b))
        ra, rb = self.root(a), self.root(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


@dataclass
class _Search:
    """What the search rounds of :func:`find_pairs` share: the pairs found so far, their
    links, the cache-friendly order of the images (``ranks``,
    :func:`lookalike.index.locality_ranks`) and where pairs are verified."""

    rows: Sequence[ImageRow]
    judge: PairJudge
    ranks: np.ndarray
    executor: Executor | None = None
    found: dict[tuple[str, str], DigestPair] = field(default_factory=dict)
    linked: _Links = field(default_factory=_Links)
    progress: Callable[[int, int], None] | None = None
    done: int = 0  # candidate checks, for ``progress``
    total: int = 0

    def expect(self, checks: int) -> None:
        """Count ``checks`` more candidate checks to come in the total."""
        self.total += checks
        self._report()

    def advance(self, end: int, *, finished: bool = False) -> None:
        """Count one check done, never past ``end`` (where its round ends), or the round."""
        self.done = end if finished else min(self.done + 1, end)
        self._report()

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.done, self.total)

    def accept(self, key: tuple[str, str], pair: DigestPair) -> None:
        self.found[key] = pair
        self.linked.link(*key)

    def beside_groups(self, candidates: Candidates) -> Candidates:
        """The candidates with an image in a group by now, other than the group of the
        other image (if any)."""
        out: Candidates = {}
        for (i, j), found in candidates.items():
            a, b = self.rows[i].digest, self.rows[j].digest
            if (self.linked.has(a) or self.linked.has(b)) and not self.linked.same(a, b):
                out[(i, j)] = found
        return out

    def crops(self, i: int, j: int, view: str) -> bool:
        """Whether to look for one picture inside the other when the screen fails: for the
        candidates of searches made for crops (:func:`_crops`), and for small pictures
        (below the thumbnail size the screen has too few pixels to go by)."""
        small = min(max(self.rows[k].width, self.rows[k].height) for k in (i, j)) < THUMB_PX
        return small or _crops(view)

    def judge_identity(self, candidates: Candidates) -> None:
        """Whole-picture checks of identity candidates."""
        self.expect(len(candidates))
        self.judge_all(candidates, "descriptor_similarity", geometric=False)

    def judge_views(self, candidates: Candidates, label: str, settings: MatchSettings) -> None:
        """Judge view-like candidates: the pairs still unlinked, screened together (or
        verified on the executor) in cache-friendly order, then verified, geometry
        included; without geometry, whole pictures only.

        With geometry, the whole-picture checks of these candidates are left to their
        geometric check (its mirror step), and so paid only for pairs still unlinked: the
        identity candidates hold the whole-picture duplicates (no view candidate was a
        whole-picture duplicate the identity search had missed, on any benchmark set)."""
        if not settings.geometric:
            self.expect(len(candidates))
            self.judge_all(candidates, label, geometric=False)
            return
        if not candidates:
            return
        tries = settings.group_pair_tries
        todo = [(key, _orientation(view), self.crops(i, j, view), _rank_key(self.ranks, i, j))
                for (i, j), key, view, _ in self.geometric_order(candidates, tries)]  # fmt: skip
        todo.sort(key=lambda t: t[3])
        self.expect(len(todo))
        if self.executor is not None:
            self.judge.prejudge([(*key, True, m, c) for key, m, c, _ in todo], self.executor)
        else:
            self.judge.screen_many([(*key, m) for key, m, _, _ in todo])
        self.judge_all(candidates, label, geometric=True, group_pair_tries=tries, planned=len(todo))

    def judge_all(
        self,
        candidates: Candidates,
        label: str,
        *,
        geometric: bool,
        group_pair_tries: int = 0,
        planned: int | None = None,
    ) -> None:
        """Judge candidates, adding accepted pairs to ``found``; ``planned`` is how many
        checks the round counts for in ``progress`` (default: one a candidate).

        Geometric checks go in :meth:`geometric_order`. Whole-picture checks find the
        same pairs in any order, so they go in ``ranks`` order, which keeps the per-image
        caches warm. The checks run on the calling thread, or before, on the
        ``executor``'s worker processes (:meth:`PairJudge.prejudge`): they are many small
        NumPy and OpenCV calls, and worker threads made them slower (GIL hand-offs).
        """
        todo: Iterable[tuple[tuple[int, int], tuple[str, str], str, float]]
        if geometric:
            todo = self.geometric_order(candidates, group_pair_tries)
        else:
            order = sorted(candidates, key=lambda ij: (_rank_key(self.ranks, *ij), ij))
            todo = [(ij, _digest_pair(self.rows, *ij), *candidates[ij]) for ij in order]
            if self.executor is not None:
                asks = [(*k, False, _orientation(v), self.crops(*ij, v))
                        for ij, k, v, _ in todo if k not in self.found]  # fmt: skip
                self.judge.prejudge(asks, self.executor)
        end = self.done + (len(candidates) if planned is None else planned)
        for ij, key, view, sim in todo:
            if key not in self.found:
                mirror = _orientation(view)
                crops = self.crops(*ij, view)
                pair = self.judge.judge(*key, geometric=geometric, mirror=mirror, crops=crops)
                if pair is not None:
                    pair.evidence.setdefault(label, round(float(sim), 4))
                    if label == "view_similarity":
                        pair.evidence.setdefault("view", view)
                    self.accept(key, pair)
            self.advance(end)
        self.advance(end, finished=True)

    def geometric_order(
        self, candidates: Candidates, group_pair_tries: int
    ) -> Iterator[tuple[tuple[int, int], tuple[str, str], str, float]]:
        """:func:`_geometric_order` of the candidates, given what was found so far."""
        return _geometric_order(self.rows, candidates, self.found, self.linked, group_pair_tries)


def _rank_key(ranks: np.ndarray, i: int, j: int) -> tuple[int, int]:
    a, b = int(ranks[i]), int(ranks[j])
    return (a, b) if a <= b else (b, a)


def _digest_pair(rows: Sequence[ImageRow], i: int, j: int) -> tuple[str, str]:
    a, b = rows[i].digest, rows[j].digest
    return (a, b) if a <= b else (b, a)


def _geometric_order(
    rows: Sequence[ImageRow],
    candidates: Candidates,
    found: dict[tuple[str, str], DigestPair],
    linked: _Links,
    group_pair_tries: int,
) -> Iterator[tuple[tuple[int, int], tuple[str, str], str, float]]:
    """The candidates worth a geometric check, most similar first, as ``(indices,
    digests, view, similarity)``; lazy, so links made meanwhile are seen.

    Left out: pairs already linked through accepted pairs (grouping verifies every
    member against its keeper anyway), and, between two images that both have a group
    already, all but the ``group_pair_tries`` most similar candidates of that pair of
    groups (one accepted candidate joins the groups; on duplicate-heavy sets most
    candidates are such pairs, and the accepted ones were the most similar).
    """
    tried: dict[tuple[str, str], int] = {}
    order = sorted(candidates.items(), key=lambda kv: (-kv[1][1], kv[0]))
    for (i, j), (view, sim) in order:
        key = _digest_pair(rows, i, j)
        if key in found or linked.same(*key):
            continue
        if linked.has(key[0]) and linked.has(key[1]):
            ra, rb = sorted((linked.root(key[0]), linked.root(key[1])))
            if tried.get((ra, rb), 0) >= group_pair_tries:
                continue
            tried[(ra, rb)] = tried.get((ra, rb), 0) + 1
        yield (i, j), key, view, sim


def _screen_parallel(
    prepared: list[GeoPrepared], tries: list[tuple[int, int, bool]], workers: int
) -> list[Screen]:
    """:func:`screen_pairs` over chunks on worker threads (the FFTs release the GIL)."""
    size = 256
    chunks = [tries[k : k + size] for k in range(0, len(tries), size)]
    if workers < 2 or len(chunks) < 2:
        return screen_pairs(prepared, tries)
    with ThreadPoolExecutor(workers, thread_name_prefix="lookalike-screen") as pool:
        return [s for part in pool.map(lambda c: screen_pairs(prepared, c), chunks) for s in part]


def view_candidates(
    rows: Sequence[ImageRow],
    settings: MatchSettings,
    *,
    vectors: np.ndarray | None = None,
    workers: int | None = None,
    fill_angle: Callable[[str], float | None] | None = None,
) -> Found:
    """Pairs close in the global or the centre descriptor, plain or mirrored.

    ``fill_angle`` (digest -> :func:`fill_rotation` angle) lets a caller share its cache.

    A search over ``[X; mirror(X)]`` finds both at once: a neighbour from the other half
    is a mirror candidate (a pair close both ways, a symmetric picture, is checked in
    both orientations). Pictures rotated onto a larger canvas with filled corners also
    take part in the global search with their :func:`upright_descriptor` (view
    ``upright``), which finds the unrotated picture that their own descriptor misses.
    """
    n = len(rows)
    if vectors is None:
        vectors = np.stack([row.features.descriptor for row in rows]).astype(np.float32)
    centres = np.stack([centre_descriptor(row.features.thumb) for row in rows]).astype(np.float32)
    upright: dict[int, np.ndarray] = {}
    for k, row in enumerate(rows):
        thumb = row.features.thumb
        angle = (
            fill_angle(row.digest) if fill_angle else fill_rotation(thumb, row.width, row.height)
        )
        if angle is not None:
            d = upright_descriptor(thumb, row.width, row.height, angle)
            if d is not None:
                upright[k] = d
    extra = np.array(list(upright), dtype=np.int64)
    searches = (
        ("global", np.vstack([vectors, *upright.values()]).astype(np.float32)),
        ("centre", centres),
    )
    out: Candidates = {}
    strong: set[tuple[int, int]] = set()
    flips: dict[tuple[int, int], set[bool]] = {}
    for name, x in searches:
        owner = np.concatenate([np.arange(n), extra]) if name == "global" else np.arange(n)
        m = len(x)
        both = np.vstack([x, mirror_descriptor(x)]) if settings.mirror else x
        k = settings.view_neighbours * (2 if settings.mirror else 1) + 1
        found = _self_pairs(both, k, settings.min_view_similarity, workers, settings,
                            entries_per_image=2 if settings.mirror else 1)  # fmt: skip
        pairs = [(pq, v, True) for pq, v in found.reciprocal.items()]
        pairs += [(pq, v, False) for pq, v in found.others.items()]
        for (p, q), (_, sim), reciprocal in pairs:
            i, j = int(owner[p % m]), int(owner[q % m])
            if i == j:
                continue
            flipped = (p >= m) != (q >= m)
            view = "upright" if max(p % m, q % m) >= n else name
            key = (min(i, j), max(i, j))
            label = f"mirror {view}" if flipped else view
            flips.setdefault(key, set()).add(flipped)
            if reciprocal:
                strong.add(key)
            if key not in out or out[key][1] < sim:
                out[key] = (label, sim)
    for key, seen in flips.items():  # close both ways (a symmetric picture): try both
        if len(seen) == 2:
            label, sim = out[key]
            out[key] = (_EITHER_WAY.format(label.removeprefix("mirror ")), sim)
    return Found({k: v for k, v in out.items() if k in strong},
                 {k: v for k, v in out.items() if k not in strong})  # fmt: skip


def identity_candidates(
    vectors: np.ndarray,
    settings: MatchSettings,
    *,
    workers: int | None = None,
    extra: dict[int, np.ndarray] | None = None,
) -> Found:
    """The ``neighbours`` nearest descriptors of every image, in any orientation.

    Each descriptor enters the index in its canonical orientation
    (:func:`lookalike.orientation.canonical_orientations`; near a boundary of that choice
    in the neighbouring one too, about two entries an image), so a copy turned by quarter
    turns, flipped or mirrored lands next to its original in one search. Without
    ``settings.turns``, the plain descriptors are searched. ``extra`` adds descriptors of
    some images (image index -> descriptor: the picture inside its bars or border).
    """
    k, bar = settings.neighbours, settings.min_descriptor_similarity
    image_of = np.arange(len(vectors))
    if extra:
        image_of = np.concatenate([image_of, np.fromiter(extra, np.intp, len(extra))])
        vectors = np.vstack([vectors, *extra.values()]).astype(np.float32)
    if settings.turns:
        choices = canonical_orientations(vectors, mirror=settings.mirror)
        entry_of = np.repeat(np.arange(len(vectors)), [len(c) for c in choices])
        which = np.fromiter((o for c in choices for o in c), np.intp, len(entry_of))
        vectors = all_orientations(vectors)[entry_of, which]
        image_of = image_of[entry_of]
    more = 0 if len(image_of) == len(set(image_of.tolist())) else 2  # an image's other entries
    found = _self_pairs(vectors, k + more, bar, workers, settings, entries_per_image=1 + more // 2)

    def by_image(entries: Candidates) -> Candidates:
        out: Candidates = {}
        for (p, q), (label, sim) in entries.items():
            i, j = int(image_of[p]), int(image_of[q])
            key = (min(i, j), max(i, j))
            if i != j and (key not in out or out[key][1] < sim):
                out[key] = (label, sim)
        return out

    strong = by_image(found.reciprocal)
    weak = {key: v for key, v in by_image(found.others).items() if key not in strong}
    return Found(strong, weak)


def spectrum_candidates(
    rows: Sequence[ImageRow],
    settings: MatchSettings,
    alone: set[int],
    *,
    workers: int | None = None,
    invariant: Callable[[ImageRow], np.ndarray] | None = None,
) -> Found:
    """The ``spectrum_neighbours`` nearest by :func:`invariant_descriptor` of the images
    in ``alone`` (view ``spectrum``).

    A rotation with a strong crop can move both DCT descriptors far from the original's,
    but not its Fourier-Mellin invariants; mirroring does not move them either, so both
    orientations are checked. Only images no other search linked to anything are asked
    (``alone``): the others are in their group already.
    """
    if not (alone and settings.geometric and settings.spectrum_neighbours > 0 and len(rows) > 1):
        return Found({}, {})
    describe = invariant or (lambda r: invariant_descriptor(r.features.thumb, r.width, r.height))
    vectors = np.stack(
        [
            np.zeros(DESCRIPTOR_DIM, np.float32) if row.features.is_flat else describe(row)
            for row in rows
        ]  # fmt: skip
    )
    found = _self_pairs(vectors, settings.spectrum_neighbours, -1.0, workers, settings)

    def of_alone(pairs: Candidates) -> Candidates:
        return {
            key: (_EITHER_WAY.format("spectrum"), sim)
            for key, (_, sim) in pairs.items()
            if key[0] in alone or key[1] in alone
        }

    return Found(of_alone(found.reciprocal), of_alone(found.others))


_EITHER_WAY = "{}, plain or mirror"


def _self_pairs(
    vectors: np.ndarray,
    k: int,
    min_similarity: float,
    workers: int | None,
    settings: MatchSettings | None = None,
    *,
    entries_per_image: int = 1,
) -> Found:
    """The ``k`` nearest rows of every row, split by reciprocity when ``settings`` ask for
    it (:class:`Found`; an image's ``entries_per_image`` rows count as one neighbour)."""
    if len(vectors) < 2:
        return Found({}, {})
    mutual = 0
    if settings is not None and settings.mutual_neighbours > 0:
        mutual = settings.mutual_neighbours * entries_per_image + entries_per_image - 1
    cand = knn_pairs(vectors, k=k, min_similarity=min_similarity, workers=workers,
                     mutual=mutual)  # fmt: skip
    sure = settings.sure_similarity if settings is not None else math.inf
    strong = (
        np.ones(len(cand), bool)
        if cand.reciprocal is None
        else cand.reciprocal | (cand.score >= sure)
    )
    found = Found({}, {})
    for i, j, sim, ok in zip(cand.i.tolist(), cand.j.tolist(), cand.score.tolist(),
                             strong.tolist(), strict=True):  # fmt: skip
        (found.reciprocal if ok else found.others)[(min(i, j), max(i, j))] = ("descriptor", sim)
    return found


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
