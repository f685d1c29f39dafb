"""``lookalike objects``: duplicate and conflicting boxes in COCO, YOLO or VOC annotations.

A thin shell over :mod:`lookalike.annotations`. The human summary goes to stdout (or to
stderr when ``--json -`` sends the report to stdout); every problem goes to stderr, one
per line (``-q`` leaves them to the summary counts and ``--json``).

Exit codes: 0 success (whether or not duplicates or problems were found); 1 a fatal
error, printed as ``Error: ...``; 2 a usage error.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from .annotations import (
    DEFAULT_AREA_RATIO,
    DEFAULT_CONTAINMENT,
    DEFAULT_IOU,
    Dataset,
    decision_log,
    find_duplicate_boxes,
    load_annotations,
    objects_report,
    plan_cleanup,
    validate,
    write_cleaned,
)
from .annotations.export import log_to_csv
from .annotations.records import KEEP_RULES, CleanupPlan, WriteResult
from .annotations.report import problem_lines, summary_lines, write_lines
from .errors import LookalikeError

_UNIT = click.FloatRange(0.0, 1.0, min_open=True)


@click.command(
    "objects",
    help="Find duplicate boxes and label conflicts within images of a COCO, YOLO or VOC "
    "annotation set, validate it, and write a cleaned copy (dry run by default).",
)
@click.argument("annotations", type=click.Path(path_type=Path))
@click.option(
    "--images",
    "images_dir",
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="Folder holding the images, if not where the format usually has them.",
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
@click.option("-q", "--quiet", is_flag=True, help="Do not list problems one by one.")
def objects_command(
    annotations: Path,
    images_dir: Path | None,
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
    quiet: bool,
) -> None:
    """Run load -> validate -> find -> plan -> (write) and print the results."""
    if not dry_run and out_dir is None and not in_place:
        raise click.UsageError("--write needs --out DIR, or --in-place to rewrite the input.")
    to_stdout = json_path == "-"
    try:
        dataset = load_annotations(annotations, images_dir=images_dir, format=format_)
        problems = validate(dataset)
        pairs = find_duplicate_boxes(
            dataset, iou=iou, containment=containment, area_ratio=area_ratio
        )
        plan = plan_cleanup(dataset, pairs, keep=keep)  # type: ignore[arg-type]
        report = objects_report(dataset, problems, pairs, plan)
        result = _write(dataset, plan, out_dir, dry_run=dry_run, in_place=in_place)
    except LookalikeError as exc:
        raise click.ClickException(str(exc)) from exc
    if not quiet:
        for line in problem_lines(problems, per_kind=None):
            click.echo(line, err=True)
    _save(json_path, json.dumps(report, indent=2))
    _save(csv_path, log_to_csv(decision_log(plan)))
    lines = summary_lines(report) + (write_lines(result) if result is not None else [])
    for line in lines:
        click.echo(line, err=to_stdout)


def _write(
    dataset: Dataset, plan: CleanupPlan, out_dir: Path | None, *, dry_run: bool, in_place: bool
) -> WriteResult | None:
    """Write (or dry-run) the cleaned annotations when --out or --in-place is given."""
    if out_dir is None and not in_place:
        return None
    target = out_dir if out_dir is not None else dataset.raw.root
    try:
        return write_cleaned(dataset, plan, target, dry_run=dry_run, overwrite=in_place)
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
