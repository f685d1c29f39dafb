"""The small ``data.yaml`` ``names:`` parser and class-file discovery."""

from __future__ import annotations

from pathlib import Path

import pytest

from lookalike.annotations.classnames import (
    ClassNamesError,
    find_class_file,
    parse_yaml_names,
    read_class_names,
)


@pytest.mark.parametrize(
    "text",
    [
        "names: [person, 'dog', \"cup\"]\n",
        "nc: 3\nnames: ['person', 'dog', 'cup']  # comment\n",
        "names:\n  - person\n  - dog  # the dog\n  - 'cup'\nother: 1\n",
        "names:\n  0: person\n  1: dog\n  2: cup\n",
        "names: {0: person, 1: 'dog', 2: cup}\n",
        "names: [person,\n  dog,\n  cup]\n",
        "path: ../data\n# names: [wrong]\nnames:\n- person\n- dog\n- cup\n",
    ],
)
def test_yaml_forms(text: str) -> None:
    assert parse_yaml_names(text) == {0: "person", 1: "dog", 2: "cup"}


def test_quoted_commas_hashes_and_sparse_mapping() -> None:
    assert parse_yaml_names("names: ['a, b', \"c # d\", 'it''s']\n") == {
        0: "a, b",
        1: "c # d",
        2: "it's",
    }
    assert parse_yaml_names("names:\n  3: x\n  10: y\n") == {3: "x", 10: "y"}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("nc: 2\n", "no top-level 'names:'"),
        ("names: person\n", "neither a list nor a mapping"),
        ("names: [a, b\n", "not closed"),
        ("names:\n  a: x\n", "not 'index: name'"),
        ("names:\nnc: 1\n", "has no value"),
    ],
)
def test_bad_yaml_names(text: str, why: str) -> None:
    with pytest.raises(ClassNamesError, match=why):
        parse_yaml_names(text)


def test_discovery_prefers_data_yaml_and_searches_parents(tmp_path: Path) -> None:
    labels = tmp_path / "labels" / "train"
    labels.mkdir(parents=True)
    (tmp_path / "classes.txt").write_text("x\n")
    (tmp_path / "data.yaml").write_text("names: [a]\n")
    assert find_class_file(labels) == tmp_path / "data.yaml"
    (tmp_path / "data.yaml").unlink()
    (tmp_path / "custom.yaml").write_text("train: x\nnames: [b]\n")
    assert find_class_file(labels) == tmp_path / "custom.yaml"
    (tmp_path / "custom.yaml").write_text("train: x\n")  # no names: not a class file
    assert find_class_file(labels) == tmp_path / "classes.txt"
    assert read_class_names(tmp_path / "classes.txt") == {0: "x"}


def test_malformed_class_file_is_a_problem_not_an_error(tmp_path: Path) -> None:
    from annotation_builders import make_image

    from lookalike.annotations import load_annotations

    (tmp_path / "data.yaml").write_text("nc: 5\nnames: [a, b]\n")
    (tmp_path / "x.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    make_image(tmp_path / "x.png")
    dataset = load_annotations(tmp_path)
    assert [p.kind for p in dataset.problems] == ["malformed-class-file"]
    assert "'nc: 5' but 2 names" in dataset.problems[0].message
    (tmp_path / "data.yaml").write_text("names: oops\n")
    dataset = load_annotations(tmp_path)
    assert [p.kind for p in dataset.problems] == ["malformed-class-file"]
    assert dataset.annotations[0].label == "1"
