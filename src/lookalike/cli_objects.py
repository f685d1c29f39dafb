"""``lookalike objects``: duplicate and conflicting boxes in COCO, YOLO or VOC annotations.

A thin shell over :func:`lookalike.objects.find_object_duplicates`: the within-image checks
of :mod:`lookalike.annotations`, then (unless ``--no-cross-image``) a scan of the images
folder into the store, conflicts between near-duplicate images and repeated objects
across images; every finding is written to the store for the review UI. The human summary
goes to stdout (or to stderr when ``--json -`` sends the report to stdout), then a table of
the findings (image, boxes, kind; the first 20 unless ``--all``); every problem goes to
stderr, one per line (``-q`` leaves them to the summary counts and ``--json``). With
``--out``/``--in-place`` the review decisions recorded in the store (the review UI's
Objects page) are applied to the cleaned copy.

Exit codes: 0 success (whether or not duplicates or problems were found); 1 a fatal
error, printed as ``Error: ...``; 2 a usage error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .annotations import (
    DEFAULT_AREA_RATIO,
    DEFAULT_CONTAINMENT,
    DEFAULT_IOU,
    Dataset,
    decision_log,
    write_cleaned,
)
from .annotations.decisions import Relabel, apply_decisions
from .annotations.export import log_to_csv
from .annotations.records import KEEP_RULES, CleanupPlan, WriteResult
from .annotations.report import (
    FINDINGS_SHOWN,
    finding_rows,
    findings_line,
    findings_table,
    problem_lines,
    summary_lines,
    write_lines,
)
from .errors import LookalikeError
from .store import Store

if TYPE_CHECKING:
    from .objects import ObjectsResult

_UNIT = click.FloatRange(0.0, 1.0, min_open=True)


@click.command(
    "objects",
    help="Find duplicate boxes and label conflicts within images of a COCO, YOLO or VOC "
    "annotation set, conflicting boxes between near-duplicate images and objects repeated "
    "across images; validate it, store the findings for the review UI, and write a cleaned "
    "copy (dry run by default).",
)
@click.argument("annotations", type=click.Path(path_type=Path))
@click.option(
    "--images",
    "images_dir",
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="Folder holding the images, if not where the format usually has them. The "
    "cross-image checks scan it.",
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PATH",
    help="SQLite store for the image scan and the findings (default: the store 'lookalike "
    "scan' uses for the images folder, or $LOOKALIKE_DB). A store whose last scan covers a "
    "parent folder is read, not rescanned.",
)
@click.option(
    "--cross-image/--no-cross-image",
    "cross_image",
    default=True,
    show_default=True,
    help="Also scan the images for near-duplicates, compare their annotations and find "
    "objects repeated across images. Without it, the store is written only with --db.",
)
@click.option(
    "--min-box",
    "min_box_px",
    type=click.IntRange(8),
    default=32,
    show_default=True,
    help="Boxes with a shorter side (pixels) are left out of the repeated-object search.",
)
@click.option(
    "--format",
    "format_",
    type=click.Choice(["auto", "coco", "yolo", "voc"]),
    default="auto",
    show_default=True,
    help="Annotation format.",
)
@click.option(
    "--iou",
    type=_UNIT,
    default=DEFAULT_IOU,
    show_default=True,
    help="Minimum IoU for two boxes to be the same object.",
)
@click.option(
    "--containment",
    type=_UNIT,
    default=DEFAULT_CONTAINMENT,
    show_default=True,
    help="Near-containment rule: minimum intersection / smaller box area.",
)
@click.option(
    "--area-ratio",
    type=_UNIT,
    default=DEFAULT_AREA_RATIO,
    show_default=True,
    help="Near-containment rule: minimum smaller / larger box area.",
)
@click.option(
    "--keep",
    type=click.Choice(KEEP_RULES),
    default="first",
    show_default=True,
    help="Which box of a duplicate set to keep.",
)
@click.option(
    "--json", "json_path", metavar="FILE", help="Write the full report as JSON ('-' for stdout)."
)
@click.option(
    "--csv",
    "csv_path",
    metavar="FILE",
    help="Write the decision log (removed boxes, conflicts to review) as CSV.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Folder for the cleaned annotations and decision log.",
)
@click.option(
    "--dry-run/--write",
    "dry_run",
    default=True,
    show_default=True,
    help="Only report what would be written, or write it.",
)
@click.option(
    "--in-place",
    is_flag=True,
    help="Rewrite changed input files in place, backing each up to <name>.bak.",
)
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help=f"List every finding (default: the first {FINDINGS_SHOWN}; --json has them all).",
)
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    help="No progress bars and no per-item listing (counts, warnings and errors still print).",
)
def objects_command(
    annotations: Path,
    images_dir: Path | None,
    db: Path | None,
    cross_image: bool,
    min_box_px: int,
    format_: str,
    iou: float,
    containment: float,
    area_ratio: float,
    keep: str,
    json_path: str | None,
    csv_path: str | None,
    out_dir: Path | None,
    dry_run: bool,
    in_place: bool,
    show_all: bool,
    quiet: bool,
) -> None:
    """Run the checks, store the findings, (write the cleaned copy) and print the results."""
    from .objects import ObjectSettings, find_object_duplicates
    from .progress import progress_reporter

    if not dry_run and out_dir is None and not in_place:
        raise click.UsageError("--write needs --out DIR, or --in-place to rewrite the input.")
    to_stdout = json_path == "-"
    settings = ObjectSettings(
        iou=iou, containment=containment, area_ratio=area_ratio, keep=keep,  # type: ignore[arg-type]
        min_box_px=min_box_px,
    )  # fmt: skip
    try:
        with progress_reporter(enabled=not quiet) as progress:
            result = find_object_duplicates(
                annotations, images_dir=images_dir, format=format_, db=db,
                cross_image=cross_image, settings=settings, progress=progress,
            )  # fmt: skip
        report = result.to_dict()
        plan, relabels, decided = _reviewed(result, annotations, out_dir is not None or in_place)
        written = _write(
            result.dataset, plan, relabels, out_dir, dry_run=dry_run, in_place=in_place
        )
    except LookalikeError as exc:
        raise click.ClickException(str(exc)) from exc
    if not quiet:
        for line in problem_lines(result.problems, per_kind=None):
            click.echo(line, err=True)
    if json_path is not None:
        _save(json_path, json.dumps(report, indent=2))
    if csv_path is not None:
        _save(csv_path, log_to_csv(decision_log(plan, relabels)))
    lines = summary_lines(report) + [findings_line(report)]
    if result.store is not None:
        lines.append(f"store: {result.store}")
    names = {key: entry.name or str(key) for key, entry in result.dataset.images.items()}
    rows = finding_rows(report, lambda key: names.get(key, key))
    lines += findings_table(rows, limit=None if show_all else FINDINGS_SHOWN)
    lines += [decided] if decided else []
    lines += write_lines(written) if written is not None else []
    for line in lines:
        click.echo(line, err=to_stdout)


def _reviewed(
    result: ObjectsResult, annotations: Path, writing: bool
) -> tuple[CleanupPlan, tuple[Relabel, ...], str]:
    """The plan and relabels after the store's review decisions, and a line saying so."""
    from .objects import stored_decisions

    if not writing or result.store is None:
        return result.plan, (), ""
    with Store(result.store) as store:
        decisions = stored_decisions(store, annotations)
    if not decisions:
        return result.plan, (), ""
    plan, relabels = apply_decisions(result.dataset, result.pairs, result.plan, decisions)
    accepted = sum(d == "accept" for d in decisions.removals.values())
    line = (
        f"review decisions from {result.store}: {accepted} removals accepted, "
        f"{len(decisions.removals) - accepted} rejected, {len(relabels)} boxes relabelled"
    )
    return plan, relabels, line


def _write(
    dataset: Dataset,
    plan: CleanupPlan,
    relabels: tuple[Relabel, ...],
    out_dir: Path | None,
    *,
    dry_run: bool,
    in_place: bool,
) -> WriteResult | None:
    """Write (or dry-run) the cleaned annotations when --out or --in-place is given."""
    if out_dir is None and not in_place:
        return None
    target = out_dir if out_dir is not None else dataset.raw.root
    try:
        return write_cleaned(
            dataset, plan, target, dry_run=dry_run, overwrite=in_place, relabels=relabels
        )
    except OSError as exc:
        where = f" '{exc.filename}'" if exc.filename else ""
        raise click.ClickException(
            f"Cannot write{where}: {exc.strerror or exc}. Check the output folder and its "
            "permissions; input files are only replaced after a complete new copy exists."
        ) from exc


def _save(target: str | None, text: str) -> None:
    """Write ``text`` to the file ``target`` ('-' is stdout); nothing when None."""
    if target is None:
        return
    if target == "-":
        click.echo(text, nl=not text.endswith("\n"))
        return
    path = Path(target)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"Cannot write '{target}': {exc.strerror or exc}.") from exc
