"""CLI commands to review and act: ``serve``, ``export``, ``undo`` and ``report``.

Thin shells over :mod:`lookalike.review`, :mod:`lookalike.export`,
:mod:`lookalike.html_report` and :mod:`lookalike.ui`; :mod:`lookalike.cli` registers them.
Every command finds the store like ``scan`` does: ``--db``, else the default store of the
ROOT folders, else ``$LOOKALIKE_DB``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .cli_errors import fail_on_library_errors
from .errors import ConfigError, InputNotFoundError

LOOPBACK = ("127.0.0.1", "localhost", "::1")
DEFAULT_PORT = 8642
_BARE_JSON = "\x01bare --json"
"""What a bare ``--json`` (the flag of lookalike before ``--json FILE``) gives."""


def _json_result_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--json FILE`` ('-' for stdout; a bare ``--json`` still prints) for ``what``."""
    return click.option(
        "--json",
        "as_json",
        metavar="FILE",
        type=click.Path(dir_okay=False, allow_dash=True),
        is_flag=False,
        flag_value=_BARE_JSON,
        help=f"Write {what} as JSON to FILE; '-' for stdout.",
    )


def resolve_store(db: str | None, roots: tuple[str, ...]) -> Path:
    """The store a command reads: ``--db``, else the ROOTs' default store, else
    ``$LOOKALIKE_DB``; it must exist.

    Raises:
        ConfigError: neither ROOT, ``--db`` nor ``$LOOKALIKE_DB`` is given.
        InputNotFoundError: the store does not exist.
    """
    from .discovery import normalise_roots
    from .store import default_store_path

    if db:
        path = Path(db)
    elif roots:
        path = default_store_path(normalise_roots(roots))
    elif os.environ.get("LOOKALIKE_DB"):
        path = Path(os.environ["LOOKALIKE_DB"])
    else:
        raise ConfigError(
            "No store named. Give the scanned folders (ROOT...), --db PATH, or set $LOOKALIKE_DB."
        )
    if not path.is_file():
        hint = f"lookalike scan {' '.join(roots)}" if roots else "lookalike scan ROOT --db PATH"
        raise InputNotFoundError(
            f"No store at {str(path)!r}: these folders were not scanned yet. Run `{hint}` first."
        )
    return path


def _store_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option(
        "--db",
        type=click.Path(dir_okay=False),
        help="The store to read (default: the one `lookalike scan ROOT...` wrote, "
        "or $LOOKALIKE_DB).",
    )(fn)
    return click.argument("roots", nargs=-1, type=click.Path(file_okay=False))(fn)


# -- serve ---------------------------------------------------------------------------------


@click.command("serve")
@_store_options
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; keep the default to stay local.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port; 0 picks a free one.",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the UI in a web browser.")
@click.option(
    "--get",
    "get_path",
    metavar="PATH",
    help="Print one page or JSON (e.g. /groups.json) and exit, without a server; "
    "exit 1 unless it answers 200.",
)
@fail_on_library_errors
def serve_command(
    roots: tuple[str, ...],
    db: str | None,
    host: str,
    port: int,
    open_browser: bool,
    get_path: str | None,
) -> None:
    """Review duplicate groups in a local web UI (marks, keeper, export).

    Every page has a JSON twin: add .json to its path (/groups.json, /groups/3.json).
    The UI binds 127.0.0.1 by default, needs no account and uses no external service.
    """
    from .errors import require

    require("starlette", extra="ui")
    require("uvicorn", extra="ui")
    from .ui.app import create_app

    store = resolve_store(db, roots)
    if get_path is not None:
        _get(create_app(store), get_path)
        return
    allowed = _allowed_hosts(host)
    if allowed is None:
        click.echo(
            f"Warning: serving on {host!r} lets anyone who can reach this port see your images "
            "and change marks; there is no login. Use the default 127.0.0.1 to stay local.",
            err=True,
        )
    _serve(create_app(store, allowed_hosts=allowed), store, host, port, open_browser)


def _allowed_hosts(host: str) -> list[str] | None:
    if host in LOOPBACK:
        return ["127.0.0.1", "localhost", "[::1]"]
    return None


def _get(app: Any, path: str) -> None:
    from .ui.client import asgi_get

    if not path.startswith("/"):
        raise click.UsageError(f"--get takes a path starting with '/', got {path!r}.")
    try:
        status, _, body = asgi_get(app, path)
    finally:
        app.state.review.close()
    sys.stdout.buffer.write(body)
    if not body.endswith(b"\n"):
        sys.stdout.buffer.write(b"\n")
    sys.stdout.flush()
    if status != 200:
        click.echo(f"Error: {path} answered {status}.", err=True)
        sys.exit(1)


def _serve(app: Any, store: Path, host: str, port: int, open_browser: bool) -> None:
    import socket
    import threading
    import time
    import webbrowser

    import uvicorn

    from .ui.app import listen_socket

    try:
        sock = listen_socket(host, port)  # listening before the URL is printed
    except OSError as exc:
        raise click.ClickException(
            f"Cannot listen on {host}:{port}: {exc.strerror or exc}. "
            "Pick another --port (0 = any free port)."
        ) from exc
    actual = sock.getsockname()[1]
    shown = f"[{host}]" if sock.family == socket.AF_INET6 else host
    url = f"http://{shown}:{actual}/"
    click.echo(url)
    click.echo(f"Reviewing {store}. Press Ctrl+C to stop.", err=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    if open_browser:

        def opener() -> None:
            while not server.started and not server.should_exit:
                time.sleep(0.05)
            if server.started:
                webbrowser.open(url)

        threading.Thread(target=opener, daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        app.state.review.close()


# -- export --------------------------------------------------------------------------------


@click.command("export")
@_store_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json", "txt"]),
    default=None,
    help="Format of the keep/remove list (default csv).",
)
@click.option(
    "--list",
    "which",
    type=click.Choice(["all", "keep", "remove"]),
    default=None,
    help="Which list: every file with its action (all), kept files, or removed files. "
    "Default: all for csv/json, remove for txt.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, allow_dash=True),
    default=None,
    help="Write the list to FILE ('-' = stdout, the default when no other action is asked).",
)
@click.option(
    "--copy-to",
    type=click.Path(file_okay=False),
    default=None,
    help="Write a clean copy of the kept files into DIR (outside the dataset); layout kept, "
    "one top folder per root when there are several.",
)
@click.option(
    "--mode",
    type=click.Choice(["copy", "hardlink", "symlink"]),
    default="copy",
    show_default=True,
    help="How --copy-to places files.",
)
@click.option(
    "--quarantine",
    type=click.Path(file_okay=False),
    default=None,
    help="Move removed files into DIR with a manifest; `lookalike undo MANIFEST` puts them back.",
)
@click.option(
    "--include-failed",
    is_flag=True,
    help="Also remove the files the scan could not read (corrupt, empty, not an image): "
    "--quarantine moves them and the remove list lists them.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Show what would be copied or moved (each file is checked on disk); touch nothing.",
)
@_json_result_option("what was done (or would be)")
@fail_on_library_errors
def export_command(
    roots: tuple[str, ...],
    db: str | None,
    fmt: str | None,
    which: str | None,
    out: str | None,
    copy_to: str | None,
    mode: str,
    quarantine: str | None,
    include_failed: bool,
    dry_run: bool,
    as_json: str | None,
) -> None:
    """Act on the review: keep/remove lists, a clean copy, or quarantine with undo.

    Removed = every group member that is not the keeper, not in a reference root and not
    marked keep, plus every file marked exclude (plus unreadable files with
    --include-failed). lookalike never deletes a file, and never moves the last copy of a
    picture: a group whose keeper is gone or changed since the scan is skipped.
    """
    from . import export as exporting
    from .store import Store

    store_path = resolve_store(db, roots)
    wants_list = (
        fmt is not None or which is not None or out is not None or not (copy_to or quarantine)
    )
    results = []
    with Store(store_path, readonly=True) as store:
        if wants_list:
            fmt = fmt or "csv"
            rows = exporting.list_rows(
                store, which or ("remove" if fmt == "txt" else "all"), include_failed=include_failed
            )
            _write_text(out or "-", exporting.format_rows(rows, fmt))
        if copy_to:
            moves = exporting.plan_copy(store, copy_to)
            copy_args = (moves, mode)
        if quarantine:
            q_moves = exporting.plan_quarantine(store, quarantine, include_failed=include_failed)
            context = exporting.manifest_context(store)
    if copy_to:
        results.append(exporting.run_copy(*copy_args, dry_run=dry_run))
    if quarantine:
        results.append(exporting.run_quarantine(q_moves, quarantine, context, dry_run=dry_run))
    as_json = _json_to_file(as_json, results)
    _report_results(results, as_json, to_stdout=not (wants_list and (out in (None, "-"))))


def _json_to_file(target: str | None, results: list[Any]) -> bool:
    """Write the results' JSON to ``--json FILE``; True when it goes to stdout instead
    (``--json -``, or the deprecated bare ``--json``)."""
    if target == _BARE_JSON:
        click.echo(
            "Note: a bare --json is deprecated: write --json - (stdout) or --json FILE.", err=True
        )
        return True
    if target is None or target == "-":
        return target == "-"
    if results:
        doc = [r.to_dict() for r in results]
        _write_text(target, json.dumps(doc[0] if len(doc) == 1 else doc, indent=2) + "\n")
    return False


def _write_text(target: str, text: str) -> None:
    data = text.encode("utf-8", "surrogateescape")
    if target == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_bytes(data)
    except OSError as exc:
        raise click.ClickException(f"Cannot write {target!r}: {exc.strerror or exc}") from exc


def _report_results(results: list[Any], as_json: bool, *, to_stdout: bool = True) -> None:
    if not results:
        return
    if as_json:
        doc = [r.to_dict() for r in results]
        click.echo(json.dumps(doc[0] if len(doc) == 1 else doc, indent=2), err=not to_stdout)
    else:
        for r in results:
            _human(r, to_stdout)
    failed = sum(len(r.failed) for r in results)
    if failed and all(r.dry_run for r in results):
        raise click.ClickException(
            f"{failed} file(s) would not be handled (listed above). Fix the causes (often: "
            "re-scan, the dataset changed since the scan) before the real run."
        )
    if failed:
        raise click.ClickException(
            f"{failed} file(s) were not handled (listed above); everything else was. "
            "Fix the causes (often: re-scan, the dataset changed since the scan) and run "
            "the same command again: finished files are skipped."
        )


_VERBS = {"quarantine": "quarantine", "undo": "restore", "copy": "copy"}
_QUIET = (  # skips not worth a line each
    "already there",
    "already in quarantine",
    "already in place",
    "already restored",
    "was never moved",
)


def _human(result: Any, to_stdout: bool) -> None:
    from .report import human_size

    def say(text: str) -> None:
        click.echo(text, err=not to_stdout)

    verb = _VERBS.get(result.action.split()[0], result.action)
    if result.dry_run:
        for m in result.planned:
            say(f"would {verb}: {m.source} -> {m.target}")
        for m, why in result.failed:
            click.echo(f"Would fail: {m.source}: {why}", err=True)
        for m, why in result.skipped:
            if why not in _QUIET:
                click.echo(f"Would skip: {m.source}: {why}", err=True)
        size = human_size(sum(m.size for m in result.planned))
        click.echo(
            f"Dry run: {result.action} of {len(result.planned)} file(s), {size}; "
            f"{len(result.skipped)} to skip, {len(result.failed)} refused; nothing was touched.",
            err=True,
        )
        return
    for m, why in result.failed:
        click.echo(f"Failed: {m.source}: {why}", err=True)
    for m, why in result.skipped:
        if why not in _QUIET:
            click.echo(f"Skipped: {m.source}: {why}", err=True)
    click.echo(
        f"{result.action}: {len(result.done)} done, {len(result.skipped)} skipped (already "
        f"done or gone), {len(result.failed)} failed.",
        err=True,
    )
    for note in result.notes:
        click.echo(note, err=True)
    if result.manifest:
        say(result.manifest)
        click.echo(f"Undo with: lookalike undo {result.manifest}", err=True)


# -- undo ----------------------------------------------------------------------------------


@click.command("undo")
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Show what would be put back; touch nothing.")
@_json_result_option("the result")
@fail_on_library_errors
def undo_command(manifest: str, dry_run: bool, as_json: str | None) -> None:
    """Put back the files a quarantine moved, using its MANIFEST.

    MANIFEST is the lookalike-manifest-<UTC time>.json file that `lookalike export
    --quarantine DIR` wrote into DIR (it prints the path). Never overwrites a file that
    reappeared at an original path, and restores a file only when its bytes still match
    the digest in the manifest. An undo that was interrupted is completed by running it
    again. The restored files return to the store the export came from.
    """
    from . import export as exporting

    results = [exporting.undo(manifest, dry_run=dry_run)]
    _report_results(results, _json_to_file(as_json, results))


# -- report --------------------------------------------------------------------------------


@click.command("report")
@_store_options
@click.option(
    "--html",
    "html_out",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder to write the gallery into (index.html + thumbs/).",
)
@click.option(
    "--thumb-size",
    type=click.Choice(["128", "256", "512"]),
    default="256",
    show_default=True,
    help="Thumbnail size in pixels.",
)
@click.option(
    "--limit",
    type=click.IntRange(1),
    default=None,
    help="Only the first N groups (largest reclaimable bytes first).",
)
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    help="No progress bars and no per-item listing (counts, warnings and errors still print).",
)
@fail_on_library_errors
def report_command(
    roots: tuple[str, ...],
    db: str | None,
    html_out: str,
    thumb_size: str,
    limit: int | None,
    quiet: bool,
) -> None:
    """Write a static, self-contained HTML gallery of the groups to share.

    The folder holds index.html, the thumbnails and report.json; it opens in any browser
    without lookalike, a server or a network.
    """
    from .html_report import write_report
    from .store import Store

    store_path = resolve_store(db, roots)
    with Store(store_path, readonly=True) as store:
        index = write_report(store, html_out, thumb_size=int(thumb_size), limit=limit)
    click.echo(str(index))
