"""``prist build elements|trees|dialogues|all``."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError

from prist_builder.cli.console import console, fail, report_table, step_progress
from prist_builder.cli.openai_options import (
    OpenAIOpts,
    one_line,
    openai_provider,
    print_dry_run,
    with_openai_options,
)
from prist_builder.pipeline.config_file import ConfigFileError, load_config_file
from prist_builder.pipeline.manifest import BuildConfig, ConfigMismatchError, read_manifest
from prist_builder.pipeline.store import RunLockedError
from prist_builder.providers import PROVIDERS, FatalError, Provider, get_provider
from prist_builder.providers.base import UnsupportedSettingError
from prist_builder.records.limits import MAX_TURNS, MIN_TURNS
from prist_builder.records.steps import STEPS

if TYPE_CHECKING:
    from prist_builder.pipeline.build import BuildResult

# The pipeline itself (sources: numpy, Pillow, the annotation readers) is imported when a
# build runs, so that ``prist build --help`` starts without it.

build_app = typer.Typer(help="Run pipeline steps into a run folder (resumable).", no_args_is_help=True)

RunOpt = Annotated[Path, typer.Option("--run", help="Run folder: records, rejects and manifest go here.")]
ImagesOpt = Annotated[Path | None, typer.Option("--images", help="Folder of images.", file_okay=False)]
LabelmeOpt = Annotated[Path | None, typer.Option("--labelme", help="Folder of Labelme JSON files.", file_okay=False)]
CocoOpt = Annotated[Path | None, typer.Option("--coco", help="COCO instances JSON file.", dir_okay=False)]
ProviderOpt = Annotated[
    str | None,
    typer.Option(
        "--provider", help=f"Who writes the content: {', '.join(PROVIDERS)} \\[default: offline].", show_default=False
    ),
]
SeedOpt = Annotated[
    int | None, typer.Option("--seed", help="Seed of every random choice \\[default: 0].", show_default=False)
]
LimitOpt = Annotated[int | None, typer.Option("--limit", min=1, help="Build at most N images (first by id).")]
MinTurnsOpt = Annotated[
    int | None,
    typer.Option("--min-turns", min=1, help=f"Fewest turns per dialogue \\[default: {MIN_TURNS}].", show_default=False),
]
MaxTurnsOpt = Annotated[
    int | None,
    typer.Option("--max-turns", min=1, help=f"Most turns per dialogue \\[default: {MAX_TURNS}].", show_default=False),
]
TargetsOpt = Annotated[
    int | None,
    typer.Option("--targets", min=2, max=4, help="Targets (K) per image, 2..4 \\[default: 3].", show_default=False),
]
MixOpt = Annotated[
    str | None,
    typer.Option(
        "--granularity-mix",
        help="Target draw weights coarse:medium:fine \\[default: 22:25:53, PRIST's Table 2].",
        show_default=False,
    ),
]

MultiShareOpt = Annotated[
    float | None,
    typer.Option(
        "--multi-share",
        min=0.0,
        max=1.0,
        help="Share of target slots that become multi-target samples (a set of same-kind objects, one [SEG]"
        " each), where the image has such a set \\[default: 0, single targets only].",
        show_default=False,
    ),
]
EmptyShareOpt = Annotated[
    float | None,
    typer.Option(
        "--empty-share",
        min=0.0,
        max=1.0,
        help="Share of target slots that become empty-target samples (the need points to something the image"
        " does not hold; no [SEG]) \\[default: 0].",
        show_default=False,
    ),
]


def _mix(value: str | None) -> list[float] | None:
    """``"22:25:53"`` as three weights (``None`` stays ``None``).

    Raises:
        typer.BadParameter: not three non-negative numbers.
    """
    if value is None:
        return None
    try:
        weights = [float(v) for v in value.replace(",", ":").split(":")]
    except ValueError:
        weights = []
    if len(weights) != 3 or min(weights) < 0:
        raise typer.BadParameter(f"--granularity-mix {value!r}: give three weights coarse:medium:fine, e.g. 22:25:53")
    return weights


DEFAULT_WORKERS = max(1, min(os.cpu_count() or 1, 8))
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=1,
        help=f"Processes for step 1: the offline provider's work, or reading the inputs for the openai"
        f" provider (one core left to its event loop); 1 works in this process \\[default: {DEFAULT_WORKERS}].",
        show_default=False,
    ),
]
FsyncOpt = Annotated[
    bool, typer.Option("--fsync/--no-fsync", help="fsync run files (--no-fsync: faster, still safe against kill -9).")
]
RetryOpt = Annotated[
    bool,
    typer.Option(
        "--retry-rejected",
        help="Try again, with the current settings, the inputs this run rejected (their reject lines stay"
        " as history); nothing built is sent again.",
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        dir_okay=False,
        help="Build settings from a TOML or YAML file, or a run's manifest.json (reproduces that run);"
        " options given here win.",
    ),
]


def _source_config(config_file: Path | None, given: dict[str, Any], opts: OpenAIOpts) -> BuildConfig:
    """The build's config: ``--config`` file values, then the options given on the command line.

    Raises:
        typer.BadParameter: missing inputs, a path that does not exist, a bad value (names the field).
    """
    try:
        base = load_config_file(config_file) if config_file is not None else {}
    except ConfigFileError as exc:
        raise typer.BadParameter(str(exc)) from None
    values = {**base, **{k: v for k, v in given.items() if v is not None}}
    values.setdefault("workers", DEFAULT_WORKERS)
    for name in ("images", "labelme", "coco"):
        if values.get(name) is not None:
            path = Path(values[name])
            if not path.exists():
                raise typer.BadParameter(f"{path}: no such file or folder")
            values[name] = str(path.resolve())
    if not any(values.get(n) for n in ("images", "labelme", "coco")):
        raise typer.BadParameter("give --images, --labelme or --coco")
    provider = values.get("provider", "offline")
    if provider not in PROVIDERS:
        raise typer.BadParameter(f"unknown provider {provider!r}; choose one of {', '.join(PROVIDERS)}")
    values["provider_options"] = opts.stored(provider, values.get("provider_options"))
    try:
        return BuildConfig.model_validate(values)
    except ValidationError as exc:
        raise typer.BadParameter(one_line(exc)) from None


SOURCE_FIELDS = (
    *("images", "labelme", "coco", "provider", "seed", "limit", "min_turns", "max_turns", "workers"),
    *("targets", "granularity_mix", "multi_share", "empty_share"),
)
"""The run options the source commands (``build elements``, ``build all``) take, by ``BuildConfig`` field."""


def _from_sources(
    run: Path,
    steps: tuple[str, ...],
    config: Path | None,
    fsync: bool,
    openai: dict[str, Any],
    given: dict[str, Any],
    retry: bool = False,
) -> None:
    """Body of the commands that start from sources: config from ``--config`` and the options, then build."""
    opts = OpenAIOpts.from_kwargs(openai)
    _start(run, _source_config(config, given, opts), steps, opts, fsync, retry)


def _run_config(run: Path, provider: str | None) -> BuildConfig:
    manifest = read_manifest(run)
    if manifest is None:
        raise typer.BadParameter(f"{run}: no manifest.json; run 'prist build elements' first")
    config = BuildConfig.from_dict(manifest["config"])
    if provider is not None and provider != config.provider:
        raise typer.BadParameter(f"{run / 'manifest.json'}: config.provider is {config.provider!r}, not {provider!r}")
    return config


@contextmanager
def _frozen_heap() -> Iterator[None]:
    """Keep the objects alive when a build starts (the imported libraries: about 140,000 of
    them) out of the garbage collector's full passes for its length (:func:`gc.freeze`).

    A full pass walks every tracked object: about 0.13 s here, twice in a 576-request
    build (6% of its time, measured with ``gc.callbacks``). Forked step 1 workers then also
    leave those objects' pages shared. The objects are handed back to the collector after.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def execute(
    run: Path,
    config: BuildConfig,
    steps: tuple[str, ...],
    fsync: bool = True,
    provider: Provider | None = None,
    retry: bool = False,
) -> BuildResult:
    """Run a build with progress bars and print its summary; map failures to exit codes.

    Raises:
        typer.Exit: 1 when the build stopped or nothing could be built; 130 on Ctrl-C.
    """
    import asyncio

    from prist_builder.annotation.regions import AnnotationError
    from prist_builder.pipeline.build import build

    try:
        with step_progress() as hook, _frozen_heap():
            result = asyncio.run(
                build(run, config, steps, provider=provider, progress=hook, fsync=fsync, retry_rejected=retry)
            )
    except KeyboardInterrupt:
        raise fail(f"interrupted; finished records in {run} are kept: run the same command to resume", 130) from None
    except UnsupportedSettingError as exc:
        raise fail(str(exc), 2) from None
    except (ConfigMismatchError, RunLockedError, FatalError, FileNotFoundError, AnnotationError) as exc:
        raise fail(str(exc)) from None
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
        console.print(
            f"requests: {usage.get('requests', 0)} sent, {usage.get('cached', 0)} from cache, "
            f"{usage.get('prompt_tokens', 0)} prompt + {usage.get('completion_tokens', 0)} completion tokens{cost}"
            " (totals for this run folder)",
            highlight=False,
        )
    last = {"elements": "images", "trees": "trees", "dialogues": "dialogues"}[steps[-1]]
    waiting = sum(r.deferred for r in result.reports)
    if waiting:  # batch answers not in yet, or a server that kept failing
        raise fail(
            f"{waiting} input(s) could not finish yet (batch answers pending or the server kept failing);"
            " finished records are kept: run the same command again"
        )
    if counts.get(last, 0) == 0:
        raise fail(f"nothing could be built in {run}: every input was rejected (see {run / 'rejects.jsonl'})")
    return result


def _start(
    run: Path, config: BuildConfig, steps: tuple[str, ...], opts: OpenAIOpts, fsync: bool, retry: bool = False
) -> None:
    """Shared body of the build commands: make the provider, dry-run or build."""
    provider = openai_provider(config, opts) if config.provider == "openai" else get_provider(config.provider)
    if opts.dry_run:
        if config.provider != "openai":
            raise typer.BadParameter("--dry-run estimates model costs; the offline provider has none")
        print_dry_run(run, config, provider, steps)
        return
    execute(run, config, steps, fsync=fsync, provider=provider, retry=retry)


@build_app.command("elements")
@with_openai_options
def build_elements(
    run: RunOpt,
    images: ImagesOpt = None,
    labelme: LabelmeOpt = None,
    coco: CocoOpt = None,
    provider: ProviderOpt = None,
    seed: SeedOpt = None,
    limit: LimitOpt = None,
    min_turns: MinTurnsOpt = None,
    max_turns: MaxTurnsOpt = None,
    targets: TargetsOpt = None,
    granularity_mix: MixOpt = None,
    multi_share: MultiShareOpt = None,
    empty_share: EmptyShareOpt = None,
    workers: WorkersOpt = None,
    fsync: FsyncOpt = True,
    retry_rejected: RetryOpt = False,
    config: ConfigOpt = None,
    **openai: Any,
) -> None:
    """Step 1: extract the visible elements of each image (paper section 3.2.1)."""
    given = {k: v for k, v in locals().items() if k in SOURCE_FIELDS} | {"granularity_mix": _mix(granularity_mix)}
    _from_sources(run, ("elements",), config, fsync, openai, given, retry_rejected)


@build_app.command("trees")
@with_openai_options
def build_trees(
    run: RunOpt,
    provider: Annotated[str | None, typer.Option("--provider")] = None,
    multi_share: MultiShareOpt = None,
    empty_share: EmptyShareOpt = None,
    fsync: FsyncOpt = True,
    retry_rejected: RetryOpt = False,
    **openai: Any,
) -> None:
    """Step 2: reasoning questions and a reasoning tree per image (section 3.2.2)."""
    opts = OpenAIOpts.from_kwargs(openai)
    config = _with_shares(_run_config(run, provider), multi_share, empty_share)
    _start(run, opts.resumed(config), ("trees",), opts, fsync, retry_rejected)


def _with_shares(config: BuildConfig, multi_share: float | None, empty_share: float | None) -> BuildConfig:
    """``config`` with the target-kind shares given on the command line (the rest as recorded).

    Raises:
        typer.BadParameter: the shares add up to more than 1.
    """
    given = {k: v for k, v in (("multi_share", multi_share), ("empty_share", empty_share)) if v is not None}
    if not given:
        return config
    try:
        return BuildConfig.model_validate({**config.model_dump(), **given})
    except ValidationError as exc:
        raise typer.BadParameter(one_line(exc)) from None


@build_app.command("dialogues")
@with_openai_options
def build_dialogues(
    run: RunOpt,
    provider: Annotated[str | None, typer.Option("--provider")] = None,
    fsync: FsyncOpt = True,
    retry_rejected: RetryOpt = False,
    **openai: Any,
) -> None:
    """Step 3: one multi-turn dialogue per tree path (section 3.2.3)."""
    opts = OpenAIOpts.from_kwargs(openai)
    _start(run, opts.resumed(_run_config(run, provider)), ("dialogues",), opts, fsync, retry_rejected)


@build_app.command("all")
@with_openai_options
def build_all(
    run: RunOpt,
    images: ImagesOpt = None,
    labelme: LabelmeOpt = None,
    coco: CocoOpt = None,
    provider: ProviderOpt = None,
    seed: SeedOpt = None,
    limit: LimitOpt = None,
    min_turns: MinTurnsOpt = None,
    max_turns: MaxTurnsOpt = None,
    targets: TargetsOpt = None,
    granularity_mix: MixOpt = None,
    multi_share: MultiShareOpt = None,
    empty_share: EmptyShareOpt = None,
    workers: WorkersOpt = None,
    fsync: FsyncOpt = True,
    retry_rejected: RetryOpt = False,
    config: ConfigOpt = None,
    **openai: Any,
) -> None:
    """All three steps in order: elements, trees, dialogues."""
    given = {k: v for k, v in locals().items() if k in SOURCE_FIELDS} | {"granularity_mix": _mix(granularity_mix)}
    _from_sources(run, STEPS, config, fsync, openai, given, retry_rejected)
