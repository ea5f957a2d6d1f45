"""``prist review``: serve the review web app of a run, or write it as one static HTML file."""

from __future__ import annotations

import getpass
import socket
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from prist_builder.cli.console import console, fail

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8750
INSTALL_HINT = "the review app needs its extra: pip install 'prist[review]'"


def _default_reviewer() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "reviewer"


def _free_port(host: str) -> int:
    """A port free on ``host`` now (so the address printed is the one served)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def register_review(app: typer.Typer) -> None:
    """Add ``review`` to the app."""

    @app.command("review")
    def review(
        run: Annotated[Path, typer.Argument(help="Run folder.")],
        host: Annotated[
            str, typer.Option("--host", help="Address to bind; anything but loopback needs a token.")
        ] = DEFAULT_HOST,
        port: Annotated[int, typer.Option("--port", help="TCP port (0 picks a free one).")] = DEFAULT_PORT,
        reviewer: Annotated[
            str | None, typer.Option("--reviewer", help="Name written into each decision (default: the login name).")
        ] = None,
        token: Annotated[
            str | None,
            typer.Option(
                "--token",
                envvar="PRIST_REVIEW_TOKEN",
                show_envvar=True,
                help="Access token the page asks for (prefer the variable).",
            ),
        ] = None,
        report: Annotated[Path | None, typer.Option("--report", help="Write one static HTML file and exit.")] = None,
    ) -> None:
        """Check and correct a run's dialogues in the browser (accept, reject, edit) or export a static report."""
        try:
            from prist_builder.appendlog import LogLineError
            from prist_builder.review.index import RunIndex
        except ImportError as exc:
            raise fail(escape(f"{INSTALL_HINT} ({exc})")) from None
        if not (run / "dialogues.jsonl").exists():
            raise fail(escape(f"{run}: not a run folder (no dialogues.jsonl)"))
        name = (reviewer if reviewer is not None else _default_reviewer()).strip()
        if not name:
            raise fail("--reviewer must not be empty: every decision names its reviewer")
        if report is None:
            from prist_builder.review.security import BindRefused, check_bind

            try:
                check_bind(host, token)
            except BindRefused as exc:
                raise fail(escape(str(exc))) from None
        try:
            index = RunIndex.load(run)
        except LogLineError as exc:
            raise fail(escape(str(exc))) from None
        if report is not None:
            from prist_builder.review.report import build_report

            count = build_report(run, report, index=index)
            console.print(f"report: {report} ({count} samples)", highlight=False, markup=False)
            return
        import uvicorn

        from prist_builder.review.app import create_app

        port = port or _free_port(host)
        web = create_app(run, name, host=host, token=token, index=index)
        shown = f"[{host}]" if ":" in host else host
        kinds = index.kind_counts()
        mix = ""
        if kinds["multi"] or kinds["empty"]:
            mix = f" ({kinds['multi']} multi-target, {kinds['empty']} empty-target)"
        console.print(
            f"reviewing {len(index.samples)} samples{mix} of {run} as {name!r}; "
            f"decisions go to {run / 'reviews.jsonl'}",
            highlight=False,
            markup=False,
        )
        console.print(f"open http://{shown}:{port}/  (Ctrl+C stops)", highlight=False, markup=False)
        uvicorn.run(web, host=host, port=port, log_level="warning")
