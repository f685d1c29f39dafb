"""Grouping: components, keeper policy, and no transitive mega-clusters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lookalike.grouping import FileInfo, KeeperPolicy, build_groups, connected_components


@dataclass
class _Pair:
    relation: str = "near"
    score: float = 0.9
    evidence: dict[str, Any] = field(default_factory=dict)


def _file(
    name: str,
    digest: str,
    *,
    pixels: int = 100,
    size: int = 10,
    lossless: bool = False,
    root: str = "/r",
) -> FileInfo:
    return FileInfo(f"{root}/{name}", root, digest, size, pixels, 1, lossless)


def _judge(matches: set[frozenset[str]]):
    def judge(a: str, b: str):
        return _Pair() if frozenset((a, b)) in matches else None

    return judge


def test_a_chain_is_split_so_every_member_matches_its_keeper() -> None:
    files = [_file("a", "A", pixels=300), _file("b", "B", pixels=200), _file("c", "C", pixels=100)]
    matches = {frozenset("AB"), frozenset("BC")}  # A~B, B~C, but A and C differ
    marked = KeeperPolicy(keeper_marks=frozenset({"/r/a"}))
    groups = build_groups(files, [("A", "B"), ("B", "C")], _judge(matches), marked)
    assert [(g.keeper, [m.path for m in g.members]) for g in groups] == [("/r/a", ["/r/b"])]


def test_a_keeper_that_misses_members_gives_way_to_one_that_keeps_them_all() -> None:
    # two rotations of one photo, each a duplicate of the upright original but too far
    # apart from each other; the first rotation has the most pixels (black corners)
    files = [_file("rot1", "A", pixels=300), _file("orig", "B", pixels=200),
             _file("rot2", "C", pixels=100)]  # fmt: skip
    matches = {frozenset("AB"), frozenset("BC")}
    groups = build_groups(files, [("A", "B"), ("B", "C")], _judge(matches))
    assert [(g.keeper, [m.path for m in g.members]) for g in groups] == [
        ("/r/orig", ["/r/rot1", "/r/rot2"])
    ]


def test_leftovers_of_a_split_are_regrouped_among_themselves() -> None:
    names = [("a", 500), ("b", 400), ("c", 300), ("d", 200), ("e", 100)]
    files = [_file(n, n.upper(), pixels=p) for n, p in names]
    edges = [("A", "B"), ("B", "C"), ("C", "D"), ("D", "E")]  # a chain: neighbours only
    groups = build_groups(files, edges, _judge({frozenset(e) for e in edges}))
    assert [(g.keeper, [m.path for m in g.members]) for g in groups] == [
        ("/r/b", ["/r/a", "/r/c"]),
        ("/r/d", ["/r/e"]),
    ]


def test_the_keeper_keeping_most_members_wins_over_one_splitting_the_group() -> None:
    # the expanded rotation has the most pixels but duplicates only two of the others
    sizes = [("expanded", 500), ("orig", 400), ("v1", 300), ("v2", 200), ("v3", 100)]
    files = [_file(n, n.upper(), pixels=p) for n, p in sizes]
    matches = {frozenset(p) for p in [("EXPANDED", "V1"), ("EXPANDED", "V2"), ("ORIG", "V1"),
                                      ("ORIG", "V2"), ("ORIG", "V3"), ("V1", "V3")]}  # fmt: skip
    edges = [tuple(sorted(m)) for m in matches]
    groups = build_groups(files, edges, _judge(matches))
    assert [(g.keeper, [m.path for m in g.members]) for g in groups] == [
        ("/r/orig", ["/r/v1", "/r/v2", "/r/v3"])
    ]


def test_keeper_policy_order_and_marks() -> None:
    files = [
        _file("small_lossless.png", "A", pixels=100, lossless=True, size=50),
        _file("big.jpg", "B", pixels=200, size=20),
        _file("same_big_larger_file.jpg", "C", pixels=200, size=30),
    ]
    everything = {frozenset(p) for p in ["AB", "BC", "AC"]}
    edges = [("A", "B"), ("B", "C")]
    (g,) = build_groups(files, edges, _judge(everything))
    assert g.keeper == "/r/same_big_larger_file.jpg"
    lossless_first = KeeperPolicy(rules=("lossless", "pixels", "size", "shortest-path"))
    (g,) = build_groups(files, edges, _judge(everything), lossless_first)
    assert g.keeper == "/r/small_lossless.png"
    marked = KeeperPolicy(keeper_marks=frozenset({"/r/big.jpg"}))
    (g,) = build_groups(files, edges, _judge(everything), marked)
    assert g.keeper == "/r/big.jpg"


def test_byte_copies_are_exact_members() -> None:
    files = [_file("a", "A"), _file("bb", "A")]
    (g,) = build_groups(files, [], _judge(set()))
    assert g.keeper == "/r/a"
    assert [(m.relation, m.score) for m in g.members] == [("exact", 1.0)]


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 30).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=60),
        )
    )
)
def test_connected_components_matches_a_reference_union_find(data) -> None:
    n, edges = data
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    expected = [find(k) for k in range(n)]
    i = np.array([e[0] for e in edges], dtype=np.int64)
    j = np.array([e[1] for e in edges], dtype=np.int64)
    labels = connected_components(n, i, j).tolist()
    assert labels == expected


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7)), max_size=20), st.randoms())
def test_groups_partition_files_and_ignore_input_order(edges, rnd) -> None:
    names = "ABCDEFGH"
    files = [_file(n.lower(), n, pixels=10 * (k + 1)) for k, n in enumerate(names)]
    pairs = [(names[a], names[b]) for a, b in edges if a != b]
    matches = {frozenset(p) for p in pairs}
    groups = build_groups(files, pairs, _judge(matches))
    seen = [p for g in groups for p in [g.keeper, *(m.path for m in g.members)]]
    assert len(seen) == len(set(seen))
    shuffled_files, shuffled_pairs = files[:], pairs[:]
    rnd.shuffle(shuffled_files)
    rnd.shuffle(shuffled_pairs)
    assert build_groups(shuffled_files, shuffled_pairs, _judge(matches)) == groups


def test_a_pair_marked_apart_never_shares_a_group_even_under_another_keeper() -> None:
    files = [_file("a", "A", pixels=300), _file("b", "B", pixels=200), _file("c", "C", pixels=100)]
    everything = {frozenset(p) for p in ["AB", "BC", "AC"]}
    apart = {("A", "C"), ("C", "A")}  # a person said A and C are not duplicates

    def judge(a: str, b: str):
        return None if (a, b) in apart else _judge(everything)(a, b)

    groups = build_groups(files, [("A", "B"), ("B", "C"), ("A", "C")], judge, apart=apart)
    assert [(g.keeper, [m.path for m in g.members]) for g in groups] == [("/r/a", ["/r/b"])]
