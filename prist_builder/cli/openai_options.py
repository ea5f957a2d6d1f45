"""Command-line options of the ``openai`` provider, shared by every ``prist build`` command.

Typer has no option groups, so :func:`with_openai_options` adds the same keyword options
to a command's signature and hands them to it as ``**openai``.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from rich.table import Table

from prist_builder.cli.console import console
from prist_builder.pipeline.manifest import BuildConfig
from prist_builder.pipeline.steps import source_paths
from prist_builder.pipeline.store import RunStore
from prist_builder.sources import discover

PANEL = "OpenAI provider (--provider openai)"
STORED = ("model", "base_url", "concurrency", "rpm", "tpm", "detail", "max_side", "response_format", "max_reasks",
          "temperature", "timeout_s", "max_attempts", "cache_dir", "price_file", "batch", "batch_poll_s", "batch_fallback")
"""Options recorded in the manifest (never the API key)."""
IDENTITY = ("model", "response_format", "detail", "max_side")
"""Options that change what the model writes: always recorded (given or not), and a
resumed run must keep them."""


def identity_defaults() -> dict[str, Any]:
    """The provider's own defaults of :data:`IDENTITY` (read from its signature)."""
    from prist_builder.providers.openai.provider import OpenAIProvider

    parameters = inspect.signature(OpenAIProvider).parameters
    return {name: parameters[name].default for name in IDENTITY}


def _opt(name: str, kind: Any, help_text: str, default: Any = None, **extra: Any) -> inspect.Parameter:
    return inspect.Parameter(name.lstrip("-").replace("-", "_"), inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=Annotated[kind, typer.Option(name, help=help_text, rich_help_panel=PANEL, **extra)])


OPTIONS: list[inspect.Parameter] = [
    _opt("--model", Optional[str], "Model name \\[default: gpt-4o-2024-08-06]."),
    _opt("--base-url", Optional[str], "OpenAI-compatible API base URL (vLLM, Ollama, Azure) \\[default: OpenAI]."),
    _opt("--api-key", Optional[str], "API key \\[default: $OPENAI_API_KEY]; never written to files or messages (prefer the variable: a flag shows in ps and shell history).", show_default=False),
    _opt("--concurrency", Optional[int], "Requests in flight at most \\[default: 8].", min=1),
    _opt("--rpm", Optional[int], "Requests per minute budget.", min=1),
    _opt("--tpm", Optional[int], "Tokens per minute budget (images by GPT-4o's tile rule).", min=1),
    _opt("--detail", Optional[str], "Image detail: low, high or auto \\[default: high]."),
    _opt("--max-side", Optional[int], "Downscale images to this long side in pixels \\[default: 1024].", min=16),
    _opt("--response-format", Optional[str], "json_schema (strict), json_object or none \\[default: json_schema]."),
    _opt("--max-reasks", Optional[int], "Re-asks after an answer that breaks a rule \\[default: 2].", min=0),
    _opt("--temperature", Optional[float], "Sampling temperature \\[default: the server's]."),
    _opt("--timeout", Optional[float], "Seconds per request \\[default: 120].", min=0.1),
    _opt("--max-attempts", Optional[int], "Attempts per request on 429/5xx/timeouts \\[default: 6].", min=1),
    _opt("--cache-dir", Optional[Path], "Response cache \\[default: $PRIST_CACHE_DIR or ~/.cache/prist/openai]."),
    _opt("--price-file", Optional[Path], "JSON {model: [USD per 1M input, per 1M output]} overriding prices."),
    _opt("--batch", bool, "Use the Batch API (half price, up to 24 h).", default=False),
    _opt("--batch-poll", Optional[float], "Seconds between batch polls \\[default: 30].", min=0.0),
    _opt("--batch-fallback", bool, "After the last batch round, send what is missing online.", default=False),
    _opt("--dry-run", bool, "Estimate tokens and cost; send nothing.", default=False),
]
_NAMES = {p.name for p in OPTIONS}
_RENAMED = {"timeout": "timeout_s", "batch_poll": "batch_poll_s"}


def with_openai_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give a command every OpenAI option; it receives them in its ``**openai`` parameter."""
    signature = inspect.signature(command, eval_str=True)
    params = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        own = {k: v for k, v in kwargs.items() if k not in _NAMES}
        command(**own, **{k: v for k, v in kwargs.items() if k in _NAMES})

    del wrapper.__wrapped__  # Typer must read the new signature, not the command's
    wrapper.__signature__ = signature.replace(parameters=params + OPTIONS)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params + OPTIONS}
    return wrapper


@dataclass
class OpenAIOpts:
    """The OpenAI options of one command line (unset ones are ``None``)."""

    values: dict[str, Any] = field(default_factory=dict)
    api_key: str | None = None
    dry_run: bool = False

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> "OpenAIOpts":
        """Collect the options a command received."""
        values = {}
        for name, value in kwargs.items():
            if name in ("api_key", "dry_run") or value is None or value is False:
                continue
            values[_RENAMED.get(name, name)] = str(value) if isinstance(value, Path) else value
        return cls(values, kwargs.get("api_key"), bool(kwargs.get("dry_run")))

    def stored(self, provider: str) -> dict[str, Any]:
        """Options to record in a new run's config.

        Raises:
            typer.BadParameter: OpenAI options given with another provider.
        """
        if provider != "openai":
            if self.values or self.api_key:
                raise typer.BadParameter(f"--{next(iter(self.values), 'api-key').replace('_', '-')} needs --provider openai")
            return {}
        return {**identity_defaults(), **{k: v for k, v in self.values.items() if k in STORED}}

    def resumed(self, config: BuildConfig) -> BuildConfig:
        """A run's config with this command line's operational options on top.

        Raises:
            typer.BadParameter: an option that changes the content differs from the run's.
        """
        merged = dict(config.provider_options)
        defaults = identity_defaults() if config.provider == "openai" else {}
        for name, value in self.values.items():
            recorded = merged.get(name, defaults.get(name))
            if name in IDENTITY and recorded != value:
                raise typer.BadParameter(f"--{name.replace('_', '-')} {value!r}: this run was built with {recorded!r}")
            merged[name] = value
        return BuildConfig(**{**config.__dict__, "provider_options": merged})


def openai_provider(config: BuildConfig, opts: OpenAIOpts) -> Any:
    """The ``openai`` provider for a build, with a batch progress line on the console."""
    from prist_builder.providers.openai.provider import OpenAIProvider

    provider = OpenAIProvider(**config.provider_options, api_key=opts.api_key, seed=config.seed)
    provider.batch_progress = lambda status, done, total: console.print(
        f"batch {status}: {done}/{total} requests", highlight=False)
    return provider


def print_dry_run(run: Path, config: BuildConfig, provider: Any, steps: tuple[str, ...]) -> None:
    """Print the token and cost estimate of a build without sending anything."""
    from prist_builder.providers.openai.estimate import estimate

    items, _ = discover(**source_paths(config))
    items = items[: config.limit] if config.limit else items
    journal = run / ".journal" / "elements.jsonl"
    if journal.exists():  # inputs this run already finished cost nothing more
        with RunStore(run, fsync=False) as store:
            items = [i for i in items if not store.is_done("elements", i.image_id)]
    wanted = {"elements": "elements", "trees": "tree", "dialogues": "dialogues"}
    rows = [e for e in estimate(items, provider.model, provider.detail, provider.max_side, provider.transport.prices)
            if e.step in {wanted[s] for s in steps}]
    table = Table(title=f"dry run: {len(items)} image(s), model {provider.model} (no request sent)", title_justify="left")
    for column in ("step", "requests", "prompt tokens", "completion tokens", "USD online", "USD batch"):
        table.add_column(column, justify="left" if column == "step" else "right")
    money = lambda v: "unknown model" if v is None else f"{v:.4f}"  # noqa: E731
    for row in rows:
        table.add_row(row.step, str(row.requests), f"{row.prompt_tokens:,}", f"{row.completion_tokens:,}",
                      money(row.usd), money(row.usd_batch))
    total = [r.usd for r in rows]
    table.add_row("total", str(sum(r.requests for r in rows)), f"{sum(r.prompt_tokens for r in rows):,}",
                  f"{sum(r.completion_tokens for r in rows):,}",
                  money(None if None in total else sum(total)),
                  money(None if None in total else sum(r.usd_batch for r in rows)))
    console.print(table)
