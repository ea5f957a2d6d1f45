"""``prist stats`` and ``prist schema``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from prist_builder.cli.console import console, fail
from prist_builder.pipeline.store import read_records, run_bounds
from prist_builder.records import SCHEMAS, DialogueRecord, ElementsRecord

if TYPE_CHECKING:  # the figures (numpy, pycocotools, Pillow) load when a command computes them
    from prist_builder.stats import DatasetStats

REFERENCE_FILES = ("reference.md", "reference.json", "reference.png")
"""What ``prist stats RUN --reference FILE`` writes into ``--out``."""


def load_stats(run: Path) -> DatasetStats:
    """Table 2 statistics of a run folder (reads without taking the run's lock).

    Raises:
        FileNotFoundError: ``run`` has no ``dialogues.jsonl``.
    """
    from prist_builder.stats import compute_stats

    path = run / "dialogues.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file; build the dialogues first")

    bounds = run_bounds(run)
    elements = read_records(run / "elements.jsonl", ElementsRecord)
    return compute_stats(read_records(path, DialogueRecord, bounds), elements)


def stats_table(stats: DatasetStats) -> Table:
    """Table 2 layout."""
    table = Table(title="PRIST statistics (Table 2 layout)", title_justify="left")
    table.add_column("statistic")
    table.add_column("value", justify="right")
    table.add_row("Total images", f"{stats.images:,}")
    table.add_row("Total samples", f"{stats.samples:,}")
    if stats.multi or stats.empty:  # only when the build asked for them: the paper's table otherwise
        table.add_row("Total targets", f"{stats.targets:,}")
        table.add_row(
            "Samples single : multi : empty", f"{stats.single:.0f}% : {stats.multi:.0f}% : {stats.empty:.0f}%"
        )
    split = f"{stats.coarse:.0f}% : {stats.medium:.0f}% : {stats.fine:.0f}%"
    table.add_row("Granularity (coarse : medium : fine)", split)
    if stats.unmasked:
        table.add_row("Samples without a mask yet", f"{stats.unmasked:,}")
    table.add_row("Number of utterances", f"{stats.utterances:,}")
    table.add_row("Avg. / max. turns", f"{stats.avg_turns:.1f} / {stats.max_turns}")
    table.add_row("Avg. / max. dialogue length (chars)", f"{stats.avg_length:.1f} / {stats.max_length}")
    return table


def register_inspect(app: typer.Typer) -> None:
    """Add ``stats`` and ``schema`` to the app."""

    @app.command("stats")
    def stats(
        run: Annotated[Path, typer.Argument(help="Run folder.")],
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
        reference: Annotated[
            Path | None,
            typer.Option("--reference", help="Compare with PRIST: the authors' JSON split or another run folder."),
        ] = None,
        out: Annotated[
            Path | None, typer.Option("--out", help="Folder for reference.md/.json/.png (default RUN/stats).")
        ] = None,
        seed: Annotated[int, typer.Option("--seed", help="Seed of the diversity samples.")] = 0,
    ) -> None:
        """Print the paper's Table 2 for a run, or compare it with a reference (--reference)."""
        try:
            figures = load_stats(run)
        except FileNotFoundError as exc:
            raise fail(str(exc)) from None
        if reference is not None:
            compare_with(run, reference, out or run / "stats", seed, as_json)
            return
        if as_json:
            typer.echo(json.dumps(figures.as_dict(), indent=2))
        else:
            console.print(stats_table(figures))

    def compare_with(run: Path, reference: Path, out: Path, seed: int, as_json: bool) -> None:
        from prist_builder.stats_reference import compare, load
        from prist_builder.stats_report import markdown, rich_table, write_json, write_plot

        if not reference.exists():
            raise fail(f"{reference}: no such file or folder")
        try:
            ours, theirs = compare(load(run), load(reference), seed)
        except ValueError as exc:
            raise fail(str(exc)) from None
        names = (run.name or str(run), reference.name or str(reference))
        out.mkdir(parents=True, exist_ok=True)
        (out / REFERENCE_FILES[0]).write_text(markdown(ours, theirs, *names), encoding="utf-8")
        write_json(out / REFERENCE_FILES[1], ours, theirs, *names)
        write_plot(out / REFERENCE_FILES[2], ours, theirs, *names)
        if as_json:
            typer.echo((out / REFERENCE_FILES[1]).read_text(encoding="utf-8"), nl=False)
            return
        console.print(rich_table(ours, theirs, *names))
        console.print(f"wrote {', '.join(str(out / f) for f in REFERENCE_FILES)}", highlight=False)

    @app.command("schema")
    def schema(step: Annotated[str, typer.Argument(help=f"One of: {', '.join(SCHEMAS)}.")]) -> None:
        """Print the JSON Schema of a step's records."""
        aliases = {"tree": "trees", "dialogue": "dialogues", "reject": "rejects", "element": "elements"}
        name = aliases.get(step, step)
        if name not in SCHEMAS:
            raise fail(f"unknown step {step!r}; choose one of {', '.join(SCHEMAS)}", 2)
        typer.echo(json.dumps(SCHEMAS[name].model_json_schema(), indent=2))
