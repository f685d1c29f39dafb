"""Whatever the input, readers report problems or raise AnnotationFormatError; nothing crashes."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from annotation_builders import make_image
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lookalike.annotations import (
    find_duplicate_boxes,
    load_annotations,
    objects_report,
    plan_cleanup,
    validate,
    write_cleaned,
)
from lookalike.errors import AnnotationFormatError

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 10),
    st.sampled_from([10**400, -(10**400), 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=8)
numbers = st.one_of(st.integers(-5, 400), st.floats(-10, 400), scalars)
annotation = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.integers(0, 5), scalars),
        "image_id": st.one_of(st.integers(0, 3), scalars),
        "category_id": st.one_of(st.integers(0, 4), scalars),
        "bbox": st.one_of(st.lists(numbers, min_size=4, max_size=4), values),
        "area": values,
    },
)
image = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.integers(0, 3), scalars),
        "file_name": st.one_of(st.just("a.png"), scalars),
        "width": st.one_of(st.just(64), numbers),
        "height": st.one_of(st.just(48), numbers),
    },
)
document = st.fixed_dictionaries(
    {"annotations": st.one_of(st.lists(st.one_of(annotation, values), max_size=8), values)},
    optional={
        "images": st.one_of(st.lists(image, max_size=4), values),
        "categories": st.one_of(
            st.lists(st.fixed_dictionaries({"id": scalars, "name": scalars})), values
        ),
    },
)


def run_pipeline(path: Path, out: Path) -> None:
    try:
        dataset = load_annotations(path)
    except AnnotationFormatError:
        return
    problems = validate(dataset)
    pairs = find_duplicate_boxes(dataset)
    plan = plan_cleanup(dataset, pairs)
    json.dumps(objects_report(dataset, problems, pairs, plan))
    write_cleaned(dataset, plan, out, dry_run=False)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document)
def test_coco_documents_never_crash(doc) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_image(folder / "a.png", (64, 48))
        path = folder / "instances.json"
        path.write_text(json.dumps(doc))
        run_pipeline(path, folder / "out")


lines = st.lists(
    st.one_of(
        st.lists(
            st.one_of(st.integers(-2, 5).map(str), st.floats(-1, 2).map(repr), st.text(max_size=3)),
            max_size=8,
        ).map(" ".join),
        st.text(max_size=20),
    ),
    max_size=6,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines, st.sampled_from(["\n", "\r\n", "\r"]))
def test_yolo_files_never_crash(text_lines, newline) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        make_image(folder / "a.png", (64, 48))
        (folder / "a.txt").write_text(newline.join(text_lines), newline="")
        run_pipeline(folder, Path(tmp) / "out")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300), st.binary(max_size=50))
def test_voc_files_never_crash(text, blob) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        (folder / "a.xml").write_text(f"<annotation><object>{text}</object></annotation>")
        (folder / "b.xml").write_bytes(blob)
        run_pipeline(folder, Path(tmp) / "out")
