"""Candidate search: the FAISS and multi-index paths against the brute-force references."""

from __future__ import annotations

import faiss
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lookalike import index
from lookalike.errors import ConfigError
from lookalike.index import (
    CandidatePairs,
    brute_hamming_pairs,
    brute_knn_pairs,
    hamming_pairs,
    knn_pairs,
)

EPS = 1e-4  # float32 search against the float64 reference
FAST = settings(max_examples=60, deadline=None)


# ----------------------------------------------------------------------------- helpers


@st.composite
def unit_rows(draw: st.DrawFn, max_n: int = 24) -> np.ndarray:
    """Normalised rows from a tiny integer grid: many duplicates, ties and zero rows."""
    n = draw(st.integers(0, max_n))
    d = draw(st.integers(1, 5))
    grid = draw(arrays(np.int8, (n, d), elements=st.integers(-2, 2))).astype(np.float32)
    norms = np.linalg.norm(grid, axis=1, keepdims=True)
    return np.divide(grid, norms, out=np.zeros_like(grid), where=norms > 0)


@st.composite
def packed_codes(draw: st.DrawFn, max_n: int = 40) -> np.ndarray:
    """Packed codes over a small byte alphabet, so duplicates and near pairs are common."""
    n = draw(st.integers(0, max_n))
    nbytes = draw(st.integers(1, 9))
    alphabet = st.sampled_from([0, 1, 3, 7, 128, 255])
    return draw(arrays(np.uint8, (n, nbytes), elements=alphabet))


def assert_canonical(pairs: CandidatePairs, n: int) -> None:
    """Pairs have the documented dtypes, ``i < j < n``, sorted, and no repeats."""
    assert pairs.i.dtype == np.int64 and pairs.j.dtype == np.int64
    assert pairs.score.dtype == np.float32
    assert len(pairs) == pairs.j.size == pairs.score.size
    assert np.all(pairs.i < pairs.j) and np.all(pairs.j < n) and np.all(pairs.i >= 0)
    key = pairs.i * n + pairs.j
    assert np.all(np.diff(key) > 0)


def similarities(x: np.ndarray) -> np.ndarray:
    """Float64 similarity matrix with zero rows and the diagonal set to -inf."""
    x64 = x.astype(np.float64)
    sim = x64 @ x64.T
    dead = ~np.any(x != 0, axis=1)
    sim[dead, :] = -np.inf
    sim[:, dead] = -np.inf
    np.fill_diagonal(sim, -np.inf)
    return sim


def assert_knn_equivalent(pairs: CandidatePairs, x: np.ndarray, k: int, min_sim: float) -> None:
    """``pairs`` equals the exact k-NN pairs, up to ties at the k-th neighbour or threshold.

    A pair is required when one side ranks the other strictly inside its ``k`` nearest
    (and the score clears ``min_sim``); it is allowed when it ties with the k-th nearest.
    """
    n = len(x)
    assert_canonical(pairs, n)
    if n < 2:
        assert len(pairs) == 0
        return
    sim = similarities(x)
    kth = -np.sort(-sim, axis=1)[:, min(k, n - 1) - 1]
    inside = sim > kth[:, None] + EPS
    tied = sim >= kth[:, None] - EPS
    finite = np.isfinite(sim)
    required = (inside | inside.T) & finite & (sim > min_sim + EPS)
    allowed = (tied | tied.T) & finite & (sim >= min_sim - EPS)
    got = np.zeros((n, n), dtype=bool)
    got[pairs.i, pairs.j] = True
    assert not np.any(got & ~allowed), "a pair beyond the k nearest or below min_similarity"
    assert not np.any(np.triu(required, 1) & ~got), "a required pair is missing"
    np.testing.assert_allclose(pairs.score, sim[pairs.i, pairs.j], atol=EPS)


def assert_same_pairs(got: CandidatePairs, want: CandidatePairs) -> None:
    """Exact equality of two pair sets."""
    np.testing.assert_array_equal(got.i, want.i)
    np.testing.assert_array_equal(got.j, want.j)
    np.testing.assert_array_equal(got.score, want.score)


def planted_vectors(n: int, d: int, copies: int, seed: int) -> tuple[np.ndarray, set]:
    """Clustered unit vectors where ``copies`` rows are noisy copies (cosine ~0.97) of others."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n // 100, d))
    x = centres[rng.integers(0, len(centres), n)] + rng.standard_normal((n, d))
    target = rng.choice(n, copies, replace=False)
    source = rng.choice(np.setdiff1d(np.arange(n), target), copies)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x[target] = x[source] + 0.04 * rng.standard_normal((copies, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    planted = {
        (min(a, b), max(a, b)) for a, b in zip(source.tolist(), target.tolist(), strict=True)
    }
    return x.astype(np.float32), planted


# -------------------------------------------------------------------------------- k-NN


@FAST
@given(
    x=unit_rows(),
    k=st.integers(1, 6),
    min_sim=st.sampled_from([-1.0, 0.0, 0.5, 0.99]),
    batch_size=st.sampled_from([1, 3, 1024]),
)
def test_knn_exact_path_matches_brute_force(x, k, min_sim, batch_size):
    pairs = knn_pairs(x, k=k, min_similarity=min_sim, batch_size=batch_size)
    assert_knn_equivalent(pairs, x, k, min_sim)
    assert_knn_equivalent(brute_knn_pairs(x, k=k, min_similarity=min_sim), x, k, min_sim)


@FAST
@given(x=unit_rows(max_n=40), k=st.integers(1, 4), min_sim=st.sampled_from([-1.0, 0.5]))
def test_knn_approximate_path_returns_only_true_pairs(x, k, min_sim):
    pairs = knn_pairs(x, k=k, min_similarity=min_sim, exact_limit=0, batch_size=7, workers=1)
    assert_canonical(pairs, len(x))
    sim = similarities(x)
    assert np.all(np.isfinite(sim[pairs.i, pairs.j]))
    assert np.all(pairs.score >= min_sim)
    np.testing.assert_allclose(pairs.score, sim[pairs.i, pairs.j], atol=EPS)


def test_knn_equals_brute_force_without_ties():
    x, _ = planted_vectors(600, 16, copies=60, seed=1)
    got = knn_pairs(x, k=4, min_similarity=0.2, batch_size=128)
    want = brute_knn_pairs(x, k=4, min_similarity=0.2)
    np.testing.assert_array_equal(got.i, want.i)
    np.testing.assert_array_equal(got.j, want.j)
    np.testing.assert_allclose(got.score, want.score, atol=EPS)


def test_knn_duplicates_never_match_themselves():
    x = np.tile(np.array([[0.6, 0.8]], dtype=np.float32), (12, 1))
    pairs = knn_pairs(x, k=3)
    partners = np.bincount(np.concatenate([pairs.i, pairs.j]), minlength=12)
    assert np.all(partners >= 3)
    assert_knn_equivalent(pairs, x, 3, 0.0)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_knn_tiny_inputs(n):
    x = np.eye(2, dtype=np.float32)[:n]
    x[:, :] = 1 / np.sqrt(2)
    pairs = knn_pairs(x, k=5)
    assert_canonical(pairs, n)
    assert len(pairs) == (1 if n == 2 else 0)


def test_knn_zero_rows_match_nothing():
    x = np.array([[0, 0], [1, 0], [0, 0], [1, 0]], dtype=np.float32)
    pairs = knn_pairs(x, k=3, min_similarity=-1.0)
    assert (pairs.i.tolist(), pairs.j.tolist()) == ([1], [3])
    assert len(knn_pairs(np.zeros((5, 3), dtype=np.float32), k=2, min_similarity=-1.0)) == 0


def test_knn_approximate_path_recall_on_planted_duplicates(monkeypatch):
    x, planted = planted_vectors(20_000, 32, copies=1_000, seed=7)

    def no_exact_search(*args, **kwargs):
        raise AssertionError("the exact path ran; expected the IVF path")

    monkeypatch.setattr(index, "_search_flat", no_exact_search)
    pairs = knn_pairs(x, k=5, min_similarity=0.9, exact_limit=1_000, batch_size=4096)
    found = set(zip(pairs.i.tolist(), pairs.j.tolist(), strict=True))
    assert len(planted & found) / len(planted) >= 0.98
    np.testing.assert_allclose(pairs.score, np.sum(x[pairs.i] * x[pairs.j], axis=1), atol=EPS)


def test_knn_restores_faiss_threads():
    before = faiss.omp_get_max_threads()
    x, _ = planted_vectors(300, 8, copies=10, seed=3)
    knn_pairs(x, k=2, workers=1)
    knn_pairs(x, k=2, exact_limit=0, workers=1)
    assert faiss.omp_get_max_threads() == before


@pytest.mark.parametrize(
    ("vectors", "kwargs", "message"),
    [
        (np.ones(3, dtype=np.float32), {}, "2-D float array"),
        (np.ones((2, 2), dtype=np.int64), {}, "2-D float array"),
        (np.ones((2, 2), dtype=np.float32), {}, "L2-normalised"),
        (np.array([[np.nan, 0.0]], dtype=np.float32), {}, "NaN"),
        (np.eye(2, dtype=np.float32), {"k": 0}, "k must be"),
        (np.eye(2, dtype=np.float32), {"batch_size": 0}, "batch_size must be"),
        (np.eye(2, dtype=np.float32), {"workers": 0}, "workers must be"),
        (np.eye(2, dtype=np.float32), {"exact_limit": -1}, "exact_limit must be"),
        (np.eye(2, dtype=np.float32), {"min_similarity": float("nan")}, "min_similarity is NaN"),
    ],
)
def test_knn_rejects_bad_arguments(vectors, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        knn_pairs(vectors, **kwargs)


# ----------------------------------------------------------------------------- Hamming


@FAST
@given(codes=packed_codes(), radius=st.integers(0, 20), batch_size=st.sampled_from([1, 5, 512]))
def test_hamming_pairs_matches_brute_force(codes, radius, batch_size):
    pairs = hamming_pairs(codes, radius=radius, batch_size=batch_size, workers=1)
    assert_canonical(pairs, len(codes))
    assert_same_pairs(pairs, brute_hamming_pairs(codes, radius=radius))


@FAST
@given(codes=packed_codes(), radius=st.integers(0, 12), bits=st.integers(1, 24), data=st.data())
def test_multi_index_hashing_is_exact_for_any_layout(codes, radius, bits, data):
    nbits = 8 * codes.shape[1]
    bits = min(bits, nbits)
    plan = index._MultiIndexPlan(bits, nbits // bits, radius // (nbits // bits))
    batch_size = data.draw(st.sampled_from([1, 4, 1000]))
    workers = data.draw(st.sampled_from([1, 2]))
    pairs = index._multi_index_pairs(
        codes, radius=radius, plan=plan, batch_size=batch_size, workers=workers
    )
    assert_same_pairs(pairs, brute_hamming_pairs(codes, radius=radius))


@FAST
@given(n=st.integers(2, 10**7), nbytes=st.integers(1, 32), radius=st.integers(0, 64))
def test_multi_index_plan_satisfies_the_pigeonhole_bound(n, nbytes, radius):
    plan = index._plan_multi_index(n, 8 * nbytes, radius)
    if plan is not None:
        assert plan.tables * plan.bits <= 8 * nbytes
        assert plan.tables * (plan.flips + 1) > radius


def test_multi_index_plan_for_a_million_phashes():
    assert index._plan_multi_index(1_000_000, 64, 8) == index._MultiIndexPlan(21, 3, 2)
    assert index._plan_multi_index(1_000, 64, 8) is None


def test_hamming_large_input_uses_multi_index_and_stays_exact(monkeypatch):
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 256, (20_000, 8), dtype=np.uint8)
    noise = np.packbits(rng.random((5_000, 64)) < 0.05, axis=1)
    codes[15_000:] = codes[rng.integers(0, 15_000, 5_000)] ^ noise
    codes[100:110] = codes[0]  # a cluster of exact duplicates
    want = index._flat_hamming_pairs(codes, radius=8, batch_size=4096)
    monkeypatch.setattr(index, "_CANDIDATES_PER_CHUNK", 1000)
    monkeypatch.setattr(index, "_flat_hamming_pairs", None)  # must not be called
    got = hamming_pairs(codes, radius=8, workers=2)
    assert len(got) > 5_000
    assert_same_pairs(got, want)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_hamming_tiny_inputs(n):
    codes = np.zeros((n, 8), dtype=np.uint8)
    pairs = hamming_pairs(codes, radius=0)
    assert_canonical(pairs, n)
    assert len(pairs) == (1 if n == 2 else 0)


def test_hamming_radius_is_inclusive():
    codes = np.packbits(np.array([[0] * 64, [1] * 3 + [0] * 61], dtype=np.uint8), axis=1)
    assert len(hamming_pairs(codes, radius=2)) == 0
    pairs = hamming_pairs(codes, radius=3)
    assert (pairs.i.tolist(), pairs.j.tolist(), pairs.score.tolist()) == ([0], [1], [3.0])


@pytest.mark.parametrize(
    ("codes", "kwargs", "message"),
    [
        (np.zeros((3, 8), dtype=np.int64), {"radius": 1}, "uint8"),
        (np.zeros(8, dtype=np.uint8), {"radius": 1}, "2-D uint8"),
        (np.zeros((3, 0), dtype=np.uint8), {"radius": 1}, "nbytes >= 1"),
        (np.zeros((3, 8), dtype=np.uint8), {"radius": -1}, "radius must be"),
        (np.zeros((3, 8), dtype=np.uint8), {"radius": 1.5}, "radius must be"),
        (np.zeros((3, 8), dtype=np.uint8), {"radius": True}, "radius must be"),
        (np.zeros((3, 8), dtype=np.uint8), {"radius": 1, "batch_size": 0}, "batch_size"),
    ],
)
def test_hamming_rejects_bad_arguments(codes, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        hamming_pairs(codes, **kwargs)


def test_empty_candidate_pairs():
    pairs = CandidatePairs.empty()
    assert len(pairs) == 0
    assert_canonical(pairs, 0)


def test_popcount_fallback_for_numpy_1(monkeypatch):
    words = np.random.default_rng(2).integers(0, 2**63, (50, 3), dtype=np.uint64)
    want = index._popcount(words)
    monkeypatch.delattr(np, "bitwise_count")
    np.testing.assert_array_equal(index._popcount(words), want)


def test_locality_ranks_are_a_permutation_that_keeps_clusters_together() -> None:
    from lookalike.index import locality_ranks

    rng = np.random.default_rng(3)
    centres = rng.standard_normal((4, 16)).astype(np.float32)
    labels = rng.integers(0, 4, size=2000)
    x = centres[labels] + 0.05 * rng.standard_normal((2000, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ranks = locality_ranks(x, cell_size=500)
    assert sorted(ranks.tolist()) == list(range(2000))
    by_rank = labels[np.argsort(ranks)]
    assert np.count_nonzero(by_rank[1:] != by_rank[:-1]) <= 8  # few cluster boundaries
    assert locality_ranks(x[:100], cell_size=500).tolist() == list(range(100))


def test_knn_between_finds_each_query_s_nearest_base_rows_like_brute_force() -> None:
    from lookalike.index import knn_between

    rng = np.random.default_rng(3)
    base = rng.normal(size=(300, 16)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    base[7] = 0.0  # an all-zero row matches nothing
    queries = base[:40] + 0.05 * rng.normal(size=(40, 16)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    qi, bj, sims = knn_between(queries, base, k=3, min_similarity=0.2)

    expected = set()
    for q in range(40):
        scores = base @ queries[q]
        scores[7] = -np.inf
        for j in np.argsort(-scores)[:3]:
            if scores[j] >= 0.2:
                expected.add((q, int(j)))
    assert set(zip(qi.tolist(), bj.tolist(), strict=True)) == expected
    assert 7 not in bj.tolist()
    np.testing.assert_allclose(sims, np.einsum("ij,ij->i", queries[qi], base[bj]), atol=1e-5)


# ----------------------------------------------------------------- reciprocal neighbours


def _ranked_others(sim: np.ndarray, row: int) -> np.ndarray:
    scores = sim[row].copy()
    scores[row] = -np.inf
    return np.argsort(-scores, kind="stable")


def test_knn_tells_which_pairs_are_reciprocal_neighbours_like_brute_force() -> None:
    x, _ = planted_vectors(400, 16, copies=40, seed=4)
    sim = x.astype(np.float64) @ x.T.astype(np.float64)

    pairs = knn_pairs(x, k=3, min_similarity=-1.0, mutual=5)

    assert pairs.reciprocal is not None and len(pairs.reciprocal) == len(pairs)
    for i, j, reciprocal in zip(pairs.i, pairs.j, pairs.reciprocal, strict=True):
        mutual = j in _ranked_others(sim, i)[:5] and i in _ranked_others(sim, j)[:5]
        assert bool(reciprocal) == mutual, (i, j)
    assert 0 < pairs.reciprocal.sum() < len(pairs)  # some are, some are not
    assert knn_pairs(x, k=3).reciprocal is None  # not asked


def test_a_planted_copy_stands_out_as_a_reciprocal_neighbour() -> None:
    x, planted = planted_vectors(600, 16, copies=60, seed=1)

    pairs = knn_pairs(x, k=5, min_similarity=0.2, mutual=5)

    found = set(zip(pairs.i.tolist(), pairs.j.tolist(), strict=True))
    reciprocal = {
        (int(i), int(j))
        for i, j, r in zip(pairs.i, pairs.j, pairs.reciprocal, strict=True)
        if r
    }
    assert planted <= found
    assert len({p for p in planted if p in reciprocal}) >= 0.95 * len(planted)
    assert len(reciprocal) < 0.6 * len(found)  # most look-alikes are not reciprocal


def test_reciprocal_bars_give_each_base_row_its_nth_nearest_other_owner() -> None:
    from lookalike.index import reciprocal_bars

    rng = np.random.default_rng(9)
    queries = rng.normal(size=(60, 8)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    query_owner = np.repeat(np.arange(30), 2)  # two rows an owner (plain and mirrored, say)
    base = rng.normal(size=(90, 8)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    base_owner = np.repeat(np.arange(30), 3)  # three windows an owner

    bars = reciprocal_bars(queries, query_owner, base, base_owner, 4)

    for row in range(90):
        best: dict[int, float] = {}
        for q in range(60):
            owner = int(query_owner[q])
            if owner != base_owner[row]:
                best[owner] = max(best.get(owner, -2.0), float(base[row] @ queries[q]))
        assert bars[row] == pytest.approx(sorted(best.values(), reverse=True)[3], abs=1e-5)
