"""Settings of LLM execution: the single source of every option's name, default, bounds,
help text and environment variable.

The CLI options of ``prist build --provider openai`` (and of every later command that calls
a model) are generated from these fields, the run manifest records their dump (never the
key), and ``--config FILE`` loads the same model. Environment variables are read here and
nowhere else, the way the ``openai`` client reads them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

Detail = Literal["low", "high", "auto"]
"""The image ``detail`` values the chat API accepts (``llm.images`` reads it from here, so that
option parsing does not import Pillow)."""

DEFAULT_MODEL = "gpt-4o-2024-08-06"
"""The model the paper built PRIST with (Appendix B.2)."""
DEFAULT_BASE_URL = "https://api.openai.com/v1"
OPENAI_HOST = "api.openai.com"
KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"
ORG_ENV = "OPENAI_ORG_ID"
CACHE_ENV = "PRIST_CACHE_DIR"
NO_KEY = "none"
"""Sent as the key to a non-OpenAI server when none is configured (local servers ignore it)."""

ResponseFormat = Literal["json_schema", "json_object", "none"]


def flag(name: str, identity: bool = False) -> dict[str, Any]:
    """``json_schema_extra`` of a field: its command-line flag, and whether it changes content.

    ``identity`` fields change what the model writes: a resumed run must keep them.
    """
    return {"flag": name, "identity": identity}


class LLMSettings(BaseModel):
    """How requests reach an OpenAI-compatible chat completions server.

    Every field is a command-line option (``json_schema_extra["flag"]``) and a manifest
    entry (except ``api_key``, which is never written anywhere).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    model: str = Field(
        DEFAULT_MODEL, min_length=1, description="Model name.", json_schema_extra=flag("--model", identity=True)
    )
    base_url: str | None = Field(
        None,
        description=f"OpenAI-compatible API base URL (vLLM, Ollama, Azure) [default: ${BASE_URL_ENV}, else OpenAI].",
        json_schema_extra=flag("--base-url"),
    )
    api_key: SecretStr | None = Field(
        None,
        exclude=True,
        description=f"API key [default: ${KEY_ENV}]; never written "
        "to files or messages (prefer the variable: a flag shows in ps).",
        json_schema_extra=flag("--api-key"),
    )
    headers: list[str] = Field(
        default_factory=list,
        exclude=True,
        description="Extra HTTP header for every request, 'Name: value' (repeatable; e.g. a gateway's "
        "auth header); never written to files or messages.",
        json_schema_extra=flag("--header"),
    )
    organization: str | None = Field(
        None, description=f"OpenAI organization id [default: ${ORG_ENV}].", json_schema_extra=flag("--organization")
    )
    concurrency: int = Field(
        8, ge=1, description="Requests in flight at most.", json_schema_extra=flag("--concurrency")
    )
    rpm: int | None = Field(None, ge=1, description="Requests per minute budget.", json_schema_extra=flag("--rpm"))
    tpm: int | None = Field(
        None,
        ge=1,
        description="Tokens per minute budget (images by GPT-4o's tile rule).",
        json_schema_extra=flag("--tpm"),
    )
    response_format: ResponseFormat = Field(
        "json_schema",
        description="Answer format: strict structured outputs, JSON mode, or plain text.",
        json_schema_extra=flag("--response-format", identity=True),
    )
    max_reasks: int = Field(
        2, ge=0, description="Re-asks after an answer that breaks a rule.", json_schema_extra=flag("--max-reasks")
    )
    max_tokens: int | None = Field(
        None,
        ge=1,
        description="Fix max_tokens of every request (at most each step's cap) [default: adaptive per step,"
        " from the answers so far].",
        json_schema_extra=flag("--max-tokens"),
    )
    temperature: float | None = Field(
        None,
        ge=0.0,
        le=2.0,
        description="Sampling temperature [default: the server's].",
        json_schema_extra=flag("--temperature"),
    )
    max_answer_chars: int = Field(
        200_000,
        ge=1,
        description="Longest answer text kept, in characters; a longer one rejects its input.",
        json_schema_extra=flag("--max-answer-chars"),
    )
    timeout_s: float = Field(
        120.0,
        gt=0.0,
        description="Seconds one request may take, connect to last byte.",
        json_schema_extra=flag("--timeout"),
    )
    max_attempts: int = Field(
        6, ge=1, description="Attempts per request on 429/5xx/timeouts.", json_schema_extra=flag("--max-attempts")
    )
    cache_dir: Path | None = Field(
        None,
        description=f"Response cache [default: ${CACHE_ENV} or ~/.cache/prist/openai].",
        json_schema_extra=flag("--cache-dir"),
    )
    price_file: Path | None = Field(
        None,
        description="JSON {model: [USD per 1M input, per 1M output]} overriding prices.",
        json_schema_extra=flag("--price-file"),
    )
    batch: bool = Field(
        False, description="Use the Batch API (half price, up to 24 h).", json_schema_extra=flag("--batch")
    )
    batch_poll_s: float = Field(
        30.0, ge=0.0, description="Seconds between batch polls.", json_schema_extra=flag("--batch-poll")
    )
    batch_rounds: int | None = Field(
        None,
        ge=1,
        description="Batches per step at most [default: max re-asks + 3].",
        json_schema_extra=flag("--batch-rounds"),
    )
    batch_max_bytes: int = Field(
        190_000_000,
        ge=1024,
        description="Bytes of one batch input file at most (OpenAI's cap is 200 MB; a step is split).",
        json_schema_extra=flag("--batch-max-bytes"),
    )
    batch_max_requests: int = Field(
        50_000,
        ge=1,
        description="Requests in one batch at most (OpenAI's cap is 50,000; a step is split).",
        json_schema_extra=flag("--batch-max-requests"),
    )
    batch_max_enqueued_tokens: int | None = Field(
        None,
        ge=1,
        description="Estimated tokens of batches in progress at most (your organisation's enqueued token"
        " limit for the model); the next batch is submitted as earlier ones complete [default: no limit].",
        json_schema_extra=flag("--batch-max-enqueued-tokens"),
    )
    batch_fallback: bool = Field(
        False,
        description="After the last batch round, send what is missing online.",
        json_schema_extra=flag("--batch-fallback"),
    )

    # -- resolved values (environment read here only) ---------------------------------
    def resolved_base_url(self) -> str:
        """The server root: the option, else ``$OPENAI_BASE_URL``, else OpenAI's."""
        return (self.base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")

    def is_openai(self) -> bool:
        """True when requests go to api.openai.com."""
        return urlsplit(self.resolved_base_url()).hostname == OPENAI_HOST

    def resolved_api_key(self) -> str | None:
        """The key: the option, else ``$OPENAI_API_KEY``, else ``"none"`` for a non-OpenAI
        server (local servers ignore it) and ``None`` for OpenAI (an error at first use)."""
        key = self.api_key.get_secret_value() if self.api_key else os.environ.get(KEY_ENV)
        return key or (None if self.is_openai() else NO_KEY)

    def resolved_organization(self) -> str | None:
        """The organization id: the option, else ``$OPENAI_ORG_ID``."""
        return self.organization or os.environ.get(ORG_ENV)

    def resolved_cache_dir(self) -> Path:
        """The response cache: the option, else ``$PRIST_CACHE_DIR``, else ``~/.cache/prist/openai``.

        Shared by runs, so no run re-pays another's requests."""
        if self.cache_dir is not None:
            return Path(self.cache_dir)
        root = os.environ.get(CACHE_ENV)
        return Path(root) if root else Path.home() / ".cache" / "prist" / "openai"

    def resolved_batch_rounds(self) -> int:
        """Batch rounds per step: every re-ask plus two re-submissions of failed or expired lines."""
        return self.batch_rounds if self.batch_rounds is not None else self.max_reasks + 3

    @field_validator("headers")
    @classmethod
    def _header_lines(cls, value: list[str]) -> list[str]:
        for line in value:
            name, sep, content = line.partition(":")
            if not sep or not name.strip() or not content.strip() or " " in name.strip():
                raise ValueError(f"a header reads 'Name: value', got {line.split(':')[0]!r}...")
        return value

    def resolved_headers(self) -> dict[str, str]:
        """The extra HTTP headers as a mapping (name -> value)."""
        return {n.strip(): v.strip() for n, _, v in (line.partition(":") for line in self.headers)}

    def secrets(self) -> list[str]:
        """Strings that must never appear in any output: the key (given or from the
        environment) and the values of extra headers."""
        key = self.api_key.get_secret_value() if self.api_key else os.environ.get(KEY_ENV)
        return ([key] if key else []) + list(self.resolved_headers().values())

    @classmethod
    def identity_fields(cls) -> tuple[str, ...]:
        """Fields that change what the model writes (a resumed run must keep them)."""
        return tuple(
            name
            for name, f in cls.model_fields.items()
            if isinstance(f.json_schema_extra, dict) and f.json_schema_extra.get("identity")
        )
