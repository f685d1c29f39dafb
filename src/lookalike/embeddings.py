"""Bring your own descriptor: learned embeddings as extra candidates and evidence.

Two sources, both optional and never needed to meet lookalike's quality targets:

* **An ONNX model you name** (``--model path/to/model.onnx``), run with ONNX Runtime (the
  ``embeddings`` extra: ``pip install 'lookalike[embeddings]'``). Each image is decoded
  upright in RGB, squashed to ``input_size`` x ``input_size``, scaled to [0, 1],
  normalised per channel with ``mean`` and ``std`` (in the model's channel order,
  ``rgb`` or ``bgr``) and fed as one NCHW float32 batch. The model's first output,
  flattened per image, is the embedding. Model names (``clip``, ``dinov2``...) are not
  downloaded: lookalike never fetches weights; export the model to ONNX yourself.
* **Precomputed embeddings** (``--embeddings FILE``): a ``.npy`` array of shape
  ``(n, d)`` with a sidecar text file ``FILE.paths.txt`` (one path per line, row order;
  relative paths are relative to the sidecar's folder), or a ``.npz`` holding arrays
  ``paths`` and ``embeddings``. Images the file does not cover simply get no embedding
  candidates.

Embeddings only *propose* pairs: the nearest neighbours by cosine similarity are verified
like any other candidate (:mod:`lookalike.matching`, geometry included), and the cosine
similarity is added to the evidence as ``embedding_similarity``.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, InputNotFoundError, require

DEFAULT_MEAN = (0.485, 0.456, 0.406)  # ImageNet statistics, the usual choice
DEFAULT_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelSpec:
    """An ONNX model and how to feed it."""

    path: str
    input_size: int = 224
    mean: tuple[float, float, float] = DEFAULT_MEAN
    std: tuple[float, float, float] = DEFAULT_STD
    channels: str = "rgb"  # order of the model's input channels: rgb | bgr
    batch: int = 16


@dataclass(frozen=True)
class EmbeddingSettings:
    """Where embeddings come from and how many neighbours each image proposes."""

    model: ModelSpec | None = None
    file: str | None = None
    neighbours: int = 5
    min_similarity: float = 0.5


class OnnxEmbedder:
    """Runs an ONNX model on decoded pictures (``onnxruntime``, CPU)."""

    def __init__(self, spec: ModelSpec) -> None:
        if spec.channels not in ("rgb", "bgr"):
            raise ConfigError(f"Unknown channel order {spec.channels!r}; choose rgb or bgr.")
        path = Path(spec.path)
        if not path.is_file():
            raise InputNotFoundError(
                f"ONNX model {spec.path!r} does not exist. lookalike does not download models: "
                "export one to ONNX (e.g. with torch.onnx.export) and pass its path to --model."
            )
        ort = require("onnxruntime", extra="embeddings")
        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ConfigError(f"Cannot load ONNX model {spec.path!r}: {exc}") from exc
        self.spec = spec
        self.input_name = self.session.get_inputs()[0].name

    def embed(self, pictures: Sequence[np.ndarray]) -> np.ndarray:
        """Embed RGB uint8 pictures (H x W x 3); returns L2-normalised float32 rows."""
        out = []
        for start in range(0, len(pictures), self.spec.batch):
            batch = np.stack(
                [preprocess(p, self.spec) for p in pictures[start : start + self.spec.batch]]
            )
            result = self.session.run(None, {self.input_name: batch})[0]
            out.append(np.asarray(result, dtype=np.float32).reshape(len(batch), -1))
        if not out:
            return np.zeros((0, 0), np.float32)
        return normalise(np.concatenate(out))


def preprocess(rgb: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """One picture as the model's input: (3, S, S) float32, normalised, channel-ordered."""
    import cv2

    size = spec.input_size
    x = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    if spec.channels == "bgr":
        x = x[..., ::-1]
        mean, std = np.array(spec.mean[::-1]), np.array(spec.std[::-1])
    else:
        mean, std = np.array(spec.mean), np.array(spec.std)
    x = (x - mean.astype(np.float32)) / std.astype(np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def model_key(spec: ModelSpec) -> str:
    """Identify a model file and its input options (changes when either does)."""
    st = os.stat(spec.path)
    raw = f"{os.path.abspath(spec.path)}|{st.st_size}|{st.st_mtime_ns}|{spec.input_size}|"
    raw += f"{spec.mean}|{spec.std}|{spec.channels}"
    return hashlib.sha1(raw.encode()).hexdigest()[:16]


def read_rgb(data: bytes, max_side: int = 512) -> np.ndarray:
    """Decode image bytes upright (EXIF orientation applied) to an RGB uint8 array."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as im:
        im.draft("RGB", (max_side, max_side))
        im = ImageOps.exif_transpose(im).convert("RGB")
        im.thumbnail((max_side, max_side))
        return np.asarray(im)


def load_embeddings_file(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read precomputed embeddings: absolute path -> unit vector.

    Raises:
        InputNotFoundError: the file or its sidecar list of paths is missing.
        ConfigError: the format is not understood or the counts differ.
    """
    p = Path(path)
    if not p.is_file():
        raise InputNotFoundError(f"Embeddings file {str(path)!r} does not exist.")
    if p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as data:
            if "paths" not in data or "embeddings" not in data:
                raise ConfigError(f"{str(path)!r} must hold arrays 'paths' and 'embeddings'.")
            paths, vectors = [str(x) for x in data["paths"]], data["embeddings"]
        base = p.parent
    elif p.suffix == ".npy":
        sidecar = p.with_name(p.name + ".paths.txt")
        if not sidecar.is_file():
            raise InputNotFoundError(
                f"{str(path)!r} needs its list of paths in {str(sidecar)!r} (one per line, row order)."
            )
        vectors = np.load(p, allow_pickle=False)
        paths = [line for line in sidecar.read_text(encoding="utf-8").splitlines() if line.strip()]
        base = sidecar.parent
    else:
        raise ConfigError(
            f"Unknown embeddings format {p.suffix!r} for {str(path)!r}; use .npy (+ .paths.txt) or .npz."
        )
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != len(paths):
        raise ConfigError(
            f"{str(path)!r}: {len(paths)} paths but embeddings of shape {vectors.shape}; "
            "expected one row per path."
        )
    rows = normalise(vectors)
    return {os.path.abspath(os.path.join(base, q)): rows[k] for k, q in enumerate(paths)}


def embedding_vectors(
    digests: Sequence[str],
    paths_by_digest: dict[str, list[str]],
    settings: EmbeddingSettings,
    *,
    read: Any = None,
) -> dict[str, np.ndarray]:
    """One unit vector per digest that has one (file entries or the model's output)."""
    out: dict[str, np.ndarray] = {}
    if settings.file:
        table = load_embeddings_file(settings.file)
        for d in digests:
            for path in paths_by_digest.get(d, []):
                vec = table.get(os.path.abspath(path))
                if vec is not None:
                    out[d] = vec
                    break
    if settings.model is not None:
        embedder = OnnxEmbedder(settings.model)
        todo = [d for d in digests if d not in out and paths_by_digest.get(d)]
        reader = read or _read_file
        for start in range(0, len(todo), 64):
            chunk = todo[start : start + 64]
            pictures = [read_rgb(reader(paths_by_digest[d][0])) for d in chunk]
            out.update(zip(chunk, embedder.embed(pictures), strict=True))
    return out


def embedding_candidates(
    digests: Sequence[str],
    vectors: dict[str, np.ndarray],
    settings: EmbeddingSettings,
    *,
    workers: int | None = None,
) -> dict[tuple[int, int], tuple[str, float]]:
    """Nearest neighbours by cosine similarity, as index pairs into ``digests``."""
    from .index import knn_pairs

    have = [k for k, d in enumerate(digests) if d in vectors]
    if len(have) < 2:
        return {}
    matrix = np.stack([vectors[digests[k]] for k in have]).astype(np.float32)
    cand = knn_pairs(
        matrix, k=settings.neighbours, min_similarity=settings.min_similarity, workers=workers
    )
    out: dict[tuple[int, int], tuple[str, float]] = {}
    for i, j, sim in zip(cand.i.tolist(), cand.j.tolist(), cand.score.tolist(), strict=True):
        a, b = sorted((have[i], have[j]))
        out[(a, b)] = ("embedding", float(sim))
    return out


def _read_file(path: str) -> bytes:
    from .remote import read_bytes

    return read_bytes(path)
