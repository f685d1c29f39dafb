"""Progress bars on stderr for long steps (rich), shown only on a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_LABELS = {"discover": "Finding files", "extract": "Reading images", "match": "Matching"}

StageProgress = Callable[[str, int, "int | None"], "bool | None"]


@contextmanager
def progress_reporter(*, enabled: bool = True) -> Iterator[StageProgress | None]:
    """Yield a ``progress(stage, done, total)`` callback drawing bars, or ``None`` when quiet.

    Bars are drawn only when stderr is a terminal, so logs and pipes stay clean.
    """
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description:<15}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bars:
        tasks: dict[str, int] = {}

        def report(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(_LABELS.get(stage, stage), total=total)
            bars.update(tasks[stage], completed=done, total=total)

        yield report
