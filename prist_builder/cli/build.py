"""``prist build elements|trees|dialogues|all``."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from prist_builder.annotation.regions import AnnotationError
from prist_builder.cli.console import console, fail, report_table, step_progress
from prist_builder.cli.openai_options import OpenAIOpts, openai_provider, print_dry_run, with_openai_options
from prist_builder.pipeline.build import BuildResult, build
from prist_builder.pipeline.manifest import BuildConfig, ConfigMismatchError, read_manifest
from prist_builder.pipeline.store import RunLockedError
from prist_builder.providers import PROVIDERS, FatalProviderError, Provider, get_provider
from prist_builder.providers.base import UnsupportedSettingError
from prist_builder.records.limits import MAX_TURNS, MIN_TURNS

build_app = typer.Typer(help="Run pipeline steps into a run folder (resumable).", no_args_is_help=True)

RunOpt = Annotated[Path, typer.Option("--run", help="Run folder: records, rejects and manifest go here.")]
ImagesOpt = Annotated[Optional[Path], typer.Option("--images", help="Folder of images.", file_okay=False)]
LabelmeOpt = Annotated[Optional[Path], typer.Option("--labelme", help="Folder of Labelme JSON files.", file_okay=False)]
CocoOpt = Annotated[Optional[Path], typer.Option("--coco", help="COCO instances JSON file.", dir_okay=False)]
ProviderOpt = Annotated[str, typer.Option("--provider", help=f"Who writes the content: {', '.join(PROVIDERS)}.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of every random choice.")]
LimitOpt = Annotated[Optional[int], typer.Option("--limit", min=1, help="Build at most N images (first by id).")]
MinTurnsOpt = Annotated[int, typer.Option("--min-turns", min=1, help="Fewest turns per dialogue.")]
MaxTurnsOpt = Annotated[int, typer.Option("--max-turns", min=1, help="Most turns per dialogue.")]
WorkersOpt = Annotated[int, typer.Option("--workers", min=1, help="Processes for step 1 of CPU-bound providers.")]
DEFAULT_WORKERS = max(1, min(os.cpu_count() or 1, 8))
FsyncOpt = Annotated[bool, typer.Option("--fsync/--no-fsync", help="fsync run files (--no-fsync: faster, still safe against kill -9).")]


def _source_config(images: Path | None, labelme: Path | None, coco: Path | None, provider: str, seed: int,
                   limit: int | None, min_turns: int, max_turns: int, workers: int = 1,
                   provider_options: dict[str, Any] | None = None) -> BuildConfig:
    if labelme is not None and coco is not None:
        raise typer.BadParameter("give --labelme or --coco, not both")
    if images is None and labelme is None and coco is None:
        raise typer.BadParameter("give --images, --labelme or --coco")
    if min_turns > max_turns:
        raise typer.BadParameter(f"--min-turns {min_turns} is above --max-turns {max_turns}")
    if provider not in PROVIDERS:
        raise typer.BadParameter(f"unknown provider {provider!r}; choose one of {', '.join(PROVIDERS)}")
    for given in (images, labelme, coco):
        if given is not None and not given.exists():
            raise typer.BadParameter(f"{given}: no such file or folder")
    resolve = lambda p: str(p.resolve()) if p is not None else None  # noqa: E731
    return BuildConfig(provider=provider, seed=seed, images=resolve(images), labelme=resolve(labelme),
                       coco=resolve(coco), limit=limit, min_turns=min_turns, max_turns=max_turns, workers=workers,
                       provider_options=provider_options or {})


def _run_config(run: Path, provider: str | None) -> BuildConfig:
    manifest = read_manifest(run)
    if manifest is None:
        raise typer.BadParameter(f"{run}: no manifest.json; run 'prist build elements' first")
    config = BuildConfig.from_dict(manifest["config"])
    if provider is not None and provider != config.provider:
        raise typer.BadParameter(f"{run / 'manifest.json'}: config.provider is {config.provider!r}, not {provider!r}")
    return config


def execute(run: Path, config: BuildConfig, steps: tuple[str, ...], fsync: bool = True,
            provider: Provider | None = None) -> BuildResult:
    """Run a build with progress bars and print its summary; map failures to exit codes.

    Raises:
        typer.Exit: 1 when the build stopped or nothing could be built; 130 on Ctrl-C.
    """
    try:
        with step_progress() as hook:
            result = asyncio.run(build(run, config, steps, provider=provider, progress=hook, fsync=fsync))
    except KeyboardInterrupt:
        raise fail(f"interrupted; finished records in {run} are kept: run the same command to resume", 130)
    except UnsupportedSettingError as exc:
        raise fail(str(exc), 2)
    except (ConfigMismatchError, RunLockedError, FatalProviderError, FileNotFoundError, AnnotationError) as exc:
        raise fail(str(exc))
    console.print(report_table(result.reports))
    counts = result.manifest.get("counts", {})
    console.print(
        f"run [bold]{run}[/]: {counts.get('images', 0)} images, {counts.get('trees', 0)} trees, "
        f"{counts.get('dialogues', 0)} dialogues, {counts.get('rejects', 0)} rejects (rejects.jsonl)",
        highlight=False,
    )
    usage = result.manifest.get("usage")
    if usage:
        cost = f", ${usage.get('cost_usd', 0):.4f}" if usage.get("cost_usd") is not None else ""
        console.print(f"requests: {usage.get('requests', 0)} sent, {usage.get('cached', 0)} from cache, "
                      f"{usage.get('prompt_tokens', 0)} prompt + {usage.get('completion_tokens', 0)} completion tokens{cost}"
                      " (totals for this run folder)", highlight=False)
    last = {"elements": "images", "trees": "trees", "dialogues": "dialogues"}[steps[-1]]
    waiting = sum(r.deferred for r in result.reports)
    if waiting:  # batch answers not in yet, or a server that kept failing
        raise fail(f"{waiting} input(s) could not finish yet (batch answers pending or the server kept failing);"
                   " finished records are kept: run the same command again")
    if counts.get(last, 0) == 0:
        raise fail(f"nothing could be built in {run}: every input was rejected (see {run / 'rejects.jsonl'})")
    return result


def _start(run: Path, config: BuildConfig, steps: tuple[str, ...], opts: OpenAIOpts, fsync: bool) -> None:
    """Shared body of the build commands: make the provider, dry-run or build."""
    provider = openai_provider(config, opts) if config.provider == "openai" else get_provider(config.provider)
    if opts.dry_run:
        if config.provider != "openai":
            raise typer.BadParameter("--dry-run estimates model costs; the offline provider has none")
        print_dry_run(run, config, provider, steps)
        return
    execute(run, config, steps, fsync=fsync, provider=provider)


@build_app.command("elements")
@with_openai_options
def build_elements(run: RunOpt, images: ImagesOpt = None, labelme: LabelmeOpt = None, coco: CocoOpt = None,
                   provider: ProviderOpt = "offline", seed: SeedOpt = 0, limit: LimitOpt = None,
                   min_turns: MinTurnsOpt = MIN_TURNS, max_turns: MaxTurnsOpt = MAX_TURNS,
                   workers: WorkersOpt = DEFAULT_WORKERS, fsync: FsyncOpt = True,
                   **openai: Any) -> None:
    """Step 1: extract the visible elements of each image (paper section 3.2.1)."""
    opts = OpenAIOpts.from_kwargs(openai)
    config = _source_config(images, labelme, coco, provider, seed, limit, min_turns, max_turns, workers,
                            opts.stored(provider))
    _start(run, config, ("elements",), opts, fsync)


@build_app.command("trees")
@with_openai_options
def build_trees(run: RunOpt, provider: Annotated[Optional[str], typer.Option("--provider")] = None,
                fsync: FsyncOpt = True, **openai: Any) -> None:
    """Step 2: reasoning questions and a reasoning tree per image (section 3.2.2)."""
    opts = OpenAIOpts.from_kwargs(openai)
    _start(run, opts.resumed(_run_config(run, provider)), ("trees",), opts, fsync)


@build_app.command("dialogues")
@with_openai_options
def build_dialogues(run: RunOpt, provider: Annotated[Optional[str], typer.Option("--provider")] = None,
                    fsync: FsyncOpt = True, **openai: Any) -> None:
    """Step 3: one multi-turn dialogue per tree path (section 3.2.3)."""
    opts = OpenAIOpts.from_kwargs(openai)
    _start(run, opts.resumed(_run_config(run, provider)), ("dialogues",), opts, fsync)


@build_app.command("all")
@with_openai_options
def build_all(run: RunOpt, images: ImagesOpt = None, labelme: LabelmeOpt = None, coco: CocoOpt = None,
              provider: ProviderOpt = "offline", seed: SeedOpt = 0, limit: LimitOpt = None,
              min_turns: MinTurnsOpt = MIN_TURNS, max_turns: MaxTurnsOpt = MAX_TURNS,
              workers: WorkersOpt = DEFAULT_WORKERS, fsync: FsyncOpt = True, **openai: Any) -> None:
    """All three steps in order: elements, trees, dialogues."""
    opts = OpenAIOpts.from_kwargs(openai)
    config = _source_config(images, labelme, coco, provider, seed, limit, min_turns, max_turns, workers,
                            opts.stored(provider))
    _start(run, config, ("elements", "trees", "dialogues"), opts, fsync)
