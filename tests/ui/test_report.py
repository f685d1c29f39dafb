"""The static HTML gallery: self-contained, escaped, every group and thumbnail present."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from click.testing import CliRunner

from lookalike.cli_review import report_command
from lookalike.html_report import write_report
from lookalike.report import summary
from lookalike.store import Store
from lookalike.testing import make_photo, save_image

from .conftest import Scanned, make_dataset


def test_report_is_a_self_contained_gallery(shared: Scanned, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = CliRunner().invoke(report_command, ["--db", str(shared.db), "--html", str(out)])
    assert result.exit_code == 0, result.output
    index = out / "index.html"
    assert result.stdout.strip() == str(index)
    html = index.read_text(encoding="utf-8")
    assert "<script" not in html and "http://" not in html and "https://" not in html
    sources = re.findall(r'src="([^"]+)"', html)
    n_files = sum(len(g.members) + 1 for g in shared.result.groups)
    assert len(sources) == n_files
    for src in sources:
        assert src.startswith("thumbs/") and (out / src).stat().st_size > 0
    for g in shared.result.groups:
        assert f'id="g{g.id}"' in html
        for m in g.members:
            assert f"{os.path.basename(m.root)}/{os.path.relpath(m.path, m.root)}</div>" in html
    assert "Leakage between roots" in html and "broken.jpg" in html
    doc = json.loads((out / "report.json").read_text())
    assert doc["summary"] == summary(shared.result.groups)
    assert len(doc["groups"]) == len(shared.result.groups)


def test_report_escapes_names_and_paginates(tmp_path: Path) -> None:
    scanned = make_dataset(tmp_path / "data")
    photo = make_photo(7, size=(64, 48))[0]
    evil = Path(scanned.roots[0]) / '<img src=x onerror="alert(1)">.png'
    save_image(photo, evil)
    save_image(photo, Path(scanned.roots[0]) / "twin.png")
    scanned.rescan()
    with Store(scanned.db, readonly=True) as store:
        index = write_report(store, tmp_path / "out", per_page=2, thumb_size=128)
    html = index.read_text()
    every = "".join(p.read_text() for p in index.parent.glob("*.html"))
    assert "<img src=x" not in every
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;.png" in every
    pages = sorted(p.name for p in index.parent.glob("groups-*.html"))
    assert pages and 'href="groups-2.html"' in html
    total = sum(p.read_text().count('class="group"') for p in index.parent.glob("*.html"))
    assert total == len(scanned.result.groups)
