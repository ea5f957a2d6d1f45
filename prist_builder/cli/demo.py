"""``prist demo``: build the offline demo dataset end to end and show what came out."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from prist_builder.cli.build import DEFAULT_WORKERS, EmptyShareOpt, MultiShareOpt, execute
from prist_builder.cli.console import console, fail
from prist_builder.cli.inspect import load_stats, stats_table
from prist_builder.cli.openai_options import one_line
from prist_builder.demo import DemoDataError, materialise
from prist_builder.pipeline.manifest import BuildConfig
from prist_builder.records.steps import STEPS

PREVIEWS = 3
"""Dialogue previews (and their trees) the demo writes."""


def register_demo(app: typer.Typer) -> None:
    """Add ``demo`` to the app."""

    @app.command("demo")
    def demo(
        out: Annotated[Path, typer.Option("--out", help="Folder for photos, run and previews.")] = Path("demo_output"),
        seed: Annotated[int, typer.Option("--seed", help="Seed of the build.")] = 0,
        fresh: Annotated[bool, typer.Option("--fresh", help="Delete an earlier demo run first.")] = False,
        multi_share: MultiShareOpt = None,
        empty_share: EmptyShareOpt = None,
    ) -> None:
        """Build PRIST records from bundled real photos, offline (no API key, GPU or network)."""
        from prist_builder.preview import write_previews  # networkx, Pillow: only when the demo runs

        run = out / "run"
        if fresh and run.exists():
            shutil.rmtree(run)
        try:
            images, labelme = materialise(out)
        except DemoDataError as exc:
            raise fail(str(exc)) from None
        try:
            config = BuildConfig(
                provider="offline",
                seed=seed,
                images=str(images.resolve()),
                labelme=str(labelme.resolve()),
                workers=DEFAULT_WORKERS,
                multi_share=multi_share or 0.0,
                empty_share=empty_share or 0.0,
            )
        except ValidationError as exc:  # the shares add up to more than 1
            raise typer.BadParameter(one_line(exc)) from None
        execute(run, config, STEPS)
        console.print(stats_table(load_stats(run)))
        written = write_previews(run, out / "previews", PREVIEWS)
        console.print(
            f"records: [bold]{run}[/] (elements.jsonl, trees.jsonl, dialogues.jsonl, rejects.jsonl, manifest.json)",
            highlight=False,
        )
        for path in written:
            console.print(f"preview: {path}", highlight=False)
