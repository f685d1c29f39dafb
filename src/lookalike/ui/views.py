"""Routes of the review UI: pages with their JSON twins, images by id, and POST actions.

Pages (``X`` and ``X.json`` carry the same data)::

    /                 overview          /index.json
    /groups           groups listing    /groups.json
                      ?sort=&order=&relation=&root=&min_score=&spans=&page=&per_page=
    /groups/{id}      one group         /groups/{id}.json
    /failures         unreadable files  /failures.json  ?kind=failed|skipped&page=
    /objects          duplicate boxes   /objects.json   ?kind=&page=   (ui/objects_page.py)
    /export           export preview    /export.json    (a dry run: nothing is touched)
    /export/list.{csv,json,txt}?list=all|keep|remove

Images (by ``files.id`` only)::

    /thumb/{id}?size=256    /image/{id}    /diff/{a}/{b}

Actions (POST, CSRF token required)::

    /marks                     file=ID mark=exclude|keep|none
    /groups/{id}/exclude       exclude every non-keeper of the group
    /groups/{id}/keeper        file=ID
    /groups/{id}/not-duplicate file=ID [other=ID]
    /bulk-exclude              min_score= [relation=] [root=] [dry_run=1] [expect_files=N]

What a bulk exclude would mark (GET, read-only)::

    /bulk-exclude.json         ?min_score=&relation=&root=
    /export                    action=quarantine|copy dest=DIR [dry_run=1]
                               [mode=copy|hardlink|symlink]
    /objects/decide            finding=ID action=accept|reject|label|clear [side=a|b]
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .. import export as exporting
from .. import review
from ..errors import ConfigError
from ..records import RELATIONS
from ..store import Store
from ..thumbnails import SIZES, cached_path, difference_image, display_bytes, thumbnail_bytes
from . import objects_page, prefetch, queries
from .app import (
    CSRF_FIELD,
    JSON,
    MAX_PAGE,
    PACKAGE_DIR,
    HttpError,
    ReviewState,
    check_csrf,
    done,
    render,
    safe_next,
    wants_json,
    whole_number,
)
from .prefetch import (
    CARD,
    COMPARE,
    EAGER_CARDS,
    EAGER_FILES,
    TILE_KEEPER,
    TILE_MEMBER,
    TILE_MEMBERS,
)
from .queries import GroupQuery

FAILURES_PER_PAGE = 100
PREVIEW_ROWS = 200


def routes(state: ReviewState) -> list[BaseRoute]:
    """Every route of the app, bound to ``state``."""
    v = _Views(state)
    static = StaticAssets(PACKAGE_DIR / "static")
    state.env.globals["static_url"] = static.url
    state.env.globals["thumb_url"] = thumb_url
    state.env.globals["T"] = {
        "tile_keeper": TILE_KEEPER,
        "tile_member": TILE_MEMBER,
        "tile_members": TILE_MEMBERS,
        "card": CARD,
        "compare": COMPARE,
        "eager_cards": EAGER_CARDS,
        "eager_files": EAGER_FILES,
    }
    return [
        Route("/", v.overview),
        Route("/index.json", v.overview),
        Route("/groups", v.groups),
        Route("/groups.json", v.groups),
        Route("/groups/{gid:id}", v.group),
        Route("/groups/{gid:id}.json", v.group),
        Route("/failures", v.failures),
        Route("/failures.json", v.failures),
        Route("/export", v.export_page),
        Route("/export.json", v.export_page),
        Route("/export/list.{fmt:str}", v.export_list),
        Route("/thumb/{fid:id}", v.thumb),
        Route("/image/{fid:id}", v.image),
        Route("/diff/{a:id}/{b:id}", v.diff),
        Route("/marks", v.post_mark, methods=["POST"]),
        Route("/groups/{gid:id}/exclude", v.post_exclude_group, methods=["POST"]),
        Route("/groups/{gid:id}/keeper", v.post_keeper, methods=["POST"]),
        Route("/groups/{gid:id}/not-duplicate", v.post_not_duplicate, methods=["POST"]),
        Route("/bulk-exclude", v.post_bulk_exclude, methods=["POST"]),
        Route("/bulk-exclude.json", v.bulk_preview),
        Route("/export", v.post_export, methods=["POST"]),
        Route("/static/{name:str}", static.serve),
        # -- Objects page and its review actions (ui/objects_page.py) --
        *objects_page.routes(state),
    ]




class IdConvertor(Convertor[int]):
    """``{name:id}`` path segments: 1 to 18 ASCII digits (a longer one matches no route,
    so ``/image/<400 nines>`` is a 404, not an overflow)."""

    regex = "[0-9]{1,18}"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(int(value))


register_url_convertor("id", IdConvertor())


class StaticAssets:
    """The UI's own style sheet, script and icon, read once and answered from memory.

    Pages link them as ``/static/NAME?v=HASH`` (:meth:`url`), a URL whose bytes never
    change, so the browser keeps them; a page's first load is not held up by them
    behind its thumbnails. Only the files of the package's ``static`` folder exist: a
    name is a dictionary key, never a path.
    """

    MEDIA = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}

    def __init__(self, folder: Path) -> None:
        self.files: dict[str, tuple[bytes, str, str]] = {}
        for path in sorted(folder.iterdir()):
            media = self.MEDIA.get(path.suffix)
            if path.is_file() and media:
                data = path.read_bytes()
                self.files[path.name] = (data, media, hashlib.sha256(data).hexdigest()[:16])

    def url(self, name: str) -> str:
        return f"/static/{name}?v={self.files[name][2]}"

    async def serve(self, request: Request) -> Response:
        found = self.files.get(request.path_params["name"])
        if found is None:
            raise HttpError(
                404, f"No file {request.url.path[:80]!r}. Start from the overview at /."
            )
        data, media, digest = found
        caching = (
            "public, max-age=31536000, immutable"
            if request.query_params.get("v") == digest
            else "no-cache"
        )
        headers = {"ETag": f'"{digest}"', "Cache-Control": caching}
        if request.headers.get("if-none-match") == f'"{digest}"':
            return Response(status_code=304, headers=headers)
        return Response(data, media_type=media, headers=headers)


def _float(value: Any, name: str, default: float) -> float:
    if value in (None, ""):
        return default
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise HttpError(400, f"Parameter {name!r} must be a number, got {value!r}.") from None
    if not math.isfinite(out):
        raise HttpError(400, f"Parameter {name!r} must be a finite number, got {value!r}.")
    return out


BULK_DEFAULT = 1.0
"""The bulk exclude's similarity when the page has no filter: only groups of exact and
pixel-identical copies (a lower value reaches near duplicates a person should look at)."""


def bulk_default(q: GroupQuery) -> float:
    """The bulk exclude's similarity on a groups page: the similarity filter the person
    chose, else :data:`BULK_DEFAULT` (never the filter's 0.00, which means every group)."""
    return q.min_score if q.min_score > 0 else BULK_DEFAULT


def group_query(request: Request) -> GroupQuery:
    """The groups listing query from the query string (400 on bad values)."""
    p = request.query_params
    try:
        return GroupQuery(
            sort=p.get("sort", "bytes"),
            order=p.get("order", "desc"),
            relation=p.get("relation") or None,
            root=p.get("root") or None,
            min_score=_float(p.get("min_score"), "min_score", 0.0),
            spans=p.get("spans", "") in ("1", "true", "on"),
            page=whole_number(p.get("page", 1), "page", lo=1, hi=MAX_PAGE),
            per_page=whole_number(p.get("per_page", 48), "per_page"),
        ).validate()
    except ConfigError as exc:
        raise HttpError(400, str(exc)) from exc


class _Views:
    def __init__(self, state: ReviewState) -> None:
        self.state = state

    # -- pages ---------------------------------------------------------------------------

    def overview(self, request: Request) -> Response:
        with self.state.db() as store:
            run = queries.last_run(store)
            roots = list(run["roots"]) if run else []
            data = {
                "schema": "lookalike.overview/1",
                "store": str(self.state.store_path),
                "roots": roots,
                "run": run,
                "files": queries.file_counts(store, roots),
                "summary": self.state.index.totals(),
                "marks": review.mark_counts(store),
                "plan": exporting.plan_summary(store),
                "objects": queries.has_objects_table(store.conn),
            }
        data["images"] = data["files"]["ok"]
        data["failures"] = data["files"]["failed"]
        if wants_json(request):
            return JSON(data)
        return render(self.state, request, "index.html", data=data, nav="overview")

    def groups(self, request: Request) -> Response:
        q = group_query(request)
        with self.state.db() as store:
            total, rows = self.state.index.page(q)
            found = queries.load_groups(store.conn, [r["id"] for r in rows])
            views = []
            for r in rows:
                if r["id"] in found:
                    views.append(
                        {**queries.group_view(store.conn, found[r["id"]]), "file_count": r["files"]}
                    )
            roots = review.scanned_roots(store)
            bulk = self.state.index.bulk_count(bulk_default(q), q.relation, q.root)
        prefetch.after_groups(self.state, q)
        pages = max(1, math.ceil(total / q.per_page))
        data = {
            "schema": "lookalike.groups/1",
            "total": total,
            "page": q.page,
            "pages": pages,
            "per_page": q.per_page,
            "query": q.params(),
            "groups": views,
            "bulk": bulk,
        }
        if wants_json(request):
            return JSON(data)
        return render(
            self.state,
            request,
            "groups.html",
            data=data,
            q=q,
            roots=roots,
            relations=RELATIONS,
            sorts=list(queries.SORTS),
            per_pages=queries.PER_PAGE,
            nav="groups",
        )

    def bulk_preview(self, request: Request) -> Response:
        p = request.query_params
        min_score = _float(p.get("min_score"), "min_score", BULK_DEFAULT)
        relation = p.get("relation") or None
        try:
            GroupQuery(min_score=min_score, relation=relation).validate()
        except ConfigError as exc:
            raise HttpError(400, str(exc)) from exc
        with self.state.db():
            bulk = self.state.index.bulk_count(min_score, relation, p.get("root") or None)
        return JSON({"schema": "lookalike.bulk-preview/1", **bulk})

    def group(self, request: Request) -> Response:
        gid = request.path_params["gid"]
        with self.state.db() as store:
            found = queries.load_groups(store.conn, [gid])
            if gid not in found:
                raise HttpError(
                    404,
                    f"Group {gid} is not in the store; each scan renumbers the groups. "
                    "Go back to the groups list.",
                )
            view = queries.group_view(store.conn, found[gid])
            prev_id, next_id = self.state.index.neighbours(gid)
            cards = _cards(view)
        prefetch.after_group(self.state, next_id)
        data = {"schema": "lookalike.group/1", "group": view, "prev": prev_id, "next": next_id}
        if wants_json(request):
            return JSON(data)
        return render(
            self.state,
            request,
            "group.html",
            data=data,
            g=view,
            nav="groups",
            cards=cards,
            back=safe_next(request.query_params.get("back"), "/groups"),
        )

    def failures(self, request: Request) -> Response:
        kind = request.query_params.get("kind", "failed")
        if kind not in ("failed", "skipped"):
            raise HttpError(400, f"Unknown kind {kind!r}; choose from: failed, skipped.")
        page = whole_number(request.query_params.get("page", 1), "page", lo=1, hi=MAX_PAGE)
        with self.state.db() as store:
            roots = review.scanned_roots(store)
            total, rows = queries.failures(
                store,
                roots,
                status=kind,
                limit=FAILURES_PER_PAGE,
                offset=(page - 1) * FAILURES_PER_PAGE,
            )
        data = {
            "schema": "lookalike.failures/1",
            "kind": kind,
            "total": total,
            "page": page,
            "pages": max(1, math.ceil(total / FAILURES_PER_PAGE)),
            "failures" if kind == "failed" else "skipped": rows,
        }
        if wants_json(request):
            return JSON(data)
        return render(
            self.state, request, "failures.html", data=data, rows=rows, kind=kind, nav="failures"
        )

    def export_page(self, request: Request) -> Response:
        page = whole_number(request.query_params.get("page", 1), "page", lo=1, hi=MAX_PAGE)
        with self.state.db() as store:
            summary = exporting.plan_summary(store)
            roots = review.scanned_roots(store)
            rows = review.removals(store, limit=PREVIEW_ROWS, offset=(page - 1) * PREVIEW_ROWS)
        data = {
            "schema": "lookalike.export-plan/1",
            "dry_run": True,
            "roots": roots,
            "summary": summary,
            "page": page,
            "pages": max(1, math.ceil(summary["remove"] / PREVIEW_ROWS)),
            "remove": [review.decision_to_dict(d) for d in rows],
        }
        if wants_json(request):
            return JSON(data)
        return render(
            self.state,
            request,
            "export.html",
            data=data,
            preview=data["remove"],
            suggest=_suggestions(roots),
            modes=exporting.COPY_MODES,
            nav="export",
            result=None,
        )

    def export_list(self, request: Request) -> Response:
        fmt = request.path_params["fmt"]
        which = request.query_params.get("list", "all" if fmt != "txt" else "remove")
        if fmt not in exporting.LIST_FORMATS:
            raise HttpError(404, f"No list format {fmt!r}; choose from: csv, json, txt.")
        with self.state.db() as store:
            rows = exporting.list_rows(store, which)
        media = {"csv": "text/csv", "json": "application/json", "txt": "text/plain"}[fmt]
        text = exporting.format_rows(rows, fmt)
        headers = {"Content-Disposition": f'attachment; filename="lookalike-{which}.{fmt}"'}
        return Response(text.encode("utf-8", "backslashreplace"), media_type=media, headers=headers)

    # -- images --------------------------------------------------------------------------

    def _servable(self, fid: int) -> tuple[review.FileRef, str]:
        with self.state.db() as store:
            return self._servable_in(store, fid)

    def _servable_in(self, store: Store, fid: int) -> tuple[review.FileRef, str]:
        ref = review.file_by_id(store, fid)
        fmt = store.conn.execute(
            "SELECT format FROM images WHERE digest = ?", (ref.digest,)
        ).fetchone()
        check_servable(ref, store.last_run())
        return ref, fmt[0] if fmt else ""

    async def thumb(self, request: Request) -> Response:
        """A thumbnail. A cached one is answered on the event loop (a page asks for about
        190 at once, and a hop to the thread pool costs more than the answer); one to
        make, or when the store is busy, in the thread pool."""
        size = whole_number(request.query_params.get("size", 256), "size")
        if size not in SIZES:
            raise HttpError(400, f"Thumbnail size {size} is not offered; choose from {SIZES}.")
        fid = request.path_params["fid"]
        with self.state.try_db() as store:
            if store is not None:
                ref, _ = self._servable_in(store, fid)
                response = self._thumb_response(request, ref, size, cached_only=True)
                if response is not None:
                    return response
        return await run_in_threadpool(self._thumb_made, request, fid, size)

    def _thumb_made(self, request: Request, fid: int, size: int) -> Response:
        ref, _ = self._servable(fid)
        response = self._thumb_response(request, ref, size, cached_only=False)
        assert response is not None
        return response

    def _thumb_response(
        self, request: Request, ref: review.FileRef, size: int, *, cached_only: bool
    ) -> Response | None:
        digest = str(ref.digest)
        etag = f'"{digest}-{size}"'
        # Pages link thumbnails with ?v=<digest prefix>: that URL always means the same
        # bytes, so the browser may keep it; without it (or after the file changed), it
        # revalidates each time.
        caching = (
            "private, max-age=31536000, immutable"
            if request.query_params.get("v") == version(digest)
            else "private, no-cache"
        )
        headers = {"ETag": etag, "Cache-Control": caching}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        if cached_only:
            try:
                data = cached_path(self.state.thumbs, digest, size).read_bytes()
            except OSError:
                return None
        else:
            data = thumbnail_bytes(self.state.thumbs, ref.path, digest, size)
        return Response(data, media_type="image/jpeg", headers=headers)

    def image(self, request: Request) -> Response:
        ref, fmt = self._servable(request.path_params["fid"])
        etag = f'"{ref.digest}"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        data, media = display_bytes(self.state.thumbs, ref.path, str(ref.digest), fmt)
        return Response(
            data, media_type=media, headers={"ETag": etag, "Cache-Control": "private, no-cache"}
        )

    def diff(self, request: Request) -> Response:
        a, _ = self._servable(request.path_params["a"])
        b, _ = self._servable(request.path_params["b"])
        ta = thumbnail_bytes(self.state.thumbs, a.path, str(a.digest), 1024)
        tb = thumbnail_bytes(self.state.thumbs, b.path, str(b.digest), 1024)
        return Response(
            difference_image(ta, tb),
            media_type="image/png",
            headers={"Cache-Control": "private, no-cache"},
        )

    # -- actions -------------------------------------------------------------------------

    async def _form(self, request: Request) -> dict[str, str]:
        async with request.form() as form:
            data = {k: v for k, v in form.items() if isinstance(v, str)}
        check_csrf(self.state, request, data.get(CSRF_FIELD))
        return data

    async def _act(
        self,
        request: Request,
        work: Callable[[Store, dict[str, str]], dict[str, Any]],
        default_next: str,
    ) -> Response:
        form = await self._form(request)

        def run() -> dict[str, Any]:
            with self.state.db() as store:
                return work(store, form)

        payload = await run_in_threadpool(run)
        return done(request, safe_next(form.get("next"), default_next), payload)

    async def post_mark(self, request: Request) -> Response:
        def work(store: Store, form: dict[str, str]) -> dict[str, Any]:
            ref = review.file_by_id(store, whole_number(form.get("file"), "file"))
            mark = form.get("mark") or None
            review.set_mark(store, ref.path, None if mark == "none" else mark)
            return {"file": ref.id, "path": ref.path, "mark": None if mark == "none" else mark}

        return await self._act(request, work, "/groups")

    async def post_exclude_group(self, request: Request) -> Response:
        gid = request.path_params["gid"]

        def work(store: Store, form: dict[str, str]) -> dict[str, Any]:
            return {"group": gid, "excluded": review.exclude_group(store, gid)}

        return await self._act(request, work, f"/groups/{gid}")

    async def post_keeper(self, request: Request) -> Response:
        gid = request.path_params["gid"]

        def work(store: Store, form: dict[str, str]) -> dict[str, Any]:
            ref = review.file_by_id(store, whole_number(form.get("file"), "file"))
            review.change_keeper(store, gid, ref.path)
            self.state.index.refresh(gid)
            return {"group": gid, "keeper": ref.path}

        return await self._act(request, work, f"/groups/{gid}")

    async def post_not_duplicate(self, request: Request) -> Response:
        gid = request.path_params["gid"]

        def work(store: Store, form: dict[str, str]) -> dict[str, Any]:
            ref = review.file_by_id(store, whole_number(form.get("file"), "file"))
            other = form.get("other")
            other_path = (
                review.file_by_id(store, whole_number(other, "other")).path if other else None
            )
            removed = review.mark_not_duplicate(store, gid, ref.path, other=other_path)
            self.state.index.refresh(gid)
            still = store.conn.execute("SELECT 1 FROM groups WHERE id = ?", (gid,)).fetchone()
            return {"group": gid, "removed": removed, "group_left": still is not None}

        response = await self._act(request, work, f"/groups/{gid}")
        return response

    async def post_bulk_exclude(self, request: Request) -> Response:
        def work(store: Store, form: dict[str, str]) -> dict[str, Any]:
            result = review.bulk_exclude(
                store,
                min_score=_float(form.get("min_score"), "min_score", BULK_DEFAULT),
                relation=form.get("relation") or None,
                root=form.get("root") or None,
                dry_run=form.get("dry_run") == "1",
                expect_files=(
                    whole_number(form["expect_files"], "expect_files")
                    if form.get("expect_files")
                    else None
                ),
            )
            return {"groups": result.groups, "files": result.files, "dry_run": result.dry_run}

        return await self._act(request, work, "/groups")

    async def post_export(self, request: Request) -> Response:
        form = await self._form(request)
        action = form.get("action", "")
        dest = (form.get("dest") or "").strip()
        dry_run = form.get("dry_run") == "1"
        if action not in ("quarantine", "copy"):
            raise HttpError(400, f"Unknown export action {action!r}; choose quarantine or copy.")
        if not dest or not os.path.isabs(os.path.expanduser(dest)):
            raise HttpError(400, f"Give the destination folder as an absolute path, got {dest!r}.")
        dest = os.path.expanduser(dest)
        mode = form.get("mode", "copy")
        result = await run_in_threadpool(self._export, action, dest, mode, dry_run)
        if wants_json(request):
            return JSON(result.to_dict(), status_code=200 if result.ok else 207)
        with self.state.db() as store:
            summary = exporting.plan_summary(store)
            roots = review.scanned_roots(store)
        data = {"summary": summary, "roots": roots, "remove": [], "page": 1, "pages": 1}
        return render(
            self.state,
            request,
            "export.html",
            data=data,
            preview=[],
            nav="export",
            suggest=_suggestions(roots),
            modes=exporting.COPY_MODES,
            result=result,
            result_dict=result.to_dict(),
        )

    def _export(self, action: str, dest: str, mode: str, dry_run: bool) -> exporting.ExportResult:
        with self.state.db() as store:
            if action == "quarantine":
                moves = exporting.plan_quarantine(store, dest)
                context = exporting.manifest_context(store)
            else:
                moves = exporting.plan_copy(store, dest)
        # The files move outside the lock: pages stay responsive during a long export.
        if action == "quarantine":
            return exporting.run_quarantine(moves, dest, context, dry_run=dry_run)
        return exporting.run_copy(moves, mode, dry_run=dry_run)


def check_servable(ref: review.FileRef, run: dict[str, Any] | None) -> None:
    """Refuse (404) a file that is not a readable image inside a scanned root.

    The stored path must lie lexically inside its root, and, unless that scan followed
    symbolic links, its real path inside the root's real path: a file swapped for a
    link, or reached through a linked folder, is refused. Its bytes are then checked
    against the recorded digest when read (:func:`lookalike.thumbnails.read_verified`).
    """
    why = None
    roots = list(run["roots"]) if run else []
    follow = bool(run and run["settings"].get("discovery", {}).get("follow_symlinks"))
    if ref.status != "ok" or not ref.digest:
        why = "it could not be read by the scan"
    elif ref.root not in roots:
        why = "it is not under a root of the latest scan"
    elif not _inside(os.path.normpath(ref.path), ref.root):
        why = "its path leaves its root"
    elif not follow and not _inside(os.path.realpath(ref.path), os.path.realpath(ref.root)):
        why = "it is reached through a symbolic link the scan did not follow"
    if why:
        raise HttpError(404, f"File {ref.id} is not served: {why}.")


def _inside(path: str, root: str) -> bool:
    return path.startswith(root.rstrip(os.sep) + os.sep)


def version(digest: str | None) -> str:
    """The ``v`` parameter of a thumbnail URL: what its bytes are made from."""
    return (digest or "")[:16]


def thumb_url(file_id: int, digest: str | None, size: int) -> str:
    """The URL of a thumbnail as pages link it (cacheable by the browser)."""
    return f"/thumb/{int(file_id)}?size={int(size)}&v={version(digest)}"


def _cards(view: dict[str, Any]) -> list[dict[str, Any]]:
    """The keeper then each member, with their facts, as the group page shows them."""
    files = view["files"]
    keeper = {
        "path": view["keeper"],
        "role": "keeper",
        "root": view["keeper_root"],
        "size": view["keeper_size"],
        "relation": None,
        "score": None,
        "reference": False,
        "evidence": {},
    }
    cards = [{**keeper, **files[view["keeper"]]}]
    cards.extend({**m, "role": "member", **files[m["path"]]} for m in view["members"])
    return cards


def _suggestions(roots: list[str]) -> dict[str, str]:
    if not roots:
        return {"quarantine_dir": "", "copy_dir": ""}
    first = roots[0].rstrip(os.sep)
    return {"quarantine_dir": f"{first}-quarantine", "copy_dir": f"{first}-clean"}
