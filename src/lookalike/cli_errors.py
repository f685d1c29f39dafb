"""How every ``lookalike`` command reports errors: one ``Error: ...`` line, exit code 1."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click

from .errors import LookalikeError


def fail_on_library_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors into ``Error: ...`` lines (exit 1) and Ctrl-C into exit 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LookalikeError as exc:
            raise click.ClickException(str(exc)) from exc
        except KeyboardInterrupt:
            click.echo(
                "Interrupted; finished work is kept in the store. Re-run to resume.", err=True
            )
            sys.exit(130)

    return wrapper
