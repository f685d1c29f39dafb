"""lookalike.review: marks, group exclusion, keeper change, not-a-duplicate, bulk, decisions."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from lookalike import scan
from lookalike.errors import ConfigError, InputNotFoundError
from lookalike.pipeline import ScanResult, ScanSettings
from lookalike.review import (
    StaleGroupError,
    bulk_exclude,
    change_keeper,
    decide,
    decision_counts,
    decision_summary,
    exclude_group,
    kept_files,
    mark_counts,
    mark_not_duplicate,
    removals,
    set_mark,
)
from lookalike.store import Store
from lookalike.testing import write_dataset

KINDS = ["jpeg_quality", "resize", "brightness", "contrast", "gamma", "noise", "blur", "sharpen"]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("review-template")
    write_dataset(
        base / "train",
        n_originals=4,
        variants_per_original=2,
        kinds=KINDS,
        n_distractors=2,
        n_hard_negatives=1,
        rng=11,
    )
    write_dataset(
        base / "ref",
        n_originals=1,
        variants_per_original=1,
        kinds=KINDS,
        n_distractors=0,
        n_hard_negatives=0,
        rng=12,
    )
    first = sorted((base / "train").rglob("*.jpg"))[0]
    shutil.copyfile(first, base / "ref" / "copy.jpg")
    return base


class Case:
    def __init__(self, base: Path, reference: bool = False) -> None:
        self.roots = [str(base / "train"), str(base / "ref")]
        self.db = base / "store.db"
        self.settings = ScanSettings(reference_roots=(self.roots[1],) if reference else ())
        self.result: ScanResult = self.rescan()
        self.store = Store(self.db)

    def rescan(self) -> ScanResult:
        self.result = scan(self.roots, db=self.db, settings=self.settings)
        return self.result

    def group_with(self, n_members: int) -> object:
        return next(g for g in self.result.groups if len(g.members) >= n_members)


@pytest.fixture()
def case(template: Path, tmp_path: Path) -> Iterator[Case]:
    shutil.copytree(template, tmp_path / "data")
    c = Case(tmp_path / "data")
    yield c
    c.store.close()


def test_set_and_clear_marks(case: Case) -> None:
    member = case.result.groups[0].members[0].path
    set_mark(case.store, member, "exclude")
    assert case.store.marks() == {member: "exclude"}
    set_mark(case.store, member, "keep")
    assert case.store.marks() == {member: "keep"}
    set_mark(case.store, member, None)
    assert case.store.marks() == {}
    with pytest.raises(ConfigError, match="Unknown mark 'delete'; choose from: exclude, keep"):
        set_mark(case.store, member, "delete")
    with pytest.raises(InputNotFoundError, match="is not in the store"):
        set_mark(case.store, "/no/such/file.jpg", "keep")


def test_exclude_group_marks_every_member_but_the_keeper(case: Case) -> None:
    group = case.group_with(2)
    set_mark(case.store, group.members[0].path, "keep")
    marked = exclude_group(case.store, group.id)
    assert sorted(marked) == sorted(m.path for m in group.members)
    assert case.store.marks() == {m.path: "exclude" for m in group.members}
    with pytest.raises(StaleGroupError, match="Reload the page"):
        exclude_group(case.store, 999)


def test_exclude_group_leaves_reference_files(template: Path, tmp_path: Path) -> None:
    shutil.copytree(template, tmp_path / "data")
    c = Case(tmp_path / "data", reference=True)
    try:
        leaked = next(g for g in c.result.groups if len(g.roots) > 1)
        refs = {m.path for m in leaked.members if m.reference}
        marked = exclude_group(c.store, leaked.id)
        assert not refs & set(marked)
        decisions = {d.path: d for d in decide(c.store)}
        for path in refs | {leaked.keeper}:
            assert decisions[path].action == "keep"
        assert leaked.keeper.startswith(c.roots[1])  # reference roots win the keeper
    finally:
        c.store.close()


def test_bulk_exclude_by_group_score(case: Case) -> None:
    scores = {g.id: min(m.score for m in g.members) for g in case.result.groups}
    cut = sorted(scores.values())[len(scores) // 2]
    chosen = [g for g in case.result.groups if scores[g.id] >= cut]
    protected = chosen[0].members[0].path
    set_mark(case.store, protected, "keep")
    dry = bulk_exclude(case.store, min_score=cut, dry_run=True)
    assert dry.groups == len(chosen) and case.store.marks() == {protected: "keep"}
    done = bulk_exclude(case.store, min_score=cut)
    expected = {m.path for g in chosen for m in g.members} - {protected}
    assert set(done.files) == expected
    assert case.store.marks() == {**{p: "exclude" for p in expected}, protected: "keep"}
    assert bulk_exclude(case.store, min_score=1.0, relation="exact").groups == sum(
        1 for g in case.result.groups if g.relation == "exact"
    )
    with pytest.raises(ConfigError, match="within"):
        bulk_exclude(case.store, min_score=1.5)
    with pytest.raises(ConfigError, match="Unknown relation"):
        bulk_exclude(case.store, min_score=0.5, relation="cousin")


def test_change_keeper_updates_the_group_now_and_after_a_rescan(case: Case) -> None:
    group = case.group_with(2)
    new, other = group.members[0], group.members[1]
    change_keeper(case.store, group.id, new.path)
    [now] = [g for g in case.store.load_groups() if g.id == group.id]
    assert now.keeper == new.path
    members = {m.path: m for m in now.members}
    assert set(members) == {group.keeper, *(m.path for m in group.members)} - {new.path}
    assert (members[group.keeper].relation, members[group.keeper].score) == (
        new.relation,
        new.score,
    )
    assert members[other.path].relation in ("near", "pixel", "exact", "mirror")
    assert "former keeper" in members[group.keeper].evidence["note"]
    assert case.store.marks() == {new.path: "keeper"}
    change_keeper(case.store, group.id, other.path)  # moving the keeper again clears the old mark
    assert case.store.marks() == {other.path: "keeper"}
    result = case.rescan()
    [regrouped] = [
        g for g in result.groups if other.path in {g.keeper, *(m.path for m in g.members)}
    ]
    assert regrouped.keeper == other.path
    with pytest.raises(StaleGroupError):
        change_keeper(case.store, group.id, case.result.groups[-1].members[0].path + ".nope")


def test_not_duplicate_removes_the_member_now_and_for_good(case: Case) -> None:
    group = case.group_with(2)
    member = group.members[0].path
    set_mark(case.store, member, "exclude")
    removed = mark_not_duplicate(case.store, group.id, member)
    assert removed == [member]
    assert case.store.marks() == {}  # it was excluded as a duplicate; it is not one
    [now] = [g for g in case.store.load_groups() if g.id == group.id]
    assert member not in {m.path for m in now.members}
    assert mark_counts(case.store)["not_duplicate_pairs"] == 1
    for g in case.rescan().groups:
        assert not {group.keeper, member} <= {g.keeper, *(m.path for m in g.members)}


def test_not_duplicate_refuses_byte_identical_files(case: Case) -> None:
    copy = str(Path(case.roots[1]) / "copy.jpg")
    original = str(sorted(Path(case.roots[0]).rglob("*.jpg"))[0])
    [group] = [g for g in case.result.groups if copy in {g.keeper, *(m.path for m in g.members)}]
    assert original in {group.keeper, *(m.path for m in group.members)}
    with pytest.raises(ConfigError, match="same bytes"):
        mark_not_duplicate(case.store, group.id, copy, other=original)


def test_decisions_follow_the_rules_and_marks_win(case: Case) -> None:
    group = case.group_with(2)
    a, b = group.members[0].path, group.members[1].path
    grouped = {p for g in case.result.groups for p in (g.keeper, *(m.path for m in g.members))}
    lone = next(f.path for f in kept_files(case.store) if f.path not in grouped)
    set_mark(case.store, a, "keep")
    set_mark(case.store, group.keeper, "exclude")
    set_mark(case.store, lone, "exclude")
    d = {x.path: x for x in decide(case.store)}
    assert (d[a].action, d[a].reason) == ("keep", "marked keep")
    assert (d[b].action, d[b].reason) == ("remove", "duplicate of the keeper")
    assert (d[group.keeper].action, d[group.keeper].reason) == ("remove", "marked exclude")
    assert (d[lone].role, d[lone].action) == ("ungrouped", "remove")
    kept = {f.path for f in kept_files(case.store)}
    assert a in kept and b not in kept and lone not in kept and group.keeper not in kept


def test_sql_counts_match_the_python_decisions(case: Case) -> None:
    rng = np.random.default_rng(0)
    paths = [f.path for f in kept_files(case.store, [])]
    for _ in range(4):
        for p in rng.choice(paths, size=8, replace=False):
            set_mark(case.store, str(p), [None, "exclude", "keep"][int(rng.integers(3))])
        decisions = decide(case.store)
        counts = decision_counts(case.store)
        python = decision_summary(decisions)
        assert {k: counts[k] for k in python} == python
        assert counts["kept_files"] == len(kept_files(case.store, decisions))
        page = removals(case.store, limit=5, offset=1)
        assert page == [x for x in decisions if x.action == "remove"][1:6]


def test_marks_survive_rescans_and_are_honoured(case: Case) -> None:
    group = case.group_with(2)
    set_mark(case.store, group.members[0].path, "keep")
    set_mark(case.store, group.members[1].path, "exclude")
    before = case.store.marks()
    case.rescan()
    case.rescan()
    assert case.store.marks() == before
    d = {x.path: x.action for x in decide(case.store)}
    assert d[group.members[0].path] == "keep" and d[group.members[1].path] == "remove"
