"""Shared console output for the CLI: rich progress bars and one-line errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from prist_builder.pipeline.runner import Outcome, StepReport

console = Console()
errors = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr and return the exit to raise."""
    errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def step_progress() -> Iterator[Callable[[str, int], Callable[[Outcome], None]]]:
    """A progress hook for :func:`prist_builder.pipeline.build.build` drawing one bar per step."""
    columns = (
        TextColumn("[bold]{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rejected {task.fields[rejected]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=errors, transient=False) as progress:

        def hook(step: str, total: int) -> Callable[[Outcome], None]:
            task = progress.add_task(step, total=total, rejected=0)
            rejected = 0

            def advance(outcome: Outcome) -> None:
                nonlocal rejected
                rejected += 0 if outcome.records else 1
                progress.update(task, advance=1, rejected=rejected)

            return advance

        yield hook


def report_table(reports: list[StepReport]) -> Table:
    """A table of step reports: inputs processed now, built, rejected, already done, time."""
    table = Table(title="build summary", title_justify="left")
    for column in ("step", "built", "rejected", "already done", "records", "seconds"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for r in reports:
        table.add_row(r.step, str(r.built), str(r.rejected), str(r.skipped), str(r.records), f"{r.seconds:.2f}")
    return table
