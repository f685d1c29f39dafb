"""The ASGI app factory and what every request shares: one store connection, rendering,
CSRF, security headers and error pages.

``create_app(store_path)`` returns a Starlette app. The store is opened once (WAL mode,
``busy_timeout``), every use of its connection holds one lock, and writes are short
``BEGIN IMMEDIATE`` transactions (:mod:`lookalike.review`), so a scan writing the same
store from another process neither blocks the UI for long nor loses a mark.

Security model (tested in ``tests/ui/test_security.py``):

* images are served by ``files.id`` only, never by a path parameter; the file must be one
  the scan listed, lie inside a scanned root (its real path too, unless the scan followed
  symbolic links), and still hash to its recorded digest;
* state changes only through POST carrying the per-session CSRF token: issued by this
  server process (a random nonce HMAC-signed with a secret drawn at start), kept in an
  ``HttpOnly``, ``SameSite=Strict`` cookie and echoed in a form field or the
  ``X-CSRF-Token`` header; a token the server did not sign is refused even when cookie
  and field agree, and so is an ``Origin`` that is not exactly this server's (scheme,
  host and port) or a ``Sec-Fetch-Site`` other than ``same-origin``; GET never writes
  to the store;
* with ``allowed_hosts`` (``serve`` sets it for loopback binds) other ``Host`` headers are
  refused, which stops DNS-rebinding pages from reading the UI.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from ..errors import InputNotFoundError, LookalikeError, MissingDependencyError

try:
    import jinja2
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse, RedirectResponse, Response
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(exc.name or "starlette", extra="ui") from exc

from ..report import human_size
from ..store import Store
from ..thumbnails import cache_dir_for
from .prefetch import Prefetcher, start_prefetch
from .queries import GroupIndex

CSRF_COOKIE = "lookalike_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
PACKAGE_DIR = Path(__file__).resolve().parent

SHORTCUTS = (
    ("j / k", "next / previous group"),
    ("h / l", "select previous / next image"),
    ("x", "exclude the selected image"),
    ("s", "keep the selected image (k is taken by 'previous')"),
    ("u", "clear the selected image's mark"),
    ("m", "make the selected image the keeper"),
    ("n", "not a duplicate: the selected image is not a copy of the keeper"),
    ("g", "exclude the whole group except its keeper"),
    ("d", "compare the selected image with the keeper: overlay / difference / side by side"),
    ("Enter", "open the selected group (groups page)"),
    ("?", "show or hide this help"),
)

_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),  # no-referrer would make browsers send Origin: null
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
        b"script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        b"frame-ancestors 'none'",
    ),
]


class HttpError(Exception):
    """An error page: status code and a message saying what, which, why and what next."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ReviewState:
    """What every request shares: the store, its lock, the group index, templates."""

    def __init__(self, store_path: str | os.PathLike[str]) -> None:
        path = Path(store_path)
        if not path.is_file():
            raise InputNotFoundError(
                f"No store at {str(path)!r}. Run `lookalike scan ROOT` first, or pass the "
                "store with --db."
            )
        self.store_path = path.resolve()
        self.store = Store(self.store_path)
        self.lock = threading.RLock()
        self.index = GroupIndex(self.store.conn)
        self.thumbs = cache_dir_for(self.store_path)
        self.prefetch = Prefetcher(self.thumbs)
        self.env = _environment()
        self.closed = False
        self.leaked_transactions = 0  # units of work that ended inside a transaction
        self.csrf_secret = secrets.token_bytes(32)  # signs this process's CSRF tokens
        # Pay the one-off costs now, not on the first page: the group index (about
        # 150 ms for 100,000 images) and the templates of the listing pages.
        self.index.ensure()
        for name in ("groups.html", "group.html", "index.html"):
            self.env.get_template(name)

    @contextlib.contextmanager
    def db(self) -> Iterator[Store]:
        """Hold the connection for one unit of work, which leaves no transaction open.

        Every write path commits or rolls back its own transaction
        (:func:`lookalike.review.write_transaction`, :meth:`GroupIndex.refresh`). Should
        one still be open when the unit of work ends, it is rolled back here (and the
        group index rebuilt on next use), so one request can never keep the store's
        lock and break every later write and every scan.
        """
        with self.lock:
            if self.closed:
                raise HttpError(503, "The server is shutting down; reload the page in a moment.")
            try:
                yield self.store
            finally:
                conn = self.store.conn
                if conn.in_transaction:
                    self.leaked_transactions += 1
                    conn.rollback()
                    self.index.invalidate()

    @contextlib.contextmanager
    def try_db(self) -> Iterator[Store | None]:
        """Like :meth:`db` when the connection is free at once, else ``None`` (for work
        done on the event loop, which must not wait for a long write)."""
        if not self.lock.acquire(blocking=False):
            yield None
            return
        try:
            with self.db() as store:
                yield store
        finally:
            self.lock.release()

    def close(self) -> None:
        """Stop the thumbnail prefetcher and close the store connection (idempotent)."""
        self.prefetch.stop()
        with self.lock:
            if not self.closed:
                self.closed = True
                self.store.close()


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(PACKAGE_DIR / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["size"] = human_size
    env.filters["pct"] = lambda v: "" if v is None else f"{100 * float(v):.1f}%"
    env.filters["score"] = lambda v: "" if v is None else f"{float(v):.3f}"
    env.filters["basename"] = lambda p: os.path.basename(p.rstrip(os.sep)) or p
    env.filters["relpath"] = _relpath
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=1, sort_keys=True, default=str)
    env.filters["when"] = _when
    env.globals["qs"] = lambda params: urlencode(params)
    env.globals["shortcuts"] = SHORTCUTS
    return env


def _when(epoch: float | None) -> str:
    import datetime

    if epoch is None:
        return "never"
    return datetime.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M")


def _relpath(path: str, root: str) -> str:
    if root and path.startswith(root.rstrip(os.sep) + os.sep):
        return path[len(root.rstrip(os.sep)) + 1 :]
    return path


# -- responses -----------------------------------------------------------------------------


def new_csrf_token(secret: bytes) -> str:
    """A fresh token signed by this server process: 32 hex digits of nonce, then 32 of
    its HMAC-SHA256 under the process's secret (64 hex digits in all)."""
    nonce = secrets.token_hex(16)
    return nonce + _csrf_signature(secret, nonce)


def _csrf_signature(secret: bytes, nonce: str) -> str:
    mac = hmac.new(secret, b"lookalike-csrf/1:" + nonce.encode("ascii"), hashlib.sha256)
    return mac.hexdigest()[:32]


def valid_csrf_token(secret: bytes, token: str) -> bool:
    """True when ``token`` was issued by the process holding ``secret``: a token that a
    page of another site planted in the cookie (cookies ignore the port) is refused."""
    if len(token) != 64 or any(c not in "0123456789abcdef" for c in token):
        return False
    return hmac.compare_digest(_csrf_signature(secret, token[:32]), token[32:])


def csrf_token(state: ReviewState, request: Request) -> str:
    """The session's CSRF token: the cookie's when this process issued it, else a new
    one (set as the cookie by :func:`render`)."""
    token = request.cookies.get(CSRF_COOKIE, "")
    if valid_csrf_token(state.csrf_secret, token):
        return token
    token = request.scope.setdefault("lookalike.new_csrf", new_csrf_token(state.csrf_secret))
    return str(token)


def _with_cookie(request: Request, response: Response) -> Response:
    token = request.scope.get("lookalike.new_csrf")
    if token:
        response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", path="/")
    return response


def render(
    state: ReviewState, request: Request, template: str, status: int = 200, **context: Any
) -> Response:
    """HTML of ``template``; paths that are not valid UTF-8 show their bytes escaped."""
    context.setdefault("nav", "")
    html = state.env.get_template(template).render(
        request=request,
        path=request.url.path,
        query_string=request.url.query,
        csrf_token=csrf_token(state, request),
        store=str(state.store_path),
        **context,
    )
    body = html.encode("utf-8", "backslashreplace")
    return _with_cookie(request, Response(body, status, media_type="text/html; charset=utf-8"))


class JSON(JSONResponse):
    """JSON with non-UTF-8 path bytes escaped (``\\udcxx``), like the CLI's ``--json``."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, indent=None, default=str).encode("ascii")


def wants_json(request: Request) -> bool:
    """True for ``….json`` routes and for requests that accept only JSON (fetch)."""
    accept = request.headers.get("accept", "")
    return request.url.path.endswith(".json") or (
        "application/json" in accept and "text/html" not in accept
    )


def error_response(state: ReviewState, request: Request, status: int, message: str) -> Response:
    """The error page (or JSON ``{"error": ...}``) for ``status``."""
    if wants_json(request):
        return JSON({"error": message, "status": status}, status_code=status)
    return render(state, request, "error.html", status=status, status_code=status, message=message)


def safe_next(value: str | None, default: str) -> str:
    """A redirect target limited to this site: a path starting with one ``/``."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


def done(request: Request, next_url: str, payload: dict[str, Any]) -> Response:
    """The answer to a successful POST: JSON for fetch, else a 303 back to the page."""
    if wants_json(request):
        return _with_cookie(request, JSON({"ok": True, **payload}))
    return RedirectResponse(next_url, status_code=303)


# -- CSRF and origin checks ----------------------------------------------------------------


def check_csrf(state: ReviewState, request: Request, form_token: str | None) -> None:
    """Refuse a POST without this session's server-issued token, or from another origin.

    * ``Origin``, when sent, must be this server's origin exactly: the scheme the request
      came with, the ``Host`` header's host and port (``https://`` or another port of
      the same host is another origin);
    * ``Sec-Fetch-Site``, when sent, must be ``same-origin`` (a page on another port of
      127.0.0.1 is ``same-site``, not ``same-origin``);
    * the cookie must hold a token this server process signed, and the form field or
      the ``X-CSRF-Token`` header must carry the same token (both compared in constant
      time), so neither a token an attacker chose nor one from another session passes.

    Raises:
        HttpError: 403 with what to do next.
    """
    origin = request.headers.get("origin")
    if origin is not None and not same_origin(origin, request):
        raise HttpError(403, f"Refused a request from another site (Origin {origin[:100]!r}).")
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        raise HttpError(
            403, f"Refused a request from another site (Sec-Fetch-Site {fetch_site[:40]!r})."
        )
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER) or form_token or ""
    if (
        not valid_csrf_token(state.csrf_secret, cookie)
        or not sent
        or not hmac.compare_digest(cookie.encode(), sent.encode("utf-8", "replace"))
    ):
        raise HttpError(
            403,
            "Missing or wrong CSRF token: this change did not come from a page of this "
            "server (or the server restarted since the page was loaded). Reload the page "
            "and try again.",
        )


_DEFAULT_PORTS = {"http": 80, "https": 443}


def same_origin(origin: str, request: Request) -> bool:
    """True when ``origin`` is exactly the origin ``request`` was sent to: same scheme,
    same host (case-insensitive) and same port, the scheme's default when left out."""
    scheme = request.url.scheme.lower()
    theirs = _origin_parts(origin)
    ours = _origin_parts(f"{scheme}://{request.headers.get('host', '')}")
    return theirs is not None and theirs == ours and theirs[0] == scheme


def _origin_parts(origin: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        return None
    return scheme, parts.hostname.lower(), port if port is not None else _DEFAULT_PORTS[scheme]


# -- middleware ----------------------------------------------------------------------------


class SecurityHeaders:
    """Adds ``nosniff``, a strict Content-Security-Policy and a same-origin referrer policy."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *_SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


# -- listening socket ----------------------------------------------------------------------


def listen_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening, for uvicorn's ``sockets=``.

    It is made with ``proto=IPPROTO_TCP`` and ``TCP_NODELAY``: asyncio turns Nagle's
    algorithm off only on sockets whose ``proto`` says TCP, and a plain
    ``socket.socket()`` says 0. With Nagle on, uvicorn's second write of a response (the
    body after the headers) waited for the browser's delayed ACK, 40 ms on Linux, for
    every thumbnail: a groups page of 190 thumbnails took seconds to fill in.

    Raises:
        OSError: the address cannot be bound (in use, not local...).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited on accept
        sock.bind((host, port))
        sock.listen(2048)  # before the URL is printed, so a client may connect at once
    except OSError:
        sock.close()
        raise
    return sock


# -- factory -------------------------------------------------------------------------------


def create_app(
    store_path: str | os.PathLike[str],
    *,
    allowed_hosts: Sequence[str] | None = None,
    debug: bool = False,
) -> Starlette:
    """The review UI over one store, as an ASGI app.

    Args:
        store_path: the SQLite store a scan wrote.
        allowed_hosts: accepted ``Host`` header names (``None`` accepts any); ``serve``
            passes the loopback names when it binds a loopback address.
        debug: Starlette's debug tracebacks.

    Raises:
        InputNotFoundError: no store at ``store_path``.
        MissingDependencyError: the ``ui`` extra is not installed.

    On ASGI lifespan startup (``serve``), background threads start making the thumbnails
    of the first pages (:mod:`lookalike.ui.prefetch`). The connection is closed on
    lifespan shutdown, or by ``app.state.review.close()`` when the app runs without a
    lifespan (tests with ``httpx.ASGITransport``, where no thread is started).
    """
    from .views import routes

    state = ReviewState(store_path)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        start_prefetch(state)  # the first pages' thumbnails, in the background
        try:
            yield
        finally:
            state.close()

    middleware = [Middleware(SecurityHeaders)]
    if allowed_hosts:
        middleware.insert(0, Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)))
    app = Starlette(
        debug=debug,
        routes=routes(state),
        middleware=middleware,
        exception_handlers=_exception_handlers(state),
        lifespan=lifespan,
    )
    app.state.review = state
    return app


def _exception_handlers(state: ReviewState) -> dict[Any, Callable[..., Any]]:
    from starlette.exceptions import HTTPException

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HttpError)
        return error_response(state, request, exc.status, exc.message)

    async def starlette_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        path = request.url.path
        shown = path if len(path) <= 80 else path[:80] + "..."
        message = {
            404: f"No page at {shown!r}. Start from the overview at /.",
            405: f"{request.method} is not allowed on {shown!r}; changes are POST "
            "requests sent by the page's buttons.",
        }.get(exc.status_code, str(exc.detail))
        return error_response(state, request, exc.status_code, message)

    async def library_error(request: Request, exc: Exception) -> Response:
        return error_response(state, request, _status_of(exc), str(exc))

    return {HttpError: http_error, HTTPException: starlette_error, LookalikeError: library_error}


def _status_of(exc: Exception) -> int:
    from ..errors import DecodeError, FileChangedError, StaleGroupError

    if isinstance(exc, InputNotFoundError):
        return 404
    if isinstance(exc, DecodeError):
        return 422
    if isinstance(exc, (StaleGroupError, FileChangedError)):
        return 409
    return 400


MAX_INT = 10**18 - 1
"""The largest id, page or count a request may carry: 18 digits, so every value and every
offset computed from it fits SQLite's 64-bit integers (a larger one would raise
``OverflowError`` in the driver, an HTTP 500)."""
_WHOLE = re.compile(r"-?[0-9]{1,18}")


def whole_number(value: Any, name: str, *, lo: int = 0, hi: int = MAX_INT) -> int:
    """A whole number parameter in ``[lo, hi]`` (ASCII digits only), else a 400."""
    text = str(value) if isinstance(value, int) else value
    if not isinstance(text, str) or not _WHOLE.fullmatch(text):
        shown = value if not isinstance(value, str) or len(value) <= 40 else value[:40] + "..."
        raise HttpError(400, f"Parameter {name!r} must be a whole number, got {shown!r}.")
    out = int(text)
    if not lo <= out <= hi:
        raise HttpError(400, f"Parameter {name!r} must be between {lo} and {hi}, got {out}.")
    return out


MAX_PAGE = 10**12
"""The largest page number asked for (any page past the last is empty)."""
