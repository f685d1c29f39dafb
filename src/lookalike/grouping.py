"""Pairs -> groups: connected components, keeper choice, and splitting of chained groups."""

from __future__ import annotations

import numpy as np


def connected_components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Label the connected components of an undirected graph with ``n`` nodes.

    Vectorised union-find with pointer jumping; memory is O(n + edges).

    Returns:
        ``labels`` of shape ``(n,)``: every node gets the smallest node index of its component.
    """
    parent = np.arange(n, dtype=np.int64)
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    if i.size == 0:
        return parent
    while True:
        ri, rj = parent[i], parent[j]
        lo, hi = np.minimum(ri, rj), np.maximum(ri, rj)
        changed = lo != hi
        if not changed.any():
            break
        # Hook every larger root onto the smallest root it touches.
        np.minimum.at(parent, hi[changed], lo[changed])
        _compress(parent)
    return parent


def _compress(parent: np.ndarray) -> None:
    """Point every node straight at its root (pointer jumping, in place)."""
    while True:
        grand = parent[parent]
        if np.array_equal(grand, parent):
            return
        parent[:] = grand
