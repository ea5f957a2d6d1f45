"""Shared console output for the CLI: rich progress bars and one-line errors."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:  # the pipeline (numpy, Pillow, the annotation readers) loads only when a build runs
    from prist_builder.pipeline.runner import Outcome, StepReport


console = Console()
errors = Console(stderr=True)
_status_listeners: list[Callable[[str], None]] = []


class _ConsoleLines(logging.Handler):
    """Shows the library's warnings (a long rate-limit wait, an unpriced model) on stderr the
    moment they happen, above any progress bar, and in the bars' status column."""

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        errors.print(f"[yellow]{escape(text)}[/]", highlight=False, soft_wrap=True)
        for listener in list(_status_listeners):
            listener(text)


def show_library_warnings() -> None:
    """Route ``prist_builder``'s WARNING log lines to the console (idempotent)."""
    logger = logging.getLogger("prist_builder")
    if not any(isinstance(h, _ConsoleLines) for h in logger.handlers):
        logger.addHandler(_ConsoleLines(level=logging.WARNING))
        logger.setLevel(logging.WARNING)
        logger.propagate = False


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr and return the exit to raise."""
    errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def step_progress() -> Iterator[Callable[[str, int], Callable[[Outcome], None]]]:
    """A progress hook for :func:`prist_builder.pipeline.build.build` drawing one bar per step."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[bold]{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rejected {task.fields[rejected]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("[yellow]{task.fields[status]}"),
    )
    with Progress(*columns, console=errors, transient=False) as progress:

        def show_status(text: str) -> None:
            for task in progress.tasks:
                if not task.finished:
                    progress.update(task.id, status=text)

        _status_listeners.append(show_status)

        def hook(step: str, total: int) -> Callable[[Outcome], None]:
            task = progress.add_task(step, total=total, rejected=0, status="")
            rejected = 0

            def advance(outcome: Outcome) -> None:
                nonlocal rejected
                rejected += 0 if outcome.records else 1
                progress.update(task, advance=1, rejected=rejected, status="")

            return advance

        try:
            yield hook
        finally:
            _status_listeners.remove(show_status)


def report_table(reports: list[StepReport]) -> Table:
    """A table of step reports: inputs processed now, built, rejected, already done, time."""
    table = Table(title="build summary", title_justify="left")
    for column in ("step", "built", "rejected", "already done", "records", "seconds"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for r in reports:
        table.add_row(r.step, str(r.built), str(r.rejected), str(r.skipped), str(r.records), f"{r.seconds:.2f}")
    return table
