"""Two scans on one store: the second stops (or waits with ``--wait``), never corrupts the first."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import lookalike
from lookalike.errors import StoreBusyError
from lookalike.review import set_mark
from lookalike.store import Store, scan_lock

# A scan that stops once its files are stored, until the test creates the file ``go``.
_PAUSED_SCAN = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import lookalike

    root, db, started, go = sys.argv[1:5]
    def progress(stage, done, total):
        if stage == "match" and not Path(started).exists():
            Path(started).write_text("")
            deadline = time.monotonic() + 120
            while not Path(go).exists() and time.monotonic() < deadline:
                time.sleep(0.02)
    result = lookalike.scan([root], db=db, engine="serial", progress=progress)
    print(json.dumps([result.images, len(result.groups)]))
    """
)
_CLI = "import sys; from lookalike.cli import main; sys.exit(main())"


class _PausedScan:
    """A scan in a subprocess that holds the store until :meth:`resume`."""

    def __init__(self, root: Path, db: Path, tmp: Path) -> None:
        self.started, self.go = tmp / "started", tmp / "go"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _PAUSED_SCAN, *map(str, (root, db, self.started, self.go))],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120
        while not self.started.exists():
            assert self.proc.poll() is None, self.proc.communicate()
            assert time.monotonic() < deadline, "the first scan never started"
            time.sleep(0.02)

    def resume(self) -> tuple[int, int]:
        self.go.write_text("")
        out, err = self.proc.communicate(timeout=120)
        assert self.proc.returncode == 0, err
        images, groups = (int(x) for x in out.strip().splitlines()[-1].strip("[]").split(","))
        return images, groups

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.communicate(timeout=60)


def _cli_scan(root: Path, db: Path, *extra: str) -> list[str]:
    return [sys.executable, "-c", _CLI, "scan", str(root), "--db", str(db), "-q", *extra]


def _file_rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM files").fetchone()[0])


@pytest.fixture(scope="module")
def clean(dataset, tmp_path_factory) -> tuple[int, int]:
    result = lookalike.scan(
        [dataset.root], db=tmp_path_factory.mktemp("clean") / "s.db", engine="serial"
    )
    assert result.groups
    return result.images, len(result.groups)


def test_a_second_scan_on_a_store_in_use_stops_with_one_line_and_harms_nothing(
    dataset, clean, tmp_path
) -> None:
    db = tmp_path / "s.db"
    first = _PausedScan(dataset.root, db, tmp_path)
    second = subprocess.run(
        _cli_scan(dataset.root, db), capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 1, second.stderr
    (line,) = second.stderr.strip().splitlines()
    assert line.startswith("Error: Another lookalike scan")
    assert f"(pid {first.proc.pid})" in line and str(db) in line and "--wait" in line
    assert first.resume() == clean
    assert _file_rows(db) == clean[0]


def test_with_wait_the_second_scan_runs_after_the_first_and_marks_stay_writable(
    dataset, clean, tmp_path
) -> None:
    db = tmp_path / "s.db"
    first = _PausedScan(dataset.root, db, tmp_path)
    second = subprocess.Popen(
        _cli_scan(dataset.root, db, "--wait"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert second.stderr is not None
    waiting = second.stderr.readline()  # the one line it prints before it waits
    assert f"Waiting for another lookalike scan (pid {first.proc.pid})" in waiting
    time.sleep(0.5)
    assert second.poll() is None
    with Store(db) as store:  # the review UI and export still write marks meanwhile
        path = str(dataset.root / dataset.images[0])
        set_mark(store, path, "keep")
        set_mark(store, path, None)
    assert first.resume() == clean
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert f": {clean[0]} images" in out and f"Duplicate groups: {clean[1]} " in out
    assert _file_rows(db) == clean[0]


def test_a_killed_scan_leaves_no_lock_behind(dataset, clean, tmp_path) -> None:
    db = tmp_path / "s.db"
    _PausedScan(dataset.root, db, tmp_path).kill()
    assert (tmp_path / "s.db.lock").exists()  # the file stays; the kernel dropped the lock
    again = subprocess.run(
        _cli_scan(dataset.root, db), capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stderr
    assert _file_rows(db) == clean[0]


def test_the_scan_lock_is_exclusive_and_names_its_holder(tmp_path) -> None:
    db = tmp_path / "sub" / "s.db"
    with scan_lock(db):
        with pytest.raises(StoreBusyError, match=rf"\(pid {os.getpid()}\)"):
            with scan_lock(db):
                pass
        with pytest.raises(StoreBusyError):
            lookalike.scan([tmp_path], db=db, engine="serial")
    with scan_lock(db):  # released on exit
        pass
