"""Every file ends up featured, failed (with a one-line reason) or skipped; nothing is lost."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import lookalike
from lookalike.testing import write_edge_case_zoo, write_hidden_file, write_symlink_loop


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("zoo")
    return root, write_edge_case_zoo(root)


@pytest.fixture(scope="module")
def zoo_result(zoo: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory):
    root, _ = zoo
    db = tmp_path_factory.mktemp("db") / "store.db"
    return lookalike.scan([root], db=db, engine="serial")


def _rel(root: Path, path: str) -> str:
    return os.path.relpath(path, root)


def test_every_zoo_file_is_accounted_for_exactly_once(zoo, zoo_result) -> None:
    root, expected = zoo
    featured = {
        _rel(root, r) for g in zoo_result.groups for r in [g.keeper, *(m.path for m in g.members)]
    }
    failed = {_rel(root, f.path): f for f in zoo_result.failures}
    skipped = {_rel(root, f.path) for f in zoo_result.skipped}
    assert zoo_result.images + len(failed) + len(skipped) == len(expected)
    for rel, outcome in expected.items():
        if outcome == "failure":
            assert rel in failed, rel
        else:
            assert rel not in failed and rel not in skipped, (rel, failed.get(rel))
    assert featured <= set(expected)


def test_failures_have_a_stage_and_a_one_line_reason(zoo, zoo_result) -> None:
    root, _ = zoo
    reasons = {_rel(root, f.path): f for f in zoo_result.failures}
    for failure in reasons.values():
        assert failure.stage in {"read", "identify", "decode"}
        assert failure.error and "\n" not in failure.error
    assert "empty file" in reasons["broken/empty.jpg"].error
    assert "text" in reasons["broken/text.jpg"].error
    assert "decompression bomb" in reasons["broken/bomb.png"].error
    assert "truncated" in reasons["broken/truncated.jpg"].error.lower()


def test_exif_rotated_copy_matches_its_upright_twin(zoo, zoo_result) -> None:
    root, _ = zoo
    pairs = {(_rel(root, p.a), _rel(root, p.b)): p for p in zoo_result.pairs}
    pair = pairs.get(("orientation/exif_6.jpg", "orientation/exif_6_upright.png"))
    assert pair is not None
    assert pair.relation == "pixel"


def test_unreadable_file_is_a_read_failure(tmp_path: Path, dataset, monkeypatch) -> None:
    root = tmp_path / "root"
    root.mkdir()
    target = root / "locked.jpg"
    target.write_bytes((dataset.root / dataset.images[0]).read_bytes())
    target.chmod(0)
    if os.access(target, os.R_OK):  # running as root: simulate the permission error
        import builtins

        real_open = builtins.open

        def deny(path, *args, **kwargs):
            if str(path) == str(target):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", deny)
    result = lookalike.scan([root], db=tmp_path / "s.db", engine="serial")
    assert [(f.stage, f.error) for f in result.failures] == [
        ("read", "cannot read file: Permission denied")
    ]


def test_symlink_loops_end_and_links_are_skipped_by_default(tmp_path: Path, dataset) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.jpg").write_bytes((dataset.root / dataset.images[0]).read_bytes())
    write_symlink_loop(root)
    os.symlink(root / "sub" / "a.jpg", root / "link.jpg")
    result = lookalike.scan([root], db=tmp_path / "a.db", engine="serial")
    assert result.images == 1
    assert any("symbolic link" in s.error for s in result.skipped)
    followed = lookalike.scan(
        [root],
        db=tmp_path / "b.db",
        engine="serial",
        settings=lookalike.ScanSettings(
            discovery=lookalike.ScanSettings().discovery.__class__(follow_symlinks=True)
        ),
    )
    assert followed.images == 1  # the same file through a link is listed once
    assert any("already" in s.error for s in followed.skipped)


def test_hidden_files_are_skipped_and_reported(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    write_hidden_file(root)
    result = lookalike.scan([root], db=tmp_path / "s.db", engine="serial")
    assert result.images == 0
    assert [s.error.split(" ")[0] for s in result.skipped] == ["hidden"]


def test_non_image_files_with_other_extensions_are_skipped_not_failed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "notes.txt").write_text("hello")
    (root / "labels.json").write_text("{}")
    result = lookalike.scan([root], db=tmp_path / "s.db", engine="serial")
    assert result.failures == ()
    assert len(result.skipped) == 2
