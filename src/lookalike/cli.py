"""The ``lookalike`` command line: a thin shell over the library.

Exit codes: 0 success (whether or not duplicates were found); 1 a fatal error, printed as
``Error: ...`` on stderr; 2 a usage error (bad flag or value); 3 the scan completed but some
files failed and ``--strict`` was given.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from . import __version__
from .cli_errors import fail_on_library_errors

EXIT_FAILURES = 3


def scan_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by every command that runs a scan."""
    options = [
        click.option(
            "--db",
            type=click.Path(dir_okay=False),
            help="SQLite store (default: a file under ~/.cache/lookalike/stores, or $LOOKALIKE_DB).",
        ),
        click.option(
            "--include",
            multiple=True,
            metavar="GLOB",
            help="Only scan paths matching GLOB (relative to the root; repeatable).",
        ),
        click.option(
            "--exclude",
            multiple=True,
            metavar="GLOB",
            help="Skip paths matching GLOB (repeatable).",
        ),
        click.option("--include-hidden", is_flag=True, help="Scan hidden files and folders too."),
        click.option(
            "--follow-symlinks", is_flag=True, help="Follow symbolic links (loops are detected)."
        ),
        click.option(
            "--reference",
            multiple=True,
            type=click.Path(file_okay=False),
            metavar="ROOT",
            help="A root whose files are always preferred as keepers and never proposed for removal (repeatable).",
        ),
        click.option(
            "--keeper-rule",
            "keeper_rules",
            multiple=True,
            type=click.Choice(["pixels", "richness", "lossless", "size", "shortest-path"]),
            help="Keeper policy, in order (repeatable). Default: pixels, richness, lossless, size, shortest-path.",
        ),
        click.option(
            "--min-score",
            type=click.FloatRange(0.0, 1.0),
            default=None,
            help="Similarity a near-duplicate needs, in [0, 1] (default: the preset's, 0.8 for balanced). Lower finds more, higher is stricter.",
        ),
        click.option(
            "--preset",
            type=click.Choice(["strict", "balanced", "loose"]),
            default="balanced",
            show_default=True,
            help="Precision/recall trade-off (min score and geometry limits; measured in docs/quality.md).",
        ),
        click.option(
            "--no-mirror", is_flag=True, help="Do not report mirror images (relation 'mirror')."
        ),
        click.option(
            "--no-geometry",
            is_flag=True,
            help="Do not look for crops and rotations: whole-picture duplicates only (faster).",
        ),
        click.option(
            "--model",
            type=click.Path(dir_okay=False),
            default=None,
            metavar="PATH.onnx",
            help="ONNX model whose embeddings propose extra candidates (needs the embeddings extra). Names are not downloaded.",
        ),
        click.option(
            "--model-input-size",
            type=click.IntRange(8),
            default=224,
            show_default=True,
            help="Side of the square input the model expects.",
        ),
        click.option(
            "--model-mean",
            default="0.485,0.456,0.406",
            show_default=True,
            metavar="R,G,B",
            help="Per-channel mean subtracted from [0, 1] pixels.",
        ),
        click.option(
            "--model-std",
            default="0.229,0.224,0.225",
            show_default=True,
            metavar="R,G,B",
            help="Per-channel standard deviation pixels are divided by.",
        ),
        click.option(
            "--model-channels",
            type=click.Choice(["rgb", "bgr"]),
            default="rgb",
            show_default=True,
            help="Channel order of the model's input.",
        ),
        click.option(
            "--embeddings",
            "embeddings_file",
            type=click.Path(dir_okay=False),
            default=None,
            metavar="FILE",
            help="Precomputed embeddings: FILE.npy with FILE.npy.paths.txt (one path per row), or FILE.npz with arrays paths and embeddings.",
        ),
        click.option(
            "--max-pixels",
            type=click.IntRange(1),
            default=None,
            help="Refuse images with more pixels than this (decompression bombs).",
        ),
        click.option(
            "--engine",
            type=click.Choice(["local", "threads", "processes", "serial", "dask"]),
            default="local",
            show_default=True,
            help="Where decoding runs: local = threads below 2,000 files to decode, a process pool from there ('dask' needs the dask extra).",
        ),
        click.option(
            "--workers",
            type=click.IntRange(1),
            default=None,
            help="Parallel workers (default: usable CPUs); with --engine dask, the processes of a local cluster.",
        ),
        click.option(
            "--scheduler",
            metavar="ADDRESS",
            default=None,
            help="Dask scheduler to run on, e.g. tcp://HOST:8786 (with --engine dask; default: a local cluster).",
        ),
        click.option(
            "-q",
            "--quiet",
            is_flag=True,
            help="No progress bars and no per-item listing (counts, warnings and errors "
            "still print).",
        ),
        click.option(
            "--wait",
            is_flag=True,
            help="When another scan is using the store, wait for it to finish (default: stop with exit code 1).",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _settings(kw: dict[str, Any]) -> Any:
    from dataclasses import replace

    from .discovery import DiscoveryOptions
    from .matching import preset_settings
    from .pipeline import ScanSettings

    settings = ScanSettings(
        discovery=DiscoveryOptions(
            include=tuple(kw["include"]),
            exclude=tuple(kw["exclude"]),
            include_hidden=kw["include_hidden"],
            follow_symlinks=kw["follow_symlinks"],
        ),
        reference_roots=tuple(kw["reference"]),
    )
    if kw["keeper_rules"]:
        settings = replace(settings, keeper_rules=tuple(kw["keeper_rules"]))
    if kw["max_pixels"] is not None:
        settings = replace(settings, max_pixels=kw["max_pixels"])
    settings = replace(
        settings,
        match=preset_settings(
            kw["preset"],
            mirror=not kw["no_mirror"],
            geometric=not kw["no_geometry"],
            min_score=kw["min_score"],
        ),
    )
    if kw["model"] or kw["embeddings_file"]:
        settings = replace(settings, embeddings=_embedding_settings(kw))
    return settings


def _embedding_settings(kw: dict[str, Any]) -> Any:
    from .embeddings import EmbeddingSettings, ModelSpec

    model = None
    if kw["model"]:
        model = ModelSpec(
            path=kw["model"],
            input_size=kw["model_input_size"],
            mean=_triple(kw["model_mean"], "--model-mean"),
            std=_triple(kw["model_std"], "--model-std"),
            channels=kw["model_channels"],
        )
    return EmbeddingSettings(model=model, file=kw["embeddings_file"])


def _triple(text: str, flag: str) -> tuple[float, float, float]:
    try:
        a, b, c = (float(x) for x in text.split(","))
    except ValueError:
        raise click.BadParameter(
            f"expected three numbers like 0.5,0.5,0.5, got {text!r}", param_hint=flag
        ) from None
    return (a, b, c)


def _run_scan(roots: list[str], kw: dict[str, Any]) -> Any:
    from .errors import StoreBusyError
    from .pipeline import scan
    from .progress import progress_reporter

    settings = _settings(kw)
    with progress_reporter(enabled=not kw["quiet"]) as progress:

        def run(wait: bool) -> Any:
            return scan(roots, db=kw["db"], settings=settings, engine=kw["engine"],
                        workers=kw["workers"], scheduler=kw["scheduler"], progress=progress,
                        wait=wait)  # fmt: skip

        try:
            result = run(wait=False)
        except StoreBusyError as exc:
            if not kw["wait"]:
                raise
            holder = f" (pid {exc.pid})" if exc.pid is not None else ""
            click.echo(
                f"Waiting for another lookalike scan{holder} to finish with {exc.path} ...",
                err=True,
            )
            result = run(wait=True)
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)
    return result


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lookalike")
def main() -> None:
    """Find exact and near-duplicate images and duplicate objects; review and remove them safely."""


@main.command()
@click.argument("roots", nargs=-1, type=click.Path(file_okay=False))
@scan_options
@click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write the full result as JSON (schema in the README); '-' for stdout.",
)
@click.option(
    "--csv",
    "csv_out",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write one row per grouped file (keep/remove) as CSV; '-' for stdout.",
)
@click.option("--strict", is_flag=True, help="Exit with code 3 when some files could not be read.")
@fail_on_library_errors
def scan(
    roots: tuple[str, ...], json_out: str | None, csv_out: str | None, strict: bool, **kw: Any
) -> None:
    """Scan ROOT folders for duplicate images (several roots = several datasets).

    With no ROOT, scans a small generated sample so you can see what lookalike does.
    """
    from . import report

    if not roots:
        roots = (_sample_root(),)
        click.echo(f"No folder given: scanning a generated sample in {roots[0]}", err=True)
    result = _run_scan(list(roots), kw)
    if json_out:
        _write(json_out, report.to_json(result))
    if csv_out:
        _write(csv_out, report.to_csv(result.groups))
    if json_out != "-" and csv_out != "-":
        click.echo(report.summary_text(result, list_failures=strict or not kw["quiet"]))
    if strict and result.failures:
        sys.exit(EXIT_FAILURES)


@main.command("eval")
@click.argument("roots", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option(
    "--truth",
    required=True,
    type=click.Path(dir_okay=False),
    help="Ground truth in the truth.json format.",
)
@click.option(
    "--exclude-transform",
    "exclude_transforms",
    multiple=True,
    metavar="NAME",
    help="Leave out variants made with this transform (repeatable), e.g. crop, rotate, hflip.",
)
@click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write the scores as JSON to FILE; '-' for stdout.",
)
@scan_options
@fail_on_library_errors
def evaluate_command(
    roots: tuple[str, ...],
    truth: str,
    exclude_transforms: tuple[str, ...],
    json_out: str | None,
    **kw: Any,
) -> None:
    """Scan ROOTS and score the groups against ground truth (precision, recall, F1)."""
    from .evaluation import evaluate, format_evaluation, load_truth, scanned_files

    truth_data = load_truth(truth)
    result = _run_scan(list(roots), kw)
    scores = evaluate(
        result.groups,
        truth_data,
        exclude_transforms=exclude_transforms,
        scanned=scanned_files(result.store_path),
    )
    if json_out:
        _write(json_out, json.dumps(scores, indent=2))
    if json_out != "-":
        click.echo(format_evaluation(scores))


def _write(target: str, text: str) -> None:
    if target == "-":
        click.echo(text)
        return
    try:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_text(
            text + ("" if text.endswith("\n") else "\n"), encoding="utf-8", errors="surrogateescape"
        )
    except OSError as exc:
        raise click.ClickException(f"Cannot write {target!r}: {exc.strerror or exc}") from exc


def _sample_root() -> str:
    from .testing import write_dataset

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    root = cache / "lookalike" / "sample"
    if not (root / "truth.json").exists():
        truth = write_dataset(root / "images", rng=7)
        truth.to_json(root / "truth.json")
    return str(root / "images")


def _register_subcommands() -> None:
    """Add the commands that live in their own modules (objects, review and export).

    Their heavy dependencies (the web stack) are imported only when a command runs.
    """
    from .cli_objects import objects_command
    from .cli_review import export_command, report_command, serve_command, undo_command

    main.add_command(objects_command, "objects")
    for command in (serve_command, export_command, undo_command, report_command):
        main.add_command(command)


_register_subcommands()
