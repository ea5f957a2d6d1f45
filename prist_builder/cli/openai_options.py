"""Command-line options of the ``openai`` provider, shared by every ``prist build`` command.

Typer has no option groups, so :func:`with_openai_options` adds the same keyword options
to a command's signature and hands them to it as ``**openai``.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import SecretStr, ValidationError
from rich.table import Table

from prist_builder.cli.console import console
from prist_builder.pipeline.manifest import BuildConfig
from prist_builder.pipeline.store import finished_keys, is_busy
from prist_builder.providers.openai.config import OpenAIProviderConfig
from prist_builder.records.steps import PROMPT_OF_STEP

PANEL = "OpenAI provider (--provider openai)"


def _unwrap(annotation: Any) -> Any:
    """``X`` of ``X | None``; other annotations as they are."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation


def _cli_type(annotation: Any) -> Any:
    """The Typer type of a config field: ``Literal`` and ``SecretStr`` read as text."""
    base = _unwrap(annotation)
    if typing.get_origin(base) is list:
        return list[str]
    if typing.get_origin(base) is Literal or base is SecretStr:
        return str
    return base


def _choices(annotation: Any) -> list[str]:
    """The allowed values of a ``Literal`` (or optional ``Literal``) field; ``[]`` otherwise."""
    base = _unwrap(annotation)
    return [str(v) for v in typing.get_args(base)] if typing.get_origin(base) is Literal else []


def _options() -> tuple[list[inspect.Parameter], dict[str, str]]:
    """One keyword option per field of :class:`OpenAIProviderConfig`, plus ``--dry-run``;
    and the parameter name -> field name map."""
    params, names = [], {}
    for name, info in OpenAIProviderConfig.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        flag = str(extra["flag"])
        kind = _cli_type(info.annotation)
        choices = _choices(info.annotation)
        default = info.get_default(call_default_factory=True)
        help_text = (info.description or "").replace("[", "\\[")
        if choices and all(isinstance(c, str) for c in choices):
            help_text = help_text.rstrip(".") + f" ({', '.join(choices)})."
        if default not in (None, False, []) and not isinstance(default, SecretStr):
            help_text += f" \\[default: {default}]"
        if kind is bool:
            annotation = Annotated[bool, typer.Option(flag, help=help_text, rich_help_panel=PANEL)]
            params.append(
                inspect.Parameter(
                    flag[2:].replace("-", "_"), inspect.Parameter.KEYWORD_ONLY, default=False, annotation=annotation
                )
            )
        else:
            annotation = Annotated[
                kind | None, typer.Option(flag, help=help_text, rich_help_panel=PANEL, show_default=False)
            ]
            params.append(
                inspect.Parameter(
                    flag[2:].replace("-", "_"), inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation
                )
            )
        names[flag[2:].replace("-", "_")] = name
    params.append(
        inspect.Parameter(
            "dry_run",
            inspect.Parameter.KEYWORD_ONLY,
            default=False,
            annotation=Annotated[
                bool, typer.Option("--dry-run", help="Estimate tokens and cost; send nothing.", rich_help_panel=PANEL)
            ],
        )
    )
    return params, names


OPTIONS, FIELD_OF = _options()
SECRET_OPTIONS = ("api_key", "header")
"""Options that are secrets: handed to the provider, never stored in a run's config."""
_NAMES = {p.name for p in OPTIONS}


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
    """The OpenAI options of one command line: the fields given (by config field name),
    the secrets (the key and extra headers, never stored), and ``--dry-run``."""

    values: dict[str, Any] = field(default_factory=dict)
    api_key: str | None = None
    dry_run: bool = False
    headers: list[str] = field(default_factory=list)

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> OpenAIOpts:
        """Collect the options a command received (unset ones are ``None`` or ``False``)."""
        values = {
            FIELD_OF[name]: (str(v) if isinstance(v, Path) else v)
            for name, v in kwargs.items()
            if name in FIELD_OF and name not in SECRET_OPTIONS and v is not None and v is not False
        }
        return cls(values, kwargs.get("api_key"), bool(kwargs.get("dry_run")), list(kwargs.get("header") or []))

    def stored(self, provider: str, base: dict[str, Any] | None = None) -> dict[str, Any]:
        """Options to record in a new run's config: ``base`` (from ``--config``) with this
        command line on top.

        Raises:
            typer.BadParameter: OpenAI options given with another provider, or out of bounds.
        """
        if provider != "openai":
            if self.values or self.api_key or self.headers:
                raise typer.BadParameter(
                    f"--{next(iter(self.values), 'api-key').replace('_', '-')} needs --provider openai"
                )
            return dict(base or {})
        merged = {**(base or {}), **self.values}
        try:
            config = OpenAIProviderConfig.model_validate(merged)
        except ValidationError as exc:
            raise typer.BadParameter(one_line(exc)) from None
        identity = {k: getattr(config, k) for k in OpenAIProviderConfig.identity_fields()}
        return {**config.model_dump(mode="json", exclude_none=True), **identity}

    def resumed(self, config: BuildConfig) -> BuildConfig:
        """A run's config with this command line's operational options on top.

        Raises:
            typer.BadParameter: an option that changes the content differs from the run's.
        """
        merged = dict(config.provider_options)
        identity = OpenAIProviderConfig.identity_fields() if config.provider == "openai" else ()
        defaults = OpenAIProviderConfig().model_dump(mode="json") if config.provider == "openai" else {}
        for name, value in self.values.items():
            recorded = merged.get(name, defaults.get(name))
            if name in identity and recorded != value:
                raise typer.BadParameter(f"--{name.replace('_', '-')} {value!r}: this run was built with {recorded!r}")
            merged[name] = value
        try:
            return config.model_copy(
                update={
                    "provider_options": BuildConfig.model_validate(
                        {**config.model_dump(), "provider_options": merged}
                    ).provider_options
                }
            )
        except ValidationError as exc:
            raise typer.BadParameter(one_line(exc)) from None


def one_line(exc: ValidationError) -> str:
    """The first error of a validation failure as ``field: message``."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "value"
    return f"{where}: {first.get('msg')}"


def openai_provider(config: BuildConfig, opts: OpenAIOpts) -> Any:
    """The ``openai`` provider for a build, with a batch progress line on the console."""
    from prist_builder.providers.openai.provider import OpenAIProvider

    try:
        settings = OpenAIProviderConfig.model_validate(
            {**config.provider_options, "api_key": opts.api_key, "headers": opts.headers}
        )
    except ValidationError as exc:
        raise typer.BadParameter(one_line(exc)) from None
    provider = OpenAIProvider(settings, seed=config.seed)
    provider.client.batch_progress = lambda status, done, total: console.print(
        f"batch {status}: {done}/{total} requests", highlight=False
    )
    return provider


def print_dry_run(run: Path, config: BuildConfig, provider: Any, steps: tuple[str, ...]) -> None:
    """Print the token and cost estimate of a build without sending anything.

    Reads only: no lock, no repair of the run folder, no file written (the run may be
    another build's, in progress)."""
    from prist_builder.pipeline.steps import source_paths
    from prist_builder.providers.openai.estimate import estimate, rule_line
    from prist_builder.sources import discover

    items, _ = discover(**source_paths(config))
    items = items[: config.limit] if config.limit else items
    if is_busy(run):
        console.print(
            f"{run} is being built by another prist process; estimating what it has not finished yet", highlight=False
        )
    done = finished_keys(run, "elements")  # inputs this run already finished cost nothing more
    items = [i for i in items if i.image_id not in done]
    rows = [
        e
        for e in estimate(
            items,
            provider.model,
            provider.config.detail,
            provider.config.max_side,
            provider.client.transport.prices,
            targets=config.targets,
            clean_too=provider.config.send_clean_image,
            multi_share=config.multi_share,
            empty_share=config.empty_share,
        )
        if e.step in {PROMPT_OF_STEP[s] for s in steps}
    ]
    table = Table(
        title=f"dry run: {len(items)} image(s), model {provider.model} (no request sent)\n"
        + rule_line(provider.model, provider.config.detail)
        + f"; images are {sum(r.image_tokens for r in rows):,} of the prompt tokens",
        title_justify="left",
    )
    for column in ("step", "requests", "prompt tokens", "completion tokens", "USD online", "USD batch"):
        table.add_column(column, justify="left" if column == "step" else "right")

    def money(value: float | None) -> str:
        return "unknown model" if value is None else f"{value:.4f}"

    for row in rows:
        table.add_row(
            row.step,
            str(row.requests),
            f"{row.prompt_tokens:,}",
            f"{row.completion_tokens:,}",
            money(row.usd),
            money(row.usd_batch),
        )
    total = [r.usd for r in rows]
    table.add_row(
        "total",
        str(sum(r.requests for r in rows)),
        f"{sum(r.prompt_tokens for r in rows):,}",
        f"{sum(r.completion_tokens for r in rows):,}",
        money(None if None in total else sum(total)),
        money(None if None in total else sum(r.usd_batch for r in rows)),
    )
    console.print(table)
