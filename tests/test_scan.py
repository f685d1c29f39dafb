"""Scanning finds duplicates by content, groups them with a keeper, and is incremental."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import lookalike
from lookalike import extraction
from lookalike.decoding import DRAFT_PX, decode_image
from lookalike.evaluation import evaluate, load_truth
from lookalike.matching import PairJudge
from lookalike.store import Store
from lookalike.testing import DatasetTruth, make_photo, write_dataset


def _copy_tree(dataset: DatasetTruth, dest: Path) -> Path:
    shutil.copytree(dataset.root, dest)
    return dest


def _count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = extraction.decode_image

    def counting(data: bytes, **kwargs):
        calls.append("decode")
        return real(data, **kwargs)

    monkeypatch.setattr(extraction, "decode_image", counting)
    return calls


def test_generated_variants_are_found_without_false_groups(dataset, tmp_path) -> None:
    result = lookalike.scan([dataset.root], db=tmp_path / "s.db", engine="serial")
    truth_file = tmp_path / "truth.json"
    dataset.to_json(truth_file.parent / "truth.json")
    shutil.copytree(dataset.root, tmp_path / dataset.root.name, dirs_exist_ok=True)
    scores = evaluate(result.groups, _truth_at(dataset, result))
    assert scores["precision"] == 1.0
    assert scores["recall"] == 1.0
    assert scores["hard_negatives_flagged"] == 0


def _truth_at(dataset: DatasetTruth, result) -> lookalike.evaluation.Truth:  # type: ignore[name-defined]
    from lookalike.evaluation import Truth

    return Truth(
        base=dataset.root,
        images=tuple(dataset.images),
        groups=tuple(tuple(g) for g in dataset.groups),
        variant_of=dataset.variant_of,
        hard_negatives=tuple(tuple(g) for g in dataset.hard_negatives),
    )


def test_exact_copies_are_exact_and_the_keeper_follows_the_policy(dataset, tmp_path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    original = dataset.root / dataset.groups[0][0]
    shutil.copy(original, root / "a_long_name_copy.jpg")
    shutil.copy(original, root / "b.jpg")
    result = lookalike.scan([root], db=tmp_path / "s.db", engine="serial")
    (group,) = result.groups
    assert group.keeper == str(root / "b.jpg")  # same pixels, same size: shortest path wins
    assert [(m.relation, m.score) for m in group.members] == [("exact", 1.0)]


def test_keeper_prefers_more_pixels_then_lossless(dataset, tmp_path) -> None:
    from PIL import Image

    root = tmp_path / "root"
    root.mkdir()
    src = Image.open(dataset.root / dataset.groups[0][0]).convert("RGB")
    src.save(root / "small.jpg", quality=90)
    src.resize((src.width * 2, src.height * 2)).save(root / "big.jpg", quality=90)
    src.save(root / "same.png")
    result = lookalike.scan([root], db=tmp_path / "s.db", engine="serial")
    (group,) = result.groups
    assert Path(group.keeper).name == "big.jpg"
    rules = lookalike.ScanSettings(keeper_rules=("lossless", "pixels", "size", "shortest-path"))
    result = lookalike.scan([root], db=tmp_path / "s2.db", engine="serial", settings=rules)
    assert Path(result.groups[0].keeper).name == "same.png"


def test_reference_root_files_are_kept_and_never_removed(dataset, tmp_path) -> None:
    train, ref = tmp_path / "train", tmp_path / "reference"
    train.mkdir()
    ref.mkdir()
    original = dataset.root / dataset.groups[0][0]
    shutil.copy(original, train / "x.jpg")
    shutil.copy(original, ref / "longer_name_in_reference.jpg")
    shutil.copy(original, ref / "r.jpg")
    settings = lookalike.ScanSettings(reference_roots=(str(ref),))
    result = lookalike.scan([train, ref], db=tmp_path / "s.db", engine="serial", settings=settings)
    (group,) = result.groups
    assert group.keeper_root == str(ref)
    by_name = {Path(m.path).name: m for m in group.members}
    assert by_name["longer_name_in_reference.jpg"].reference is True
    assert by_name["x.jpg"].reference is False
    assert group.reclaimable_bytes == original.stat().st_size


def test_groups_spanning_roots_are_reported_as_leakage(dataset, tmp_path) -> None:
    from lookalike.report import summary

    train, val = tmp_path / "train", tmp_path / "val"
    train.mkdir()
    val.mkdir()
    group = dataset.groups[0]
    shutil.copy(dataset.root / group[0], train / "a.jpg")
    shutil.copy(dataset.root / group[1], val / ("b" + Path(group[1]).suffix))
    result = lookalike.scan([train, val], db=tmp_path / "s.db", engine="serial")
    assert summary(result.groups)["leakage"] == [{"roots": [str(train), str(val)], "groups": 1}]


def test_unchanged_rescan_reads_nothing_and_renamed_file_costs_no_decode(
    dataset, tmp_path, monkeypatch
) -> None:
    root = _copy_tree(dataset, tmp_path / "root")
    db = tmp_path / "s.db"
    first = lookalike.scan([root], db=db, engine="serial")
    decodes = _count_decodes(monkeypatch)
    warm = lookalike.scan([root], db=db, engine="serial")
    assert warm.stats["files_extracted"] == 0 and decodes == []
    assert warm.groups == first.groups
    victim = root / dataset.images[0]
    victim.rename(victim.with_name("renamed_" + victim.name))
    renamed = lookalike.scan([root], db=db, engine="serial")
    assert renamed.stats["files_extracted"] == 1
    assert decodes == []
    assert renamed.images == first.images


def test_changed_and_deleted_files_are_noticed(dataset, tmp_path, monkeypatch) -> None:
    root = _copy_tree(dataset, tmp_path / "root")
    db = tmp_path / "s.db"
    first = lookalike.scan([root], db=db, engine="serial")
    (root / dataset.images[0]).unlink()
    changed = root / dataset.images[1]
    changed.write_bytes((root / dataset.images[2]).read_bytes())
    decodes = _count_decodes(monkeypatch)
    again = lookalike.scan([root], db=db, engine="serial")
    assert again.images == first.images - 1
    assert again.stats["files_extracted"] == 1
    assert decodes == []  # its new content is another file's: no decode
    all_paths = {p for g in again.groups for p in [g.keeper, *(m.path for m in g.members)]}
    assert str(root / dataset.images[0]) not in all_paths


def test_scan_killed_midway_resumes_without_redoing_finished_work(dataset, tmp_path) -> None:
    root = _copy_tree(dataset, tmp_path / "root")
    for k in range(3):  # enough files for several committed batches
        shutil.copytree(dataset.root, root / f"copy{k}", dirs_exist_ok=True)
    db = tmp_path / "s.db"
    script = textwrap.dedent(
        f"""
        import os, signal, lookalike
        def progress(stage, done, total):
            if stage == "extract" and done >= 40:
                os.kill(os.getpid(), signal.SIGKILL)
        lookalike.scan([{str(root)!r}], db={str(db)!r}, engine="serial", progress=progress)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    total = sum(1 for _, _, files in os.walk(root) for _ in files)
    resumed = lookalike.scan([root], db=db, engine="serial")
    assert resumed.stats["files_extracted"] <= total - 32
    fresh = lookalike.scan([root], db=tmp_path / "fresh.db", engine="serial")
    assert resumed.groups == fresh.groups


@pytest.fixture(scope="module")
def many_pairs(tmp_path_factory) -> Path:
    """Crops, rotations and mirror images: hundreds of candidate pairs to verify."""
    root = tmp_path_factory.mktemp("many_pairs") / "images"
    write_dataset(
        root, n_originals=25, variants_per_original=3,
        kinds=["crop", "rotate", "hflip", "jpeg_quality", "resize"], n_distractors=6,
        n_hard_negatives=4, rng=8,
    )  # fmt: skip
    return root


def _count_verifications(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = PairJudge._verify
    monkeypatch.setattr(
        PairJudge, "_verify", lambda self, *a: calls.append(1) or real(self, *a)
    )
    return calls


def test_scan_killed_during_matching_keeps_verdicts_and_resumes_matching(
    many_pairs, tmp_path, monkeypatch
) -> None:
    db = tmp_path / "s.db"
    # small batches so the kill lands after a few commits; kill -9 after the third one
    script = textwrap.dedent(
        f"""
        import os, signal, lookalike
        from lookalike import store
        store.VERDICT_BATCH_ROWS, store.VERDICT_BATCH_SECONDS = 20, 1e9
        commits = []
        real = store.Store.save_verdicts
        def save_verdicts(self, *args):
            real(self, *args)
            commits.append(1)
            if len(commits) == 3:
                os.kill(os.getpid(), signal.SIGKILL)
        store.Store.save_verdicts = save_verdicts
        lookalike.scan([{str(many_pairs)!r}], db={str(db)!r}, engine="serial")
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, "the scan was not killed during matching"
    with Store(db, readonly=True) as store:
        kept = store.conn.execute("SELECT count(*) FROM verdicts").fetchone()[0]
        assert store.last_run() is None  # killed before the end
    assert kept >= 60
    verified = _count_verifications(monkeypatch)
    fresh = lookalike.scan([many_pairs], db=tmp_path / "fresh.db", engine="serial")
    from_scratch = len(verified)
    resumed = lookalike.scan([many_pairs], db=db, engine="serial")
    assert len(verified) - from_scratch < from_scratch - kept / 2
    assert (resumed.groups, resumed.pairs) == (fresh.groups, fresh.pairs)


def _progress_events(root: Path, db: Path) -> dict[str, list[tuple[int, int | None]]]:
    events: dict[str, list[tuple[int, int | None]]] = {}

    def progress(stage: str, done: int, total: int | None) -> None:
        events.setdefault(stage, []).append((done, total))

    lookalike.scan([root], db=db, engine="serial", progress=progress)
    return events


def test_every_stage_ends_with_its_total_known_cold_and_warm(dataset, tmp_path) -> None:
    for _ in ("cold", "warm"):
        events = _progress_events(dataset.root, tmp_path / "s.db")
        assert set(events) == {"discover", "extract", "match"}
        for stage, seen in events.items():
            done, total = seen[-1]
            assert total is not None and done == total, (stage, seen[-1])
        assert events["discover"][-1] == (len(dataset.images), len(dataset.images))


def test_matching_reports_its_checks_in_steps_towards_a_total(many_pairs, tmp_path) -> None:
    match = _progress_events(many_pairs, tmp_path / "s.db")["match"]
    done = [d for d, _ in match]
    totals = [t for _, t in match]
    assert None not in totals
    assert match[-1][0] == match[-1][1] > 100
    assert done == sorted(done) and totals == sorted(totals)  # never backwards
    assert len(set(done)) >= 5
    assert any(0 < d < t for d, t in match)  # steps inside the bar, not only its ends


def test_engines_give_identical_groups(dataset, tmp_path) -> None:
    serial = lookalike.scan([dataset.root], db=tmp_path / "a.db", engine="serial")
    threads = lookalike.scan([dataset.root], db=tmp_path / "b.db", engine="threads", workers=2)
    assert serial.groups == threads.groups
    assert serial.pairs == threads.pairs


def test_public_benchdata_meets_the_quality_targets(benchdata, tmp_path) -> None:
    result = lookalike.scan([benchdata / "images"], db=tmp_path / "s.db", workers=2)
    truth = load_truth(benchdata / "truth.json")
    scores = evaluate(result.groups, truth, exclude_transforms=("crop", "rotate", "hflip"))
    assert scores["precision"] >= 0.995
    assert scores["recall"] >= 0.99
    assert scores["hard_negative_rate"] <= 0.01
    assert all(r["recall"] >= 0.98 for r in scores["recall_by_transform"].values())
    assert result.failures == ()


def test_large_lossless_pictures_are_reduced_before_features_but_keep_full_pixel_digests() -> None:
    photo, _ = make_photo(21, size=(2000, 1500))
    png, bmp = io.BytesIO(), io.BytesIO()
    photo.save(png, "PNG")
    photo.save(bmp, "BMP")
    a, b = decode_image(png.getvalue()), decode_image(bmp.getvalue())
    assert (a.width, a.height) == (2000, 1500)  # the full size is reported
    assert 2 * DRAFT_PX <= min(a.gray.shape) < 4 * DRAFT_PX  # but the picture is reduced
    assert a.pixel_digest == b.pixel_digest  # digests are of the full-resolution pixels
    np.testing.assert_array_equal(a.gray, b.gray)
