"""Candidate search and grouping at 1M-10M items: time and peak memory per step.

For each size N (default 1M, 2M, 5M, 10M), a child process generates N synthetic items in
chunks of 1M: a 63-d L2-normalised descriptor (the size of lookalike's) drawn around 1,000
cluster centres, and a random 64-bit hash; 5% of the items are planted near-duplicates
(descriptor: source + Gaussian noise, cosine 0.95-0.99; hash: source with ~2.6 bits
flipped). Then it times, one at a time:

1. ``lookalike.index.knn_pairs`` with the scan's settings (``MatchSettings``: k=10,
   min_similarity=0.6),
2. ``lookalike.index.hamming_pairs`` at radius 8 (``--radius``; 0 leaves this step out:
   a scan searches descriptors only, the hashes are kept as evidence),
3. ``lookalike.grouping.connected_components`` over the union of both pair sets,

and prints wall time, pairs, recall of the planted pairs and the peak RSS of each step
(the kernel's high-water mark, reset before each step through ``/proc/self/clear_refs``).
A size that exceeds ``--timeout-s`` or runs out of memory is reported as such, with the
steps it finished before.

    python benchmarks/bench_descriptors_10m.py [--sizes 1000000,2000000,5000000,10000000]
        [--workers 2] [--radius 8] [--timeout-s 3600]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

DIM = 63
CLUSTERS = 1000
COPY_FRACTION = 0.05
COPY_NOISE = (0.01, 0.04)  # per-dimension noise of a copy: cosine about 0.99 to 0.95
BIT_FLIP_PROBABILITY = 0.04
RADIUS = 8
CHUNK = 1_000_000


def generate(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Descriptors, packed hashes, and the planted (source, copy) index pairs."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((CLUSTERS, DIM), dtype=np.float32)
    x = np.empty((n, DIM), dtype=np.float32)
    hashes = np.empty((n, 8), dtype=np.uint8)
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        block = rng.standard_normal((stop - start, DIM), dtype=np.float32)
        block += centres[rng.integers(0, CLUSTERS, size=stop - start)]
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        x[start:stop] = block
        hashes[start:stop] = rng.integers(0, 256, size=(stop - start, 8), dtype=np.uint8)
    order = rng.permutation(n)
    copies = np.sort(order[: int(n * COPY_FRACTION)])
    sources = rng.choice(order[copies.size :], size=copies.size)
    for start in range(0, copies.size, CHUNK):
        c, s = copies[start : start + CHUNK], sources[start : start + CHUNK]
        noise = rng.uniform(*COPY_NOISE, size=(c.size, 1)).astype(np.float32)
        block = x[s] + noise * rng.standard_normal((c.size, DIM), dtype=np.float32)
        x[c] = block / np.linalg.norm(block, axis=1, keepdims=True)
        flips = np.packbits(rng.random((c.size, 64)) < BIT_FLIP_PROBABILITY, axis=1)
        hashes[c] = hashes[s] ^ flips
    return x, hashes, sources, copies


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # resets VmHWM (peak RSS) to the current RSS


def peak_rss() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def step(name: str, out: dict[str, Any], fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    reset_peak()
    started = time.perf_counter()
    result = fn(*args, **kw)
    out[name] = {"s": round(time.perf_counter() - started, 2), "peak_rss": peak_rss()}
    return result


def report(name: str, out: dict[str, Any]) -> None:
    """One JSON line per finished step, so a parent that times out still has them."""
    print(json.dumps({"step": name, **out[name]}), flush=True)
    print(f"    {name}: {json.dumps(out[name])}", file=sys.stderr, flush=True)


def recall(pairs: Any, n: int, sources: np.ndarray, copies: np.ndarray) -> float:
    planted = np.unique(np.minimum(sources, copies) * n + np.maximum(sources, copies))
    return float(np.isin(planted, pairs.i * n + pairs.j).mean())


def run_child(n: int, workers: int | None, seed: int, radius: int) -> None:
    from lookalike.grouping import connected_components
    from lookalike.index import hamming_pairs, knn_pairs
    from lookalike.matching import MatchSettings

    settings = MatchSettings()
    out: dict[str, Any] = {"n": n}
    x, hashes, sources, copies = step("generate", out, generate, n, seed)
    report("generate", out)
    knn = step(
        "knn_pairs", out, knn_pairs, x,
        k=settings.neighbours, min_similarity=settings.min_descriptor_similarity, workers=workers,
    )  # fmt: skip
    out["knn_pairs"].update(pairs=len(knn), recall=recall(knn, n, sources, copies))
    report("knn_pairs", out)
    del x
    i, j = knn.i, knn.j
    if radius > 0:
        ham = step("hamming_pairs", out, hamming_pairs, hashes, radius=radius, workers=workers)
        out["hamming_pairs"].update(pairs=len(ham), recall=recall(ham, n, sources, copies))
        report("hamming_pairs", out)
        i, j = np.concatenate([knn.i, ham.i]), np.concatenate([knn.j, ham.j])
        del ham
    del knn
    labels = step("connected_components", out, connected_components, n, i, j)
    out["connected_components"]["groups"] = int(np.count_nonzero(np.bincount(labels) > 1))
    report("connected_components", out)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        workers = int(sys.argv[3]) if sys.argv[3] != "0" else None
        run_child(int(sys.argv[2]), workers, int(sys.argv[4]), int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,2000000,5000000,10000000")
    parser.add_argument("--workers", type=int, default=0, help="threads (0: FAISS default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--radius", type=int, default=RADIUS, help="Hamming radius")
    parser.add_argument("--timeout-s", type=float, default=3600)
    args = parser.parse_args()
    steps: tuple[str, ...] = ("generate", "knn_pairs", "hamming_pairs", "connected_components")
    if args.radius <= 0:
        steps = tuple(s for s in steps if s != "hamming_pairs")
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        print(f"n={n:,}", file=sys.stderr, flush=True)
        cmd = [sys.executable, __file__, "--child", str(n), str(args.workers), str(args.seed)]
        cmd.append(str(args.radius))
        load = os.getloadavg()[0]
        with tempfile.TemporaryFile("w+") as log:
            proc = subprocess.Popen(cmd, stdout=log, text=True)
            try:
                problem = None if proc.wait(timeout=args.timeout_s) == 0 else "failed"
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                problem = f"did not finish within {args.timeout_s:.0f} s"
            log.seek(0)
            done = {d.pop("step"): d for d in map(json.loads, log.read().splitlines())}
        if problem == "failed":
            problem = f"failed with exit code {proc.returncode} (killed: out of memory?)"
        rows.append((n, done, problem, load))
    print(f"radius {args.radius or '(no Hamming step)'}, workers {args.workers or 'FAISS default'}")
    print(
        f"{'n':>11} {'step':<21}{'seconds':>9}{'peak RSS GiB':>14}{'pairs|groups':>13}{'recall':>8}"
    )
    for n, out, problem, load in rows:
        for name in steps:
            if name not in out:
                print(f"{n:>11,} {name:<21} {problem}")
                break
            s = out[name]
            pairs = s.get("pairs", s.get("groups", ""))
            rec = f"{s['recall']:.4f}" if "recall" in s else ""
            print(
                f"{n:>11,} {name:<21}{s['s']:>9.1f}{s['peak_rss'] / 2**30:>14.2f}"
                f"{pairs:>13}{rec:>8}"
            )
        if problem is None:
            total = sum(out[name]["s"] for name in steps[1:])
            print(f"{n:>11,} {'search + grouping':<21}{total:>9.1f}   (load average {load:.1f})")


if __name__ == "__main__":
    main()
