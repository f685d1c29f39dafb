"""Which candidate pairs the matcher spends geometric checks on."""

from __future__ import annotations

from types import SimpleNamespace

from lookalike.matching import MatchSettings, PRESETS, _geometric_order, _Links


def _rows(*digests: str) -> list[SimpleNamespace]:
    return [SimpleNamespace(digest=d) for d in digests]


def test_two_groups_found_already_get_a_few_geometric_tries_most_similar_first() -> None:
    rows = _rows("x0", "x1", "y0", "y1", "y2", "z")
    linked = _Links()
    linked.link("x0", "x1")
    linked.link("y0", "y1")
    linked.link("y1", "y2")
    across = [(i, j) for i in (0, 1) for j in (2, 3, 4)]
    candidates = {pair: ("global", 0.9 - 0.01 * k) for k, pair in enumerate(across)}
    candidates[(0, 5)] = ("centre", 0.6)  # z has no group yet: always tried
    candidates[(4, 5)] = ("centre", 0.55)
    candidates[(0, 1)] = ("global", 0.99)  # linked already: never tried

    order = list(_geometric_order(rows, candidates, {}, linked, 3))

    assert [pair for pair, *_ in order] == [(0, 2), (0, 3), (0, 4), (0, 5), (4, 5)]


def test_the_loose_preset_tries_more_pairs_of_groups() -> None:
    assert PRESETS["loose"]["group_pair_tries"] > MatchSettings().group_pair_tries
