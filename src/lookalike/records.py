"""Typed records that flow through lookalike: images, failures, pairs, groups.

They are frozen dataclasses with plain-data fields so they pickle across processes
and turn into the ``--json`` schema with :func:`dataclasses.asdict`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Relation = Literal["exact", "pixel", "near", "mirror"]
"""How two images are duplicates: same bytes, same decoded pixels, same picture after
edits, or the same picture mirrored."""

RELATIONS: tuple[str, ...] = ("exact", "pixel", "near", "mirror")

ProgressCallback = Callable[[int, int], bool | None]
"""``progress(done, total)``; returning ``False`` cancels the running step."""


@dataclass(frozen=True)
class Failure:
    """A file that could not be used, and why (one line)."""

    path: str
    stage: str
    error: str


@dataclass(frozen=True)
class Pair:
    """Two images found to be duplicates, with the evidence for it."""

    a: str
    b: str
    relation: Relation
    score: float
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Member:
    """A non-keeper member of a duplicate group, related to the group's keeper."""

    path: str
    relation: Relation
    score: float
    root: str
    size: int
    reference: bool = False
    evidence: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Group:
    """A set of duplicates: one keeper and the members that duplicate it."""

    id: int
    keeper: str
    keeper_root: str
    keeper_size: int
    members: tuple[Member, ...]
    roots: tuple[str, ...]

    @property
    def relation(self) -> Relation:
        """The loosest relation in the group (near < pixel < exact)."""
        order = {r: i for i, r in enumerate(RELATIONS)}
        return max((m.relation for m in self.members), key=order.__getitem__)

    @property
    def reclaimable_bytes(self) -> int:
        """Bytes freed by removing every member that may be removed."""
        return sum(m.size for m in self.members if not m.reference)

    @property
    def spans_roots(self) -> bool:
        """True when the group has images from more than one root (split leakage)."""
        return len(self.roots) > 1
