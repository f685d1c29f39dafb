"""Duplicates are counted by their own relation, not only by their group's loosest one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

import lookalike
from lookalike import report
from lookalike.testing import make_photo

BY_MEMBER = {"exact": 1, "pixel": 1, "near": 1, "mirror": 0}
BY_GROUP = {"exact": 0, "pixel": 0, "near": 1, "mirror": 0}


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> lookalike.ScanResult:  # type: ignore[name-defined]
    """One group: master.bmp keeps; an exact copy, a PNG twin (pixel), a JPEG (near)."""
    base = tmp_path_factory.mktemp("relations")
    folder = base / "images"
    folder.mkdir()
    photo: Image.Image = make_photo(8, size=(320, 240))[0].convert("RGB")
    photo.save(folder / "master.bmp")
    shutil.copyfile(folder / "master.bmp", folder / "master copy.bmp")
    photo.save(folder / "master.png")
    photo.save(folder / "master.jpg", quality=80)
    return lookalike.scan([folder], db=base / "s.db", engine="serial")


def test_the_scan_has_one_near_group_holding_each_relation(scanned) -> None:
    assert len(scanned.groups) == 1
    assert Path(scanned.groups[0].keeper).name == "master.bmp"
    assert sorted(m.relation for m in scanned.groups[0].members) == ["exact", "near", "pixel"]


def test_the_json_summary_counts_duplicates_by_relation(scanned) -> None:
    s = json.loads(report.to_json(scanned))["summary"]
    assert s["groups_by_relation"] == BY_GROUP
    assert s["duplicates_by_relation"] == BY_MEMBER
    assert sum(s["duplicates_by_relation"].values()) == s["duplicates"]


def test_the_summary_line_counts_duplicates_by_relation(scanned) -> None:
    line = report.summary_text(scanned).splitlines()[1]
    assert line.startswith(
        "Duplicate groups: 1 (0 exact, 0 pixel, 1 near, by their loosest member); "
        "3 duplicates (1 exact, 1 pixel, 1 near), "
    )


def test_the_html_report_counts_duplicates_by_relation(scanned, tmp_path) -> None:
    from lookalike.html_report import write_report
    from lookalike.store import Store

    with Store(scanned.store_path, readonly=True) as store:
        index = write_report(store, tmp_path / "html")
    page = Path(index).read_text(encoding="utf-8")
    assert "<b>3</b>duplicates (1 exact, 1 pixel, 1 near)" in page
    doc = json.loads((tmp_path / "html" / "report.json").read_text(encoding="utf-8"))
    assert doc["summary"]["duplicates_by_relation"] == BY_MEMBER


def test_the_ui_overview_counts_duplicates_by_relation(scanned) -> None:
    pytest.importorskip("starlette", reason="the ui extra is not installed")
    from lookalike.ui.app import create_app
    from lookalike.ui.client import asgi_get

    app = create_app(Path(scanned.store_path))
    try:
        status, _, body = asgi_get(app, "/index.json")
        assert status == 200
        summary = json.loads(body)["summary"]
        status, _, page = asgi_get(app, "/")
    finally:
        app.state.review.close()
    assert summary["duplicates_by_relation"] == BY_MEMBER
    assert summary == report.summary(scanned.groups) | {"leakage": summary["leakage"]}
    html = page.decode("utf-8")
    assert "<th>duplicates</th>" in html
    assert '<td class="num">1</td><td class="num">1</td>' in html  # exact: 0 groups, 1 copy
