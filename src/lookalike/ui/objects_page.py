"""The Objects page: the findings of ``lookalike objects`` drawn on their images, and review.

Routes::

    /objects          boxes and findings by image   /objects.json   ?kind=&page=
    /objects/decide   POST (CSRF token): finding=ID action=accept|reject|label|clear
                      [side=a|b for label] [next=URL]

A ``duplicate`` finding's removal is accepted (the box goes) or rejected (it stays); a
``label-conflict`` is resolved by choosing the box whose class is right. Decisions are
stored in ``object_decisions`` (:func:`lookalike.objects.decide`) and applied by
``lookalike objects --out DIR --write``. Other kinds are shown for information.
"""

from __future__ import annotations

import json
import math
import sqlite3
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..objects import FINDING_KINDS, decide, decisions_for
from ..store import from_blob, to_blob
from . import queries
from .app import (
    CSRF_FIELD,
    JSON,
    MAX_PAGE,
    HttpError,
    ReviewState,
    check_csrf,
    done,
    render,
    safe_next,
    wants_json,
    whole_number,
)

OBJECTS_PER_PAGE = 24


def routes(state: ReviewState) -> list[BaseRoute]:
    """The Objects page, its JSON twin and the decision action."""
    v = _ObjectViews(state)
    return [
        Route("/objects", v.page),
        Route("/objects.json", v.page),
        Route("/objects/decide", v.post_decide, methods=["POST"]),
    ]


def _page_number(value: Any) -> int:
    return whole_number(value, "page", lo=1, hi=MAX_PAGE)


class _ObjectViews:
    def __init__(self, state: ReviewState) -> None:
        self.state = state

    def page(self, request: Request) -> Response:
        page = _page_number(request.query_params.get("page", 1))
        kind = request.query_params.get("kind") or None
        if kind is not None and kind not in FINDING_KINDS:
            raise HttpError(400, f"Unknown kind {kind!r}; choose from: {', '.join(FINDING_KINDS)}.")
        with self.state.db() as store:
            data = queries.objects(
                store.conn,
                limit=OBJECTS_PER_PAGE,
                offset=(page - 1) * OBJECTS_PER_PAGE,
                kind=kind,
            )
            kinds = _kind_counts(store.conn)
            for image in data["images"]:
                image["findings"] = _findings(store, image["path"], kind)
        data = {
            "schema": "lookalike.objects/2",
            "page": page,
            "pages": max(1, math.ceil(data["total_images"] / OBJECTS_PER_PAGE)),
            "kind": kind,
            "kinds": kinds,
            **data,
        }
        if wants_json(request):
            return JSON(data)
        return render(self.state, request, "objects.html", data=data, nav="objects")

    async def post_decide(self, request: Request) -> Response:
        async with request.form() as form:
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
        check_csrf(self.state, request, fields.get(CSRF_FIELD))
        finding = whole_number(fields.get("finding", ""), "finding", lo=1)

        def work() -> dict[str, Any]:
            with self.state.db() as store:
                action = fields.get("action", "")
                return decide(store, finding, action, side=fields.get("side") or None)

        payload = await run_in_threadpool(work)
        return done(request, safe_next(fields.get("next"), "/objects"), payload)


def _kind_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Findings of each kind in the finished runs (every kind, 0 when none)."""
    counts = dict.fromkeys(FINDING_KINDS, 0)
    if not _has_findings(conn):
        return counts
    for kind, n in conn.execute(
        "SELECT f.kind, COUNT(*) FROM object_findings f JOIN object_runs r ON r.id = f.run_id "
        "WHERE r.status = 'done' GROUP BY f.kind"
    ):
        counts[kind] = n
    return counts


def _has_findings(conn: sqlite3.Connection) -> bool:
    return bool(
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'object_findings'"
        ).fetchone()
    )


def _findings(store: Any, path: str, kind: str | None) -> list[dict[str, Any]]:
    """The findings whose first box is on ``path``, with the decisions taken on them."""
    if not _has_findings(store.conn):
        return []
    sql = (
        "SELECT f.id, f.kind, f.reason, f.score, r.annotations, f.annotation_a, f.label_a, "
        "f.box_a, f.action_a, f.path_b, f.annotation_b, f.label_b, f.box_b, f.action_b "
        "FROM object_findings f JOIN object_runs r ON r.id = f.run_id "
        "WHERE r.status = 'done' AND f.path_a = ?" + (" AND f.kind = ?" if kind else "")
        + " AND NOT (f.kind = 'repeated-object' AND f.reason = 'near-duplicate-image')"
        " ORDER BY f.id"
    )  # fmt: skip
    args: list[Any] = [to_blob(path), *([kind] if kind else [])]
    out = []
    for row in store.conn.execute(sql, args).fetchall():
        a = _side(row[5:9], None)
        b = _side(row[10:14], row[9])
        b["same_image"] = row[9] is not None and from_blob(row[9]) == path
        ids = [s["id"] for s in (a, b) if s["id"] is not None]
        decided = decisions_for(store, row[4], ids)
        item = {"id": row[0], "kind": row[1], "reason": row[2], "score": row[3], "a": a, "b": b}
        item["decision"] = _decision(row[1], a, b, decided)
        out.append(item)
    return out


def _side(values: Any, path: bytes | None) -> dict[str, Any]:
    aid, label, box, action = values
    return {
        "id": json.loads(aid) if aid is not None else None,
        "label": label,
        "box": json.loads(box) if box is not None else None,
        "action": action,
        "image": from_blob(path) if path is not None else None,
    }


def _decision(
    kind: str, a: dict[str, Any], b: dict[str, Any], decided: dict[Any, dict[str, Any]]
) -> dict[str, Any] | None:
    """What was decided on a finding: ``{"removal": accept|reject}`` or ``{"label": name}``."""
    if kind == "duplicate":
        removed = next((s["id"] for s in (a, b) if s["action"] == "remove"), None)
        choice = decided.get(removed, {}).get("removal")
        return {"removal": choice, "box": removed} if choice else None
    if kind == "label-conflict":
        labels = {d["label"] for i, d in decided.items() if d.get("label_from") is not None}
        return {"label": labels.pop()} if len(labels) == 1 else None
    return None
