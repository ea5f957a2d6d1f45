"""The ``prist`` command line (Typer)."""

from __future__ import annotations

import typer

from prist_builder.cli.build import build_app
from prist_builder.cli.inspect import register_inspect
from prist_builder.cli.demo import register_demo
from prist_builder.cli.export import register_export

app = typer.Typer(
    name="prist",
    help="Build pixel-level reasoning segmentation (PRIST) datasets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(build_app, name="build")
register_inspect(app)
register_demo(app)
register_export(app)


def main() -> None:
    """Console entry point of ``prist``."""
    app()
