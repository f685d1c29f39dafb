"""Learned embeddings: a tiny ONNX model built here, and precomputed vectors from a file."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.embeddings import (
    EmbeddingSettings,
    ModelSpec,
    OnnxEmbedder,
    embedding_candidates,
    load_embeddings_file,
    preprocess,
)
from lookalike.errors import ConfigError, InputNotFoundError

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def _tiny_model(path, size: int = 32) -> None:
    """(1, 3, S, S) -> 4 x 4 average pooled map, flattened: a 48-d embedding."""
    from onnx import TensorProto, helper

    k = size // 4
    nodes = [
        helper.make_node("AveragePool", ["x"], ["p"], kernel_shape=[k, k], strides=[k, k]),
        helper.make_node("Flatten", ["p"], ["y"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 48])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_preprocess_normalises_in_the_model_channel_order() -> None:
    rgb = np.zeros((10, 10, 3), np.uint8)
    rgb[..., 0] = 255
    spec = ModelSpec("m.onnx", input_size=4, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    x = preprocess(rgb, spec)
    assert (
        x.shape == (3, 4, 4)
        and x[0].min() == pytest.approx(1.0)
        and x[2].max() == pytest.approx(-1.0)
    )
    bgr = preprocess(
        rgb, ModelSpec("m.onnx", input_size=4, channels="bgr", mean=(0.5,) * 3, std=(0.5,) * 3)
    )
    assert bgr[2].min() == pytest.approx(1.0)


def test_an_onnx_model_embeds_and_proposes_neighbours(tmp_path) -> None:
    _tiny_model(tmp_path / "tiny.onnx")
    embedder = OnnxEmbedder(ModelSpec(str(tmp_path / "tiny.onnx"), input_size=32))
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
    other = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
    vectors = embedder.embed([base, np.clip(base.astype(int) + 5, 0, 255).astype(np.uint8), other])
    assert vectors.shape == (3, 48)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    pairs = embedding_candidates(["a", "b", "c"], dict(zip("abc", vectors, strict=True)),
                                 EmbeddingSettings(neighbours=1, min_similarity=0.0))  # fmt: skip
    assert (0, 1) in pairs


def test_a_missing_model_says_what_to_do(tmp_path) -> None:
    with pytest.raises(InputNotFoundError, match="does not download models"):
        OnnxEmbedder(ModelSpec(str(tmp_path / "clip.onnx")))


def test_precomputed_npy_with_sidecar_paths(tmp_path) -> None:
    np.save(tmp_path / "e.npy", np.array([[3.0, 4.0], [1.0, 0.0]], np.float32))
    (tmp_path / "e.npy.paths.txt").write_text("a.jpg\nsub/b.png\n", encoding="utf-8")
    table = load_embeddings_file(tmp_path / "e.npy")
    assert sorted(table) == [str(tmp_path / "a.jpg"), str(tmp_path / "sub" / "b.png")]
    np.testing.assert_allclose(table[str(tmp_path / "a.jpg")], [0.6, 0.8])


def test_precomputed_file_errors(tmp_path) -> None:
    np.save(tmp_path / "e.npy", np.zeros((2, 3), np.float32))
    with pytest.raises(InputNotFoundError, match="paths.txt"):
        load_embeddings_file(tmp_path / "e.npy")
    (tmp_path / "e.npy.paths.txt").write_text("only-one.jpg\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="one row per path"):
        load_embeddings_file(tmp_path / "e.npy")


def test_scan_with_a_model_adds_candidates_and_keeps_results(tmp_path) -> None:
    from click.testing import CliRunner

    from lookalike.cli import main
    from lookalike.testing import write_dataset

    _tiny_model(tmp_path / "tiny.onnx")
    write_dataset(tmp_path / "images", n_originals=3, n_distractors=1, n_hard_negatives=0)
    args = ["scan", str(tmp_path / "images"), "--db", str(tmp_path / "s.db"), "-q", "--json", "-"]
    plain = CliRunner().invoke(main, args)
    learned = CliRunner().invoke(
        main, [*args, "--model", str(tmp_path / "tiny.onnx"), "--model-input-size", "32"]
    )
    assert plain.exit_code == 0 and learned.exit_code == 0, learned.output
    import json

    groups = lambda out: [
        sorted([g["keeper"], *(m["path"] for m in g["members"])]) for g in json.loads(out)["groups"]
    ]  # noqa: E731
    assert groups(learned.output) == groups(plain.output)
