"""The ``prist`` command line (Typer)."""

from __future__ import annotations

import typer

from prist_builder.cli.annotate import register_annotate
from prist_builder.cli.build import build_app
from prist_builder.cli.console import show_library_warnings
from prist_builder.cli.convert import register_convert
from prist_builder.cli.demo import register_demo
from prist_builder.cli.evaluate import register_evaluate
from prist_builder.cli.export import register_export
from prist_builder.cli.inspect import register_inspect
from prist_builder.cli.model import register_model
from prist_builder.cli.qa import register_qa
from prist_builder.cli.review import register_review

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
register_annotate(app)
register_qa(app)
register_review(app)
register_model(app)
register_evaluate(app)
register_export(app)
register_convert(app)


def main() -> None:
    """Console entry point of ``prist``."""
    show_library_warnings()
    app()
