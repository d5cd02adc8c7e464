"""Progress for the CLI's long steps: one live line per stage with its elapsed time.

rich draws the line only when stderr is a terminal; piped into a file, a CI log or a test's
capture, nothing is drawn and the log lines (which say when each stage starts and ends)
are the whole record. mlgates never imports this: progress is the reference system's
command line, not the plugin's.

Log lines and the live line share stderr: :func:`stderr_log_handler` writes each record to
the *current* ``sys.stderr``, which rich replaces with a proxy while a line is live, so a
log line prints above the progress line instead of through it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


@functools.cache
def console() -> Console:
    """The one stderr console of this process (rich decides whether it is a terminal)."""
    from rich.console import Console

    return Console(stderr=True)


@contextlib.contextmanager
def stage(description: str) -> Iterator[None]:
    """A spinner, ``description`` and the elapsed time while the block runs (terminal only).

    The line stays after the block, so a terminal keeps one line per stage with its time.
    """
    out = console()
    if not out.is_terminal:
        yield
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(finished_text="done"), TextColumn("{task.description}"))
    with Progress(*columns, TimeElapsedColumn(), console=out) as progress:
        task = progress.add_task(description, total=1)
        yield
        progress.update(task, completed=1)


class _CurrentStderrHandler(logging.StreamHandler):
    """A stream handler whose stream is whatever ``sys.stderr`` is when a record is written."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        # StreamHandler.__init__ assigns the stream; this handler always follows sys.stderr
        pass


def stderr_log_handler(fmt: str, datefmt: str) -> logging.Handler:
    handler = _CurrentStderrHandler()
    handler.setFormatter(logging.Formatter(fmt, datefmt=datefmt))
    return handler
