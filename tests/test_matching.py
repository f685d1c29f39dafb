"""Which candidate pairs the matcher checks, and where: here or on worker processes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import lookalike
from lookalike.matching import (
    PRESETS,
    MatchSettings,
    PairJudge,
    _geometric_order,
    _Links,
    find_pairs,
)
from lookalike.store import Store
from lookalike.testing import write_dataset


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


# -- pair checks on worker processes ----------------------------------------------------------


@pytest.fixture(scope="module")
def augmented(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("augmented") / "images"
    write_dataset(
        root, n_originals=10, variants_per_original=3,
        kinds=["crop", "rotate", "hflip", "jpeg_quality", "resize"], n_distractors=4,
        n_hard_negatives=4, rng=8,
    )  # fmt: skip
    return root


def _everything(result: lookalike.ScanResult) -> tuple[list[Any], list[Any]]:
    pairs = [(p.a, p.b, p.relation, p.score, p.evidence) for p in result.pairs]
    groups = [(g.keeper, [(m.path, m.relation, m.score) for m in g.members]) for g in result.groups]
    return pairs, groups


def test_pairs_checked_on_worker_processes_are_the_pairs_checked_here(
    augmented, tmp_path, monkeypatch
) -> None:
    checked_here: list[str] = []
    verify = PairJudge._verify
    monkeypatch.setattr(
        PairJudge, "_verify", lambda self, *a: checked_here.append(a[0]) or verify(self, *a)
    )
    here = lookalike.scan([augmented], db=tmp_path / "here.db", engine="serial")
    on_client = len(checked_here)
    workers = lookalike.scan([augmented], db=tmp_path / "pool.db", engine="processes", workers=2)
    assert here.groups and any("geometry" in p.evidence.get("method", "") for p in here.pairs)
    assert _everything(workers) == _everything(here)
    # the worker processes did the searches' checks; only keeper checks were left here
    assert len(checked_here) - on_client < on_client / 4


class _DyingWorkers:
    """An executor whose every task is lost, as when its worker processes keep dying."""

    workers = 2

    def __init__(self) -> None:
        self.lost = 0

    def map_unordered(self, fn, tasks, *, lost=None, shard_size=None):
        for task in tasks:
            self.lost += 1
            yield lost(task, RuntimeError("worker died"))


def test_pairs_of_a_task_lost_on_the_workers_are_checked_here(augmented, tmp_path) -> None:
    lookalike.scan([augmented], db=tmp_path / "s.db", engine="serial")
    with Store(tmp_path / "s.db") as store:
        rows = store.load_images([d for (d,) in store.conn.execute("SELECT digest FROM images")])
    settings = MatchSettings()

    def pairs(executor: Any) -> list[Any]:
        judge = PairJudge(rows, settings, {}, lambda d: None, workers=1)
        found = find_pairs(rows, settings, judge, workers=1, executor=executor)
        return [(p.a, p.b, p.relation, p.score, p.evidence) for p in found]

    dying = _DyingWorkers()
    assert pairs(dying) == pairs(None)
    assert dying.lost > 0


def test_a_task_that_fails_on_a_worker_leaves_its_pairs_to_the_caller(tmp_path) -> None:
    from lookalike.matching import JudgeTask, judge_batch

    task = JudgeTask(MatchSettings(), (("a", "b", False, None, True),), {}, ("a", "b"), (),
                     str(tmp_path / "no-such-store.db"))  # fmt: skip
    assert judge_batch(task) == []


# -- verdicts are saved while matching runs ---------------------------------------------------


def _stored_verdicts(db: Path) -> int:
    with Store(db, readonly=True) as store:  # another connection: sees committed rows only
        return int(store.conn.execute("SELECT count(*) FROM verdicts").fetchone()[0])


def test_verdicts_are_committed_in_batches_by_count_and_by_time(tmp_path) -> None:
    from lookalike import store as store_module

    assert (store_module.VERDICT_BATCH_ROWS, store_module.VERDICT_BATCH_SECONDS) == (500, 2.0)
    now = [0.0]
    hit = (False, 0.5, "{}")
    with Store(tmp_path / "s.db") as store:
        with store.verdict_writer("key", rows=3, seconds=2.0, clock=lambda: now[0]) as writer:
            writer.add("a", "b", hit)
            writer.add("a", "c", hit)
            assert _stored_verdicts(tmp_path / "s.db") == 0
            writer.add("a", "d", hit)  # the third: a full batch
            assert _stored_verdicts(tmp_path / "s.db") == 3
            writer.add("b", "c", hit)
            now[0] = 2.5  # two seconds since the last commit
            writer.add("b", "d", (True, 0.9, "{}"))
            assert _stored_verdicts(tmp_path / "s.db") == 5
            writer.add("c", "d", hit)
        assert _stored_verdicts(tmp_path / "s.db") == 6  # the rest on leaving
        assert store.load_verdicts("key")[("b", "d")] == (True, 0.9, "{}")


def test_every_new_verdict_reaches_the_judge_s_sink_here_and_from_workers(
    augmented, tmp_path
) -> None:
    from lookalike.executors import SerialExecutor

    lookalike.scan([augmented], db=tmp_path / "s.db", engine="serial")
    with Store(tmp_path / "s.db") as store:
        rows = store.load_images([d for (d,) in store.conn.execute("SELECT digest FROM images")])
    settings = MatchSettings()
    for executor in (None, SerialExecutor()):  # SerialExecutor: the workers' path, in process
        sent: dict[tuple[str, str], Any] = {}
        judge = PairJudge(rows, settings, {}, lambda d: None, workers=1,
                          on_verdict=lambda a, b, hit: sent.__setitem__((a, b), hit))  # fmt: skip
        find_pairs(rows, settings, judge, workers=1, executor=executor)
        assert sent and sent == judge.new


# -- reciprocal candidates ---------------------------------------------------------------------


def test_every_crop_of_a_picture_with_many_crops_joins_its_group(benchdata, tmp_path) -> None:
    """Thirty crops of one photo are each other's nearest neighbours, so the photo is
    among few crops' reciprocal neighbours: the other crops are checked once it has a
    group."""
    from PIL import Image, ImageOps

    from lookalike.evaluation import load_truth

    truth = load_truth(benchdata / "truth.json")
    originals = sorted({v["original"] for v in truth.variant_of.values()})
    root = tmp_path / "images"
    root.mkdir()
    rng = np.random.default_rng(2)
    for k, rel in enumerate(originals[:20]):
        with Image.open(benchdata / rel) as im:
            photo = ImageOps.exif_transpose(im).convert("RGB")
        photo.save(root / f"photo_{k:02d}.jpg", quality=92)
    photo = Image.open(root / "photo_03.jpg")
    w, h = photo.size
    for k in range(30):
        keep = rng.uniform(0.55, 0.9) ** 0.5
        cw, ch = int(w * keep), int(h * keep)
        x, y = int(rng.integers(0, w - cw)), int(rng.integers(0, h - ch))
        photo.crop((x, y, x + cw, y + ch)).save(root / f"crop_{k:02d}.jpg", quality=90)

    result = lookalike.scan([root], db=tmp_path / "s.db", engine="serial")

    groups = [sorted(Path(p).name for p in [g.keeper, *(m.path for m in g.members)])
              for g in result.groups]  # fmt: skip
    assert groups == [sorted([f"crop_{k:02d}.jpg" for k in range(30)] + ["photo_03.jpg"])]


def test_look_alike_candidates_that_are_not_reciprocal_are_not_checked() -> None:
    from lookalike.matching import identity_candidates

    rng = np.random.default_rng(0)
    # a crowd of look-alikes (cosine ~0.9 to each other) and one planted copy
    centre = rng.normal(size=63)
    crowd = centre + 0.35 * rng.normal(size=(40, 63))
    crowd[39] = crowd[0] + 0.02 * rng.normal(size=63)
    vectors = (crowd / np.linalg.norm(crowd, axis=1, keepdims=True)).astype(np.float32)
    settings = MatchSettings(turns=False, min_descriptor_similarity=0.5)

    found = identity_candidates(vectors, settings)
    every = identity_candidates(vectors, replace(settings, mutual_neighbours=0))

    assert (0, 39) in found.reciprocal
    assert not every.others and set(every.reciprocal) == set(found.reciprocal) | set(found.others)
    assert len(found.reciprocal) < 0.6 * len(every.reciprocal)
