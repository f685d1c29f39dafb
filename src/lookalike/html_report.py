"""A static, self-contained HTML gallery of the duplicate groups (``lookalike report --html``).

The output folder opens in any browser with no server, no network and no lookalike:

* ``index.html``: the summary (images, failures, groups and duplicates by relation,
  reclaimable bytes, leakage between roots) and the groups, largest reclaimable bytes first;
  ``groups-2.html``... hold further pages when there are more than ``per_page`` groups;
* ``thumbs/<digest>_<size>.jpg``: one thumbnail per distinct content, copied from the
  store's thumbnail cache (made when missing);
* ``report.json``: the same groups and summary in the ``--json`` schema, plus each file's
  planned action with the person's marks applied.

Styles are inlined; there is no script. Every text is HTML-escaped.
"""

from __future__ import annotations

import html
import json
import os
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .decoding import pillow_warnings_silenced
from .errors import LookalikeError
from .records import Group
from .report import group_to_dict, human_size, relation_counts, summary
from .review import decide, scanned_roots
from .store import Store, from_blob
from .thumbnails import cache_dir_for, read_verified, render_thumbnail, thumbnail

PER_PAGE = 200

_CSS = """
body{
  font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
  margin:0;
  background:#f6f7f9;
  color:#1d2330;
}
header{background:#1d2330;color:#fff;padding:.8rem 1.5rem}
header h1{margin:0;font-size:1.3rem}
main{padding:1rem 1.5rem;max-width:1500px;margin:0 auto}
.stats{display:flex;flex-wrap:wrap;gap:.8rem}
.stat{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:.6rem 1rem}
.stat b{display:block;font-size:1.4rem}
.muted{color:#667085}
code,.path{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.82em}
table{border-collapse:collapse;background:#fff}
td,th{border:1px solid #dde1e8;padding:.25rem .6rem;text-align:left}
.group{
  background:#fff;
  border:1px solid #dde1e8;
  border-radius:10px;
  margin:1rem 0;
  padding:.6rem .8rem;
}
.group h2{font-size:1.05rem;margin:.2rem 0 .6rem}
.files{display:flex;flex-wrap:wrap;gap:.8rem}
.file{width:230px;font-size:.8rem}
.file img{
  width:230px;
  height:180px;
  object-fit:contain;
  background:#eceff4;
  border-radius:6px;
  display:block;
}
.file.to-remove img{opacity:.55}
.na{
  width:230px;
  height:180px;
  background:#eceff4;
  border-radius:6px;
  display:flex;
  align-items:center;
  justify-content:center;
  text-align:center;
  color:#667085;
  padding:.5rem;
  box-sizing:border-box;
}
.badge{
  display:inline-block;
  border-radius:999px;
  padding:0 .45rem;
  font-size:.75rem;
  font-weight:600;
  background:#e8ebf1;
}
.exact{background:#dcf2e3;color:#23864a}
.pixel{background:#d8f1f3;color:#0f7d86}
.near{background:#fbecd7;color:#b25e09}
.mirror{background:#eee2f8;color:#7d3fb3}
.keep{background:#dcf2e3;color:#23864a}
.remove{background:#fadcd9;color:#c4322b}
.keeper{background:#f0a53a;color:#1d2330}
.path{word-break:break-all}
nav.pages{margin:1rem 0}
nav.pages a,nav.pages b{margin-right:.6rem}
"""


def write_report(
    store: Store,
    out_dir: str | os.PathLike[str],
    *,
    thumb_size: int = 256,
    limit: int | None = None,
    per_page: int = PER_PAGE,
    workers: int | None = None,
) -> Path:
    """Write the gallery into ``out_dir`` and return the path of ``index.html``.

    Args:
        store: the store of a finished scan.
        out_dir: folder to write (created; files of an earlier report are overwritten).
        thumb_size: thumbnail size, one of :data:`lookalike.thumbnails.SIZES`.
        limit: only the first N groups (largest reclaimable bytes first).
        per_page: groups per HTML page.
        workers: threads making thumbnails (default: CPUs).

    Raises:
        LookalikeError: the output folder cannot be written.
    """
    out = Path(out_dir)
    try:
        (out / "thumbs").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LookalikeError(
            f"Cannot write the report into {str(out)!r}: {exc.strerror or exc}."
        ) from exc
    groups = sorted(store.load_groups(), key=lambda g: (-g.reclaimable_bytes, g.id))
    shown = groups[:limit] if limit else groups
    facts = _facts(store)
    actions = {d.path: (d.action, d.reason) for d in decide(store)}
    thumbs = _thumbnails(store, out, shown, facts, thumb_size, workers)
    doc = _document(store, groups, shown, facts, actions)
    pages = [shown[i : i + per_page] for i in range(0, len(shown), per_page)] or [[]]
    for n, page in enumerate(pages, start=1):
        body = _page(doc, page, n, len(pages), facts, actions, thumbs)
        (out / _page_name(n)).write_text(body, encoding="utf-8", errors="backslashreplace")
    (out / "report.json").write_text(
        json.dumps(doc, indent=1, default=str) + "\n", encoding="ascii"
    )
    return out / "index.html"


def _facts(store: Store) -> dict[str, tuple[str | None, int | None, int | None, str | None]]:
    return {
        from_blob(p): (d, w, h, f)
        for p, d, w, h, f in store.conn.execute(
            "SELECT f.path, f.digest, i.width, i.height, i.format FROM files f "
            "LEFT JOIN images i ON i.digest = f.digest WHERE f.status = 'ok'"
        )
    }


def _paths(g: Group) -> list[str]:
    return [g.keeper, *(m.path for m in g.members)]


def _thumbnails(
    store: Store,
    out: Path,
    groups: Sequence[Group],
    facts: dict[str, Any],
    size: int,
    workers: int | None,
) -> dict[str, str]:
    """Digest -> relative thumbnail path, or ``!reason`` when none could be made."""
    jobs: dict[str, str] = {}
    for g in groups:
        for p in _paths(g):
            digest = facts.get(p, (None,))[0]
            if digest and digest not in jobs:
                jobs[digest] = p
    cache = cache_dir_for(store.path)

    def one(item: tuple[str, str]) -> tuple[str, str]:
        digest, path = item
        target = out / "thumbs" / f"{digest}_{size}.jpg"
        try:
            if not target.exists():
                _thumb_into(cache, path, digest, size, target)
        except (LookalikeError, OSError) as exc:
            return digest, f"!{exc}"
        return digest, f"thumbs/{target.name}"

    with (
        pillow_warnings_silenced(),
        ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2) as pool,
    ):
        return dict(pool.map(one, sorted(jobs.items())))


def _thumb_into(cache: Path, path: str, digest: str, size: int, target: Path) -> None:
    try:
        shutil.copyfile(thumbnail(cache, path, digest, size), target)
    except PermissionError:  # read-only store folder: make it without the cache
        target.write_bytes(render_thumbnail(read_verified(path, digest), size))


def _document(
    store: Store,
    groups: Sequence[Group],
    shown: Sequence[Group],
    facts: dict[str, Any],
    actions: dict[str, tuple[str, str]],
) -> dict[str, Any]:
    run = store.last_run()
    failed = store.file_rows("failed")
    return {
        "schema": "lookalike.html-report/1",
        "store": os.fspath(store.path),
        "roots": scanned_roots(store),
        "scanned": run["finished"] if run else None,
        "images": len(facts),
        "failures": [{"path": f["path"], "stage": f["stage"], "error": f["error"]} for f in failed],
        "summary": summary(groups),
        "groups_shown": len(shown),
        "groups": [
            {
                **group_to_dict(g),
                "actions": {p: actions.get(p, ("keep", "keeper"))[0] for p in _paths(g)},
            }
            for g in shown
        ],
    }


def _page_name(n: int) -> str:
    return "index.html" if n == 1 else f"groups-{n}.html"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _page(
    doc: dict[str, Any],
    groups: Sequence[Group],
    n: int,
    pages: int,
    facts: dict[str, Any],
    actions: dict[str, tuple[str, str]],
    thumbs: dict[str, str],
) -> str:
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>lookalike report{'' if n == 1 else f' (page {n})'}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<header><h1>Duplicate images: lookalike report</h1></header><main>",
    ]
    if n == 1:
        parts.append(_summary_html(doc))
    parts.append(_pager(n, pages))
    for g in groups:
        parts.append(_group_html(g, facts, actions, thumbs))
    parts.append(_pager(n, pages))
    parts.append("</main></body></html>\n")
    return "".join(parts)


def _summary_html(doc: dict[str, Any]) -> str:
    s = doc["summary"]
    rel = ", ".join(f"{v} {k}" for k, v in s["groups_by_relation"].items() if v)
    copies = relation_counts(s["duplicates_by_relation"])
    roots = ", ".join(f"<code>{_e(r)}</code>" for r in doc["roots"])
    out = [
        f'<p class="muted">Roots: {roots}. Generated from <code>{_e(doc["store"])}</code>. '
        "Files marked <span class='badge remove'>remove</span> would be moved to a quarantine "
        "folder by <code>lookalike export --quarantine DIR</code> (nothing is deleted).</p>",
        '<div class="stats">',
        f'<div class="stat"><b>{doc["images"]}</b>images</div>',
        f'<div class="stat"><b>{len(doc["failures"])}</b>could not be read</div>',
        f'<div class="stat"><b>{s["groups"]}</b>groups{f" ({_e(rel)})" if rel else ""}</div>',
        f'<div class="stat"><b>{s["duplicates"]}</b>duplicates ({_e(copies)})</div>',
        f'<div class="stat"><b>{_e(human_size(s["reclaimable_bytes"]))}</b>reclaimable</div>',
        "</div>",
    ]
    if doc["groups_shown"] < s["groups"]:
        out.append(
            f'<p class="muted">Showing the first {doc["groups_shown"]} of {s["groups"]} groups.</p>'
        )
    if s["leakage"]:
        out.append("<h2>Leakage between roots</h2><table><tr><th>roots</th><th>groups</th></tr>")
        for item in s["leakage"]:
            roots = " ↔ ".join(_e(r) for r in item["roots"])
            out.append(f"<tr><td>{roots}</td><td>{item['groups']}</td></tr>")
        out.append("</table>")
    if doc["failures"]:
        out.append(
            "<h2>Files that could not be read</h2><table><tr><th>path</th><th>reason</th></tr>"
        )
        for f in doc["failures"][:1000]:
            out.append(f'<tr><td class="path">{_e(f["path"])}</td><td>{_e(f["error"])}</td></tr>')
        out.append("</table>")
    return "".join(out)


def _pager(n: int, pages: int) -> str:
    if pages <= 1:
        return ""
    links = [
        f"<b>{k}</b>" if k == n else f'<a href="{_page_name(k)}">{k}</a>'
        for k in range(1, pages + 1)
    ]
    return f'<nav class="pages">Pages: {"".join(links)}</nav>'


def _group_html(
    g: Group, facts: dict[str, Any], actions: dict[str, tuple[str, str]], thumbs: dict[str, str]
) -> str:
    score = min((m.score for m in g.members), default=1.0)
    head = (
        f'<section class="group" id="g{g.id}"><h2>Group {g.id} '
        f'<span class="badge {_e(g.relation)}">{_e(g.relation)}</span> '
        f'<span class="muted">{len(g.members) + 1} files · similarity ≥ {score:.3f} · '
        f"{_e(human_size(g.reclaimable_bytes))} reclaimable"
        f"{' · spans ' + str(len(g.roots)) + ' roots' if len(g.roots) > 1 else ''}</span></h2>"
        '<div class="files">'
    )
    cells = [_file_html(g.keeper, g.keeper_root, g.keeper_size, None, facts, actions, thumbs)]
    cells.extend(_file_html(m.path, m.root, m.size, m, facts, actions, thumbs) for m in g.members)
    return head + "".join(cells) + "</div></section>"


def _file_html(
    path: str,
    root: str,
    size: int,
    member: Any,
    facts: dict[str, Any],
    actions: dict[str, tuple[str, str]],
    thumbs: dict[str, str],
) -> str:
    digest, width, height, fmt = facts.get(path, (None, None, None, None))
    action, reason = actions.get(path, ("keep", "keeper" if member is None else ""))
    thumb = thumbs.get(digest or "", "!not in the store")
    if thumb.startswith("!"):
        img = f'<div class="na">no thumbnail: {_e(thumb[1:])}</div>'
    else:
        img = f'<img src="{_e(thumb)}" alt="{_e(os.path.basename(path))}" loading="lazy">'
    rel = os.path.relpath(path, root) if root else path
    role = '<span class="badge keeper">★ keeper</span> ' if member is None else ""
    match = ""
    if member is not None:
        relation = _e(member.relation)
        match = f'<span class="badge {relation}">{relation}</span> {member.score:.3f}<br>'

    dims = f"{width}×{height} " if width else ""
    top = _e(os.path.basename(root.rstrip(os.sep)))
    badge = f'<span class="badge {_e(action)}" title="{_e(reason)}">{_e(action)}</span>'
    facts = f'<span class="muted">{dims}{_e(fmt or "")} · {_e(human_size(size))}</span>'
    where = f'<div class="path" title="{_e(path)}">{top}/{_e(rel)}</div>'
    return f'<div class="file to-{_e(action)}">{img}{role}{badge} {match}{facts}{where}</div>'
