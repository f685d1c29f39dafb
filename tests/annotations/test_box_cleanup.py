"""plan_cleanup(): keep rules, duplicate sets, chains, and label conflicts left for review."""

from __future__ import annotations

import pytest
from annotation_builders import memory_dataset

from lookalike.annotations import find_duplicate_boxes, plan_cleanup
from lookalike.errors import ConfigError

BIG = (100.0, 100.0, 200.0, 200.0)
SMALLER = (101.0, 101.0, 199.0, 198.0)
BIGGER = (99.0, 99.0, 202.0, 201.0)


def plan_for(objects, keep="first"):
    dataset = memory_dataset(objects)
    return plan_cleanup(dataset, find_duplicate_boxes(dataset), keep=keep)


@pytest.mark.parametrize(("keep", "kept"), [("first", 1), ("largest", 3), ("smallest", 2)])
def test_keep_rules(keep: str, kept: int) -> None:
    plan = plan_for([("dog", BIG), ("dog", SMALLER), ("dog", BIGGER)], keep)
    assert plan.keep == keep
    assert plan.duplicate_sets == ((1, 2, 3),)
    assert sorted(plan.removed_ids) == sorted({1, 2, 3} - {kept})
    assert all(r.kept.id == kept for r in plan.removals)
    assert [r.annotation.id for r in plan.removals] == sorted(plan.removed_ids)  # reading order


def test_ties_in_area_fall_back_to_reading_order() -> None:
    plan = plan_for([("dog", BIG), ("dog", (101.0, 100.0, 201.0, 200.0))], "largest")
    assert [r.annotation.id for r in plan.removals] == [2]


def test_removal_records_counterpart_iou_and_reason() -> None:
    (removal,) = plan_for([("dog", BIG), ("dog", SMALLER)]).removals
    assert (removal.annotation.id, removal.kept.id, removal.reason) == (2, 1, "duplicate-iou")
    assert 0.9 < removal.iou <= 1.0 and removal.containment == 1.0


def test_chain_keeps_both_ends_when_they_are_distinct() -> None:
    a = (0.0, 0.0, 100.0, 100.0)
    b = (13.0, 0.0, 113.0, 100.0)  # IoU(a, b) = 0.77
    c = (26.0, 0.0, 126.0, 100.0)  # IoU(b, c) = 0.77, IoU(a, c) = 0.59
    plan = plan_for([("person", a), ("person", b), ("person", c)])
    assert plan.duplicate_sets == ((1, 2, 3),)
    assert [r.annotation.id for r in plan.removals] == [2]
    assert plan.removals[0].kept.id == 1


def test_every_set_keeps_at_least_one_box() -> None:
    objects = [("cup", (10.0 + k * 0.5, 10.0, 50.0 + k * 0.5, 50.0)) for k in range(6)]
    plan = plan_for(objects, "smallest")
    (members,) = plan.duplicate_sets
    assert len(members) == 6 and len(plan.removals) == 5


def test_label_conflicts_are_reviewed_not_removed() -> None:
    plan = plan_for([("dog", BIG), ("cat", SMALLER)])
    assert plan.removals == () and plan.duplicate_sets == ()
    assert [(p.a.id, p.b.id, p.kind) for p in plan.review] == [(1, 2, "label-conflict")]


def test_conflicts_with_a_removed_copy_are_not_repeated() -> None:
    plan = plan_for([("dog", BIG), ("dog", SMALLER), ("cat", BIGGER)])
    assert plan.removed_ids == {2}
    assert [(p.a.id, p.b.id) for p in plan.review] == [(1, 3)]


def test_bad_keep_rule_and_foreign_pairs_raise() -> None:
    dataset = memory_dataset([("dog", BIG), ("dog", SMALLER)])
    pairs = find_duplicate_boxes(dataset)
    with pytest.raises(ConfigError, match="Unknown keep rule 'oldest'; choose one of first"):
        plan_cleanup(dataset, pairs, keep="oldest")  # type: ignore[arg-type]
    other = memory_dataset([("dog", BIG)])
    with pytest.raises(ConfigError, match="not in this dataset"):
        plan_cleanup(other, pairs)
