"""Cold-scan speed and peak memory of each engine, on the same files, in one run.

Every configuration scans ROOT into a fresh store in its own child process (so no run
inherits another's memory or warm caches), while this process samples the memory of the
child's whole process tree (client, pool workers, Dask scheduler, nannies and workers):
peak of the summed RSS, and of the summed PSS (shared pages counted once) when readable.
Files are read once beforehand so every run reads from the page cache. Rounds repeat the
list of configurations in order, so machine noise hits them alike; the best round is shown.

    python benchmarks/bench_engines.py /tmp/lookalike-100k/images \\
        [--configs threads:1,threads:2,processes:1,processes:2,dask:2] [--rounds 1] [--folders N]

``--folders N`` scans only the first N sub-folders (the ``--include`` option of a scan).
The Dask overhead is dask:W against processes:W (same worker processes, same shards of
work), on extraction throughput and on whole-scan time (cluster start-up included).
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


def run_child(root: str, engine: str, workers: int, db: str, folders: list[str]) -> None:
    """Scan in this (child) process and print one JSON line of timings."""
    import lookalike
    from lookalike.discovery import DiscoveryOptions
    from lookalike.pipeline import ScanSettings

    include = tuple(f"{name}/**" for name in folders)
    settings = ScanSettings(discovery=DiscoveryOptions(include=include))
    started = time.perf_counter()
    result = lookalike.scan([root], db=db, engine=engine, workers=workers, settings=settings)
    wall = time.perf_counter() - started
    out = {
        "wall_s": wall,
        "extract_s": result.stats["extract_seconds"],
        "match_s": result.stats["match_seconds"],
        "images": result.images,
        "failures": len(result.failures),
        "groups": len(result.groups),
    }
    print(json.dumps(out), flush=True)


class TreeMemory:
    """Samples the summed RSS (every 0.2 s) and PSS (every 1 s) of a process tree."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.root = psutil.Process(pid)
        self.peak_rss = 0
        self.peak_pss = 0
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


def measure(root: str, engine: str, workers: int, folders: list[str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable, __file__, "--child", engine, str(workers), root,
            str(Path(tmp) / "bench.db"), *folders,
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
        store_bytes=store_bytes,
        load_before=load_before,
    )
    return out


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
        engine, workers, root, db, *folders = sys.argv[2:]
        run_child(root, engine, int(workers), db, folders)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--configs", default=DEFAULT_CONFIGS)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--folders", type=int, default=0, help="scan only the first N folders")
    args = parser.parse_args()
    subdirs = sorted(p.name for p in args.root.iterdir() if p.is_dir())
    folders = subdirs[: args.folders] if args.folders else []
    files = warm(args.root, folders)
    configs = [(c.split(":")[0], int(c.split(":")[1])) for c in args.configs.split(",")]
    best: dict[tuple[str, int], dict[str, float]] = {}
    for _ in range(args.rounds):
        for engine, workers in configs:
            out = measure(str(args.root), engine, workers, folders)
            print(f"  {engine}:{workers}: {json.dumps(out)}", file=sys.stderr, flush=True)
            key = (engine, workers)
            if key not in best or out["wall_s"] < best[key]["wall_s"]:
                best[key] = out
    print(f"files: {files}  cpus: {os.cpu_count()}  rounds: {args.rounds}")
    header = (
        f"{'engine':<12}{'scan s':>8}{'img/s':>8}{'extract s':>11}{'extract img/s':>15}"
        f"{'match s':>9}{'peak RSS MiB':>14}{'peak PSS MiB':>14}{'load':>6}"
    )
    print(header)
    for (engine, workers), out in best.items():
        n = out["images"]
        print(
            f"{engine + ':' + str(workers):<12}{out['wall_s']:>8.1f}{n / out['wall_s']:>8.0f}"
            f"{out['extract_s']:>11.1f}{n / out['extract_s']:>15.0f}{out['match_s']:>9.1f}"
            f"{out['peak_rss'] / 2**20:>14.0f}{out['peak_pss'] / 2**20:>14.0f}"
            f"{out['load_before']:>6.1f}"
        )
    any_out = next(iter(best.values()))
    print(
        f"store: {any_out['store_bytes'] / 2**20:.0f} MiB, "
        f"{any_out['store_bytes'] / any_out['images']:.0f} bytes/image"
    )
    for (engine, workers), out in best.items():
        local = best.get(("processes", workers))
        if engine == "dask" and local is not None:
            per_image = (out["extract_s"] / out["images"]) / (local["extract_s"] / local["images"])
            print(
                f"dask:{workers} overhead vs processes:{workers}: extraction time per image "
                f"{(per_image - 1) * 100:+.1f}%, whole scan time "
                f"{(out['wall_s'] / local['wall_s'] - 1) * 100:+.1f}%"
            )


if __name__ == "__main__":
    main()
