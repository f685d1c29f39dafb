"""Pairs -> groups: connected components, keeper choice, and splitting of chained groups."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .errors import ConfigError
from .records import Group, Member


def connected_components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Label the connected components of an undirected graph with ``n`` nodes.

    Vectorised union-find with pointer jumping; memory is O(n + edges).

    Returns:
        ``labels`` of shape ``(n,)``: every node gets the smallest node index of its component.
    """
    parent = np.arange(n, dtype=np.int64)
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    if i.size == 0:
        return parent
    while True:
        ri, rj = parent[i], parent[j]
        lo, hi = np.minimum(ri, rj), np.maximum(ri, rj)
        changed = lo != hi
        if not changed.any():
            break
        # Hook every larger root onto the smallest root it touches.
        np.minimum.at(parent, hi[changed], lo[changed])
        _compress(parent)
    return parent


def _compress(parent: np.ndarray) -> None:
    """Point every node straight at its root (pointer jumping, in place)."""
    while True:
        grand = parent[parent]
        if np.array_equal(grand, parent):
            return
        parent[:] = grand


# -- groups with a keeper ---------------------------------------------------------------

KEEPER_RULES = ("pixels", "richness", "lossless", "size", "shortest-path")
"""Default keeper policy, applied in this order after marks and reference roots:
most pixels (of picture: the filled corners of a rotation onto a larger canvas do not
count), then the richer picture (colour over grayscale over few colours, then more bits
per channel: :func:`lookalike.decoding.picture_richness`), then lossless over lossy, then
the larger file, then the shortest path (ties broken by the path itself). When the first choice is not a duplicate of every other
file of its group, up to three choices are tried and the one keeping the most files wins."""


@dataclass(frozen=True)
class FileInfo:
    """What grouping needs to know about one featured file."""

    path: str
    root: str
    digest: str
    size: int
    width: int
    height: int
    lossless: bool
    picture_pixels: int = 0  # pixels of picture when less than the frame (filled corners)
    richness: int = 0  # decoding.picture_richness: colour > grayscale > few colours, then bits


@dataclass(frozen=True)
class KeeperPolicy:
    """How the keeper of a group is chosen (see :data:`KEEPER_RULES`)."""

    rules: tuple[str, ...] = KEEPER_RULES
    reference_roots: tuple[str, ...] = ()
    keeper_marks: frozenset[str] = frozenset()

    def sort_key(self, f: FileInfo) -> tuple[Any, ...]:
        """Smaller key = better keeper."""
        key: list[Any] = [f.path not in self.keeper_marks, f.root not in self.reference_roots]
        for rule in self.rules:
            if rule == "pixels":
                key.append(-(f.picture_pixels or f.width * f.height))
            elif rule == "richness":
                key.append(-f.richness)
            elif rule == "lossless":
                key.append(not f.lossless)
            elif rule == "size":
                key.append(-f.size)
            elif rule == "shortest-path":
                key.append(len(f.path))
            else:
                raise ConfigError(
                    f"Unknown keeper rule {rule!r}; choose from: {', '.join(KEEPER_RULES)}."
                )
        key.append(f.path)
        return tuple(key)


JudgeFn = Callable[[str, str], "DigestPairLike | None"]
Apart = frozenset[tuple[str, str]] | set[tuple[str, str]]
"""Digest pairs (both orders) that must never share a group."""
Kept = list[tuple[FileInfo, str, float, dict[str, Any]]]
"""Members of a group: file, relation to the keeper, score, evidence."""


class DigestPairLike(Protocol):
    relation: str
    score: float
    evidence: dict[str, Any]


def build_groups(
    files: Sequence[FileInfo],
    edges: Sequence[tuple[str, str]],
    judge: JudgeFn,
    policy: KeeperPolicy = KeeperPolicy(),
    apart: Apart = frozenset(),
) -> list[Group]:
    """Group files linked by duplicate ``edges`` (digest pairs), with one keeper each.

    ``apart`` holds digest pairs (both orders) that must never share a group: pairs a
    person marked as not duplicates.

    Files sharing a digest are ``exact`` duplicates. Every member of a returned group is a
    verified duplicate of its keeper (``judge(keeper_digest, member_digest)``); members that
    are not are split off and grouped again among themselves, so chains never glue
    unrelated pictures together.
    """
    by_digest: dict[str, list[FileInfo]] = {}
    for f in files:
        by_digest.setdefault(f.digest, []).append(f)
    digests = sorted(by_digest)
    index = {d: k for k, d in enumerate(digests)}
    pairs = [(index[a], index[b]) for a, b in edges if a in index and b in index]
    ii = np.array([p[0] for p in pairs], dtype=np.int64)
    jj = np.array([p[1] for p in pairs], dtype=np.int64)
    labels = connected_components(len(digests), ii, jj)
    adjacency: dict[str, set[str]] = {}
    for a, b in pairs:
        adjacency.setdefault(digests[a], set()).add(digests[b])
        adjacency.setdefault(digests[b], set()).add(digests[a])
    components: dict[int, list[str]] = {}
    for k, label in enumerate(labels.tolist()):
        components.setdefault(label, []).append(digests[k])
    raw: list[tuple[FileInfo, Kept]] = []
    for component in components.values():
        members = [f for d in component for f in by_digest[d]]
        if len(members) > 1:
            raw.extend(_split_by_keeper(members, adjacency, judge, policy, apart))
    raw.sort(key=lambda g: g[0].path)
    return [_to_group(k + 1, keeper, rest, policy) for k, (keeper, rest) in enumerate(raw)]


def _split_by_keeper(
    files: list[FileInfo],
    adjacency: dict[str, set[str]],
    judge: JudgeFn,
    policy: KeeperPolicy,
    apart: Apart = frozenset(),
) -> list[tuple[FileInfo, Kept]]:
    """Pick a keeper, keep the files that duplicate it, and regroup the rest."""
    out = []
    pending = [files]
    while pending:
        component = pending.pop()
        if len(component) < 2:
            continue
        keeper, kept, left = _choose_keeper(component, adjacency, judge, policy, apart)
        if kept:
            out.append((keeper, kept))
        pending.extend(_components_of(left, adjacency))
    return out


_KEEPER_TRIES = 3
"""Distinct contents tried as keeper of a group whose first choice is not a duplicate of
every member."""


def _choose_keeper(
    component: list[FileInfo],
    adjacency: dict[str, set[str]],
    judge: JudgeFn,
    policy: KeeperPolicy,
    apart: Apart = frozenset(),
) -> tuple[FileInfo, Kept, list[FileInfo]]:
    """The keeper of a component, the members that duplicate it, and the files left over.

    The policy's first choice wins when every other file duplicates it. When some do not
    (two rotations of one photo can be too far apart from each other, while both
    duplicate the upright original), the next choices of the same standing (marked
    keepers and reference roots stay first) are tried, and the one keeping the most
    members wins; ties go to the one whose leftovers are most linked to one another (they
    are regrouped), then to the policy's order.
    """
    ordered = sorted(component, key=policy.sort_key)
    standing = policy.sort_key(ordered[0])[:2]
    tried: set[str] = set()
    best: tuple[tuple[int, int], FileInfo, list[Any], list[FileInfo]] | None = None
    for keeper in ordered:
        if keeper.digest in tried or policy.sort_key(keeper)[:2] != standing:
            continue
        tried.add(keeper.digest)
        kept, left = _members_of(keeper, ordered, judge, apart)
        score = (len(kept), _still_linked(left, adjacency))
        if best is None or score > best[0]:
            best = (score, keeper, kept, left)
        if not left or len(tried) >= _KEEPER_TRIES:
            break
    assert best is not None
    return best[1:]


def _still_linked(files: list[FileInfo], adjacency: dict[str, set[str]]) -> int:
    """How many of ``files`` have an accepted pair with another of them."""
    digests = {f.digest for f in files}
    return sum(1 for f in files if adjacency.get(f.digest, set()) & (digests - {f.digest}))


def _members_of(
    keeper: FileInfo,
    files: list[FileInfo],
    judge: JudgeFn,
    apart: Apart = frozenset(),
) -> tuple[Kept, list[FileInfo]]:
    """Split ``files`` (minus the keeper) into duplicates of the keeper and the rest; a
    file marked apart from one already in the group is left out too."""
    kept: Kept = []
    left: list[FileInfo] = []
    for f in files:
        if f is keeper:
            continue
        inside = [keeper.digest, *(m[0].digest for m in kept)]
        if apart and any((f.digest, d) in apart for d in inside):
            left.append(f)
            continue
        relation = _relation_to_keeper(keeper, f, judge)
        if relation is None:
            left.append(f)
        else:
            kept.append((f, *relation))
    return kept, left


def _relation_to_keeper(
    keeper: FileInfo, f: FileInfo, judge: JudgeFn
) -> tuple[str, float, dict[str, Any]] | None:
    if f.digest == keeper.digest:
        return ("exact", 1.0, {"method": "content digest"})
    pair = judge(keeper.digest, f.digest)
    if pair is None:
        return None
    return (pair.relation, pair.score, pair.evidence)


def _components_of(files: list[FileInfo], adjacency: dict[str, set[str]]) -> list[list[FileInfo]]:
    digests = {f.digest for f in files}
    seen: set[str] = set()
    comps: list[list[FileInfo]] = []
    for f in sorted(files, key=lambda x: x.path):
        if f.digest in seen:
            continue
        stack, comp = [f.digest], set()
        while stack:
            d = stack.pop()
            if d in comp:
                continue
            comp.add(d)
            stack.extend(n for n in adjacency.get(d, ()) if n in digests and n not in comp)
        seen |= comp
        comps.append([x for x in files if x.digest in comp])
    return comps


def _to_group(
    gid: int,
    keeper: FileInfo,
    rest: Kept,
    policy: KeeperPolicy,
) -> Group:
    members = tuple(
        Member(
            path=f.path,
            relation=relation,  # type: ignore[arg-type]
            score=round(score, 4),
            root=f.root,
            size=f.size,
            reference=f.root in policy.reference_roots,
            evidence=evidence,
        )
        for f, relation, score, evidence in sorted(rest, key=lambda m: m[0].path)
    )
    roots = tuple(sorted({keeper.root, *(m.root for m in members)}))
    return Group(gid, keeper.path, keeper.root, keeper.size, members, roots)
