"""Cold-scan speed and peak memory of each engine, on the same files, in one run.

Every configuration cold-scans ROOT into a fresh store in its own child process (so no run
inherits another's memory or warm caches), while this process samples the memory of the
child's whole process tree (client, pool workers, Dask scheduler, nannies and workers):
peak of the summed RSS, and of the summed PSS (shared pages counted once) when readable.
The CPU seconds of the whole tree are summed too: on a shared machine they show an
engine's overhead better than wall time does. Files are read once beforehand so every run
reads from the page cache. Rounds repeat the
list of configurations in order, so machine noise hits them alike; the best round is shown.

    python benchmarks/bench_engines.py /tmp/lookalike-100k/images \\
        [--configs threads:1,threads:2,processes:1,processes:2,dask:2] [--rounds 1] [--folders N]

``--folders N`` scans only the first N sub-folders (the ``--include`` option of a scan).
``--costs N`` first times the per-image steps on N files spread over ROOT, in this process
on one core: read, SHA-256 digest, decode (draft mode, grayscale), features (thumbnail,
descriptor, pHash) and the JPEG stream digest; then what the client does per file
whatever the engine: discovery, unpickling a worker's result, and the store write.
The Dask overhead is dask:W against processes:W (same worker processes, same shards of
work), on the time from the start of the scan to the last committed extraction batch
(discovery, extraction, store writes, and Dask cluster start-up). ``--match`` lets every
scan run to the end and reports the client-side, engine-independent rest (loading the
features, candidate search, verification, grouping) as ``match s``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

DEFAULT_CONFIGS = "threads:1,threads:2,processes:1,processes:2,dask:2"


def run_child(
    root: str, engine: str, workers: int, db: str, match: bool, folders: list[str]
) -> None:
    """Scan in this (child) process and print one JSON line of timings.

    Without ``match`` the scan is cancelled (through its progress callback) once the last
    extraction batch is committed: engines differ only in discovery + extraction.
    """
    import sqlite3

    import lookalike
    from lookalike.discovery import DiscoveryOptions
    from lookalike.pipeline import ScanSettings

    include = tuple(f"{name}/**" for name in folders)
    settings = ScanSettings(discovery=DiscoveryOptions(include=include))
    marks: dict[str, float] = {}

    def progress(stage: str, done: int, total: int | None) -> bool:
        if stage == "extract" and done == total:
            marks["extracted"] = time.perf_counter()
            return match  # cancelling here leaves every outcome committed
        marks.setdefault(stage, time.perf_counter())
        return True

    started = time.perf_counter()
    try:
        lookalike.scan(
            [root], db=db, engine=engine, workers=workers, settings=settings, progress=progress
        )
    except KeyboardInterrupt:
        pass
    ended = time.perf_counter()
    with sqlite3.connect(db) as conn:
        (images,) = conn.execute("SELECT count(*) FROM files WHERE status = 'ok'").fetchone()
        (failures,) = conn.execute("SELECT count(*) FROM files WHERE status = 'failed'").fetchone()
    conn.close()
    out = {
        "extract_s": marks["extracted"] - started,  # discovery + extraction + store writes
        "match_s": ended - marks["extracted"] if match else 0.0,
        "images": images,
        "failures": failures,
    }
    print(json.dumps(out), flush=True)


class TreeMemory:
    """Samples the summed RSS (every 0.2 s) and PSS (every 1 s) of a process tree.

    Also keeps the CPU time (user + system) last seen for every process of the tree, so
    the run's total CPU seconds are known (to within the last 0.2 s of each process).
    """

    def __init__(self, pid: int) -> None:
        import psutil

        self.root = psutil.Process(pid)
        self.peak_rss = 0
        self.peak_pss = 0
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        tick = 0
        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                return
            rss = pss = 0
            for proc in procs:
                try:
                    rss += proc.memory_info().rss
                    times = proc.cpu_times()
                    self.cpu[proc.pid] = times.user + times.system
                    if tick % 5 == 0:
                        pss += proc.memory_full_info().pss
                except psutil.Error:
                    continue
            self.peak_rss = max(self.peak_rss, rss)
            if tick % 5 == 0:
                self.peak_pss = max(self.peak_pss, pss)
            tick += 1
            self._stop.wait(0.2)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def measure(
    root: str, engine: str, workers: int, match: bool, folders: list[str]
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable, __file__, "--child", engine, str(workers), root,
            str(Path(tmp) / "bench.db"), str(int(match)), *folders,
        ]  # fmt: skip
        load_before = os.getloadavg()[0]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        memory = TreeMemory(proc.pid)
        stdout, _ = proc.communicate()
        memory.stop()
        if proc.returncode != 0:
            raise SystemExit(f"{engine}:{workers} failed with exit code {proc.returncode}")
        out = json.loads(stdout.strip().splitlines()[-1])
        store_bytes = sum(p.stat().st_size for p in Path(tmp).glob("bench.db*"))
    out.update(
        peak_rss=memory.peak_rss,
        peak_pss=memory.peak_pss,
        cpu_s=sum(memory.cpu.values()),
        store_bytes=store_bytes,
        load_before=load_before,
    )
    return out


def per_image_costs(root: Path, n: int) -> dict[str, float]:
    """Mean milliseconds per image of each extraction step, on one core."""
    from lookalike.decoding import content_digest, decode_image, jpeg_stream_digest
    from lookalike.features import compute_features

    paths = sorted(str(p) for p in root.rglob("*") if p.is_file())
    sample = paths[:: max(1, len(paths) // n)][:n]
    totals = dict.fromkeys(("read", "digest", "decode", "features", "stream_digest"), 0.0)
    for path in sample:
        t0 = time.perf_counter()
        data = Path(path).read_bytes()
        t1 = time.perf_counter()
        content_digest(data)
        t2 = time.perf_counter()
        decoded = decode_image(data)
        t3 = time.perf_counter()
        compute_features(decoded.gray)
        t4 = time.perf_counter()
        jpeg_stream_digest(data, decoded.orientation)
        t5 = time.perf_counter()
        for key, dt in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            totals[key] += dt
    costs = {key: value / len(sample) * 1000 for key, value in totals.items()}
    costs["bytes"] = sum(os.path.getsize(p) for p in sample) / len(sample)
    return costs


def client_costs(root: Path, n: int) -> dict[str, float]:
    """Per-file costs on the client, which does them alone whatever the engine.

    Discovery (walk + stat) of all of ROOT; pickling an outcome (what a worker ships
    back) and loading it; writing outcomes to a fresh store in batches of 32 (as a scan
    commits), with distinct digests so every row inserts an image.
    """
    import dataclasses
    import pickle

    from lookalike.discovery import FileEntry, discover_files
    from lookalike.extraction import ExtractTask, extract_file
    from lookalike.store import Store

    started = time.perf_counter()
    entries = [e for e in discover_files([str(root)]) if isinstance(e, FileEntry)]
    costs = {"discover": (time.perf_counter() - started) / len(entries) * 1000}
    sample = entries[:: max(1, len(entries) // n)][:n]
    outcomes = [extract_file(ExtractTask(e.path, e.root, e.size, e.mtime_ns)) for e in sample]
    started = time.perf_counter()
    blobs = [pickle.dumps(o, protocol=pickle.HIGHEST_PROTOCOL) for o in outcomes]
    for blob in blobs:
        pickle.loads(blob)
    costs["pickle+unpickle"] = (time.perf_counter() - started) / len(blobs) * 1000
    costs["pickled_bytes"] = sum(map(len, blobs)) / len(blobs)
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "w.db") as store:
        started = time.perf_counter()
        written = 0
        for rnd in range(max(1, 10_000 // len(outcomes))):
            for start in range(0, len(outcomes), 32):
                batch = outcomes[start : start + 32]
                images = [dataclasses.replace(o.image, digest=f"{rnd}-{o.digest}") for o in batch]
                rows = [
                    (f"{o.task.path}#{rnd}", o.task.root, o.task.size, o.task.mtime_ns,
                     img.digest, "ok", None, None, 1)
                    for o, img in zip(batch, images, strict=True)
                ]  # fmt: skip
                store.save_files(rows, images)
                written += len(batch)
        costs["store_write"] = (time.perf_counter() - started) / written * 1000
        store.close()
        costs["store_bytes"] = sum(p.stat().st_size for p in Path(tmp).glob("w.db*")) / written
    return costs


def warm(root: Path, folders: list[str]) -> int:
    n = 0
    bases = [root / f for f in folders] if folders else [root]
    for base in bases:
        for dirpath, _, files in os.walk(base):
            for name in files:
                Path(dirpath, name).read_bytes()
                n += 1
    return n


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        engine, workers, root, db, match, *folders = sys.argv[2:]
        run_child(root, engine, int(workers), db, match == "1", folders)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--configs", default=DEFAULT_CONFIGS)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--folders", type=int, default=0, help="scan only the first N folders")
    parser.add_argument("--costs", type=int, default=0, help="time per-image steps on N files")
    parser.add_argument("--match", action="store_true", help="also time the match step")
    args = parser.parse_args()
    if args.costs:
        costs = per_image_costs(args.root, args.costs)
        steps = "  ".join(f"{k} {v:.2f}" for k, v in costs.items() if k != "bytes")
        print(f"per-image ms on one core ({args.costs} files, {costs['bytes']:.0f} B avg): {steps}")
        print(f"  sum {sum(v for k, v in costs.items() if k != 'bytes'):.2f} ms", flush=True)
        client = client_costs(args.root, args.costs)
        print(
            f"client ms per file: discover {client['discover']:.3f}  pickle+unpickle "
            f"{client['pickle+unpickle']:.3f} ({client['pickled_bytes']:.0f} B)  store write "
            f"{client['store_write']:.3f} ({client['store_bytes']:.0f} B/row)",
            flush=True,
        )
    subdirs = sorted(p.name for p in args.root.iterdir() if p.is_dir())
    folders = subdirs[: args.folders] if args.folders else []
    files = warm(args.root, folders)
    configs = [(c.split(":")[0], int(c.split(":")[1])) for c in args.configs.split(",")]
    best: dict[tuple[str, int], dict[str, float]] = {}
    for _ in range(args.rounds):
        for engine, workers in configs:
            out = measure(str(args.root), engine, workers, args.match, folders)
            print(f"  {engine}:{workers}: {json.dumps(out)}", file=sys.stderr, flush=True)
            key = (engine, workers)
            if key not in best or out["extract_s"] < best[key]["extract_s"]:
                best[key] = out
    print(f"files: {files}  cpus: {os.cpu_count()}  rounds: {args.rounds}")
    header = (
        f"{'engine':<13}{'extract s':>10}{'img/s':>8}{'CPU s':>8}{'match s':>9}"
        f"{'peak RSS MiB':>14}{'peak PSS MiB':>14}{'load':>6}"
    )
    print(header)
    for (engine, workers), out in best.items():
        print(
            f"{engine + ':' + str(workers):<13}{out['extract_s']:>10.1f}"
            f"{out['images'] / out['extract_s']:>8.0f}{out['cpu_s']:>8.1f}{out['match_s']:>9.1f}"
            f"{out['peak_rss'] / 2**20:>14.0f}{out['peak_pss'] / 2**20:>14.0f}"
            f"{out['load_before']:>6.1f}"
        )
    any_out = next(iter(best.values()))
    print(
        f"images: {any_out['images']}  failures: {any_out['failures']}  store: "
        f"{any_out['store_bytes'] / 2**20:.0f} MiB = "
        f"{any_out['store_bytes'] / any_out['images']:.0f} bytes/image"
    )
    for (engine, workers), out in best.items():
        local = best.get(("processes", workers))
        if engine == "dask" and local is not None:
            print(
                f"dask:{workers} vs processes:{workers}: time to extract everything "
                f"{(out['extract_s'] / local['extract_s'] - 1) * 100:+.1f}% "
                "(Dask cluster start-up included), CPU seconds "
                f"{(out['cpu_s'] / local['cpu_s'] - 1) * 100:+.1f}%"
            )


if __name__ == "__main__":
    main()
