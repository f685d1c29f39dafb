"""Time candidate search and grouping on synthetic data with planted near-duplicates.

Generates ``--n`` items deterministically: a 64-bit hash and a 64-d L2-normalised
descriptor each. 5% of the items are noisy copies of other items (several copies of
one source form a duplicate cluster). Then times, one step at a time:

1. ``hamming_pairs`` at radius 8 on the hashes,
2. ``knn_pairs`` with k=10 and min_similarity 0.9 on the descriptors,
3. ``connected_components`` over the union of both pair sets,

and prints wall time, pairs found, recall of the planted pairs and peak RSS.

Usage::

    python benchmarks/bench_scale.py --n 1000000 --seed 0 --workers 2
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from lookalike.grouping import connected_components
from lookalike.index import CandidatePairs, hamming_pairs, knn_pairs

T = TypeVar("T")

COPY_FRACTION = 0.05
RADIUS = 8
BIT_FLIP_PROBABILITY = 0.04  # a copy's hash differs in about 2.6 of 64 bits
K = 10
MIN_SIMILARITY = 0.9
DIM = 64
CLUSTERS = 1000
COPY_NOISE = (0.01, 0.04)  # per-dimension noise of a copy: cosine about 0.997 to 0.95
CHUNK = 100_000
CPU_SECONDS: dict[str, float] = {}


def plant_copies(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Choose which items are copies and of which original each is a copy."""
    order = rng.permutation(n)
    copies = order[: int(n * COPY_FRACTION)]
    sources = rng.choice(order[copies.size :], size=copies.size)
    return sources, copies


def make_hashes(
    n: int, sources: np.ndarray, copies: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Uniform random 64-bit hashes; each copy is its source with a few bits flipped."""
    hashes = rng.integers(0, 256, size=(n, 8), dtype=np.uint8)
    flips = np.packbits(rng.random((copies.size, 64)) < BIT_FLIP_PROBABILITY, axis=1)
    hashes[copies] = hashes[sources] ^ flips
    return hashes


def make_descriptors(
    n: int, sources: np.ndarray, copies: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Clustered unit descriptors; each copy is its source plus a little Gaussian noise."""
    centres = rng.standard_normal((CLUSTERS, DIM), dtype=np.float32)
    x = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, CHUNK):
        rows = slice(start, min(start + CHUNK, n))
        block = rng.standard_normal((rows.stop - start, DIM), dtype=np.float32)
        block += centres[rng.integers(0, CLUSTERS, size=len(block))]
        x[rows] = block
    noise = rng.uniform(*COPY_NOISE, size=(copies.size, 1)).astype(np.float32)
    x[copies] = x[sources] / np.linalg.norm(x[sources], axis=1, keepdims=True)
    x[copies] += noise * rng.standard_normal((copies.size, DIM), dtype=np.float32)
    for start in range(0, n, CHUNK):
        block = x[start : start + CHUNK]
        block /= np.linalg.norm(block, axis=1, keepdims=True)
    return x


def planted_recall(
    pairs: CandidatePairs, n: int, sources: np.ndarray, copies: np.ndarray
) -> tuple[float, int]:
    """Fraction of planted (source, copy) pairs present in ``pairs``."""
    planted = np.unique(np.minimum(sources, copies) * n + np.maximum(sources, copies))
    found = np.isin(planted, pairs.i * n + pairs.j)
    return float(found.mean()), planted.size


def timed(step: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, float]:
    """Run ``step``; return its result and its wall time in seconds, and log its CPU time."""
    start, cpu = time.perf_counter(), time.process_time()
    result = step(*args, **kwargs)
    CPU_SECONDS[step.__name__] = time.process_time() - cpu
    return result, time.perf_counter() - start


def peak_rss_gib() -> float:
    """Peak resident set size of this process (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    """Parse options, generate the data, run the three steps and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="number of items")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data generator")
    parser.add_argument("--workers", type=int, default=None, help="threads (default: all)")
    args = parser.parse_args()
    n = args.n

    rng = np.random.default_rng(args.seed)
    (sources, copies), gen_s = timed(plant_copies, n, rng)
    hashes, hash_s = timed(make_hashes, n, sources, copies, rng)
    vectors, vec_s = timed(make_descriptors, n, sources, copies, rng)
    print(f"items: {n}, planted copies: {copies.size}, seed: {args.seed}, workers: {args.workers}")
    print(f"data generation: {gen_s + hash_s + vec_s:.1f} s")

    ham, ham_s = timed(hamming_pairs, hashes, radius=RADIUS, workers=args.workers)
    recall, planted = planted_recall(ham, n, sources, copies)
    true_dist = np.unpackbits(hashes[sources] ^ hashes[copies], axis=1).sum(axis=1)
    print(f"hamming_pairs radius={RADIUS}: {ham_s:.1f} s, {len(ham)} pairs")
    print(f"hamming_pairs planted recall: {recall:.4f} of {planted} planted pairs")
    print(f"hamming_pairs planted pairs within radius: {np.mean(true_dist <= RADIUS):.4f}")

    knn, knn_s = timed(knn_pairs, vectors, k=K, min_similarity=MIN_SIMILARITY, workers=args.workers)
    recall, planted = planted_recall(knn, n, sources, copies)
    print(f"knn_pairs k={K} min_similarity={MIN_SIMILARITY}: {knn_s:.1f} s, {len(knn)} pairs")
    print(f"knn_pairs planted recall: {recall:.4f} of {planted} planted pairs")

    i = np.concatenate([ham.i, knn.i])
    j = np.concatenate([ham.j, knn.j])
    labels, group_s = timed(connected_components, n, i, j)
    sizes = np.bincount(labels)
    print(f"connected_components: {group_s:.1f} s, {np.count_nonzero(sizes > 1)} groups of 2+")

    print(f"search + grouping: {ham_s + knn_s + group_s:.1f} s")
    steps = ("hamming_pairs", "knn_pairs", "connected_components")
    print("cpu time: " + ", ".join(f"{name} {CPU_SECONDS[name]:.1f} s" for name in steps))
    print(f"peak RSS: {peak_rss_gib():.2f} GiB")


if __name__ == "__main__":
    main()
